//! `POST /containers/create`: the body, and the engine's [`ContainerSpec`]
//! made from it. Fields berth cannot honour yet are refused with "not
//! supported yet" rather than ignored.

use std::collections::BTreeMap;

use berth_engine::config::{
    Attach, ConsoleSize, ContainerSpec, DeviceMapping, DevicePerms, EndpointSpec, HealthConfig,
    Link, MountKind, MountOrigin, Propagation, Resources, Seccomp, Signal, Ulimit,
};
use serde::Deserialize;
use serde_json::Value;

use super::StrSlice;
use crate::syntax;

/// `Healthcheck`: every field may be left out or null.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthcheckBody {
    /// `["CMD", …]`, `["CMD-SHELL", "…"]`, `["NONE"]`, or empty (inherit).
    pub test: Option<Vec<String>>,
    /// Nanoseconds.
    pub interval: Option<i64>,
    /// Nanoseconds.
    pub timeout: Option<i64>,
    /// Nanoseconds.
    pub start_period: Option<i64>,
    /// Nanoseconds.
    pub start_interval: Option<i64>,
    /// Consecutive failures.
    pub retries: Option<i64>,
}

impl HealthcheckBody {
    /// The engine's health check (durations and retries checked as dockerd
    /// checks them).
    pub fn into_config(self) -> Result<HealthConfig, String> {
        let dur = |v: Option<i64>, what: &str| -> Result<i64, String> {
            match v.unwrap_or(0) {
                d if d < 0 => Err(format!("{what} in Healthcheck cannot be negative")),
                d if d != 0 && d < 1_000_000 => {
                    Err(format!("{what} in Healthcheck cannot be less than 1ms"))
                }
                d => Ok(d),
            }
        };
        let retries = self.retries.unwrap_or(0);
        if retries < 0 {
            return Err("Retries in Healthcheck cannot be negative".into());
        }
        Ok(HealthConfig {
            test: self.test.unwrap_or_default(),
            interval: dur(self.interval, "Interval")?,
            timeout: dur(self.timeout, "Timeout")?,
            start_period: dur(self.start_period, "StartPeriod")?,
            start_interval: dur(self.start_interval, "StartInterval")?,
            retries,
        })
    }
}

/// A `PortBindings` entry.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PortBindingBody {
    /// Host address (empty: all).
    pub host_ip: Option<String>,
    /// Host port (empty: a free one).
    pub host_port: Option<String>,
}

/// `RestartPolicy`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RestartBody {
    /// `no`, `always`, `unless-stopped`, `on-failure`.
    pub name: Option<String>,
    /// For `on-failure`.
    pub maximum_retry_count: Option<i64>,
}

/// `LogConfig`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct LogConfigBody {
    /// The driver.
    #[serde(rename = "Type")]
    pub kind: Option<String>,
    /// Its options.
    #[serde(rename = "Config")]
    pub config: Option<BTreeMap<String, String>>,
}

/// A `Devices` entry.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeviceBody {
    /// The host's device node.
    pub path_on_host: Option<String>,
    /// Its path in the container (default: the host's).
    pub path_in_container: Option<String>,
    /// `rwm` (default).
    pub cgroup_permissions: Option<String>,
}

/// A `Ulimits` entry.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UlimitBody {
    /// `nofile`, `nproc`…
    pub name: Option<String>,
    /// Soft limit (-1: unlimited).
    pub soft: Option<i64>,
    /// Hard limit (-1: unlimited).
    pub hard: Option<i64>,
}

impl UlimitBody {
    /// The engine's ulimit (-1: unlimited), checked.
    pub fn into_ulimit(self) -> Result<Ulimit, String> {
        let n = |v: Option<i64>| match v.unwrap_or(0) {
            -1 => Ok(u64::MAX),
            v => u64::try_from(v).map_err(|_| format!("invalid ulimit value {v}")),
        };
        let u = Ulimit {
            name: self.name.unwrap_or_default(),
            soft: n(self.soft)?,
            hard: n(self.hard)?,
        };
        u.validate()?;
        Ok(u)
    }
}

/// `BindOptions` of a mount.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BindOptionsBody {
    /// Propagation.
    pub propagation: Option<String>,
    /// Make the source when missing.
    pub create_mountpoint: Option<bool>,
    /// Not recursive (refused).
    pub non_recursive: Option<bool>,
}

/// `DriverConfig` of a volume mount.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DriverConfigBody {
    /// The driver (`local` only).
    pub name: Option<String>,
    /// Its options.
    pub options: Option<BTreeMap<String, String>>,
}

/// `VolumeOptions` of a mount.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeOptionsBody {
    /// Do not copy the image's content in.
    pub no_copy: Option<bool>,
    /// Labels of a volume the mount creates.
    pub labels: Option<BTreeMap<String, String>>,
    /// The driver.
    pub driver_config: Option<DriverConfigBody>,
    /// A subpath of the volume (refused).
    pub subpath: Option<String>,
}

