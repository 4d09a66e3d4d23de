//! The per-container monitor: a small single-threaded process (berth
//! re-executed as `berth monitor ROOT ID`) that creates the container with
//! the runtime, holds its init as a child, owns its stdio (pipes, or the
//! terminal's master), writes the json-file log, serves attach / wait /
//! resize clients on `<dir>/attach.sock`, records the exit and applies the
//! restart policy. It outlives the CLI or daemon that started it; if the
//! monitor itself is killed, the container dies with it (parent-death
//! signal), so the engine never reports a ghost "running" container.
//!
//! Start-up handshake with the process that spawned it (over the monitor's
//! stdin and stdout): the monitor writes `created`, waits for `go` (the
//! spawner connects its attach clients in between, so no output is lost),
//! starts the container and writes `ok` or `error: <message>`.
//!
//! Attach protocol on `attach.sock`: the client sends one JSON line
//! (`{"attach":{"stdin":true,"stdout":true,"stderr":true}}`,
//! `{"wait":true}`, `{"resize":[h,w]}`, `{"wake":true}`); the monitor
//! answers a newline, then (attach) sends output as docker's multiplexed
//! frames (stream 1 = stdout, 2 = stderr; terminal output is stream 1) and
//! reads the client's bytes as the container's stdin; (wait) sends the exit
//! code and a newline when the container exits.

mod attach;
mod exec;
mod handoff;
mod handshake;
mod namespaces;

use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_runtime::{CreateOptions, Runtime};
use rustix::event::{PollFd, PollFlags};

use crate::container::{Record, Status, Store, process_start};
use crate::logs::LogWriter;
use crate::run::{Error, Result};

use attach::take_terminal;
pub use attach::{Request, connect, connect_socket};
pub use handoff::resume_main;
pub use handshake::{spawn, spawn_exec, start_failure_code};

/// Name of the attach socket in the container's directory.
pub const ATTACH_SOCKET: &str = "attach.sock";
const CONSOLE_SOCKET: &str = "console.sock";
/// The rootfs mount description the engine writes at create.
pub const ROOTFS_FILE: &str = "rootfs.json";

enum Kind {
    /// Waiting for the request line.
    New,
    Attach {
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
    Wait,
}

struct Client {
    fd: std::os::unix::net::UnixStream,
    kind: Kind,
    /// Reading from it is over (EOF or not reading stdin).
    read_done: bool,
}

struct Io {
    out: Option<OwnedFd>,
    err: Option<OwnedFd>,
    /// Write end of the container's stdin pipe, or the terminal master.
    stdin: Option<OwnedFd>,
    pty: Option<OwnedFd>,
}

fn sys_err(what: &str, e: impl Into<std::io::Error>) -> Error {
    Error::Io(what.to_owned(), e.into())
}

fn nonblocking(fd: BorrowedFd<'_>) {
    if let Ok(fl) = rustix::fs::fcntl_getfl(fd) {
        let _ = rustix::fs::fcntl_setfl(fd, fl | rustix::fs::OFlags::NONBLOCK);
    }
}

fn write_line(fd: &mut Option<fs::File>, line: &str) {
    if let Some(f) = fd {
        let _ = f.write_all(format!("{line}\n").as_bytes());
    }
}

/// Leaves the process that spawned us: the intermediate process exits at
/// once and the caller continues as a child adopted by init (or the
/// nearest subreaper), in a session of its own. For the monitor and the
/// other helpers the engine starts (health checks, the DNS server), which
/// must outlive and never block their spawner.
pub(crate) fn leave_parent() -> std::io::Result<()> {
    match berth_sys::fork::clone3(&berth_sys::fork::CloneArgs {
        flags: 0,
        cgroup: None,
        want_pidfd: false,
    })? {
        (berth_sys::fork::Forked::Child, _) => {}
        _ => berth_sys::fork::exit_now(0),
    }
    let _ = rustix::process::setsid();
    Ok(())
}

/// Entry point of `berth monitor ROOT ID [--exec EXEC_ID]`. Never returns.
pub fn main(root: &Path, id: &str, exec: Option<&str>) -> ! {
    if let Err(e) = leave_parent() {
        println!("error: fork the monitor: {e}");
        berth_sys::fork::exit_now(1)
    }
    // an exec joins the container's pid namespace, and a container without
    // a pid namespace of its own (--pid host|container:) sees the runtime:
    // never from a writable binary (CVE-2019-5736). Sealed here, at the
    // start, where re-executing loses nothing: the runtime would re-execute
    // the monitor in the middle of its start-up otherwise.
    let shares_pid = || {
        Store::open(root)
            .and_then(|s| s.record(id))
            .is_ok_and(|r| r.namespaces.pid != crate::config::PidMode::Private)
    };
    if (exec.is_some() || shares_pid())
        && let Err(e) = berth_runtime::seal::ensure_sealed()
    {
        println!("error: {e}");
        berth_sys::fork::exit_now(1)
    }
    let code = match Monitor::new(root, id, exec, None).and_then(|mut m| match exec {
        Some(_) => m.run_exec(),
        None => m.run(None),
    }) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("berth monitor {id}: {e}");
            1
        }
    };
    berth_sys::fork::exit_now(code)
}

