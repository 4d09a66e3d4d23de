//! cgroups v1 and v2: where a container's cgroup lives, creating it,
//! applying limits, moving processes in, freezing, statistics and removal.
//!
//! [`Layout`] says what the host offers; [`Cgroup::plan`] turns a spec's
//! `cgroupsPath` into concrete directories (persisted in the container
//! state so later commands need no detection); the pure mapping from
//! `linux.resources` to file writes is in [`resources`].

pub mod devices_bpf;
mod layout;
pub mod resources;
pub mod stats;

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

pub use layout::{Hierarchy, Layout, Mode, Unified, host_dir};
use resources::{DeviceRule, Write};

/// Errors from cgroup management.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// A value in the spec is invalid.
    #[error("invalid cgroup setting: {0}")]
    Invalid(String),
    /// The host cannot provide what the spec asks for.
    #[error("not supported: {0}")]
    Unsupported(String),
    /// A cgroupfs operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// On which file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> CgroupError + 'a {
    move |source| CgroupError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// A container's cgroup: the concrete directories, per hierarchy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "version", rename_all = "lowercase")]
pub enum Cgroup {
    /// cgroup v1 (and hybrid hosts).
    V1 {
        /// Controller name → directory (co-mounted controllers share one).
        dirs: BTreeMap<String, PathBuf>,
        /// A directory in the unified hierarchy, used on hybrid hosts for
        /// controllers that live there (hugetlb here).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unified: Option<PathBuf>,
    },
    /// cgroup v2.
    V2 {
        /// The container's directory.
        dir: PathBuf,
        /// The hierarchy's mount point.
        root: PathBuf,
    },
}

/// The likely reason a cgroup exists but cannot be reached, for messages.
pub const UNREACHABLE_HINT: &str = "is /sys/fs/cgroup hidden, as under `ip netns exec`?";

/// The controllers berth manages on v1 (named hierarchies are skipped).
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "blkio",
    "pids",
    "hugetlb",
    "net_cls",
    "net_prio",
    "perf_event",
    "rdma",
    "misc",
];

fn join_cgroup_path(own: &str, cgroups_path: Option<&str>, id: &str) -> String {
    match cgroups_path {
        Some(p) if p.starts_with('/') => p.to_owned(),
        Some(p) if !p.is_empty() => format!("{}/{}", own.trim_end_matches('/'), p),
        _ => format!("{}/{}", own.trim_end_matches('/'), id),
    }
}

fn validate_cgroups_path(p: &str) -> Result<(), CgroupError> {
    if p.split('/').any(|c| c == "..") {
        return Err(CgroupError::Invalid(format!(
            "cgroupsPath {p:?} contains \"..\""
        )));
    }
    if p.contains(':') {
        return Err(CgroupError::Unsupported(format!(
            "cgroupsPath {p:?} is in systemd's slice:prefix:name form; \
             berth manages cgroups through cgroupfs only"
        )));
    }
    Ok(())
}

impl Cgroup {
    /// Decides the directories for a container. A relative (or absent)
    /// `cgroups_path` is placed under the caller's own cgroup, as runc does.
    pub fn plan(
        layout: &Layout,
        cgroups_path: Option<&str>,
        id: &str,
        needs_unified_hugetlb: bool,
    ) -> Result<Cgroup, CgroupError> {
        if let Some(p) = cgroups_path {
            validate_cgroups_path(p)?;
        }
        match layout.mode() {
            Mode::Unified => {
                let u = layout
                    .unified
                    .as_ref()
                    .expect("unified mode has a cgroup2 mount");
                let path = join_cgroup_path(&u.own_path, cgroups_path, id);
                Ok(Cgroup::V2 {
                    dir: host_dir(&u.mountpoint, &u.mount_root, &path),
                    root: u.mountpoint.clone(),
                })
            }
            Mode::Legacy | Mode::Hybrid => {
                let mut dirs = BTreeMap::new();
                for h in &layout.v1 {
                    if h.is_named_only() {
                        continue;
                    }
                    let path = join_cgroup_path(&h.own_path, cgroups_path, id);
                    let dir = host_dir(&h.mountpoint, &h.mount_root, &path);
                    for c in &h.controllers {
                        if V1_CONTROLLERS.contains(&c.as_str()) {
                            dirs.insert(c.clone(), dir.clone());
                        }
                    }
                }
                let unified = match (&layout.unified, needs_unified_hugetlb) {
                    (Some(u), true) if !dirs.contains_key("hugetlb") => {
                        let path = join_cgroup_path(&u.own_path, cgroups_path, id);
                        Some(host_dir(&u.mountpoint, &u.mount_root, &path))
                    }
                    _ => None,
                };
                Ok(Cgroup::V1 { dirs, unified })
            }
        }
    }

