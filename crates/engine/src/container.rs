//! Containers on disk: each one is a directory under `<root>/containers/`
//! holding its configuration (`container.json`, written once at create and
//! on rename/update) and its state (`state.json`, written by whichever
//! process changes it, under the directory's `lock`). Names are symlinks
//! `<root>/names/<name>` → id, created atomically, so two processes can
//! never take one name. See ADR 0010 for why this is files, not SQLite.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::run::{Error, Result};
use crate::spec::Resources;

/// Version of `container.json` and `state.json`.
pub const SCHEMA: u32 = 1;

/// Docker's zero time, for timestamps that have not happened.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// A restart policy (`--restart`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct RestartPolicy {
    /// `no` (or empty), `always`, `unless-stopped`, `on-failure`.
    pub name: String,
    /// For `on-failure`: the most restarts (0: no limit).
    pub maximum_retry_count: i64,
}

impl RestartPolicy {
    /// Parses `--restart` (`on-failure:3`).
    pub fn parse(s: &str) -> Result<RestartPolicy> {
        let (name, count) = match s.split_once(':') {
            Some((n, c)) => (
                n,
                c.parse::<i64>()
                    .map_err(|_| Error::Invalid(format!("invalid restart policy format: {s}")))?,
            ),
            None => (s, 0),
        };
        let p = RestartPolicy {
            name: name.to_owned(),
            maximum_retry_count: count,
        };
        p.validate()?;
        Ok(p)
    }

    /// Checks the name and count as docker does.
    pub fn validate(&self) -> Result<()> {
        match self.name.as_str() {
            "" | "no" | "always" | "unless-stopped" if self.maximum_retry_count != 0 => {
                Err(Error::Invalid(format!(
                    "maximum retry count cannot be used with restart policy '{}'",
                    self.name
                )))
            }
            "" | "no" | "always" | "unless-stopped" => Ok(()),
            "on-failure" if self.maximum_retry_count < 0 => Err(Error::Invalid(
                "maximum retry count cannot be negative".into(),
            )),
            "on-failure" => Ok(()),
            other => Err(Error::Invalid(format!("invalid restart policy '{other}'"))),
        }
    }

    /// Whether the monitor restarts a container that exited with `code`
    /// after `restarts` restarts. A container stopped by the user is never
    /// restarted.
    pub fn should_restart(&self, code: i32, restarts: u32, manual_stop: bool) -> bool {
        if manual_stop {
            return false;
        }
        match self.name.as_str() {
            "always" | "unless-stopped" => true,
            "on-failure" => {
                code != 0
                    && (self.maximum_retry_count == 0
                        || i64::from(restarts) < self.maximum_retry_count)
            }
            _ => false,
        }
    }
}

/// A log driver configuration (`--log-opt max-size=10m --log-opt max-file=3`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct LogConfig {
    /// `json-file` (the only driver), or empty for the default.
    #[serde(rename = "Type")]
    pub kind: String,
    /// Driver options.
    pub config: BTreeMap<String, String>,
}

impl LogConfig {
    /// (max bytes per file, files kept); `None` when the log is not rotated.
    pub fn rotation(&self) -> Result<Option<(u64, u32)>> {
        let Some(size) = self.config.get("max-size") else {
            if self.config.contains_key("max-file") {
                return Err(Error::Invalid(
                    "max-file cannot be used without max-size".into(),
                ));
            }
            return Ok(None);
        };
        let bytes =
            parse_size(size).ok_or_else(|| Error::Invalid(format!("invalid max-size: {size}")))?;
        let files = match self.config.get("max-file") {
            Some(f) => f
                .parse::<u32>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| Error::Invalid(format!("invalid max-file: {f}")))?,
            None => 1,
        };
        if bytes == 0 {
            return Ok(None);
        }
        Ok(Some((bytes, files)))
    }

    /// Rejects drivers and options berth does not have.
    pub fn validate(&self) -> Result<()> {
        match self.kind.as_str() {
            "" | "json-file" | "local" => {}
            "none" => {}
            other => {
                return Err(Error::Invalid(format!(
                    "not supported yet: log driver {other:?} (json-file)"
                )));
            }
        }
        for k in self.config.keys() {
            if !matches!(
                k.as_str(),
                "max-size" | "max-file" | "compress" | "labels" | "env" | "tag"
            ) {
                return Err(Error::Invalid(format!(
                    "unknown log opt '{k}' for json-file log driver"
                )));
            }
        }
        self.rotation().map(|_| ())
    }
}

