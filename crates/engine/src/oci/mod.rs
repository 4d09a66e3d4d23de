//! A container's OCI runtime spec (`config.json`), built with `oci-spec`'s
//! types from its [`Record`](crate::Record) and Docker's defaults: the
//! capability set, seccomp profile, masked and read-only paths, the
//! standard mounts, /dev/shm, device rules, namespaces shared with others.

pub mod devices;
pub mod etc;
mod seccomp;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Box as ConsoleBox, Capabilities, Capability, Linux, LinuxBlockIo, LinuxCapabilities, LinuxCpu,
    LinuxMemory, LinuxNamespace, LinuxNamespaceType, LinuxPids, LinuxResources, LinuxSeccomp,
    Mount, PosixRlimit, PosixRlimitType, Process, Root, Spec, User as OciUser,
};

pub use seccomp::docker_profile;

use crate::config::{CgroupnsMode, IpcMode, NetworkMode, PidMode, Resources, Seccomp, UtsMode};
use crate::container::Record;
use crate::user::User;

/// Docker's default capabilities.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Docker's masked paths.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Docker's read-only paths.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Where a container's files are on the host.
#[derive(Clone, Debug, Default)]
pub struct Paths {
    /// The (empty) mount point the image's overlay goes on.
    pub rootfs: PathBuf,
    /// hostname, hosts, resolv.conf.
    pub etc: PathBuf,
    /// The network namespace file to join (bridge networks, sandboxes).
    pub netns: Option<PathBuf>,
    /// The host-side /dev/shm (`--ipc shareable` and `container:`).
    pub shm: Option<PathBuf>,
    /// berth-init on the host (`--init`).
    pub init: Option<PathBuf>,
    /// The IPC namespace file to join (a sandbox's).
    pub ipc_ns: Option<PathBuf>,
    /// The UTS namespace file to join (a sandbox's).
    pub uts_ns: Option<PathBuf>,
    /// The pid namespace file to join (a sandbox's shared one).
    pub pid_ns: Option<PathBuf>,
    /// The network namespace it shares is the host's (`container:X` with
    /// X on the host's network).
    pub host_network: bool,
}

/// The capability set: docker's default, plus `add`, minus `drop` (names
/// with or without `CAP_`, `ALL`).
pub fn capabilities(add: &[String], drop: &[String]) -> Result<Vec<String>, String> {
    let norm = |c: &str| -> Result<String, String> {
        let u = c.to_ascii_uppercase();
        let u = if u == "ALL" || u.starts_with("CAP_") {
            u
        } else {
            format!("CAP_{u}")
        };
        if u != "ALL" && berth_runtime::caps::number_of_name(&u).is_none() {
            return Err(format!("unknown capability: \"{c}\""));
        }
        Ok(u)
    };
    let add: Vec<String> = add.iter().map(|c| norm(c)).collect::<Result<_, _>>()?;
    let drop: Vec<String> = drop.iter().map(|c| norm(c)).collect::<Result<_, _>>()?;
    let mut caps: Vec<String> = if add.iter().any(|c| c == "ALL") {
        berth_runtime::caps::all_names()
    } else {
        DEFAULT_CAPS.iter().map(|s| s.to_string()).collect()
    };
    if drop.iter().any(|c| c == "ALL") {
        caps.clear();
    }
    for c in add.into_iter().filter(|c| c != "ALL") {
        if !caps.contains(&c) {
            caps.push(c);
        }
    }
    caps.retain(|c| !drop.contains(c));
    Ok(caps)
}

/// Reads a bundle's `config.json`.
pub fn read(path: &Path) -> crate::run::Result<Spec> {
    let b = std::fs::read(path)
        .map_err(|e| crate::run::Error::Io(format!("read {}", path.display()), e))?;
    berth_runtime::spec::parse_spec(&b)
        .map_err(|e| crate::run::Error::Internal(format!("{}: {e}", path.display())))
}

/// Writes a bundle's `config.json` atomically.
pub fn write(path: &Path, spec: &Spec) -> crate::run::Result<()> {
    let json = serde_json::to_vec_pretty(spec)
        .map_err(|e| crate::run::Error::Internal(format!("spec: {e}")))?;
    crate::container::write_atomic(path, &json)
        .map_err(|e| crate::run::Error::Io(format!("write {}", path.display()), e))
}

/// Names through serde, where `oci-spec` has no parser of its own.
fn named<T: serde::de::DeserializeOwned>(name: &str, what: &str) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::String(name.to_owned()))
        .map_err(|_| format!("unknown {what}: {name}"))
}

