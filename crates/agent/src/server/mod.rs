//! The kubelet API of a node: HTTPS on the node's address (port 10250),
//! a serving certificate signed by the cluster CA, and a client certificate
//! signed by the same CA required of every caller (the API server's
//! `kube-apiserver-kubelet-client`). It serves what `kubectl logs`, `exec`,
//! `attach` and `port-forward` reach through the API server:
//!
//! - `GET /containerLogs/{ns}/{pod}/{container}` ([`logs`]);
//! - `/exec/{ns}/{pod}/{container}` and `/attach/{ns}/{pod}/{container}`
//!   over WebSocket ([`stream`], framed by [`channel`]);
//! - `/portForward/{ns}/{pod}` over WebSocket ([`portforward`]);
//! - `/metrics` (the kubelet's series), `/metrics/cadvisor` (the cgroups')
//!   and `/metrics/resource` (what `metrics.k8s.io` reads), in the
//!   Prometheus text format.
//!
//! The API server (its kubelet-client certificate) and `system:masters`
//! are served; another CA-signed user is authorized as the kubelet does,
//! by a SubjectAccessReview for `nodes/<subresource>` of this node
//! (`nodes/metrics` for `/metrics…`, `nodes/proxy` for exec, logs…) when
//! the server was given a client ([`KubeletServer::with_authorizer`]), and
//! refused otherwise. Containers are found by the
//! labels the agent gives them ([`lookup`]); every engine call runs on a
//! blocking thread.

mod authz;
mod cadvisor;
pub mod channel;
mod http;
mod kubelet;
pub mod logs;
pub mod lookup;
mod metrics;
pub mod portforward;
pub mod spdy;
pub mod spdy_forward;
pub mod spdy_stream;
pub mod stream;

mod tls;
mod upgrade;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use berth_engine::Engine;
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

pub use tls::ServerTls;

/// The kubelet API server of a node, bound and ready to [`run`](KubeletServer::run).
pub struct KubeletServer {
    listener: TcpListener,
    tls: TlsAcceptor,
    state: Arc<State>,
}

impl std::fmt::Debug for KubeletServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeletServer")
            .field("root", &self.state.root)
            .finish_non_exhaustive()
    }
}

/// What every request handler shares.
pub(crate) struct State {
    /// The engine's root (sandboxes live in `<root>/sandboxes/<id>`).
    pub root: PathBuf,
    /// The engine.
    pub engine: Arc<Engine>,
    /// The node's name (empty: not told, no `kubelet_node_name`).
    pub node: String,
    /// What the agent's workers count.
    pub metrics: Arc<crate::kubelet_metrics::KubeletMetrics>,
    /// Who reviews callers other than the API server.
    pub authorizer: Option<kube::Client>,
}

impl State {
    /// Runs engine work on a blocking thread.
    pub async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Engine) -> T + Send + 'static,
    ) -> Result<T, http::Failure> {
        let engine = Arc::clone(&self.engine);
        tokio::task::spawn_blocking(move || f(&engine))
            .await
            .map_err(|e| http::Failure::internal(format!("engine task failed: {e}")))
    }
}

impl KubeletServer {
    /// Binds `addr`, loads the TLS material and opens the engine at
    /// `engine_root`.
    pub async fn bind(
        addr: SocketAddr,
        tls: ServerTls,
        engine_root: PathBuf,
    ) -> std::io::Result<KubeletServer> {
        let root = engine_root.clone();
        let engine = tokio::task::spawn_blocking(move || Engine::open(&root))
            .await
            .map_err(std::io::Error::other)?
            .map_err(|e| {
                std::io::Error::other(format!("open the engine at {}: {e}", engine_root.display()))
            })?;
        KubeletServer::bind_with_engine(addr, tls, Arc::new(engine), engine_root).await
    }