    /// Every distinct directory of this cgroup.
    pub fn all_dirs(&self) -> Vec<PathBuf> {
        match self {
            Cgroup::V1 { dirs, unified } => {
                let mut v: Vec<PathBuf> = Vec::new();
                for d in dirs.values().chain(unified.iter()) {
                    if !v.contains(d) {
                        v.push(d.clone());
                    }
                }
                v
            }
            Cgroup::V2 { dir, .. } => vec![dir.clone()],
        }
    }

    /// The directory holding `controller`'s files.
    pub fn dir_of(&self, controller: &str) -> Option<&Path> {
        match self {
            Cgroup::V1 { dirs, unified } => {
                dirs.get(controller).map(PathBuf::as_path).or_else(|| {
                    (controller == "hugetlb")
                        .then_some(unified.as_deref())
                        .flatten()
                })
            }
            Cgroup::V2 { dir, .. } => Some(dir),
        }
    }

    /// A directory that lists every process of the container.
    fn procs_dir(&self) -> Option<&Path> {
        match self {
            Cgroup::V1 { dirs, .. } => ["pids", "freezer", "memory", "cpu"]
                .iter()
                .find_map(|c| dirs.get(*c))
                .or_else(|| dirs.values().next())
                .map(PathBuf::as_path),
            Cgroup::V2 { dir, .. } => Some(dir),
        }
    }

    /// Creates the directories (and, on v2, enables controllers down the
    /// path). Existing directories are kept (a pod's containers may share
    /// a parent).
    pub fn create(&self) -> Result<(), CgroupError> {
        match self {
            Cgroup::V1 { dirs, unified } => {
                for (ctrl, dir) in dirs {
                    if ctrl == "cpuset" {
                        create_cpuset_dir(dir)?;
                    } else if !dir.exists() {
                        fs::create_dir_all(dir).map_err(io_err("create", dir))?;
                    }
                }
                if let Some(u) = unified {
                    if let Some(root) = find_unified_root(u) {
                        enable_v2_controllers(&root, u, &["hugetlb"])?;
                    }
                    fs::create_dir_all(u).map_err(io_err("create", u))?;
                }
                Ok(())
            }
            Cgroup::V2 { dir, root } => {
                let wanted = [
                    "cpu", "cpuset", "io", "memory", "pids", "hugetlb", "rdma", "misc",
                ];
                enable_v2_controllers(root, dir, &wanted)?;
                fs::create_dir_all(dir).map_err(io_err("create", dir))
            }
        }
    }

    /// Refuses device rules this cgroup could not enforce. On v1 that
    /// takes the devices controller: without it (not mounted, or hidden
    /// from this process, as /sys is under `ip netns exec`) a container
    /// could open every device node it can make. Rules that allow
    /// everything need nothing. (On v2 the rules are a program attached to
    /// the cgroup, and failing to attach it is an error.)
    pub fn check_devices(&self, devices: &[DeviceRule]) -> Result<(), CgroupError> {
        match self {
            Cgroup::V1 { dirs, .. }
                if !dirs.contains_key("devices") && !resources::allow_everything(devices) =>
            {
                Err(CgroupError::Unsupported(format!(
                    "device rules need the devices cgroup controller, which is not mounted \
                     or not reachable here ({UNREACHABLE_HINT}); refusing to run the \
                     container without them"
                )))
            }
            _ => Ok(()),
        }
    }