/// `10m`, `1g`, `512k`, `100` (bytes), as docker reads sizes.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1u64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        't' => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    let n: f64 = num.parse().ok()?;
    (n >= 0.0).then_some((n * mult as f64) as u64)
}

/// What a container was created with (docker's `Config` and the parts of
/// `HostConfig` berth honours).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
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
    /// Hostname.
    pub hostname: String,
    /// Domain name.
    pub domainname: String,
    /// User as given.
    pub user: String,
    /// Full environment of the process.
    pub env: Vec<String>,
    /// `Cmd` as docker reports it (the image's when not given).
    pub cmd: Vec<String>,
    /// `Entrypoint` as docker reports it.
    pub entrypoint: Vec<String>,
    /// Working directory.
    pub working_dir: String,
    /// Labels (the image's merged with the container's).
    pub labels: BTreeMap<String, String>,
    /// Allocate a terminal.
    pub tty: bool,
    /// Keep stdin open.
    pub open_stdin: bool,
    /// Close stdin when the first attached client detaches.
    pub stdin_once: bool,
    /// Attach flags from create (informational).
    pub attach_stdin: bool,
    /// See `attach_stdin`.
    pub attach_stdout: bool,
    /// See `attach_stdin`.
    pub attach_stderr: bool,
    /// Exposed ports (`80/tcp`).
    pub exposed_ports: Vec<String>,
    /// Signal for `stop` (name or number; default SIGTERM).
    pub stop_signal: String,
    /// Seconds `stop` waits before SIGKILL (None: 10).
    pub stop_timeout: Option<i64>,
    /// Remove the container when it exits.
    pub auto_remove: bool,
    /// Restart policy.
    pub restart_policy: RestartPolicy,
    /// `none`, `host`, `default`/`bridge`, or a user-defined network.
    pub network_mode: String,
    /// Read-only root filesystem.
    pub read_only: bool,
    /// no_new_privs.
    pub no_new_privileges: bool,
    /// Capabilities added.
    pub cap_add: Vec<String>,
    /// Capabilities dropped.
    pub cap_drop: Vec<String>,
    /// Resource limits.
    pub resources: Resources,
    /// Log configuration.
    pub log_config: LogConfig,
    /// Terminal size at create (height, width).
    pub console_size: Option<(u16, u16)>,
    /// Volumes, binds and tmpfs mounts.
    pub mounts: Vec<crate::volumes::MountPoint>,
    /// Published ports (`-p`).
    pub port_bindings: Vec<crate::network::PortSpec>,
    /// `-P`: every exposed port on a free host port.
    pub publish_all: bool,
    /// `--network-alias`.
    pub aliases: Vec<String>,
    /// `--ip`.
    pub ipv4_address: String,
    /// The health check (the image's, with `--health-*` over it).
    pub healthcheck: Option<berth_types::image::HealthConfig>,
    /// `--add-host NAME:IP` (`host-gateway` is the network's gateway).
    pub extra_hosts: Vec<String>,
    /// `--dns`.
    pub dns: Vec<String>,
    /// `--dns-search`.
    pub dns_search: Vec<String>,
    /// `--dns-option`.
    pub dns_options: Vec<String>,
    /// Networks joined with `network connect` besides the first.
    pub extra_networks: Vec<crate::network::ExtraNetwork>,
    /// Taken off the network it was created on (`network disconnect`);
    /// it starts on its other networks only, or with loopback alone.
    pub primary_detached: bool,
    /// `--privileged`.
    pub privileged: bool,
    /// `--init`.
    pub init: bool,
    /// Namespace sharing and the process options of `HostConfig`.
    pub host_options: HostOptions,
    /// `--volumes-from` (as asked; their mounts are in `mounts`).
    pub volumes_from: Vec<String>,
}

