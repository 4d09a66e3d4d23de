//! The HTTP side: routing, version prefixes, streaming and hijacked
//! responses, docker's errors.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use berth_engine::ops::{WaitCondition, parse_rfc3339_secs};
use berth_engine::{Engine, Error as EngineError};
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::HeaderValue;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot};

use crate::shapes;

/// The API version berth speaks (the CLI uses min(its own, this)).
pub const API_VERSION: &str = "1.47";
/// The oldest version accepted in a path prefix.
pub const MIN_API_VERSION: &str = "1.24";
/// Largest JSON request body accepted (container create and the like).
const MAX_JSON_BODY: usize = 4 << 20;

type Body = BoxBody<Bytes, io::Error>;

struct Pending {
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tx: oneshot::Sender<std::os::unix::net::UnixStream>,
}

struct Shared {
    root: PathBuf,
    /// Registry settings for pulls (berth's daemon.json).
    registry: berth_image::registry::RegistryOptions,
    /// Attach requests waiting for their container to start.
    pending: Mutex<HashMap<String, Vec<Pending>>>,
}

/// Where the daemon listens.
pub enum Listener {
    /// A unix socket (its mode is the access control).
    Unix(UnixListener),
    /// TCP with mutual TLS: only clients with a certificate from the CA.
    Tls(tokio::net::TcpListener, tokio_rustls::TlsAcceptor),
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Listener::Unix(_) => "Listener::Unix",
            Listener::Tls(..) => "Listener::Tls",
        })
    }
}