/// `TmpfsOptions` of a mount.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TmpfsOptionsBody {
    /// Size in bytes.
    pub size_bytes: Option<i64>,
    /// Mode bits.
    pub mode: Option<u32>,
}

/// A `Mounts` entry.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MountBody {
    /// `bind`, `volume`, `tmpfs`.
    #[serde(rename = "Type")]
    pub kind: Option<String>,
    /// Host path or volume name.
    pub source: Option<String>,
    /// Path in the container.
    pub target: Option<String>,
    /// Read-only.
    pub read_only: Option<bool>,
    /// Bind options.
    pub bind_options: Option<BindOptionsBody>,
    /// Volume options.
    pub volume_options: Option<VolumeOptionsBody>,
    /// tmpfs options.
    pub tmpfs_options: Option<TmpfsOptionsBody>,
}

impl MountBody {
    /// The engine's mount.
    pub fn into_mount(self) -> Result<berth_engine::config::Mount, String> {
        let kind = match self.kind.as_deref().unwrap_or("") {
            "bind" => MountKind::Bind,
            "volume" => MountKind::Volume,
            "tmpfs" => MountKind::Tmpfs,
            "" => {
                return Err(
                    "invalid mount config: mount type must be given (bind, volume or tmpfs)".into(),
                );
            }
            k @ ("npipe" | "cluster" | "image") => {
                return Err(format!("not supported yet: mount type {k:?}"));
            }
            k => {
                return Err(format!(
                    "invalid mount config for type \"{k}\": mount type unknown"
                ));
            }
        };
        let target = self.target.unwrap_or_default();
        if target.is_empty() {
            return Err(format!(
                "invalid mount config for type \"{kind}\": field Target must not be empty"
            ));
        }
        let mut m = berth_engine::config::Mount {
            kind,
            source: self.source.filter(|s| !s.is_empty()),
            target,
            read_only: self.read_only.unwrap_or(false),
            origin: MountOrigin::Mount,
            ..Default::default()
        };
        if let Some(b) = self.bind_options {
            if b.non_recursive == Some(true) {
                return Err("not supported yet: non-recursive bind mounts".into());
            }
            if let Some(p) = b.propagation.filter(|p| !p.is_empty()) {
                m.propagation = Some(
                    Propagation::parse(&p)
                        .ok_or_else(|| format!("invalid propagation mode: {p}"))?,
                );
            }
            m.create_source = b.create_mountpoint.unwrap_or(false);
        }
        if let Some(v) = self.volume_options {
            if v.subpath.as_deref().is_some_and(|s| !s.is_empty()) {
                return Err("not supported yet: volume subpaths".into());
            }
            m.no_copy = v.no_copy.unwrap_or(false);
            m.volume_labels = v.labels.unwrap_or_default();
            if let Some(d) = v.driver_config {
                if d.name
                    .as_deref()
                    .is_some_and(|n| !n.is_empty() && n != "local")
                {
                    return Err("not supported yet: volume drivers other than local".into());
                }
                m.volume_options = d.options.unwrap_or_default();
            }
        }
        if let Some(t) = self.tmpfs_options {
            match t.size_bytes {
                Some(s) if s < 0 => return Err("invalid tmpfs size: negative".into()),
                Some(s) if s > 0 => m.tmpfs_options.push(format!("size={s}")),
                _ => {}
            }
            if let Some(mode) = t.mode.filter(|m| *m != 0) {
                m.tmpfs_options.push(format!("mode={:o}", mode & 0o7777));
            }
        }
        Ok(m)
    }
}