/// The namespace modes and process options of docker's `HostConfig`
/// (`--pid`, `--ipc`, `--uts`, `--cgroupns`, `--shm-size`, `--group-add`,
/// `--oom-score-adj`, `--device-cgroup-rule`). Modes are docker's words;
/// `container:` modes hold the other container's full id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct HostOptions {
    /// `""` (a private namespace), `host`, or `container:ID`.
    pub pid_mode: String,
    /// `""`/`private`, `shareable`, `host`, `none`, or `container:ID`.
    pub ipc_mode: String,
    /// `""` or `host`.
    pub uts_mode: String,
    /// `""`/`private` or `host`.
    pub cgroupns_mode: String,
    /// Size of /dev/shm in bytes (0: docker's 64 MiB).
    pub shm_size: i64,
    /// Supplementary groups (names from the image's /etc/group, or numbers).
    pub group_add: Vec<String>,
    /// The process's oom_score_adj (-1000..=1000).
    pub oom_score_adj: i64,
    /// Device cgroup rules (`c 1:3 rwm`, `b 8:* r`).
    pub device_cgroup_rules: Vec<String>,
    /// Paths masked in place of docker's list (`systempaths=unconfined`:
    /// none); None: docker's list.
    pub masked_paths: Option<Vec<String>>,
    /// Paths made read-only in place of docker's list; None: docker's list.
    pub readonly_paths: Option<Vec<String>>,
}

/// The life of a container, as docker names it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Made, never started.
    #[default]
    Created,
    /// Its process runs.
    Running,
    /// Frozen.
    Paused,
    /// Waiting to be restarted by its policy.
    Restarting,
    /// Its process ended.
    Exited,
    /// Being removed.
    Removing,
    /// Broken beyond use.
    Dead,
}

impl Status {
    /// Docker's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Exited => "exited",
            Status::Removing => "removing",
            Status::Dead => "dead",
        }
    }
}

/// The state of a container (`State` in docker's inspect).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct State {
    /// Schema version.
    pub schema: u32,
    /// Status.
    pub status: Status,
    /// Pid of the container's process on the host (0 when not running).
    pub pid: i32,
    /// Exit code of the last run.
    pub exit_code: i32,
    /// Why the last start failed.
    pub error: String,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339.
    pub finished_at: String,
    /// Restarts done by the policy.
    pub restart_count: u32,
    /// The last exit was the OOM killer's.
    pub oom_killed: bool,
    /// The user stopped it (policies do not restart it).
    pub manual_stop: bool,
    /// Pid of the monitor process (0: none).
    pub monitor_pid: i32,
    /// Start time of the monitor (/proc/<pid>/stat field 22), against pid reuse.
    pub monitor_start: u64,
    /// Health check results (containers with a check).
    pub health: Option<crate::health::Health>,
}

impl Default for State {
    fn default() -> State {
        State {
            schema: SCHEMA,
            status: Status::Created,
            pid: 0,
            exit_code: 0,
            error: String::new(),
            started_at: ZERO_TIME.into(),
            finished_at: ZERO_TIME.into(),
            restart_count: 0,
            oom_killed: false,
            manual_stop: false,
            monitor_pid: 0,
            monitor_start: 0,
            health: None,
        }
    }
}

/// Start time of a process (clock ticks since boot), `None` if it is gone.
pub fn process_start(pid: i32) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // the command may hold spaces and parentheses: fields start after the last ')'
    let rest = &stat[stat.rfind(')')? + 2..];
    let state = rest.split(' ').next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    rest.split(' ').nth(19)?.parse().ok()
}

impl State {
    /// Whether the monitor recorded in the state is still alive.
    pub fn monitor_alive(&self) -> bool {
        self.monitor_pid > 0 && process_start(self.monitor_pid) == Some(self.monitor_start)
    }

    /// Running or paused or restarting, with a live monitor.
    pub fn is_active(&self) -> bool {
        matches!(
            self.status,
            Status::Running | Status::Paused | Status::Restarting
        ) && self.monitor_alive()
    }
}

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let mut f = fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path)
}

/// The containers part of berth's root.
#[derive(Clone, Debug)]
pub struct Store {
    dir: PathBuf,
    names: PathBuf,
}

