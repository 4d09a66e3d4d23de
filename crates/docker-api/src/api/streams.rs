//! The streaming container endpoints: hijacked attach (and exec) streams,
//! logs and stats.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use super::Pending;
use super::{Shared, blocking, engine_for};
use crate::error::engine_error;
use crate::http::*;
use crate::shapes;

pub(super) async fn attach(
    shared: Arc<Shared>,
    mut req: Request<Incoming>,
    id: &str,
) -> Response<Body> {
    let q = query(&req);
    let flag = |k: &str| truthy(q.get(k));
    let (stdin, stdout, stderr) = (flag("stdin"), flag("stdout"), flag("stderr"));
    if !flag("stream") && !flag("logs") {
        return error(
            StatusCode::BAD_REQUEST,
            "at least one of stream or logs must be set",
        );
    }
    let key = id.to_string();
    let c = match blocking(&shared.root, move |e| e.container(&key)).await {
        Ok(c) => c,
        Err(e) => return engine_error(e),
    };
    let tty = c.record.tty;
    let full_id = c.record.id.clone();
    let (tx, rx) = oneshot::channel();
    if c.state.is_active() {
        let fid = full_id.clone();
        match blocking(&shared.root, move |e| {
            Ok(e.attach(&fid, stdin, stdout, stderr))
        })
        .await
        {
            Ok(Some(s)) => {
                let _ = tx.send(s);
            }
            _ => return error(StatusCode::CONFLICT, "the container is not running"),
        }
    } else if matches!(
        c.state.status,
        berth_engine::Status::Created | berth_engine::Status::Exited
    ) {
        if let Ok(mut p) = shared.pending.lock() {
            p.entry(full_id.clone()).or_default().push(Pending {
                stdin,
                stdout,
                stderr,
                tx,
            });
        }
    } else {
        return error(
            StatusCode::CONFLICT,
            "You cannot attach to a stopped container, start it first",
        );
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    let upgrade_requested = req.headers().get(hyper::header::UPGRADE).is_some();
    if !upgrade_requested {
        return error(
            StatusCode::BAD_REQUEST,
            "not supported yet: attach without Upgrade: tcp",
        );
    }
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!("attach upgrade: {e}");
                return;
            }
        };
        let Ok(mon) = rx.await else {
            // the container never started: close the stream
            return;
        };
        relay(TokioIo::new(upgraded), mon, tty).await;
    });
    switching_protocols(tty)
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
/// monitor closes (the container exited).
pub(super) async fn relay<T>(client: T, mon: std::os::unix::net::UnixStream, tty: bool)
where
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
        if tty {
            // the monitor frames everything; a terminal stream is raw
            let mut hdr = [0u8; 8];
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                if mr.read_exact(&mut hdr).await.is_err() {
                    break;
                }
                let mut left = u32::from_be_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]) as usize;
                while left > 0 {
                    let n = left.min(buf.len());
                    if mr.read_exact(&mut buf[..n]).await.is_err() {
                        let _ = cw.shutdown().await;
                        return;
                    }
                    if cw.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                    left -= n;
                }
                let _ = cw.flush().await;
            }
        } else {
            let _ = tokio::io::copy(&mut mr, &mut cw).await;
        }
        let _ = cw.shutdown().await;
    };
    let to = async move {
        let _ = tokio::io::copy(&mut cr, &mut mw).await;
        let _ = mw.shutdown().await;
        // keep the stream open until the output side ends
        std::future::pending::<()>().await;
    };
    tokio::select! {
        () = from => {}
        () = to => {}
    }
}

pub(super) async fn logs(
    root: &std::path::Path,
    id: &str,
    q: &HashMap<String, String>,
) -> Response<Body> {
    let flag = |k: &str| truthy(q.get(k));
    let mut opts = berth_engine::logs::LogOptions {
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
            match berth_engine::logs::parse_time(v) {
                Ok(t) => *slot = Some(t),
                Err(e) => return engine_error(e),
            }
        }
    }
    if let Some(t) = q.get("tail").filter(|t| !t.is_empty() && *t != "all") {
        match t.parse::<usize>() {
            Ok(n) => opts.tail = Some(n),
            Err(_) => return error(StatusCode::BAD_REQUEST, format!("invalid tail value: {t}")),
        }
    }
    let timestamps = flag("timestamps");
    let key = id.to_string();
    let c = match blocking(root, move |e| e.container(&key)).await {
        Ok(c) => c,
        Err(e) => return engine_error(e),
    };
    let tty = c.record.tty;
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let root = root.to_path_buf();
    let id = c.record.id.clone();
    tokio::task::spawn_blocking(move || {
        let Ok(engine) = engine_for(&root) else {
            return;
        };
        let _ = engine.logs(&id, &opts, |e| {
            let mut payload = Vec::with_capacity(e.line.len() + 32);
            if timestamps {
                payload.extend_from_slice(e.time.as_bytes());
                payload.push(b' ');
            }
            payload.extend_from_slice(&e.line);
            let chunk = if tty {
                payload
            } else {
                let mut f = Vec::with_capacity(payload.len() + 8);
                f.push(e.stream);
                f.extend_from_slice(&[0, 0, 0]);
                f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
                f.extend_from_slice(&payload);
                f
            };
            tx.blocking_send(Bytes::from(chunk)).is_ok()
        });
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
    tokio::task::spawn_blocking(move || {
        let Ok(engine) = engine_for(&root) else {
            return;
        };
        let mut pre = if one_shot && !stream {
            None
        } else {
            let first = engine.stats_sample(&cid).ok();
            if !stream {
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
            first
        };
        loop {
            let Ok(cur) = engine.stats_sample(&cid) else {
                return;
            };
            let doc = shapes::stats(&name, &cid, pre.as_ref(), &cur);
            if tx.blocking_send(Bytes::from(format!("{doc}\n"))).is_err() || !stream {
                return;
            }
            pre = Some(cur);
            // a second between documents, ending early when the client goes
            for _ in 0..10 {
                if tx.is_closed() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
    });
    streaming(Some("application/json"), rx)
}
