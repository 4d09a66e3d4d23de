//! What a container is made from: [`ContainerSpec`], the engine's typed
//! input. Every edge fills one in — berth's CLI and the Docker API through
//! `berth_docker_api::syntax` (Docker's `-v`, `-p`, `--ulimit`… parsed
//! once), the builder and the node agent directly — and the engine never
//! sees a command-line string or a wire format. Fields left `None` or
//! empty take the image's value or Docker's default.

mod log;
mod mounts;
mod namespaces;
mod network;
mod resources;
mod restart;
mod security;

use std::collections::BTreeMap;

pub use berth_net::Proto;
pub use berth_types::Signal;
pub use berth_types::image::HealthConfig;
pub use log::{LogConfig, LogDriver};
pub use mounts::{Mount, MountKind, MountOrigin, Propagation, VolumesFrom};
pub use namespaces::{CgroupnsMode, IpcMode, Namespaces, PidMode, UtsMode};
pub use network::{
    Dns, EndpointSpec, HostAddr, HostEntry, Link, MacAddress, NetworkMode, NetworkSpec,
    PortBinding, PortProto,
};
pub use resources::{DeviceMapping, DevicePerms, DeviceRule, Resources, Ulimit};
pub use restart::RestartPolicy;
pub use security::{Seccomp, Security};
use serde::{Deserialize, Serialize};

/// Which of the process's streams a client attached at create (recorded
/// for `inspect`; attaching is done by the attach stream).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Attach {
    /// Standard input.
    pub stdin: bool,
    /// Standard output.
    pub stdout: bool,
    /// Standard error.
    pub stderr: bool,
}

/// A terminal size: rows and columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleSize {
    /// Rows.
    pub height: u16,
    /// Columns.
    pub width: u16,
}

/// A container to create.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContainerSpec {
    /// Its name (`None`: a random one).
    pub name: Option<String>,
    /// The image, as the user named it.
    pub image: String,
    /// The command (`None`: the image's).
    pub cmd: Option<Vec<String>>,
    /// The entrypoint (`None`: the image's; `Some([])` clears it and the
    /// image's command with it).
    pub entrypoint: Option<Vec<String>>,
    /// Environment entries over the image's: `KEY=value`, or `KEY` alone,
    /// which removes KEY from the process's environment.
    pub env: Vec<String>,
    /// Working directory (`None`: the image's, or `/`).
    pub working_dir: Option<String>,
    /// `user[:group]`, names resolved in the image (`None`: the image's).
    pub user: Option<String>,
    /// Host name (`None`: the short id).
    pub hostname: Option<String>,
    /// NIS domain name.
    pub domainname: Option<String>,
    /// Allocate a terminal.
    pub tty: bool,
    /// Keep stdin open.
    pub open_stdin: bool,
    /// Close stdin when the first attached client detaches.
    pub stdin_once: bool,
    /// Streams attached at create (informational).
    pub attach: Attach,
    /// Labels over the image's.
    pub labels: BTreeMap<String, String>,
    /// Ports exposed besides the image's.
    pub exposed_ports: Vec<PortProto>,
    /// Signal `stop` sends (`None`: the image's, or SIGTERM).
    pub stop_signal: Option<Signal>,
    /// Seconds `stop` waits before SIGKILL (`None`: 10; negative: forever).
    pub stop_timeout: Option<i64>,
    /// Remove the container when it exits.
    pub auto_remove: bool,
    /// Restart policy.
    pub restart_policy: RestartPolicy,
    /// Networking.
    pub network: NetworkSpec,
    /// Health check over the image's (`test: ["NONE"]` disables it).
    pub healthcheck: Option<HealthConfig>,
    /// Binds, volumes and tmpfs mounts.
    pub mounts: Vec<Mount>,
    /// Containers whose volumes and binds this one mounts too.
    pub volumes_from: Vec<VolumesFrom>,
    /// Resource limits.
    pub resources: Resources,
    /// Capabilities, seccomp, read-only root, privileged mode.
    pub security: Security,
    /// Namespaces shared with the host, other containers or a pod sandbox.
    pub namespaces: Namespaces,
    /// Host devices in the container.
    pub devices: Vec<DeviceMapping>,
    /// Extra device cgroup rules.
    pub device_cgroup_rules: Vec<DeviceRule>,
    /// Resource limits of the process (rlimits).
    pub ulimits: Vec<Ulimit>,
    /// Namespaced sysctls.
    pub sysctls: BTreeMap<String, String>,
    /// Run berth-init as process 1.
    pub init: bool,
    /// Where the output goes.
    pub log: LogConfig,
    /// Size of /dev/shm in bytes (`None`: 64 MiB).
    pub shm_size: Option<u64>,
    /// Supplementary groups (names from the image's /etc/group, or numbers).
    pub group_add: Vec<String>,
    /// The process's oom_score_adj (-1000..=1000).
    pub oom_score_adj: i32,
    /// The cgroup under which the container's cgroup is made (`None`:
    /// berth's own, `/berth`). A pod sandbox's containers go under the
    /// sandbox's.
    pub cgroup_parent: Option<String>,
    /// Terminal size at start.
    pub console_size: Option<ConsoleSize>,
}