/// A TLS acceptor that requires client certificates signed by `ca`
/// (docker's `--tlsverify --tlscacert --tlscert --tlskey`).
pub fn mutual_tls(
    ca: &std::path::Path,
    cert: &std::path::Path,
    key: &std::path::Path,
) -> io::Result<tokio_rustls::TlsAcceptor> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let bad = |m: String| io::Error::new(io::ErrorKind::InvalidInput, m);
    let open = |p: &std::path::Path| {
        std::fs::File::open(p)
            .map(io::BufReader::new)
            .map_err(|e| bad(format!("open {}: {e}", p.display())))
    };
    let certs = rustls_pemfile::certs(&mut open(cert)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("read {}: {e}", cert.display())))?;
    let key = rustls_pemfile::private_key(&mut open(key)?)
        .map_err(|e| bad(format!("read {}: {e}", key.display())))?
        .ok_or_else(|| bad(format!("{} has no PEM private key", key.display())))?;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut open(ca)?) {
        let c = c.map_err(|e| bad(format!("read {}: {e}", ca.display())))?;
        roots
            .add(c)
            .map_err(|e| bad(format!("{}: {e}", ca.display())))?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .map_err(|e| bad(format!("client verification: {e}")))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| bad(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

fn serve_connection<S>(shared: Arc<Shared>, stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let svc = hyper::service::service_fn(move |req| {
            let shared = shared.clone();
            async move { Ok::<_, Infallible>(handle(shared, req).await) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), svc)
            .with_upgrades();
        if let Err(e) = conn.await {
            tracing::debug!("connection: {e}");
        }
    });
}

async fn accept_loop(shared: Arc<Shared>, listener: Listener) -> io::Result<()> {
    match listener {
        Listener::Unix(l) => loop {
            let (stream, _) = l.accept().await?;
            serve_connection(shared.clone(), stream);
        },
        Listener::Tls(l, acceptor) => loop {
            let (stream, peer) = l.accept().await?;
            let acceptor = acceptor.clone();
            let shared = shared.clone();
            tokio::spawn(async move {
                match acceptor.accept(stream).await {
                    Ok(tls) => serve_connection(shared, tls),
                    Err(e) => tracing::info!("TLS handshake with {peer} refused: {e}"),
                }
            });
        },
    }
}

/// Serves the Docker API on every listener until `shutdown` resolves.
pub async fn serve(
    listeners: Vec<Listener>,
    root: PathBuf,
    registry: berth_image::registry::RegistryOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> io::Result<()> {
    let shared = Arc::new(Shared {
        root,
        registry,
        pending: Mutex::new(HashMap::new()),
    });
    let mut tasks = tokio::task::JoinSet::new();
    for l in listeners {
        tasks.spawn(accept_loop(shared.clone(), l));
    }
    tokio::pin!(shutdown);
    tokio::select! {
        () = &mut shutdown => Ok(()),
        Some(r) = tasks.join_next() => match r {
            Ok(r) => r,
            Err(e) => Err(io::Error::other(e)),
        },
    }
}

fn full(status: StatusCode, body: impl Into<Bytes>, content_type: Option<&str>) -> Response<Body> {
    let mut r = Response::new(
        Full::new(body.into())
            .map_err(|never: Infallible| match never {})
            .boxed(),
    );
    *r.status_mut() = status;
    if let Some(ct) = content_type
        && let Ok(v) = HeaderValue::from_str(ct)
    {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

fn json_resp(status: StatusCode, v: &Value) -> Response<Body> {
    full(status, v.to_string(), Some("application/json"))
}

fn error(status: StatusCode, msg: impl std::fmt::Display) -> Response<Body> {
    json_resp(status, &json!({"message": msg.to_string()}))
}

fn empty(status: StatusCode) -> Response<Body> {
    full(status, Bytes::new(), None)
}

/// A streaming response: headers go out at once, chunks as they come.
fn streaming(content_type: Option<&str>, rx: mpsc::Receiver<Bytes>) -> Response<Body> {
    let s = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, io::Error>(Frame::data(b)), rx))
    });
    let mut r = Response::new(StreamBody::new(s).boxed());
    if let Some(ct) = content_type
        && let Ok(v) = HeaderValue::from_str(ct)
    {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

fn engine_status(e: &EngineError) -> StatusCode {
    match e {
        EngineError::NotFound(_) => StatusCode::NOT_FOUND,
        EngineError::Conflict(_) => StatusCode::CONFLICT,
        EngineError::NotModified(_) => StatusCode::NOT_MODIFIED,
        EngineError::Invalid(_) | EngineError::Start(_) => StatusCode::BAD_REQUEST,
        EngineError::Image(i) => image_status(i),
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn image_status(e: &berth_image::Error) -> StatusCode {
    match e {
        berth_image::Error::NotFound(_) => StatusCode::NOT_FOUND,
        berth_image::Error::Conflict(_) => StatusCode::CONFLICT,
        berth_image::Error::Invalid(_) | berth_image::Error::Limit(_) => StatusCode::BAD_REQUEST,
        berth_image::Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn engine_error(e: EngineError) -> Response<Body> {
    let status = engine_status(&e);
    if status == StatusCode::NOT_MODIFIED {
        return empty(status);
    }
    error(status, e)
}

/// The daemon's engine for a root, opened once (it is `Sync`: its image
/// database sits behind a mutex, everything else is files read afresh).
fn engine_for(root: &std::path::Path) -> Result<Arc<Engine>, EngineError> {
    static ENGINES: std::sync::OnceLock<Mutex<HashMap<PathBuf, Arc<Engine>>>> =
        std::sync::OnceLock::new();
    let map = ENGINES.get_or_init(|| Mutex::new(HashMap::new()));
    let mut m = map
        .lock()
        .map_err(|_| EngineError::Invalid("internal: engine cache poisoned".into()))?;
    if let Some(e) = m.get(root) {
        return Ok(e.clone());
    }
    let e = Arc::new(Engine::open(root)?);
    m.insert(root.to_path_buf(), e.clone());
    Ok(e)
}

/// Runs engine work on a blocking thread.
async fn blocking<T: Send + 'static>(
    root: &std::path::Path,
    f: impl FnOnce(&Engine) -> Result<T, EngineError> + Send + 'static,
) -> Result<T, EngineError> {
    let root = root.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let engine = engine_for(&root)?;
        f(&engine)
    })
    .await
    .unwrap_or_else(|e| Err(EngineError::Invalid(format!("internal: {e}"))))
}

/// A JSON object of strings (`Labels`, `Options`, …) as a map; other
/// values become empty strings.
pub(crate) fn string_map(v: Option<&Value>) -> std::collections::BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// dockerd's loose booleans: "", 0, no, false, none are false.
fn truthy(v: Option<&String>) -> bool {
    match v {
        None => false,
        Some(s) => !matches!(
            s.to_ascii_lowercase().as_str(),
            "" | "0" | "no" | "false" | "none"
        ),
    }
}

fn query(req: &Request<Incoming>) -> HashMap<String, String> {
    let mut m = HashMap::new();
    if let Some(q) = req.uri().query() {
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            m.insert(decode(k), decode(v));
        }
    }
    m
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(b[i + 1]), hex(b[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Docker's filters in either shape: `{"k":{"v":true}}` or `{"k":["v"]}`.
fn filters(q: &HashMap<String, String>) -> Result<HashMap<String, Vec<String>>, String> {
    let mut out = HashMap::new();
    let Some(raw) = q.get("filters").filter(|s| !s.is_empty()) else {
        return Ok(out);
    };
    let v: Value = serde_json::from_str(raw).map_err(|e| format!("invalid filter '{raw}': {e}"))?;
    let obj = v
        .as_object()
        .ok_or_else(|| format!("invalid filter '{raw}'"))?;
    for (k, vals) in obj {
        let list: Vec<String> = match vals {
            Value::Object(m) => m.keys().cloned().collect(),
            Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect(),
            _ => return Err(format!("invalid filter '{raw}'")),
        };
        out.insert(k.clone(), list);
    }
    Ok(out)
}

async fn read_json(req: Request<Incoming>) -> Result<Value, Response<Body>> {
    let limited = http_body_util::Limited::new(req.into_body(), MAX_JSON_BODY);
    let bytes = match limited.collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                format!("request body too large or unreadable: {e}"),
            ));
        }
    };
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("invalid JSON: {e}")))
}

