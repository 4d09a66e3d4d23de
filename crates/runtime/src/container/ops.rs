//! Operations on existing containers: start, state, kill, delete, list,
//! pause/resume, processes and statistics.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rustix::process::{Pid, PidfdFlags, Signal};

use super::{Runtime, unix};
use crate::cgroups::stats::Stats;
use crate::error::{Context, Error, Result};
use crate::hooks::{self, Stage};
use crate::state::{ContainerState, START_SOCKET, Status};

/// A container as `list` and `state` show it.
#[derive(Clone, Debug)]
pub struct Listed {
    /// Its state record.
    pub state: ContainerState,
    /// Its status now.
    pub status: Status,
}

impl Runtime {
    /// Loads a container and its current status.
    pub fn get(&self, id: &str) -> Result<Listed> {
        if berth_types::ContainerId::new(id).is_err() {
            return Err(Error::NotFound(id.into()));
        }
        let state = self.root.load(id)?;
        let status = state.status(&self.root.container_dir(id));
        Ok(Listed { state, status })
    }

    /// Every container, sorted by id. Directories without a readable state
    /// (a create that was interrupted) are listed as `creating`... only if
    /// they have a state; others are skipped.
    pub fn list(&self) -> Result<Vec<Listed>> {
        let mut out = Vec::new();
        for id in self.root.ids()? {
            if let Ok(l) = self.get(&id) {
                out.push(l);
            }
        }
        Ok(out)
    }

    /// `start`: lets a created container's init exec the user process, and
    /// returns once it has (or reports why it could not).
    pub fn start(&self, id: &str) -> Result<()> {
        let c = self.get(id)?;
        match c.status {
            Status::Created => {}
            s => {
                return Err(Error::State(format!(
                    "cannot start container {id}: it is {}, not created",
                    s.as_str()
                )));
            }
        }
        let dir = self.root.container_dir(id);
        let _lock = lock_dir(&dir)?;
        let sock = dir.join(START_SOCKET);
        let fd = unix::connect(&sock).map_err(|e| {
            Error::State(format!(
                "cannot start container {id}: its init is not waiting ({e})"
            ))
        })?;
        let mut conn = std::os::unix::net::UnixStream::from(fd);
        conn.write_all(b"s").ctx(|| "signal the container's init")?;
        let _ = conn.shutdown(std::net::Shutdown::Write);
        // The init closes the connection by exec'ing; before that it may
        // report a failure.
        let mut reply = String::new();
        let _ = conn.read_to_string(&mut reply);
        let _ = std::fs::remove_file(&sock);
        if let Some(msg) = reply.strip_prefix("error: ") {
            return Err(Error::Init(msg.to_owned()));
        }
        if !crate::procfs::alive(c.state.pid, c.state.pid_start) {
            // exec'd and already gone is fine; gone before exec is not
            if !reply.is_empty() {
                return Err(Error::Init(reply));
            }
        }
        if let Some(h) = c
            .state
            .config
            .hooks()
            .as_ref()
            .and_then(|h| h.poststart().clone())
        {
            let st = c.state.oci_state(Status::Running).to_string();
            hooks::run_all_logged(Stage::Poststart, &h, &st);
        }
        Ok(())
    }

