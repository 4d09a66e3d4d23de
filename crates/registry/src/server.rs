//! Binding, TLS and the accept loop (HTTP/1.1 and HTTP/2 through
//! hyper-util's connection builder), with graceful shutdown.

use std::fs::File;
use std::io::BufReader;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_image::store::ContentStore;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::Config;
use crate::api::{self, App};
use crate::auth::Checker;
use crate::db::Db;
use crate::error::Error;
use crate::uploads::{SESSION_TTL, Uploads};

/// How long a client may take to send request headers, or a TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long shutdown waits for open connections.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How often idle upload sessions are looked for.
const EXPIRY_INTERVAL: Duration = Duration::from_secs(10 * 60);

/// A bound registry, ready to [`run`](Server::run).
pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
    tls: Option<TlsAcceptor>,
    app: Arc<App>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

/// Loads a PEM certificate chain and private key.
fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, Error> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let open = |p: &Path| {
        File::open(p)
            .map(BufReader::new)
            .map_err(|e| Error::Tls(format!("open {}: {e}", p.display())))
    };
    let certs = rustls_pemfile::certs(&mut open(cert)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Tls(format!("read {}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(Error::Tls(format!(
            "{} has no PEM certificate",
            cert.display()
        )));
    }
    let key = rustls_pemfile::private_key(&mut open(key)?)
        .map_err(|e| Error::Tls(format!("read {}: {e}", key.display())))?
        .ok_or_else(|| Error::Tls(format!("{} has no PEM private key", key.display())))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| Error::Tls(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| Error::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Opens the storage under `config.root` and binds `config.addr`.
pub async fn bind(config: Config) -> Result<Server, Error> {
    let tls = match &config.tls {
        Some((cert, key)) => Some(tls_acceptor(cert, key)?),
        None => None,
    };
    let root = config.root.clone();
    let (store, db, uploads) = tokio::task::spawn_blocking(move || -> Result<_, Error> {
        std::fs::create_dir_all(&root)
            .map_err(|e| Error::io(format!("create {}", root.display()), e))?;
        let store = ContentStore::open(&root.join("content"))?;
        // writers that crashed leave temporary files behind
        store.clean_ingest(Duration::from_secs(60 * 60))?;
        let mut db = Db::open(&root.join("registry.db"))?;
        db.clear_uploads()?;
        let uploads = Uploads::open(&root.join("uploads"))?;
        Ok((store, db, uploads))
    })
    .await??;
    let listener = TcpListener::bind(config.addr)
        .await
        .map_err(|source| Error::Bind {
            addr: config.addr,
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| Error::Bind {
        addr: config.addr,
        source,
    })?;
    let app = Arc::new(App {
        store,
        db: Arc::new(Mutex::new(db)),
        uploads,
        auth: config.auth.map(Checker::new),
        max_manifest_bytes: config.max_manifest_bytes,
        max_catalog_n: config.max_catalog_n,
    });
    tracing::info!(
        "registry listening on {}://{local_addr} (storage {})",
        if tls.is_some() { "https" } else { "http" },
        config.root.display()
    );
    Ok(Server {
        listener,
        local_addr,
        tls,
        app,
    })
}

impl Server {
    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, then stops accepting, lets open
    /// requests finish (for a while) and returns.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        let Server {
            listener, tls, app, ..
        } = self;
        let router = api::router(app.clone());
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(HANDSHAKE_TIMEOUT);
        let graceful = GracefulShutdown::new();
        let expiry = {
            let app = app.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(EXPIRY_INTERVAL);
                loop {
                    tick.tick().await;
                    api::expire_uploads(&app, SESSION_TTL).await;
                }
            })
        };
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // out of file descriptors and the like: back off
                        tracing::warn!("accept: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let service = TowerToHyperService::new(router.clone());
            let builder = builder.clone();
            let watcher = graceful.watcher();
            let tls = tls.clone();
            tokio::spawn(async move {
                let result = match tls {
                    None => {
                        let conn =
                            builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                        watcher.watch(conn.into_owned()).await
                    }
                    Some(acceptor) => {
                        let stream =
                            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                                .await
                            {
                                Ok(Ok(s)) => s,
                                Ok(Err(e)) => {
                                    tracing::debug!(%peer, "TLS handshake: {e}");
                                    return;
                                }
                                Err(_) => {
                                    tracing::debug!(%peer, "TLS handshake timed out");
                                    return;
                                }
                            };
                        let conn =
                            builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                        watcher.watch(conn.into_owned()).await
                    }
                };
                if let Err(e) = result {
                    tracing::debug!(%peer, "connection: {e}");
                }
            });
        }
        drop(listener);
        expiry.abort();
        tracing::info!("registry shutting down");
        if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("connections still open after {DRAIN_TIMEOUT:?}; closing them");
        }
        Ok(())
    }
}