/// Splits `/v1.47/containers/x/json` into ("containers/x/json") after
/// checking the version.
fn strip_version(path: &str) -> Result<&str, String> {
    let p = path.trim_start_matches('/');
    if let Some(rest) = p.strip_prefix('v')
        && let Some((ver, tail)) = rest.split_once('/')
        && ver.contains('.')
        && ver.split('.').all(|x| x.parse::<u32>().is_ok())
    {
        let parse = |v: &str| -> (u32, u32) {
            let mut it = v.split('.').map(|x| x.parse::<u32>().unwrap_or(0));
            (it.next().unwrap_or(0), it.next().unwrap_or(0))
        };
        if parse(ver) > parse(API_VERSION) {
            return Err(format!(
                "client version {ver} is too new. Maximum supported API version is {API_VERSION}"
            ));
        }
        if parse(ver) < parse(MIN_API_VERSION) {
            return Err(format!(
                "client version {ver} is too old. Minimum supported API version is {MIN_API_VERSION}, \
                 please upgrade your client to a newer version"
            ));
        }
        return Ok(tail);
    }
    Ok(p)
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    tracing::debug!("{method} {}", req.uri());
    let mut resp = match strip_version(&path) {
        Err(msg) => error(StatusCode::BAD_REQUEST, msg),
        Ok(p) => {
            let p = p.trim_end_matches('/').to_owned();
            route(shared, req, &method, &p).await
        }
    };
    let h = resp.headers_mut();
    h.insert("Api-Version", HeaderValue::from_static(API_VERSION));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert(
        "Server",
        HeaderValue::from_static(concat!("berth/", env!("CARGO_PKG_VERSION"), " (linux)")),
    );
    resp
}

