//! `POST /build` (docker's classic builder API: what the docker CLI without
//! buildx and docker-py send) and `POST /build/prune`. The context arrives
//! as the body and is unpacked as it comes; the build runs on a blocking
//! thread through `berth_build`; its progress is docker's JSON stream
//! (`stream`, `aux.ID`, `errorDetail`). A failure before the first line is
//! an HTTP error, as dockerd's (a bad Dockerfile is a 400). A client that
//! goes away cancels the build.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use berth_build::builder::{BuildError, BuildOptions, Progress, Puller};
use berth_engine::Engine;
use berth_image::registry::{AuthConfig, Client, RegistryOptions};
use berth_types::Reference;
use berth_types::image::Platform;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{Shared, engine_for};
use crate::error::bad_request;
use crate::http::*;
use crate::images_api::BodyReader;
use crate::model::image::registry_config_header;

/// The JSON stream a build writes.
struct JsonStream {
    tx: mpsc::UnboundedSender<Bytes>,
    quiet: bool,
}

impl JsonStream {
    fn send(&self, v: Value) {
        let _ = self.tx.send(Bytes::from(format!("{v}\r\n")));
    }
}

impl Progress for JsonStream {
    fn stream(&mut self, text: &str) {
        if !self.quiet {
            self.send(json!({ "stream": text }));
        }
    }
    fn warning(&mut self, text: &str) {
        if !self.quiet {
            self.send(json!({ "stream": format!("[Warning] {text}\n") }));
        }
    }
    fn image_id(&mut self, id: &str) {
        self.send(json!({ "aux": { "ID": id } }));
    }
}

/// Pulls base images with the request's `X-Registry-Config` credentials.
struct DaemonPuller {
    registry: RegistryOptions,
    auths: BTreeMap<String, AuthConfig>,
}

struct PullLines(std::sync::Mutex<Vec<String>>);

impl berth_image::registry::Progress for PullLines {
    fn layer(&self, _id: &str, _status: berth_image::registry::Status) {}
    fn message(&self, line: &str) {
        if let Ok(mut v) = self.0.lock() {
            v.push(line.to_owned());
        }
    }
}

impl Puller for DaemonPuller {
    fn pull(
        &self,
        engine: &Engine,
        r: &Reference,
        platform: Option<&str>,
        out: &mut dyn Progress,
    ) -> Result<berth_types::Digest, String> {
        let platform = match platform {
            Some(p) => Platform::parse(p).ok_or_else(|| format!("invalid platform {p:?}"))?,
            None => Platform::host(),
        };
        let domain = r.domain();
        let auth = self
            .auths
            .iter()
            .find(|(k, _)| {
                let k = k
                    .trim_start_matches("https://")
                    .trim_start_matches("http://")
                    .trim_end_matches('/');
                k == domain
                    || (domain == "docker.io"
                        && (k.contains("index.docker.io") || k == "docker.io"))
            })
            .map(|(_, a)| a.clone())
            .unwrap_or_default();
        let client = Client::new(self.registry.clone()).with_auth(domain, auth);
        let lines = Arc::new(PullLines(std::sync::Mutex::new(Vec::new())));
        let pulled = engine
            .pull_image(&client, r, &platform, lines.clone())
            .map_err(|e| e.to_string())?;
        if let Ok(v) = lines.0.lock() {
            for l in v.iter() {
                out.stream(&format!("{l}\n"));
            }
        }
        out.stream(&format!("Digest: {}\n", pulled.digest));
        out.stream(&format!(
            "Status: Downloaded newer image for {}\n",
            r.familiar()
        ));
        Ok(pulled.record.id)
    }
}

fn json_map(
    q: &std::collections::HashMap<String, String>,
    key: &str,
) -> Result<BTreeMap<String, Option<String>>, String> {
    match q.get(key).filter(|s| !s.is_empty()) {
        None => Ok(BTreeMap::new()),
        Some(s) => serde_json::from_str::<BTreeMap<String, Option<String>>>(s)
            .map_err(|e| format!("invalid {key}: {e}")),
    }
}

fn int(q: &std::collections::HashMap<String, String>, key: &str) -> Result<i64, String> {
    match q.get(key).filter(|s| !s.is_empty()) {
        None => Ok(0),
        Some(s) => s
            .parse::<i64>()
            .map_err(|_| format!("invalid {key}: {s:?} is not a number")),
    }
}