    /// Applies `linux.resources` and the device rules.
    pub fn apply(
        &self,
        r: Option<&LinuxResources>,
        devices: &[DeviceRule],
    ) -> Result<(), CgroupError> {
        self.check_devices(devices)?;
        let empty = LinuxResources::default();
        let r = r.unwrap_or(&empty);
        match self {
            Cgroup::V1 { dirs, unified } => {
                let weight_file = dirs.get("blkio").and_then(|d| {
                    ["blkio.weight", "blkio.bfq.weight"]
                        .into_iter()
                        .find(|f| d.join(f).exists())
                });
                let writes = resources::v1_writes(r, weight_file)?;
                for wr in &writes {
                    let dir = match (dirs.get(wr.controller), wr.controller, unified) {
                        (Some(d), _, _) => d.clone(),
                        (None, "hugetlb", Some(u)) => {
                            // hybrid: hugetlb lives on the unified hierarchy
                            let file = wr.file.replace(".limit_in_bytes", ".max");
                            write_file(&u.join(file), &wr.value)?;
                            continue;
                        }
                        (None, c, _) => {
                            return Err(CgroupError::Unsupported(format!(
                                "{} needs the {c} cgroup controller, which is not mounted here",
                                wr.file
                            )));
                        }
                    };
                    if wr.file == "memory.limit_in_bytes" {
                        order_memsw_first(&dir, &writes)?;
                    }
                    write_v1(&dir, wr)?;
                }
                if let Some(d) = dirs.get("devices") {
                    // (without the controller, check_devices allowed them)
                    for rule in devices {
                        let file = if rule.allow {
                            "devices.allow"
                        } else {
                            "devices.deny"
                        };
                        write_file(&d.join(file), &rule.v1_line())?;
                    }
                }
                Ok(())
            }
            Cgroup::V2 { dir, .. } => {
                let writes = resources::v2_writes(r)?;
                for wr in &writes {
                    let path = dir.join(&wr.file);
                    if !path.exists() {
                        return Err(CgroupError::Unsupported(format!(
                            "{} ({} controller) is not available in {}",
                            wr.file,
                            wr.controller,
                            dir.display()
                        )));
                    }
                    write_file(&path, &wr.value)?;
                }
                // Device rules on v2 are an eBPF program attached to the
                // cgroup directory.
                // (An empty list means the caller manages devices itself.)
                if devices.is_empty() {
                    return Ok(());
                }
                devices_bpf::attach(dir, devices).map_err(|e| CgroupError::Io {
                    op: "attach the device filter to",
                    path: dir.clone(),
                    source: e,
                })
            }
        }
    }

    /// An open directory fd for `clone3(CLONE_INTO_CGROUP)` (v2 only).
    pub fn clone_into_fd(&self) -> Option<OwnedFd> {
        match self {
            Cgroup::V2 { dir, .. } => rustix::fs::open(
                dir,
                rustix::fs::OFlags::PATH
                    | rustix::fs::OFlags::DIRECTORY
                    | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )
            .ok(),
            Cgroup::V1 { .. } => None,
        }
    }

    /// Moves process `pid` into the cgroup (every hierarchy).
    pub fn add_pid(&self, pid: i32) -> Result<(), CgroupError> {
        let pid = pid.to_string();
        for dir in self.all_dirs() {
            write_file(&dir.join("cgroup.procs"), &pid)?;
        }
        Ok(())
    }

    /// The pids of every process in the cgroup and its descendants.
    pub fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let Some(dir) = self.procs_dir() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        collect_pids(dir, &mut out)?;
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// Whether the cgroup's directories exist.
    pub fn exists(&self) -> bool {
        self.procs_dir().is_some_and(Path::exists)
    }

