//! The streaming container endpoints: hijacked attach (and exec) streams,
//! logs, stats and wait. Each follower is a task on the runtime waiting on
//! file descriptors (the monitor's sockets, an inotify watch, a timer): no
//! thread per client, and a client that goes away drops its task and its
//! descriptors at once.

use std::collections::HashMap;
use std::sync::Arc;

use berth_engine::WaitCondition;
use berth_engine::logs::{Entry, LogOptions};
use berth_engine::streams::{FrameReader, WaitStep};
use berth_engine::watch::FileWatch;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use super::Pending;
use super::{Shared, blocking};
use crate::detach::{self, Detector};
use crate::error::{bad_request, engine_error};
use crate::http::*;
use crate::shapes;

/// How long an upgraded attach waits before replaying logs (see there).
const REPLAY_AFTER_UPGRADE: std::time::Duration = std::time::Duration::from_millis(30);

/// A piece of output as the client gets it: raw with a terminal, a
/// multiplexed frame without.
fn frame(stream: u8, data: &[u8], tty: bool) -> Vec<u8> {
    if tty {
        return data.to_vec();
    }
    let mut f = Vec::with_capacity(data.len() + 8);
    f.push(stream);
    f.extend_from_slice(&[0, 0, 0]);
    f.extend_from_slice(&(data.len() as u32).to_be_bytes());
    f.extend_from_slice(data);
    f
}

fn entry_bytes(e: &Entry, tty: bool, timestamps: bool) -> Vec<u8> {
    let mut payload = Vec::with_capacity(e.line.len() + 32);
    if timestamps {
        payload.extend_from_slice(e.time.as_bytes());
        payload.push(b' ');
    }
    payload.extend_from_slice(&e.line);
    frame(e.stream, &payload, tty)
}

/// The detach keys of a request (`detachKeys`; docker's default).
fn detach_keys(q: &HashMap<String, String>) -> Result<Vec<u8>, String> {
    match q.get("detachKeys").filter(|k| !k.is_empty()) {
        Some(k) => detach::parse_detach_keys(k),
        None => Ok(detach::DEFAULT.to_vec()),
    }
}

/// `POST /containers/{id}/attach`: the log so far (`logs=1`), then the
/// live streams (`stream=1`; a container not running yet is attached when
/// it starts). Detach keys typed on stdin end the attachment.
pub(super) async fn attach(
    shared: Arc<Shared>,
    mut req: Request<Incoming>,
    id: &str,
) -> Response<Body> {
    let q = query(&req);
    let flag = |k: &str| truthy(q.get(k));
    let (stdin, stdout, stderr) = (flag("stdin"), flag("stdout"), flag("stderr"));
    let (stream, logs) = (flag("stream"), flag("logs"));
    let keys = match detach_keys(&q) {
        Ok(k) => k,
        Err(m) => return bad_request(m),
    };
    let key = id.to_string();
    let opts = LogOptions {
        stdout,
        stderr,
        ..Default::default()
    };
    let want_logs = logs && (stdout || stderr);
    let r = blocking(&shared.root, move |e| {
        if want_logs {
            let (c, entries, _) = e.log_cursor(&key, &opts)?;
            Ok((c, entries))
        } else {
            Ok((e.container(&key)?, Vec::new()))
        }
    })
    .await;
    let (c, replay) = match r {
        Ok(v) => v,
        Err(e) => return engine_error(e),
    };
    let tty = c.record.tty;
    let full_id = c.record.id.clone();
    let (tx, rx) = oneshot::channel();
    if stream {
        let live = if c.state.is_active() {
            let fid = full_id.clone();
            blocking(&shared.root, move |e| {
                Ok(e.attach(&fid, stdin, stdout, stderr))
            })
            .await
            .ok()
            .flatten()
        } else {
            None
        };
        match live {
            Some(s) => {
                let _ = tx.send(s.socket);
            }
            // not running (or it just exited): as docker, output streams
            // wait for the next start; stdin alone has nothing to wait for
            None if !stdout && !stderr => drop(tx),
            None if !matches!(
                c.state.status,
                berth_engine::Status::Removing | berth_engine::Status::Dead
            ) =>
            {
                if let Ok(mut p) = shared.pending.lock() {
                    p.entry(full_id.clone()).or_default().push(Pending {
                        stdin,
                        stdout,
                        stderr,
                        tx,
                    });
                }
            }
            None => {
                return error(
                    StatusCode::CONFLICT,
                    "You cannot attach to a stopped container, start it first",
                );
            }
        }
    }
    let out: Vec<u8> = replay
        .iter()
        .flat_map(|e| entry_bytes(e, tty, false))
        .collect();
    let upgrade_requested = req.headers().get(hyper::header::UPGRADE).is_some();
    if !upgrade_requested {
        // no hijack: the output as a plain body (stdin cannot be sent)
        return plain_output(tty, out, async move { (Vec::new(), rx.await.ok()) });
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!("attach upgrade: {e}");
                return;
            }
        };
        let mut io = TokioIo::new(upgraded);
        if !out.is_empty() {
            // docker-py reads the 101's headers through a buffered reader
            // and the stream from the raw socket: frames that arrive with
            // the headers land in that buffer and are lost to it (attach
            // logs=1 gave b''). The replay waits until the client has
            // read the headers, as dockerd's (read from its log driver)
            // does in practice.
            tokio::time::sleep(REPLAY_AFTER_UPGRADE).await;
            if io.write_all(&out).await.is_err() {
                return;
            }
        }
        if !stream {
            let _ = io.shutdown().await;
            return;
        }
        let Ok(mon) = rx.await else {
            // the container never started: close the stream
            let _ = io.shutdown().await;
            return;
        };
        relay(io, mon, tty, Detector::new(keys)).await;
    });
    switching_protocols(tty)
}

