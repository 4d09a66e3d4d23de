//! gRPC probes: the standard health service (`grpc.health.v1.Health/Check`)
//! over HTTP/2 without TLS, as the kubelet calls it. The two messages are
//! tiny protobufs written and read here by hand: the request's field 1 is
//! the service name, the response's field 1 the serving status.

use std::time::Duration;

use bytes::{Buf, Bytes};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::Outcome;

/// `HealthCheckResponse.ServingStatus` names, by number.
const STATUS: [&str; 4] = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"];

/// Calls Check for `service` at `host:port` within `timeout`.
pub(super) async fn check(host: &str, port: u16, service: &str, timeout: Duration) -> Outcome {
    let addr = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let connect = async {
        let tcp = tokio::net::TcpStream::connect(&addr).await?;
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .map_err(std::io::Error::other)
    };
    let (mut sender, conn) = match tokio::time::timeout(timeout, connect).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            return Outcome::Failure(format!(
                "timeout: failed to connect service \"{addr}\" within {}s: {e}",
                timeout.as_secs()
            ));
        }
        Err(_) => {
            return Outcome::Failure(format!(
                "timeout: failed to connect service \"{addr}\" within {}s: context deadline exceeded",
                timeout.as_secs()
            ));
        }
    };
    let driver = tokio::spawn(conn);
    let call = async {
        let req = hyper::Request::post(format!("http://{addr}/grpc.health.v1.Health/Check"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("user-agent", "kube-probe/1.33")
            .body(Full::new(Bytes::from(frame(&request(service)))))
            .map_err(|e| e.to_string())?;
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let (parts, body) = resp.into_parts();
        let collected = body.collect().await.map_err(|e| e.to_string())?;
        let trailers = collected.trailers().cloned().unwrap_or_default();
        // a trailers-only answer carries grpc-status in the headers
        let status = trailers
            .get("grpc-status")
            .or_else(|| parts.headers.get("grpc-status"))
            .and_then(|v| v.to_str().ok())
            .unwrap_or("0")
            .to_owned();
        if status != "0" {
            let message = trailers
                .get("grpc-message")
                .or_else(|| parts.headers.get("grpc-message"))
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            return Err(format!(
                "rpc error: code = {} desc = {message}",
                code_name(&status)
            ));
        }
        if parts.status != hyper::StatusCode::OK {
            return Err(format!("unexpected HTTP status {}", parts.status.as_u16()));
        }
        serving_status(collected.to_bytes())
    };
    let r = tokio::time::timeout(timeout, call).await;
    driver.abort();
    match r {
        Ok(Ok(1)) => Outcome::Success,
        Ok(Ok(n)) => Outcome::Failure(format!(
            "service unhealthy (responded with \"{}\")",
            usize::try_from(n)
                .ok()
                .and_then(|i| STATUS.get(i))
                .copied()
                .unwrap_or("UNKNOWN")
        )),
        Ok(Err(e)) => Outcome::Failure(format!("error: health rpc probe failed: {e}")),
        Err(_) => Outcome::Failure(format!(
            "timeout: health rpc did not complete within {}s",
            timeout.as_secs()
        )),
    }
}

/// gRPC's names of status codes (the common ones by name).
fn code_name(code: &str) -> String {
    match code {
        "1" => "Canceled".into(),
        "2" => "Unknown".into(),
        "4" => "DeadlineExceeded".into(),
        "5" => "NotFound".into(),
        "7" => "PermissionDenied".into(),
        "12" => "Unimplemented".into(),
        "13" => "Internal".into(),
        "14" => "Unavailable".into(),
        "16" => "Unauthenticated".into(),
        other => format!("Code({other})"),
    }
}

/// `HealthCheckRequest { service }` as protobuf.
fn request(service: &str) -> Vec<u8> {
    let mut out = Vec::new();
    if !service.is_empty() {
        out.push(0x0a); // field 1, length-delimited
        varint(service.len() as u64, &mut out);
        out.extend_from_slice(service.as_bytes());
    }
    out
}

/// A gRPC message frame: not compressed, a 4-byte length, the message.
fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 5);
    out.push(0);
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out
}