    /// `kill`: sends `signal` to the init (or, with `all`, to every process
    /// of the container).
    pub fn kill(&self, id: &str, signal: i32, all: bool) -> Result<()> {
        let c = self.get(id)?;
        if c.status == Status::Stopped {
            return Err(Error::State(format!("container {id} is not running")));
        }
        if all && let Some(cg) = &c.state.cgroup {
            if cg.exists() {
                return cg.signal_all(signal).map_err(Error::from);
            }
            // The cgroup cannot be reached from here (cgroupfs hidden by
            // a mount namespace): the init, at least, can. Its death ends
            // the rest when the container has a pid namespace of its own.
            if !crate::spec::has_ns(&c.state.config, oci_spec::runtime::LinuxNamespaceType::Pid) {
                tracing::warn!(
                    "container {id}: its cgroup is not reachable here and it shares a pid \
                     namespace; only its init is signalled"
                );
            }
        }
        let sig = Signal::from_named_raw(signal)
            .ok_or_else(|| Error::Invalid(format!("invalid signal {signal}")))?;
        let pidfd = open_pidfd(&c.state)?
            .ok_or_else(|| Error::State(format!("container {id} is not running")))?;
        rustix::process::pidfd_send_signal(&pidfd, sig)
            .ctx(|| format!("send signal {signal} to {}", c.state.pid))
    }

    /// `delete`: removes a stopped (or created) container; with `force` a
    /// running one is killed first. Runs poststop hooks.
    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        let c = match self.get(id) {
            Ok(c) => c,
            Err(Error::Invalid(msg)) if force => {
                // A corrupt record: remove what we can.
                tracing::warn!("{msg}; removing the container's directory");
                return self.root.remove(id);
            }
            Err(Error::NotFound(_)) if force && self.root.container_dir(id).is_dir() => {
                // Interrupted create: no state was written.
                return self.root.remove(id);
            }
            Err(e) => return Err(e),
        };
        match c.status {
            Status::Stopped => {}
            s if !force => {
                return Err(Error::State(format!(
                    "cannot delete container {id} that is not stopped: it is {}",
                    s.as_str()
                )));
            }
            _ => {}
        }
        let dir = self.root.container_dir(id);
        let _lock = lock_dir(&dir)?;
        if c.status != Status::Stopped
            && let Some(pidfd) = open_pidfd(&c.state)?
        {
            kill_init(&c, &pidfd)?;
        }
        if !crate::spec::has_ns(
            &c.state.config,
            oci_spec::runtime::LinuxNamespaceType::Mount,
        ) {
            crate::rootfs::unmount_under(&c.state.rootfs)?;
        }
        if let Some(cg) = &c.state.cgroup {
            cg.destroy()?;
        }
        self.root.remove(id)?;
        if let Some(h) = c
            .state
            .config
            .hooks()
            .as_ref()
            .and_then(|h| h.poststop().clone())
        {
            let st = c.state.oci_state(Status::Stopped).to_string();
            hooks::run_all_logged(Stage::Poststop, &h, &st);
        }
        Ok(())
    }

    /// `pause`: freezes every process of a running container.
    pub fn pause(&self, id: &str) -> Result<()> {
        let c = self.get(id)?;
        if c.status != Status::Running {
            return Err(Error::State(format!(
                "container {id} is {}, not running",
                c.status.as_str()
            )));
        }
        cgroup_of(&c)?.set_frozen(true).map_err(Error::from)
    }

    /// `resume`: thaws a paused container.
    pub fn resume(&self, id: &str) -> Result<()> {
        let c = self.get(id)?;
        if c.status != Status::Paused {
            return Err(Error::State(format!(
                "container {id} is {}, not paused",
                c.status.as_str()
            )));
        }
        cgroup_of(&c)?.set_frozen(false).map_err(Error::from)
    }

    /// Host pids of every process in the container.
    pub fn pids(&self, id: &str) -> Result<Vec<i32>> {
        let c = self.get(id)?;
        if c.status == Status::Stopped {
            return Err(Error::State(format!("container {id} is not running")));
        }
        Ok(cgroup_of(&c)?.pids()?)
    }

    /// Resource usage.
    pub fn stats(&self, id: &str) -> Result<Stats> {
        let c = self.get(id)?;
        if c.status == Status::Stopped {
            return Err(Error::State(format!("container {id} is not running")));
        }
        Ok(cgroup_of(&c)?.stats())
    }

    /// How many of the container's processes the OOM killer has killed in
    /// this run (see [`crate::cgroups::Cgroup::oom_kills`]). Also for a
    /// stopped container, until `delete` removes its cgroup.
    pub fn oom_kills(&self, id: &str) -> Result<Option<u64>> {
        let c = self.get(id)?;
        Ok(c.state.cgroup.as_ref().and_then(|cg| cg.oom_kills()))
    }

    /// Changes the resource limits of a created or running container
    /// (`runc update`): the given values are written to its cgroup; device
    /// rules are left as they are.
    pub fn update(&self, id: &str, r: &oci_spec::runtime::LinuxResources) -> Result<()> {
        let c = self.get(id)?;
        if c.status == Status::Stopped {
            return Err(Error::State(format!("container {id} is not running")));
        }
        cgroup_of(&c)?.apply(Some(r), &[])?;
        Ok(())
    }

    /// The bundle path of a container (for callers that show it).
    pub fn bundle(&self, id: &str) -> Result<PathBuf> {
        Ok(self.get(id)?.state.bundle)
    }
}

