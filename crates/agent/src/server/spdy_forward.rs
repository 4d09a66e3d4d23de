//! Port-forward over SPDY, as kubectl does it: per connection it opens an
//! error stream and a data stream (headers `streamtype`, `port`,
//! `requestid`); each stream gets a SYN_REPLY; the data stream is relayed
//! to a TCP connection made inside the pod's network namespace; the
//! error stream carries a failure's text, and both end with FIN when the
//! pod's side closes. The bytes come either tunnelled in WebSocket binary
//! messages (`SPDY/3.1+portforward.k8s.io`, kubectl 1.31+) or over a plain
//! `Upgrade: SPDY/3.1`.

use std::collections::HashMap;
use std::path::PathBuf;

use futures::{Stream, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::portforward::connect_in;
use super::spdy::{self, FLAG_FIN, Frame, Headers};

/// How many frames wait for a slow side before the other waits.
const QUEUE: usize = 64;

/// The port-forward protocol name.
pub const PROTOCOL: &str = "portforward.k8s.io";
/// The WebSocket subprotocol that tunnels SPDY port-forward.
pub const TUNNEL_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";

/// Where the forwarded ports are.
#[derive(Clone, Debug)]
pub struct Target {
    /// The pod's network namespace (`None`: the host's).
    pub netns: Option<PathBuf>,
    /// The pod's name (for error texts).
    pub pod: String,
    /// The pod's uid (for error texts).
    pub uid: String,
}

/// A data stream being forwarded.
struct Forward {
    inbound: Option<mpsc::Sender<Vec<u8>>>,
    task: JoinHandle<()>,
    error_stream: Option<u32>,
}

/// Runs a SPDY port-forward connection: `incoming` yields the bytes the
/// client sent, `out` takes whole frames to send.
pub async fn serve<S>(mut incoming: S, out: mpsc::Sender<Vec<u8>>, target: Target)
where
    S: Stream<Item = Vec<u8>> + Unpin,
{
    let mut reader = spdy::Reader::new();
    let mut writer = spdy::Writer::new();
    // requestid → error stream
    let mut error_streams: HashMap<String, u32> = HashMap::new();
    let mut forwards: HashMap<u32, Forward> = HashMap::new();
    'connection: while let Some(bytes) = incoming.next().await {
        reader.feed(&bytes);
        loop {
            let frame = match reader.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(error = %e, "port-forward: bad SPDY");
                    break 'connection;
                }
            };
            match frame {
                Frame::SynStream {
                    stream, headers, ..
                } => {
                    let _ = out.send(writer.syn_reply(stream, &Headers::new())).await;
                    let kind = spdy::header(&headers, "streamtype").unwrap_or("");
                    let request = spdy::header(&headers, "requestid").unwrap_or("").to_owned();
                    match kind {
                        "error" => {
                            error_streams.insert(request, stream);
                        }
                        "data" => {
                            let error_stream = error_streams.remove(&request);
                            let port = spdy::header(&headers, "port").unwrap_or("");
                            let forward = start(stream, error_stream, port, &target, out.clone());
                            forwards.insert(stream, forward);
                        }
                        _ => {
                            // unknown stream type: refused
                            let _ = out.send(spdy::rst_stream(stream, 1)).await;
                        }
                    }
                }
                Frame::Data {
                    stream,
                    flags,
                    data,
                } => {
                    if let Some(f) = forwards.get_mut(&stream) {
                        if !data.is_empty()
                            && let Some(tx) = &f.inbound
                        {
                            let _ = tx.send(data).await;
                        }
                        if flags & FLAG_FIN != 0 {
                            f.inbound = None;
                        }
                    }
                }
                Frame::RstStream { stream, .. } => {
                    if let Some(f) = forwards.remove(&stream) {
                        let finished = f.task.is_finished();
                        f.task.abort();
                        if !finished && let Some(e) = f.error_stream {
                            let _ = out.send(spdy::data(e, FLAG_FIN, &[])).await;
                        }
                    }
                }
                Frame::Ping(id) => {
                    let _ = out.send(spdy::ping(id)).await;
                }
                Frame::GoAway => break 'connection,
                Frame::SynReply { .. } | Frame::Other(_) => {}
            }
        }
        forwards.retain(|_, f| !f.task.is_finished() || f.inbound.is_some());
    }
    for (_, f) in forwards {
        f.task.abort();
    }
}

/// Starts forwarding one data stream.
fn start(
    stream: u32,
    error_stream: Option<u32>,
    port: &str,
    target: &Target,
    out: mpsc::Sender<Vec<u8>>,
) -> Forward {
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(QUEUE);
    let port_text = port.to_owned();
    let target = target.clone();
    let task = tokio::spawn(async move {
        let finish = |message: Option<String>| {
            let out = out.clone();
            async move {
                if let Some(e) = error_stream {
                    if let Some(m) = message {
                        let _ = out.send(spdy::data(e, 0, m.as_bytes())).await;
                    }
                    let _ = out.send(spdy::data(e, FLAG_FIN, &[])).await;
                }
                let _ = out.send(spdy::data(stream, FLAG_FIN, &[])).await;
            }
        };
        let port: u16 = match port_text.parse() {
            Ok(p) if p > 0 => p,
            _ => {
                finish(Some(format!("invalid port header {port_text:?}"))).await;
                return;
            }
        };
        let ns = target.netns.clone();
        let connected = tokio::task::spawn_blocking(move || connect_in(ns.as_deref(), port))
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())))
            .and_then(|s| {
                s.set_nonblocking(true)?;
                tokio::net::TcpStream::from_std(s)
            });
        let conn = match connected {
            Ok(c) => c,
            Err(e) => {
                finish(Some(format!(
                    "error forwarding port {port} to pod {}, uid {}: {e}",
                    target.pod, target.uid
                )))
                .await;
                return;
            }
        };
        let (mut r, mut w) = conn.into_split();
        let to_pod = tokio::spawn(async move {
            while let Some(data) = rx.recv().await {
                if w.write_all(&data).await.is_err() {
                    break;
                }
            }
            let _ = w.shutdown().await;
        });
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if out.send(spdy::data(stream, 0, &buf[..n])).await.is_err() {
                        break;
                    }
                }
            }
        }
        to_pod.abort();
        finish(None).await;
    });
    Forward {
        inbound: Some(tx),
        task,
        error_stream,
    }
}
