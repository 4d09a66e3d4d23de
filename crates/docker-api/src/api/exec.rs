//! Exec endpoints: create, start (hijacked), resize, inspect.

use std::path::PathBuf;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::AsyncWriteExt;

use super::streams::{plain_output, relay, switching_protocols};
use super::{Shared, blocking};
use crate::error::{bad_request, engine_error};
use crate::http::*;
use crate::shapes;

pub(super) async fn route(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    method: &Method,
    parts: &[&str],
) -> Response<Body> {
    let root = shared.root.clone();
    match (method.as_str(), parts) {
        ("POST", ["containers", id, "exec"]) => {
            let body: crate::model::exec::ExecBody = match read_body(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let rec = match body.into_record() {
                Ok(r) => r,
                Err(m) => return bad_request(m),
            };
            let id = id.to_string();
            match blocking(&root, move |e| e.exec_create(&id, rec)).await {
                Ok(eid) => json_resp(StatusCode::CREATED, &json!({"Id": eid})),
                Err(e) => engine_error(e),
            }
        }
        ("POST", ["exec", eid, "start"]) => exec_start(&root, req, eid).await,
        ("POST", ["exec", eid, "resize"]) => {
            let (h, w) = match terminal_size(&query(&req)) {
                Ok(s) => s,
                Err(m) => return bad_request(m),
            };
            let eid = eid.to_string();
            match blocking(&root, move |e| e.exec_resize(&eid, h, w)).await {
                Ok(()) => empty(StatusCode::OK),
                Err(e) => engine_error(e),
            }
        }
        ("GET", ["exec", eid, "json"]) => {
            let eid = eid.to_string();
            match blocking(&root, move |e| e.exec_inspect(&eid)).await {
                Ok(r) => json_resp(StatusCode::OK, &shapes::exec_inspect(&r)),
                Err(e) => engine_error(e),
            }
        }
        _ => not_found(),
    }
}

/// `POST /exec/{id}/start`: detached, or hijacked like attach. A process
/// that cannot be started still gets the 101; its error goes down the
/// stream and its exit code (126/127) into the exec's record, as dockerd
/// does.
async fn exec_start(
    root: &std::path::Path,
    mut req: Request<Incoming>,
    eid: &str,
) -> Response<Body> {
    let upgrade_requested = req.headers().get(hyper::header::UPGRADE).is_some();
    let on_upgrade = hyper::upgrade::on(&mut req);
    let body: crate::model::exec::ExecStartBody = match read_body(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let detach = body.detach.unwrap_or(false);
    let eid = eid.to_string();
    let e2 = eid.clone();
    let rec = match blocking(root, move |e| e.exec_inspect(&e2)).await {
        Ok(r) => r,
        Err(e) => return engine_error(e),
    };
    // the stream's framing follows the start request, as dockerd's
    let tty = body.tty.unwrap_or(rec.tty);
    let keys = if rec.detach_keys.is_empty() {
        crate::detach::DEFAULT.to_vec()
    } else {
        crate::detach::parse_detach_keys(&rec.detach_keys).unwrap_or_default()
    };
    let (stdin, stdout, stderr) = (rec.attach_stdin, rec.attach_stdout, rec.attach_stderr);
    // docker's errors before anything runs
    if rec.started {
        return error(
            StatusCode::CONFLICT,
            format!("Error: Exec command {eid} has already run"),
        );
    }
    let cid = rec.container_id.clone();
    match blocking(root, move |e| e.container(&cid)).await {
        Ok(c) if c.state.status == berth_engine::Status::Running && c.state.is_active() => {}
        Ok(c) => {
            return error(
                StatusCode::CONFLICT,
                format!("Container {} is not running", c.record.id),
            );
        }
        Err(e) => return engine_error(e),
    }
    let start = move |root: PathBuf| async move {
        blocking(&root, move |e| {
            let mut sock = None;
            let r = e.exec_start(&eid, || {
                if !detach {
                    sock = e.exec_attach(&eid, stdin, stdout, stderr);
                }
                Ok(())
            });
            Ok((r, sock))
        })
        .await
    };
    if detach {
        return match start(root.to_path_buf()).await {
            Ok((Ok(()), _)) => empty(StatusCode::OK),
            Ok((Err(e), _)) | Err(e) => engine_error(e),
        };
    }
    let root = root.to_path_buf();
    if !upgrade_requested {
        // dockerd's answer without a hijack: the output as a 200 body
        return plain_output(tty, Vec::new(), async move {
            match start(root).await {
                Ok((Ok(()), sock)) => (Vec::new(), sock.map(|s| s.socket)),
                Ok((Err(e), _)) | Err(e) => (start_failure(e, tty), None),
            }
        });
    }
    // The process starts once the client has the 101: output sent in the
    // same packet as the response head is lost by clients that read the
    // head through a buffer (docker-py).
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let mut io = TokioIo::new(upgraded);
        let (result, sock) = match start(root).await {
            Ok(v) => v,
            Err(e) => (Err(e), None),
        };
        if let Err(e) = result {
            let _ = io.write_all(&start_failure(e, tty)).await;
            let _ = io.shutdown().await;
            return;
        }
        match sock {
            Some(s) => relay(io, s.socket, tty, crate::detach::Detector::new(keys)).await,
            None => {
                let _ = io.shutdown().await;
            }
        }
    });
    switching_protocols(tty)
}

/// An exec that could not start, as dockerd words it on the stream (on
/// stderr without a terminal).
fn start_failure(e: berth_engine::Error, tty: bool) -> Vec<u8> {
    let text = match e {
        berth_engine::Error::Start(m) => format!("{m}\r\n"),
        e => format!("OCI runtime exec failed: {e}\r\n"),
    };
    let mut out = Vec::new();
    if !tty {
        out.extend_from_slice(&[2, 0, 0, 0]);
        out.extend_from_slice(&(text.len() as u32).to_be_bytes());
    }
    out.extend_from_slice(text.as_bytes());
    out
}
