//! Container endpoints: create, list, inspect, the lifecycle, update,
//! changes, export, archives, top, prune and removal.

use std::collections::HashMap;
use std::sync::Arc;

use berth_engine::Error as EngineError;
use berth_engine::ops::WaitCondition;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::streams::{attach, logs, stats};
use super::{Shared, blocking, engine_for};
use crate::error::engine_error;
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
        ("GET", ["containers", "json"]) => list(&root, &query(&req)).await,
        ("GET", ["containers", id, "json"]) => {
            let id = id.to_string();
            match blocking(&root, move |e| e.container(&id)).await {
                Ok(c) => json_resp(StatusCode::OK, &shapes::inspect(&c)),
                Err(e) => engine_error(e),
            }
        }
        ("POST", ["containers", id, "start"]) => start(&shared, id).await,
        ("POST", ["containers", id, "stop"]) => {
            let q = query(&req);
            let t = q
                .get("t")
                .or(q.get("timeout"))
                .and_then(|t| t.parse::<i64>().ok());
            let id = id.to_string();
            match blocking(&root, move |e| e.stop(&id, t)).await {
                Ok(()) => empty(StatusCode::NO_CONTENT),
                Err(e) => engine_error(e),
            }
        }
        ("POST", ["containers", id, "restart"]) => {
            let q = query(&req);
            let t = q.get("t").and_then(|t| t.parse::<i64>().ok());
            let id2 = id.to_string();
            match blocking(&root, move |e| match e.stop(&id2, t) {
                Ok(()) | Err(EngineError::NotModified(_)) => Ok(()),
                Err(x) => Err(x),
            })
            .await
            {
                Ok(()) => start(&shared, id).await,
                Err(e) => engine_error(e),
            }
        }
        ("POST", ["containers", id, "kill"]) => {
            let sig = query(&req).get("signal").cloned().unwrap_or_default();
            let id = id.to_string();
            match blocking(&root, move |e| e.kill(&id, &sig)).await {
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
            let q = query(&req);
            let h = q.get("h").and_then(|v| v.parse().ok()).unwrap_or(0);
            let w = q.get("w").and_then(|v| v.parse().ok()).unwrap_or(0);
            let id = id.to_string();
            match blocking(&root, move |e| e.resize(&id, h, w)).await {
                Ok(()) => full(StatusCode::OK, "", Some("text/plain; charset=utf-8")),
                Err(e) => engine_error(e),
            }
        }
        ("POST", ["containers", id, "wait"]) => wait(&root, id, &query(&req)).await,
        ("POST", ["containers", id, "attach"]) => attach(shared.clone(), req, id).await,
        ("GET", ["containers", id, "logs"]) => logs(&root, id, &query(&req)).await,
        ("GET", ["containers", id, "top"]) => top(&root, id).await,
        ("POST", ["containers", id, "update"]) => {
            let body = match read_json(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let i = |k: &str| body.get(k).and_then(Value::as_i64).unwrap_or(0);
            let st = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
            for k in ["KernelMemory", "CpuRealtimePeriod", "CpuRealtimeRuntime"] {
                if i(k) != 0 {
                    return error(
                        StatusCode::BAD_REQUEST,
                        format!("not supported yet: update of {k}"),
                    );
                }
            }
            let res = berth_engine::Resources {
                memory: i("Memory"),
                memory_swap: i("MemorySwap"),
                memory_reservation: i("MemoryReservation"),
                nano_cpus: i("NanoCpus"),
                cpu_shares: i("CpuShares"),
                cpu_period: i("CpuPeriod"),
                cpu_quota: i("CpuQuota"),
                cpuset_cpus: st("CpusetCpus"),
                cpuset_mems: st("CpusetMems"),
                pids_limit: body.get("PidsLimit").and_then(Value::as_i64),
                blkio_weight: match u16::try_from(i("BlkioWeight")) {
                    Ok(w) => w,
                    Err(_) => {
                        return error(
                            StatusCode::BAD_REQUEST,
                            "Range of blkio weight is from 10 to 1000",
                        );
                    }
                },
                ..Default::default()
            };
            let restart = body
                .get("RestartPolicy")
                .and_then(|r| r.get("Name"))
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .map(|n| berth_engine::RestartPolicy {
                    name: n.to_owned(),
                    maximum_retry_count: body["RestartPolicy"]
                        .get("MaximumRetryCount")
                        .and_then(Value::as_i64)
                        .unwrap_or(0),
                });
            let id = id.to_string();
            match blocking(&root, move |e| e.update(&id, &res, restart)).await {
                Ok(()) => json_resp(StatusCode::OK, &json!({"Warnings": []})),
                Err(e) => engine_error(e),
            }
        }
        ("GET", ["containers", id, "changes"]) => {
            let id = id.to_string();
            match blocking(&root, move |e| e.diff(&id)).await {
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
            let labels = match filters(&query(&req)) {
                Ok(f) => f.get("label").cloned().unwrap_or_default(),
                Err(m) => return error(StatusCode::BAD_REQUEST, m),
            };
            match blocking(&root, move |e| e.prune_containers(&labels)).await {
                Ok((ids, bytes)) => json_resp(
                    StatusCode::OK,
                    &json!({"ContainersDeleted": ids, "SpaceReclaimed": bytes}),
                ),
                Err(e) => engine_error(e),
            }
        }
        _ => not_found(),
    }
}

async fn create(root: &std::path::Path, req: Request<Incoming>) -> Response<Body> {
    let name = query(&req).get("name").cloned().filter(|n| !n.is_empty());
    let body = match read_json(req).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let (image, cfg) = match crate::create::parse(&body, name) {
        Ok(v) => v,
        Err(msg) => return error(StatusCode::BAD_REQUEST, msg),
    };
    let r = blocking(root, move |e| {
        let rec = e.images().resolve(&image).map_err(|err| match err {
            berth_image::Error::NotFound(_) => {
                EngineError::NotFound(format!("No such image: {image}"))
            }
            other => EngineError::Image(other),
        })?;
        e.create(&rec, &image, &cfg)
    })
    .await;
    match r {
        Ok((id, warnings)) => json_resp(
            StatusCode::CREATED,
            &json!({"Id": id, "Warnings": warnings}),
        ),
        Err(e) => engine_error(e),
    }
}

async fn list(root: &std::path::Path, q: &HashMap<String, String>) -> Response<Body> {
    let all = truthy(q.get("all"));
    let limit = q
        .get("limit")
        .and_then(|l| l.parse::<i64>().ok())
        .unwrap_or(-1);
    let f = match filters(q) {
        Ok(f) => f,
        Err(msg) => return error(StatusCode::BAD_REQUEST, msg),
    };
    let r = blocking(root, |e| Ok(e.list())).await;
    let list = match r {
        Ok(l) => l,
        Err(e) => return engine_error(e),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let mut out = Vec::new();
    for c in &list {
        let running = matches!(
            c.state.status,
            berth_engine::Status::Running
                | berth_engine::Status::Paused
                | berth_engine::Status::Restarting
        );
        if !all && !running && !f.contains_key("status") {
            continue;
        }
        let ok = f.iter().all(|(k, vals)| {
            vals.iter()
                .any(|v| berth_engine::ops::filter_matches(c, k, v).unwrap_or(false))
        });
        if ok {
            out.push(shapes::summary(c, now));
        }
        if limit > 0 && out.len() as i64 >= limit {
            break;
        }
    }
    json_resp(StatusCode::OK, &Value::Array(out))
}

async fn start(shared: &Arc<Shared>, id: &str) -> Response<Body> {
    let key = id.to_string();
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
                    let _ = p.tx.send(s);
                }
            }
            Ok(())
        })
    })
    .await;
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