async fn route(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    method: &Method,
    p: &str,
) -> Response<Body> {
    let parts: Vec<&str> = p.split('/').collect();
    let root = shared.root.clone();
    match (method.as_str(), parts.as_slice()) {
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
        ("POST", ["commit"]) => {
            let q = query(&req);
            let changes: Vec<String> = req
                .uri()
                .query()
                .unwrap_or("")
                .split('&')
                .filter_map(|p| p.strip_prefix("changes="))
                .map(decode)
                .filter(|c| !c.is_empty())
                .collect();
            let body = match read_json(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let container = q.get("container").cloned().unwrap_or_default();
            let repo = q.get("repo").cloned().unwrap_or_default();
            let tag = q.get("tag").cloned().unwrap_or_default();
            let comment = q.get("comment").cloned().filter(|c| !c.is_empty());
            let author = q.get("author").cloned().filter(|c| !c.is_empty());
            let pause = q.get("pause").is_none_or(|v| truthy(Some(v)));
            let r = blocking(&root, move |e| {
                let name = match (repo.is_empty(), tag.is_empty()) {
                    (true, _) => None,
                    (false, true) => Some(repo.clone()),
                    (false, false) => Some(format!("{repo}:{tag}")),
                };
                let name = name
                    .map(|n| {
                        berth_types::Reference::parse(&n).map_err(|x| {
                            EngineError::Invalid(format!("invalid reference format: {x}"))
                        })
                    })
                    .transpose()?;
                let mut ch = berth_engine::changes::parse_changes(&changes)?;
                // a Config in the body overrides like --change
                if let Some(cfg) = body.as_object().filter(|o| !o.is_empty()) {
                    let c: berth_types::image::ContainerConfig =
                        serde_json::from_value(Value::Object(cfg.clone())).map_err(|x| {
                            EngineError::Invalid(format!("invalid commit config: {x}"))
                        })?;
                    if c.cmd.is_some() {
                        ch.cmd = c.cmd;
                    }
                    if c.entrypoint.is_some() {
                        ch.entrypoint = c.entrypoint;
                    }
                    ch.env.extend(c.env);
                    ch.labels.extend(c.labels);
                }
                e.commit(
                    &container,
                    name.as_ref(),
                    comment.as_deref(),
                    author.as_deref(),
                    Some(ch),
                    pause,
                )
            })
            .await;
            match r {
                Ok(id) => json_resp(StatusCode::CREATED, &json!({"Id": id.to_string()})),
                Err(e) => engine_error(e),
            }
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
        ("POST", ["containers", id, "exec"]) => {
            let body = match read_json(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let rec = match exec_record(&body) {
                Ok(r) => r,
                Err(m) => return error(StatusCode::BAD_REQUEST, m),
            };
            let id = id.to_string();
            match blocking(&root, move |e| e.exec_create(&id, rec)).await {
                Ok(eid) => json_resp(StatusCode::CREATED, &json!({"Id": eid})),
                Err(e) => engine_error(e),
            }
        }
        ("POST", ["exec", eid, "start"]) => exec_start(&root, req, eid).await,
        ("POST", ["exec", eid, "resize"]) => {
            let q = query(&req);
            let h = q.get("h").and_then(|v| v.parse().ok()).unwrap_or(0);
            let w = q.get("w").and_then(|v| v.parse().ok()).unwrap_or(0);
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
        ("GET", ["containers", id, "stats"]) => stats(&root, id, &query(&req)).await,
        ("GET", ["images", "json"]) => images_list(&root).await,
        ("GET", ["system", "df"]) => system_df(&root).await,
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
        ("POST", ["images", "prune"]) => {
            let f = match filters(&query(&req)) {
                Ok(f) => f,
                Err(m) => return error(StatusCode::BAD_REQUEST, m),
            };
            // docker: dangling=false means every unused image
            let all = f
                .get("dangling")
                .is_some_and(|v| v.iter().any(|x| x == "false" || x == "0"));
            let r = blocking(&root, move |e| {
                let used = e.images_in_use();
                Ok(e.images().prune(all, &|d| used.contains(d))?)
            })
            .await;
            match r {
                Ok((removed, gc)) => {
                    let v = removed_json(&removed);
                    json_resp(
                        StatusCode::OK,
                        &json!({"ImagesDeleted": v, "SpaceReclaimed": gc.bytes}),
                    )
                }
                Err(e) => engine_error(e),
            }
        }
        ("POST", ["build", "prune"]) => json_resp(
            StatusCode::OK,
            &json!({"CachesDeleted": [], "SpaceReclaimed": 0}),
        ),
        ("GET", ["images", rest @ .., "json"]) if !rest.is_empty() => {
            let name = rest.join("/");
            let r = blocking(&root, move |e| {
                let rec = e.images().resolve(&name)?;
                Ok(shapes::image_inspect(e.images(), &rec.id)?)
            })
            .await;
            match r {
                Ok(v) => json_resp(StatusCode::OK, &v),
                Err(e) => engine_error(e),
            }
        }
        ("POST", ["images", rest @ .., "tag"]) if !rest.is_empty() => {
            let name = rest.join("/");
            let q = query(&req);
            let repo = q.get("repo").cloned().unwrap_or_default();
            let tag = q.get("tag").cloned().filter(|t| !t.is_empty());
            let target = match tag {
                Some(t) => format!("{repo}:{t}"),
                None => repo,
            };
            let r = blocking(&root, move |e| {
                let t = berth_types::Reference::parse(&target)
                    .map_err(|x| EngineError::Invalid(format!("invalid reference format: {x}")))?;
                Ok(e.images().tag(&name, &t)?)
            })
            .await;
            match r {
                Ok(()) => empty(StatusCode::CREATED),
                Err(e) => engine_error(e),
            }
        }
        ("DELETE", ["images", rest @ ..]) if !rest.is_empty() => {
            let name = rest.join("/");
            let force = truthy(query(&req).get("force"));
            let r = blocking(&root, move |e| {
                let in_use = e.images_in_use();
                Ok(e.images().remove(&name, force, &|d| in_use.contains(d))?)
            })
            .await;
            match r {
                Ok(removed) => {
                    let v = removed_json(&removed);
                    json_resp(StatusCode::OK, &Value::Array(v))
                }
                Err(e) => engine_error(e),
            }
        }
        ("POST", ["images", "create"]) => images_create(shared.clone(), req).await,
        ("POST", ["images", "load"]) => images_load(&root, req).await,
        ("POST", ["images", rest @ .., "push"]) if !rest.is_empty() => {
            let name = rest.join("/");
            let tag = query(&req).get("tag").cloned().unwrap_or_default();
            progress_stream(&shared, move |e, reg, p| {
                crate::images_api::push(e.images(), reg, &name, &tag, p)
            })
        }
        ("GET", ["images", "get"]) => {
            let names: Vec<String> = req
                .uri()
                .query()
                .unwrap_or("")
                .split('&')
                .filter_map(|p| p.strip_prefix("names="))
                .map(decode)
                .collect();
            images_save(&root, names)
        }
        ("GET", ["images", rest @ .., "get"]) if !rest.is_empty() => {
            images_save(&root, vec![rest.join("/")])
        }
        ("POST", ["build"]) => error(
            StatusCode::NOT_IMPLEMENTED,
            "not supported yet: docker build (the builder arrives with its own issue)",
        ),
        ("GET", ["networks"]) => {
            let f = match filters(&query(&req)) {
                Ok(f) => f,
                Err(m) => return error(StatusCode::BAD_REQUEST, m),
            };
            match blocking(&root, move |e| e.networks()).await {
                Ok(list) => {
                    let v: Vec<Value> = list
                        .iter()
                        .filter(|n| {
                            f.iter().all(|(k, vals)| {
                                vals.iter().any(|x| match k.as_str() {
                                    "name" => n.name.contains(x.as_str()),
                                    "id" => n.id.starts_with(x.as_str()),
                                    "driver" => n.driver == *x,
                                    "type" => {
                                        (x == "builtin")
                                            == n.network.as_ref().is_none_or(|m| m.default)
                                    }
                                    "label" => n.network.as_ref().is_some_and(|m| {
                                        berth_engine::volumes::label_matches(&m.labels, x)
                                    }),
                                    _ => false,
                                })
                            })
                        })
                        .map(shapes::network)
                        .collect();
                    json_resp(StatusCode::OK, &Value::Array(v))
                }
                Err(e) => engine_error(e),
            }
        }
        ("GET", ["networks", key]) => {
            let key = key.to_string();
            match blocking(&root, move |e| e.network(&key)).await {
                Ok(n) => json_resp(StatusCode::OK, &shapes::network(&n)),
                Err(e) => engine_error(e),
            }
        }
        ("POST", ["networks", "create"]) => {
            let body = match read_json(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let s = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
            let map = |k: &str| string_map(body.get(k));
            if body
                .get("EnableIPv6")
                .and_then(Value::as_bool)
                .unwrap_or(false)
            {
                return error(StatusCode::BAD_REQUEST, "not supported yet: IPv6 networks");
            }
            let cfgs = body
                .get("IPAM")
                .and_then(|i| i.get("Config"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if cfgs.len() > 1 {
                return error(
                    StatusCode::BAD_REQUEST,
                    "not supported yet: more than one subnet per network",
                );
            }
            let c = cfgs.first().cloned().unwrap_or_default();
            let cs = |k: &str| {
                c.get(k)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .filter(|x| !x.is_empty())
            };
            let req = berth_net::CreateNetwork {
                name: s("Name"),
                driver: s("Driver"),
                subnet: cs("Subnet"),
                gateway: cs("Gateway"),
                ip_range: cs("IPRange"),
                internal: body
                    .get("Internal")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                attachable: body
                    .get("Attachable")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                labels: map("Labels"),
                options: map("Options"),
            };
            match blocking(&root, move |e| e.create_network(&req)).await {
                Ok(n) => json_resp(StatusCode::CREATED, &json!({"Id": n.id, "Warning": ""})),
                Err(e) => engine_error(e),
            }
        }
        ("POST", ["networks", "prune"]) => match blocking(&root, move |e| e.prune_networks()).await
        {
            Ok(names) => json_resp(StatusCode::OK, &json!({"NetworksDeleted": names})),
            Err(e) => engine_error(e),
        },
        ("DELETE", ["networks", key]) => {
            let key = key.to_string();
            match blocking(&root, move |e| e.remove_network(&key)).await {
                Ok(()) => empty(StatusCode::NO_CONTENT),
                Err(e) => engine_error(e),
            }
        }
        ("POST", ["networks", net, action @ ("connect" | "disconnect")]) => {
            let body = match read_json(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let container = body
                .get("Container")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let cfg = body.get("EndpointConfig").cloned().unwrap_or(Value::Null);
            let aliases: Vec<String> = cfg
                .get("Aliases")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let ip = cfg
                .get("IPAMConfig")
                .and_then(|i| i.get("IPv4Address"))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned);
            let force = body.get("Force").and_then(Value::as_bool).unwrap_or(false);
            let (net, connect) = (net.to_string(), *action == "connect");
            let r = blocking(&root, move |e| {
                if connect {
                    e.network_connect(&net, &container, aliases, ip)
                } else {
                    e.network_disconnect(&net, &container, force)
                }
            })
            .await;
            match r {
                Ok(()) => empty(StatusCode::OK),
                Err(e) => engine_error(e),
            }
        }
        ("GET", ["volumes"]) => volumes_list(&root, &query(&req)).await,
        ("GET", ["volumes", name]) => {
            let name = name.to_string();
            match blocking(&root, move |e| e.volume(&name)).await {
                Ok(v) => json_resp(StatusCode::OK, &json!(v)),
                Err(e) => engine_error(e),
            }
        }
        ("POST", ["volumes", "create"]) => {
            let body = match read_json(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let map = |k: &str| string_map(body.get(k));
            let name = body.get("Name").and_then(Value::as_str).map(str::to_owned);
            let driver = body
                .get("Driver")
                .and_then(Value::as_str)
                .unwrap_or("local")
                .to_owned();
            let (opts, labels) = (map("DriverOpts"), map("Labels"));
            match blocking(&root, move |e| {
                e.create_volume(name.as_deref(), &driver, &opts, &labels)
            })
            .await
            {
                Ok(v) => json_resp(StatusCode::CREATED, &json!(v)),
                Err(e) => engine_error(e),
            }
        }
        ("POST", ["volumes", "prune"]) => {
            let filters = match filters(&query(&req)) {
                Ok(f) => f,
                Err(m) => return error(StatusCode::BAD_REQUEST, m),
            };
            let labels: Vec<String> = filters.get("label").cloned().unwrap_or_default();
            let all = filters
                .get("all")
                .is_some_and(|v| v.iter().any(|x| x == "true" || x == "1"));
            match blocking(&root, move |e| e.prune_volumes(all, &labels)).await {
                Ok((names, bytes)) => json_resp(
                    StatusCode::OK,
                    &json!({"VolumesDeleted": names, "SpaceReclaimed": bytes}),
                ),
                Err(e) => engine_error(e),
            }
        }
        ("DELETE", ["volumes", name]) => {
            let force = truthy(query(&req).get("force"));
            let name = name.to_string();
            match blocking(&root, move |e| e.remove_volume(&name, force)).await {
                Ok(()) => empty(StatusCode::NO_CONTENT),
                Err(e) => engine_error(e),
            }
        }
        ("GET", ["plugins", name, "json"]) => error(
            StatusCode::NOT_FOUND,
            format!("plugin \"{name}\" not found"),
        ),
        ("GET", ["events"]) => events(&root, &query(&req)),
        _ => error(StatusCode::NOT_FOUND, "page not found"),
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

async fn attach(shared: Arc<Shared>, mut req: Request<Incoming>, id: &str) -> Response<Body> {
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

/// `GET /containers/{id}/stats`: one document (`stream=false`, with a
/// second sample half a second later so CPU % can be computed; none with
/// `one-shot`), or one per second until the client goes.
async fn stats(root: &std::path::Path, id: &str, q: &HashMap<String, String>) -> Response<Body> {
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

/// `POST /images/create`: a pull (`fromImage`) with docker's JSON
/// progress, or an import of the body (`fromSrc=-`).
async fn images_create(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let q = query(&req);
    let root = shared.root.clone();
    if let Some(src) = q.get("fromSrc").filter(|s| !s.is_empty()) {
        if src != "-" {
            return error(
                StatusCode::NOT_IMPLEMENTED,
                "not supported yet: import from a URL (send the tarball as the body)",
            );
        }
        let repo = q.get("repo").cloned().unwrap_or_default();
        let tag = q.get("tag").cloned().unwrap_or_default();
        let message = q.get("message").cloned().filter(|m| !m.is_empty());
        let name = if repo.is_empty() {
            None
        } else if tag.is_empty() {
            Some(repo)
        } else {
            Some(format!("{repo}:{tag}"))
        };
        let reader = crate::images_api::BodyReader::new(req.into_body());
        let r = blocking(&root, move |e| {
            let name =
                match &name {
                    Some(n) => Some(berth_types::Reference::parse(n).map_err(|x| {
                        EngineError::Invalid(format!("invalid reference format: {x}"))
                    })?),
                    None => None,
                };
            Ok(e.images().import(
                reader,
                Default::default(),
                message.as_deref(),
                name.as_ref(),
            )?)
        })
        .await;
        return match r {
            Ok(id) => full(
                StatusCode::OK,
                format!("{}\r\n", json!({"status": id.to_string()})),
                Some("application/json"),
            ),
            Err(e) => engine_error(e),
        };
    }
    let Some(from) = q.get("fromImage").filter(|s| !s.is_empty()).cloned() else {
        return error(
            StatusCode::BAD_REQUEST,
            "fromImage or fromSrc must be given",
        );
    };
    let tag = q.get("tag").cloned().unwrap_or_default();
    progress_stream(&shared, move |e, reg, p| {
        crate::images_api::pull(e.images(), reg, &from, &tag, p)
    })
}

/// A pull or push on a blocking thread, its docker JSON progress streamed
/// as the response (errors go into the stream, as dockerd does).
fn progress_stream(
    shared: &Shared,
    work: impl FnOnce(
        &Engine,
        &berth_image::registry::RegistryOptions,
        Arc<crate::images_api::JsonProgress>,
    ) + Send
    + 'static,
) -> Response<Body> {
    // progress arrives from the registry client's own runtime: an unbounded
    // (never blocking) channel, drained into the bounded response body
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
    let (out_tx, out_rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            if out_tx.send(b).await.is_err() {
                return;
            }
        }
    });
    let (root, registry) = (shared.root.clone(), shared.registry.clone());
    tokio::task::spawn_blocking(move || {
        let progress = Arc::new(crate::images_api::JsonProgress(tx));
        match engine_for(&root) {
            Ok(e) => work(&e, &registry, progress),
            Err(e) => progress
                .send(json!({"errorDetail": {"message": e.to_string()}, "error": e.to_string()})),
        }
    });
    streaming(Some("application/json"), out_rx)
}

/// `POST /images/load`: the body is a docker-archive or oci-archive.
async fn images_load(root: &std::path::Path, req: Request<Incoming>) -> Response<Body> {
    // `quiet` only silences progress bars, which a load here has none of
    let reader = crate::images_api::BodyReader::new(req.into_body());
    let r = blocking(root, move |e| Ok(e.images().load(reader)?)).await;
    match r {
        Ok(loaded) => {
            let mut out = String::new();
            for l in &loaded {
                if l.names.is_empty() {
                    out.push_str(&format!(
                        "{}\r\n",
                        json!({"stream": format!("Loaded image ID: {}\n", l.id)})
                    ));
                }
                for n in &l.names {
                    out.push_str(&format!(
                        "{}\r\n",
                        json!({"stream": format!("Loaded image: {}\n", n.familiar())})
                    ));
                }
            }
            full(StatusCode::OK, out, Some("application/json"))
        }
        Err(e) => engine_error(e),
    }
}

/// `GET /images/get`: a docker-archive of the named images, streamed.
fn images_save(root: &std::path::Path, names: Vec<String>) -> Response<Body> {
    if names.is_empty() {
        return error(StatusCode::BAD_REQUEST, "no image names given");
    }
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let root = root.to_path_buf();
    // resolve first, so a missing image is a 404 and not a broken stream
    let engine = match engine_for(&root) {
        Ok(e) => e,
        Err(e) => return engine_error(e),
    };
    for n in &names {
        if let Err(e) = engine.images().resolve(n) {
            return engine_error(e.into());
        }
    }
    tokio::task::spawn_blocking(move || {
        let w = crate::images_api::ChannelWriter(tx);
        if let Err(e) = engine.images().save_docker(&names, w) {
            tracing::warn!("save: {e}");
        }
    });
    streaming(Some("application/x-tar"), rx)
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

/// An exec create body → the engine's record.
fn exec_record(body: &Value) -> Result<berth_engine::exec::ExecRecord, String> {
    let obj = body
        .as_object()
        .ok_or("the request body must be a JSON object")?;
    let b = |k: &str| obj.get(k).and_then(Value::as_bool).unwrap_or(false);
    let s = |k: &str| {
        obj.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let list = |k: &str| -> Vec<String> {
        match obj.get(k) {
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| {
                    x.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| x.to_string())
                })
                .collect(),
            Some(Value::String(v)) => v.split_whitespace().map(str::to_owned).collect(),
            _ => Vec::new(),
        }
    };
    let console_size = obj
        .get("ConsoleSize")
        .and_then(Value::as_array)
        .and_then(|a| Some((a.first()?.as_u64()? as u16, a.get(1)?.as_u64()? as u16)))
        .filter(|(h, w)| *h > 0 && *w > 0);
    Ok(berth_engine::exec::ExecRecord {
        cmd: list("Cmd"),
        env: list("Env"),
        user: s("User"),
        working_dir: s("WorkingDir"),
        tty: b("Tty"),
        privileged: b("Privileged"),
        attach_stdin: b("AttachStdin"),
        attach_stdout: b("AttachStdout"),
        attach_stderr: b("AttachStderr"),
        console_size,
        ..Default::default()
    })
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
    let body = match read_json(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let detach = body.get("Detach").and_then(Value::as_bool).unwrap_or(false);
    let eid = eid.to_string();
    let e2 = eid.clone();
    let rec = match blocking(root, move |e| e.exec_inspect(&e2)).await {
        Ok(r) => r,
        Err(e) => return engine_error(e),
    };
    let tty = rec.tty;
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
    if !upgrade_requested {
        return error(
            StatusCode::BAD_REQUEST,
            "not supported yet: exec start without Upgrade: tcp",
        );
    }
    // The process starts once the client has the 101: output sent in the
    // same packet as the response head is lost by clients that read the
    // head through a buffer (docker-py).
    let root = root.to_path_buf();
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
            let text = format!("OCI runtime exec failed: {e}\r\n");
            let mut out = Vec::new();
            if !tty {
                out.extend_from_slice(&[2, 0, 0, 0]);
                out.extend_from_slice(&(text.len() as u32).to_be_bytes());
            }
            out.extend_from_slice(text.as_bytes());
            let _ = io.write_all(&out).await;
            let _ = io.shutdown().await;
            return;
        }
        match sock {
            Some(s) => relay(io, s, tty).await,
            None => {
                let _ = io.shutdown().await;
            }
        }
    });
    switching_protocols(tty)
}

/// The 101 that hands the connection over to a raw (terminal) or
/// multiplexed stream.
fn switching_protocols(tty: bool) -> Response<Body> {
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
async fn relay<T>(client: T, mon: std::os::unix::net::UnixStream, tty: bool)
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

async fn logs(root: &std::path::Path, id: &str, q: &HashMap<String, String>) -> Response<Body> {
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

async fn volumes_list(root: &std::path::Path, q: &HashMap<String, String>) -> Response<Body> {
    let f = match filters(q) {
        Ok(f) => f,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    for k in f.keys() {
        if !matches!(k.as_str(), "dangling" | "name" | "label" | "driver") {
            return error(StatusCode::BAD_REQUEST, format!("invalid filter '{k}'"));
        }
    }
    let r = blocking(root, move |e| {
        let used: std::collections::BTreeSet<String> = e
            .list()
            .iter()
            .flat_map(|c| c.record.mounts.iter().map(|m| m.name.clone()))
            .collect();
        let vols: Vec<Value> = e
            .volumes()
            .into_iter()
            .filter(|v| {
                f.iter().all(|(k, vals)| {
                    vals.iter().all(|x| match k.as_str() {
                        "dangling" => used.contains(&v.name) != matches!(x.as_str(), "true" | "1"),
                        "name" => v.name.contains(x.as_str()),
                        "label" => berth_engine::volumes::label_matches(&v.labels, x),
                        _ => v.driver == *x,
                    })
                })
            })
            .map(|v| json!(v))
            .collect();
        Ok(vols)
    })
    .await;
    match r {
        Ok(v) => json_resp(StatusCode::OK, &json!({"Volumes": v, "Warnings": null})),
        Err(e) => engine_error(e),
    }
}

/// `GET /images/json` entries.
fn image_summaries(
    list: &[berth_image::images::ImageSummary],
    in_use: &std::collections::BTreeSet<berth_types::Digest>,
) -> Vec<Value> {
    let fam = |n: &String| {
        berth_types::Reference::parse(n)
            .map(|r| r.familiar())
            .unwrap_or_else(|_| n.clone())
    };
    list.iter()
        .map(|s| {
            let created = s
                .record
                .created
                .as_deref()
                .and_then(parse_rfc3339_secs)
                .unwrap_or(0);
            json!({
                "Id": s.record.id.to_string(),
                "ParentId": "",
                "RepoTags": s.tags.iter().map(fam).collect::<Vec<_>>(),
                "RepoDigests": s.digests.iter().map(fam).collect::<Vec<_>>(),
                "Created": created,
                "Size": s.record.size,
                "SharedSize": -1,
                "VirtualSize": s.record.size,
                "Labels": null,
                "Containers": if in_use.contains(&s.record.id) { 1 } else { 0 },
            })
        })
        .collect()
}

async fn images_list(root: &std::path::Path) -> Response<Body> {
    let r = blocking(root, |e| {
        let in_use = e.images_in_use();
        Ok(image_summaries(&e.images().list()?, &in_use))
    })
    .await;
    match r {
        Ok(v) => json_resp(StatusCode::OK, &Value::Array(v)),
        Err(e) => engine_error(e),
    }
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

/// Docker's list of what an image removal untagged and deleted.
fn removed_json(removed: &[berth_image::Removed]) -> Vec<Value> {
    removed
        .iter()
        .map(|r| match r {
            berth_image::Removed::Untagged(n) => json!({"Untagged": n}),
            berth_image::Removed::Deleted(d) => json!({"Deleted": d.to_string()}),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_queries() {
        assert_eq!(
            strip_version("/v1.41/containers/json").unwrap(),
            "containers/json"
        );
        assert_eq!(strip_version("/_ping").unwrap(), "_ping");
        assert!(strip_version("/v1.99/info").is_err());
        assert!(strip_version("/v1.12/info").is_err());
        assert_eq!(strip_version("/volumes/v1").unwrap(), "volumes/v1");
        assert_eq!(decode("docker.io%2Fmyrepo%2Fbb"), "docker.io/myrepo/bb");
        assert!(truthy(Some(&"True".to_owned())));
        assert!(!truthy(Some(&"False".to_owned())));
        assert!(!truthy(Some(&"0".to_owned())));
        let mut q = HashMap::new();
        q.insert(
            "filters".to_owned(),
            r#"{"name":{"web":true},"label":["a=b"]}"#.to_owned(),
        );
        let f = filters(&q).unwrap();
        assert_eq!(f["name"], ["web"]);
        assert_eq!(f["label"], ["a=b"]);
        q.insert("filters".to_owned(), "{bad".to_owned());
        assert!(filters(&q).is_err());
    }
}
