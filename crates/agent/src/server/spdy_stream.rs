//! exec and attach over SPDY/3.1 (`Upgrade: SPDY/3.1`, the protocol
//! version in `X-Stream-Protocol-Version`): what kubectl before 1.30, and
//! client-go tools that never moved to WebSocket, speak. The client opens
//! one stream per channel (header `streamtype`: error, stdin, stdout,
//! stderr, resize); once all the request asked for are there, the process
//! runs; output goes out on its streams, stdin comes in until the client's
//! FIN, resize events are JSON objects one after the other; at the end the
//! output streams close and the status goes on the error stream (a metav1
//! Status from v4 on, a failure's text before).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use berth_engine::streams::{FrameReader, Stream as Out};
use futures::{Stream, StreamExt};
use hyper::body::Incoming;
use hyper::{Request, Response, header};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::State;
use super::channel::{self, Version};
use super::spdy::{self, FLAG_FIN, Frame, Headers};
use super::stream::{Kind, StreamParams};

/// How long the client has to open its streams.
const STREAMS_TIMEOUT: Duration = Duration::from_secs(30);

/// Bytes read from a connection.
pub type ByteStream = Pin<Box<dyn Stream<Item = Vec<u8>> + Send>>;

/// Whether a request asks for a SPDY upgrade.
pub fn is_spdy_upgrade(request: &Request<Incoming>) -> bool {
    request
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|u| u.to_ascii_uppercase().starts_with("SPDY/"))
}

/// The protocol versions a SPDY client offers, in its order.
pub fn offered_versions(request: &Request<Incoming>) -> Vec<String> {
    request
        .headers()
        .get_all("x-stream-protocol-version")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect()
}

/// The 101 answer to a SPDY upgrade with the chosen version.
pub fn switching(version: &str) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = hyper::StatusCode::SWITCHING_PROTOCOLS;
    let h = response.headers_mut();
    h.insert(
        header::CONNECTION,
        header::HeaderValue::from_static("Upgrade"),
    );
    h.insert(
        header::UPGRADE,
        header::HeaderValue::from_static("SPDY/3.1"),
    );
    if let Ok(v) = header::HeaderValue::from_str(version) {
        h.insert("x-stream-protocol-version", v);
    }
    response
}

/// An upgraded connection as bytes in and whole frames out; the writer
/// ends when every sender is dropped.
pub fn byte_pipes(
    upgraded: hyper::upgrade::Upgraded,
) -> (ByteStream, mpsc::Sender<Vec<u8>>, JoinHandle<()>) {
    let (r, mut w) = tokio::io::split(hyper_util::rt::TokioIo::new(upgraded));
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(64);
    let writer = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            if w.write_all(&frame).await.is_err() {
                return;
            }
        }
        let _ = w.shutdown().await;
    });
    let incoming = Box::pin(futures::stream::unfold(r, |mut r| async move {
        let mut buf = vec![0u8; 32 * 1024];
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((buf, r))
            }
        }
    }));
    (incoming, tx, writer)
}

/// What a SPDY exec or attach runs.
pub(crate) struct Session {
    pub state: Arc<State>,
    pub kind: Kind,
    pub container_id: String,
    pub params: StreamParams,
    pub version: Version,
}

/// Answers 101 and runs the session on the upgraded connection.
pub(crate) fn upgrade(
    request: &mut Request<Incoming>,
    version_name: &str,
    session: Session,
) -> Response<Body> {
    let on_upgrade = hyper::upgrade::on(request);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let (incoming, out, writer) = byte_pipes(upgraded);
        run(session, incoming, out).await;
        let _ = writer.await;
    });
    switching(version_name)
}

/// The streams a request needs, by type.
pub fn expected(params: &StreamParams, version: Version) -> Vec<&'static str> {
    let mut want = vec!["error"];
    if params.stdin {
        want.push("stdin");
    }
    if params.stdout {
        want.push("stdout");
    }
    if params.stderr && !params.tty {
        want.push("stderr");
    }
    if params.tty && version >= Version::V3 {
        want.push("resize");
    }
    want
}

