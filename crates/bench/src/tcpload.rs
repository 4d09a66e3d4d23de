//! An HTTP/1.0 load generator: a fixed number of workers, each opening a
//! new TCP connection per request (busybox `httpd` closes every one),
//! spread round-robin over the targets, for a fixed time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::Samples;

/// What one run measured.
#[derive(Debug, Default)]
pub struct HttpRun {
    /// Latency of each answered request (connect → end of the answer).
    pub latencies: Samples,
    /// Requests that failed (refused, reset, timed out, not `200`).
    pub errors: u64,
    /// How long the run took.
    pub elapsed: Duration,
}

impl HttpRun {
    /// Answered requests per second.
    pub fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }
}

/// A request gives up after this long.
const TIMEOUT: Duration = Duration::from_secs(5);

async fn one(addr: SocketAddr, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: bench\r\n\r\n")
        .await?;
    buf.clear();
    s.read_to_end(buf).await?;
    Ok(buf.starts_with(b"HTTP/1.") && buf.get(9..12) == Some(b"200".as_slice()))
}

/// How a worker picks the target of each request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// In turn over all workers.
    RoundRobin,
    /// At random, each independently (as the service proxy's `numgen
    /// random` does).
    Random,
}

/// Runs `concurrency` workers against `targets` (round-robin) for
/// `duration`.
pub async fn run(targets: &[SocketAddr], concurrency: usize, duration: Duration) -> HttpRun {
    run_picking(targets, Pick::RoundRobin, concurrency, duration).await
}

/// Runs `concurrency` workers against `targets`, picked by `pick`, for
/// `duration`.
pub async fn run_picking(
    targets: &[SocketAddr],
    pick: Pick,
    concurrency: usize,
    duration: Duration,
) -> HttpRun {
    let targets: Arc<Vec<SocketAddr>> = Arc::new(targets.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let mut workers = Vec::new();
    for w in 0..concurrency {
        let targets = targets.clone();
        let next = next.clone();
        workers.push(tokio::spawn(async move {
            let mut lat = Samples::new();
            let mut errors = 0u64;
            let mut buf = Vec::with_capacity(1024);
            // xorshift64, seeded per worker
            let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ ((w as u64 + 1) << 17);
            while Instant::now() < deadline {
                let i = match pick {
                    Pick::RoundRobin => next.fetch_add(1, Ordering::Relaxed),
                    Pick::Random => {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        (seed >> 33) as usize
                    }
                } % targets.len().max(1);
                let Some(addr) = targets.get(i).copied() else {
                    break;
                };
                let t = Instant::now();
                match tokio::time::timeout(TIMEOUT, one(addr, &mut buf)).await {
                    Ok(Ok(true)) => lat.push(t.elapsed()),
                    _ => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let mut out = HttpRun::default();
    for w in workers {
        if let Ok((lat, errors)) = w.await {
            out.latencies.extend(lat);
            out.errors += errors;
        }
    }
    out.elapsed = start.elapsed();
    out
}
