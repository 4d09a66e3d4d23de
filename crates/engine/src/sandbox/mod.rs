//! Pod sandboxes ([`PodRuntime`]): what a pod's containers share and what
//! outlives any one of them — the network namespace with its address and
//! published ports, the IPC namespace with its /dev/shm, the UTS namespace
//! with the pod's host name, /etc/hosts and resolv.conf, and the cgroup
//! parent (by QoS class) the containers' cgroups live under.
//!
//! Namespaces are held by files, not by a process: each is made by a
//! short-lived thread that unshares it and bind-mounts it on
//! `<root>/sandboxes/<id>/ns/<kind>` (as `ip netns add` does), so a
//! container that exits and starts again finds the same address. Containers
//! join a sandbox with `NetworkMode::Sandbox`, `IpcMode::Sandbox` and
//! `UtsMode::Sandbox` ([`PodRuntime::create_in_sandbox`] fills those in).
//!
//! A sandbox made with [`SandboxSpec::share_pid`] (Kubernetes'
//! `shareProcessNamespace`) also holds one PID namespace for all its
//! containers: a PID namespace dies with its init, so a process holds it,
//! a pause process (`berth` re-executed as `/pause`) that is its PID 1, reaps the orphans
//! and lives until the sandbox stops. Its pid and start time are in
//! `sandbox.json`, its namespace is bind-mounted on `ns/pid`, it runs in
//! the cgroup `<cgroup parent>/pause`. Containers join it with
//! `PidMode::Sandbox` (also filled in by `create_in_sandbox`), so any of
//! them can exit and start again without ending the namespace, and each
//! sees the others' processes. When the pause process is gone (a reboot,
//! or killed) the sandbox is not ready.
//!
//! On disk: `sandboxes/<id>/` with `sandbox.json` (schema 1), `ns/`,
//! `shm/` (a tmpfs), `etc/`, `lock`, and with a shared PID namespace
//! `pause.log` and `pause-root/` (the pause process's empty root); names
//! are symlinks `sandbox-names/<name>` → id.

mod pause;

pub use pause::{PAUSE_ARGV0, pause_main, pause_request};

use std::collections::BTreeMap;
use std::fs;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{
    ContainerSpec, Dns, HostEntry, IpcMode, NetworkMode, PidMode, PortBinding, Resources, UtsMode,
};
use crate::container::{SHM_DIR, process_start, write_atomic};
use crate::create::Created;
use crate::query::Container;
use crate::run::{Engine, Error, Result, new_id};

/// The schema of `sandbox.json`.
pub const SANDBOX_SCHEMA: u32 = 1;

/// A namespace a sandbox holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ns {
    /// Network.
    Net,
    /// IPC.
    Ipc,
    /// UTS (host name).
    Uts,
    /// Process ids (only with a shared process namespace; held by the
    /// pause process, the file is a convenience).
    Pid,
}

impl Ns {
    fn name(self) -> &'static str {
        match self {
            Ns::Net => "net",
            Ns::Ipc => "ipc",
            Ns::Uts => "uts",
            Ns::Pid => "pid",
        }
    }
}

/// Where a sandbox keeps namespace `ns`.
pub fn ns_path(dir: &Path, ns: Ns) -> PathBuf {
    dir.join("ns").join(ns.name())
}

/// Kubernetes' quality-of-service classes: where the pod's cgroup goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum QosClass {
    /// Requests equal limits for every container.
    Guaranteed,
    /// Some requests or limits.
    #[default]
    Burstable,
    /// No requests or limits at all.
    BestEffort,
}

impl QosClass {
    /// The cgroup (below berth's pods cgroup) of a pod of this class.
    fn cgroup_dir(self) -> &'static str {
        match self {
            QosClass::Guaranteed => "",
            QosClass::Burstable => "burstable/",
            QosClass::BestEffort => "besteffort/",
        }
    }
}

