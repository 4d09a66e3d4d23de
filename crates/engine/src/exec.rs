//! `docker exec`: a process run in a running container, with its own
//! monitor (`berth monitor ROOT ID --exec EXEC_ID`, single-threaded, as the
//! container's) that owns its stdio or terminal, serves attach and resize
//! on `exec/<id>.sock`, and records the exit code in `exec/<id>.json`
//! before it closes the streams (the docker CLI reads the code once, right
//! after the stream ends).
//!
//! Exec ids are indexed by `<root>/execs/<exec id>` → container id
//! (symlinks; dangling ones are dropped when met).

use std::fs;
use std::io::Read;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::monitor;
use crate::run::{Engine, Error, Result, new_id};

/// What `POST /containers/{id}/exec` asks for, and the exec's state.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct ExecRecord {
    /// 64 hex digits.
    #[serde(rename = "ID")]
    pub id: String,
    /// The container.
    #[serde(rename = "ContainerID")]
    pub container_id: String,
    /// Command and arguments.
    pub cmd: Vec<String>,
    /// Extra environment.
    pub env: Vec<String>,
    /// `-u` (empty: the container's user).
    pub user: String,
    /// `-w` (empty: the container's working directory).
    pub working_dir: String,
    /// `-t`.
    pub tty: bool,
    /// `-i`.
    pub attach_stdin: bool,
    /// Attach stdout.
    pub attach_stdout: bool,
    /// Attach stderr.
    pub attach_stderr: bool,
    /// Terminal size (height, width), also from a resize before start.
    pub console_size: Option<(u16, u16)>,
    /// The process runs.
    pub running: bool,
    /// Exit code once it ended (None: never started or still running).
    pub exit_code: Option<i32>,
    /// Host pid while it runs.
    pub pid: i32,
    /// It was started once (an exec runs once).
    pub started: bool,
    /// Why it failed to start.
    pub error: String,
    /// `exec --privileged`: every capability for this process.
    pub privileged: bool,
}

fn exec_dir(dir: &Path) -> PathBuf {
    dir.join("exec")
}

/// The exec's attach socket.
pub fn socket_path(dir: &Path, eid: &str) -> PathBuf {
    exec_dir(dir).join(format!("{}.sock", &eid[..eid.len().min(16)]))
}

/// The exec's console socket (while its terminal is made).
pub fn console_path(dir: &Path, eid: &str) -> PathBuf {
    exec_dir(dir).join(format!("{}.console", &eid[..eid.len().min(16)]))
}

fn json_path(dir: &Path, eid: &str) -> PathBuf {
    exec_dir(dir).join(format!("{eid}.json"))
}

/// Reads an exec's record from the container directory `dir`.
pub fn load(dir: &Path, eid: &str) -> Result<ExecRecord> {
    let p = json_path(dir, eid);
    let b = fs::read(&p).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::NotFound(format!("No such exec instance: {eid}"))
        } else {
            Error::Io(format!("read {}", p.display()), e)
        }
    })?;
    serde_json::from_slice(&b).map_err(|e| Error::Invalid(format!("exec {eid}: {e}")))
}

fn save(dir: &Path, r: &ExecRecord) -> Result<()> {
    let p = json_path(dir, &r.id);
    let tmp = p.with_extension("json.tmp");
    let b = serde_json::to_vec(r).map_err(|e| Error::Invalid(e.to_string()))?;
    fs::write(&tmp, b).map_err(|e| Error::Io("write the exec record".into(), e))?;
    fs::rename(&tmp, &p).map_err(|e| Error::Io("write the exec record".into(), e))
}

/// Forgets the execs of a container's earlier runs that have ended (their
/// records, logs and index entries under `root`): as docker, a container
/// starts again with none, so they never pile up.
pub(crate) fn forget_ended(root: &Path, dir: &Path) {
    let Ok(list) = fs::read_dir(exec_dir(dir)) else {
        return;
    };
    for e in list.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(eid) = name.strip_suffix(".json") else {
            continue;
        };
        if eid.ends_with(".process") {
            continue;
        }
        let alive = load(dir, eid).is_ok_and(|r| {
            r.running && r.pid > 0 && Path::new(&format!("/proc/{}", r.pid)).exists()
        });
        if !alive {
            forget(root, dir, eid);
        }
    }
}

/// Removes every file of exec `eid` (its record, process, pid, log and
/// sockets, and its index entry).
pub(crate) fn forget(root: &Path, dir: &Path, eid: &str) {
    for f in [
        json_path(dir, eid),
        exec_dir(dir).join(format!("{eid}.process.json")),
        pid_file(dir, eid),
        exec_dir(dir).join(format!("{eid}.log")),
        socket_path(dir, eid),
        console_path(dir, eid),
        root.join("execs").join(eid),
    ] {
        let _ = fs::remove_file(f);
    }
}

