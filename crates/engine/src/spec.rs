//! A container's OCI spec from its image and `docker run`-style options,
//! with Docker's defaults: its capability set, seccomp profile, masked
//! paths and mounts.

use std::path::Path;

use berth_types::image::ImageConfig;
use oci_spec::runtime::Spec;

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

/// What `run` was asked for.
#[derive(Clone, Debug, Default)]
pub struct RunSpec {
    /// Command (replaces the image's CMD).
    pub cmd: Vec<String>,
    /// Entrypoint (replaces the image's; `Some(empty)` clears it).
    pub entrypoint: Option<Vec<String>>,
    /// Extra environment (`KEY=value`, or `KEY` to drop).
    pub env: Vec<String>,
    /// Working directory.
    pub workdir: Option<String>,
    /// Resolved user.
    pub user: User,
    /// Hostname.
    pub hostname: String,
    /// Allocate a terminal.
    pub tty: bool,
    /// Keep stdin open.
    pub interactive: bool,
    /// Read-only root filesystem.
    pub read_only: bool,
    /// cgroup path.
    pub cgroups_path: String,
    /// Resource limits.
    pub resources: Resources,
    /// Share the host's network namespace.
    pub host_network: bool,
    /// Set no_new_privs on the process.
    pub no_new_privileges: bool,
    /// Capabilities added to / dropped from the default set (`ALL` allowed).
    pub cap_add: Vec<String>,
    /// See `cap_add`.
    pub cap_drop: Vec<String>,
    /// The user's mounts (OCI mount objects); they replace a default mount
    /// with the same destination.
    pub mounts: Vec<serde_json::Value>,
    /// A network namespace to join (bridge networks) instead of a new one.
    pub netns_path: Option<String>,
    /// `--ulimit NAME=SOFT[:HARD]`.
    pub ulimits: Vec<String>,
    /// `--sysctl`.
    pub sysctls: std::collections::BTreeMap<String, String>,
    /// `--privileged`: every capability and host device, no seccomp, no
    /// masked paths, /sys writable.
    pub privileged: bool,
    /// `--init`: the host path of berth-init, run as process 1 from
    /// /sbin/docker-init (read-only) with the command as its child.
    pub init: Option<String>,
    /// `--device HOST[:CONTAINER[:PERMISSIONS]]`.
    pub devices: Vec<String>,
    /// `--security-opt seccomp=…`: `unconfined`, or a docker seccomp profile
    /// (JSON); `None`: berth's default profile.
    pub seccomp: Option<String>,
    /// Namespace modes and process options; `container:` modes get a
    /// namespace to join whose path is set at each start
    /// ([`join_namespaces`]).
    pub host_options: crate::container::HostOptions,
    /// The host-side /dev/shm of `--ipc shareable` and `--ipc container:`.
    pub shm_path: Option<String>,
}

/// What goes into a container's /etc/hosts and resolv.conf besides the
/// defaults.
#[derive(Clone, Debug, Default)]
pub struct EtcOptions {
    /// `NAME:IP` lines for /etc/hosts.
    pub extra_hosts: Vec<String>,
    /// Nameservers instead of the host's (or the embedded server's).
    pub dns: Vec<String>,
    /// `search` domains.
    pub dns_search: Vec<String>,
    /// `options`.
    pub dns_options: Vec<String>,
}

/// The /etc/hosts of a container: localhost, `--add-host`s (with
/// `host-gateway` as `gateway`, left out without one) and its own name (at
/// `ip`, or 127.0.1.1 without a network address).
pub fn hosts_file(
    hostname: &str,
    ip: Option<&str>,
    extra: &[String],
    gateway: Option<&str>,
) -> String {
    let mut s = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n\
         ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for h in extra {
        if let Some((name, addr)) = h.split_once(':').or_else(|| h.split_once('=')) {
            let addr = if addr == "host-gateway" {
                match gateway {
                    Some(g) => g,
                    None => continue,
                }
            } else {
                addr
            };
            s.push_str(&format!("{addr}\t{name}\n"));
        }
    }
    s.push_str(&format!("{}\t{hostname}\n", ip.unwrap_or("127.0.1.1")));
    s
}