/// The network of a sandbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase")]
pub enum SandboxNetwork {
    /// A namespace of its own on a bridge network (by name or id), with
    /// DNS aliases and an optional fixed address.
    Bridge {
        /// The network.
        network: String,
        /// Extra DNS names on it.
        #[serde(default)]
        aliases: Vec<String>,
        /// A fixed address.
        #[serde(default)]
        ip: Option<Ipv4Addr>,
    },
    /// A namespace of its own with loopback only.
    None,
    /// The host's (`hostNetwork: true`).
    Host,
}

/// A sandbox to make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SandboxSpec {
    /// A unique name (the agent uses `<namespace>_<pod>_<uid>`).
    pub name: String,
    /// The pod's host name.
    pub hostname: String,
    /// The pod's fully qualified name, first on its own /etc/hosts line
    /// (`<ip>\t<fqdn>\t<hostname>`, the kubelet's line for a pod with a
    /// hostname and a subdomain).
    pub fqdn: Option<String>,
    /// Its network.
    pub network: SandboxNetwork,
    /// Published ports (`hostPort`).
    pub ports: Vec<PortBinding>,
    /// resolv.conf settings.
    pub dns: Dns,
    /// Extra /etc/hosts lines (`hostAliases`).
    pub extra_hosts: Vec<HostEntry>,
    /// QoS class (the cgroup parent's place).
    pub qos: QosClass,
    /// Limits of the whole pod (its cgroup parent).
    pub resources: Resources,
    /// /dev/shm size in bytes (`None`: 64 MiB).
    pub shm_size: Option<u64>,
    /// Namespaced sysctls of the pod (`net.*` in its network namespace,
    /// `kernel.shm*`, `kernel.msg*`, `kernel.sem`, `fs.mqueue.*` in its IPC
    /// namespace).
    pub sysctls: BTreeMap<String, String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// One process namespace for all its containers, held by a pause
    /// process (`shareProcessNamespace`); otherwise each container has
    /// its own.
    pub share_pid: bool,
}

/// The life of a sandbox.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SandboxState {
    /// Its namespaces and network are up.
    #[default]
    Ready,
    /// Stopped (or its namespaces are gone, after a reboot): containers
    /// cannot start in it.
    NotReady,
}

/// A sandbox, as `sandbox.json` keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sandbox {
    /// Schema version.
    pub schema: u32,
    /// 64 hex digits.
    pub id: String,
    /// Its unique name.
    pub name: String,
    /// RFC 3339.
    pub created: String,
    /// The pod's host name.
    pub hostname: String,
    /// The pod's fully qualified name (/etc/hosts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fqdn: Option<String>,
    /// Its network.
    pub network: SandboxNetwork,
    /// Published ports.
    pub ports: Vec<PortBinding>,
    /// resolv.conf settings.
    pub dns: Dns,
    /// Extra /etc/hosts lines.
    pub extra_hosts: Vec<HostEntry>,
    /// QoS class.
    pub qos: QosClass,
    /// The cgroup its containers' cgroups go under.
    pub cgroup_parent: String,
    /// Limits of the whole pod.
    pub resources: Resources,
    /// /dev/shm size in bytes.
    pub shm_size: Option<u64>,
    /// Namespaced sysctls.
    pub sysctls: BTreeMap<String, String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Ready or not.
    pub state: SandboxState,
    /// Its address while ready on a bridge network.
    pub ip: Option<Ipv4Addr>,
    /// The network's gateway.
    pub gateway: Option<Ipv4Addr>,
    /// Its containers share one process namespace.
    #[serde(default)]
    pub share_pid: bool,
    /// The host pid of the pause process holding that namespace (0: none).
    #[serde(default)]
    pub pause_pid: i32,
    /// The pause process's start time (`/proc/<pid>/stat` field 22).
    #[serde(default)]
    pub pause_start: u64,
}

impl Sandbox {
    /// Whether its pause process runs (false without a shared process
    /// namespace).
    pub fn pause_alive(&self) -> bool {
        self.share_pid && pause::alive(self.pause_pid, self.pause_start)
    }

