//! What a build is asked to do (the edges fill this in from `berth build`'s
//! flags or `POST /build`'s query).

use std::collections::BTreeMap;

use berth_engine::config::{HostEntry, Resources};
use berth_types::{Digest, Reference};

use super::output::Progress;

/// Build options.
#[derive(Default)]
pub struct BuildOptions {
    /// Names to tag the result with.
    pub tags: Vec<Reference>,
    /// `--build-arg K=V` (a value of `None`: declared without a value,
    /// which leaves the Dockerfile's default).
    pub build_args: BTreeMap<String, Option<String>>,
    /// `--label` (added to the final image).
    pub labels: BTreeMap<String, String>,
    /// `--target`: the stage to stop at.
    pub target: Option<String>,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--no-cache-filter`: stages built without the cache.
    pub no_cache_filter: Vec<String>,
    /// `--cache-from`: images whose steps may be reused.
    pub cache_from: Vec<String>,
    /// `--pull`: pull base images even when they are present.
    pub pull: bool,
    /// Remove intermediate containers after a successful step (`rm`).
    pub rm: bool,
    /// Remove them after a failed one too (`forcerm`).
    pub force_rm: bool,
    /// `--network` for RUN: `default`, `none`, `host` or a network's name.
    pub network: Option<String>,
    /// `--add-host`.
    pub extra_hosts: Vec<HostEntry>,
    /// Resource limits of RUN containers.
    pub resources: Resources,
    /// `--ulimit` of RUN containers.
    pub ulimits: Vec<berth_engine::config::Ulimit>,
    /// `--shm-size` in bytes.
    pub shm_size: Option<u64>,
    /// `--platform`.
    pub platform: Option<String>,
    /// `--secret`.
    pub secrets: Vec<Secret>,
    /// `--ssh ID=SOCKET`: agent sockets RUN --mount=type=ssh binds.
    pub ssh: Vec<SshAgent>,
    /// Pulls a missing base image (`None`: missing images are an error).
    pub puller: Option<Box<dyn Puller>>,
}

impl std::fmt::Debug for BuildOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildOptions")
            .field("tags", &self.tags)
            .field("target", &self.target)
            .field("no_cache", &self.no_cache)
            .finish_non_exhaustive()
    }
}

/// `--secret id=ID,src=PATH|env=VAR`.
#[derive(Clone, Debug)]
pub struct Secret {
    /// The id `RUN --mount=type=secret,id=…` names.
    pub id: String,
    /// Where its bytes are.
    pub source: SecretSource,
}

/// `--ssh ID=SOCKET` (`default` when no id is given).
#[derive(Clone, Debug)]
pub struct SshAgent {
    /// The id `RUN --mount=type=ssh,id=…` names.
    pub id: String,
    /// The agent's socket.
    pub socket: std::path::PathBuf,
}

/// A secret's bytes.
#[derive(Clone, Debug)]
pub enum SecretSource {
    /// A file on the client's machine (read when mounted).
    File(std::path::PathBuf),
    /// The bytes themselves (an environment variable's value).
    Bytes(Vec<u8>),
}

/// Gets a base image that is not present (or `--pull`).
pub trait Puller: Send + Sync {
    /// Pulls `r` for `platform`, reporting progress; returns the image id.
    fn pull(
        &self,
        engine: &berth_engine::Engine,
        r: &Reference,
        platform: Option<&str>,
        out: &mut dyn Progress,
    ) -> Result<Digest, String>;
}
