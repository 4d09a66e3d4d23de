//! Container endpoints: create, list, inspect, the lifecycle, update,
//! changes, export, archives, top, prune and removal.

use std::collections::HashMap;
use std::sync::Arc;

use berth_engine::Error as EngineError;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::streams::{attach, logs, stats, wait};
use super::{Shared, blocking, engine_for};
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
        ("POST", ["containers", "create"]) => create(&root, req).await,
        ("GET", ["containers", "json"]) => {
            let minor = api_minor(&req);
            list(&root, &query(&req), minor).await
        }
        ("GET", ["containers", id, "json"]) => {
            let id = id.to_string();
            let minor = api_minor(&req);
            match blocking(&root, move |e| e.container(&id)).await {
                Ok(c) => json_resp(
                    StatusCode::OK,
                    &shapes::container::for_api(shapes::inspect(&c), &c, minor),
                ),
                Err(e) => engine_error(e),
            }
        }
        ("POST", ["containers", id, "start"]) => start(&shared, id).await,
        ("POST", ["containers", id, "stop"]) => {
            let q = query(&req);
            let t = match q.get("t").or(q.get("timeout")).filter(|t| !t.is_empty()) {
                None => None,
                Some(t) => match t.parse::<i64>() {
                    Ok(t) => Some(t),
                    Err(_) => return bad_request(format!("invalid value for t: {t:?}")),
                },
            };
            let id = id.to_string();
            match blocking(&root, move |e| e.stop(&id, t)).await {
                Ok(()) => empty(StatusCode::NO_CONTENT),
                Err(e) => engine_error(e),
            }
        }
        ("POST", ["containers", id, "restart"]) => {
            let q = query(&req);
            let t = match q.get("t").filter(|t| !t.is_empty()) {
                None => None,
                Some(t) => match t.parse::<i64>() {
                    Ok(t) => Some(t),
                    Err(_) => return bad_request(format!("invalid value for t: {t:?}")),
                },
            };
            // a restart runs to its end even when the client goes away
            // (as dockerd's): stopped and never started again would be worse
            let (shared, id) = (shared.clone(), id.to_string());
            tokio::spawn(async move { restart(&shared, &id, t).await })
                .await
                .unwrap_or_else(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e))
        }
        ("POST", ["containers", id, "kill"]) => {
            let sig = match query(&req).get("signal").filter(|s| !s.is_empty()) {
                None => None,
                Some(s) => match s.parse::<berth_engine::config::Signal>() {
                    Ok(s) => Some(s),
                    Err(e) => return bad_request(e),
                },
            };
            let id = id.to_string();
            match blocking(&root, move |e| e.kill(&id, sig)).await {
                Ok(()) => empty(StatusCode::NO_CONTENT),
                Err(e) => engine_error(e),
            }
        }
        ("POST", ["containers", id, "pause"]) => {
            let id = id.to_string();
            match blocking(&root, move |e| e.pause(&id)).await {
                Ok(()) => empty(StatusCode::NO_CONTENT),
                Err(e) => engine_error(e),
            }
        }
        ("POST", ["containers", id, "unpause"]) => {
            let id = id.to_string();
            match blocking(&root, move |e| e.unpause(&id)).await {
                Ok(()) => empty(StatusCode::NO_CONTENT),
                // dockerd 20.10 answers 500 to unpausing a container that is
                // not paused
                Err(EngineError::Conflict(m)) => error(StatusCode::INTERNAL_SERVER_ERROR, m),
                Err(e) => engine_error(e),
            }
        }
        ("POST", ["containers", id, "rename"]) => {
            let name = query(&req).get("name").cloned().unwrap_or_default();
            let id = id.to_string();
            match blocking(&root, move |e| e.rename(&id, &name)).await {
                Ok(()) => empty(StatusCode::NO_CONTENT),
                Err(e) => engine_error(e),
            }
        }
        ("POST", ["containers", id, "resize"]) => {
            let (h, w) = match terminal_size(&query(&req)) {
                Ok(s) => s,
                Err(m) => return bad_request(m),
            };
            let id = id.to_string();
            match blocking(&root, move |e| e.resize(&id, h, w)).await {
                Ok(()) => full(StatusCode::OK, "", Some("text/plain; charset=utf-8")),
                Err(e) => engine_error(e),
            }
        }
        ("POST", ["containers", id, "wait"]) => wait(&root, id, &query(&req)).await,
        ("POST", ["containers", id, "attach"]) => attach(shared.clone(), req, id).await,
        ("GET", ["containers", id, "logs"]) => logs(&root, id, &query(&req)).await,
        ("GET", ["containers", id, "top"]) => {
            top(&root, id, query(&req).get("ps_args").cloned()).await
        }
        ("POST", ["containers", id, "update"]) => {
            let body: crate::model::container::UpdateBody = match read_body(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let (res, restart) = match body.into_update() {
                Ok(u) => u,
                Err(m) => return bad_request(m),
            };
            let id = id.to_string();
            match blocking(&root, move |e| e.update(&id, &res, restart)).await {
                Ok(()) => json_resp(StatusCode::OK, &json!({"Warnings": null})),
                Err(e) => engine_error(e),
            }
        }
        ("GET", ["containers", id, "changes"]) => {
            let id = id.to_string();
            match blocking(&root, move |e| e.diff(&id)).await {
                // dockerd: null when nothing changed
                Ok(list) if list.is_empty() => json_resp(StatusCode::OK, &Value::Null),
                Ok(list) => {
                    let v: Vec<Value> = list
                        .iter()
                        .map(|c| json!({"Path": c.path, "Kind": c.kind}))
                        .collect();
                    json_resp(StatusCode::OK, &Value::Array(v))
                }
                Err(e) => engine_error(e),
            }
        }
        ("GET", ["containers", id, "export"]) => {
            let engine = match engine_for(&root) {
                Ok(e) => e,
                Err(e) => return engine_error(e),
            };
            let id = id.to_string();
            if let Err(e) = engine.container(&id) {
                return engine_error(e);
            }
            let (tx, rx) = mpsc::channel::<Bytes>(16);
            tokio::task::spawn_blocking(move || {
                if let Err(e) = engine.export(&id, crate::images_api::ChannelWriter(tx)) {
                    tracing::warn!("export {id}: {e}");
                }
            });
            streaming(Some("application/x-tar"), rx)
        }
        ("HEAD", ["containers", id, "archive"]) | ("GET", ["containers", id, "archive"]) => {
            let path = query(&req).get("path").cloned().unwrap_or_default();
            archive_get(&root, id, path, method == Method::HEAD).await
        }
        ("PUT", ["containers", id, "archive"]) => {
            let path = query(&req).get("path").cloned().unwrap_or_default();
            let reader = crate::images_api::BodyReader::new(req.into_body());
            let id = id.to_string();
            match blocking(&root, move |e| e.archive_put(&id, &path, reader, None)).await {
                Ok(()) => empty(StatusCode::OK),
                Err(e) => engine_error(e),
            }
        }
        ("DELETE", ["containers", id]) => {
            let q = query(&req);
            let force = truthy(q.get("force"));
            let volumes = truthy(q.get("v"));
            let id = id.to_string();
            match blocking(&root, move |e| e.remove(&id, force, volumes)).await {
                Ok(()) => empty(StatusCode::NO_CONTENT),
                Err(e) => engine_error(e),
            }
        }
        ("GET", ["containers", id, "stats"]) => stats(&root, id, &query(&req)).await,
        ("POST", ["containers", "prune"]) => {
            let f = match filters(&query(&req)) {
                Ok(f) => f,
                Err(m) => return bad_request(m),
            };
            let until = match until_filter(&f) {
                Ok(u) => u,
                Err(m) => return bad_request(m),
            };
            match blocking(&root, move |e| e.prune_containers(&f, until)).await {
                Ok((ids, bytes)) => json_resp(
                    StatusCode::OK,
                    &json!({"ContainersDeleted": if ids.is_empty() { Value::Null } else { json!(ids) },
                            "SpaceReclaimed": bytes}),
                ),
                Err(e) => engine_error(e),
            }
        }
        _ => not_found(),
    }
}

