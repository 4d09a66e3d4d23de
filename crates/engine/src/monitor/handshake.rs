//! The start-up handshake between the monitor and the process that
//! spawns it (over the monitor's stdin and stdout): `created`, then `go`
//! once the spawner's attach clients are connected, then `ok` or
//! `error: <message>`; the spawner's side (`spawn`, `spawn_exec`).

use super::*;

/// Exit code docker gives a container whose start failed, by message.
pub fn start_failure_code(msg: &str) -> i32 {
    let m = msg.to_ascii_lowercase();
    if m.contains("no such file or directory") || m.contains("not found") {
        127
    } else if m.contains("permission denied") || m.contains("exec format error") {
        126
    } else {
        125
    }
}

impl Monitor {
    /// Waits for `go` from the spawner while serving clients. False if the
    /// spawner went away.
    pub(super) fn await_go(&mut self) -> Result<bool> {
        let Some(mut ctl) = self.ctl_in.take() else {
            return Ok(true);
        };
        loop {
            let mut fds = vec![
                PollFd::new(&ctl, PollFlags::IN),
                PollFd::new(&self.listener, PollFlags::IN),
            ];
            match rustix::event::poll(&mut fds, None) {
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(sys_err("poll", e)),
                Ok(_) => {}
            }
            let ctl_ready = !fds[0].revents().is_empty();
            let l_ready = !fds[1].revents().is_empty();
            drop(fds);
            if l_ready {
                self.accept(None);
            }
            if ctl_ready {
                let mut b = [0u8; 16];
                let n = ctl.read(&mut b).unwrap_or(0);
                return Ok(n > 0 && b[..n].starts_with(b"go"));
            }
        }
    }
}

/// Spawns the monitor of container `id` and completes the handshake:
/// `before_start` runs once the container is created and its init waits
/// (connect attach clients there). Returns the error of a failed start.
pub fn spawn(root: &Path, id: &str, before_start: impl FnOnce() -> Result<()>) -> Result<()> {
    spawn_with(root, id, None, before_start)
}

/// Spawns the monitor of exec `eid` in container `id` (the same handshake:
/// `before_start` runs before the process does).
pub fn spawn_exec(
    root: &Path,
    id: &str,
    eid: &str,
    before_start: impl FnOnce() -> Result<()>,
) -> Result<()> {
    spawn_with(root, id, Some(eid), before_start)
}

pub(super) fn spawn_with(
    root: &Path,
    id: &str,
    exec: Option<&str>,
    before_start: impl FnOnce() -> Result<()>,
) -> Result<()> {
    // /proc/self/exe, not the path: it still works after the binary on disk
    // was replaced (an upgrade while the daemon runs)
    let exe = Path::new("/proc/self/exe");
    let dir = root.join("containers").join(id);
    let log_path = match exec {
        Some(eid) => dir.join("exec").join(format!("{eid}.log")),
        None => dir.join("monitor.log"),
    };
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| sys_err("open the monitor's log", e))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("monitor").arg(root).arg(id);
    if let Some(eid) = exec {
        cmd.arg("--exec").arg(eid);
    }
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(log)
        .env_remove("RUST_LOG")
        .spawn()
        .map_err(|e| sys_err("start the container's monitor", e))?;
    let mut to = child.stdin.take().expect("piped");
    let from = child.stdout.take().expect("piped");
    // the intermediate process exits at once
    let _ = child.wait();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(from));
    let first = lines
        .next()
        .transpose()
        .map_err(|e| sys_err("read from the monitor", e))?;
    match first.as_deref() {
        Some("created") => {}
        Some(l) if let Some(e) = l.strip_prefix("error: ") => {
            return Err(Error::Start(e.to_owned()));
        }
        Some(other) => {
            return Err(Error::Start(format!(
                "the container's monitor said {other:?} during start-up"
            )));
        }
        None => {
            let why = fs::read_to_string(&log_path).unwrap_or_default();
            return Err(Error::Start(format!(
                "the container's monitor exited during start-up: {}",
                why.lines().last().unwrap_or("no reason given")
            )));
        }
    }
    let hook = before_start();
    if let Err(e) = hook {
        drop(to); // the monitor removes the created container
        return Err(e);
    }
    to.write_all(b"go\n")
        .map_err(|e| sys_err("signal the monitor", e))?;
    match lines
        .next()
        .transpose()
        .map_err(|e| sys_err("read from the monitor", e))?
        .as_deref()
    {
        Some("ok") => Ok(()),
        Some(l) if let Some(e) = l.strip_prefix("error: ") => Err(Error::Start(e.to_owned())),
        _ => Err(Error::Start(
            "the container's monitor exited during start-up".into(),
        )),
    }
}
