//! Namespaces a container shares: with the host, another container, or
//! the pod sandbox it belongs to.

use serde::{Deserialize, Serialize};

/// The pid namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", content = "of", rename_all = "lowercase")]
pub enum PidMode {
    /// Its own.
    #[default]
    Private,
    /// The host's.
    Host,
    /// Another container's (name or id; the id once created).
    Container(String),
    /// Its pod sandbox's (a pod that shares its process namespace).
    Sandbox(String),
}

/// The IPC namespace and /dev/shm.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", content = "of", rename_all = "lowercase")]
pub enum IpcMode {
    /// Its own, with a private /dev/shm.
    #[default]
    Private,
    /// Its own, with a /dev/shm others may join.
    Shareable,
    /// The host's (and its /dev/shm).
    Host,
    /// Its own, without /dev/shm.
    None,
    /// Another container's (name or id; the id once created).
    Container(String),
    /// Its pod sandbox's.
    Sandbox(String),
}

/// The UTS namespace (host name).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", content = "of", rename_all = "lowercase")]
pub enum UtsMode {
    /// Its own.
    #[default]
    Private,
    /// The host's.
    Host,
    /// Its pod sandbox's.
    Sandbox(String),
}

/// The cgroup namespace.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupnsMode {
    /// Its own.
    #[default]
    Private,
    /// The host's.
    Host,
}

/// The namespaces a container does not keep to itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Namespaces {
    /// pid.
    pub pid: PidMode,
    /// IPC.
    pub ipc: IpcMode,
    /// UTS.
    pub uts: UtsMode,
    /// cgroup.
    pub cgroupns: CgroupnsMode,
}

impl PidMode {
    /// Docker's text (`""`, `host`, `container:ID`).
    pub fn docker_name(&self) -> String {
        match self {
            PidMode::Private => String::new(),
            PidMode::Host => "host".into(),
            PidMode::Container(c) => format!("container:{c}"),
            PidMode::Sandbox(s) => format!("sandbox:{s}"),
        }
    }
}

impl IpcMode {
    /// Docker's text (`private`, `shareable`, `container:ID`…).
    pub fn docker_name(&self) -> String {
        match self {
            IpcMode::Private => "private".into(),
            IpcMode::Shareable => "shareable".into(),
            IpcMode::Host => "host".into(),
            IpcMode::None => "none".into(),
            IpcMode::Container(c) => format!("container:{c}"),
            IpcMode::Sandbox(s) => format!("sandbox:{s}"),
        }
    }
}

impl UtsMode {
    /// Docker's text (`""`, `host`).
    pub fn docker_name(&self) -> String {
        match self {
            UtsMode::Private => String::new(),
            UtsMode::Host => "host".into(),
            UtsMode::Sandbox(s) => format!("sandbox:{s}"),
        }
    }
}

impl CgroupnsMode {
    /// Docker's text.
    pub fn docker_name(self) -> &'static str {
        match self {
            CgroupnsMode::Private => "private",
            CgroupnsMode::Host => "host",
        }
    }
}