/// `HostConfig`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[allow(missing_docs)]
pub struct HostConfigBody {
    pub binds: Option<Vec<String>>,
    pub log_config: Option<LogConfigBody>,
    pub network_mode: Option<String>,
    pub port_bindings: Option<BTreeMap<String, Option<Vec<PortBindingBody>>>>,
    pub restart_policy: Option<RestartBody>,
    pub auto_remove: Option<bool>,
    pub volume_driver: Option<String>,
    pub volumes_from: Option<Vec<String>>,
    pub console_size: Option<Vec<u64>>,
    pub annotations: Option<BTreeMap<String, String>>,
    pub cap_add: Option<Vec<String>>,
    pub cap_drop: Option<Vec<String>>,
    pub cgroupns_mode: Option<String>,
    pub dns: Option<Vec<String>>,
    pub dns_options: Option<Vec<String>>,
    pub dns_search: Option<Vec<String>>,
    pub extra_hosts: Option<Vec<String>>,
    pub group_add: Option<Vec<String>>,
    pub ipc_mode: Option<String>,
    pub cgroup: Option<String>,
    pub links: Option<Vec<String>>,
    pub oom_score_adj: Option<i64>,
    pub pid_mode: Option<String>,
    pub privileged: Option<bool>,
    pub publish_all_ports: Option<bool>,
    pub readonly_rootfs: Option<bool>,
    pub security_opt: Option<Vec<String>>,
    pub storage_opt: Option<BTreeMap<String, String>>,
    pub tmpfs: Option<BTreeMap<String, String>>,
    #[serde(rename = "UTSMode")]
    pub uts_mode: Option<String>,
    pub userns_mode: Option<String>,
    pub shm_size: Option<i64>,
    pub sysctls: Option<BTreeMap<String, String>>,
    pub runtime: Option<String>,
    pub isolation: Option<String>,
    pub cpu_shares: Option<i64>,
    pub memory: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub cgroup_parent: Option<String>,
    pub blkio_weight: Option<u16>,
    pub blkio_weight_device: Option<Vec<Value>>,
    pub blkio_device_read_bps: Option<Vec<Value>>,
    pub blkio_device_write_bps: Option<Vec<Value>>,
    #[serde(rename = "BlkioDeviceReadIOps")]
    pub blkio_device_read_iops: Option<Vec<Value>>,
    #[serde(rename = "BlkioDeviceWriteIOps")]
    pub blkio_device_write_iops: Option<Vec<Value>>,
    pub cpu_period: Option<i64>,
    pub cpu_quota: Option<i64>,
    pub cpu_realtime_period: Option<i64>,
    pub cpu_realtime_runtime: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub devices: Option<Vec<DeviceBody>>,
    pub device_cgroup_rules: Option<Vec<String>>,
    pub device_requests: Option<Vec<Value>>,
    pub kernel_memory: Option<i64>,
    #[serde(rename = "KernelMemoryTCP")]
    pub kernel_memory_tcp: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub memory_swap: Option<i64>,
    pub memory_swappiness: Option<i64>,
    pub oom_kill_disable: Option<bool>,
    pub pids_limit: Option<i64>,
    pub ulimits: Option<Vec<UlimitBody>>,
    pub cpu_count: Option<i64>,
    pub cpu_percent: Option<i64>,
    #[serde(rename = "IOMaximumIOps")]
    pub io_maximum_iops: Option<u64>,
    #[serde(rename = "IOMaximumBandwidth")]
    pub io_maximum_bandwidth: Option<u64>,
    pub mounts: Option<Vec<MountBody>>,
    pub masked_paths: Option<Vec<String>>,
    pub readonly_paths: Option<Vec<String>>,
    pub init: Option<bool>,
}

/// `IPAMConfig` of an endpoint.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IpamConfigBody {
    /// A fixed IPv4 address.
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: Option<String>,
    /// A fixed IPv6 address.
    #[serde(rename = "IPv6Address")]
    pub ipv6_address: Option<String>,
    /// Link-local addresses.
    #[serde(rename = "LinkLocalIPs")]
    pub link_local_ips: Option<Vec<String>>,
}

/// An `EndpointsConfig` entry (also the `EndpointConfig` of `network
/// connect`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointBody {
    /// Fixed addresses.
    #[serde(rename = "IPAMConfig")]
    pub ipam_config: Option<IpamConfigBody>,
    /// Legacy links (`name:alias`).
    pub links: Option<Vec<String>>,
    /// DNS aliases.
    pub aliases: Option<Vec<String>>,
    /// A fixed MAC address.
    pub mac_address: Option<String>,
    /// Driver options.
    pub driver_opts: Option<BTreeMap<String, String>>,
}

/// `container:alias` (or just `container`) of `--link`.
pub fn parse_link(l: &str) -> Result<Link, String> {
    let (c, a) = l.split_once(':').unwrap_or((l, l));
    let c = c.trim_start_matches('/');
    let a = a.rsplit('/').next().unwrap_or(a);
    if c.is_empty() || a.is_empty() {
        return Err(format!("invalid link: {l:?}"));
    }
    Ok(Link {
        container: c.to_owned(),
        alias: a.to_owned(),
    })
}