/// Output as a plain (not hijacked) response body, as dockerd answers an
/// attach or exec start without `Upgrade`: `first` at once, then what
/// `source` gives (more bytes, and the monitor's socket whose frames follow
/// as docker's frames, raw with a terminal) until the process ends or the
/// client leaves. Nothing can be sent to the process's stdin this way.
pub(super) fn plain_output<F>(tty: bool, first: Vec<u8>, source: F) -> Response<Body>
where
    F: std::future::Future<Output = (Vec<u8>, Option<std::os::unix::net::UnixStream>)>
        + Send
        + 'static,
{
    let (btx, brx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        if !first.is_empty() && btx.send(Bytes::from(first)).await.is_err() {
            return;
        }
        let (more, mon) = tokio::select! {
            () = btx.closed() => return,
            v = source => v,
        };
        if !more.is_empty() && btx.send(Bytes::from(more)).await.is_err() {
            return;
        }
        let Some(mon) = mon else {
            return;
        };
        if mon.set_nonblocking(true).is_err() {
            return;
        }
        let Ok(mut mon) = tokio::net::UnixStream::from_std(mon) else {
            return;
        };
        let mut frames = FrameReader::default();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            tokio::select! {
                () = btx.closed() => return,
                n = mon.read(&mut buf) => {
                    let n = match n { Ok(0) | Err(_) => return, Ok(n) => n };
                    for (s, d) in frames.feed(&buf[..n]) {
                        if btx.send(Bytes::from(frame(s.number(), &d, tty))).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    });
    streaming(
        Some(if tty {
            "application/vnd.docker.raw-stream"
        } else {
            "application/vnd.docker.multiplexed-stream"
        }),
        brx,
    )
}

/// The 101 that hands the connection over to a raw (terminal) or
/// multiplexed stream.
pub(super) fn switching_protocols(tty: bool) -> Response<Body> {
    let mut r = empty(StatusCode::SWITCHING_PROTOCOLS);
    let h = r.headers_mut();
    h.insert(
        hyper::header::CONNECTION,
        HeaderValue::from_static("Upgrade"),
    );
    h.insert(hyper::header::UPGRADE, HeaderValue::from_static("tcp"));
    h.insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static(if tty {
            "application/vnd.docker.raw-stream"
        } else {
            "application/vnd.docker.multiplexed-stream"
        }),
    );
    r
}

/// Moves bytes between a hijacked client connection and the monitor.
/// The client's end-of-input ends stdin only; the stream ends when the
/// monitor closes (the process exited) or the detach keys are typed.
pub(super) async fn relay<T>(
    client: T,
    mon: std::os::unix::net::UnixStream,
    tty: bool,
    mut detach: Detector,
) where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if mon.set_nonblocking(true).is_err() {
        return;
    }
    let Ok(mon) = tokio::net::UnixStream::from_std(mon) else {
        return;
    };
    let (mut mr, mut mw) = mon.into_split();
    let (mut cr, mut cw) = tokio::io::split(client);
    let from = async move {
        // the monitor frames everything; a terminal stream is raw
        let mut frames = FrameReader::default();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match mr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if !tty {
                if cw.write_all(&buf[..n]).await.is_err() {
                    return;
                }
                continue;
            }
            for (_, d) in frames.feed(&buf[..n]) {
                if cw.write_all(&d).await.is_err() {
                    return;
                }
            }
            let _ = cw.flush().await;
        }
        let _ = cw.shutdown().await;
    };
    let to = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let (pass, detached) = detach.feed(&buf[..n]);
            if !pass.is_empty() && mw.write_all(&pass).await.is_err() {
                break;
            }
            if detached {
                // the process keeps running; the client is let go
                return;
            }
        }
        let _ = mw.shutdown().await;
        // keep the stream open until the output side ends
        std::future::pending::<()>().await;
    };
    tokio::select! {
        () = from => {}
        () = to => {}
    }
}

