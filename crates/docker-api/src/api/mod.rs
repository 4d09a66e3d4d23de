//! The Docker API's endpoints, one module per resource (as the registry's
//! `api/`): the path is split here and handed to its resource's router.

mod build;
mod containers;
mod exec;
mod images;
mod images_io;
mod images_remote;
mod networks;
mod streams;
mod system;
mod volumes;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use berth_engine::{Engine, Error as EngineError};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use tokio::sync::oneshot;

use crate::http::{Body, decode_segment, not_found};

pub(crate) struct Pending {
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tx: oneshot::Sender<std::os::unix::net::UnixStream>,
}

pub(crate) struct Shared {
    pub(crate) root: PathBuf,
    /// Registry settings for pulls (berth's daemon.json).
    pub(crate) registry: berth_image::registry::RegistryOptions,
    /// Attach requests waiting for their container to start.
    pub(crate) pending: Mutex<HashMap<String, Vec<Pending>>>,
    /// `GET /events` streams open now (`info`'s `NEventsListener`).
    pub(crate) event_listeners: Arc<std::sync::atomic::AtomicUsize>,
}

impl Shared {
    /// The state the endpoints share for a root.
    pub(crate) fn new(root: PathBuf, registry: berth_image::registry::RegistryOptions) -> Shared {
        Shared {
            root,
            registry,
            pending: Mutex::new(HashMap::new()),
            event_listeners: Arc::default(),
        }
    }
}

/// Hands a request to its resource's router.
pub(crate) async fn route(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    method: &Method,
    p: &str,
) -> Response<Body> {
    let segments: Vec<String> = p.split('/').map(decode_segment).collect();
    let parts: Vec<&str> = segments.iter().map(String::as_str).collect();
    match parts.first().copied().unwrap_or("") {
        "containers" if parts.get(2) == Some(&"exec") => {
            exec::route(shared, req, method, &parts).await
        }
        "containers" => containers::route(shared, req, method, &parts).await,
        "exec" => exec::route(shared, req, method, &parts).await,
        "images" | "commit" | "build" | "auth" | "distribution" => {
            images::route(shared, req, method, &parts).await
        }
        "networks" => networks::route(shared, req, method, &parts).await,
        "volumes" => volumes::route(shared, req, method, &parts).await,
        "_ping" | "version" | "info" | "events" | "system" | "plugins" | "session" | "grpc"
        | "swarm" | "nodes" | "services" | "tasks" | "secrets" | "configs" => {
            system::route(shared, req, method, &parts).await
        }
        _ => not_found(),
    }
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
    .unwrap_or_else(|e| Err(EngineError::Internal(format!("internal error: {e}"))))
}
