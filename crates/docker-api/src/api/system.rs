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

use super::{Shared, blocking};
use crate::error::{bad_request, engine_error};
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
            if method == Method::HEAD {
                // dockerd says so for HEAD too
                r.headers_mut()
                    .insert(hyper::header::CONTENT_LENGTH, HeaderValue::from_static("0"));
            }
            r
        }
        ("GET", ["version"]) => json_resp(StatusCode::OK, &version()),
        ("GET", ["info"]) => info(&shared).await,
        // BuildKit's session and gRPC endpoints: dockerd's answers to a
        // request that asks for no upgrade, "not supported yet" otherwise
        ("POST", ["session" | "grpc"]) if !req.headers().contains_key(hyper::header::UPGRADE) => {
            let status = if parts == ["session"] {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            error(status, "no upgrade proto in request")
        }
        ("POST", ["session"]) => bad_request("not supported yet: build sessions (BuildKit)"),
        ("POST", ["grpc"]) => bad_request("not supported yet: the BuildKit API (/grpc)"),
        ("GET", ["system", "df"]) => system_df(&root).await,
        ("GET", ["plugins"]) | ("GET", ["plugins", "privileges"]) => {
            json_resp(StatusCode::OK, &json!([]))
        }
        ("GET", ["plugins", name, "json"]) => error(
            StatusCode::NOT_FOUND,
            format!("plugin \"{name}\" not found"),
        ),
        ("GET", ["events"]) => events(&shared, &query(&req)).await,
        // a single node outside any swarm, as dockerd answers there; it
        // cannot become one
        // (the body is read first: a client still sending it would see
        // its connection closed instead of the answer)
        ("POST", ["swarm", "init" | "join"]) => {
            let _ = read_body::<serde_json::Value>(req).await;
            error(StatusCode::NOT_IMPLEMENTED, "not supported yet: swarm mode")
        }
        ("POST", ["swarm", "leave"]) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "This node is not part of a swarm",
        ),
        (
            _,
            [
                "swarm" | "nodes" | "services" | "tasks" | "secrets" | "configs",
                ..,
            ],
        ) => {
            let _ = read_body::<serde_json::Value>(req).await;
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm \
                 join\" to connect this node to swarm and try again.",
            )
        }
        _ => not_found(),
    }
}

/// The commit berth was built from (build.rs; the crate version when the
/// source was not a git checkout).
const GIT_COMMIT: &str = match option_env!("BERTH_GIT_COMMIT") {
    Some(c) => c,
    None => env!("CARGO_PKG_VERSION"),
};

/// `GET /version`. berth is no Go program: `GoVersion` is empty; the
/// runtime and the init of `--init` are berth's own, named as such.
fn version() -> Value {
    let kernel = rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned();
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    let v = env!("CARGO_PKG_VERSION");
    json!({
        "Platform": {"Name": "berth"},
        "Components": [{"Name": "Engine", "Version": v,
            "Details": {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION, "Os": "linux",
                        "Arch": arch, "KernelVersion": kernel, "GitCommit": GIT_COMMIT,
                        "GoVersion": "", "BuildTime": "", "Experimental": "false"}},
            {"Name": "berth OCI runtime", "Version": v, "Details": {"GitCommit": GIT_COMMIT}},
            {"Name": "berth-init", "Version": v, "Details": {"GitCommit": GIT_COMMIT}}],
        "Version": v,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": GIT_COMMIT,
        "GoVersion": "",
        "Os": "linux",
        "Arch": arch,
        "KernelVersion": kernel,
        "BuildTime": "",
    })
}

/// This engine's stable id (made once per root, as dockerd keeps its own).
fn engine_id(root: &std::path::Path) -> String {
    let p = root.join("engine-id");
    if let Ok(s) = std::fs::read_to_string(&p) {
        if !s.trim().is_empty() {
            return s.trim().to_owned();
        }
        // left empty by a crash of an older berth
        let _ = std::fs::remove_file(&p);
    }
    let id = berth_engine::run::new_id()
        .map(|h| {
            let h = h.to_ascii_uppercase();
            let b = h.as_bytes();
            (0..12)
                .map(|i| String::from_utf8_lossy(&b[i * 4..i * 4 + 4]).into_owned())
                .collect::<Vec<_>>()
                .join(":")
        })
        .unwrap_or_default();
    // written whole, then linked into place: the first of concurrent
    // callers wins and the others read its id
    let tmp = root.join(format!("engine-id.{}.tmp", id.replace(':', "")));
    let made = std::fs::write(&tmp, &id).and_then(|()| std::fs::hard_link(&tmp, &p));
    let _ = std::fs::remove_file(&tmp);
    match made {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::read_to_string(&p)
            .map(|s| s.trim().to_owned())
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or(id),
        _ => id,
    }
}