/// The request's build options (and the Dockerfile's name in the context).
fn options(req: &Request<Incoming>) -> Result<(BuildOptions, String), String> {
    let q = query(req);
    if truthy(q.get("squash")) {
        return Err("not supported yet: squash (build with --squash)".into());
    }
    if q.get("remote").is_some_and(|r| !r.is_empty()) {
        return Err("not supported yet: a remote build context (remote=…)".into());
    }
    if q.get("version").is_some_and(|v| v == "2") {
        return Err(
            "not supported yet: BuildKit's session API (version=2); set DOCKER_BUILDKIT=0".into(),
        );
    }
    let mut o = BuildOptions::default();
    for t in super::images::query_all(req, "t") {
        if t.is_empty() {
            continue;
        }
        let r =
            Reference::parse(&t).map_err(|e| format!("invalid reference format: {}", e.reason))?;
        o.tags.push(r);
    }
    o.build_args = json_map(&q, "buildargs")?;
    o.labels = json_map(&q, "labels")?
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect();
    o.target = q.get("target").filter(|s| !s.is_empty()).cloned();
    o.no_cache = truthy(q.get("nocache"));
    o.pull = truthy(q.get("pull"));
    // rm defaults to true: only an explicit false value turns it off
    o.rm = q.get("rm").is_none_or(|v| v.is_empty() || truthy(Some(v)));
    o.force_rm = truthy(q.get("forcerm"));
    if let Some(cf) = q.get("cachefrom").filter(|s| !s.is_empty()) {
        o.cache_from = serde_json::from_str(cf).map_err(|e| format!("invalid cachefrom: {e}"))?;
    }
    o.network = q.get("networkmode").filter(|s| !s.is_empty()).cloned();
    o.platform = q.get("platform").filter(|s| !s.is_empty()).cloned();
    if let Some(h) = q.get("extrahosts").filter(|s| !s.is_empty()) {
        for one in h.split([',', ' ']).filter(|s| !s.is_empty()) {
            o.extra_hosts.push(crate::syntax::parse_add_host(one)?);
        }
    }
    let shm = int(&q, "shmsize")?;
    if shm < 0 {
        return Err("invalid shmsize: must be positive".into());
    }
    o.shm_size = (shm > 0).then_some(shm as u64);
    o.resources.memory = int(&q, "memory")?;
    o.resources.memory_swap = int(&q, "memswap")?;
    o.resources.cpu_shares = int(&q, "cpushares")?;
    o.resources.cpu_period = int(&q, "cpuperiod")?;
    o.resources.cpu_quota = int(&q, "cpuquota")?;
    o.resources.cpuset_cpus = q.get("cpusetcpus").cloned().unwrap_or_default();
    o.resources.cpuset_mems = q.get("cpusetmems").cloned().unwrap_or_default();
    if let Some(u) = q.get("ulimits").filter(|s| !s.is_empty() && *s != "null") {
        let list: Vec<crate::model::container::UlimitBody> =
            serde_json::from_str(u).map_err(|e| format!("invalid ulimits: {e}"))?;
        for one in list {
            o.ulimits.push(one.into_ulimit()?);
        }
    }
    if let Some(c) = q.get("cgroupparent").filter(|s| !s.is_empty()) {
        return Err(format!(
            "not supported yet: cgroupparent={c} for build steps"
        ));
    }
    if let Some(i) = q
        .get("isolation")
        .filter(|s| !s.is_empty() && *s != "default")
    {
        return Err(format!(
            "invalid isolation {i:?}: only default is supported on Linux"
        ));
    }
    let dockerfile = q
        .get("dockerfile")
        .filter(|s| !s.is_empty())
        .cloned()
        .unwrap_or_else(|| "Dockerfile".into());
    Ok((o, dockerfile))
}

