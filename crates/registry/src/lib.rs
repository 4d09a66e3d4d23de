//! berth's registry: an OCI distribution-spec 1.1 server.
//!
//! Blobs live in berth's content store under `<root>/content` (one copy
//! per digest whatever the number of repositories); registry metadata —
//! repositories, which blobs each repository may serve, manifests with their
//! media types and referrers data, tags, upload sessions — lives in SQLite
//! at `<root>/registry.db`; upload sessions write to `<root>/uploads/<uuid>`.
//!
//! The API: `GET /v2/`, blob `HEAD`/`GET` (with `Range`) and `DELETE`,
//! uploads (`POST` to start, monolithic `?digest=`, cross-repository
//! `?mount=&from=` and anonymous `?mount=`; chunked `PATCH` with
//! `Content-Range`; `PUT ?digest=` to close; `GET` status; `DELETE` to
//! cancel), manifests by tag and digest (`GET`/`HEAD`/`PUT`/`DELETE`, OCI
//! image manifests and indexes, Docker schema 2 manifests and manifest
//! lists, artifacts; schema 1 is refused), `?tag=` on pushes by digest,
//! `OCI-Subject`, the referrers API with `artifactType` filtering, tag
//! listing and the catalog with `n`/`last` pagination. Optional HTTP Basic
//! authentication ([`Auth`]) and TLS.
//!
//! ```no_run
//! # async fn run() -> Result<(), berth_registry::Error> {
//! let config = berth_registry::Config {
//!     addr: "127.0.0.1:5000".parse().unwrap(),
//!     root: "/tmp/registry".into(),
//!     ..Default::default()
//! };
//! berth_registry::serve(config, async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(clippy::string_slice)]
#![deny(missing_docs)]

mod api;
mod auth;
mod body;
mod db;
mod error;
mod manifest;
mod names;
mod server;
mod uploads;

use std::net::SocketAddr;
use std::path::PathBuf;

pub use auth::Auth;
pub use error::Error;
pub use server::{Server, bind};

/// Default largest manifest accepted (4 MiB, what clients must support).
pub const DEFAULT_MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;
/// Default (and maximum) page size of the catalog and of paginated tag lists.
pub const DEFAULT_MAX_CATALOG_N: usize = 1000;

/// How to run the registry.
#[derive(Clone, Debug)]
pub struct Config {
    /// Address to listen on.
    pub addr: SocketAddr,
    /// Storage directory.
    pub root: PathBuf,
    /// TLS: PEM certificate chain and PEM private key. Plain HTTP if unset.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Authentication; anonymous access if unset.
    pub auth: Option<Auth>,
    /// Largest manifest accepted; larger pushes get 413.
    pub max_manifest_bytes: usize,
    /// Largest page of `/v2/_catalog` (and of tag lists asked for with `n`).
    pub max_catalog_n: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 5000)),
            root: PathBuf::from("/var/lib/berth/registry"),
            tls: None,
            auth: None,
            max_manifest_bytes: DEFAULT_MAX_MANIFEST_BYTES,
            max_catalog_n: DEFAULT_MAX_CATALOG_N,
        }
    }
}

/// Binds `config.addr`, logs where it listens, and serves until `shutdown`
/// completes.
pub async fn serve(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    bind(config).await?.run(shutdown).await
}