impl EndpointBody {
    /// The engine's endpoint settings for `network`.
    pub fn into_endpoint(self, network: &str) -> Result<EndpointSpec, String> {
        let ipam = self.ipam_config.unwrap_or_default();
        if ipam.ipv6_address.as_deref().is_some_and(|a| !a.is_empty()) {
            return Err("not supported yet: IPv6 addresses (--ip6)".into());
        }
        let ipv4_address = match ipam.ipv4_address.as_deref().filter(|a| !a.is_empty()) {
            None => None,
            Some(a) => Some(
                a.parse()
                    .map_err(|_| format!("invalid IPv4 address: {a}"))?,
            ),
        };
        let mac_address = match self.mac_address.as_deref().filter(|m| !m.is_empty()) {
            None => None,
            Some(m) => Some(m.parse()?),
        };
        let link_local_ips = ipam
            .link_local_ips
            .unwrap_or_default()
            .iter()
            .map(|a| {
                a.parse::<std::net::IpAddr>()
                    .map_err(|_| format!("invalid link-local address: {a}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(EndpointSpec {
            network: network.to_owned(),
            aliases: self.aliases.unwrap_or_default(),
            ipv4_address,
            mac_address,
            links: self
                .links
                .unwrap_or_default()
                .iter()
                .map(|l| parse_link(l))
                .collect::<Result<_, _>>()?,
            driver_opts: self.driver_opts.unwrap_or_default(),
            link_local_ips,
        })
    }
}

/// `NetworkingConfig`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkingConfigBody {
    /// Settings per network.
    pub endpoints_config: Option<BTreeMap<String, Option<EndpointBody>>>,
}

/// The create body.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[allow(missing_docs)]
pub struct CreateBody {
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub user: Option<String>,
    pub attach_stdin: Option<bool>,
    pub attach_stdout: Option<bool>,
    pub attach_stderr: Option<bool>,
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    pub tty: Option<bool>,
    pub open_stdin: Option<bool>,
    pub stdin_once: Option<bool>,
    pub env: Option<Vec<String>>,
    pub cmd: Option<StrSlice>,
    pub healthcheck: Option<HealthcheckBody>,
    pub args_escaped: Option<bool>,
    pub image: Option<String>,
    pub volumes: Option<BTreeMap<String, Value>>,
    pub working_dir: Option<String>,
    pub entrypoint: Option<StrSlice>,
    pub network_disabled: Option<bool>,
    pub mac_address: Option<String>,
    pub on_build: Option<Vec<String>>,
    pub labels: Option<BTreeMap<String, String>>,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<i64>,
    pub shell: Option<Vec<String>>,
    pub host_config: Option<HostConfigBody>,
    pub networking_config: Option<NetworkingConfigBody>,
}

fn nonempty<T>(v: &Option<Vec<T>>) -> bool {
    v.as_ref().is_some_and(|v| !v.is_empty())
}

fn nonzero(v: Option<i64>) -> bool {
    v.is_some_and(|v| v != 0)
}

impl CreateBody {
    /// The engine's request (`name` from the query).
    pub fn into_spec(self, name: Option<String>) -> Result<ContainerSpec, String> {
        let image = self
            .image
            .filter(|i| !i.is_empty())
            .ok_or("config is missing Image")?;
        let h = self.host_config.unwrap_or_default();
        // fields whose feature berth does not have
        let refuse = |on: bool, what: &str| -> Result<(), String> {
            if on {
                Err(format!("not supported yet: {what}"))
            } else {
                Ok(())
            }
        };
        refuse(nonempty(&h.device_requests), "--gpus / device requests")?;
        refuse(nonzero(h.cpu_realtime_period), "--cpu-rt-period")?;
        refuse(nonzero(h.cpu_realtime_runtime), "--cpu-rt-runtime")?;
        refuse(nonzero(h.kernel_memory), "--kernel-memory")?;
        refuse(nonzero(h.kernel_memory_tcp), "kernel TCP memory limits")?;
        refuse(nonempty(&h.blkio_weight_device), "--blkio-weight-device")?;
        refuse(nonempty(&h.blkio_device_read_bps), "--device-read-bps")?;
        refuse(nonempty(&h.blkio_device_write_bps), "--device-write-bps")?;
        refuse(nonempty(&h.blkio_device_read_iops), "--device-read-iops")?;
        refuse(nonempty(&h.blkio_device_write_iops), "--device-write-iops")?;
        refuse(
            h.storage_opt.as_ref().is_some_and(|m| !m.is_empty()),
            "--storage-opt",
        )?;
        refuse(
            h.volume_driver
                .as_deref()
                .is_some_and(|d| !d.is_empty() && d != "local"),
            "--volume-driver",
        )?;
        refuse(nonzero(h.cpu_count), "--cpu-count (Windows)")?;
        refuse(nonzero(h.cpu_percent), "--cpu-percent (Windows)")?;
        refuse(
            h.io_maximum_iops.is_some_and(|v| v != 0),
            "--io-maxiops (Windows)",
        )?;
        refuse(
            h.io_maximum_bandwidth.is_some_and(|v| v != 0),
            "--io-maxbandwidth (Windows)",
        )?;
        refuse(
            h.annotations.as_ref().is_some_and(|m| !m.is_empty()),
            "--annotation",
        )?;
        refuse(
            h.cgroup.as_deref().is_some_and(|c| !c.is_empty()),
            "HostConfig.Cgroup",
        )?;
        if let Some(m) = h
            .userns_mode
            .as_deref()
            .filter(|m| !m.is_empty() && *m != "host")
        {
            return Err(format!("not supported yet: --userns {m}"));
        }
        if let Some(r) = h
            .runtime
            .as_deref()
            .filter(|r| !r.is_empty() && !matches!(*r, "berth" | "runc"))
        {
            return Err(format!(
                "not supported yet: --runtime {r} (berth is the only runtime; runc is accepted as berth)"
            ));
        }
        if let Some(i) = h
            .isolation
            .as_deref()
            .filter(|i| !i.is_empty() && *i != "default")
        {
            return Err(format!("not supported yet: --isolation {i}"));
        }
        if self.network_disabled == Some(true) {
            return Err("not supported yet: NetworkDisabled (use NetworkMode none)".into());
        }

        let mut spec = ContainerSpec {
            name,
            image,
            ..Default::default()
        };
        spec.cmd = self.cmd.map(|c| c.0).filter(|c| !c.is_empty());
        // `--entrypoint ""` arrives as [""]: clear it
        spec.entrypoint = self.entrypoint.map(|e| {
            if e.0.len() == 1 && e.0[0].is_empty() {
                Vec::new()
            } else {
                e.0
            }
        });
        spec.env = self.env.unwrap_or_default();
        spec.working_dir = self.working_dir.filter(|w| !w.is_empty());
        spec.user = self.user.filter(|u| !u.is_empty());
        spec.hostname = self.hostname.filter(|h| !h.is_empty());
        spec.domainname = self.domainname.filter(|d| !d.is_empty());
        spec.tty = self.tty.unwrap_or(false);
        spec.open_stdin = self.open_stdin.unwrap_or(false);
        spec.stdin_once = self.stdin_once.unwrap_or(false);
        spec.attach = Attach {
            stdin: self.attach_stdin.unwrap_or(false),
            stdout: self.attach_stdout.unwrap_or(false),
            stderr: self.attach_stderr.unwrap_or(false),
        };
        spec.labels = self.labels.unwrap_or_default();
        for k in self.exposed_ports.unwrap_or_default().keys() {
            spec.exposed_ports.push(syntax::parse_port_key(k)?);
        }
        spec.stop_signal = match self.stop_signal.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(s.parse::<Signal>().map_err(|e| e.to_string())?),
        };
        spec.stop_timeout = self.stop_timeout;
        spec.healthcheck = self.healthcheck.map(|h| h.into_config()).transpose()?;
        spec.auto_remove = h.auto_remove.unwrap_or(false);
        let rp = h.restart_policy.unwrap_or_default();
        spec.restart_policy =
            syntax::parse_restart(rp.name.as_deref().unwrap_or(""), rp.maximum_retry_count)?;
        if spec.auto_remove && spec.restart_policy.restarts() {
            return Err("conflicting options: cannot specify both --restart and --rm".into());
        }
        let lc = h.log_config.unwrap_or_default();
        spec.log = syntax::parse_log_config(
            lc.kind.as_deref().unwrap_or(""),
            &lc.config.unwrap_or_default(),
        )?;
        spec.console_size = match h.console_size.as_deref() {
            None | Some([]) => None,
            Some([hh, ww]) => {
                let n = |v: u64| u16::try_from(v).map_err(|_| "invalid ConsoleSize".to_owned());
                let (hh, ww) = (n(*hh)?, n(*ww)?);
                (hh > 0 && ww > 0).then_some(ConsoleSize {
                    height: hh,
                    width: ww,
                })
            }
            Some(_) => return Err("invalid ConsoleSize: [height, width]".into()),
        };