/// `GET /containers/{id}/logs`.
pub(super) async fn logs(
    root: &std::path::Path,
    id: &str,
    q: &HashMap<String, String>,
) -> Response<Body> {
    let flag = |k: &str| truthy(q.get(k));
    let mut opts = LogOptions {
        stdout: flag("stdout"),
        stderr: flag("stderr"),
        follow: flag("follow"),
        ..Default::default()
    };
    if !opts.stdout && !opts.stderr {
        return error(
            StatusCode::BAD_REQUEST,
            "Bad parameters: you must choose at least one stream",
        );
    }
    for (k, slot) in [("since", &mut opts.since), ("until", &mut opts.until)] {
        if let Some(v) = q.get(k).filter(|v| !v.is_empty() && *v != "0") {
            match crate::syntax::parse_timestamp(v, now_ns()) {
                Ok(t) => *slot = Some(t),
                Err(m) => return bad_request(format!("invalid value for {k}: {m}")),
            }
        }
    }
    if let Some(t) = q.get("tail").filter(|t| !t.is_empty() && *t != "all") {
        match t.parse::<i64>() {
            Ok(n) if n >= 0 => opts.tail = Some(n as usize),
            // docker: a negative tail is everything
            Ok(_) => {}
            Err(_) => return bad_request(format!("invalid tail value: {t}")),
        }
    }
    let timestamps = flag("timestamps");
    let key = id.to_string();
    let follow = opts.follow;
    let r = blocking(root, move |e| {
        let (c, first, cursor) = e.log_cursor(&key, &opts)?;
        let (watch, exit) = if follow && c.state.is_active() {
            (FileWatch::new(&c.dir).ok(), e.exit_watch(&c.record.id))
        } else {
            (None, None)
        };
        Ok((c, first, cursor, watch, exit))
    })
    .await;
    let (c, first, mut cursor, watch, exit) = match r {
        Ok(v) => v,
        Err(e) => return engine_error(e),
    };
    let tty = c.record.tty;
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        for e in &first {
            if tx
                .send(Bytes::from(entry_bytes(e, tty, timestamps)))
                .await
                .is_err()
            {
                return;
            }
        }
        let (Some(watch), Some(exit)) = (watch, exit) else {
            return;
        };
        let Some(watch) = async_watch(watch) else {
            return;
        };
        if exit.set_nonblocking(true).is_err() {
            return;
        }
        let Ok(exit) = tokio::net::UnixStream::from_std(exit) else {
            return;
        };
        loop {
            let done = tokio::select! {
                () = tx.closed() => return,
                g = watch.readable() => {
                    if let Ok(mut g) = g {
                        g.get_inner().drain();
                        g.clear_ready();
                    }
                    false
                }
                _ = exit.readable() => true,
            };
            for e in cursor.read_new() {
                if tx
                    .send(Bytes::from(entry_bytes(&e, tty, timestamps)))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            if done {
                return;
            }
        }
    });
    streaming(None, rx)
}