/// What the shim hands back when the container's init has exited:
/// `berth monitor ROOT ID --resume BEGAN_MS BACKOFF_MS LISTENER CODE WAITERS`.
struct Resume {
    /// When the run began (ms since the epoch), for the restart backoff.
    began_ms: i64,
    backoff: Duration,
    /// The attach socket's listening descriptor.
    listener: i32,
    /// The init's exit code.
    code: i32,
    /// Descriptors of clients waiting for the exit.
    waiters: Vec<i32>,
}

impl Resume {
    fn parse(args: &[String]) -> Option<Resume> {
        let [began, backoff, listener, code, waiters] = args else {
            return None;
        };
        Some(Resume {
            began_ms: began.parse().ok()?,
            backoff: Duration::from_millis(backoff.parse().ok()?),
            listener: listener.parse().ok()?,
            code: code.parse().ok()?,
            waiters: match waiters.as_str() {
                "-" => Vec::new(),
                w => w
                    .split(',')
                    .map(|f| f.parse().ok())
                    .collect::<Option<_>>()?,
            },
        })
    }
}

fn epoch_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

struct Monitor {
    root: PathBuf,
    id: String,
    dir: PathBuf,
    store: Store,
    record: Record,
    /// Handshake with the spawner (first run only).
    ctl_in: Option<fs::File>,
    ctl_out: Option<fs::File>,
    listener: std::os::unix::net::UnixListener,
    clients: Vec<Client>,
    log: LogWriter,
    /// stderr of the monitor (monitor.log), kept to restore fd 2.
    own_err: OwnedFd,
    /// The exec this monitor runs (None: the container itself).
    exec: Option<String>,
    /// When the next health check is due (containers with one, running).
    next_health: Option<Instant>,
    /// When the current run began (ms since the epoch).
    began_ms: i64,
    /// The restart policy's current delay.
    backoff: Duration,
}