    /// Freezes (true) or thaws (false) every process, waiting until done.
    pub fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        match self {
            Cgroup::V1 { dirs, .. } => {
                let dir = dirs.get("freezer").ok_or_else(|| {
                    CgroupError::Unsupported("the freezer cgroup controller is not mounted".into())
                })?;
                let want = if frozen { "FROZEN" } else { "THAWED" };
                let file = dir.join("freezer.state");
                let deadline = Instant::now() + Duration::from_secs(10);
                loop {
                    write_file(&file, want)?;
                    let now = fs::read_to_string(&file).map_err(io_err("read", &file))?;
                    if now.trim() == want {
                        return Ok(());
                    }
                    if Instant::now() > deadline {
                        return Err(CgroupError::Io {
                            op: "freeze",
                            path: file,
                            source: io::Error::new(io::ErrorKind::TimedOut, "still freezing"),
                        });
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            Cgroup::V2 { dir, .. } => {
                let file = dir.join("cgroup.freeze");
                write_file(&file, if frozen { "1" } else { "0" })?;
                let events = dir.join("cgroup.events");
                let want = if frozen { "frozen 1" } else { "frozen 0" };
                let deadline = Instant::now() + Duration::from_secs(10);
                while Instant::now() < deadline {
                    match fs::read_to_string(&events) {
                        Ok(s) if s.lines().any(|l| l == want) => return Ok(()),
                        Ok(_) => std::thread::sleep(Duration::from_millis(1)),
                        Err(_) => return Ok(()),
                    }
                }
                Err(CgroupError::Io {
                    op: "freeze",
                    path: file,
                    source: io::Error::new(io::ErrorKind::TimedOut, "still freezing"),
                })
            }
        }
    }

    /// Whether the cgroup is frozen.
    pub fn is_frozen(&self) -> bool {
        match self {
            Cgroup::V1 { dirs, .. } => dirs
                .get("freezer")
                .and_then(|d| fs::read_to_string(d.join("freezer.state")).ok())
                .is_some_and(|s| s.trim() == "FROZEN"),
            Cgroup::V2 { dir, .. } => {
                fs::read_to_string(dir.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1")
            }
        }
    }

    /// Sends `signal` to every process in the cgroup. With the freezer
    /// available the cgroup is frozen meanwhile, so no process can fork
    /// away from the signal.
    pub fn signal_all(&self, signal: i32) -> Result<(), CgroupError> {
        let freeze = matches!(self, Cgroup::V1 { dirs, .. } if dirs.contains_key("freezer"))
            || matches!(self, Cgroup::V2 { dir, .. } if dir.join("cgroup.freeze").exists());
        let was_frozen = self.is_frozen();
        if freeze && !was_frozen {
            self.set_frozen(true)?;
        }
        let sig = rustix::process::Signal::from_named_raw(signal);
        for pid in self.pids()? {
            if let (Some(p), Some(sig)) = (rustix::process::Pid::from_raw(pid), sig) {
                let _ = rustix::process::kill_process(p, sig);
            }
        }
        if freeze && !was_frozen {
            self.set_frozen(false)?;
        }
        Ok(())
    }

    /// Kills what is left in the cgroup and removes its directories
    /// (children first). Missing directories are fine.
    pub fn destroy(&self) -> Result<(), CgroupError> {
        if let Cgroup::V2 { dir, .. } = self
            && dir.join("cgroup.kill").exists()
            && !self.pids()?.is_empty()
        {
            let _ = write_file(&dir.join("cgroup.kill"), "1");
        }
        let mut first_error = None;
        for dir in self.all_dirs() {
            if let Err(e) = remove_tree(&dir, self) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

fn collect_pids(dir: &Path, out: &mut Vec<i32>) -> Result<(), CgroupError> {
    let procs = dir.join("cgroup.procs");
    match fs::read_to_string(&procs) {
        Ok(s) => out.extend(s.lines().filter_map(|l| l.trim().parse::<i32>().ok())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("read", &procs)(e)),
    }
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect_pids(&e.path(), out)?;
            }
        }
    }
    Ok(())
}

fn remove_tree(dir: &Path, cg: &Cgroup) -> Result<(), CgroupError> {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&e.path(), cg)?;
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut delay = Duration::from_micros(200);
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                // Processes remain (or are still exiting): kill them.
                let mut pids = Vec::new();
                let _ = collect_pids(dir, &mut pids);
                for pid in pids {
                    if let Some(p) = rustix::process::Pid::from_raw(pid) {
                        let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
                    }
                }
                if let Cgroup::V1 { dirs, .. } = cg
                    && dirs.get("freezer").is_some_and(|f| dir.starts_with(f))
                {
                    let _ = write_file(&dir.join("freezer.state"), "THAWED");
                }
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(50));
            }
            Err(e) => return Err(io_err("remove", dir)(e)),
        }
    }
}

/// Writes `value` to a cgroup file, naming both in the error.
pub fn write_file(path: &Path, value: &str) -> Result<(), CgroupError> {
    fs::write(path, value).map_err(|source| CgroupError::Io {
        op: "write",
        path: path.to_path_buf(),
        source: io::Error::new(source.kind(), format!("{value:?}: {source}")),
    })
}

