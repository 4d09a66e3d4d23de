//! The registry client: pull and push against any OCI distribution
//! registry (token and basic authentication, Docker config credentials,
//! TLS with system roots, HTTP only for insecure registries, mirrors,
//! retries that resume, concurrent layers, cross-repository mounts).

pub mod auth;
pub mod client;
pub mod distribution;
pub mod pull;
pub mod push;

pub use auth::AuthConfig;
pub use client::{Client, Endpoint, RegistryOptions, registry_host};
pub use distribution::Distribution;
pub use pull::{Pulled, fetch_manifest};
pub use push::Pushed;

/// What happens to one layer (its id is the first 12 hex digits of the
/// blob's digest, as docker shows it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// Queued.
    Waiting,
    /// Already in the local store.
    AlreadyExists,
    /// Bytes arriving.
    Downloading {
        /// So far.
        current: u64,
        /// Expected.
        total: u64,
    },
    /// A transfer failed and is retried after a pause.
    Retrying {
        /// Attempt number.
        attempt: u32,
        /// What went wrong.
        error: String,
    },
    /// All bytes in and verified.
    DownloadComplete,
    /// Unpacking.
    Extracting,
    /// Ready to use.
    PullComplete,
    /// About to push.
    Preparing,
    /// Bytes leaving.
    Pushing {
        /// So far.
        current: u64,
        /// Total.
        total: u64,
    },
    /// Uploaded.
    Pushed,
    /// The registry already had it.
    LayerExists,
    /// Mounted from another repository on the same registry.
    Mounted(String),
}

/// Receives progress of a pull or push.
pub trait Progress: Send + Sync {
    /// A layer's status changed.
    fn layer(&self, id: &str, status: Status);
    /// A line of general information (`latest: Pulling from library/busybox`).
    fn message(&self, line: &str);
}

impl Status {
    /// Docker's words for it (`Pulling fs layer`, `Pull complete`, …).
    pub fn text(&self) -> String {
        match self {
            Status::Waiting => "Pulling fs layer".into(),
            Status::AlreadyExists => "Already exists".into(),
            Status::Downloading { .. } => "Downloading".into(),
            Status::Retrying { attempt, error } => format!("Retrying ({attempt}): {error}"),
            Status::DownloadComplete => "Download complete".into(),
            Status::Extracting => "Extracting".into(),
            Status::PullComplete => "Pull complete".into(),
            Status::Preparing => "Preparing".into(),
            Status::Pushing { .. } => "Pushing".into(),
            Status::Pushed => "Pushed".into(),
            Status::LayerExists => "Layer already exists".into(),
            Status::Mounted(from) => format!("Mounted from {from}"),
        }
    }
}

/// Progress that goes nowhere.
#[derive(Debug, Default)]
pub struct Quiet;

impl Progress for Quiet {
    fn layer(&self, _: &str, _: Status) {}
    fn message(&self, _: &str) {}
}