async fn create(root: &std::path::Path, req: Request<Incoming>) -> Response<Body> {
    let name = query(&req).get("name").cloned().filter(|n| !n.is_empty());
    let body: crate::model::container::CreateBody = match read_body(req).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let spec = match body.into_spec(name) {
        Ok(s) => s,
        Err(m) => return bad_request(m),
    };
    match blocking(root, move |e| e.create(&spec)).await {
        Ok(c) => json_resp(
            StatusCode::CREATED,
            &json!({"Id": c.id, "Warnings": c.warnings}),
        ),
        Err(e) => engine_error(e),
    }
}

async fn list(root: &std::path::Path, q: &HashMap<String, String>, minor: u32) -> Response<Body> {
    let all = truthy(q.get("all"));
    let limit = match q.get("limit").filter(|l| !l.is_empty()) {
        None => -1,
        Some(l) => match l.parse::<i64>() {
            Ok(n) => n,
            Err(_) => return bad_request(format!("invalid value for limit: {l:?}")),
        },
    };
    let f = match filters(q) {
        Ok(f) => f,
        Err(msg) => return bad_request(msg),
    };
    // refused before anything is listed (an empty list checks nothing)
    if let Err(e) = berth_engine::filter::check_container_filters(&f) {
        return engine_error(e);
    }
    let size = truthy(q.get("size"));
    let r = blocking(root, move |e| {
        let mut out = Vec::new();
        for c in e.list() {
            let running = matches!(
                c.state.status,
                berth_engine::Status::Running
                    | berth_engine::Status::Paused
                    | berth_engine::Status::Restarting
            );
            if !all && !running && !f.has("status") && !f.has("exited") {
                continue;
            }
            if e.container_matches(&c, &f)? {
                let sizes = size.then(|| e.container_sizes(&c));
                out.push((c, sizes));
            }
        }
        Ok(out)
    })
    .await;
    let list = match r {
        Ok(l) => l,
        Err(e) => return engine_error(e),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let mut out = Vec::new();
    for (c, sizes) in &list {
        let mut v = shapes::container::for_api(shapes::summary(c, now), c, minor);
        if let Some((rw, rootfs)) = sizes {
            // docker leaves SizeRw out when nothing was written
            if *rw > 0 {
                v["SizeRw"] = json!(rw);
            }
            v["SizeRootFs"] = json!(rootfs);
        }
        out.push(v);
        if limit > 0 && out.len() as i64 >= limit {
            break;
        }
    }
    json_resp(StatusCode::OK, &Value::Array(out))
}

/// `POST /containers/{id}/restart`: a stop (an exited container is fine)
/// and a start.
async fn restart(shared: &Arc<Shared>, id: &str, t: Option<i64>) -> Response<Body> {
    let id2 = id.to_string();
    match blocking(&shared.root, move |e| match e.stop(&id2, t) {
        Ok(()) | Err(EngineError::NotModified(_)) => Ok(()),
        Err(x) => Err(x),
    })
    .await
    {
        Ok(()) => start(shared, id).await,
        Err(e) => engine_error(e),
    }
}

async fn start(shared: &Arc<Shared>, id: &str) -> Response<Body> {
    let key = id.to_string();
    let k2 = key.clone();
    let full_key = blocking(&shared.root, move |e| e.resolve(&k2))
        .await
        .unwrap_or_default();
    let shared2 = shared.clone();
    let r = blocking(&shared.root, move |e| {
        let full_id = e.resolve(&key)?;
        let fid = full_id.clone();
        e.start(&full_id, || {
            let waiting = shared2
                .pending
                .lock()
                .map(|mut p| p.remove(&fid).unwrap_or_default())
                .unwrap_or_default();
            for p in waiting {
                if let Some(s) = e.attach(&fid, p.stdin, p.stdout, p.stderr) {
                    let _ = p.tx.send(s.socket);
                }
            }
            Ok(())
        })
    })
    .await;
    if r.is_err() {
        // attach streams waiting for this start end with it
        let _ = shared.pending.lock().map(|mut p| p.remove(&full_key));
    }
    match r {
        Ok(()) => empty(StatusCode::NO_CONTENT),
        // the docker CLI picks 127/126 from Go's lower-case error texts
        Err(EngineError::Start(msg)) => error(
            StatusCode::BAD_REQUEST,
            msg.replace("No such file or directory", "no such file or directory")
                .replace("Permission denied", "permission denied")
                .replace(" (os error 2)", "")
                .replace(" (os error 13)", ""),
        ),
        Err(e) => engine_error(e),
    }
}

/// `HEAD`/`GET /containers/{id}/archive`: the stat header, and (GET) the
/// tar stream of the path.
async fn archive_get(root: &std::path::Path, id: &str, path: String, head: bool) -> Response<Body> {
    let (key, p) = (id.to_string(), path.clone());
    let stat = match blocking(root, move |e| e.archive_stat(&key, &p)).await {
        Ok(s) => s,
        Err(e) => return engine_error(e),
    };
    let header = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        serde_json::to_vec(&stat).unwrap_or_default(),
    );
    let mut r = if head {
        empty(StatusCode::OK)
    } else {
        let (tx, rx) = mpsc::channel::<Bytes>(16);
        let engine = match engine_for(root) {
            Ok(e) => e,
            Err(e) => return engine_error(e),
        };
        let id = id.to_string();
        tokio::task::spawn_blocking(move || {
            let w = crate::images_api::ChannelWriter(tx);
            if let Err(e) = engine.archive_get(&id, &path, w) {
                tracing::warn!("archive of {id}:{path}: {e}");
            }
        });
        streaming(Some("application/x-tar"), rx)
    };
    if let Ok(v) = HeaderValue::from_str(&header) {
        r.headers_mut().insert("X-Docker-Container-Path-Stat", v);
    }
    r
}

/// `GET /containers/{id}/top`: the host's `ps` (`ps_args`, `-ef` by
/// default) for the container's processes.
async fn top(root: &std::path::Path, id: &str, ps_args: Option<String>) -> Response<Body> {
    let key = id.to_string();
    match blocking(root, move |e| e.top(&key, ps_args.as_deref())).await {
        Ok(t) => json_resp(
            StatusCode::OK,
            &json!({"Titles": t.titles, "Processes": t.processes}),
        ),
        Err(e) => engine_error(e),
    }
}