/// Resize events: JSON objects, one after the other, across frames.
#[derive(Debug, Default)]
pub struct ResizeReader {
    buf: Vec<u8>,
}

impl ResizeReader {
    /// Adds bytes; returns the sizes (width, height) they complete.
    pub fn feed(&mut self, data: &[u8]) -> Vec<(u16, u16)> {
        self.buf.extend_from_slice(data);
        let mut sizes = Vec::new();
        let mut consumed = 0;
        let mut values =
            serde_json::Deserializer::from_slice(&self.buf).into_iter::<serde_json::Value>();
        while let Some(Ok(v)) = values.next() {
            consumed = values.byte_offset();
            if let Ok(bytes) = serde_json::to_vec(&v)
                && let Some(size) = channel::parse_resize(&bytes)
            {
                sizes.push(size);
            }
        }
        self.buf.drain(..consumed);
        sizes
    }
}

async fn run(session: Session, mut incoming: ByteStream, out: mpsc::Sender<Vec<u8>>) {
    let Session {
        state,
        kind,
        container_id,
        params,
        version,
    } = session;
    let mut reader = spdy::Reader::new();
    let mut writer = spdy::Writer::new();
    let want = expected(&params, version);
    let mut streams: HashMap<&'static str, u32> = HashMap::new();
    // data that came before the process ran (stdin typed early)
    let mut early: Vec<Frame> = Vec::new();
    let deadline = tokio::time::Instant::now() + STREAMS_TIMEOUT;
    while want.iter().any(|w| !streams.contains_key(w)) {
        let frame = match reader.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) => {
                match tokio::time::timeout_at(deadline, incoming.next()).await {
                    Ok(Some(bytes)) => reader.feed(&bytes),
                    _ => return,
                }
                continue;
            }
            Err(e) => {
                tracing::debug!(error = %e, "exec over SPDY: bad frame");
                return;
            }
        };
        match frame {
            Frame::SynStream {
                stream, headers, ..
            } => {
                let _ = out.send(writer.syn_reply(stream, &Headers::new())).await;
                let kind = spdy::header(&headers, "streamtype").unwrap_or("");
                if let Some(w) = want.iter().find(|w| **w == kind) {
                    streams.insert(w, stream);
                }
            }
            Frame::Ping(id) => {
                let _ = out.send(spdy::ping(id)).await;
            }
            Frame::GoAway => return,
            other => early.push(other),
        }
    }
    let id = |name: &str| streams.get(name).copied();
    let (error_id, stdin_id, resize_id) = (id("error"), id("stdin"), id("resize"));
    let (stdout_id, stderr_id) = (id("stdout"), id("stderr"));

    let p = params.clone();
    let cid = container_id.clone();
    let started = state
        .blocking(move |engine| super::stream::start(engine, kind, &cid, &p))
        .await
        .unwrap_or_else(|f| Err(f.message));
    let (exec_id, attached) = match started {
        Ok(pair) => pair,
        Err(message) => {
            end(
                &out,
                version,
                &channel::error_status(&message),
                error_id,
                &[stdout_id, stderr_id],
            )
            .await;
            return;
        }
    };
    let tty = attached.tty;
    let mon = match attached
        .socket
        .set_nonblocking(true)
        .and_then(|()| tokio::net::UnixStream::from_std(attached.socket))
    {
        Ok(m) => m,
        Err(e) => {
            let status = channel::error_status(&format!("the stream's socket: {e}"));
            end(&out, version, &status, error_id, &[stdout_id, stderr_id]).await;
            return;
        }
    };
    let (mut mr, mut mw) = mon.into_split();

    // client to process: stdin, resize, pings
    let (input_out, resize_state) = (out.clone(), Arc::clone(&state));
    let (resize_cid, resize_eid) = (container_id.clone(), exec_id.clone());
    let input = tokio::spawn(async move {
        let mut resizes = ResizeReader::default();
        let mut stdin_open = true;
        let mut pending = early;
        loop {
            let frame = if !pending.is_empty() {
                pending.remove(0)
            } else {
                match reader.next_frame() {
                    Ok(Some(f)) => f,
                    Ok(None) => match incoming.next().await {
                        Some(bytes) => {
                            reader.feed(&bytes);
                            continue;
                        }
                        None => break,
                    },
                    Err(_) => break,
                }
            };
            match frame {
                Frame::Data {
                    stream,
                    flags,
                    data,
                } if Some(stream) == stdin_id => {
                    if stdin_open && !data.is_empty() {
                        stdin_open = mw.write_all(&data).await.is_ok();
                    }
                    if flags & FLAG_FIN != 0 && stdin_open {
                        stdin_open = false;
                        let _ = mw.shutdown().await;
                    }
                }
                Frame::Data { stream, data, .. } if Some(stream) == resize_id => {
                    for (width, height) in resizes.feed(&data) {
                        let (cid, eid) = (resize_cid.clone(), resize_eid.clone());
                        let _ = resize_state
                            .blocking(move |engine| match (kind, eid) {
                                (Kind::Exec, Some(eid)) => engine.exec_resize(&eid, height, width),
                                _ => engine.resize(&cid, height, width),
                            })
                            .await;
                    }
                }
                Frame::RstStream { stream, .. } if Some(stream) == stdin_id && stdin_open => {
                    stdin_open = false;
                    let _ = mw.shutdown().await;
                }
                Frame::Ping(id) => {
                    let _ = input_out.send(spdy::ping(id)).await;
                }
                Frame::GoAway => break,
                _ => {}
            }
        }
        if stdin_open {
            let _ = mw.shutdown().await;
        }
    });

    // process to client
    let mut frames = FrameReader::default();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match mr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for (which, data) in frames.feed(&buf[..n]) {
            let target = match which {
                Out::Stderr if !tty => stderr_id,
                _ => stdout_id,
            };
            if let Some(s) = target {
                let _ = out.send(spdy::data(s, 0, &data)).await;
            }
        }
    }
    input.abort();
    let status = match (kind, exec_id) {
        (Kind::Exec, Some(eid)) => super::stream::exit_status(&state, &eid, &params.command).await,
        _ => channel::exit_status(&[], 0),
    };
    end(&out, version, &status, error_id, &[stdout_id, stderr_id]).await;
}

