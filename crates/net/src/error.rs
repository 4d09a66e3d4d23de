//! The crate's error type.

use berth_types::ErrorKind;

/// Everything that can go wrong in `berth-net`. Messages are what a user sees
/// (docker's wording where docker has one).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input: a malformed subnet, a gateway outside its subnet, a bad
    /// name or port.
    #[error("{0}")]
    Invalid(String),
    /// No such network, endpoint or address.
    #[error("{0}")]
    NotFound(String),
    /// The request collides with existing state: a taken name, subnet, IP or
    /// host port, a network with active endpoints.
    #[error("{0}")]
    Conflict(String),
    /// The network pool or an address range has no room left.
    #[error("{0}")]
    Exhausted(String),
    /// A kernel or file operation failed; the string says what was tried.
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    /// Asked for something berth does not do yet.
    #[error("not supported yet: {0}")]
    NotSupported(String),
    /// `nft` rejected a rule set or could not be run.
    #[error("nftables: {0}")]
    Nft(String),
}

impl Error {
    /// The category edges map to a status code.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Invalid(_) => ErrorKind::Invalid,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::Exhausted(_) => ErrorKind::LimitExceeded,
            Error::NotSupported(_) => ErrorKind::NotSupported,
            Error::Io(_, e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                ErrorKind::Unauthorized
            }
            Error::Io(..) | Error::Nft(_) => ErrorKind::Internal,
        }
    }

    /// Wraps an IO error with what was being done.
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let what = what.into();
        move |e| Error::Io(what, e)
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
