//! Privileges: capabilities, seccomp, no_new_privs, masked paths, a
//! read-only root, privileged mode.

use serde::{Deserialize, Serialize};

/// The seccomp filter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "profile", rename_all = "lowercase")]
pub enum Seccomp {
    /// berth's default profile (docker's).
    #[default]
    Default,
    /// No filter.
    Unconfined,
    /// A docker seccomp profile (its JSON text).
    Profile(String),
}

/// What the container's processes may do.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Security {
    /// Every capability and host device, no seccomp, no masked paths,
    /// /sys writable.
    pub privileged: bool,
    /// A read-only root filesystem.
    pub read_only_rootfs: bool,
    /// Set no_new_privs.
    pub no_new_privileges: bool,
    /// Capabilities added to docker's default set (`ALL` allowed; names
    /// with or without `CAP_`).
    pub cap_add: Vec<String>,
    /// Capabilities dropped from it.
    pub cap_drop: Vec<String>,
    /// The seccomp filter.
    pub seccomp: Seccomp,
    /// Paths masked instead of docker's list (`None`: docker's).
    pub masked_paths: Option<Vec<String>>,
    /// Paths made read-only instead of docker's list (`None`: docker's).
    pub readonly_paths: Option<Vec<String>>,
}