        // networking
        let net = &mut spec.network;
        net.mode = syntax::parse_network_mode(h.network_mode.as_deref().unwrap_or(""))?;
        for (key, hosts) in h.port_bindings.unwrap_or_default() {
            let pp = syntax::parse_port_key(&key)?;
            let list = hosts.unwrap_or_default();
            let list = if list.is_empty() {
                vec![PortBindingBody::default()]
            } else {
                list
            };
            for hb in list {
                let host_port = match hb.host_port.as_deref().unwrap_or("") {
                    "" => 0,
                    p => p
                        .parse::<u16>()
                        .map_err(|_| format!("invalid port specification: \"{p}\""))?,
                };
                let host_ip = match hb.host_ip.as_deref().unwrap_or("") {
                    "" => None,
                    ip => Some(
                        ip.parse()
                            .map_err(|_| format!("invalid IP address: {ip}"))?,
                    ),
                };
                net.ports.push(berth_engine::config::PortBinding {
                    container_port: pp.port,
                    proto: pp.proto,
                    host_ip,
                    host_port,
                });
            }
        }
        net.publish_all = h.publish_all_ports.unwrap_or(false);
        for d in h.dns.unwrap_or_default() {
            net.dns
                .servers
                .push(d.parse().map_err(|_| format!("{d} is not an ip address"))?);
        }
        net.dns.search = h.dns_search.unwrap_or_default();
        net.dns.options = h.dns_options.unwrap_or_default();
        for e in h.extra_hosts.unwrap_or_default() {
            net.extra_hosts.push(syntax::parse_add_host(&e)?);
        }
        let mode_name = net.mode.docker_name();
        let mut links = h
            .links
            .unwrap_or_default()
            .iter()
            .map(|l| parse_link(l))
            .collect::<Result<Vec<_>, _>>()?;
        let mac = self.mac_address.filter(|m| !m.is_empty());
        let eps = self
            .networking_config
            .and_then(|n| n.endpoints_config)
            .unwrap_or_default();
        let n_eps = eps.len();
        for (name, ep) in eps {
            let ep = ep.unwrap_or_default();
            let primary = name == mode_name
                || (matches!(mode_name.as_str(), "default" | "bridge")
                    && matches!(name.as_str(), "bridge" | "default"))
                || n_eps == 1;
            let mut e = ep.into_endpoint(&name)?;
            if primary {
                e.links.append(&mut links);
                if e.mac_address.is_none()
                    && let Some(m) = &mac
                {
                    e.mac_address = Some(m.parse()?);
                }
                // the mode's network first
                net.endpoints.insert(0, e);
            } else {
                net.endpoints.push(e);
            }
        }
        if !links.is_empty() || (mac.is_some() && net.endpoints.is_empty()) {
            let mut e = EndpointSpec {
                network: mode_name.clone(),
                links,
                ..Default::default()
            };
            if let Some(m) = &mac {
                e.mac_address = Some(m.parse()?);
            }
            net.endpoints.insert(0, e);
        }

