//! A DNS-over-UDP load generator: a fixed number of queries in flight (one
//! socket each), names taken in turn from a list, for a fixed time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use tokio::net::UdpSocket;

use crate::Samples;

/// What one run measured.
#[derive(Debug, Default)]
pub struct DnsRun {
    /// Latency of each answered query.
    pub latencies: Samples,
    /// Answers `NOERROR` with at least one record.
    pub answered: u64,
    /// Answers `NXDOMAIN`.
    pub nxdomain: u64,
    /// Other answers (`SERVFAIL`, empty `NOERROR`, a wrong id).
    pub other: u64,
    /// Queries with no answer within a second.
    pub timeouts: u64,
    /// How long the run took.
    pub elapsed: Duration,
}

impl DnsRun {
    /// Answers per second.
    pub fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }
}

/// A query is lost after this long.
const TIMEOUT: Duration = Duration::from_secs(1);

/// The wire form of a query for `name` (`A`) with `id`.
pub fn query(name: &str, id: u16) -> anyhow::Result<Vec<u8>> {
    let mut m = Message::query();
    m.metadata.id = id;
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name)?, RecordType::A));
    Ok(m.to_vec()?)
}

/// Runs `in_flight` workers against `server` for `duration`, asking
/// `names` (fully qualified) in turn.
pub async fn run(
    server: SocketAddr,
    names: &[String],
    in_flight: usize,
    duration: Duration,
) -> anyhow::Result<DnsRun> {
    let names: Arc<Vec<String>> = Arc::new(names.to_vec());
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let mut workers = Vec::new();
    for w in 0..in_flight {
        let sock = UdpSocket::bind("0.0.0.0:0").await?;
        sock.connect(server).await?;
        let names = names.clone();
        let next = next.clone();
        workers.push(tokio::spawn(async move {
            let mut run = DnsRun::default();
            let mut buf = vec![0u8; 4096];
            let mut id = (w as u16).wrapping_mul(1021);
            while Instant::now() < deadline {
                id = id.wrapping_add(1);
                let i = next.fetch_add(1, Ordering::Relaxed) % names.len().max(1);
                let Some(q) = names.get(i).and_then(|n| query(n, id).ok()) else {
                    break;
                };
                let t = Instant::now();
                if sock.send(&q).await.is_err() {
                    run.other += 1;
                    continue;
                }
                // a late answer to an earlier query is read and skipped
                let got = tokio::time::timeout(TIMEOUT, async {
                    loop {
                        let n = sock.recv(&mut buf).await?;
                        let m = buf.get(..n).and_then(|b| Message::from_vec(b).ok());
                        if let Some(m) = m
                            && m.metadata.id == id
                        {
                            return Ok::<_, std::io::Error>(m);
                        }
                    }
                })
                .await;
                match got {
                    Ok(Ok(m)) => {
                        run.latencies.push(t.elapsed());
                        match m.metadata.response_code {
                            ResponseCode::NoError if !m.answers.is_empty() => run.answered += 1,
                            ResponseCode::NXDomain => run.nxdomain += 1,
                            _ => run.other += 1,
                        }
                    }
                    Ok(Err(_)) => run.other += 1,
                    Err(_) => run.timeouts += 1,
                }
            }
            run
        }));
    }
    let mut out = DnsRun::default();
    for w in workers {
        if let Ok(r) = w.await {
            out.latencies.extend(r.latencies);
            out.answered += r.answered;
            out.nxdomain += r.nxdomain;
            out.other += r.other;
            out.timeouts += r.timeouts;
        }
    }
    out.elapsed = start.elapsed();
    Ok(out)
}