async fn wait(root: &std::path::Path, id: &str, q: &HashMap<String, String>) -> Response<Body> {
    let cond = match WaitCondition::parse(q.get("condition").map(String::as_str).unwrap_or("")) {
        Ok(c) => c,
        Err(e) => return engine_error(e),
    };
    // the container must exist before the headers go
    let key = id.to_string();
    let full_id = match blocking(root, move |e| e.resolve(&key)).await {
        Ok(i) => i,
        Err(e) => return engine_error(e),
    };
    let (tx, rx) = mpsc::channel::<Bytes>(1);
    let root = root.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let body = match engine_for(&root).and_then(|e| e.wait(&full_id, cond, &|| tx.is_closed()))
        {
            Ok(code) => json!({"Error": null, "StatusCode": code}),
            Err(e) => json!({"Error": {"Message": e.to_string()}, "StatusCode": -1}),
        };
        let _ = tx.blocking_send(Bytes::from(format!("{body}\n")));
    });
    streaming(Some("application/json"), rx)
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

async fn top(root: &std::path::Path, id: &str) -> Response<Body> {
    let key = id.to_string();
    match blocking(root, move |e| e.top(&key)).await {
        Ok(procs) => {
            let rows: Vec<Value> = procs
                .into_iter()
                .map(|(uid, pid, cmd)| json!([uid, pid.to_string(), cmd]))
                .collect();
            json_resp(
                StatusCode::OK,
                &json!({"Titles": ["UID", "PID", "CMD"], "Processes": rows}),
            )
        }
        Err(e) => engine_error(e),
    }
}