async fn info(shared: &Shared) -> Response<Body> {
    let root = shared.root.clone();
    let net_root = root.clone();
    let r = blocking(&root, move |e| {
        let list = e.list();
        let images = e.images().list().map(|l| l.len()).unwrap_or(0);
        let net = berth_net::NetConfig::load(&net_root)?;
        Ok((list, images, net))
    })
    .await;
    let (list, images, net) = match r {
        Ok(v) => v,
        Err(e) => return engine_error(e),
    };
    let count = |s: berth_engine::Status| list.iter().filter(|c| c.state.status == s).count();
    let uname = rustix::system::uname();
    let mem_total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|l| l.split_whitespace().next()?.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024;
    let os_release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let os_field = |k: &str| {
        os_release
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| v.trim_matches('"').to_owned())
    };
    let os = os_field("PRETTY_NAME=").unwrap_or_else(|| "Linux".into());
    let cgroup_version = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "2"
    } else {
        "1"
    };
    let forwarding =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").is_ok_and(|s| s.trim() == "1");
    let registry = registry_config(&shared.registry);
    let proc_flag = |p: &str| std::fs::read_to_string(p).is_ok_and(|s| s.trim() == "1");
    let running = count(berth_engine::Status::Running);
    let paused = count(berth_engine::Status::Paused);
    json_resp(
        StatusCode::OK,
        &json!({
            "ID": engine_id(&root),
            "Containers": list.len(),
            "ContainersRunning": running,
            "ContainersPaused": paused,
            "ContainersStopped": list.len() - running - paused,
            "Images": images,
            "Driver": "overlay2",
            "DriverStatus": [["Backing Filesystem", backing_filesystem(&root)], ["Supports d_type", "true"],
                             ["Native Overlay Diff", "true"], ["userxattr", "false"]],
            "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null"],
                        "Authorization": null, "Log": ["json-file", "local", "none"]},
            "MemoryLimit": true,
            "SwapLimit": true,
            "KernelMemory": false,
            "KernelMemoryTCP": false,
            "CpuCfsPeriod": true,
            "CpuCfsQuota": true,
            "CPUShares": true,
            "CPUSet": true,
            "PidsLimit": true,
            "OomKillDisable": cgroup_version == "1",
            "IPv4Forwarding": forwarding,
            "BridgeNfIptables": proc_flag("/proc/sys/net/bridge/bridge-nf-call-iptables"),
            "BridgeNfIp6tables": proc_flag("/proc/sys/net/bridge/bridge-nf-call-ip6tables"),
            "Debug": false,
            "NFd": std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0),
            "NGoroutines": 0,
            "SystemTime": berth_runtime::state::now_rfc3339(),
            "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": cgroup_version,
            "NEventsListener": shared.event_listeners.load(std::sync::atomic::Ordering::Relaxed),
            "KernelVersion": uname.release().to_string_lossy(),
            "OperatingSystem": os,
            "OSVersion": os_field("VERSION_ID=").unwrap_or_default(),
            "OSType": "linux",
            "Architecture": uname.machine().to_string_lossy(),
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": registry,
            "NCPU": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "MemTotal": mem_total,
            "GenericResources": null,
            "DockerRootDir": root.display().to_string(),
            "HttpProxy": std::env::var("HTTP_PROXY").unwrap_or_default(),
            "HttpsProxy": std::env::var("HTTPS_PROXY").unwrap_or_default(),
            "NoProxy": std::env::var("NO_PROXY").unwrap_or_default(),
            "Name": uname.nodename().to_string_lossy(),
            "Labels": [],
            "ExperimentalBuild": false,
            "ServerVersion": env!("CARGO_PKG_VERSION"),
            "Runtimes": {"runc": {"path": "berth"}, "berth": {"path": "berth"}},
            "DefaultRuntime": "runc",
            "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
                      "ControlAvailable": false, "Error": "", "RemoteManagers": null},
            "LiveRestoreEnabled": true,
            "Isolation": "",
            "InitBinary": "berth-init",
            "ContainerdCommit": {"ID": "", "Expected": ""},
            // the runtime and the init are built into berth
            "RuncCommit": {"ID": GIT_COMMIT, "Expected": GIT_COMMIT},
            "InitCommit": {"ID": GIT_COMMIT, "Expected": GIT_COMMIT},
            "SecurityOptions": ["name=seccomp,profile=default", "name=cgroupns"],
            "DefaultAddressPools": [{"Base": net.pool.to_string(), "Size": net.pool_prefix}],
            "Warnings": null,
        }),
    )
}

/// docker's name for the filesystem under `root` (`DriverStatus`).
fn backing_filesystem(root: &std::path::Path) -> &'static str {
    let Ok(st) = rustix::fs::statfs(root) else {
        return "<unknown>";
    };
    // the magic numbers of statfs(2)
    match st.f_type as u64 {
        0xEF53 => "extfs",
        0x5846_5342 => "xfs",
        0x9123_683E => "btrfs",
        0x0102_1994 => "tmpfs",
        0x794C_7630 => "overlayfs",
        0x2FC1_2FC1 => "zfs",
        0x6969 => "nfs",
        _ => "<unknown>",
    }
}