        // mounts: binds, Mounts, Tmpfs, then anonymous Config.Volumes
        for b in h.binds.unwrap_or_default() {
            spec.mounts.push(syntax::parse_volume(&b)?);
        }
        for m in h.mounts.unwrap_or_default() {
            spec.mounts.push(m.into_mount()?);
        }
        for (path, opts) in h.tmpfs.unwrap_or_default() {
            spec.mounts.push(syntax::parse_tmpfs(&path, &opts));
        }
        for path in self.volumes.unwrap_or_default().keys() {
            let d = path.trim_end_matches('/');
            // a Config.Volumes entry that a bind already covers is no volume
            if !spec
                .mounts
                .iter()
                .any(|m| m.target.trim_end_matches('/') == d)
            {
                spec.mounts.push(syntax::parse_volume(path)?);
            }
        }
        for v in h.volumes_from.unwrap_or_default() {
            spec.volumes_from.push(syntax::parse_volumes_from(&v)?);
        }

        // resources
        let pids = h.pids_limit.filter(|p| *p > 0);
        spec.resources = Resources {
            memory: h.memory.unwrap_or(0),
            memory_swap: h.memory_swap.unwrap_or(0),
            memory_reservation: h.memory_reservation.unwrap_or(0),
            nano_cpus: h.nano_cpus.unwrap_or(0),
            cpu_shares: h.cpu_shares.unwrap_or(0),
            cpu_period: h.cpu_period.unwrap_or(0),
            cpu_quota: h.cpu_quota.unwrap_or(0),
            cpuset_cpus: h.cpuset_cpus.unwrap_or_default(),
            cpuset_mems: h.cpuset_mems.unwrap_or_default(),
            pids_limit: pids,
            memory_swappiness: h.memory_swappiness,
            oom_kill_disable: h.oom_kill_disable.unwrap_or(false),
            blkio_weight: h.blkio_weight.unwrap_or(0),
        };
        spec.resources.validate()?;
        for u in h.ulimits.unwrap_or_default() {
            spec.ulimits.push(u.into_ulimit()?);
        }
        for d in h.devices.unwrap_or_default() {
            let host = d.path_on_host.unwrap_or_default();
            let ctr = d
                .path_in_container
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| host.clone());
            let perms = d
                .cgroup_permissions
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "rwm".into());
            spec.devices.push(DeviceMapping {
                host,
                container: ctr,
                permissions: perms.parse::<DevicePerms>()?,
            });
        }
        for r in h.device_cgroup_rules.unwrap_or_default() {
            spec.device_cgroup_rules
                .push(syntax::parse_device_cgroup_rule(&r)?);
        }
        spec.sysctls = h.sysctls.unwrap_or_default();

        // privileges
        let sec = &mut spec.security;
        sec.privileged = h.privileged.unwrap_or(false);
        sec.read_only_rootfs = h.readonly_rootfs.unwrap_or(false);
        sec.cap_add = h.cap_add.unwrap_or_default();
        sec.cap_drop = h.cap_drop.unwrap_or_default();
        sec.masked_paths = h.masked_paths;
        sec.readonly_paths = h.readonly_paths;
        for opt in h.security_opt.unwrap_or_default() {
            // the docker CLI sends a seccomp profile's content, not its path
            match syntax::parse_security_opt(&opt, |p| Ok(p.to_owned()))? {
                syntax::SecurityOpt::NoNewPrivileges(on) => sec.no_new_privileges = on,
                syntax::SecurityOpt::Seccomp(s) => sec.seccomp = s,
                syntax::SecurityOpt::UnconfinedPaths => {
                    sec.masked_paths = Some(Vec::new());
                    sec.readonly_paths = Some(Vec::new());
                }
                syntax::SecurityOpt::None => {}
            }
        }
        if sec.privileged && sec.seccomp != Seccomp::Default {
            sec.seccomp = Seccomp::Unconfined;
        }

        // namespaces and process options
        spec.namespaces.pid = syntax::parse_pid_mode(h.pid_mode.as_deref().unwrap_or(""))?;
        spec.namespaces.ipc = syntax::parse_ipc_mode(h.ipc_mode.as_deref().unwrap_or(""))?;
        spec.namespaces.uts = syntax::parse_uts_mode(h.uts_mode.as_deref().unwrap_or(""))?;
        spec.namespaces.cgroupns =
            syntax::parse_cgroupns_mode(h.cgroupns_mode.as_deref().unwrap_or(""))?;
        spec.shm_size = match h.shm_size {
            None | Some(0) => None,
            Some(s) if s < 0 => return Err("SHM size can not be less than 0".into()),
            Some(s) => Some(s as u64),
        };
        spec.group_add = h.group_add.unwrap_or_default();
        spec.oom_score_adj = match h.oom_score_adj.unwrap_or(0) {
            v if (-1000..=1000).contains(&v) => v as i32,
            v => {
                return Err(format!(
                    "Invalid value {v}, range for oom score adj is [-1000, 1000]"
                ));
            }
        };
        spec.cgroup_parent = h.cgroup_parent.filter(|p| !p.is_empty());
        spec.init = h.init.unwrap_or(false);
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_engine::config::{NetworkMode, RestartPolicy};

    fn spec(body: &str) -> Result<ContainerSpec, String> {
        super::super::from_json::<CreateBody>(body.as_bytes())?.into_spec(Some("web".into()))
    }

    #[test]
    fn cli_body_maps() {
        let s = spec(
            r#"{"Hostname":"","User":"","AttachStdout":true,"Tty":false,"Env":["A=1","B"],
            "Cmd":["echo","hi"],"Image":"busybox:local","Volumes":{},"WorkingDir":"","Entrypoint":null,
            "Labels":{"app":"demo"},"HostConfig":{"Binds":null,"NetworkMode":"default","PortBindings":{},
            "RestartPolicy":{"Name":"on-failure","MaximumRetryCount":2},"AutoRemove":false,"ConsoleSize":[0,0],
            "Memory":67108864,"PidsLimit":0,"SecurityOpt":["no-new-privileges"],"Healthcheck":null},
            "Healthcheck":{"Test":["CMD","true"],"Interval":null,"Timeout":null,"Retries":null},
            "NetworkingConfig":{"EndpointsConfig":{"default":{}}}}"#,
        )
        .unwrap();
        assert_eq!(s.image, "busybox:local");
        assert_eq!(
            s.cmd.as_deref(),
            Some(&["echo".to_owned(), "hi".to_owned()][..])
        );
        assert_eq!(s.env, ["A=1", "B"], "entries without = are kept");
        assert!(s.security.no_new_privileges);
        assert_eq!(
            s.restart_policy,
            RestartPolicy::OnFailure { max_retries: 2 }
        );
        assert_eq!(s.resources.memory, 64 << 20);
        assert_eq!(s.resources.pids_limit, None);
        assert_eq!(s.labels["app"], "demo");
        assert_eq!(s.network.mode, NetworkMode::Bridge("default".into()));
        assert_eq!(s.healthcheck.unwrap().retries, 0);
        let s = spec(
            r#"{"Image":"x","Cmd":"echo hi","HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":"8080"}]},
            "Binds":["/a:/b"],"Links":["db:database"],"NetworkMode":"app"},"MacAddress":"02:42:c6:12:00:09",
            "NetworkingConfig":{"EndpointsConfig":{"app":{"Aliases":["w"]},"other":null}}}"#,
        )
        .unwrap();
        assert_eq!(
            s.cmd.unwrap(),
            ["echo hi"],
            "a string is one element, as dockerd reads it"
        );
        assert_eq!(s.mounts[0].source.as_deref(), Some("/a"));
        assert_eq!(s.network.ports[0].host_port, 8080);
        assert_eq!(s.network.endpoints[0].network, "app");
        assert_eq!(s.network.endpoints[0].aliases, ["w"]);
        assert_eq!(s.network.endpoints[0].links[0].alias, "database");
        assert!(s.network.endpoints[0].mac_address.is_some());
        assert_eq!(s.network.endpoints[1].network, "other");
    }

    #[test]
    fn wrong_types_and_ranges_name_the_field() {
        let cases = [
            (
                r#"{"Image":"x","HostConfig":{"Memory":"lots"}}"#,
                "HostConfig.Memory",
            ),
            (
                r#"{"Image":"x","HostConfig":{"Memory":1e30}}"#,
                "HostConfig.Memory",
            ),
            (
                r#"{"Image":"x","HostConfig":{"Memory":9223372036854775808}}"#,
                "HostConfig.Memory",
            ),
            (
                r#"{"Image":"x","HostConfig":{"Memory":33554432.5}}"#,
                "HostConfig.Memory",
            ),
            (
                r#"{"Image":"x","HostConfig":{"ReadonlyRootfs":"yes"}}"#,
                "HostConfig.ReadonlyRootfs",
            ),
            (
                r#"{"Image":"x","HostConfig":{"PidsLimit":"fifty"}}"#,
                "HostConfig.PidsLimit",
            ),
            (r#"{"Image":"x","Cmd":{}}"#, "Cmd"),
            (
                r#"{"Image":"x","HostConfig":{"BlkioWeight":70000}}"#,
                "HostConfig.BlkioWeight",
            ),
            (r#"{"Image":"x","Labels":{"a":1}}"#, "Labels.a"),
        ];
        for (body, field) in cases {
            let e = spec(body).unwrap_err();
            assert!(e.contains(field), "{body}: {e}");
        }
        let e = spec(r#"{"Image":"x","HostConfig":{"NanoCpus":9223372036854775000}}"#).unwrap_err();
        assert!(e.contains("range of CPUs"), "{e}");
        assert!(spec(r#"{"Cmd":["x"]}"#).unwrap_err().contains("Image"));
        assert!(spec("[1]").is_err());
        assert!(
            spec(r#"{"Image":"x","HostConfig":{"Links":["a:b"],"NetworkMode":"host"}}"#).is_ok()
        );
        assert!(
            spec(r#"{"Image":"x","HostConfig":{"DeviceRequests":[{}]}}"#)
                .unwrap_err()
                .contains("not supported yet")
        );
        assert!(
            spec(r#"{"Image":"x","HostConfig":{"Runtime":"runc","Isolation":"default"}}"#).is_ok()
        );
    }
}

/// `POST /containers/{id}/update`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[allow(missing_docs)]
pub struct UpdateBody {
    pub cpu_shares: Option<i64>,
    pub memory: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub blkio_weight: Option<u16>,
    pub cpu_period: Option<i64>,
    pub cpu_quota: Option<i64>,
    pub cpu_realtime_period: Option<i64>,
    pub cpu_realtime_runtime: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub kernel_memory: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub memory_swap: Option<i64>,
    pub pids_limit: Option<i64>,
    pub restart_policy: Option<RestartBody>,
}

impl UpdateBody {
    /// The new limits (0 / `None`: unchanged) and restart policy.
    pub fn into_update(
        self,
    ) -> Result<(Resources, Option<berth_engine::config::RestartPolicy>), String> {
        for (v, what) in [
            (self.kernel_memory, "KernelMemory"),
            (self.cpu_realtime_period, "CpuRealtimePeriod"),
            (self.cpu_realtime_runtime, "CpuRealtimeRuntime"),
        ] {
            if nonzero(v) {
                return Err(format!("not supported yet: update of {what}"));
            }
        }
        let res = Resources {
            memory: self.memory.unwrap_or(0),
            memory_swap: self.memory_swap.unwrap_or(0),
            memory_reservation: self.memory_reservation.unwrap_or(0),
            nano_cpus: self.nano_cpus.unwrap_or(0),
            cpu_shares: self.cpu_shares.unwrap_or(0),
            cpu_period: self.cpu_period.unwrap_or(0),
            cpu_quota: self.cpu_quota.unwrap_or(0),
            cpuset_cpus: self.cpuset_cpus.unwrap_or_default(),
            cpuset_mems: self.cpuset_mems.unwrap_or_default(),
            pids_limit: self.pids_limit,
            blkio_weight: self.blkio_weight.unwrap_or(0),
            ..Default::default()
        };
        let restart = match self.restart_policy {
            Some(r) if r.name.as_deref().is_some_and(|n| !n.is_empty()) => Some(
                syntax::parse_restart(r.name.as_deref().unwrap_or(""), r.maximum_retry_count)?,
            ),
            _ => None,
        };
        Ok((res, restart))
    }
}
