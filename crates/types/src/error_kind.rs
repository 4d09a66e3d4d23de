use std::fmt;

/// The category of a failure. Libraries attach one to their errors; edges map
/// it to a status code (HTTP, Kubernetes `Status`, CLI exit code).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ErrorKind {
    /// The named thing does not exist.
    NotFound,
    /// The request collides with existing state (duplicate name, wrong state).
    Conflict,
    /// The input is malformed or violates a rule.
    Invalid,
    /// The caller lacks the credentials or privileges.
    Unauthorized,
    /// The operation is refused in the object's present state (docker's
    /// 403: a network with active endpoints, an endpoint that exists).
    Forbidden,
    /// A limit was exceeded (size, count, rlimit).
    LimitExceeded,
    /// The feature exists in the spec but berth does not support it yet.
    NotSupported,
    /// A dependency (kernel feature, peer) is not available right now.
    Unavailable,
    /// Nothing to do: the object is already in the state asked for
    /// (docker's 304 for starting a running container).
    NotModified,
    /// Anything else: a bug or an unexpected system failure.
    Internal,
}

impl ErrorKind {
    /// Lower-case name, as used in logs and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Invalid => "invalid",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::LimitExceeded => "limit exceeded",
            ErrorKind::NotSupported => "not supported",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::NotModified => "not modified",
            ErrorKind::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
