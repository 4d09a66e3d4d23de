//! System endpoints: ping, version, info, events, disk usage, and the
//! endpoints of features a single node does not have (plugins).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::images::image_summaries;
use super::{Shared, blocking};
use crate::error::engine_error;
use crate::http::*;
use crate::shapes;
use crate::{API_VERSION, MIN_API_VERSION};

pub(super) async fn route(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    method: &Method,
    parts: &[&str],
) -> Response<Body> {
    let root = shared.root.clone();
    match (method.as_str(), parts) {
        ("GET" | "HEAD", ["_ping"]) => {
            let mut r = full(
                StatusCode::OK,
                if method == Method::HEAD { "" } else { "OK" },
                Some("text/plain; charset=utf-8"),
            );
            r.headers_mut().insert(
                "Cache-Control",
                HeaderValue::from_static("no-cache, no-store, must-revalidate"),
            );
            r.headers_mut()
                .insert("Pragma", HeaderValue::from_static("no-cache"));
            r
        }
        ("GET", ["version"]) => json_resp(StatusCode::OK, &version()),
        ("GET", ["info"]) => info(&root).await,
        ("GET", ["system", "df"]) => system_df(&root).await,
        ("GET", ["plugins", name, "json"]) => error(
            StatusCode::NOT_FOUND,
            format!("plugin \"{name}\" not found"),
        ),
        ("GET", ["events"]) => events(&root, &query(&req)),
        _ => not_found(),
    }
}

fn version() -> Value {
    let kernel = rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned();
    json!({
        "Platform": {"Name": "berth"},
        "Components": [{"Name": "Engine", "Version": env!("CARGO_PKG_VERSION"),
            "Details": {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "Os": "linux",
                        "Arch": "amd64", "KernelVersion": kernel, "GitCommit": "", "GoVersion": "", "BuildTime": ""}}],
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": "",
        "Os": "linux",
        "Arch": "amd64",
        "KernelVersion": kernel,
        "BuildTime": "",
    })
}

async fn info(root: &std::path::Path) -> Response<Body> {
    let root2 = root.to_path_buf();
    let r = blocking(root, move |e| {
        let list = e.list();
        let images = e.images().list().map(|l| l.len()).unwrap_or(0);
        Ok((list, images, root2))
    })
    .await;
    let (list, images, root) = match r {
        Ok(v) => v,
        Err(e) => return engine_error(e),
    };
    let count = |s: berth_engine::Status| list.iter().filter(|c| c.state.status == s).count();
    let uname = rustix::system::uname();
    let mem_total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024;
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("PRETTY_NAME="))
                .map(|l| l["PRETTY_NAME=".len()..].trim_matches('"').to_owned())
        })
        .unwrap_or_else(|| "Linux".into());
    let cgroup_version = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "2"
    } else {
        "1"
    };
    json_resp(
        StatusCode::OK,
        &json!({
            "ID": "",
            "Containers": list.len(),
            "ContainersRunning": count(berth_engine::Status::Running),
            "ContainersPaused": count(berth_engine::Status::Paused),
            "ContainersStopped": list.len() - count(berth_engine::Status::Running) - count(berth_engine::Status::Paused),
            "Images": images,
            "Driver": "overlay2",
            "DriverStatus": [["Backing Filesystem", "extfs"]],
            "Plugins": {"Volume": [], "Network": ["host", "null"], "Log": ["json-file"]},
            "MemoryLimit": true,
            "SwapLimit": true,
            "CpuCfsPeriod": true,
            "CpuCfsQuota": true,
            "CPUShares": true,
            "CPUSet": true,
            "PidsLimit": true,
            "OomKillDisable": false,
            "IPv4Forwarding": false,
            "Debug": false,
            "NFd": 0,
            "NGoroutines": 0,
            "SystemTime": berth_runtime::state::now_rfc3339(),
            "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": cgroup_version,
            "KernelVersion": uname.release().to_string_lossy(),
            "OperatingSystem": os,
            "OSType": "linux",
            "Architecture": uname.machine().to_string_lossy(),
            "NCPU": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "MemTotal": mem_total,
            "DockerRootDir": root.display().to_string(),
            "Name": uname.nodename().to_string_lossy(),
            "ServerVersion": env!("CARGO_PKG_VERSION"),
            "Runtimes": {"berth": {"path": "berth"}},
            "DefaultRuntime": "berth",
            "Swarm": {"LocalNodeState": "inactive", "NodeID": "", "NodeAddr": "", "ControlAvailable": false, "Error": "", "RemoteManagers": null},
            "LiveRestoreEnabled": true,
            "SecurityOptions": ["name=seccomp,profile=builtin"],
            "Warnings": [],
        }),
    )
}

/// `GET /events`: recorded events since `since`, then new ones until
/// `until` (or until the client goes).
fn events(root: &std::path::Path, q: &HashMap<String, String>) -> Response<Body> {
    let filters = match filters(q) {
        Ok(f) => f,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    let time = |k: &str| -> Result<Option<i64>, String> {
        match q.get(k).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => berth_engine::logs::parse_time(v)
                .ok()
                .and_then(|t| berth_engine::events::rfc3339_nanos(&t))
                .map(Some)
                .ok_or_else(|| format!("invalid value for {k}: {v}")),
        }
    };
    let query = match (time("since"), time("until")) {
        (Ok(since), Ok(until)) => berth_engine::events::Query {
            since,
            until,
            filters: filters.into_iter().collect(),
        },
        (Err(m), _) | (_, Err(m)) => return error(StatusCode::BAD_REQUEST, m),
    };
    if let Err(e) = query.validate() {
        return engine_error(e);
    }
    // without `since`, only what happens from now on
    let query = berth_engine::events::Query {
        since: query
            .since
            .or_else(|| berth_engine::events::rfc3339_nanos(&berth_runtime::state::now_rfc3339())),
        ..query
    };
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let root = root.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let _ = berth_engine::events::read(&root, &query, true, &|| tx.is_closed(), &mut |e| {
            tx.blocking_send(Bytes::from(format!("{}\n", shapes::event(e))))
                .is_ok()
        });
    });
    streaming(Some("application/json"), rx)
}

/// `GET /system/df`.
async fn system_df(root: &std::path::Path) -> Response<Body> {
    let r = blocking(root, |e| {
        let in_use = e.images_in_use();
        let list = e.images().list()?;
        let images = image_summaries(&list, &in_use);
        let layers: u64 = list.iter().map(|s| s.record.size).sum();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let containers: Vec<Value> = e
            .container_usage()
            .iter()
            .map(|u| {
                let mut v = shapes::summary(&u.container, now);
                v["SizeRw"] = json!(u.size_rw);
                v
            })
            .collect();
        let all = e.list();
        let volumes: Vec<Value> = e
            .volumes()
            .into_iter()
            .map(|v| {
                let refs = all
                    .iter()
                    .filter(|c| c.record.mounts.iter().any(|m| m.name == v.name))
                    .count();
                let size = berth_engine::system::dir_size(std::path::Path::new(&v.mountpoint));
                let mut j = json!(v);
                j["UsageData"] = json!({"RefCount": refs, "Size": size});
                j
            })
            .collect();
        Ok(
            json!({"LayersSize": layers, "Images": images, "Containers": containers,
                  "Volumes": volumes, "BuildCache": []}),
        )
    })
    .await;
    match r {
        Ok(v) => json_resp(StatusCode::OK, &v),
        Err(e) => engine_error(e),
    }
}