    fn pause(&self) -> Option<pause::Pause> {
        (self.pause_pid > 0).then_some(pause::Pause {
            pid: self.pause_pid,
            start: self.pause_start,
        })
    }
}

/// What the node agent (and the builder) need from the engine to run pods.
pub trait PodRuntime {
    /// Makes a ready sandbox; returns its id.
    fn run_sandbox(&self, spec: &SandboxSpec) -> Result<String>;
    /// A sandbox by id, name or unique id prefix.
    fn sandbox(&self, key: &str) -> Result<Sandbox>;
    /// Every sandbox.
    fn sandboxes(&self) -> Vec<Sandbox>;
    /// Stops the sandbox's containers (`timeout` seconds each before
    /// SIGKILL) and gives its address back; it stays, not ready.
    fn stop_sandbox(&self, key: &str, timeout: Option<i64>) -> Result<()>;
    /// Removes a sandbox and its containers.
    fn remove_sandbox(&self, key: &str) -> Result<()>;
    /// Creates a container that shares the sandbox's namespaces and lives
    /// under its cgroup.
    fn create_in_sandbox(&self, key: &str, spec: &ContainerSpec) -> Result<Created>;
    /// The sandbox's containers.
    fn sandbox_containers(&self, key: &str) -> Result<Vec<Container>>;
}

fn sys(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |e| Error::Io(what, e)
}

/// Makes the IPC and UTS namespaces of a sandbox: a short-lived thread
/// unshares them, sets the host name in the new UTS namespace, and
/// bind-mounts both onto their files.
fn make_ipc_uts(dir: &Path, hostname: &str) -> Result<()> {
    for ns in [Ns::Ipc, Ns::Uts] {
        fs::File::create(ns_path(dir, ns)).map_err(sys("create a namespace file"))?;
    }
    std::thread::scope(|s| {
        s.spawn(|| -> Result<()> {
            berth_sys::ns::unshare_namespaces(libc::CLONE_NEWIPC | libc::CLONE_NEWUTS)
                .map_err(sys("unshare the IPC and UTS namespaces"))?;
            rustix::system::sethostname(hostname.as_bytes())
                .map_err(|e| Error::Io("set the pod's host name".into(), e.into()))?;
            for ns in [Ns::Ipc, Ns::Uts] {
                let src = format!("/proc/thread-self/ns/{}", ns.name());
                rustix::mount::mount_bind(src.as_str(), ns_path(dir, ns)).map_err(|e| {
                    Error::Io(format!("bind-mount the {} namespace", ns.name()), e.into())
                })?;
            }
            Ok(())
        })
        .join()
        .unwrap_or_else(|_| Err(Error::Internal("namespace thread panicked".into())))
    })
}

/// Writes namespaced sysctls from a thread that joined the namespaces.
fn apply_sysctls(dir: &Path, sysctls: &BTreeMap<String, String>, host_network: bool) -> Result<()> {
    use oci_spec::runtime::LinuxNamespaceType as T;
    for (k, v) in sysctls {
        if v.contains(['\n', '\0']) {
            return Err(Error::Invalid(format!("invalid value for sysctl {k}")));
        }
        let ns = match berth_runtime::spec::sysctl_namespace(k) {
            Some(T::Network) if host_network => {
                return Err(Error::Invalid(format!(
                    "sysctl {k:?} is not allowed in host network namespace"
                )));
            }
            Some(T::Network) => Ns::Net,
            Some(T::Ipc) => Ns::Ipc,
            _ => {
                return Err(Error::Invalid(format!(
                    "sysctl {k:?} is not whitelisted (only namespaced sysctls can be set)"
                )));
            }
        };
        let file = fs::File::open(ns_path(dir, ns)).map_err(sys("open a sandbox namespace"))?;
        let path = format!("/proc/sys/{}", k.replace('.', "/"));
        std::thread::scope(|s| {
            s.spawn(|| -> Result<()> {
                let kind = match ns {
                    Ns::Net => rustix::thread::LinkNameSpaceType::Network,
                    _ => rustix::thread::LinkNameSpaceType::InterProcessCommunication,
                };
                rustix::thread::move_into_link_name_space(file.as_fd(), Some(kind))
                    .map_err(|e| Error::Io("join a sandbox namespace".into(), e.into()))?;
                fs::write(&path, v).map_err(sys(format!("write {path}")))
            })
            .join()
            .unwrap_or_else(|_| Err(Error::Internal("sysctl thread panicked".into())))
        })?;
    }
    Ok(())
}