/// A resolv.conf: `nameservers` (the host's when empty, minus loopback
/// ones that cannot work from another network namespace), with the
/// host's or the given search domains and options.
pub fn resolv_conf(nameservers: &[String], search: &[String], options: &[String]) -> String {
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let mut out = String::new();
    if nameservers.is_empty() {
        for l in host.lines().filter(|l| l.starts_with("nameserver")) {
            if !(l.contains(" 127.") || l.contains(" ::1")) {
                out.push_str(l);
                out.push('\n');
            }
        }
    } else {
        for n in nameservers {
            out.push_str(&format!("nameserver {n}\n"));
        }
    }
    let keep = |out: &mut String, key: &str, given: &[String]| {
        if given.is_empty() {
            for l in host.lines().filter(|l| l.starts_with(key)) {
                out.push_str(l);
                out.push('\n');
            }
        } else {
            out.push_str(&format!("{key} {}\n", given.join(" ")));
        }
    };
    keep(&mut out, "search", search);
    keep(&mut out, "options", options);
    out
}

/// The host's device nodes (top of /dev and its subdirectories), for a
/// privileged container; the runtime's defaults (null, zero, …) left out.
fn host_devices() -> Vec<serde_json::Value> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    const DEFAULTS: &[&str] = &[
        "/dev/null",
        "/dev/zero",
        "/dev/full",
        "/dev/random",
        "/dev/urandom",
        "/dev/tty",
        "/dev/console",
        "/dev/ptmx",
    ];
    let mut out = Vec::new();
    let mut dirs = vec![std::path::PathBuf::from("/dev")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            let Ok(m) = p.symlink_metadata() else {
                continue;
            };
            let ft = m.file_type();
            if ft.is_dir() && !matches!(p.to_str(), Some("/dev/pts" | "/dev/shm" | "/dev/mqueue")) {
                dirs.push(p);
                continue;
            }
            let kind = if ft.is_char_device() {
                "c"
            } else if ft.is_block_device() {
                "b"
            } else {
                continue;
            };
            let path = p.display().to_string();
            if DEFAULTS.contains(&path.as_str()) {
                continue;
            }
            let rdev = m.rdev();
            out.push(serde_json::json!({
                "path": path, "type": kind,
                "major": rustix::fs::major(rdev), "minor": rustix::fs::minor(rdev),
                "fileMode": m.mode() & 0o7777, "uid": m.uid(), "gid": m.gid(),
            }));
        }
    }
    out
}

