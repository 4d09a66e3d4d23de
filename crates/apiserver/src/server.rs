//! The HTTPS listener: TLS with optional client certificates (verified
//! against the cluster CA), HTTP/1.1 and HTTP/2, the peer's certificate
//! chain handed to authentication as a request extension, graceful
//! shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::api::{self, Api};

/// How long shutdown waits for open requests (watches are cut).
const DRAIN: Duration = Duration::from_secs(5);

/// The user of a request made in process (DESIGN invariant 3: the
/// controllers and the agent of `berth server` reach the API through the
/// router as a `tower::Service`, the same code path a remote client
/// takes over HTTPS). Only code in this process can attach it: nothing
/// read from the network becomes a request extension.
#[derive(Debug, Clone)]
pub struct InProcessUser(pub crate::auth::authn::UserInfo);

/// The router as an in-process `tower::Service` for a client library
/// (kube-rs's `Client::new`), every request made as `user` (authorized by
/// RBAC like any other).
pub fn in_process<B>(
    api: Arc<Api>,
    user: crate::auth::authn::UserInfo,
) -> impl tower::Service<
    hyper::Request<B>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone
+ Send
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    api::router(api).map_request(move |mut request: hyper::Request<B>| {
        request.extensions_mut().insert(InProcessUser(user.clone()));
        request.map(axum::body::Body::new)
    })
}

/// The DER certificate chain a client presented.
#[derive(Debug, Clone)]
pub struct PeerCertificates(pub Vec<Vec<u8>>);

/// A bound API server.
pub struct Server {
    listener: TcpListener,
    tls: TlsAcceptor,
    api: Arc<Api>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").finish_non_exhaustive()
    }
}

impl Server {
    /// Binds the address.
    pub async fn bind(
        addr: SocketAddr,
        tls: Arc<rustls::ServerConfig>,
        api: Arc<Api>,
    ) -> std::io::Result<Server> {
        let listener = TcpListener::bind(addr).await?;
        Ok(Server {
            listener,
            tls: TlsAcceptor::from(tls),
            api,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        let router = api::router(self.api.clone());
        let graceful = GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                _ = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let tls = self.tls.clone();
            let router = router.clone();
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                let Ok(Ok(tls_stream)) =
                    tokio::time::timeout(Duration::from_secs(10), tls.accept(stream)).await
                else {
                    tracing::debug!(%peer, "TLS handshake failed");
                    return;
                };
                let chain: Vec<Vec<u8>> = tls_stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .map(|c| c.iter().map(|c| c.as_ref().to_vec()).collect())
                    .unwrap_or_default();
                let peer_certs = PeerCertificates(chain);
                let service =
                    tower::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
                        request.extensions_mut().insert(peer_certs.clone());
                        router.clone().oneshot(request.map(axum::body::Body::new))
                    });
                let mut builder = auto::Builder::new(TokioExecutor::new());
                builder
                    .http1()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(30));
                builder
                    .http2()
                    .timer(TokioTimer::new())
                    .max_concurrent_streams(1000);
                let connection = builder.serve_connection_with_upgrades(
                    TokioIo::new(tls_stream),
                    TowerToHyperService::new(service),
                );
                let connection = watcher.watch(connection.into_owned());
                if let Err(e) = connection.await {
                    tracing::debug!(%peer, error = %e, "connection ended");
                }
            });
        }
        drop(self.listener);
        tokio::select! {
            _ = graceful.shutdown() => {}
            _ = tokio::time::sleep(DRAIN) => {}
        }
    }
}