impl Engine {
    /// Where a sandbox lives.
    pub(crate) fn sandbox_dir(&self, id: &str) -> PathBuf {
        self.root.join("sandboxes").join(id)
    }

    fn sandbox_names(&self) -> PathBuf {
        self.root.join("sandbox-names")
    }

    fn save_sandbox(&self, s: &Sandbox) -> Result<()> {
        let json = serde_json::to_vec_pretty(s).map_err(|e| Error::Internal(e.to_string()))?;
        write_atomic(&self.sandbox_dir(&s.id).join("sandbox.json"), &json)
            .map_err(sys("write sandbox.json"))
    }

    fn load_sandbox(&self, id: &str) -> Result<Sandbox> {
        let p = self.sandbox_dir(id).join("sandbox.json");
        let b = fs::read(&p).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::NotFound(format!("no such pod sandbox: {id}"))
            } else {
                Error::Io(format!("read {}", p.display()), e)
            }
        })?;
        let s: Sandbox = serde_json::from_slice(&b)
            .map_err(|e| Error::Internal(format!("{}: {e}", p.display())))?;
        if s.schema > SANDBOX_SCHEMA {
            return Err(Error::Internal(format!(
                "{}: schema {} is newer than this berth ({SANDBOX_SCHEMA})",
                p.display(),
                s.schema
            )));
        }
        Ok(s)
    }

    fn sandbox_lock(&self, id: &str) -> Result<fs::File> {
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.sandbox_dir(id).join("lock"))
            .map_err(sys("open the sandbox lock"))?;
        rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| Error::Io("lock the sandbox".into(), e.into()))?;
        Ok(f)
    }

    fn sandbox_ids(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(self.root.join("sandboxes"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()))
            .collect();
        v.sort();
        v
    }

    fn resolve_sandbox(&self, key: &str) -> Result<String> {
        if key.len() == 64 && self.sandbox_dir(key).join("sandbox.json").is_file() {
            return Ok(key.to_owned());
        }
        if crate::container::valid_name(key).is_ok()
            && let Ok(id) = fs::read_link(self.sandbox_names().join(key))
        {
            let id = id.to_string_lossy().into_owned();
            if self.sandbox_dir(&id).join("sandbox.json").is_file() {
                return Ok(id);
            }
        }
        if !key.is_empty() && key.bytes().all(|b| b.is_ascii_hexdigit()) {
            let hits: Vec<String> = self
                .sandbox_ids()
                .into_iter()
                .filter(|i| i.starts_with(key))
                .collect();
            if let [one] = hits.as_slice() {
                return Ok(one.clone());
            }
        }
        Err(Error::NotFound(format!("no such pod sandbox: {key}")))
    }

    /// Brings a sandbox's network up: its endpoint (address, ports) and
    /// /etc/hosts and resolv.conf for it.
    fn sandbox_network_up(&self, s: &mut Sandbox) -> Result<()> {
        let dir = self.sandbox_dir(&s.id);
        let etc = dir.join("etc");
        let mut dns_at = None;
        if let SandboxNetwork::Bridge {
            network,
            aliases,
            ip,
        } = &s.network
        {
            let net = berth_net::Net::open(&self.root)?;
            let _ = net.detach_all(&s.id);
            let ports = crate::network::port_requests(&s.ports, &[], false)?;
            let ep = net.attach(
                network,
                &berth_net::AttachRequest {
                    container_id: s.id.clone(),
                    container_name: s.hostname.clone(),
                    aliases: aliases.clone(),
                    ip: *ip,
                    netns: ns_path(&dir, Ns::Net),
                    interface: "eth0".into(),
                    ports,
                    mac: None,
                    link_local: Vec::new(),
                },
            )?;
            if !net.network(network).map(|n| n.default).unwrap_or(true) {
                dns_at = Some(ep.gateway.to_string());
            }
            s.ip = Some(ep.ip);
            s.gateway = Some(ep.gateway);
        }
        let ip = s.ip.map(|i| i.to_string());
        let gw = s.gateway.map(|g| g.to_string());
        let own = match &s.fqdn {
            Some(f) => format!("{f}\t{}", s.hostname),
            None => s.hostname.clone(),
        };
        let hosts =
            crate::oci::etc::hosts_file(&own, ip.as_deref(), &s.extra_hosts, gw.as_deref(), &[]);
        fs::write(etc.join("hosts"), hosts).map_err(sys("write the pod's /etc/hosts"))?;
        let servers = match dns_at {
            Some(g) if s.dns.servers.is_empty() => {
                crate::network::ensure_dns_server(&self.root);
                vec![g]
            }
            _ => crate::oci::etc::servers(&s.dns),
        };
        fs::write(
            etc.join("resolv.conf"),
            crate::oci::etc::resolv_conf(&servers, &s.dns),
        )
        .map_err(sys("write the pod's resolv.conf"))?;
        Ok(())
    }

    /// Gives a sandbox's address and ports back.
    fn sandbox_network_down(&self, s: &mut Sandbox) {
        if matches!(s.network, SandboxNetwork::Bridge { .. })
            && let Ok(net) = berth_net::Net::open(&self.root)
            && let Err(e) = net.detach_all(&s.id)
        {
            tracing::warn!("detach pod sandbox {}: {e}", s.name);
        }
        s.ip = None;
        s.gateway = None;
    }

    /// The statistics of the cgroup at `path` (absolute: a pod sandbox's
    /// cgroup parent, or `/` for the whole host); missing files read as zero.
    pub fn cgroup_stats(&self, path: &str) -> Result<berth_runtime::cgroups::stats::Stats> {
        let layout =
            berth_runtime::cgroups::Layout::detect().map_err(sys("read the cgroup layout"))?;
        let cg = berth_runtime::cgroups::Cgroup::plan(&layout, Some(path), "stats", false)
            .map_err(|e| Error::Runtime(e.into()))?;
        Ok(cg.stats())
    }

    /// The sandbox's cgroup parent as the runtime plans it.
    fn sandbox_cgroup(&self, s: &Sandbox) -> Result<berth_runtime::cgroups::Cgroup> {
        let layout =
            berth_runtime::cgroups::Layout::detect().map_err(sys("read the cgroup layout"))?;
        berth_runtime::cgroups::Cgroup::plan(&layout, Some(&s.cgroup_parent), &s.id, false)
            .map_err(|e| Error::Runtime(e.into()))
    }

    /// Takes down everything a sandbox holds on the host (idempotent).
    fn sandbox_teardown(&self, s: &mut Sandbox) {
        let dir = self.sandbox_dir(&s.id);
        self.stop_pause(s);
        self.sandbox_network_down(s);
        if s.network != SandboxNetwork::Host {
            let _ = berth_net::netns::remove(&ns_path(&dir, Ns::Net));
        }
        for ns in [Ns::Ipc, Ns::Uts] {
            let p = ns_path(&dir, ns);
            let _ = rustix::mount::unmount(&p, rustix::mount::UnmountFlags::DETACH);
            let _ = fs::remove_file(&p);
        }
        crate::container::unmount_shm(&dir);
        if let Ok(cg) = self.sandbox_cgroup(s)
            && let Err(e) = cg.destroy()
        {
            tracing::warn!("remove the cgroup of pod sandbox {}: {e}", s.name);
        }
    }

    /// Kills the sandbox's pause process (and so what is left in its
    /// process namespace) and unmounts the namespace's file.
    fn stop_pause(&self, s: &mut Sandbox) {
        if let Some(p) = s.pause() {
            pause::kill(p);
        }
        pause::unmount_pid_ns(&self.sandbox_dir(&s.id));
        s.pause_pid = 0;
        s.pause_start = 0;
    }

    /// Starts the pause process holding the sandbox's process namespace,
    /// in the cgroup `<cgroup parent>/pause`.
    fn start_pause(&self, s: &mut Sandbox) -> Result<()> {
        let dir = self.sandbox_dir(&s.id);
        let p = pause::spawn(&self.root, &dir, &s.id)?;
        s.pause_pid = p.pid;
        s.pause_start = p.start;
        let layout =
            berth_runtime::cgroups::Layout::detect().map_err(sys("read the cgroup layout"))?;
        let path = format!("{}/pause", s.cgroup_parent);
        let cg = berth_runtime::cgroups::Cgroup::plan(&layout, Some(&path), &s.id, false)
            .map_err(|e| Error::Runtime(e.into()))?;
        cg.create()
            .and_then(|()| cg.add_pid(p.pid))
            .map_err(|e| Error::Runtime(e.into()))
    }

    /// Removes a sandbox whose creation was killed half-way (swept at
    /// the next open of the root).
    pub(crate) fn sweep_sandbox(&self, id: &str) {
        let dir = self.sandbox_dir(id);
        match self.load_sandbox(id) {
            Ok(mut s) => {
                self.sandbox_teardown(&mut s);
                let link = self.sandbox_names().join(&s.name);
                if fs::read_link(&link).is_ok_and(|t| t.as_os_str() == id) {
                    let _ = fs::remove_file(&link);
                }
            }
            Err(_) => {
                // never saved: what it may have made, by the fixed paths
                if let Ok(net) = berth_net::Net::open(&self.root) {
                    let _ = net.detach_all(id);
                }
                let _ = berth_net::netns::remove(&ns_path(&dir, Ns::Net));
                for ns in [Ns::Ipc, Ns::Uts, Ns::Pid] {
                    let _ = rustix::mount::unmount(
                        ns_path(&dir, ns),
                        rustix::mount::UnmountFlags::DETACH,
                    );
                }
                crate::container::unmount_shm(&dir);
                for e in fs::read_dir(self.sandbox_names())
                    .into_iter()
                    .flatten()
                    .flatten()
                {
                    if fs::read_link(e.path()).is_ok_and(|t| t.as_os_str() == id) {
                        let _ = fs::remove_file(e.path());
                    }
                }
            }
        }
        let _ = berth_image::unpack::remove_tree(&dir);
    }

    fn make_sandbox(&self, s: &mut Sandbox) -> Result<()> {
        let dir = self.sandbox_dir(&s.id);
        for d in ["ns", "etc"] {
            fs::create_dir_all(dir.join(d)).map_err(sys(format!("create the sandbox's {d}")))?;
        }
        fs::write(dir.join("etc/hostname"), format!("{}\n", s.hostname))
            .map_err(sys("write the pod's hostname"))?;
        if s.network != SandboxNetwork::Host {
            berth_net::netns::create(&ns_path(&dir, Ns::Net))?;
        }
        make_ipc_uts(&dir, &s.hostname)?;
        crate::container::mount_shm(&dir, s.shm_size.unwrap_or(0))
            .map_err(sys("mount the pod's /dev/shm"))?;
        apply_sysctls(&dir, &s.sysctls, s.network == SandboxNetwork::Host)?;
        let cg = self.sandbox_cgroup(s)?;
        cg.create().map_err(|e| Error::Runtime(e.into()))?;
        let limits = crate::oci::resources(&s.resources).map_err(Error::Invalid)?;
        cg.apply(Some(&limits), &[])
            .map_err(|e| Error::Runtime(e.into()))?;
        if s.share_pid {
            self.start_pause(s)?;
        }
        self.sandbox_network_up(s)?;
        s.state = SandboxState::Ready;
        Ok(())
    }
}

