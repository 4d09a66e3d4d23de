//! The runtime's error type.

use std::io;

use berth_types::ErrorKind;

use crate::cgroups::CgroupError;
use crate::seccomp::SeccompError;

/// Errors of runtime operations. Messages are complete sentences fragments
/// that name the thing at fault; the CLI prints them as they are.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input: a malformed config, an invalid flag value.
    #[error("{0}")]
    Invalid(String),
    /// The container does not exist.
    #[error("container {0} does not exist")]
    NotFound(String),
    /// A container with this id exists already.
    #[error("container with id {0} already exists")]
    Exists(String),
    /// The container is in the wrong state for the operation.
    #[error("{0}")]
    State(String),
    /// Something berth does not implement yet.
    #[error("not supported yet: {0}")]
    Unsupported(String),
    /// A limit the host imposes would be exceeded.
    #[error("{0}")]
    Limit(String),
    /// A system call or file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// cgroup management failed.
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    /// The seccomp profile could not be compiled or loaded.
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    /// The container's init process reported a failure during setup.
    #[error("{0}")]
    Init(String),
    /// A hook failed.
    #[error("{0}")]
    Hook(String),
}

impl Error {
    /// The category, for exit codes and API status mapping.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Invalid(_) => ErrorKind::Invalid,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Exists(_) | Error::State(_) => ErrorKind::Conflict,
            Error::Unsupported(_) => ErrorKind::NotSupported,
            Error::Limit(_) => ErrorKind::LimitExceeded,
            Error::Io { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                ErrorKind::NotFound
            }
            Error::Io { .. } | Error::Init(_) | Error::Hook(_) => ErrorKind::Internal,
            Error::Cgroup(CgroupError::Invalid(_)) => ErrorKind::Invalid,
            Error::Cgroup(CgroupError::Unsupported(_)) => ErrorKind::NotSupported,
            Error::Cgroup(_) => ErrorKind::Internal,
            Error::Seccomp(SeccompError::Invalid(_)) => ErrorKind::Invalid,
            Error::Seccomp(SeccompError::Unsupported(_)) => ErrorKind::NotSupported,
            Error::Seccomp(_) => ErrorKind::Internal,
        }
    }
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds context to IO results.
pub trait Context<T> {
    /// Wraps the error with `what` (evaluated lazily).
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
