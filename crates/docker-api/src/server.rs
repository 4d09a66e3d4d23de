//! The daemon's listeners and connections: unix sockets and mutual TLS,
//! HTTP/1.1 with keep-alive and upgrades, version prefixes and the headers
//! every response carries. The endpoints are in `api/`.

use std::convert::Infallible;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::UnixListener;

use crate::api::{Shared, route};
use crate::http::{ApiVersion, Body, error, full};

/// The API version berth speaks (the CLI uses min(its own, this)).
pub const API_VERSION: &str = "1.47";
/// The oldest version accepted in a path prefix.
pub const MIN_API_VERSION: &str = "1.12";

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
    // contexts and mounts of builds a killed daemon left
    berth_build::intake::sweep(&root);
    let shared = Arc::new(Shared::new(root, registry));
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

/// Why a path's version prefix is refused.
#[derive(Debug, PartialEq, Eq)]
enum VersionError {
    /// Older than [`MIN_API_VERSION`] (dockerd answers in plain text).
    TooOld(String),
    /// Newer than [`API_VERSION`].
    TooNew(String),
}

/// The parts of a dotted version as dockerd compares them: each a number,
/// one that is not (empty) counting as 0, one too large as the largest.
fn version_parts(v: &str) -> Vec<u64> {
    v.split('.')
        .map(|p| {
            if p.is_empty() {
                0
            } else {
                p.parse().unwrap_or(u64::MAX)
            }
        })
        .collect()
}

fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let (a, b) = (version_parts(a), version_parts(b));
    (0..a.len().max(b.len()))
        .map(|i| {
            let x = a.get(i).copied().unwrap_or(0);
            x.cmp(&b.get(i).copied().unwrap_or(0))
        })
        .find(|o| o.is_ne())
        .unwrap_or(std::cmp::Ordering::Equal)
}

/// Splits `/v1.47/containers/x/json` into the version and
/// `containers/x/json`, checking the version as dockerd does (a prefix is
/// `v` and digits and dots; none: the newest).
fn strip_version(path: &str) -> Result<(ApiVersion, &str), VersionError> {
    let p = path.strip_prefix('/').unwrap_or(path);
    let newest = version_parts(API_VERSION);
    let newest = ApiVersion(newest[0] as u32, newest[1] as u32);
    let Some((ver, tail)) = p.strip_prefix('v').and_then(|r| r.split_once('/')) else {
        return Ok((newest, p));
    };
    if ver.is_empty() || !ver.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Ok((newest, p));
    }
    if compare_versions(ver, API_VERSION).is_gt() {
        return Err(VersionError::TooNew(format!(
            "client version {ver} is too new. Maximum supported API version is {API_VERSION}"
        )));
    }
    if compare_versions(ver, MIN_API_VERSION).is_lt() {
        return Err(VersionError::TooOld(format!(
            "client version {ver} is too old. Minimum supported API version is {MIN_API_VERSION}, \
             please upgrade your client to a newer version"
        )));
    }
    // within the range: 1.x
    let parts = version_parts(ver);
    let minor = parts.get(1).copied().unwrap_or(0).min(u64::from(newest.1)) as u32;
    Ok((ApiVersion(1, minor), tail))
}

async fn handle(shared: Arc<Shared>, mut req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    tracing::debug!("{method} {}", req.uri());
    let mut resp = match strip_version(&path) {
        Err(VersionError::TooNew(msg)) => error(StatusCode::BAD_REQUEST, msg),
        Err(VersionError::TooOld(msg)) => full(
            StatusCode::BAD_REQUEST,
            format!("{msg}\n"),
            Some("text/plain; charset=utf-8"),
        ),
        Ok((v, p)) => {
            req.extensions_mut().insert(v);
            // no trailing-slash leniency: `/version/` is not `/version`
            let p = p.to_owned();
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::http::{decode, filters, truthy};

    #[test]
    fn version_prefixes_as_dockerd_reads_them() {
        let too_old = |v: &str| {
            VersionError::TooOld(format!(
                "client version {v} is too old. Minimum supported API version is \
                 {MIN_API_VERSION}, please upgrade your client to a newer version"
            ))
        };
        let too_new = |v: &str| {
            VersionError::TooNew(format!(
                "client version {v} is too new. Maximum supported API version is {API_VERSION}"
            ))
        };
        assert_eq!(strip_version("/v1/version").unwrap_err(), too_old("1"));
        assert_eq!(
            strip_version("/v1.11/version").unwrap_err(),
            too_old("1.11")
        );
        assert_eq!(strip_version("/v./version").unwrap_err(), too_old("."));
        assert_eq!(strip_version("/v2.0/version").unwrap_err(), too_new("2.0"));
        assert_eq!(
            strip_version("/v1.47.1/version").unwrap_err(),
            too_new("1.47.1")
        );
        let huge = format!("/v1.{}/version", "9".repeat(400));
        assert!(matches!(
            strip_version(&huge).unwrap_err(),
            VersionError::TooNew(_)
        ));
        assert_eq!(
            strip_version("/v01.041/version").unwrap(),
            (ApiVersion(1, 41), "version")
        );
        assert_eq!(
            strip_version("/v1.30.0/info").unwrap(),
            (ApiVersion(1, 30), "info")
        );
        // not a version prefix: a path of its own (404 further on)
        for p in ["/v1.x/version", "/V1.41/version", "/v/version", "/vfoo"] {
            let (v, rest) = strip_version(p).unwrap();
            assert_eq!(v, ApiVersion(1, 47));
            assert_eq!(Some(rest), p.strip_prefix('/'));
        }
        // trailing slashes stay (docker answers 404)
        assert_eq!(strip_version("/v1.41/version/").unwrap().1, "version/");
    }

    #[test]
    fn versions_and_queries() {
        assert_eq!(
            strip_version("/v1.41/containers/json").unwrap(),
            (ApiVersion(1, 41), "containers/json")
        );
        assert_eq!(strip_version("/_ping").unwrap().1, "_ping");
        assert!(strip_version("/v1.99/info").is_err());
        assert!(strip_version("/v1.11/info").is_err());
        assert!(strip_version("/v1.12/info").is_ok());
        assert_eq!(strip_version("/volumes/v1").unwrap().1, "volumes/v1");
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
        assert_eq!(f.get("name"), ["web"]);
        assert_eq!(f.get("label"), ["a=b"]);
        q.insert("filters".to_owned(), "{bad".to_owned());
        assert!(filters(&q).is_err());
    }
}
