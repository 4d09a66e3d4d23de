//! The errors of the auth module.

use std::path::PathBuf;

/// What went wrong in authentication, the PKI, kubeconfig or token handling.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A file or directory could not be read, written or created.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("reading", "writing", "creating directory", …).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A PEM file held no usable certificate or key.
    #[error("{path}: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A certificate or key could not be made or parsed.
    #[error("{what}: {reason}")]
    Certificate {
        /// Which certificate or key.
        what: String,
        /// What went wrong.
        reason: String,
    },
    /// The TLS configuration could not be built.
    #[error("building the TLS configuration: {0}")]
    Tls(String),
    /// A line of the static token file is malformed.
    #[error("token file {path}, line {line}: {reason}")]
    TokenFile {
        /// The token file ("<memory>" when parsed from a string).
        path: String,
        /// The 1-based line number.
        line: usize,
        /// What is wrong with the line.
        reason: String,
    },
    /// A bearer token that claims to be ours is malformed, badly signed, not yet valid,
    /// expired or meant for another audience (answer 401).
    #[error("invalid bearer token: {0}")]
    InvalidToken(String),
    /// A token request asks for something that cannot be issued.
    #[error("invalid token request: {0}")]
    TokenRequest(String),
}

impl AuthError {
    pub(crate) fn io(action: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        AuthError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn cert(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        AuthError::Certificate {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}
