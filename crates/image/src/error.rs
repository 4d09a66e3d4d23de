//! The image crate's error type.

use std::io;

use berth_types::ErrorKind;

/// Errors of image operations.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input (a malformed reference, manifest, archive or layer).
    #[error("{0}")]
    Invalid(String),
    /// Something named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A conflict (name in use, image in use).
    #[error("{0}")]
    Conflict(String),
    /// Content did not match its digest or size.
    #[error("{0}")]
    Integrity(String),
    /// A limit was exceeded (size quota, manifest size).
    #[error("{0}")]
    Limit(String),
    /// Not implemented yet.
    #[error("not supported yet: {0}")]
    Unsupported(String),
    /// Authentication with a registry failed.
    #[error("{0}")]
    Unauthorized(String),
    /// A registry could not be reached or answered badly.
    #[error("{0}")]
    Registry(String),
    /// The metadata database failed.
    #[error("image database: {0}")]
    Db(#[from] rusqlite::Error),
    /// A file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// The category, for status mapping at the edges.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Invalid(_) | Error::Integrity(_) => ErrorKind::Invalid,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::Limit(_) => ErrorKind::LimitExceeded,
            Error::Unsupported(_) => ErrorKind::NotSupported,
            Error::Unauthorized(_) => ErrorKind::Unauthorized,
            Error::Registry(_) => ErrorKind::Unavailable,
            Error::Db(_) | Error::Io { .. } => ErrorKind::Internal,
        }
    }
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds context to IO results.
pub trait Context<T> {
    /// Wraps an IO error with `what`.
    fn ctx<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T>;
}

impl<T> Context<T> for io::Result<T> {
    fn ctx<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|source| Error::Io {
            context: what().into(),
            source,
        })
    }
}

impl<T> Context<T> for rustix::io::Result<T> {
    fn ctx<S: Into<String>>(self, what: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| Error::Io {
            context: what().into(),
            source: e.into(),
        })
    }
}