/// SIGKILLs a container's init (thawing a paused container first) and
/// waits for its exit. An init that does not exit is an error: a frozen
/// container whose cgroup cannot be reached from here cannot be thawed.
fn kill_init(c: &Listed, pidfd: &OwnedFd) -> Result<()> {
    let cg = c.state.cgroup.as_ref();
    let reachable = cg.is_some_and(crate::cgroups::Cgroup::exists);
    if c.status == Status::Paused
        && let Some(cg) = cg
    {
        let _ = cg.set_frozen(false);
    }
    let _ = rustix::process::pidfd_send_signal(pidfd, Signal::KILL);
    if wait_exit(pidfd, Duration::from_secs(10)) {
        return Ok(());
    }
    let why = if reachable {
        String::new()
    } else {
        format!(
            "; its cgroup is not reachable here ({}), so a paused container cannot be thawed",
            crate::cgroups::UNREACHABLE_HINT
        )
    };
    Err(Error::State(format!(
        "container {} (init pid {}) did not exit after SIGKILL{why}",
        c.state.id, c.state.pid
    )))
}

fn cgroup_of(c: &Listed) -> Result<&crate::cgroups::Cgroup> {
    c.state
        .cgroup
        .as_ref()
        .ok_or_else(|| Error::State(format!("container {} has no cgroup", c.state.id)))
}

/// A pidfd for the container's init, if it is still the same process.
pub(crate) fn open_pidfd(st: &ContainerState) -> Result<Option<OwnedFd>> {
    let Some(pid) = Pid::from_raw(st.pid) else {
        return Ok(None);
    };
    let fd = match rustix::process::pidfd_open(pid, PidfdFlags::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::SRCH) => return Ok(None),
        Err(e) => return Err(e).ctx(|| format!("pidfd_open({})", st.pid)),
    };
    // The pid may have been reused: check after opening the pidfd.
    if !crate::procfs::alive(st.pid, st.pid_start) {
        return Ok(None);
    }
    Ok(Some(fd))
}

/// Waits (up to `timeout`) until the process behind `pidfd` has exited.
pub(crate) fn wait_exit(pidfd: &OwnedFd, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ts = rustix::time::Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: left.subsec_nanos() as i64,
        };
        let mut fds = [rustix::event::PollFd::new(
            pidfd,
            rustix::event::PollFlags::IN,
        )];
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(n) if n > 0 => return true,
            Ok(_) => return false,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return false,
        }
    }
}

/// An exclusive lock on a container directory for the duration of an
/// operation that changes the container.
pub(crate) fn lock_dir(dir: &std::path::Path) -> Result<OwnedFd> {
    let fd = rustix::fs::open(
        dir,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .ctx(|| format!("open {}", dir.display()))?;
    rustix::fs::flock(&fd, rustix::fs::FlockOperation::LockExclusive)
        .ctx(|| format!("lock {}", dir.display()))?;
    Ok(fd)
}