/// A docker seccomp profile (`--security-opt seccomp=profile.json`) as
/// the runtime spec's `linux.seccomp`: `archMap` becomes the architecture
/// list, and rules whose `includes`/`excludes` (capabilities,
/// architectures) do not fit this container are left out, as docker does.
pub fn docker_seccomp(profile: &str, caps: &[String]) -> Result<serde_json::Value, String> {
    let p: serde_json::Value = serde_json::from_str(profile)
        .map_err(|e| format!("decoding seccomp profile failed: {e}"))?;
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let default = p["defaultAction"]
        .as_str()
        .ok_or("the seccomp profile has no defaultAction")?;
    let mut arches: Vec<serde_json::Value> =
        p["architectures"].as_array().cloned().unwrap_or_default();
    for m in p["archMap"].as_array().into_iter().flatten() {
        if let Some(a) = m["architecture"].as_str() {
            arches.push(a.into());
        }
        arches.extend(
            m["subArchitectures"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        );
    }
    let has_cap = |c: &serde_json::Value| {
        c.as_str()
            .is_some_and(|c| caps.iter().any(|x| x.eq_ignore_ascii_case(c)))
    };
    let fits = |cond: &serde_json::Value, want: bool| -> bool {
        let caps_ok = cond["caps"].as_array().is_none_or(|l| {
            if want {
                l.iter().all(has_cap)
            } else {
                !l.iter().any(has_cap)
            }
        });
        let arch_ok = cond["arches"].as_array().is_none_or(|l| {
            let on = l.iter().any(|a| a.as_str() == Some(arch));
            on == want
        });
        caps_ok && arch_ok
    };
    let mut syscalls = Vec::new();
    for r in p["syscalls"].as_array().into_iter().flatten() {
        if !fits(&r["includes"], true) || !fits(&r["excludes"], false) {
            continue;
        }
        let names = match (&r["names"], &r["name"]) {
            (serde_json::Value::Array(n), _) => serde_json::Value::Array(n.clone()),
            (_, serde_json::Value::String(n)) => serde_json::json!([n]),
            _ => return Err("a seccomp rule has no names".into()),
        };
        let mut rule = serde_json::json!({"names": names, "action": r["action"]});
        if let Some(a) = r["args"].as_array().filter(|a| !a.is_empty()) {
            rule["args"] = serde_json::Value::Array(a.clone());
        }
        if !r["errnoRet"].is_null() {
            rule["errnoRet"] = r["errnoRet"].clone();
        }
        syscalls.push(rule);
    }
    let mut out = serde_json::json!({"defaultAction": default, "architectures": arches,
        "syscalls": syscalls});
    if !p["defaultErrnoRet"].is_null() {
        out["defaultErrnoRet"] = p["defaultErrnoRet"].clone();
    }
    Ok(out)
}

/// `--device` entries as OCI device nodes and cgroup rules.
pub fn devices(
    specs: &[String],
) -> Result<(Vec<serde_json::Value>, Vec<serde_json::Value>), String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut nodes = Vec::new();
    let mut rules = Vec::new();
    for d in specs {
        let parts: Vec<&str> = d.split(':').collect();
        let (host, ctr, perms) = match parts.as_slice() {
            [h] => (*h, *h, "rwm"),
            [h, c] if c.chars().all(|x| "rwm".contains(x)) && !c.starts_with('/') => (*h, *h, *c),
            [h, c] => (*h, *c, "rwm"),
            [h, c, p] => (*h, *c, *p),
            _ => return Err(format!("invalid device specification: {d}")),
        };
        if perms.is_empty() || !perms.chars().all(|x| "rwm".contains(x)) {
            return Err(format!("invalid device mode: {perms}"));
        }
        if !host.starts_with('/') || !ctr.starts_with('/') {
            return Err(format!(
                "invalid device specification: {d} (paths must be absolute)"
            ));
        }
        let m = std::fs::metadata(host).map_err(|e| {
            format!("error gathering device information while adding custom device \"{host}\": {e}")
        })?;
        let ft = m.file_type();
        let kind = if ft.is_char_device() {
            "c"
        } else if ft.is_block_device() {
            "b"
        } else {
            return Err(format!("{host} is not a device node"));
        };
        let (major, minor) = (rustix::fs::major(m.rdev()), rustix::fs::minor(m.rdev()));
        nodes.push(
            serde_json::json!({"path": ctr, "type": kind, "major": major, "minor": minor,
            "fileMode": m.mode() & 0o7777, "uid": 0, "gid": 0}),
        );
        rules.push(
            serde_json::json!({"allow": true, "type": kind, "major": major, "minor": minor,
            "access": perms}),
        );
    }
    Ok((nodes, rules))
}

/// A `--device-cgroup-rule` (`TYPE MAJOR:MINOR ACCESS`, `*` for any
/// number) as an OCI allow rule.
pub fn device_cgroup_rule(rule: &str) -> Result<serde_json::Value, String> {
    let bad = || format!("invalid device cgroup rule format: '{rule}'");
    let f: Vec<&str> = rule.split_whitespace().collect();
    let [kind, nums, access] = f.as_slice() else {
        return Err(bad());
    };
    if !matches!(*kind, "a" | "b" | "c")
        || access.is_empty()
        || !access.chars().all(|c| "rwm".contains(c))
    {
        return Err(bad());
    }
    let (ma, mi) = nums.split_once(':').ok_or_else(bad)?;
    let num = |x: &str| -> Result<serde_json::Value, String> {
        match x {
            "*" => Ok(serde_json::Value::Null),
            n => n.parse::<i64>().map(Into::into).map_err(|_| bad()),
        }
    };
    let mut r = serde_json::json!({"allow": true, "type": kind, "access": access});
    for (k, x) in [("major", ma), ("minor", mi)] {
        let n = num(x)?;
        if !n.is_null() {
            r[k] = n;
        }
    }
    Ok(r)
}

/// `--ulimit` entries as OCI rlimits.
pub fn rlimits(ulimits: &[String]) -> Result<Vec<serde_json::Value>, String> {
    const NAMES: &[&str] = &[
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
        "as",
    ];
    let mut v = Vec::new();
    for u in ulimits {
        let (name, val) = u
            .split_once('=')
            .ok_or_else(|| format!("invalid ulimit argument: {u}"))?;
        if !NAMES.contains(&name) {
            return Err(format!("invalid ulimit type: {name}"));
        }
        let num = |x: &str| -> Result<u64, String> {
            if x == "-1" || x == "unlimited" {
                Ok(u64::MAX)
            } else {
                x.parse::<u64>()
                    .map_err(|_| format!("invalid ulimit argument: {u}"))
            }
        };
        let (soft, hard) = match val.split_once(':') {
            Some((s, h)) => (num(s)?, num(h)?),
            None => (num(val)?, num(val)?),
        };
        if soft > hard {
            return Err(format!(
                "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
            ));
        }
        v.push(
            serde_json::json!({"type": format!("RLIMIT_{}", name.to_ascii_uppercase()),
            "soft": soft, "hard": hard}),
        );
    }
    Ok(v)
}

