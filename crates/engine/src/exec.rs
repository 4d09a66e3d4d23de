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

/// The schema of an exec's record (schema 1 used docker's PascalCase
/// names; it is read through the aliases).
pub const EXEC_SCHEMA: u32 = 2;

/// An exec: what was asked for, and its state.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ExecRecord {
    /// Schema version.
    #[serde(alias = "Schema")]
    pub schema: u32,
    /// 64 hex digits.
    #[serde(alias = "ID")]
    pub id: String,
    /// The container.
    #[serde(alias = "ContainerID")]
    pub container_id: String,
    /// Command and arguments.
    #[serde(alias = "Cmd")]
    pub cmd: Vec<String>,
    /// Extra environment.
    #[serde(alias = "Env")]
    pub env: Vec<String>,
    /// `-u` (empty: the container's user).
    #[serde(alias = "User")]
    pub user: String,
    /// `-w` (empty: the container's working directory).
    #[serde(alias = "WorkingDir")]
    pub working_dir: String,
    /// `-t`.
    #[serde(alias = "Tty")]
    pub tty: bool,
    /// `-i`.
    #[serde(alias = "AttachStdin")]
    pub attach_stdin: bool,
    /// Attach stdout.
    #[serde(alias = "AttachStdout")]
    pub attach_stdout: bool,
    /// Attach stderr.
    #[serde(alias = "AttachStderr")]
    pub attach_stderr: bool,
    /// Terminal size (height, width), also from a resize before start.
    #[serde(alias = "ConsoleSize")]
    pub console_size: Option<(u16, u16)>,
    /// The process runs.
    #[serde(alias = "Running")]
    pub running: bool,
    /// Exit code once it ended (None: never started or still running).
    #[serde(alias = "ExitCode")]
    pub exit_code: Option<i32>,
    /// Host pid while it runs.
    #[serde(alias = "Pid")]
    pub pid: i32,
    /// It was started once (an exec runs once).
    #[serde(alias = "Started")]
    pub started: bool,
    /// Why it failed to start.
    #[serde(alias = "Error")]
    pub error: String,
    /// `exec --privileged`: every capability for this process.
    #[serde(alias = "Privileged")]
    pub privileged: bool,
    /// The key sequence that detaches an attached client (`ctrl-p,ctrl-q`
    /// when empty), as given.
    pub detach_keys: String,
}

fn exec_dir(dir: &Path) -> PathBuf {
    dir.join("exec")
}

/// The exec's attach socket.
pub fn socket_path(dir: &Path, eid: &str) -> PathBuf {
    exec_dir(dir).join(format!("{}.sock", eid.get(..16).unwrap_or(eid)))
}

/// The exec's console socket (while its terminal is made).
pub fn console_path(dir: &Path, eid: &str) -> PathBuf {
    exec_dir(dir).join(format!("{}.console", eid.get(..16).unwrap_or(eid)))
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
    let r: ExecRecord =
        serde_json::from_slice(&b).map_err(|e| Error::Internal(format!("exec {eid}: {e}")))?;
    if r.schema > EXEC_SCHEMA {
        return Err(Error::Internal(format!(
            "exec {eid}: schema {} is newer than this berth ({EXEC_SCHEMA})",
            r.schema
        )));
    }
    Ok(r)
}

fn save(dir: &Path, r: &ExecRecord) -> Result<()> {
    let p = json_path(dir, &r.id);
    let tmp = p.with_extension("json.tmp");
    let mut r = r.clone();
    r.schema = EXEC_SCHEMA;
    let b = serde_json::to_vec(&r).map_err(|e| Error::Internal(e.to_string()))?;
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
    let spec = crate::oci::read(&dir.join("config.json"))?;
    let mut p = spec
        .process()
        .clone()
        .ok_or_else(|| Error::Internal("config.json has no process".into()))?;
    if r.cmd.is_empty() {
        return Err(Error::Invalid("No exec command specified".into()));
    }
    p.set_args(Some(r.cmd.clone())).set_terminal(Some(r.tty));
    if r.privileged {
        // docker: the exec gets every capability; the container's seccomp
        // profile and namespaces stay
        let mut caps = p.capabilities().clone().unwrap_or_default();
        let all = crate::oci::capabilities(&["ALL".to_owned()], &[]).map_err(Error::Invalid)?;
        let set = crate::oci::cap_set(&all).map_err(Error::Invalid)?;
        caps.set_bounding(Some(set.clone()))
            .set_effective(Some(set.clone()))
            .set_permitted(Some(set));
        p.set_capabilities(Some(caps));
    }
    match r.console_size.filter(|(h, w)| *h > 0 && *w > 0) {
        Some((h, w)) => {
            let b: oci_spec::runtime::Box =
                serde_json::from_value(serde_json::json!({"height": h, "width": w}))
                    .map_err(|e| Error::Internal(e.to_string()))?;
            p.set_console_size(Some(b));
        }
        None => {
            p.set_console_size(None);
        }
    }
    let mut env: Vec<String> = p.env().clone().unwrap_or_default();
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
    if !r.working_dir.is_empty() {
        if !r.working_dir.starts_with('/') {
            return Err(Error::Invalid(format!(
                "the working directory '{}' is invalid, it needs to be an absolute path",
                r.working_dir
            )));
        }
        p.set_cwd(PathBuf::from(&r.working_dir));
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
        if let Ok(rec) = fs::read(dir.join("container.json"))
            .map_err(|e| e.to_string())
            .and_then(|b| crate::container::migrate::record(&b))
        {
            crate::user::add_groups(&mut u, &rec.group_add, group.as_deref())
                .map_err(Error::Invalid)?;
        }
        let mut ou = p.user().clone();
        ou.set_uid(u.uid)
            .set_gid(u.gid)
            .set_additional_gids(Some(u.additional_gids.clone()));
        p.set_user(ou);
        if let Some(h) = u.home.filter(|h| !h.is_empty())
            && !r.env.iter().any(|e| e.starts_with("HOME="))
        {
            env.retain(|e| !e.starts_with("HOME="));
            env.push(format!("HOME={h}"));
        }
    }
    p.set_env(Some(env));
    let path = exec_dir(dir).join(format!("{}.process.json", r.id));
    fs::write(
        &path,
        serde_json::to_vec(&p).map_err(|e| Error::Internal(e.to_string()))?,
    )
    .map_err(|e| Error::Io("write the exec's process.json".into(), e))?;
    Ok(path)
}

