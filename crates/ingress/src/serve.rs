//! The HTTP and HTTPS listeners: each request is routed by the table and
//! forwarded (HTTP/1.1) to its Service, with the usual `X-Forwarded-*`
//! headers; 404 when nothing matches, 503 when the backend is missing,
//! 502 when it cannot be reached.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::model::{self, Table, Target};

type Body = BoxBody<Bytes, hyper::Error>;

fn text(code: StatusCode, body: &str) -> Response<Body> {
    let mut r = Response::new(
        Full::new(Bytes::from(body.to_owned()))
            .map_err(|never| match never {})
            .boxed(),
    );
    *r.status_mut() = code;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

const HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

async fn forward(
    table: Arc<RwLock<Table>>,
    peer: SocketAddr,
    tls: bool,
    mut req: Request<Incoming>,
) -> Response<Body> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().host())
        .unwrap_or("")
        .to_owned();
    let path = req.uri().path().to_owned();
    let target = {
        let t = table.read().unwrap_or_else(|p| p.into_inner());
        model::route(&t, &host, &path).cloned()
    };
    let to = match target {
        None => return text(StatusCode::NOT_FOUND, "404 page not found\n"),
        Some(Target::Unavailable(why)) => {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("503 service unavailable: {why}\n"),
            );
        }
        Some(Target::Service(to)) => to,
    };
    let headers = req.headers_mut();
    for h in HOP {
        headers.remove(h);
    }
    let xff = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prev) => format!("{prev}, {}", peer.ip()),
        None => peer.ip().to_string(),
    };
    for (k, v) in [
        ("x-forwarded-for", xff),
        ("x-forwarded-host", host.clone()),
        (
            "x-forwarded-proto",
            if tls { "https" } else { "http" }.to_owned(),
        ),
        ("x-real-ip", peer.ip().to_string()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&v) {
            headers.insert(k, v);
        }
    }
    let pq = req
        .uri()
        .path_and_query()
        .map_or("/".to_owned(), |p| p.as_str().to_owned());
    if let Ok(uri) = pq.parse() {
        *req.uri_mut() = uri;
    }
    let connect = async {
        let tcp = tokio::net::TcpStream::connect(to).await?;
        let _ = tcp.set_nodelay(true);
        hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(std::io::Error::other)
    };
    let (mut sender, conn) = match tokio::time::timeout(Duration::from_secs(5), connect).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            return text(
                StatusCode::BAD_GATEWAY,
                &format!("502 bad gateway: {to}: {e}\n"),
            );
        }
        Err(_) => {
            return text(
                StatusCode::GATEWAY_TIMEOUT,
                &format!("504 gateway timeout: {to}\n"),
            );
        }
    };
    tokio::spawn(async move {
        let _ = conn.await;
    });
    match sender.send_request(req).await {
        Ok(resp) => {
            let (mut parts, body) = resp.into_parts();
            for h in HOP {
                parts.headers.remove(h);
            }
            Response::from_parts(parts, body.boxed())
        }
        Err(e) => text(
            StatusCode::BAD_GATEWAY,
            &format!("502 bad gateway: {to}: {e}\n"),
        ),
    }
}

/// Serves plain HTTP on `listener` until the process ends.
pub async fn http(listener: TcpListener, table: Arc<RwLock<Table>>) {
    loop {
        let Ok((tcp, peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let table = table.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let table = table.clone();
                async move { Ok::<_, std::convert::Infallible>(forward(table, peer, false, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), svc)
                .await;
        });
    }
}

/// Serves HTTPS on `listener` with certificates chosen by server name.
pub async fn https(
    listener: TcpListener,
    table: Arc<RwLock<Table>>,
    certs: Arc<crate::tls::Certs>,
) {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map(|b| b.with_no_client_auth().with_cert_resolver(certs));
    let config = match config {
        Ok(c) => Arc::new(c),
        Err(e) => {
            tracing::error!(error = %e, "ingress TLS configuration");
            return;
        }
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    loop {
        let Ok((tcp, peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let (table, acceptor) = (table.clone(), acceptor.clone());
        tokio::spawn(async move {
            let Ok(Ok(stream)) =
                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
            else {
                return;
            };
            let svc = hyper::service::service_fn(move |req| {
                let table = table.clone();
                async move { Ok::<_, std::convert::Infallible>(forward(table, peer, true, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