/// Docker's resource flags, as the engine stores them (0 = unset).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct Resources {
    /// `--memory` in bytes.
    pub memory: i64,
    /// `--memory-swap` (memory + swap) in bytes; -1 unlimited.
    pub memory_swap: i64,
    /// `--memory-reservation` in bytes.
    pub memory_reservation: i64,
    /// `--cpus` in units of 1e-9 CPUs.
    pub nano_cpus: i64,
    /// `--cpu-shares`.
    pub cpu_shares: i64,
    /// `--cpu-period` in microseconds.
    pub cpu_period: i64,
    /// `--cpu-quota` in microseconds.
    pub cpu_quota: i64,
    /// `--cpuset-cpus`.
    pub cpuset_cpus: String,
    /// `--cpuset-mems`.
    pub cpuset_mems: String,
    /// `--pids-limit` (0 or -1: unlimited).
    pub pids_limit: Option<i64>,
    /// `--memory-swappiness` (0..=100; None or -1: the host's).
    pub memory_swappiness: Option<i64>,
    /// `--oom-kill-disable`.
    pub oom_kill_disable: bool,
    /// `--blkio-weight` (10..=1000; 0: unset).
    pub blkio_weight: u16,
}

impl Resources {
    /// The runtime-spec `linux.resources` (without devices).
    pub fn to_spec(&self) -> Result<serde_json::Value, String> {
        let mut r = serde_json::json!({"devices": [{"allow": false, "access": "rwm"}]});
        if self.memory < 0
            || self.memory_reservation < 0
            || self.cpu_shares < 0
            || self.nano_cpus < 0
        {
            return Err("resource limits cannot be negative".into());
        }
        if self.memory > 0 && self.memory < 6 * 1024 * 1024 {
            return Err("Minimum memory limit allowed is 6MB".into());
        }
        if self.memory_swap > 0 && self.memory > 0 && self.memory_swap < self.memory {
            return Err(
                "Minimum memoryswap limit should be larger than memory limit, see usage".into(),
            );
        }
        let mut mem = serde_json::Map::new();
        if self.memory > 0 {
            mem.insert("limit".into(), self.memory.into());
            // docker: swap defaults to the same amount again
            let swap = match self.memory_swap {
                0 => self.memory * 2,
                s => s,
            };
            mem.insert("swap".into(), swap.into());
        }
        if self.memory_reservation > 0 {
            mem.insert("reservation".into(), self.memory_reservation.into());
        }
        if !mem.is_empty() {
            r["memory"] = mem.into();
        }
        if self.nano_cpus > 0 && (self.cpu_quota > 0 || self.cpu_period > 0) {
            return Err(
                "Conflicting options: Nano CPUs and CPU Period/Quota cannot both be set".into(),
            );
        }
        let mut cpu = serde_json::Map::new();
        if self.cpu_shares > 0 {
            cpu.insert("shares".into(), self.cpu_shares.into());
        }
        if self.nano_cpus > 0 {
            let period = 100_000i64;
            cpu.insert("period".into(), period.into());
            cpu.insert(
                "quota".into(),
                (self.nano_cpus * period / 1_000_000_000).max(1000).into(),
            );
        }
        if self.cpu_period > 0 {
            cpu.insert("period".into(), self.cpu_period.into());
        }
        if self.cpu_quota > 0 {
            cpu.insert("quota".into(), self.cpu_quota.into());
        }
        if !self.cpuset_cpus.is_empty() {
            cpu.insert("cpus".into(), self.cpuset_cpus.clone().into());
        }
        if !self.cpuset_mems.is_empty() {
            cpu.insert("mems".into(), self.cpuset_mems.clone().into());
        }
        if !cpu.is_empty() {
            r["cpu"] = cpu.into();
        }
        if let Some(p) = self.pids_limit.filter(|p| *p > 0) {
            r["pids"] = serde_json::json!({"limit": p});
        }
        if let Some(sw) = self.memory_swappiness.filter(|s| *s != -1) {
            if !(0..=100).contains(&sw) {
                return Err(format!(
                    "invalid value: {sw}, valid memory swappiness range is 0-100"
                ));
            }
            r["memory"]["swappiness"] = sw.into();
        }
        if self.oom_kill_disable {
            r["memory"]["disableOOMKiller"] = true.into();
        }
        if self.blkio_weight > 0 {
            if !(10..=1000).contains(&self.blkio_weight) {
                return Err("Range of blkio weight is from 10 to 1000".into());
            }
            r["blockIO"] = serde_json::json!({"weight": self.blkio_weight});
        }
        Ok(r)
    }
}

