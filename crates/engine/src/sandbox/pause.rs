//! The pause process of a pod sandbox whose containers share one process
//! namespace (Kubernetes' `shareProcessNamespace`).
//!
//! A PID namespace dies with its init, so a file alone cannot hold it: the
//! sandbox keeps a process as PID 1 — berth re-executed through
//! `/proc/self/exe` with argv `[/pause]` (what `ps` in the pod shows) and
//! the sandbox named in its environment. It seals its binary
//! (CVE-2019-5736: the pod's containers see it), leaves its spawner (a
//! session of its own, adopted by init: it outlives `berth server`),
//! joins the sandbox's IPC, UTS and network namespaces, and forks the
//! namespace's init. That one chroots into an empty directory, drops every
//! capability, ignores the termination signals and reaps the orphans the
//! namespace hands it until the engine kills it (when the sandbox stops or
//! goes). Its namespace is also bind-mounted on `ns/pid`, which the
//! containers join.
//!
//! Start-up protocol on its stdout: the first process writes `pid N` (N
//! as the host sees it), the init writes `ready` and closes its stdout;
//! either writes `error: <message>` instead when something fails.

use std::ffi::OsString;
use std::fs;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Ns, ns_path};
use crate::container::process_start;
use crate::run::{Error, Result};

/// argv\[0\] of a pause process (PID 1 of the pod, as `ps` shows it).
pub const PAUSE_ARGV0: &str = "/pause";
const ENV_ROOT: &str = "BERTH_PAUSE_ROOT";
const ENV_SANDBOX: &str = "BERTH_PAUSE_SANDBOX";
/// Its start-up errors, in the sandbox's directory.
const LOG: &str = "pause.log";
/// The empty directory it chroots into, in the sandbox's directory.
const EMPTY_ROOT: &str = "pause-root";

/// The berth root and sandbox id when this process was started as a
/// sandbox's pause process (`args` are the process's arguments); `None`
/// otherwise. A binary that runs the engine calls this first, then
/// [`pause_main`].
pub fn pause_request(args: &[OsString]) -> Option<(PathBuf, String)> {
    if args.len() != 1 || args.first()? != PAUSE_ARGV0 {
        return None;
    }
    let root = std::env::var_os(ENV_ROOT)?;
    let id = std::env::var(ENV_SANDBOX).ok()?;
    Some((PathBuf::from(root), id))
}

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    println!("error: {what}: {e}");
    berth_sys::fork::exit_now(1)
}

/// Entry point of a sandbox's pause process. Never returns.
pub fn pause_main(root: &Path, id: &str) -> ! {
    if let Err(e) = berth_runtime::seal::ensure_sealed() {
        fail("seal the pause binary", e)
    }
    if let Err(e) = crate::monitor::leave_parent() {
        fail("fork the pause process", e)
    }
    let dir = root.join("sandboxes").join(id);
    if let Err(e) = join_namespaces(&dir) {
        fail("join the pod's namespaces", e)
    }
    let args = berth_sys::fork::CloneArgs {
        flags: libc::CLONE_NEWPID as u64,
        cgroup: None,
        want_pidfd: false,
    };
    match berth_sys::fork::clone3(&args) {
        Ok((berth_sys::fork::Forked::Parent(pid), _)) => {
            println!("pid {}", pid.as_raw_nonzero());
            berth_sys::fork::exit_now(0)
        }
        Ok((berth_sys::fork::Forked::Child, _)) => {}
        Err(e) => fail("make the pod's process namespace", e),
    }
    close_inherited();
    let null = match fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        Ok(f) => f,
        Err(e) => fail("open /dev/null", e),
    };
    let signals = match settle(&dir) {
        Ok(fd) => fd,
        Err(e) => fail("set up the pause process", e),
    };
    println!("ready");
    for fd in 0..3 {
        let _ = berth_sys::fd::dup_onto(null.as_raw_fd(), fd);
    }
    drop(null);
    reap_forever(signals)
}

/// Closes every descriptor but stdio that the process inherited (from
/// whoever started the engine): the pause process outlives them all.
fn close_inherited() {
    let fds: Vec<i32> = fs::read_dir("/proc/self/fd")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2)
        .collect();
    for fd in fds {
        // the directory's own descriptor is closed by now: that one fails
        drop(berth_sys::fd::take_inherited(fd));
    }
}

/// Joins the sandbox's IPC, UTS and (unless it is the host's) network
/// namespaces; the process is single-threaded, so this moves all of it.
fn join_namespaces(dir: &Path) -> std::io::Result<()> {
    use rustix::thread::LinkNameSpaceType as L;
    for (ns, kind) in [
        (Ns::Ipc, L::InterProcessCommunication),
        (Ns::Uts, L::HostNameAndNISDomainName),
        (Ns::Net, L::Network),
    ] {
        let p = ns_path(dir, ns);
        if ns == Ns::Net && !berth_net::netns::is_mounted(&p) {
            continue; // the host's network
        }
        let f = fs::File::open(&p)?;
        rustix::thread::move_into_link_name_space(f.as_fd(), Some(kind))?;
    }
    Ok(())
}