    /// Binds `addr` over an engine already open (the agent's own), whose
    /// root is `engine_root`.
    pub async fn bind_with_engine(
        addr: SocketAddr,
        tls: ServerTls,
        engine: Arc<Engine>,
        engine_root: PathBuf,
    ) -> std::io::Result<KubeletServer> {
        let config = tls.server_config()?;
        let listener = TcpListener::bind(addr).await?;
        Ok(KubeletServer {
            listener,
            tls: TlsAcceptor::from(config),
            state: Arc::new(State {
                root: engine_root,
                engine,
                node: String::new(),
                metrics: Arc::default(),
                authorizer: None,
            }),
        })
    }

    /// Serves `metrics` (the agent's counters) for node `node` on `/metrics`.
    pub fn with_metrics(
        mut self,
        node: &str,
        metrics: Arc<crate::kubelet_metrics::KubeletMetrics>,
    ) -> KubeletServer {
        if let Some(state) = Arc::get_mut(&mut self.state) {
            state.node = node.to_owned();
            state.metrics = metrics;
        }
        self
    }

    /// Authorizes callers other than the API server and `system:masters`
    /// with SubjectAccessReviews through `client`.
    pub fn with_authorizer(mut self, client: kube::Client) -> KubeletServer {
        if let Some(state) = Arc::get_mut(&mut self.state) {
            state.authorizer = Some(client);
        }
        self
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves. Open streams (a followed log, an
    /// exec) are cut when the process ends, not by this.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                _ = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        tracing::warn!(error = %e, "kubelet API: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let tls = self.tls.clone();
            let state = Arc::clone(&self.state);
            tokio::spawn(async move {
                let Ok(Ok(tls_stream)) =
                    tokio::time::timeout(Duration::from_secs(10), tls.accept(stream)).await
                else {
                    tracing::debug!(%peer, "kubelet API: TLS handshake failed");
                    return;
                };
                let caller = tls_stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|chain| chain.first())
                    .map(|der| tls::Caller::from_der(der.as_ref()))
                    .unwrap_or_default();
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let state = Arc::clone(&state);
                    let caller = caller.clone();
                    async move {
                        let refused =
                            authz::check(state.authorizer.as_ref(), &state.node, &caller, &request)
                                .await;
                        let response = match refused {
                            Some(refused) => refused.into_response(),
                            None => route(state, request).await,
                        };
                        Ok::<_, std::convert::Infallible>(response)
                    }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(30))
                    .serve_connection(TokioIo::new(tls_stream), service)
                    .with_upgrades();
                if let Err(e) = connection.await {
                    tracing::debug!(%peer, error = %e, "kubelet API: connection ended");
                }
            });
        }
    }
}

/// Routes one request.
async fn route(state: Arc<State>, request: Request<Incoming>) -> Response<Body> {
    let path = request.uri().path().to_owned();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let method = request.method().clone();
    let answer = match (parts.as_slice(), &method) {
        (["containerLogs", ns, pod, container], &Method::GET) => {
            logs::serve(&state, ns, pod, container, request.uri().query()).await
        }
        (["exec", ns, pod, container], &Method::GET | &Method::POST) => {
            let target = lookup::Target::new(ns, pod, container);
            stream::serve(&state, stream::Kind::Exec, target, request).await
        }
        (["attach", ns, pod, container], &Method::GET | &Method::POST) => {
            let target = lookup::Target::new(ns, pod, container);
            stream::serve(&state, stream::Kind::Attach, target, request).await
        }
        (["portForward", ns, pod], &Method::GET | &Method::POST) => {
            portforward::serve(&state, ns, pod, request).await
        }
        (["healthz"], &Method::GET) => Ok(http::text(200, "ok")),
        (["metrics"], &Method::GET) => kubelet::serve(&state).await,
        (["metrics", "cadvisor"], &Method::GET) => cadvisor::serve(&state).await,
        (["metrics", "resource"], &Method::GET) => metrics::resource(&state).await,
        _ => Err(http::Failure::new(
            404,
            format!("404 page not found: {method} {path}"),
        )),
    };
    answer.unwrap_or_else(http::Failure::into_response)
}