/// Changes an exec's record under its lock.
pub fn update(dir: &Path, eid: &str, f: impl FnOnce(&mut ExecRecord)) -> Result<ExecRecord> {
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(exec_dir(dir).join(".lock"))
        .map_err(|e| Error::Io("open the exec lock".into(), e))?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| Error::Io("lock the execs".into(), e.into()))?;
    let mut r = load(dir, eid)?;
    f(&mut r);
    save(dir, &r)?;
    Ok(r)
}

/// Writes the exec's OCI process (the container's process with the
/// exec's command, environment, user, directory and terminal) and returns
/// its path. `pid` is the container's init, whose root holds the
/// /etc/passwd that `-u name` resolves against.
pub(crate) fn write_process(dir: &Path, r: &ExecRecord, pid: i32) -> Result<PathBuf> {
    let spec: serde_json::Value = serde_json::from_slice(
        &fs::read(dir.join("config.json")).map_err(|e| Error::Io("read config.json".into(), e))?,
    )
    .map_err(|e| Error::Invalid(format!("config.json: {e}")))?;
    let mut p = spec["process"].clone();
    if r.cmd.is_empty() {
        return Err(Error::Invalid("No exec command specified".into()));
    }
    p["args"] = serde_json::json!(r.cmd);
    p["terminal"] = serde_json::json!(r.tty);
    if r.privileged {
        // docker: the exec gets every capability; the container's seccomp
        // profile and namespaces stay
        let all = crate::spec::capabilities(&["ALL".to_owned()], &[]).map_err(Error::Invalid)?;
        p["capabilities"] =
            serde_json::json!({"bounding": all, "effective": all, "permitted": all});
    }
    if let Some((h, w)) = r.console_size.filter(|(h, w)| *h > 0 && *w > 0) {
        p["consoleSize"] = serde_json::json!({"height": h, "width": w});
    } else if let Some(o) = p.as_object_mut() {
        o.remove("consoleSize");
    }
    let mut env: Vec<String> = p["env"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    for e in &r.env {
        let key = e.split('=').next().unwrap_or(e);
        env.retain(|x| x.split('=').next() != Some(key));
        if e.contains('=') {
            env.push(e.clone());
        }
    }
    if r.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    p["env"] = serde_json::json!(env);
    if !r.working_dir.is_empty() {
        if !r.working_dir.starts_with('/') {
            return Err(Error::Invalid(format!(
                "the working directory '{}' is invalid, it needs to be an absolute path",
                r.working_dir
            )));
        }
        p["cwd"] = serde_json::json!(r.working_dir);
    }
    if !r.user.is_empty() {
        let read = |path: &str| -> Option<String> {
            let root = rustix::fs::open(
                format!("/proc/{pid}/root"),
                rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY,
                rustix::fs::Mode::empty(),
            )
            .ok()?;
            let fd = berth_sys::paths::open_flags(
                root.as_fd(),
                Path::new(path),
                rustix::fs::OFlags::RDONLY,
            )
            .ok()?;
            let mut s = String::new();
            fs::File::from(fd)
                .take(4 << 20)
                .read_to_string(&mut s)
                .ok()?;
            Some(s)
        };
        let group = read("/etc/group");
        let mut u = crate::user::resolve(&r.user, read("/etc/passwd").as_deref(), group.as_deref())
            .map_err(Error::Invalid)?;
        // the container's --group-add applies to exec -u as well (docker)
        let rec: Option<crate::container::Record> = fs::read(dir.join("container.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        if let Some(rec) = rec {
            crate::user::add_groups(&mut u, &rec.host_options.group_add, group.as_deref())
                .map_err(Error::Invalid)?;
        }
        p["user"] =
            serde_json::json!({"uid": u.uid, "gid": u.gid, "additionalGids": u.additional_gids});
        if let Some(h) = u.home.filter(|h| !h.is_empty()) {
            let mut env: Vec<String> = serde_json::from_value(p["env"].clone()).unwrap_or_default();
            if !r.env.iter().any(|e| e.starts_with("HOME=")) {
                env.retain(|e| !e.starts_with("HOME="));
                env.push(format!("HOME={h}"));
            }
            p["env"] = serde_json::json!(env);
        }
    }
    let path = exec_dir(dir).join(format!("{}.process.json", r.id));
    fs::write(
        &path,
        serde_json::to_vec(&p).map_err(|e| Error::Invalid(e.to_string()))?,
    )
    .map_err(|e| Error::Io("write the exec's process.json".into(), e))?;
    Ok(path)
}

/// The pid file the runtime writes for an exec.
pub(crate) fn pid_file(dir: &Path, eid: &str) -> PathBuf {
    exec_dir(dir).join(format!("{eid}.pid"))
}

impl Engine {
    fn execs_index(&self) -> PathBuf {
        self.root.join("execs")
    }

    /// `POST /containers/{id}/exec`: records an exec (nothing runs yet).
    pub fn exec_create(&self, key: &str, mut r: ExecRecord) -> Result<String> {
        let c = self.container(key)?;
        let cid = c.record.id.clone();
        if c.state.status == crate::Status::Paused {
            return Err(Error::Conflict(format!(
                "Container {cid} is paused, unpause the container before exec"
            )));
        }
        if !c.state.is_active() || c.state.status == crate::Status::Restarting {
            return Err(Error::Conflict(format!("Container {cid} is not running")));
        }
        if r.cmd.is_empty() {
            return Err(Error::Invalid("No exec command specified".into()));
        }
        let dir = self.store.dir(&cid);
        let ed = exec_dir(&dir);
        fs::create_dir_all(&ed).map_err(|e| Error::Io("create the exec directory".into(), e))?;
        let eid = new_id()?;
        r.id = eid.clone();
        r.container_id = cid.clone();
        r.running = false;
        r.exit_code = None;
        r.started = false;
        save(&dir, &r)?;
        let idx = self.execs_index();
        fs::create_dir_all(&idx).map_err(|e| Error::Io("create the exec index".into(), e))?;
        std::os::unix::fs::symlink(&cid, idx.join(&eid))
            .map_err(|e| Error::Io("index the exec".into(), e))?;
        self.event(
            &c.record,
            &format!("exec_create: {}", r.cmd.join(" ")),
            &[("execID", eid.clone())],
        );
        Ok(eid)
    }

    /// The container directory an exec belongs to.
    fn exec_home(&self, eid: &str) -> Result<PathBuf> {
        let missing = || Error::NotFound(format!("No such exec instance: {eid}"));
        if eid.is_empty() || !eid.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(missing());
        }
        let link = self.execs_index().join(eid);
        let cid = fs::read_link(&link).map_err(|_| missing())?;
        let dir = self.store.dir(&cid.to_string_lossy());
        if !json_path(&dir, eid).exists() {
            let _ = fs::remove_file(&link);
            return Err(missing());
        }
        Ok(dir)
    }

    /// `GET /exec/{id}/json`.
    pub fn exec_inspect(&self, eid: &str) -> Result<ExecRecord> {
        let dir = self.exec_home(eid)?;
        let mut r = load(&dir, eid)?;
        // an exec whose monitor died while it ran is over
        if r.running && !socket_path(&dir, eid).exists() {
            r.running = false;
        }
        Ok(r)
    }

    /// `POST /exec/{id}/start`: starts the exec's monitor; `before_start`
    /// runs once it listens and before the process runs (attach there).
    pub fn exec_start(&self, eid: &str, before_start: impl FnOnce() -> Result<()>) -> Result<()> {
        let dir = self.exec_home(eid)?;
        let mut already = false;
        let r = update(&dir, eid, |r| {
            already = r.started;
            r.started = true;
        })?;
        if already {
            return Err(Error::Conflict(format!(
                "Error: Exec command {eid} has already run"
            )));
        }
        let c = self.container(&r.container_id)?;
        if !c.state.is_active() || c.state.status != crate::Status::Running {
            return Err(Error::Conflict(format!(
                "Container {} is not running",
                r.container_id
            )));
        }
        monitor::spawn_exec(&self.root, &r.container_id, eid, before_start)
    }

    /// Connects to a started exec's streams.
    pub fn exec_attach(
        &self,
        eid: &str,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    ) -> Option<std::os::unix::net::UnixStream> {
        let dir = self.exec_home(eid).ok()?;
        monitor::connect_socket(
            &socket_path(&dir, eid),
            &serde_json::json!({"attach": {"stdin": stdin, "stdout": stdout, "stderr": stderr}}),
        )
    }

    /// `POST /exec/{id}/resize`: may come before the exec runs (the docker
    /// CLI sends it at the same time as start), so the size is kept too.
    pub fn exec_resize(&self, eid: &str, height: u16, width: u16) -> Result<()> {
        let dir = self.exec_home(eid)?;
        update(&dir, eid, |r| r.console_size = Some((height, width)))?;
        let _ = monitor::connect_socket(
            &socket_path(&dir, eid),
            &serde_json::json!({"resize": [height, width]}),
        );
        Ok(())
    }
}