/// Exit code of an exec that could not start: always 126 (dockerd's,
/// whatever the reason: missing program, bad directory, unknown user).
pub const START_FAILURE_CODE: i32 = 126;

/// dockerd's text for an exec that could not start (`msg`: berth's
/// reason). A user or group the image does not know is reported as is;
/// what failed in the runtime as runc's error behind dockerd's prefix,
/// with Go's lowercase errno texts.
pub fn failure_message(msg: &str) -> String {
    if msg.starts_with("unable to find user") || msg.starts_with("unable to find group") {
        return msg.to_owned();
    }
    let mut m = msg.to_owned();
    // " (os error N)" after an errno text
    while let Some((head, tail)) = m.split_once(" (os error ") {
        let Some((_, rest)) = tail.split_once(')') else {
            break;
        };
        m = format!("{head}{rest}");
    }
    for errno in [
        "No such file or directory",
        "Permission denied",
        "Not a directory",
        "Exec format error",
        "Is a directory",
    ] {
        m = m.replace(errno, &errno.to_ascii_lowercase());
    }
    if let Some(rest) = m.strip_prefix("working directory ")
        && let Some((dir, why)) = rest.rsplit_once(": ")
    {
        m = format!("chdir to cwd (\"{dir}\") set in config.json failed: {why}");
    }
    format!("OCI runtime exec failed: exec failed: unable to start container process: {m}: unknown")
}

/// The ids of a container's execs (in its directory).
pub fn ids(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(exec_dir(dir))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".json")
                .filter(|n| n.len() == 64 && !n.ends_with(".process"))
                .map(str::to_owned)
        })
        .collect();
    v.sort();
    v
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
    ) -> Option<crate::streams::AttachStream> {
        let dir = self.exec_home(eid).ok()?;
        let tty = load(&dir, eid).map(|r| r.tty).unwrap_or(false);
        monitor::connect_socket(
            &socket_path(&dir, eid),
            &monitor::Request::Attach {
                stdin,
                stdout,
                stderr,
            },
        )
        .map(|socket| crate::streams::AttachStream { socket, tty })
    }

    /// `POST /exec/{id}/resize`: may come before the exec runs (the docker
    /// CLI sends it at the same time as start), so the size is kept too.
    pub fn exec_resize(&self, eid: &str, height: u16, width: u16) -> Result<()> {
        let dir = self.exec_home(eid)?;
        update(&dir, eid, |r| r.console_size = Some((height, width)))?;
        let _ = monitor::connect_socket(
            &socket_path(&dir, eid),
            &monitor::Request::Resize(height, width),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_failures_read_as_dockerd_s() {
        assert_eq!(
            failure_message(
                "exec: \"/nonexistent\": stat /nonexistent: No such file or directory (os error 2)"
            ),
            "OCI runtime exec failed: exec failed: unable to start container process: exec: \
             \"/nonexistent\": stat /nonexistent: no such file or directory: unknown"
        );
        assert_eq!(
            failure_message("working directory /nope: No such file or directory (os error 2)"),
            "OCI runtime exec failed: exec failed: unable to start container process: chdir to \
             cwd (\"/nope\") set in config.json failed: no such file or directory: unknown"
        );
        let user = "unable to find user x: no matching entries in passwd file";
        assert_eq!(failure_message(user), user);
        // odd input: no panic
        assert!(failure_message("a (os error ").contains("a (os error "));
    }
}
