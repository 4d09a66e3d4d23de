//! Plain answers: kubelet's errors are text bodies with a status code
//! (the API server turns them into a `Status` with that code).

use axum::body::Body;
use hyper::{Response, StatusCode, header};

/// An error answer.
#[derive(Debug)]
pub struct Failure {
    /// The HTTP status.
    pub code: u16,
    /// The text.
    pub message: String,
}

impl Failure {
    /// An error with a status code.
    pub fn new(code: u16, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Failure {
        Failure::new(400, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Failure {
        Failure::new(404, message)
    }

    /// 500.
    pub fn internal(message: impl Into<String>) -> Failure {
        Failure::new(500, message)
    }

    /// The answer.
    pub fn into_response(self) -> Response<Body> {
        text(self.code, &self.message)
    }
}

impl From<berth_engine::Error> for Failure {
    fn from(e: berth_engine::Error) -> Failure {
        match e {
            berth_engine::Error::NotFound(m) => Failure::not_found(m),
            berth_engine::Error::Invalid(m) | berth_engine::Error::Conflict(m) => {
                Failure::bad_request(m)
            }
            other => Failure::internal(other.to_string()),
        }
    }
}

/// A text answer.
pub fn text(code: u16, message: &str) -> Response<Body> {
    let mut response = Response::new(Body::from(message.to_owned()));
    *response.status_mut() =
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Whether a query flag is set (`true` or `1`, as kube's parameter codec reads it).
pub fn flag(value: Option<&str>) -> bool {
    matches!(value, Some("true" | "1" | "True" | "TRUE"))
}

/// A query string's pairs, in order (`command=a&command=b` keeps both).
pub fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The last value of `key`.
pub fn query_get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}
