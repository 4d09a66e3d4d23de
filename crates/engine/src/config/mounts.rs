//! Mounts a container asks for: binds of host paths, volumes (named or
//! anonymous) and tmpfs.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// What is mounted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    /// A host path.
    #[default]
    Bind,
    /// A volume.
    Volume,
    /// A fresh tmpfs.
    Tmpfs,
}

impl MountKind {
    /// Docker's name.
    pub fn as_str(self) -> &'static str {
        match self {
            MountKind::Bind => "bind",
            MountKind::Volume => "volume",
            MountKind::Tmpfs => "tmpfs",
        }
    }
}

impl fmt::Display for MountKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Mount propagation of a bind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Propagation {
    /// `private`.
    Private,
    /// `rprivate` (the default).
    #[default]
    Rprivate,
    /// `shared`.
    Shared,
    /// `rshared`.
    Rshared,
    /// `slave`.
    Slave,
    /// `rslave`.
    Rslave,
}

impl Propagation {
    /// Every mode, by name.
    pub const ALL: [Propagation; 6] = [
        Propagation::Private,
        Propagation::Rprivate,
        Propagation::Shared,
        Propagation::Rshared,
        Propagation::Slave,
        Propagation::Rslave,
    ];

    /// The mount option's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Propagation::Private => "private",
            Propagation::Rprivate => "rprivate",
            Propagation::Shared => "shared",
            Propagation::Rshared => "rshared",
            Propagation::Slave => "slave",
            Propagation::Rslave => "rslave",
        }
    }

    /// The mode named `s`.
    pub fn parse(s: &str) -> Option<Propagation> {
        Propagation::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// Which request field a mount came from (docker reports binds, mounts
/// and tmpfs mounts back in their own fields).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountOrigin {
    /// `-v` / `HostConfig.Binds`, or `Config.Volumes`.
    #[default]
    Volume,
    /// `--mount` / `HostConfig.Mounts`.
    Mount,
    /// `--tmpfs` / `HostConfig.Tmpfs`.
    Tmpfs,
    /// An image `VOLUME` nothing else covered.
    Image,
    /// Another container's (`--volumes-from`).
    VolumesFrom,
}

/// A mount to make.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mount {
    /// What is mounted.
    pub kind: MountKind,
    /// Binds: the absolute host path. Volumes: the name (`None`: a new
    /// anonymous volume). Tmpfs: `None`.
    pub source: Option<String>,
    /// Absolute path in the container.
    pub target: String,
    /// Read-only.
    pub read_only: bool,
    /// Binds: propagation (`None`: rprivate).
    pub propagation: Option<Propagation>,
    /// Binds: make the host path when it is missing (`-v` does, `--mount`
    /// refuses unless asked).
    pub create_source: bool,
    /// Volumes: do not copy the image's content into an empty volume.
    pub no_copy: bool,
    /// Volumes: labels and local-driver options for a volume this mount
    /// creates.
    pub volume_labels: BTreeMap<String, String>,
    /// See `volume_labels`.
    pub volume_options: BTreeMap<String, String>,
    /// Tmpfs: mount options (`size=…`, `mode=…`, `noexec`…).
    pub tmpfs_options: Vec<String>,
    /// The mode text the request gave (`ro,z`), reported back as is.
    pub mode: String,
    /// Which request field it came from.
    pub origin: MountOrigin,
}

/// `--volumes-from CONTAINER[:ro|rw]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumesFrom {
    /// The other container (name or id).
    pub container: String,
    /// `Some(true)`: read-only, `Some(false)`: as the other has them;
    /// `None`: as the other has them. A mode only takes write access away.
    pub read_only: Option<bool>,
}