pub(crate) fn cap_set(names: &[String]) -> Result<Capabilities, String> {
    names
        .iter()
        .map(|n| named::<Capability>(n, "capability"))
        .collect()
}

/// The cgroup limits (the device rules are added by [`build`]).
pub fn resources(r: &Resources) -> Result<LinuxResources, String> {
    r.validate()?;
    let mut out = LinuxResources::default();
    let mut mem = LinuxMemory::default();
    let mut any_mem = false;
    if r.memory > 0 {
        // docker: swap defaults to the same amount again
        let swap = match r.memory_swap {
            0 => r.memory.saturating_mul(2),
            s => s,
        };
        mem.set_limit(Some(r.memory)).set_swap(Some(swap));
        any_mem = true;
    }
    if r.memory_reservation > 0 {
        mem.set_reservation(Some(r.memory_reservation));
        any_mem = true;
    }
    if let Some(sw) = r.memory_swappiness.filter(|s| *s != -1) {
        mem.set_swappiness(Some(sw as u64));
        any_mem = true;
    }
    if r.oom_kill_disable {
        mem.set_disable_oom_killer(Some(true));
        any_mem = true;
    }
    if any_mem {
        out.set_memory(Some(mem));
    }
    let mut cpu = LinuxCpu::default();
    let mut any_cpu = false;
    if r.cpu_shares > 0 {
        cpu.set_shares(Some(r.cpu_shares as u64));
        any_cpu = true;
    }
    if let Some((quota, period)) = r.nano_cpus_quota() {
        cpu.set_quota(Some(quota)).set_period(Some(period));
        any_cpu = true;
    }
    if r.cpu_period > 0 {
        cpu.set_period(Some(r.cpu_period as u64));
        any_cpu = true;
    }
    if r.cpu_quota > 0 {
        cpu.set_quota(Some(r.cpu_quota));
        any_cpu = true;
    }
    if !r.cpuset_cpus.is_empty() {
        cpu.set_cpus(Some(r.cpuset_cpus.clone()));
        any_cpu = true;
    }
    if !r.cpuset_mems.is_empty() {
        cpu.set_mems(Some(r.cpuset_mems.clone()));
        any_cpu = true;
    }
    if any_cpu {
        out.set_cpu(Some(cpu));
    }
    if let Some(p) = r.pids_limit.filter(|p| *p > 0) {
        let mut pids = LinuxPids::default();
        pids.set_limit(p);
        out.set_pids(Some(pids));
    }
    if r.blkio_weight > 0 {
        let mut b = LinuxBlockIo::default();
        b.set_weight(Some(r.blkio_weight));
        out.set_block_io(Some(b));
    }
    Ok(out)
}

fn mount(dest: &str, typ: &str, source: &str, opts: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(dest))
        .set_typ(Some(typ.to_owned()))
        .set_source(Some(PathBuf::from(source)))
        .set_options(Some(opts.iter().map(|s| s.to_string()).collect()));
    m
}

fn namespace(typ: LinuxNamespaceType, path: Option<&Path>) -> LinuxNamespace {
    let mut n = LinuxNamespace::default();
    n.set_typ(typ).set_path(path.map(Path::to_path_buf));
    n
}

