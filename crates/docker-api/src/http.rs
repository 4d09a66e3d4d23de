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

/// A JSON answer, ending in a newline as dockerd's do.
pub(crate) fn json_resp(status: StatusCode, v: &Value) -> Response<Body> {
    let mut body = v.to_string();
    body.push('\n');
    full(status, body, Some("application/json"))
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

/// A query key or value: `%XX` escapes and `+` for a space.
pub(crate) fn decode(s: &str) -> String {
    percent_decode(s, true)
}

/// A path segment: `%XX` escapes (`+` stays itself), as Go's router reads
/// `/networks/my%20net`.
pub(crate) fn decode_segment(s: &str) -> String {
    percent_decode(s, false)
}

fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' if plus_is_space => out.push(b' '),
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

/// The request's `filters` parameter ([`crate::model::filters`]).
pub(crate) fn filters(
    q: &HashMap<String, String>,
) -> Result<berth_engine::filter::Filters, String> {
    crate::model::filters::parse_filters(q.get("filters").map_or("", String::as_str))
}

/// A typed JSON body (an empty body is the default value).
pub(crate) async fn read_body<T: serde::de::DeserializeOwned + Default>(
    req: Request<Incoming>,
) -> Result<T, Response<Body>> {
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
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    crate::model::from_json(&bytes).map_err(|m| error(StatusCode::BAD_REQUEST, m))
}

/// The API version of a request (its path prefix; the newest without one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ApiVersion(pub u32, pub u32);

/// The minor API version a request was made at.
pub(crate) fn api_minor(req: &Request<Incoming>) -> u32 {
    req.extensions().get::<ApiVersion>().map_or(99, |v| v.1)
}

/// `h` and `w` of a resize request (docker refuses values that are not
/// numbers).
pub(crate) fn terminal_size(q: &HashMap<String, String>) -> Result<(u16, u16), String> {
    let n = |k: &str| -> Result<u16, String> {
        match q.get(k).filter(|v| !v.is_empty()) {
            None => Ok(0),
            Some(v) => v
                .parse::<u16>()
                .map_err(|_| format!("invalid value for {k}: {v:?}")),
        }
    };
    Ok((n("h")?, n("w")?))
}

/// Nanoseconds since the epoch, now.
pub(crate) fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// The `until` filter of a prune (a docker timestamp or duration).
pub(crate) fn until_filter(f: &berth_engine::filter::Filters) -> Result<Option<i64>, String> {
    match f.get("until") {
        [] => Ok(None),
        [u] => crate::syntax::parse_timestamp(u, now_ns()).map(Some),
        _ => Err("more than one until filter specified".into()),
    }
}

/// An inotify watch registered with the runtime's reactor. `AsyncFd::new`
/// is deprecated because it cannot know that its descriptor stays valid;
/// a `FileWatch` owns its descriptor for as long as the `AsyncFd` holds it,
/// so this use is sound (and needs no `unsafe`, which only `berth-sys` may
/// hold).
#[allow(deprecated)]
pub(crate) fn async_watch(w: berth_engine::watch::FileWatch) -> Option<AsyncWatch> {
    tokio::io::unix::AsyncFd::new(w)
        .ok()
        .map(|w| AsyncWatch(Some(w)))
}

/// A watch on the reactor that is closed off it: closing an inotify
/// descriptor waits for an SRCU grace period in the kernel (10-20 ms
/// measured here), which must not stall a thread that serves requests or
/// delay the answer it was watching for.
pub(crate) struct AsyncWatch(Option<tokio::io::unix::AsyncFd<berth_engine::watch::FileWatch>>);

impl std::ops::Deref for AsyncWatch {
    type Target = tokio::io::unix::AsyncFd<berth_engine::watch::FileWatch>;

    fn deref(&self) -> &Self::Target {
        // present until drop
        self.0.as_ref().expect("watch taken before drop")
    }
}

impl Drop for AsyncWatch {
    fn drop(&mut self) {
        let Some(w) = self.0.take() else { return };
        let w = w.into_inner();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            drop(rt.spawn_blocking(move || drop(w)));
        }
    }
}