/// `POST /build`.
pub(super) async fn build(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let (mut opts, dockerfile) = match options(&req) {
        Ok(o) => o,
        Err(m) => return bad_request(m),
    };
    let auths = match req.headers().get("x-registry-config") {
        None => BTreeMap::new(),
        Some(v) => match v
            .to_str()
            .map_err(|_| "invalid X-Registry-Config header".to_owned())
            .and_then(registry_config_header)
        {
            Ok(a) => a,
            Err(m) => return bad_request(m),
        },
    };
    let quiet = truthy(query(&req).get("q"));
    opts.puller = Some(Box::new(DaemonPuller {
        registry: shared.registry.clone(),
        auths,
    }));
    let body = BodyReader::new(req.into_body());
    let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
    let cancel = Arc::new(AtomicBool::new(false));
    let root = shared.root.clone();
    let c2 = cancel.clone();
    let mut job = tokio::task::spawn_blocking(move || -> Result<(), BuildError> {
        let engine = engine_for(&root).map_err(BuildError::from)?;
        let mut out = JsonStream { tx, quiet };
        let r = run(&engine, body, &dockerfile, &opts, &mut out, &c2);
        match r {
            Ok(id) => {
                if quiet {
                    out.send(json!({ "stream": format!("{id}\n") }));
                }
                Ok(())
            }
            Err(e) => Err(e),
        }
    });
    // a failure before the first line is the response's status
    let first = tokio::select! {
        biased;
        b = rx.recv() => Ok(b),
        j = &mut job => Err(j),
    };
    let status_of = |e: &BuildError| {
        if e.is_invalid() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    let (first, job) = match first {
        Ok(Some(b)) => (Some(b), Some(job)),
        Ok(None) => match job.await {
            Ok(Err(e)) => return error(status_of(&e), e),
            Ok(Ok(())) => (None, None),
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, format!("internal: {e}")),
        },
        Err(Ok(Err(e))) if rx.is_empty() => return error(status_of(&e), e),
        Err(Ok(r)) => {
            let mut pending = rx.try_recv().ok();
            if let Err(e) = r {
                // output came first: the error follows it in the stream
                let line = error_line(&e);
                let first = pending.take();
                let (out_tx, out_rx) = mpsc::channel::<Bytes>(64);
                tokio::spawn(async move {
                    let mut next = first;
                    while let Some(b) = next {
                        if out_tx.send(b).await.is_err() {
                            return;
                        }
                        next = rx.recv().await;
                    }
                    let _ = out_tx.send(line).await;
                });
                return streaming(Some("application/json"), out_rx);
            }
            (pending, None)
        }
        Err(Err(e)) => return error(StatusCode::INTERNAL_SERVER_ERROR, format!("internal: {e}")),
    };
    let (out_tx, out_rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let mut next = first;
        while let Some(b) = next {
            if out_tx.send(b).await.is_err() {
                cancel.store(true, Ordering::Relaxed);
                return;
            }
            next = tokio::select! {
                b = rx.recv() => b,
                _ = out_tx.closed() => {
                    cancel.store(true, Ordering::Relaxed);
                    return;
                }
            };
        }
        if let Some(job) = job
            && let Ok(Err(e)) = job.await
        {
            let _ = out_tx.send(error_line(&e)).await;
        }
    });
    streaming(Some("application/json"), out_rx)
}

fn error_line(e: &BuildError) -> Bytes {
    let m = e.to_string();
    Bytes::from(format!(
        "{}\r\n",
        json!({"errorDetail": {"code": e.code(), "message": m}, "error": m})
    ))
}

/// The build itself: the context received, the Dockerfile read from it.
fn run(
    engine: &Engine,
    body: BodyReader,
    dockerfile: &str,
    opts: &BuildOptions,
    out: &mut JsonStream,
    cancel: &AtomicBool,
) -> Result<berth_types::Digest, BuildError> {
    berth_build::intake::sweep(engine.root());
    let ctx = berth_build::intake::receive(engine.root(), body)?;
    let prepared = berth_build::context::prepare(ctx.path(), dockerfile)?;
    let built = berth_build::builder::build(
        engine,
        &prepared.tree,
        &prepared.name,
        &prepared.text,
        opts,
        out,
        cancel,
    );
    // the context goes before the answer when it is a tmpfs (one unmount);
    // on disk its files are removed on another thread, off the response's
    // path (a daemon killed meanwhile leaves them to the next sweep)
    drop(prepared);
    if ctx.on_tmpfs() {
        drop(ctx);
    } else {
        std::thread::spawn(move || drop(ctx));
    }
    Ok(built?.id)
}

/// `POST /build/prune`: berth's build cache records and cache mounts.
pub(super) async fn prune(shared: Arc<Shared>) -> Response<Body> {
    let root = shared.root.clone();
    let r =
        tokio::task::spawn_blocking(move || berth_build::builder::cache::prune_all(&root)).await;
    match r {
        Ok(Ok((keys, bytes))) => json_resp(
            StatusCode::OK,
            &json!({"CachesDeleted": keys, "SpaceReclaimed": bytes}),
        ),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("internal: {e}")),
    }
}