impl Monitor {
    fn new(root: &Path, id: &str, exec: Option<&str>, resume: Option<Resume>) -> Result<Monitor> {
        let store = Store::open(root)?;
        let dir = store.dir(id);
        std::env::set_current_dir(&dir).map_err(|e| sys_err("enter the container directory", e))?;
        let mut record = store.record(id)?;
        if let Some(eid) = exec {
            // an exec: its own stdio flags, no log, no policy
            let e = crate::exec::load(&dir, eid)?;
            record.tty = e.tty;
            record.open_stdin = e.attach_stdin;
            record.stdin_once = true;
            record.auto_remove = false;
            record.restart_policy = Default::default();
            record.log.driver = crate::config::LogDriver::None;
        }
        let sock_path = match exec {
            Some(eid) => crate::exec::socket_path(&dir, eid),
            None => dir.join(ATTACH_SOCKET),
        };
        let own_err = rustix::io::fcntl_dupfd_cloexec(std::io::stderr(), 3)
            .map_err(|e| sys_err("dup stderr", e))?;
        let rotation = record.log.rotation();
        let log = LogWriter::open(
            &dir,
            rotation,
            record.log.driver == crate::config::LogDriver::None,
        )?;
        let mut clients = Vec::new();
        let (mut ctl_in, mut ctl_out) = (None, None);
        let (mut began_ms, mut backoff) = (epoch_ms(), Duration::from_millis(100));
        let listener = if let Some(r) = resume {
            // fds 0-2 are already /dev/null and the monitor's log
            let take = |fd| {
                berth_sys::fd::take_inherited(fd)
                    .map_err(|e| sys_err("take a handed-back descriptor", e))
            };
            for fd in r.waiters {
                clients.push(Client {
                    fd: std::os::unix::net::UnixStream::from(take(fd)?),
                    kind: Kind::Wait,
                    read_done: false,
                });
            }
            (began_ms, backoff) = (r.began_ms, r.backoff);
            take(r.listener)?
        } else {
            // The handshake moves off fds 0 and 1, which the container's
            // stdio borrows while it is created.
            let dup = |fd: BorrowedFd<'_>| {
                rustix::io::fcntl_dupfd_cloexec(fd, 3)
                    .map(fs::File::from)
                    .map_err(|e| sys_err("dup the handshake", e))
            };
            ctl_in = Some(dup(std::io::stdin().as_fd())?);
            ctl_out = Some(dup(std::io::stdout().as_fd())?);
            let null = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
                .map_err(|e| sys_err("open /dev/null", e))?;
            rustix::stdio::dup2_stdin(&null).map_err(|e| sys_err("dup2", e))?;
            rustix::stdio::dup2_stdout(&null).map_err(|e| sys_err("dup2", e))?;
            let _ = fs::remove_file(&sock_path);
            berth_runtime::container::unix::listen(&sock_path)
                .map_err(|e| sys_err("listen on the attach socket", e))?
        };
        let listener = std::os::unix::net::UnixListener::from(listener);
        listener
            .set_nonblocking(true)
            .map_err(|e| sys_err("attach.sock", e))?;
        Ok(Monitor {
            root: root.to_path_buf(),
            id: id.to_owned(),
            dir,
            store,
            record,
            ctl_in,
            ctl_out,
            listener,
            clients,
            log,
            own_err,
            exec: exec.map(str::to_owned),
            next_health: None,
            began_ms,
            backoff,
        })
    }

    fn event(&self, action: &str, extra: &[(&str, String)]) {
        let mut a = crate::events::container_attributes(&self.record);
        for (k, v) in extra {
            a.insert((*k).to_owned(), v.clone());
        }
        crate::events::emit(&self.root, "container", action, &self.id, a);
    }

    /// docker's `volume` `mount`/`unmount` events, one per volume the run
    /// mounts (binds and tmpfs have none).
    fn volume_events(&self, action: &str) {
        for m in self
            .record
            .mounts
            .iter()
            .filter(|m| m.kind == crate::config::MountKind::Volume)
        {
            let mut a = std::collections::BTreeMap::new();
            a.insert("container".to_owned(), self.id.clone());
            a.insert("driver".to_owned(), "local".to_owned());
            if action == "mount" {
                a.insert("destination".to_owned(), m.destination.clone());
                a.insert("propagation".to_owned(), String::new());
                a.insert("read/write".to_owned(), (!m.read_only).to_string());
            }
            crate::events::emit(&self.root, "volume", action, &m.name, a);
        }
    }

    fn runtime(&self) -> Result<Runtime> {
        Ok(Runtime::new(&self.root.join("oci"))?)
    }

    /// The container's runs under its restart policy. `resumed`: the exit
    /// code of the run the shim followed (the monitor was executed again).
    fn run(&mut self, mut resumed: Option<i32>) -> Result<()> {
        if resumed.is_none() {
            let me = std::process::id() as i32;
            let start = process_start(me).unwrap_or(0);
            self.store.update_state(&self.id, |s| {
                s.monitor_pid = me;
                s.monitor_start = start;
                s.manual_stop = false;
                s.error.clear();
            })?;
        }
        let mut last_code = None;
        loop {
            let run = match resumed.take() {
                Some(code) => self.after_run(code),
                None => {
                    self.began_ms = epoch_ms();
                    self.one_run()
                }
            };
            let code = match run {
                Ok(Some(code)) => code,
                Ok(None) => break, // start failed or the spawner went away
                Err(e) => {
                    let msg = e.to_string();
                    write_line(&mut self.ctl_out, &format!("error: {msg}"));
                    self.ctl_out = None;
                    let _ = self.store.update_state(&self.id, |s| {
                        s.status = Status::Exited;
                        s.error = msg.clone();
                        s.exit_code = start_failure_code(&msg);
                        s.pid = 0;
                        s.finished_at = berth_runtime::state::now_rfc3339();
                    });
                    break;
                }
            };
            let st = self.store.state_raw(&self.id)?;
            // `update --restart` may have changed it since the start
            if let Ok(r) = self.store.record(&self.id) {
                self.record.restart_policy = r.restart_policy;
            }
            let restart =
                self.record
                    .restart_policy
                    .should_restart(code, st.restart_count, st.manual_stop);
            if restart || !self.record.auto_remove {
                self.finish_clients(Some(code), false);
            } else {
                // `run --rm` learns the code once the container is gone
                self.finish_clients(None, false);
                last_code = Some(code);
            }
            if !restart {
                break;
            }
            // docker's backoff: doubles from 100 ms, reset after 10 s of running
            if epoch_ms() - self.began_ms >= 10_000 {
                self.backoff = Duration::from_millis(100);
            }
            self.store.update_state(&self.id, |s| {
                s.status = Status::Restarting;
                s.restart_count += 1;
            })?;
            if !self.sleep_serving(self.backoff) {
                let _ = self.store.update_state(&self.id, |s| {
                    s.status = Status::Exited;
                });
                break;
            }
            self.backoff = (self.backoff * 2).min(Duration::from_secs(60));
        }
        if self.record.auto_remove {
            let _ = self
                .store
                .update_state(&self.id, |s| s.status = Status::Removing);
            let rec = self.record.clone();
            self.store.remove(&rec)?;
            self.event("destroy", &[]);
            crate::volumes::remove_anonymous_at(&self.root, &rec.mounts);
        } else {
            let _ = fs::remove_file(self.dir.join(ATTACH_SOCKET));
            let _ = self.store.update_state(&self.id, |s| {
                s.monitor_pid = 0;
                s.monitor_start = 0;
            });
        }
        // waiters for "removed" learn it now
        self.finish_clients(last_code, true);
        Ok(())
    }

    /// Starts one health check (a separate short-lived process, so the
    /// monitor never waits on it) and schedules the next.
    fn health_check(&mut self) {
        let Some(h) = self.record.healthcheck.clone() else {
            self.next_health = None;
            return;
        };
        let started = self
            .store
            .state_raw(&self.id)
            .ok()
            .and_then(|s| berth_types::time::parse_rfc3339(&s.started_at).ok())
            .map(|(secs, _)| secs)
            .unwrap_or(0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let in_start = h.start_period > 0 && (now - started) * 1_000_000_000 < h.start_period;
        self.next_health = Some(Instant::now() + crate::health::interval(&h, in_start));
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("health.log"));
        let mut cmd = std::process::Command::new("/proc/self/exe");
        cmd.arg("health-check")
            .arg(&self.root)
            .arg(&self.id)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null());
        if let Ok(l) = log {
            cmd.stderr(l);
        }
        // it forks away at once: no zombie for the monitor to reap
        if let Ok(mut c) = cmd.spawn() {
            let _ = c.wait();
        }
    }

    /// Sleeps `d` while serving clients; false if a stop arrived.
    fn sleep_serving(&mut self, d: Duration) -> bool {
        let until = Instant::now() + d;
        while Instant::now() < until {
            if self
                .store
                .state_raw(&self.id)
                .map(|s| s.manual_stop)
                .unwrap_or(true)
            {
                return false;
            }
            let left = until
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(100));
            let mut fds = vec![PollFd::new(&self.listener, PollFlags::IN)];
            let ts = rustix::time::Timespec {
                tv_sec: 0,
                tv_nsec: left.as_nanos() as i64,
            };
            let _ = rustix::event::poll(&mut fds, Some(&ts));
            let ready = !fds[0].revents().is_empty();
            drop(fds);
            if ready {
                self.accept(None);
            }
        }
        !self
            .store
            .state_raw(&self.id)
            .map(|s| s.manual_stop)
            .unwrap_or(true)
    }

    /// One run, connected to its network for the run's length.
    fn one_run(&mut self) -> Result<Option<i32>> {
        let bridged = self.record.bridged();
        // leftovers of a previous run (a monitor killed mid-way); before the
        // network, as deleting unmounts what is under the bundle
        let _ = self.runtime()?.delete(&self.id, true);
        let shareable = self.record.namespaces.ipc == crate::config::IpcMode::Shareable;
        if shareable {
            crate::container::mount_shm(&self.dir, self.record.shm_size.unwrap_or(0))
                .map_err(|e| sys_err("mount the shareable /dev/shm", e))?;
        }
        let me = std::process::id() as i32;
        if let Err(e) = crate::volume_mount::acquire(&self.root, &self.id, me, &self.record.mounts)
        {
            crate::container::unmount_shm(&self.dir);
            return Err(e);
        }
        if bridged && let Err(e) = crate::network::connect(&self.root, &self.dir, &self.record) {
            self.release();
            return Err(e);
        }
        let r = self.one_run_inner();
        // a run that ended was released before its exit was recorded
        // (`ended`); one that never started or failed is released here
        if !matches!(r, Ok(Some(_))) {
            self.release();
        }
        r
    }

    /// Takes what a run holds on the host (its network endpoints and
    /// namespace, a shareable /dev/shm) away; idempotent.
    fn release(&self) {
        if self.record.bridged() {
            crate::network::disconnect(&self.root, &self.dir, &self.id);
        }
        if self.record.namespaces.ipc == crate::config::IpcMode::Shareable {
            crate::container::unmount_shm(&self.dir);
        }
        crate::volume_mount::release(
            &self.root,
            &self.id,
            std::process::id() as i32,
            &self.record.mounts,
        );
    }

    /// The end of a run the shim followed to the init's exit `code`.
    fn after_run(&mut self, code: i32) -> Result<Option<i32>> {
        self.ended(code).map(Some)
    }

    /// Creates and starts the container once and follows it to its exit.
    /// `Ok(None)`: it never started (recorded).
    fn one_run_inner(&mut self) -> Result<Option<i32>> {
        self.join_shared_namespaces()?;
        self.apply_link_env()?;
        let rt = self.runtime()?;
        let rootfs: berth_types::image::MountSpec = serde_json::from_slice(
            &fs::read(self.dir.join(ROOTFS_FILE)).map_err(|e| sys_err("read rootfs.json", e))?,
        )
        .map_err(|e| Error::Invalid(format!("rootfs.json: {e}")))?;
        let (mut io, console, child_stdio) = self.prepare_io(Path::new(CONSOLE_SOCKET))?;
        let opts = CreateOptions {
            id: self.id.clone(),
            bundle: self.dir.clone(),
            console_socket: console.as_ref().map(|_| PathBuf::from(CONSOLE_SOCKET)),
            rootfs_mounts: vec![rootfs],
            kill_with_parent: true,
            ..Default::default()
        };
        // The init inherits fds 0-2.
        self.with_child_stdio(child_stdio, || rt.create(&opts))??;
        if let Some(l) = console {
            take_terminal(&l, Path::new(CONSOLE_SOCKET), &mut io)?;
        }
        let listed = rt.get(&self.id)?;
        let pid = listed.state.pid;
        // First run: let the spawner connect its clients, then go.
        if self.ctl_in.is_some() {
            write_line(&mut self.ctl_out, "created");
        }
        if self.ctl_in.is_some() && !self.await_go()? {
            let _ = rt.delete(&self.id, true);
            self.release();
            let _ = self.store.update_state(&self.id, |s| {
                s.status = Status::Created;
                s.monitor_pid = 0;
            });
            return Ok(None);
        }
        if let Err(e) = rt.start(&self.id) {
            let msg = e.to_string();
            let _ = rt.delete(&self.id, true);
            self.release();
            self.store.update_state(&self.id, |s| {
                s.status = Status::Exited;
                s.error = msg.clone();
                s.exit_code = start_failure_code(&msg);
                s.pid = 0;
                s.finished_at = berth_runtime::state::now_rfc3339();
            })?;
            write_line(&mut self.ctl_out, &format!("error: {msg}"));
            self.ctl_out = None;
            return Ok(None);
        }
        let now = berth_runtime::state::now_rfc3339();
        self.store.update_state(&self.id, |s| {
            s.status = Status::Running;
            s.pid = pid;
            s.started_at = now.clone();
            s.exit_code = 0;
            s.error.clear();
            s.oom_killed = false;
        })?;
        self.volume_events("mount");
        self.event("start", &[]);
        if let Some(h) = &self.record.healthcheck {
            // a new run starts unchecked
            self.store.update_state(&self.id, |s| {
                s.health = Some(crate::health::Health {
                    status: "starting".into(),
                    failing_streak: 0,
                    log: s.health.take().map(|h| h.log).unwrap_or_default(),
                });
            })?;
            self.next_health =
                Some(Instant::now() + crate::health::interval(h, h.start_period > 0));
        }
        write_line(&mut self.ctl_out, "ok");
        self.ctl_out = None;
        self.handoff(&io, pid);
        let pidfd = rustix::process::pidfd_open(
            rustix::process::Pid::from_raw(pid).ok_or_else(|| Error::Invalid("no pid".into()))?,
            rustix::process::PidfdFlags::empty(),
        )
        .map_err(|e| sys_err("pidfd_open", e))?;
        let code = self.follow(&mut io, &pidfd, pid)?;
        self.ended(code).map(Some)
    }

    /// Records the exit of the run's init with `code` and removes the
    /// runtime's container.
    fn ended(&mut self, code: i32) -> Result<i32> {
        let rt = self.runtime()?;
        let oom = self.oom_killed(&rt);
        if oom {
            self.event("oom", &[]);
        }
        self.event("die", &[("exitCode", code.to_string())]);
        self.volume_events("unmount");
        if let Err(e) = rt.delete(&self.id, true) {
            eprintln!("delete the runtime container: {e}");
        }
        // before the exit is recorded: a start that follows at once (restart,
        // docker start) must not find its new endpoints taken away by ours
        self.release();
        let now = berth_runtime::state::now_rfc3339();
        self.store.update_state(&self.id, |s| {
            s.status = Status::Exited;
            s.exit_code = code;
            s.pid = 0;
            s.finished_at = now.clone();
            s.oom_killed = oom;
        })?;
        Ok(code)
    }

    /// Whether the OOM killer killed a process of the container during
    /// this run (docker's `State.OOMKilled`), from the kernel's count in the
    /// container's cgroup: made for each run and removed by the runtime's
    /// delete, so this is read before that.
    fn oom_killed(&self, rt: &Runtime) -> bool {
        rt.oom_kills(&self.id).ok().flatten().is_some_and(|n| n > 0)
    }
}