impl PodRuntime for Engine {
    fn run_sandbox(&self, spec: &SandboxSpec) -> Result<String> {
        crate::container::valid_name(&spec.name).map_err(|_| {
            Error::Invalid(format!(
                "invalid pod name {:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-]+ are allowed",
                spec.name
            ))
        })?;
        if spec.hostname.is_empty() || spec.hostname.len() > 64 {
            return Err(Error::Invalid(format!(
                "invalid pod host name {:?}",
                spec.hostname
            )));
        }
        spec.resources.validate().map_err(Error::Invalid)?;
        if matches!(spec.network, SandboxNetwork::None | SandboxNetwork::Host)
            && !spec.ports.is_empty()
        {
            return Err(Error::Invalid(
                "published ports need a bridge network".into(),
            ));
        }
        let id = new_id()?;
        let dir = self.sandbox_dir(&id);
        fs::create_dir_all(&dir).map_err(sys("create the sandbox directory"))?;
        // a mark naming the creating process, for the sweep of killed creates
        let me = std::process::id() as i32;
        fs::write(
            dir.join(crate::container::CREATING),
            format!("{me} {}\n", process_start(me).unwrap_or(0)),
        )
        .map_err(sys("mark the sandbox as being created"))?;
        fs::create_dir_all(self.sandbox_names()).map_err(sys("create sandbox-names"))?;
        let link = self.sandbox_names().join(&spec.name);
        if let Err(e) = std::os::unix::fs::symlink(&id, &link) {
            let _ = fs::remove_dir_all(&dir);
            return Err(if e.kind() == std::io::ErrorKind::AlreadyExists {
                Error::Conflict(format!(
                    "the pod sandbox name {:?} is already in use",
                    spec.name
                ))
            } else {
                Error::Io("claim the sandbox name".into(), e)
            });
        }
        let mut s = Sandbox {
            schema: SANDBOX_SCHEMA,
            id: id.clone(),
            name: spec.name.clone(),
            created: berth_runtime::state::now_rfc3339(),
            hostname: spec.hostname.clone(),
            fqdn: spec.fqdn.clone(),
            network: spec.network.clone(),
            ports: spec.ports.clone(),
            dns: spec.dns.clone(),
            extra_hosts: spec.extra_hosts.clone(),
            qos: spec.qos,
            cgroup_parent: format!("/berth/pods/{}{id}", spec.qos.cgroup_dir()),
            resources: spec.resources.clone(),
            shm_size: spec.shm_size,
            sysctls: spec.sysctls.clone(),
            labels: spec.labels.clone(),
            state: SandboxState::NotReady,
            ip: None,
            gateway: None,
            share_pid: spec.share_pid,
            pause_pid: 0,
            pause_start: 0,
        };
        let made = self
            .save_sandbox(&s)
            .and_then(|()| self.make_sandbox(&mut s))
            .and_then(|()| self.save_sandbox(&s));
        if let Err(e) = made {
            self.sandbox_teardown(&mut s);
            let _ = fs::remove_file(&link);
            let _ = berth_image::unpack::remove_tree(&dir);
            return Err(e);
        }
        let _ = fs::remove_file(dir.join(crate::container::CREATING));
        crate::events::emit(
            &self.root,
            "sandbox",
            "create",
            &id,
            BTreeMap::from([("name".to_owned(), spec.name.clone())]),
        );
        Ok(id)
    }