/// The spec of a container from its record, its resolved user and where
/// its files are. `container:` and sandbox namespaces get their paths at
/// each start.
pub fn build(r: &Record, user: &User, paths: &Paths) -> Result<Spec, String> {
    let mut args = vec![r.path.clone()];
    args.extend(r.args.iter().cloned());
    if r.path.is_empty() {
        return Err("no command specified".into());
    }
    if !r.working_dir.starts_with('/') {
        return Err(format!(
            "the working directory '{}' is invalid, it needs to be an absolute path",
            r.working_dir
        ));
    }
    let sec = &r.security;
    let caps = if sec.privileged {
        capabilities(&["ALL".to_owned()], &sec.cap_drop)?
    } else {
        capabilities(&sec.cap_add, &sec.cap_drop)?
    };
    let cap_set = cap_set(&caps)?;
    let mut lc = LinuxCapabilities::default();
    lc.set_bounding(Some(cap_set.clone()))
        .set_effective(Some(cap_set.clone()))
        .set_permitted(Some(cap_set))
        .set_inheritable(None)
        .set_ambient(None);

    // the process
    let mut ou = OciUser::default();
    ou.set_uid(user.uid)
        .set_gid(user.gid)
        .set_additional_gids(Some(user.additional_gids.clone()))
        .set_umask(None)
        .set_username(None);
    let mut p = Process::default();
    p.set_terminal(Some(r.tty))
        .set_user(ou)
        .set_args(Some(if r.init {
            let mut a = vec!["/sbin/docker-init".to_owned(), "--".to_owned()];
            a.extend(args);
            a
        } else {
            args
        }))
        .set_env(Some(r.env.clone()))
        .set_cwd(PathBuf::from(&r.working_dir))
        .set_capabilities(Some(lc))
        .set_no_new_privileges(Some(sec.no_new_privileges))
        .set_oom_score_adj((r.oom_score_adj != 0).then_some(r.oom_score_adj))
        .set_apparmor_profile(None)
        .set_selinux_label(None)
        .set_command_line(None)
        .set_rlimits(None)
        .set_console_size(None);
    if !(-1000..=1000).contains(&r.oom_score_adj) {
        return Err(format!(
            "Invalid value {}, range for oom score adj is [-1000, 1000]",
            r.oom_score_adj
        ));
    }
    if let Some(cs) = r
        .console_size
        .filter(|c| r.tty && c.height > 0 && c.width > 0)
    {
        let b: ConsoleBox =
            serde_json::from_value(serde_json::json!({"height": cs.height, "width": cs.width}))
                .map_err(|e| e.to_string())?;
        p.set_console_size(Some(b));
    }
    if !r.ulimits.is_empty() {
        let mut v = Vec::new();
        for u in &r.ulimits {
            u.validate()?;
            let typ: PosixRlimitType = named(
                &format!("RLIMIT_{}", u.name.to_ascii_uppercase()),
                "ulimit type",
            )?;
            let l: PosixRlimit = serde_json::from_value(
                serde_json::json!({"type": typ, "soft": u.soft, "hard": u.hard}),
            )
            .map_err(|e| e.to_string())?;
            v.push(l);
        }
        p.set_rlimits(Some(v));
    }

    // mounts: the standard ones, /dev/shm, the /etc files, berth-init,
    // then the user's (which replace a standard one at the same place)
    let etc = |name: &str| paths.etc.join(name).display().to_string();
    let sys_opts: &[&str] = if sec.privileged {
        &["nosuid", "noexec", "nodev", "rw"]
    } else {
        &["nosuid", "noexec", "nodev", "ro"]
    };
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount("/sys", "sysfs", "sysfs", sys_opts),
        mount("/sys/fs/cgroup", "cgroup", "cgroup", sys_opts),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
    ];
    match &r.namespaces.ipc {
        IpcMode::None => {}
        IpcMode::Host => mounts.push(mount(
            "/dev/shm",
            "bind",
            "/dev/shm",
            &["rbind", "rprivate"],
        )),
        // the shared /dev/shm lives on the host (a tmpfs the monitor
        // mounts at each start), so that other containers can bind it
        IpcMode::Shareable | IpcMode::Container(_) | IpcMode::Sandbox(_) => {
            let src = paths
                .shm
                .as_ref()
                .ok_or("internal: no host /dev/shm for a shared IPC namespace")?;
            mounts.push(mount(
                "/dev/shm",
                "bind",
                &src.display().to_string(),
                &["rbind", "rprivate"],
            ));
        }
        IpcMode::Private => {
            let size = format!("size={}", r.shm_size.unwrap_or(64 << 20));
            mounts.push(mount(
                "/dev/shm",
                "tmpfs",
                "shm",
                &["nosuid", "noexec", "nodev", "mode=1777", &size],
            ));
        }
    }
    let bind_opts = ["rbind", "rprivate"];
    mounts.push(mount("/etc/hostname", "bind", &etc("hostname"), &bind_opts));
    mounts.push(mount("/etc/hosts", "bind", &etc("hosts"), &bind_opts));
    mounts.push(mount(
        "/etc/resolv.conf",
        "bind",
        &etc("resolv.conf"),
        &bind_opts,
    ));
    if r.init {
        let init = paths.init.as_ref().ok_or("internal: no berth-init")?;
        mounts.push(mount(
            "/sbin/docker-init",
            "bind",
            &init.display().to_string(),
            &["rbind", "ro", "rprivate"],
        ));
    }
    let user_mounts: Vec<Mount> = r.mounts.iter().map(crate::volumes::spec_mount).collect();
    mounts.retain(|d| {
        !user_mounts
            .iter()
            .any(|m| m.destination() == d.destination())
    });
    mounts.extend(user_mounts);

    // namespaces; paths of shared ones are filled in at each start
    let mut namespaces = vec![namespace(LinuxNamespaceType::Mount, None)];
    if r.namespaces.uts != UtsMode::Host {
        namespaces.push(namespace(LinuxNamespaceType::Uts, paths.uts_ns.as_deref()));
    }
    if r.namespaces.pid != PidMode::Host {
        namespaces.push(namespace(LinuxNamespaceType::Pid, paths.pid_ns.as_deref()));
    }
    if r.namespaces.ipc != IpcMode::Host {
        namespaces.push(namespace(LinuxNamespaceType::Ipc, paths.ipc_ns.as_deref()));
    }
    if r.namespaces.cgroupns != CgroupnsMode::Host {
        namespaces.push(namespace(LinuxNamespaceType::Cgroup, None));
    }
    let host_network = r.network == NetworkMode::Host || paths.host_network;
    if !host_network {
        namespaces.push(namespace(
            LinuxNamespaceType::Network,
            paths.netns.as_deref(),
        ));
    }

    // devices and their rules
    let mut rules = vec![devices::deny_all()];
    let mut nodes = Vec::new();
    if sec.privileged {
        rules = vec![devices::allow(None, None, None, Default::default())];
        nodes = devices::host_devices();
    } else if !r.devices.is_empty() {
        let (n, d) = devices::devices(&r.devices)?;
        nodes = n;
        rules.extend(d);
    }
    for rule in &r.device_cgroup_rules {
        rules.push(devices::cgroup_rule(rule)?);
    }
    let mut res = resources(&r.resources)?;
    res.set_devices(Some(rules));

    let seccomp: Option<LinuxSeccomp> = match (&sec.seccomp, sec.privileged) {
        (_, true) | (Seccomp::Unconfined, _) => None,
        (Seccomp::Default, _) => Some(berth_runtime::seccomp::default_profile(&caps)),
        (Seccomp::Profile(p), _) => Some(docker_profile(p, &caps)?),
    };
    let (masked, readonly) = if sec.privileged {
        (Vec::new(), Vec::new())
    } else {
        (
            sec.masked_paths
                .clone()
                .unwrap_or_else(|| MASKED_PATHS.iter().map(|s| s.to_string()).collect()),
            sec.readonly_paths
                .clone()
                .unwrap_or_else(|| READONLY_PATHS.iter().map(|s| s.to_string()).collect()),
        )
    };
    let mut sysctl = HashMap::new();
    for (k, v) in &r.sysctls {
        if k.starts_with("net.") && host_network {
            return Err(format!(
                "sysctl {k:?} is not allowed in host network namespace"
            ));
        }
        if berth_runtime::spec::sysctl_namespace(k).is_none() {
            return Err(format!(
                "sysctl {k:?} is not whitelisted (only namespaced sysctls can be set)"
            ));
        }
        sysctl.insert(k.clone(), v.clone());
    }
    let mut linux = Linux::default();
    linux
        .set_resources(Some(res))
        .set_cgroups_path(Some(PathBuf::from(r.cgroups_path())))
        .set_namespaces(Some(namespaces))
        .set_seccomp(seccomp)
        .set_masked_paths(Some(masked))
        .set_readonly_paths(Some(readonly))
        .set_devices((!nodes.is_empty()).then_some(nodes))
        .set_sysctl((!sysctl.is_empty()).then_some(sysctl))
        .set_uid_mappings(None)
        .set_gid_mappings(None)
        .set_rootfs_propagation(None)
        .set_mount_label(None)
        .set_intel_rdt(None)
        .set_personality(None);

    let mut root = Root::default();
    root.set_path(paths.rootfs.clone())
        .set_readonly(Some(sec.read_only_rootfs));
    let mut spec = Spec::default();
    spec.set_version("1.2.0".into())
        .set_process(Some(p))
        .set_root(Some(root))
        .set_hostname((r.namespaces.uts == UtsMode::Private).then(|| r.hostname.clone()))
        .set_domainname((!r.domainname.is_empty()).then(|| r.domainname.clone()))
        .set_mounts(Some(mounts))
        .set_linux(Some(linux))
        .set_hooks(None)
        .set_annotations(None);
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DeviceRule, Ulimit};

    fn rec() -> Record {
        Record {
            id: "a".repeat(64),
            path: "sh".into(),
            args: vec!["-c".into(), "true".into()],
            working_dir: "/w".into(),
            hostname: "h".into(),
            env: vec!["PATH=/bin".into()],
            ..Default::default()
        }
    }

    fn paths() -> Paths {
        Paths {
            rootfs: "/r".into(),
            etc: "/e".into(),
            netns: Some("/n".into()),
            ..Default::default()
        }
    }

    #[test]
    fn docker_defaults_in_typed_spec() {
        let s = build(&rec(), &User::default(), &paths()).unwrap();
        let p = s.process().as_ref().unwrap();
        assert_eq!(p.cwd(), Path::new("/w"));
        assert_eq!(p.args().as_ref().unwrap(), &["sh", "-c", "true"]);
        assert!(p.rlimits().is_none(), "no rlimits unless asked");
        let caps = p.capabilities().as_ref().unwrap();
        assert_eq!(caps.bounding().as_ref().unwrap().len(), DEFAULT_CAPS.len());
        assert!(caps.inheritable().is_none() && caps.ambient().is_none());
        let l = s.linux().as_ref().unwrap();
        assert_eq!(
            l.cgroups_path().as_deref(),
            Some(Path::new(&format!("/berth/{}", "a".repeat(64))))
        );
        assert!(l.seccomp().is_some());
        assert_eq!(l.masked_paths().as_ref().unwrap().len(), MASKED_PATHS.len());
        let net = l
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .find(|n| n.typ() == LinuxNamespaceType::Network)
            .unwrap();
        assert_eq!(net.path().as_deref(), Some(Path::new("/n")));
        let devs = l.resources().as_ref().unwrap().devices().as_ref().unwrap();
        assert!(!devs[0].allow(), "everything denied first");
        let shm = s
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.destination() == Path::new("/dev/shm"))
            .unwrap();
        assert!(
            shm.options()
                .as_ref()
                .unwrap()
                .contains(&"size=67108864".to_owned())
        );
        // it round-trips through the runtime's own parser
        let json = serde_json::to_vec(&s).unwrap();
        berth_runtime::spec::parse_spec(&json).unwrap();
    }

    #[test]
    fn options_reach_the_spec() {
        let mut r = rec();
        r.ulimits = vec![Ulimit {
            name: "nofile".into(),
            soft: 10,
            hard: 20,
        }];
        r.device_cgroup_rules = vec![DeviceRule {
            kind: 'c',
            major: Some(1),
            minor: None,
            access: "rw".parse().unwrap(),
        }];
        r.init = true;
        r.security.cap_drop = vec!["ALL".into()];
        r.security.cap_add = vec!["net_admin".into()];
        r.resources.memory = 64 << 20;
        r.resources.nano_cpus = 500_000_000;
        r.oom_score_adj = 100;
        let mut p = paths();
        p.init = Some("/i".into());
        let s = build(&r, &User::default(), &p).unwrap();
        let pr = s.process().as_ref().unwrap();
        assert_eq!(pr.args().as_ref().unwrap()[0], "/sbin/docker-init");
        assert_eq!(pr.rlimits().as_ref().unwrap()[0].soft(), 10);
        assert_eq!(pr.oom_score_adj(), Some(100));
        assert_eq!(
            pr.capabilities()
                .as_ref()
                .unwrap()
                .bounding()
                .as_ref()
                .unwrap()
                .iter()
                .collect::<Vec<_>>(),
            [&Capability::NetAdmin]
        );
        let res = s.linux().as_ref().unwrap().resources().as_ref().unwrap();
        assert_eq!(res.memory().unwrap().limit(), Some(64 << 20));
        assert_eq!(res.cpu().as_ref().unwrap().quota(), Some(50_000));
        assert_eq!(res.devices().as_ref().unwrap()[1].to_string(), "c 1:* rw");
        let mut bad = rec();
        bad.ulimits = vec![Ulimit {
            name: "bogus".into(),
            soft: 1,
            hard: 1,
        }];
        assert!(build(&bad, &User::default(), &paths()).is_err());
        let mut bad = rec();
        bad.sysctls.insert("kernel.core_pattern".into(), "x".into());
        assert!(build(&bad, &User::default(), &paths()).is_err());
        let mut bad = rec();
        bad.path.clear();
        assert!(
            build(&bad, &User::default(), &paths())
                .unwrap_err()
                .contains("no command")
        );
    }
}