fn varint(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn read_varint(b: &mut Bytes) -> Result<u64, String> {
    let mut n = 0u64;
    for shift in (0..64).step_by(7) {
        if !b.has_remaining() {
            return Err("truncated varint in the health response".into());
        }
        let byte = b.get_u8();
        n |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(n);
        }
    }
    Err("varint too long in the health response".into())
}

/// The `status` of a framed `HealthCheckResponse` (0 when absent, as
/// protobuf defaults it).
fn serving_status(mut body: Bytes) -> Result<u64, String> {
    if body.len() < 5 {
        return Err("the health response has no message".into());
    }
    if body.get_u8() != 0 {
        return Err("compressed health responses are not supported".into());
    }
    let len = body.get_u32() as usize;
    if body.len() < len {
        return Err("the health response is truncated".into());
    }
    let mut msg = body.split_to(len);
    let mut status = 0;
    while msg.has_remaining() {
        let key = read_varint(&mut msg)?;
        match (key >> 3, key & 7) {
            (1, 0) => status = read_varint(&mut msg)?,
            (_, 0) => {
                read_varint(&mut msg)?;
            }
            (_, 2) => {
                let n = usize::try_from(read_varint(&mut msg)?).map_err(|e| e.to_string())?;
                if msg.len() < n {
                    return Err("the health response is truncated".into());
                }
                msg.advance(n);
            }
            (_, 1) if msg.len() >= 8 => msg.advance(8),
            (_, 5) if msg.len() >= 4 => msg.advance(4),
            _ => return Err("malformed health response".into()),
        }
    }
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    /// A health server over h2c answering every service with `status`, or
    /// with grpc-status 5 for the service "missing".
    async fn health_server(status: u8) -> u16 {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let (tcp, _) = l.accept().await.unwrap();
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| async move {
                        assert_eq!(req.uri().path(), "/grpc.health.v1.Health/Check");
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let missing = body.ends_with(b"missing");
                        let mut trailers = hyper::HeaderMap::new();
                        let data = if missing {
                            trailers.insert("grpc-status", "5".parse().unwrap());
                            trailers.insert("grpc-message", "unknown service".parse().unwrap());
                            Vec::new()
                        } else {
                            trailers.insert("grpc-status", "0".parse().unwrap());
                            frame(&[0x08, status])
                        };
                        let stream = futures::stream::iter(vec![
                            Ok::<_, Infallible>(hyper::body::Frame::data(Bytes::from(data))),
                            Ok(hyper::body::Frame::trailers(trailers)),
                        ]);
                        Ok::<_, Infallible>(
                            hyper::Response::builder()
                                .header("content-type", "application/grpc")
                                .body(http_body_util::StreamBody::new(stream))
                                .unwrap(),
                        )
                    },
                );
                tokio::spawn(
                    hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tcp), svc),
                );
            }
        });
        port
    }

    #[test]
    fn messages() {
        assert_eq!(request(""), Vec::<u8>::new());
        assert_eq!(request("db"), vec![0x0a, 2, b'd', b'b']);
        assert_eq!(frame(&[0x08, 1]), vec![0, 0, 0, 0, 2, 0x08, 1]);
        assert_eq!(serving_status(Bytes::from(frame(&[0x08, 2]))), Ok(2));
        assert_eq!(serving_status(Bytes::from(frame(&[]))), Ok(0));
        assert!(serving_status(Bytes::from_static(&[0, 0, 0, 0, 9, 0x08])).is_err());
    }

    #[tokio::test]
    async fn checks_a_real_health_service() {
        let t = Duration::from_secs(2);
        let port = health_server(1).await;
        assert_eq!(check("127.0.0.1", port, "", t).await, Outcome::Success);
        assert_eq!(
            check("127.0.0.1", port, "missing", t).await,
            Outcome::Failure(
                "error: health rpc probe failed: rpc error: code = NotFound desc = unknown service"
                    .into()
            )
        );
        let port = health_server(2).await;
        assert_eq!(
            check("127.0.0.1", port, "", t).await,
            Outcome::Failure("service unhealthy (responded with \"NOT_SERVING\")".into())
        );
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        match check("127.0.0.1", closed, "", t).await {
            Outcome::Failure(m) => {
                assert!(m.starts_with("timeout: failed to connect service"), "{m}")
            }
            o => panic!("{o:?}"),
        }
    }
}
