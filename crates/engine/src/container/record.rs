//! `container.json`: what a container was made with, as the engine keeps
//! it (schema 2; `migrate` reads older schemas). Written once at create and
//! changed by rename, update and network connect/disconnect. These are the
//! engine's own types: docker's JSON shapes are made from them in
//! `berth-docker-api`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::{
    Attach, ConsoleSize, DeviceMapping, DeviceRule, Dns, EndpointSpec, HealthConfig, HostEntry,
    LogConfig, Namespaces, NetworkMode, PortBinding, PortProto, Resources, RestartPolicy, Security,
    Signal, Ulimit, VolumesFrom,
};
use crate::volumes::MountPoint;

/// The schema `container.json` is written in.
pub const RECORD_SCHEMA: u32 = 2;

/// A container's configuration, with the image's values applied.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Record {
    /// Schema version.
    pub schema: u32,
    /// 64 hex digits.
    pub id: String,
    /// Name, without docker's leading "/".
    pub name: String,
    /// RFC 3339 with nanoseconds.
    pub created: String,
    /// The image as the user named it.
    pub image: String,
    /// The image id (`sha256:…`).
    pub image_id: String,
    /// The process: argv\[0\].
    pub path: String,
    /// The process: the rest of argv.
    pub args: Vec<String>,
    /// The command (the image's when not given).
    pub cmd: Vec<String>,
    /// The entrypoint (the image's when not given).
    pub entrypoint: Vec<String>,
    /// The process's whole environment.
    pub env: Vec<String>,
    /// Working directory.
    pub working_dir: String,
    /// User as given (or the image's).
    pub user: String,
    /// Host name.
    pub hostname: String,
    /// NIS domain name.
    pub domainname: String,
    /// Labels (the image's merged with the container's).
    pub labels: BTreeMap<String, String>,
    /// A terminal.
    pub tty: bool,
    /// Stdin kept open.
    pub open_stdin: bool,
    /// Stdin closed when the first attached client detaches.
    pub stdin_once: bool,
    /// Streams attached at create.
    pub attach: Attach,
    /// Exposed ports (the image's and the container's).
    pub exposed_ports: Vec<PortProto>,
    /// Signal `stop` sends, when the container or its image names one
    /// (`None`: SIGTERM; left out then, so older readers take their
    /// default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<Signal>,
    /// Seconds `stop` waits before SIGKILL (`None`: 10).
    pub stop_timeout: Option<i64>,
    /// Removed when it exits.
    pub auto_remove: bool,
    /// Restart policy.
    pub restart_policy: RestartPolicy,
    /// Whose network namespace.
    pub network: NetworkMode,
    /// The bridge networks it is on (network ids), in the order it joins
    /// them (`eth0`, `eth1`…); published ports go to the first.
    pub networks: Vec<EndpointSpec>,
    /// Published ports.
    pub ports: Vec<PortBinding>,
    /// Every exposed port published on a free host port.
    pub publish_all: bool,
    /// resolv.conf settings.
    pub dns: Dns,
    /// Extra /etc/hosts lines.
    pub extra_hosts: Vec<HostEntry>,
    /// Privileges.
    pub security: Security,
    /// cgroup limits.
    pub resources: Resources,
    /// Log driver.
    pub log: LogConfig,
    /// Terminal size at create.
    pub console_size: Option<ConsoleSize>,
    /// Mounts, resolved (volume names and host paths).
    pub mounts: Vec<MountPoint>,
    /// The health check in effect (the image's with the container's over
    /// it); `None`: none.
    pub healthcheck: Option<HealthConfig>,
    /// berth-init runs as process 1.
    pub init: bool,
    /// Shared namespaces (`container:` modes hold full ids).
    pub namespaces: Namespaces,
    /// /dev/shm size in bytes (`None`: 64 MiB).
    pub shm_size: Option<u64>,
    /// Supplementary groups.
    pub group_add: Vec<String>,
    /// oom_score_adj.
    pub oom_score_adj: i32,
    /// Host devices.
    pub devices: Vec<DeviceMapping>,
    /// Device cgroup rules.
    pub device_cgroup_rules: Vec<DeviceRule>,
    /// rlimits.
    pub ulimits: Vec<Ulimit>,
    /// Sysctls.
    pub sysctls: BTreeMap<String, String>,
    /// `--volumes-from` as asked (their mounts are in `mounts`).
    pub volumes_from: Vec<VolumesFrom>,
    /// The cgroup parent asked for (`None`: berth's).
    pub cgroup_parent: Option<String>,
    /// The pod sandbox it belongs to.
    pub sandbox: Option<String>,
}

impl Default for Record {
    fn default() -> Record {
        Record {
            schema: RECORD_SCHEMA,
            id: String::new(),
            name: String::new(),
            created: String::new(),
            image: String::new(),
            image_id: String::new(),
            path: String::new(),
            args: Vec::new(),
            cmd: Vec::new(),
            entrypoint: Vec::new(),
            env: Vec::new(),
            working_dir: String::new(),
            user: String::new(),
            hostname: String::new(),
            domainname: String::new(),
            labels: BTreeMap::new(),
            tty: false,
            open_stdin: false,
            stdin_once: false,
            attach: Attach::default(),
            exposed_ports: Vec::new(),
            stop_signal: None,
            stop_timeout: None,
            auto_remove: false,
            restart_policy: RestartPolicy::No,
            network: NetworkMode::default(),
            networks: Vec::new(),
            ports: Vec::new(),
            publish_all: false,
            dns: Dns::default(),
            extra_hosts: Vec::new(),
            security: Security::default(),
            resources: Resources::default(),
            log: LogConfig::default(),
            console_size: None,
            mounts: Vec::new(),
            healthcheck: None,
            init: false,
            namespaces: Namespaces::default(),
            shm_size: None,
            group_add: Vec::new(),
            oom_score_adj: 0,
            devices: Vec::new(),
            device_cgroup_rules: Vec::new(),
            ulimits: Vec::new(),
            sysctls: BTreeMap::new(),
            volumes_from: Vec::new(),
            cgroup_parent: None,
            sandbox: None,
        }
    }
}

impl Record {
    /// Whether it runs in a network namespace of its own on bridge
    /// networks.
    pub fn bridged(&self) -> bool {
        matches!(self.network, NetworkMode::Bridge(_))
    }

    /// The cgroup path of its runs.
    pub fn cgroups_path(&self) -> String {
        let parent = self.cgroup_parent.as_deref().unwrap_or("/berth");
        let parent = parent.trim_end_matches('/');
        if parent.starts_with('/') {
            format!("{parent}/{}", self.id)
        } else {
            format!("/{parent}/{}", self.id)
        }
    }
}