/// Closes the output streams, then sends the status and closes the error
/// stream.
async fn end(
    out: &mpsc::Sender<Vec<u8>>,
    version: Version,
    status: &serde_json::Value,
    error_id: Option<u32>,
    outputs: &[Option<u32>],
) {
    for s in outputs.iter().flatten() {
        let _ = out.send(spdy::data(*s, FLAG_FIN, &[])).await;
    }
    if let Some(e) = error_id {
        if let Some(frame) = channel::final_error(version, status) {
            // the channel form's first byte is the channel: SPDY has streams
            let _ = out
                .send(spdy::data(e, 0, frame.get(1..).unwrap_or(&[])))
                .await;
        }
        let _ = out.send(spdy::data(e, FLAG_FIN, &[])).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(stdin: bool, stdout: bool, stderr: bool, tty: bool) -> StreamParams {
        StreamParams {
            command: vec!["sh".into()],
            stdin,
            stdout,
            stderr,
            tty,
        }
    }

    #[test]
    fn the_streams_waited_for_follow_the_request() {
        assert_eq!(
            expected(&params(true, true, true, false), Version::V4),
            vec!["error", "stdin", "stdout", "stderr"]
        );
        assert_eq!(
            expected(&params(true, true, true, true), Version::V4),
            vec!["error", "stdin", "stdout", "resize"]
        );
        assert_eq!(
            expected(&params(false, true, false, true), Version::V2),
            vec!["error", "stdout"]
        );
    }

    #[test]
    fn resize_events_are_read_across_frames() {
        let mut r = ResizeReader::default();
        assert_eq!(r.feed(br#"{"Width":80,"He"#), vec![]);
        assert_eq!(
            r.feed(b"ight\":24}\n{\"Width\":100,\"Height\":30}\n"),
            vec![(80, 24), (100, 30)]
        );
        assert_eq!(r.feed(b""), vec![]);
    }
}