/// The capability set: docker's default, plus `add`, minus `drop`.
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

/// The process's argv: entrypoint + cmd as Docker combines them.
pub fn argv(cfg: &ImageConfig, run: &RunSpec) -> Vec<String> {
    let c = cfg.config.clone().unwrap_or_default();
    let entrypoint = run
        .entrypoint
        .clone()
        .unwrap_or_else(|| c.entrypoint.clone().unwrap_or_default());
    let cmd = if !run.cmd.is_empty() {
        run.cmd.clone()
    } else if run.entrypoint.is_some() {
        // --entrypoint resets the image's CMD
        Vec::new()
    } else {
        c.cmd.clone().unwrap_or_default()
    };
    entrypoint.into_iter().chain(cmd).collect()
}

/// The environment: the image's, then `run`'s (which may override or drop).
pub fn env(cfg: &ImageConfig, run: &RunSpec) -> Vec<String> {
    let mut env: Vec<String> = cfg
        .config
        .as_ref()
        .map(|c| c.env.clone())
        .unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, format!("PATH={}", berth_runtime::process::DEFAULT_PATH));
    }
    for e in &run.env {
        let key = e.split('=').next().unwrap_or(e);
        env.retain(|x| x.split('=').next() != Some(key));
        if e.contains('=') {
            env.push(e.clone());
        }
    }
    if run.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    if !env.iter().any(|e| e.starts_with("HOSTNAME=")) {
        env.push(format!("HOSTNAME={}", run.hostname));
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!(
            "HOME={}",
            run.user
                .home
                .clone()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "/".into())
        ));
    }
    env
}

