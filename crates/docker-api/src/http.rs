//! HTTP plumbing shared by every endpoint: response builders, query
//! strings, docker's loose booleans and filters, JSON bodies.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::HeaderValue;
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// Largest JSON request body accepted (container create and the like).
pub(crate) const MAX_JSON_BODY: usize = 4 << 20;

/// A response body.
pub(crate) type Body = BoxBody<Bytes, io::Error>;

/// docker's answer to a path it does not know.
pub(crate) fn not_found() -> Response<Body> {
    error(StatusCode::NOT_FOUND, "page not found")
}

pub(crate) fn full(
    status: StatusCode,
    body: impl Into<Bytes>,
    content_type: Option<&str>,
) -> Response<Body> {
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

pub(crate) fn json_resp(status: StatusCode, v: &Value) -> Response<Body> {
    full(status, v.to_string(), Some("application/json"))
}

pub(crate) fn error(status: StatusCode, msg: impl std::fmt::Display) -> Response<Body> {
    json_resp(status, &json!({"message": msg.to_string()}))
}

pub(crate) fn empty(status: StatusCode) -> Response<Body> {
    full(status, Bytes::new(), None)
}

/// A streaming response: headers go out at once, chunks as they come.
pub(crate) fn streaming(content_type: Option<&str>, rx: mpsc::Receiver<Bytes>) -> Response<Body> {
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
pub(crate) fn truthy(v: Option<&String>) -> bool {
    match v {
        None => false,
        Some(s) => !matches!(
            s.to_ascii_lowercase().as_str(),
            "" | "0" | "no" | "false" | "none"
        ),
    }
}

pub(crate) fn query(req: &Request<Incoming>) -> HashMap<String, String> {
    let mut m = HashMap::new();
    if let Some(q) = req.uri().query() {
        for pair in q.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            m.insert(decode(k), decode(v));
        }
    }
    m
}

pub(crate) fn decode(s: &str) -> String {
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
pub(crate) fn filters(q: &HashMap<String, String>) -> Result<HashMap<String, Vec<String>>, String> {
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

pub(crate) async fn read_json(req: Request<Incoming>) -> Result<Value, Response<Body>> {
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