/// An exclusive lock on one container's directory (released on drop).
#[derive(Debug)]
pub struct Lock(#[allow(dead_code)] fs::File);

impl Store {
    /// Opens (creating) `<root>/containers` and `<root>/names`.
    pub fn open(root: &Path) -> Result<Store> {
        let dir = root.join("containers");
        let names = root.join("names");
        for d in [&dir, &names] {
            fs::create_dir_all(d).map_err(|e| Error::Io(format!("create {}", d.display()), e))?;
            // 0700: containers' upper layers may hold setuid files (CVE-2021-41091)
            fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o700))
                .map_err(|e| Error::Io(format!("chmod {}", d.display()), e))?;
        }
        Ok(Store { dir, names })
    }

    /// A container's directory.
    pub fn dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Takes the container lock.
    pub fn lock(&self, id: &str) -> Result<Lock> {
        let p = self.dir(id).join("lock");
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    Error::NotFound(format!("No such container: {id}"))
                } else {
                    Error::Io(format!("open {}", p.display()), e)
                }
            })?;
        rustix::fs::flock(f.as_fd(), rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| Error::Io(format!("lock {}", p.display()), e.into()))?;
        Ok(Lock(f))
    }

    /// Every container id.
    pub fn ids(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()))
            .filter(|n| self.dir(n).join("container.json").is_file())
            .collect();
        v.sort();
        v
    }

    /// Reads a container's record.
    pub fn record(&self, id: &str) -> Result<Record> {
        let p = self.dir(id).join("container.json");
        let b = fs::read(&p).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::NotFound(format!("No such container: {id}"))
            } else {
                Error::Io(format!("read {}", p.display()), e)
            }
        })?;
        let r: Record = serde_json::from_slice(&b)
            .map_err(|e| Error::Invalid(format!("{}: {e}", p.display())))?;
        if r.schema > SCHEMA {
            return Err(Error::Invalid(format!(
                "{}: schema {} is newer than this berth ({SCHEMA})",
                p.display(),
                r.schema
            )));
        }
        Ok(r)
    }

    /// Writes a container's record.
    pub fn save_record(&self, r: &Record) -> Result<()> {
        let p = self.dir(&r.id).join("container.json");
        let b = serde_json::to_vec_pretty(r).map_err(|e| Error::Invalid(e.to_string()))?;
        write_atomic(&p, &b).map_err(|e| Error::Io(format!("write {}", p.display()), e))
    }

    /// Reads a container's state as recorded.
    pub fn state_raw(&self, id: &str) -> Result<State> {
        let p = self.dir(id).join("state.json");
        match fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| Error::Invalid(format!("{}: {e}", p.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if self.dir(id).is_dir() {
                    Ok(State::default())
                } else {
                    Err(Error::NotFound(format!("No such container: {id}")))
                }
            }
            Err(e) => Err(Error::Io(format!("read {}", p.display()), e)),
        }
    }

    /// Writes a container's state (hold its lock).
    pub fn save_state(&self, id: &str, s: &State) -> Result<()> {
        let p = self.dir(id).join("state.json");
        let b = serde_json::to_vec(s).map_err(|e| Error::Invalid(e.to_string()))?;
        write_atomic(&p, &b).map_err(|e| Error::Io(format!("write {}", p.display()), e))
    }

    /// Changes a container's state under its lock.
    pub fn update_state<T>(&self, id: &str, f: impl FnOnce(&mut State) -> T) -> Result<T> {
        let _l = self.lock(id)?;
        let mut s = self.state_raw(id)?;
        let out = f(&mut s);
        self.save_state(id, &s)?;
        Ok(out)
    }

    /// Takes `name` for `id`; a conflict names the holder as docker does.
    pub fn claim_name(&self, name: &str, id: &str) -> Result<()> {
        valid_name(name)?;
        let link = self.names.join(name);
        match std::os::unix::fs::symlink(id, &link) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let holder = fs::read_link(&link)
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if !holder.is_empty() && self.is_gone(&holder) {
                    // left by a container that is gone: take it over
                    let _ = fs::remove_file(&link);
                    return self.claim_name(name, id);
                }
                Err(Error::Conflict(format!(
                    "Conflict. The container name \"/{name}\" is already in use by container \"{holder}\". \
                     You have to remove (or rename) that container to be able to reuse that name."
                )))
            }
            Err(e) => Err(Error::Io(format!("create {}", link.display()), e)),
        }
    }

    /// Makes a new container's directory with a mark naming the creating
    /// process (pid and start time), before its name is claimed.
    pub fn mark_creating(&self, id: &str) -> Result<()> {
        let dir = self.dir(id);
        fs::create_dir_all(&dir).map_err(|e| Error::Io(format!("create {}", dir.display()), e))?;
        let me = std::process::id() as i32;
        let start = process_start(me).unwrap_or(0);
        fs::write(dir.join(CREATING), format!("{me} {start}\n"))
            .map_err(|e| Error::Io("mark the container as being created".into(), e))
    }

    /// Whether the container a name points at is gone: no record, and no
    /// live process still creating it.
    fn is_gone(&self, id: &str) -> bool {
        let dir = self.dir(id);
        if dir.join("container.json").is_file() {
            return false;
        }
        match fs::read_to_string(dir.join(CREATING)) {
            Ok(s) => {
                let mut it = s.split_whitespace();
                let pid: i32 = it.next().and_then(|p| p.parse().ok()).unwrap_or(0);
                let start: u64 = it.next().and_then(|p| p.parse().ok()).unwrap_or(0);
                process_start(pid) != Some(start)
            }
            Err(_) => true,
        }
    }

    /// Gives `name` up if `id` holds it.
    pub fn release_name(&self, name: &str, id: &str) {
        let link = self.names.join(name);
        if fs::read_link(&link).is_ok_and(|p| p.as_os_str() == id) {
            let _ = fs::remove_file(&link);
        }
    }

    /// The id `name` points at.
    pub fn by_name(&self, name: &str) -> Option<String> {
        let name = name.strip_prefix('/').unwrap_or(name);
        if valid_name(name).is_err() {
            return None;
        }
        let id = fs::read_link(self.names.join(name)).ok()?;
        let id = id.to_string_lossy().into_owned();
        self.dir(&id).join("container.json").is_file().then_some(id)
    }

    /// Resolves a full id, a name or a unique id prefix, as docker does.
    pub fn resolve(&self, key: &str) -> Result<String> {
        if key.is_empty() {
            return Err(Error::NotFound("No such container: ".into()));
        }
        if key.len() == 64 && self.dir(key).join("container.json").is_file() {
            return Ok(key.to_owned());
        }
        if let Some(id) = self.by_name(key) {
            return Ok(id);
        }
        if key.bytes().all(|b| b.is_ascii_hexdigit()) {
            let key = key.to_ascii_lowercase();
            let hits: Vec<String> = self
                .ids()
                .into_iter()
                .filter(|i| i.starts_with(&key))
                .collect();
            match hits.len() {
                1 => return Ok(hits.into_iter().next().unwrap_or_default()),
                0 => {}
                _ => {
                    return Err(Error::Invalid(format!(
                        "multiple IDs found with provided prefix: {key}"
                    )));
                }
            }
        }
        Err(Error::NotFound(format!("No such container: {key}")))
    }

    /// Removes a container's directory and name (the caller has stopped it).
    pub fn remove(&self, r: &Record) -> Result<()> {
        self.release_name(&r.name, &r.id);
        // the exec index entries of this container
        if let Some(root) = self.dir.parent() {
            for e in fs::read_dir(root.join("execs"))
                .into_iter()
                .flatten()
                .flatten()
            {
                if fs::read_link(e.path()).is_ok_and(|t| t.as_os_str() == r.id.as_str()) {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        let dir = self.dir(&r.id);
        unmount_shm(&dir);
        berth_image::unpack::remove_tree(&dir)
            .map_err(|e| Error::Io(format!("remove {}", dir.display()), e))
    }
}

/// Where a container with `--ipc shareable` keeps its /dev/shm on the host
/// while it runs, so that others can bind it (`--ipc container:`).
pub const SHM_DIR: &str = "shm";

/// Mounts the host-side /dev/shm of a shareable container (a tmpfs of
/// `size` bytes at `<dir>/shm`), unless a previous run left it mounted.
pub fn mount_shm(dir: &Path, size: i64) -> std::io::Result<()> {
    use rustix::mount::{MountFlags, mount};
    let at = dir.join(SHM_DIR);
    fs::create_dir_all(&at)?;
    let parent = rustix::fs::stat(dir)?;
    if rustix::fs::stat(&at)?.st_dev != parent.st_dev {
        return Ok(());
    }
    let size = if size <= 0 { 64 << 20 } else { size };
    mount(
        "shm",
        &at,
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        &*std::ffi::CString::new(format!("mode=1777,size={size}")).unwrap_or_default(),
    )?;
    Ok(())
}

/// Unmounts a container's host-side /dev/shm (idempotent).
pub fn unmount_shm(dir: &Path) {
    let at = dir.join(SHM_DIR);
    if at.exists() {
        let _ = rustix::mount::unmount(&at, rustix::mount::UnmountFlags::DETACH);
    }
}

/// The mark of a container still being created (`pid start-time`).
pub const CREATING: &str = "creating";

/// Docker's container name rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(name: &str) -> Result<()> {
    let ok = name.len() >= 2
        && name.len() <= 253
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )))
    }
}