/// `GET /events`: recorded events since `since`, then new ones until
/// `until` (or until the client goes), woken by the event log changing.
async fn events(shared: &Shared, q: &HashMap<String, String>) -> Response<Body> {
    let root = &shared.root;
    let filters = match filters(q) {
        Ok(f) => f,
        Err(m) => return bad_request(m),
    };
    let now = now_ns();
    let time = |k: &str| -> Result<Option<i64>, String> {
        match q.get(k).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => crate::syntax::parse_timestamp(v, now)
                .map(Some)
                .map_err(|m| format!("invalid value for {k}: {m}")),
        }
    };
    let (since, until) = match (time("since"), time("until")) {
        (Ok(s), Ok(u)) => (s, u),
        (Err(m), _) | (_, Err(m)) => return bad_request(m),
    };
    if let (Some(s), Some(u)) = (since, until)
        && s > u
    {
        return bad_request(format!(
            "`since` time ({}) cannot be after `until` time ({})",
            s / 1_000_000_000,
            u / 1_000_000_000
        ));
    }
    let query = berth_engine::events::Query {
        // without `since`, what happens from now on (or, with an
        // `until`, what happened before it)
        since: since.or(if until.is_some() { None } else { Some(now) }),
        until,
        filters: filters.0,
    };
    let root = root.to_path_buf();
    let r = tokio::task::spawn_blocking(move || {
        let (first, cursor) = berth_engine::events::EventCursor::open(&root, &query)?;
        let watch = berth_engine::watch::FileWatch::new(&root).ok();
        Ok::<_, berth_engine::Error>((first, cursor, watch))
    })
    .await
    .unwrap_or_else(|e| Err(berth_engine::Error::Internal(e.to_string())));
    let (first, mut cursor, watch) = match r {
        Ok(v) => v,
        Err(e) => return engine_error(e),
    };
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let listening = Listening::new(shared.event_listeners.clone());
    tokio::spawn(async move {
        let _listening = listening;
        for e in &first {
            if tx
                .send(Bytes::from(format!("{}\n", shapes::event(e))))
                .await
                .is_err()
            {
                return;
            }
        }
        let Some(watch) = watch.and_then(async_watch) else {
            return;
        };
        loop {
            if cursor.done() {
                return;
            }
            // `until` in the future: stop when it comes
            let left = cursor
                .until_in()
                .unwrap_or(std::time::Duration::from_secs(3600));
            tokio::select! {
                () = tx.closed() => return,
                g = watch.readable() => if let Ok(mut g) = g {
                    g.get_inner().drain();
                    g.clear_ready();
                },
                () = tokio::time::sleep(left) => {}
            }
            for e in cursor.read_new() {
                if tx
                    .send(Bytes::from(format!("{}\n", shapes::event(&e))))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    });
    streaming(Some("application/json"), rx)
}

/// `GET /system/df`.
async fn system_df(root: &std::path::Path) -> Response<Body> {
    let r = blocking(root, |e| {
        let in_use = e.images_in_use();
        let list = e.list_images(&Default::default(), true)?;
        let images = shapes::image_summaries(&list, Some(&in_use), 99);
        let layers: u64 = list.iter().map(|l| l.summary.record.size).sum();
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
                let mut j = shapes::volume(&v);
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

/// docker's `RegistryConfig` of `info`.
fn registry_config(o: &berth_image::registry::RegistryOptions) -> Value {
    let (cidrs, hosts): (Vec<&String>, Vec<&String>) =
        o.insecure_registries.iter().partition(|r| r.contains('/'));
    let mut index = serde_json::Map::new();
    index.insert(
        "docker.io".into(),
        json!({"Name": "docker.io", "Mirrors": o.mirrors, "Secure": true, "Official": true}),
    );
    for h in &hosts {
        index.insert(
            (*h).clone(),
            json!({"Name": h, "Mirrors": [], "Secure": false, "Official": false}),
        );
    }
    let mut insecure: Vec<String> = vec!["127.0.0.0/8".into()];
    insecure.extend(cidrs.into_iter().cloned());
    json!({
        "AllowNondistributableArtifactsCIDRs": [],
        "AllowNondistributableArtifactsHostnames": [],
        "InsecureRegistryCIDRs": insecure,
        "IndexConfigs": index,
        "Mirrors": o.mirrors,
    })
}

/// One `GET /events` stream counted in `NEventsListener` while it lasts.
struct Listening(Arc<std::sync::atomic::AtomicUsize>);

impl Listening {
    fn new(n: Arc<std::sync::atomic::AtomicUsize>) -> Listening {
        n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Listening(n)
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}
