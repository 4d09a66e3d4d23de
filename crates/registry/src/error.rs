//! The library's [`Error`] and the API's wire errors ([`ApiError`]), which
//! render as the distribution-spec's `{"errors":[{"code","message","detail"}]}`.

use std::io;
use std::net::SocketAddr;

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Errors of setting up and running the registry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listening socket could not be bound.
    #[error("bind {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The TLS certificate or key could not be loaded.
    #[error("TLS: {0}")]
    Tls(String),
    /// Credentials could not be loaded or are malformed.
    #[error("auth: {0}")]
    Auth(String),
    /// A file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The metadata database failed.
    #[error("registry database: {0}")]
    Db(#[from] rusqlite::Error),
    /// The metadata database was written by a newer berth.
    #[error("registry database: {0}")]
    Schema(String),
    /// The content store failed.
    #[error(transparent)]
    Store(#[from] berth_image::Error),
    /// A background task panicked or was cancelled.
    #[error("internal task failed: {0}")]
    Task(String),
}

impl Error {
    /// An IO error with what was being done.
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

impl From<tokio::task::JoinError> for Error {
    fn from(e: tokio::task::JoinError) -> Error {
        Error::Task(e.to_string())
    }
}

/// The distribution-spec error codes (plus `UNKNOWN` for server faults).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Code {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    Unauthorized,
    Unsupported,
    /// Not a spec code: a fault of the server (5xx), as distribution sends.
    Unknown,
}

impl Code {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Code::BlobUnknown => "BLOB_UNKNOWN",
            Code::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            Code::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            Code::DigestInvalid => "DIGEST_INVALID",
            Code::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            Code::ManifestInvalid => "MANIFEST_INVALID",
            Code::ManifestUnknown => "MANIFEST_UNKNOWN",
            Code::NameInvalid => "NAME_INVALID",
            Code::NameUnknown => "NAME_UNKNOWN",
            Code::SizeInvalid => "SIZE_INVALID",
            Code::Unauthorized => "UNAUTHORIZED",
            Code::Unsupported => "UNSUPPORTED",
            Code::Unknown => "UNKNOWN",
        }
    }
}

/// One entry of an error response.
#[derive(Clone, Debug)]
struct Entry {
    code: Code,
    message: String,
    detail: Option<serde_json::Value>,
}

/// An error response: a status, one or more spec errors, extra headers
/// (boxed: results carrying it stay small).
#[derive(Debug)]
pub(crate) struct ApiError(Box<Inner>);

#[derive(Debug)]
struct Inner {
    status: StatusCode,
    entries: Vec<Entry>,
    headers: HeaderMap,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: Code, message: impl Into<String>) -> ApiError {
        ApiError(Box::new(Inner {
            status,
            entries: vec![Entry {
                code,
                message: message.into(),
                detail: None,
            }],
            headers: HeaderMap::new(),
        }))
    }

    /// Sets the `detail` of the last entry.
    pub(crate) fn detail(mut self, detail: serde_json::Value) -> ApiError {
        if let Some(e) = self.0.entries.last_mut() {
            e.detail = Some(detail);
        }
        self
    }

    /// Adds a further entry (same status).
    pub(crate) fn and(mut self, code: Code, message: impl Into<String>) -> ApiError {
        self.0.entries.push(Entry {
            code,
            message: message.into(),
            detail: None,
        });
        self
    }

    /// Adds a response header.
    pub(crate) fn header(mut self, name: HeaderName, value: &str) -> ApiError {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.0.headers.append(name, v);
        }
        self
    }

    pub(crate) fn status(&self) -> StatusCode {
        self.0.status
    }

    pub(crate) fn code(&self) -> Code {
        self.0.entries.first().map_or(Code::Unknown, |e| e.code)
    }

    pub(crate) fn bad_request(code: Code, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub(crate) fn not_found(code: Code, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, code, message)
    }

    pub(crate) fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, Code::Unknown, message)
    }

    pub(crate) fn digest_invalid(message: impl Into<String>) -> ApiError {
        ApiError::bad_request(Code::DigestInvalid, message)
    }

    pub(crate) fn name_invalid(name: &str) -> ApiError {
        ApiError::bad_request(
            Code::NameInvalid,
            format!("invalid repository name {name:?}"),
        )
    }

    pub(crate) fn blob_unknown(digest: &str) -> ApiError {
        ApiError::not_found(Code::BlobUnknown, "blob unknown to registry")
            .detail(serde_json::json!({ "digest": digest }))
    }

    pub(crate) fn upload_unknown() -> ApiError {
        ApiError::not_found(Code::BlobUploadUnknown, "blob upload unknown to registry")
    }

    pub(crate) fn manifest_unknown(reference: &str) -> ApiError {
        ApiError::not_found(Code::ManifestUnknown, "manifest unknown to registry")
            .detail(serde_json::json!({ "reference": reference }))
    }

    pub(crate) fn name_unknown(name: &str) -> ApiError {
        ApiError::not_found(Code::NameUnknown, "repository name not known to registry")
            .detail(serde_json::json!({ "name": name }))
    }

    pub(crate) fn unsupported(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError::new(status, Code::Unsupported, message)
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        tracing::error!("{e}");
        ApiError::internal(e.to_string())
    }
}

impl From<berth_image::Error> for ApiError {
    fn from(e: berth_image::Error) -> ApiError {
        ApiError::from(Error::Store(e))
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> ApiError {
        ApiError::from(Error::Db(e))
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> ApiError {
        ApiError::from(Error::from(e))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let inner = *self.0;
        let errors: Vec<serde_json::Value> = inner
            .entries
            .iter()
            .map(|e| {
                let mut v = serde_json::json!({
                    "code": e.code.as_str(),
                    "message": e.message,
                });
                if let Some(d) = &e.detail {
                    v["detail"] = d.clone();
                }
                v
            })
            .collect();
        let body = serde_json::to_vec(&serde_json::json!({ "errors": errors }))
            .unwrap_or_else(|_| b"{\"errors\":[]}".to_vec());
        let mut resp = (inner.status, body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        for (name, value) in inner.headers.iter() {
            resp.headers_mut().append(name.clone(), value.clone());
        }
        resp
    }
}