/// `GET /containers/{id}/stats`: one document (`stream=false`, with a
/// second sample half a second later so CPU % can be computed; none with
/// `one-shot`), or one per second until the client goes.
pub(super) async fn stats(
    root: &std::path::Path,
    id: &str,
    q: &HashMap<String, String>,
) -> Response<Body> {
    let stream = q.get("stream").is_none_or(|v| truthy(Some(v)));
    let one_shot = truthy(q.get("one-shot"));
    let key = id.to_string();
    let c = match blocking(root, move |e| e.container(&key)).await {
        Ok(c) => c,
        Err(e) => return engine_error(e),
    };
    let (name, cid) = (c.record.name.clone(), c.record.id.clone());
    let (tx, rx) = mpsc::channel::<Bytes>(2);
    let root = root.to_path_buf();
    tokio::spawn(async move {
        let sample = |root: std::path::PathBuf, cid: String| async move {
            blocking(&root, move |e| e.stats_sample(&cid)).await.ok()
        };
        let mut pre = if one_shot && !stream {
            None
        } else {
            let first = sample(root.clone(), cid.clone()).await;
            if !stream {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            first
        };
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        tick.tick().await;
        loop {
            let Some(cur) = sample(root.clone(), cid.clone()).await else {
                return;
            };
            let doc = shapes::stats(&name, &cid, pre.as_ref(), &cur);
            if tx.send(Bytes::from(format!("{doc}\n"))).await.is_err() || !stream {
                return;
            }
            pre = Some(cur);
            tokio::select! {
                () = tx.closed() => return,
                _ = tick.tick() => {}
            }
        }
    });
    streaming(Some("application/json"), rx)
}

/// `POST /containers/{id}/wait`: the headers go at once; the body when
/// the condition holds (woken by the monitor's exit socket or the
/// container's directory changing).
pub(super) async fn wait(
    root: &std::path::Path,
    id: &str,
    q: &HashMap<String, String>,
) -> Response<Body> {
    let cond = WaitCondition::parse(q.get("condition").map(String::as_str).unwrap_or(""));
    // the container must exist before the headers go
    let key = id.to_string();
    let initial = match blocking(root, move |e| e.container(&key)).await {
        Ok(c) => c,
        Err(e) => return engine_error(e),
    };
    let (tx, rx) = mpsc::channel::<Bytes>(1);
    let root = root.to_path_buf();
    tokio::spawn(async move {
        let dir = initial.dir.clone();
        let parent = dir
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default();
        // made at the first step that has to wait (most waits of an
        // exited container never need them)
        let mut watches: Option<(Option<AsyncWatch>, Option<AsyncWatch>)> = None;
        let mut code: Option<i32> = None;
        let result = loop {
            let step = {
                let (c, root) = (initial.clone(), root.clone());
                blocking(&root, move |e| e.wait_step(&c, cond)).await
            };
            match step {
                Err(e) => break Err(e.to_string()),
                Ok(WaitStep::Done(c)) => break Ok(code.unwrap_or(c)),
                Ok(WaitStep::Exit(s)) => {
                    let got = async {
                        s.set_nonblocking(true).ok()?;
                        let mut s = tokio::net::UnixStream::from_std(s).ok()?;
                        let mut line = String::new();
                        s.read_to_string(&mut line).await.ok()?;
                        line.trim().parse::<i32>().ok()
                    };
                    let c = tokio::select! {
                        () = tx.closed() => return,
                        c = got => c,
                    };
                    if cond != WaitCondition::Removed {
                        break Ok(c.unwrap_or(initial.state.exit_code));
                    }
                    code = code.or(c);
                    continue;
                }
                Ok(WaitStep::Pending) => {}
            }
            let Some((dir_watch, parent_watch)) = &watches else {
                watches = Some((
                    FileWatch::new(&dir).ok().and_then(async_watch),
                    FileWatch::new(&parent).ok().and_then(async_watch),
                ));
                // look again: a change before the watches began is not missed
                continue;
            };
            let woken = async {
                match (dir_watch, parent_watch) {
                    (Some(d), Some(p)) => tokio::select! {
                        g = d.readable() => if let Ok(mut g) = g { g.get_inner().drain(); g.clear_ready(); },
                        g = p.readable() => if let Ok(mut g) = g { g.get_inner().drain(); g.clear_ready(); },
                    },
                    _ => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
                }
            };
            tokio::select! {
                () = tx.closed() => return,
                () = woken => {}
                // a change the watches cannot see (a removed directory)
                () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            }
        };
        let body = match result {
            Ok(code) => json!({"Error": null, "StatusCode": code}),
            Err(e) => json!({"Error": {"Message": e}, "StatusCode": -1}),
        };
        let _ = tx.send(Bytes::from(format!("{body}\n"))).await;
    });
    streaming(Some("application/json"), rx)
}