/// Builds the spec. `rootfs` is the (empty) mount point the image's
/// overlay goes on; `etc_dir` holds the generated hostname, hosts and
/// resolv.conf.
pub fn build_spec(
    cfg: &ImageConfig,
    run: &RunSpec,
    rootfs: &Path,
    etc_dir: &Path,
) -> Result<Spec, String> {
    let args = argv(cfg, run);
    if args.is_empty() {
        return Err("no command specified".into());
    }
    let cwd = run
        .workdir
        .clone()
        .or_else(|| {
            cfg.config
                .as_ref()
                .map(|c| c.working_dir.clone())
                .filter(|w| !w.is_empty())
        })
        .unwrap_or_else(|| "/".into());
    if !cwd.starts_with('/') {
        return Err(format!(
            "the working directory '{cwd}' is invalid, it needs to be an absolute path"
        ));
    }
    let caps = if run.privileged {
        capabilities(&["ALL".to_owned()], &run.cap_drop)?
    } else {
        capabilities(&run.cap_add, &run.cap_drop)?
    };
    let seccomp = berth_runtime::seccomp::default_profile(&caps);
    let resources = run.resources.to_spec()?;
    let ho = &run.host_options;
    let mut namespaces = vec![serde_json::json!({"type": "mount"})];
    if ho.uts_mode != "host" {
        namespaces.push(serde_json::json!({"type": "uts"}));
    }
    if ho.pid_mode != "host" {
        namespaces.push(serde_json::json!({"type": "pid"}));
    }
    if ho.ipc_mode != "host" {
        namespaces.push(serde_json::json!({"type": "ipc"}));
    }
    if ho.cgroupns_mode != "host" {
        namespaces.push(serde_json::json!({"type": "cgroup"}));
    }
    if !run.host_network {
        namespaces.push(match &run.netns_path {
            Some(p) => serde_json::json!({"type": "network", "path": p}),
            None => serde_json::json!({"type": "network"}),
        });
    }
    let bind = |name: &str, dest: &str| {
        serde_json::json!({"destination": dest, "type": "bind",
            "source": etc_dir.join(name).display().to_string(), "options": ["rbind", "rprivate"]})
    };
    let v = serde_json::json!({
        "ociVersion": "1.2.0",
        "process": {
            "terminal": run.tty,
            "user": {"uid": run.user.uid, "gid": run.user.gid, "additionalGids": run.user.additional_gids},
            "args": args,
            "env": env(cfg, run),
            "cwd": cwd,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": run.no_new_privileges,
        },
        "root": {"path": rootfs.display().to_string(), "readonly": run.read_only},
        "hostname": run.hostname,
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro", "nosuid", "noexec", "nodev"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]},
            bind("hostname", "/etc/hostname"),
            bind("hosts", "/etc/hosts"),
            bind("resolv.conf", "/etc/resolv.conf"),
        ],
        "linux": {
            "resources": resources,
            "cgroupsPath": run.cgroups_path,
            "namespaces": namespaces,
            "seccomp": seccomp,
            "maskedPaths": ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
                "/sys/devices/virtual/powercap"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        },
    });
    let mut v = v;
    if ho.uts_mode == "host"
        && let Some(o) = v.as_object_mut()
    {
        o.remove("hostname");
    }
    if ho.oom_score_adj != 0 {
        if !(-1000..=1000).contains(&ho.oom_score_adj) {
            return Err(format!(
                "Invalid value {}, range for oom score adj is [-1000, 1000]",
                ho.oom_score_adj
            ));
        }
        v["process"]["oomScoreAdj"] = ho.oom_score_adj.into();
    }
    if let Some(ms) = v["mounts"].as_array_mut() {
        // /dev/shm: its own tmpfs (--shm-size), the host's, another
        // container's (bound at start), or none
        ms.retain(|m| m["destination"] != "/dev/shm");
        match ho.ipc_mode.as_str() {
            "none" => {}
            "host" => ms.push(
                serde_json::json!({"destination": "/dev/shm", "type": "bind",
                "source": "/dev/shm", "options": ["rbind", "rprivate"]}),
            ),
            // the shared /dev/shm lives on the host (a tmpfs the monitor
            // mounts at each start), so that other containers can bind it
            m if m.starts_with("container:") || m == "shareable" => ms.push(serde_json::json!({
                "destination": "/dev/shm", "type": "bind",
                "source": run.shm_path.clone().unwrap_or_default(),
                "options": ["rbind", "rprivate"]})),
            _ => {
                if ho.shm_size < 0 {
                    return Err("SHM size can not be less than 0".into());
                }
                let size = if ho.shm_size == 0 {
                    64 << 20
                } else {
                    ho.shm_size
                };
                ms.push(
                    serde_json::json!({"destination": "/dev/shm", "type": "tmpfs",
                    "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777",
                    format!("size={size}")]}),
                );
            }
        }
    }
    if let Some(p) = &ho.masked_paths {
        v["linux"]["maskedPaths"] = serde_json::json!(p);
    }
    if let Some(p) = &ho.readonly_paths {
        v["linux"]["readonlyPaths"] = serde_json::json!(p);
    }
    for rule in &ho.device_cgroup_rules {
        let r = device_cgroup_rule(rule)?;
        if let Some(list) = v["linux"]["resources"]["devices"].as_array_mut() {
            list.push(r);
        }
    }
    if let Some(init) = &run.init {
        let mut args = vec![
            serde_json::json!("/sbin/docker-init"),
            serde_json::json!("--"),
        ];
        args.extend(v["process"]["args"].as_array().cloned().unwrap_or_default());
        v["process"]["args"] = serde_json::Value::Array(args);
        if let Some(ms) = v["mounts"].as_array_mut() {
            ms.push(
                serde_json::json!({"destination": "/sbin/docker-init", "type": "bind",
                "source": init, "options": ["rbind", "ro", "rprivate"]}),
            );
        }
    }
    match run.seccomp.as_deref() {
        None => {}
        Some("unconfined") => {
            if let Some(o) = v["linux"].as_object_mut() {
                o.remove("seccomp");
            }
        }
        Some(profile) => v["linux"]["seccomp"] = docker_seccomp(profile, &caps)?,
    }
    if !run.devices.is_empty() && !run.privileged {
        let (nodes, rules) = devices(&run.devices)?;
        v["linux"]["devices"] = serde_json::Value::Array(nodes);
        if let Some(list) = v["linux"]["resources"]["devices"].as_array_mut() {
            list.extend(rules);
        }
    }
    if run.privileged {
        let l = &mut v["linux"];
        if let Some(o) = l.as_object_mut() {
            o.remove("seccomp");
        }
        l["maskedPaths"] = serde_json::json!([]);
        l["readonlyPaths"] = serde_json::json!([]);
        l["resources"]["devices"] = serde_json::json!([{"allow": true, "access": "rwm"}]);
        l["devices"] = serde_json::Value::Array(host_devices());
        if let Some(ms) = v["mounts"].as_array_mut() {
            for m in ms.iter_mut() {
                let sys = m["destination"] == "/sys" || m["destination"] == "/sys/fs/cgroup";
                if sys && let Some(opts) = m["options"].as_array_mut() {
                    opts.retain(|o| o != "ro");
                    opts.push("rw".into());
                }
            }
        }
    }
    if !run.ulimits.is_empty() {
        v["process"]["rlimits"] = serde_json::Value::Array(rlimits(&run.ulimits)?);
    }
    if !run.sysctls.is_empty() {
        for k in run.sysctls.keys() {
            if k.starts_with("net.") && run.host_network {
                return Err(format!(
                    "sysctl {k:?} is not allowed in host network namespace"
                ));
            }
            if berth_runtime::spec::sysctl_namespace(k).is_none() {
                return Err(format!(
                    "sysctl {k:?} is not whitelisted (only namespaced sysctls can be set)"
                ));
            }
        }
        v["linux"]["sysctl"] = serde_json::json!(run.sysctls);
    }
    if !run.mounts.is_empty()
        && let Some(list) = v["mounts"].as_array_mut()
    {
        list.retain(|d| {
            !run.mounts
                .iter()
                .any(|m| m["destination"] == d["destination"])
        });
        list.extend(run.mounts.iter().cloned());
    }
    serde_json::from_value(v).map_err(|e| format!("internal: built an invalid spec: {e}"))
}