const ADJECTIVES: &[&str] = &[
    "amber", "bold", "brisk", "calm", "clever", "cosmic", "crisp", "daring", "eager", "fair",
    "fleet", "gentle", "glad", "golden", "hardy", "jolly", "keen", "lively", "lucid", "merry",
    "mighty", "nimble", "noble", "plucky", "proud", "quick", "quiet", "rapid", "serene", "sharp",
    "sleek", "steady", "sunny", "swift", "tidy", "vivid", "warm", "witty", "young", "zesty",
];
const NOUNS: &[&str] = &[
    "anchor", "barge", "beacon", "buoy", "cabin", "canal", "cargo", "compass", "crane", "current",
    "delta", "dock", "ferry", "fjord", "gale", "harbor", "helm", "island", "jetty", "keel",
    "lagoon", "mast", "mooring", "oar", "pier", "quay", "reef", "rudder", "sail", "schooner",
    "shoal", "skiff", "sloop", "tide", "tugboat", "wake", "wharf", "yacht", "yawl", "zephyr",
];

/// A random `adjective_noun` name (docker's style, berth's words).
pub fn random_name(seed: &[u8]) -> String {
    let a = seed.first().copied().unwrap_or(0) as usize;
    let b = seed.get(1).copied().unwrap_or(0) as usize;
    format!(
        "{}_{}",
        ADJECTIVES[a % ADJECTIVES.len()],
        NOUNS[b % NOUNS.len()]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies_like_docker() {
        assert!(
            RestartPolicy::parse("on-failure:3")
                .unwrap()
                .should_restart(1, 2, false)
        );
        assert!(
            !RestartPolicy::parse("on-failure:3")
                .unwrap()
                .should_restart(1, 3, false)
        );
        assert!(
            !RestartPolicy::parse("on-failure")
                .unwrap()
                .should_restart(0, 0, false)
        );
        assert!(
            RestartPolicy::parse("always")
                .unwrap()
                .should_restart(0, 99, false)
        );
        assert!(
            !RestartPolicy::parse("always")
                .unwrap()
                .should_restart(0, 0, true)
        );
        assert!(
            !RestartPolicy::parse("no")
                .unwrap()
                .should_restart(1, 0, false)
        );
        assert!(RestartPolicy::parse("always:2").is_err());
        assert!(RestartPolicy::parse("sometimes").is_err());
        assert!(RestartPolicy::parse("on-failure:x").is_err());
    }

    #[test]
    fn sizes_and_log_options() {
        assert_eq!(parse_size("10m"), Some(10 << 20));
        assert_eq!(parse_size("1k"), Some(1024));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("x"), None);
        let mut l = LogConfig::default();
        l.config.insert("max-file".into(), "3".into());
        assert!(l.validate().is_err(), "max-file needs max-size");
        l.config.insert("max-size".into(), "1k".into());
        assert_eq!(l.rotation().unwrap(), Some((1024, 3)));
        l.config.insert("bogus".into(), "1".into());
        assert!(l.validate().is_err());
    }

    #[test]
    fn names_are_claimed_once_and_resolved() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path()).unwrap();
        let id = "a".repeat(64);
        fs::create_dir_all(s.dir(&id)).unwrap();
        let r = Record {
            id: id.clone(),
            name: "web".into(),
            schema: SCHEMA,
            ..Default::default()
        };
        s.save_record(&r).unwrap();
        s.claim_name("web", &id).unwrap();
        assert!(matches!(
            s.claim_name("web", &"b".repeat(64)),
            Err(Error::Conflict(_))
        ));
        assert!(s.claim_name("-bad", &id).is_err());
        assert!(s.claim_name("../x", &id).is_err());
        assert_eq!(s.resolve("web").unwrap(), id);
        assert_eq!(s.resolve("/web").unwrap(), id);
        assert_eq!(s.resolve("aaaa").unwrap(), id);
        assert!(matches!(s.resolve("nosuch"), Err(Error::NotFound(_))));
        s.remove(&r).unwrap();
        assert!(s.resolve("web").is_err());
        s.claim_name("web", &"b".repeat(64)).unwrap();
    }

    #[test]
    fn dead_processes_have_no_start_time() {
        assert!(process_start(std::process::id() as i32).is_some());
        assert!(process_start(0).is_none());
        assert!(process_start(i32::MAX).is_none());
    }
}