    fn sandbox(&self, key: &str) -> Result<Sandbox> {
        let id = self.resolve_sandbox(key)?;
        let mut s = self.load_sandbox(&id)?;
        // after a reboot the namespace files are plain files again, and
        // the pause process holding a shared process namespace is gone
        if s.state == SandboxState::Ready
            && (!berth_net::netns::is_mounted(&ns_path(&self.sandbox_dir(&id), Ns::Uts))
                || (s.share_pid && !s.pause_alive()))
        {
            s.state = SandboxState::NotReady;
        }
        Ok(s)
    }

    fn sandboxes(&self) -> Vec<Sandbox> {
        self.sandbox_ids()
            .iter()
            .filter_map(|id| self.sandbox(id).ok())
            .collect()
    }

    fn stop_sandbox(&self, key: &str, timeout: Option<i64>) -> Result<()> {
        let mut s = self.sandbox(key)?;
        for c in self.sandbox_containers(&s.id)? {
            match self.stop(&c.record.id, timeout) {
                Ok(()) | Err(Error::NotModified(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let _l = self.sandbox_lock(&s.id)?;
        self.stop_pause(&mut s);
        self.sandbox_network_down(&mut s);
        s.state = SandboxState::NotReady;
        self.save_sandbox(&s)
    }

    fn remove_sandbox(&self, key: &str) -> Result<()> {
        let mut s = self.sandbox(key)?;
        for c in self.sandbox_containers(&s.id)? {
            match self.remove(&c.record.id, true, true) {
                Ok(()) | Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let dir = self.sandbox_dir(&s.id);
        let l = self.sandbox_lock(&s.id)?;
        self.sandbox_teardown(&mut s);
        let link = self.sandbox_names().join(&s.name);
        if fs::read_link(&link).is_ok_and(|t| t.as_os_str() == s.id.as_str()) {
            let _ = fs::remove_file(&link);
        }
        drop(l);
        berth_image::unpack::remove_tree(&dir).map_err(sys("remove the sandbox directory"))?;
        crate::events::emit(
            &self.root,
            "sandbox",
            "destroy",
            &s.id,
            BTreeMap::from([("name".to_owned(), s.name.clone())]),
        );
        Ok(())
    }

    fn create_in_sandbox(&self, key: &str, spec: &ContainerSpec) -> Result<Created> {
        let s = self.sandbox(key)?;
        let mut c = spec.clone();
        c.network.mode = NetworkMode::Sandbox(s.id.clone());
        c.namespaces.ipc = IpcMode::Sandbox(s.id.clone());
        c.namespaces.uts = UtsMode::Sandbox(s.id.clone());
        if s.share_pid {
            c.namespaces.pid = PidMode::Sandbox(s.id.clone());
        }
        c.cgroup_parent = Some(s.cgroup_parent.clone());
        c.hostname = None;
        self.create(&c)
    }

    fn sandbox_containers(&self, key: &str) -> Result<Vec<Container>> {
        let id = self.resolve_sandbox(key)?;
        Ok(self
            .list()
            .into_iter()
            .filter(|c| c.record.sandbox.as_deref() == Some(id.as_str()))
            .collect())
    }
}

/// The files a sandbox gives its containers (the /etc ones).
pub(crate) fn etc_dir(dir: &Path) -> PathBuf {
    dir.join("etc")
}

/// The host-side /dev/shm of a sandbox.
pub(crate) fn shm_dir(dir: &Path) -> PathBuf {
    dir.join(SHM_DIR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sandbox_json_without_the_shared_pid_fields_still_loads() {
        let old = serde_json::json!({
            "schema": 1, "id": "ab", "name": "n", "created": "2026-01-01T00:00:00Z",
            "hostname": "h", "network": {"mode": "none"}, "ports": [], "dns": {},
            "extra_hosts": [], "qos": "burstable", "cgroup_parent": "/berth/pods/burstable/ab",
            "resources": {}, "shm_size": null, "sysctls": {}, "labels": {},
            "state": "ready", "ip": null, "gateway": null
        });
        let s: Sandbox = serde_json::from_value(old).expect("old sandbox.json");
        assert!(!s.share_pid && s.pause_pid == 0 && s.pause_start == 0);
        assert!(!s.pause_alive());
        let again: Sandbox = serde_json::from_value(serde_json::to_value(&s).unwrap()).unwrap();
        assert_eq!(again, s);
    }
}