/// Makes the namespace's init harmless and deaf: chrooted into an empty
/// directory, no capabilities, no new privileges, not dumpable, the
/// termination signals ignored. Returns a signalfd for SIGCHLD.
fn settle(dir: &Path) -> std::io::Result<std::os::fd::OwnedFd> {
    rustix::process::chroot(dir.join(EMPTY_ROOT))?;
    rustix::process::chdir("/")?;
    for sig in [
        libc::SIGTERM,
        libc::SIGINT,
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGPIPE,
        libc::SIGALRM,
        libc::SIGTSTP,
        libc::SIGTTIN,
        libc::SIGTTOU,
    ] {
        berth_sys::signal::set_ignore(sig)?;
    }
    let mut chld = berth_sys::signal::SigSet::empty();
    chld.add(libc::SIGCHLD);
    berth_sys::signal::block(&chld)?;
    let fd = berth_sys::signal::signalfd(&chld)?;
    for cap in 0..=berth_sys::caps::last_cap() {
        let _ = berth_sys::caps::bounding_drop(cap);
    }
    berth_sys::caps::ambient_clear()?;
    berth_sys::caps::set(&berth_sys::caps::CapSets::default())?;
    rustix::thread::set_no_new_privs(true)?;
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)?;
    Ok(fd)
}

/// Reaps every child the namespace hands over, forever.
fn reap_forever(signals: std::os::fd::OwnedFd) -> ! {
    use rustix::event::{PollFd, PollFlags};
    loop {
        // any child (`waitpid(None)` would mean the caller's process group)
        while let Ok(Some(_)) = rustix::process::wait(rustix::process::WaitOptions::NOHANG) {}
        let mut fds = [PollFd::new(&signals, PollFlags::IN)];
        let _ = rustix::event::poll(&mut fds, None);
        while let Ok(Some(_)) = berth_sys::signal::read_signalfd(signals.as_fd()) {}
    }
}

/// A running pause process: its host pid and start time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pause {
    pub pid: i32,
    pub start: u64,
}

/// Whether the pause process `pid` started at `start` still runs.
pub(crate) fn alive(pid: i32, start: u64) -> bool {
    pid > 0 && process_start(pid) == Some(start)
}

/// Starts the pause process of sandbox `id` (in `dir`) and bind-mounts its
/// process namespace on `ns/pid`.
pub(crate) fn spawn(root: &Path, dir: &Path, id: &str) -> Result<Pause> {
    let io = |what: &str| {
        let what = what.to_owned();
        move |e: std::io::Error| Error::Io(what, e)
    };
    fs::create_dir_all(dir.join(EMPTY_ROOT)).map_err(io("create the pause process's root"))?;
    let log_path = dir.join(LOG);
    let log = fs::File::create(&log_path).map_err(io("create the pause process's log"))?;
    let mut child = std::process::Command::new("/proc/self/exe")
        .arg0(PAUSE_ARGV0)
        // nothing of the daemon's environment lives on in the pod
        .env_clear()
        .env(ENV_ROOT, root)
        .env(ENV_SANDBOX, id)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(log)
        .spawn()
        .map_err(io("start the pod's pause process"))?;
    let mut said = String::new();
    let read = child.stdout.take().map(|mut o| o.read_to_string(&mut said));
    let _ = child.wait();
    if let Some(Err(e)) = read {
        return Err(Error::Io("read from the pause process".into(), e));
    }
    let mut pid = None;
    let mut ready = false;
    for line in said.lines() {
        if let Some(e) = line.strip_prefix("error: ") {
            return Err(Error::Start(format!("the pod's pause process: {e}")));
        }
        if let Some(p) = line.strip_prefix("pid ") {
            pid = p.trim().parse::<i32>().ok();
        }
        ready |= line == "ready";
    }
    let (Some(pid), true) = (pid, ready) else {
        let why = fs::read_to_string(&log_path).unwrap_or_default();
        return Err(Error::Start(format!(
            "the pod's pause process exited during start-up: {}",
            why.lines().last().unwrap_or("no reason given")
        )));
    };
    let Some(start) = process_start(pid) else {
        return Err(Error::Start(
            "the pod's pause process exited during start-up".into(),
        ));
    };
    let pause = Pause { pid, start };
    let target = ns_path(dir, Ns::Pid);
    let bound = fs::File::create(&target)
        .map_err(io("create the pid namespace file"))
        .and_then(|_| {
            rustix::mount::mount_bind(format!("/proc/{pid}/ns/pid").as_str(), &target)
                .map_err(|e| Error::Io("bind-mount the pod's pid namespace".into(), e.into()))
        });
    if let Err(e) = bound {
        kill(pause);
        return Err(e);
    }
    Ok(pause)
}

/// Kills a pause process (its namespace's other processes die with it)
/// and waits until it is gone.
pub(crate) fn kill(p: Pause) {
    let Some(pid) = rustix::process::Pid::from_raw(p.pid) else {
        return;
    };
    let Ok(fd) = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()) else {
        return;
    };
    // the pidfd names this process for good: check it is still ours
    if !alive(p.pid, p.start) {
        return;
    }
    let _ = rustix::process::pidfd_send_signal(&fd, rustix::process::Signal::KILL);
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(p.pid, p.start) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Takes down what the pause process of a sandbox left: the pid
/// namespace file.
pub(crate) fn unmount_pid_ns(dir: &Path) {
    let p = ns_path(dir, Ns::Pid);
    let _ = rustix::mount::unmount(&p, rustix::mount::UnmountFlags::DETACH);
    let _ = fs::remove_file(&p);
}