fn write_v1(dir: &Path, wr: &Write) -> Result<(), CgroupError> {
    let path = dir.join(&wr.file);
    match fs::write(&path, &wr.value) {
        Ok(()) => Ok(()),
        Err(_) if !path.exists() => Err(CgroupError::Unsupported(format!(
            "{} is not offered by this kernel ({} controller)",
            wr.file, wr.controller
        ))),
        Err(e) => Err(CgroupError::Io {
            op: "write",
            path,
            source: io::Error::new(e.kind(), format!("{:?}: {e}", wr.value)),
        }),
    }
}

/// v1 refuses a memory limit above the current memory+swap limit: when both
/// are being raised, memsw has to go first.
fn order_memsw_first(dir: &Path, writes: &[Write]) -> Result<(), CgroupError> {
    let Some(memsw) = writes
        .iter()
        .find(|w| w.file == "memory.memsw.limit_in_bytes")
    else {
        return Ok(());
    };
    let Some(mem) = writes.iter().find(|w| w.file == "memory.limit_in_bytes") else {
        return Ok(());
    };
    let current = fs::read_to_string(dir.join("memory.memsw.limit_in_bytes"))
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok());
    let new_mem: i64 = mem.value.parse().unwrap_or(-1);
    if let Some(cur) = current
        && (new_mem == -1 || new_mem > cur)
    {
        write_v1(dir, memsw)?;
    }
    Ok(())
}

/// Creates a v1 cpuset directory and any missing parents, copying
/// `cpuset.cpus`/`cpuset.mems` from the parent (new cpusets start empty,
/// and an empty cpuset cannot hold processes).
fn create_cpuset_dir(dir: &Path) -> Result<(), CgroupError> {
    if dir.exists() {
        return Ok(());
    }
    let parent = dir
        .parent()
        .ok_or_else(|| CgroupError::Invalid("cpuset path".into()))?;
    create_cpuset_dir(parent)?;
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(io_err("create", dir)(e)),
    }
    for f in ["cpuset.cpus", "cpuset.mems"] {
        let mine = fs::read_to_string(dir.join(f)).unwrap_or_default();
        if mine.trim().is_empty() {
            let theirs =
                fs::read_to_string(parent.join(f)).map_err(io_err("read", &parent.join(f)))?;
            write_file(&dir.join(f), theirs.trim())?;
        }
    }
    Ok(())
}

fn find_unified_root(dir: &Path) -> Option<PathBuf> {
    let mut cur = dir.parent();
    while let Some(c) = cur {
        if c.join("cgroup.controllers").exists()
            && !c
                .parent()
                .is_some_and(|p| p.join("cgroup.controllers").exists())
        {
            return Some(c.to_path_buf());
        }
        cur = c.parent();
    }
    None
}

/// Enables `wanted` controllers (those offered) in `cgroup.subtree_control`
/// of every ancestor of `dir`, from `root` down.
fn enable_v2_controllers(root: &Path, dir: &Path, wanted: &[&str]) -> Result<(), CgroupError> {
    let rel = dir.strip_prefix(root).map_err(|_| {
        CgroupError::Invalid(format!("{} is not under {}", dir.display(), root.display()))
    })?;
    let mut cur = root.to_path_buf();
    let comps: Vec<_> = rel.components().collect();
    for (i, comp) in comps.iter().enumerate() {
        let available =
            fs::read_to_string(cur.join("cgroup.controllers")).map_err(io_err("read", &cur))?;
        let enabled = fs::read_to_string(cur.join("cgroup.subtree_control")).unwrap_or_default();
        let enabled: Vec<&str> = enabled.split_whitespace().collect();
        let missing: Vec<&str> = available
            .split_whitespace()
            .filter(|c| wanted.contains(c) && !enabled.contains(c))
            .collect();
        if !missing.is_empty() {
            let line: Vec<String> = missing.iter().map(|c| format!("+{c}")).collect();
            let file = cur.join("cgroup.subtree_control");
            if write_file(&file, &line.join(" ")).is_err() {
                for c in &missing {
                    if let Err(e) = write_file(&file, &format!("+{c}")) {
                        tracing::debug!("cannot enable {c} in {}: {e}", file.display());
                    }
                }
            }
        }
        cur.push(comp);
        if i + 1 < comps.len() && !cur.exists() {
            fs::create_dir(&cur).map_err(io_err("create", &cur))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
