//! The WebSocket handshake of the streaming endpoints (the server side of
//! RFC 6455 over hyper's upgrade), and the refusal of SPDY.

use axum::body::Body;
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper::{Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::http::Failure;

/// A server-side WebSocket over an upgraded connection.
pub type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// The protocols a request offers.
pub fn offered(request: &Request<Incoming>) -> Vec<String> {
    super::channel::offered(
        request
            .headers()
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    )
}

/// Checks that the request is a WebSocket upgrade (a plain request is
/// refused with a 400 naming the problem).
pub fn require_websocket(request: &Request<Incoming>) -> Result<(), Failure> {
    let upgrade = request
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if upgrade.eq_ignore_ascii_case("websocket") {
        return Ok(());
    }
    Err(Failure::bad_request(
        "Upgrade request required: this endpoint streams over WebSocket (channel.k8s.io) or SPDY/3.1",
    ))
}

/// Answers the handshake with 101 and `protocol`; the socket comes from
/// [`open`] once hyper has switched.
pub fn accept(
    request: &mut Request<Incoming>,
    protocol: Option<&str>,
) -> Result<(Response<Body>, OnUpgrade), Failure> {
    let key = request
        .headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or_else(|| Failure::bad_request("WebSocket handshake: no Sec-WebSocket-Key"))?;
    let accept_key = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(request);
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(
        header::UPGRADE,
        header::HeaderValue::from_static("websocket"),
    );
    headers.insert(
        header::CONNECTION,
        header::HeaderValue::from_static("Upgrade"),
    );
    if let Ok(v) = header::HeaderValue::from_str(&accept_key) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    if let Some(p) = protocol
        && let Ok(v) = header::HeaderValue::from_str(p)
    {
        headers.insert(header::SEC_WEBSOCKET_PROTOCOL, v);
    }
    Ok((response, on_upgrade))
}

/// The socket once the connection switched (`None` if the client left).
pub async fn open(on_upgrade: OnUpgrade) -> Option<Socket> {
    let upgraded = on_upgrade.await.ok()?;
    Some(WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await)
}

/// The close message that ends a stream well: code 1000 (client-go reads
/// any other closing as an error of every channel).
pub fn normal_close() -> tokio_tungstenite::tungstenite::Message {
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    tokio_tungstenite::tungstenite::Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    }))
}