/// The files a container gets as /etc/hostname, /etc/hosts and
/// /etc/resolv.conf (rewritten with its address when it joins a network).
pub fn write_etc_files(dir: &Path, hostname: &str, o: &EtcOptions) -> std::io::Result<()> {
    std::fs::write(dir.join("hostname"), format!("{hostname}\n"))?;
    std::fs::write(
        dir.join("hosts"),
        hosts_file(hostname, None, &o.extra_hosts, None),
    )?;
    std::fs::write(
        dir.join("resolv.conf"),
        resolv_conf(&o.dns, &o.dns_search, &o.dns_options),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(json: &str) -> ImageConfig {
        berth_types::image::parse_config(json.as_bytes()).unwrap()
    }

    #[test]
    fn entrypoint_cmd_and_env_like_docker() {
        let c = cfg(
            r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},
            "config":{"Entrypoint":["/ep"],"Cmd":["default"],"Env":["A=1","PATH=/x"],"WorkingDir":"/w"}}"#,
        );
        let mut r = RunSpec {
            hostname: "h".into(),
            ..Default::default()
        };
        assert_eq!(argv(&c, &r), ["/ep", "default"]);
        r.cmd = vec!["other".into()];
        assert_eq!(argv(&c, &r), ["/ep", "other"]);
        r.entrypoint = Some(vec!["/sh".into()]);
        r.cmd.clear();
        assert_eq!(argv(&c, &r), ["/sh"], "--entrypoint resets CMD");
        r.env = vec!["A=2".into(), "PATH".into(), "B=3".into()];
        let e = env(&c, &r);
        assert!(
            e.contains(&"A=2".into())
                && e.contains(&"B=3".into())
                && !e.iter().any(|x| x.starts_with("PATH="))
        );
        let spec = build_spec(
            &c,
            &RunSpec {
                hostname: "h".into(),
                ..Default::default()
            },
            Path::new("/r"),
            Path::new("/e"),
        )
        .unwrap();
        assert_eq!(spec.process().as_ref().unwrap().cwd(), Path::new("/w"));
        let empty = cfg(
            r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#,
        );
        assert!(
            build_spec(
                &empty,
                &RunSpec::default(),
                Path::new("/r"),
                Path::new("/e")
            )
            .unwrap_err()
            .contains("no command")
        );
    }
}
