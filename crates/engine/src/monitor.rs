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

/// Name of the attach socket in the container's directory.
pub const ATTACH_SOCKET: &str = "attach.sock";
const CONSOLE_SOCKET: &str = "console.sock";
/// The rootfs mount description the engine writes at create.
pub const ROOTFS_FILE: &str = "rootfs.json";

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

/// Entry point of `berth monitor ROOT ID --resume ...`: the monitor again,
/// after its shim saw the container exit (the same process). Never returns.
pub fn resume_main(root: &Path, id: &str, args: &[String]) -> ! {
    let Some(r) = Resume::parse(args) else {
        eprintln!("berth monitor {id}: bad --resume arguments {args:?}");
        berth_sys::fork::exit_now(2)
    };
    let code = r.code;
    let code = match Monitor::new(root, id, None, Some(r)).and_then(|mut m| m.run(Some(code))) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("berth monitor {id}: {e}");
            1
        }
    };
    berth_sys::fork::exit_now(code)
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

    /// Runs `f` (which makes the process) with fds 0-2 set to the process's
    /// stdio, then puts /dev/null and the monitor's log back.
    fn with_child_stdio<T>(&self, stdio: [OwnedFd; 3], f: impl FnOnce() -> T) -> Result<T> {
        rustix::stdio::dup2_stdin(&stdio[0]).map_err(|e| sys_err("dup2", e))?;
        rustix::stdio::dup2_stdout(&stdio[1]).map_err(|e| sys_err("dup2", e))?;
        rustix::stdio::dup2_stderr(&stdio[2]).map_err(|e| sys_err("dup2", e))?;
        let r = f();
        let null = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map_err(|e| sys_err("open /dev/null", e))?;
        let _ = rustix::stdio::dup2_stdin(&null);
        let _ = rustix::stdio::dup2_stdout(&null);
        let _ = rustix::stdio::dup2_stderr(&self.own_err);
        drop(stdio);
        Ok(r)
    }

    /// Runs the exec this monitor was started for, once.
    fn run_exec(&mut self) -> Result<()> {
        let eid = self.exec.clone().unwrap_or_default();
        if let Err(e) = self.exec_once(&eid) {
            let msg = crate::exec::failure_message(&e.to_string());
            let code = crate::exec::START_FAILURE_CODE;
            let _ = crate::exec::update(&self.dir, &eid, |x| {
                x.running = false;
                x.exit_code = Some(code);
                x.pid = 0;
                x.error = msg.clone();
            });
            write_line(&mut self.ctl_out, &format!("error: {msg}"));
            self.ctl_out = None;
            self.finish_clients(Some(code), true);
        }
        let _ = fs::remove_file(crate::exec::socket_path(&self.dir, &eid));
        let _ = fs::remove_file(crate::exec::pid_file(&self.dir, &eid));
        Ok(())
    }

    fn exec_once(&mut self, eid: &str) -> Result<()> {
        let rt = self.runtime()?;
        let console_path = crate::exec::console_path(&self.dir, eid);
        let (mut io, console, child_stdio) = self.prepare_io(&console_path)?;
        write_line(&mut self.ctl_out, "created");
        if !self.await_go()? {
            return Ok(());
        }
        let st = self.store.state_raw(&self.id)?;
        if st.status != Status::Running || st.pid <= 0 {
            return Err(Error::Conflict(format!(
                "Container {} is not running",
                self.id
            )));
        }
        let rec = crate::exec::load(&self.dir, eid)?;
        let process = crate::exec::write_process(&self.dir, &rec, st.pid)?;
        let pid_file = crate::exec::pid_file(&self.dir, eid);
        let opts = berth_runtime::ExecOptions {
            process: Some(process),
            detach: true,
            pid_file: Some(pid_file.clone()),
            console_socket: console.as_ref().map(|_| console_path.clone()),
            ..Default::default()
        };
        self.with_child_stdio(child_stdio, || rt.exec(&self.id, &opts))??;
        if let Some(l) = console {
            take_terminal(&l, &console_path, &mut io)?;
        }
        let pid: i32 = fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| Error::Invalid("the exec's pid file is missing".into()))?;
        let rec = crate::exec::update(&self.dir, eid, |x| {
            x.running = true;
            x.pid = pid;
        })?;
        // a resize that arrived before the terminal existed
        if let (Some(m), Some((h, w))) = (&io.pty, rec.console_size) {
            let _ = rustix::termios::tcsetwinsize(
                m,
                rustix::termios::Winsize {
                    ws_row: h,
                    ws_col: w,
                    ws_xpixel: 0,
                    ws_ypixel: 0,
                },
            );
        }
        write_line(&mut self.ctl_out, "ok");
        self.ctl_out = None;
        self.event(
            &format!("exec_start: {}", rec.cmd.join(" ")),
            &[("execID", eid.to_owned())],
        );
        let pidfd = rustix::process::pidfd_open(
            rustix::process::Pid::from_raw(pid).ok_or_else(|| Error::Invalid("no pid".into()))?,
            rustix::process::PidfdFlags::empty(),
        )
        .map_err(|e| sys_err("pidfd_open", e))?;
        let code = self.follow(&mut io, &pidfd, pid)?;
        self.event(
            "exec_die",
            &[("execID", eid.to_owned()), ("exitCode", code.to_string())],
        );
        // the code is on record before the streams close
        crate::exec::update(&self.dir, eid, |x| {
            x.running = false;
            x.exit_code = Some(code);
            x.pid = 0;
        })?;
        self.finish_clients(Some(code), true);
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

    fn prepare_io(
        &self,
        console_path: &Path,
    ) -> Result<(Io, Option<std::os::unix::net::UnixListener>, [OwnedFd; 3])> {
        let null = || -> Result<OwnedFd> {
            Ok(fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
                .map_err(|e| sys_err("open /dev/null", e))?
                .into())
        };
        if self.record.tty {
            let _ = fs::remove_file(console_path);
            let l = berth_runtime::container::unix::listen(console_path)
                .map_err(|e| sys_err("listen on the console socket", e))?;
            let io = Io {
                out: None,
                err: None,
                stdin: None,
                pty: None,
            };
            return Ok((
                io,
                Some(std::os::unix::net::UnixListener::from(l)),
                [null()?, null()?, null()?],
            ));
        }
        let pipe = || {
            rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
                .map_err(|e| sys_err("pipe", e))
        };
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let (stdin_r, stdin_w) = if self.record.open_stdin {
            let (r, w) = pipe()?;
            (r, Some(w))
        } else {
            (null()?, None)
        };
        Ok((
            Io {
                out: Some(out_r),
                err: Some(err_r),
                stdin: stdin_w,
                pty: None,
            },
            None,
            [stdin_r, out_w, err_w],
        ))
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

    /// Puts the environment of the container's links on the default
    /// bridge (as they run now) into the bundle, replacing what the last
    /// run added (its keys are kept in `link-env`); the container's own
    /// settings win.
    fn apply_link_env(&self) -> Result<()> {
        let added_path = self.dir.join("link-env");
        let before: Vec<String> = fs::read(&added_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        if before.is_empty() && !self.record.networks.iter().any(|x| !x.links.is_empty()) {
            return Ok(());
        }
        let path = self.dir.join("config.json");
        let mut spec = crate::oci::read(&path)?;
        let key = |e: &str| e.split('=').next().unwrap_or(e).to_owned();
        let mut added = Vec::new();
        if let Some(p) = spec.process_mut() {
            let mut env: Vec<String> = p.env().clone().unwrap_or_default();
            env.retain(|e| !before.contains(&key(e)));
            let own: Vec<String> = env.iter().map(|e| key(e)).collect();
            for e in crate::network::link_env(&self.root, &self.record) {
                let k = key(&e);
                if !own.contains(&k) {
                    added.push(k);
                    env.push(e);
                }
            }
            p.set_env(Some(env));
        }
        crate::oci::write(&path, &spec)?;
        let json = serde_json::to_vec(&added).map_err(|e| Error::Internal(e.to_string()))?;
        crate::container::write_atomic(&added_path, &json).map_err(|e| sys_err("write link-env", e))
    }

    /// Points the namespaces this container shares with others
    /// (`container:` modes of `--network`, `--pid`, `--ipc`) at those
    /// containers' current inits, which must run; with the network come
    /// their /etc/hosts, resolv.conf and hostname, with IPC their /dev/shm.
    fn join_shared_namespaces(&self) -> Result<()> {
        use crate::config::{IpcMode, NetworkMode, PidMode};
        use oci_spec::runtime::LinuxNamespaceType as T;
        let r = &self.record;
        let other = |m: Option<&String>| m.cloned();
        let shared = [
            (
                other(match &r.network {
                    NetworkMode::Container(c) => Some(c),
                    _ => None,
                }),
                T::Network,
                "network",
                "net",
            ),
            (
                other(match &r.namespaces.pid {
                    PidMode::Container(c) => Some(c),
                    _ => None,
                }),
                T::Pid,
                "pid",
                "pid",
            ),
            (
                other(match &r.namespaces.ipc {
                    IpcMode::Container(c) => Some(c),
                    _ => None,
                }),
                T::Ipc,
                "ipc",
                "ipc",
            ),
        ];
        if shared.iter().all(|(o, ..)| o.is_none()) {
            return Ok(());
        }
        let path = self.dir.join("config.json");
        let mut spec = crate::oci::read(&path)?;
        for (other, typ, kind, proc_name) in shared {
            let Some(other) = other else {
                continue;
            };
            let st = self.store.state_raw(&other).ok();
            let pid = st
                .filter(|s| matches!(s.status, Status::Running | Status::Paused) && s.pid > 0)
                .filter(|s| s.monitor_alive())
                .map(|s| s.pid)
                .ok_or_else(|| {
                    Error::Conflict(format!(
                        "cannot join {kind} namespace of a non running container: {other}"
                    ))
                })?;
            let ns = PathBuf::from(format!("/proc/{pid}/ns/{proc_name}"));
            if let Some(l) = spec.linux_mut()
                && let Some(list) = l.namespaces_mut()
            {
                for n in list.iter_mut().filter(|n| n.typ() == typ) {
                    n.set_path(Some(ns.clone()));
                }
            }
            if typ != T::Network {
                continue;
            }
            let other_etc = self.store.dir(&other).join("etc");
            for m in spec.mounts_mut().iter_mut().flatten() {
                let name = match m.destination().to_str() {
                    Some("/etc/hosts") => "hosts",
                    Some("/etc/resolv.conf") => "resolv.conf",
                    Some("/etc/hostname") => "hostname",
                    _ => continue,
                };
                m.set_source(Some(other_etc.join(name)));
            }
        }
        crate::oci::write(&path, &spec)
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

    /// Replaces this process with berth-shim, which follows the running
    /// container (init `pid`, stdio `io`) with a few pages of memory and
    /// executes berth again (`--resume`) at its exit. Returns only when the
    /// shim is not available or cannot be executed: the monitor then follows
    /// the container itself.
    fn handoff(&mut self, io: &Io, pid: i32) {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let shim = match crate::embedded::install(&self.root, "berth-shim", crate::embedded::SHIM) {
            Ok(Some(p)) => p,
            Ok(None) => return,
            Err(e) => {
                eprintln!("{e}; the monitor follows the container itself");
                return;
            }
        };
        // the berth binary the shim executes again (this one, even if the
        // file was replaced since)
        let exe = match rustix::fs::open(
            "/proc/self/exe",
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(e) => {
                eprintln!("open /proc/self/exe: {e}; the monitor follows the container itself");
                return;
            }
        };
        let mut passed: Vec<BorrowedFd<'_>> = vec![exe.as_fd(), self.listener.as_fd()];
        let mut cmd = std::process::Command::new(&shim);
        let num = |fd: &dyn AsRawFd| fd.as_raw_fd().to_string();
        cmd.arg("--pid").arg(pid.to_string());
        cmd.arg("--listen").arg(num(&self.listener));
        cmd.arg("--exe").arg(num(&exe));
        for (flag, fd) in [
            ("--out", &io.out),
            ("--err", &io.err),
            ("--pty", &io.pty),
            ("--stdin", &io.stdin),
        ] {
            if let Some(fd) = fd {
                cmd.arg(flag).arg(num(fd));
                passed.push(fd.as_fd());
            }
        }
        if self.record.open_stdin {
            cmd.arg("--open-stdin");
        }
        if self.record.stdin_once {
            cmd.arg("--stdin-once");
        }
        if self.record.log.driver != crate::config::LogDriver::None {
            let (max, files) = self.record.log.rotation().unwrap_or((0, 1));
            cmd.arg("--log").arg(crate::logs::LOG_FILE);
            cmd.arg(max.to_string()).arg(files.to_string());
        }
        if let (Some(h), Some(next)) = (&self.record.healthcheck, self.next_health) {
            let ms = |ns: i64| (ns / 1_000_000).max(0);
            let first = next.saturating_duration_since(Instant::now()).as_millis();
            let start_end = if h.start_period > 0 {
                epoch_ms() + ms(h.start_period)
            } else {
                0
            };
            cmd.arg("--health").arg(first.to_string());
            cmd.arg(crate::health::interval(h, false).as_millis().to_string());
            cmd.arg(ms(h.start_interval).to_string());
            cmd.arg(start_end.to_string());
            cmd.arg(&self.root).arg(&self.id);
        }
        for c in &self.clients {
            let mode = match c.kind {
                Kind::Wait => "w".to_owned(),
                Kind::Attach {
                    stdin,
                    stdout,
                    stderr,
                } => {
                    let flag = |on: bool, f: &'static str| if on { f } else { "" };
                    format!(
                        "a{}{}{}",
                        flag(stdin, "i"),
                        flag(stdout, "o"),
                        flag(stderr, "e")
                    )
                }
                Kind::New => continue,
            };
            cmd.arg("--client").arg(num(&c.fd)).arg(mode);
            passed.push(c.fd.as_fd());
        }
        cmd.arg("--")
            .arg("berth")
            .arg("monitor")
            .arg(&self.root)
            .arg(&self.id);
        cmd.arg("--resume").arg(self.began_ms.to_string());
        cmd.arg(self.backoff.as_millis().to_string());
        cmd.arg(num(&self.listener));
        let cloexec = |on: bool| {
            for fd in &passed {
                let flags = if on {
                    rustix::io::FdFlags::CLOEXEC
                } else {
                    rustix::io::FdFlags::empty()
                };
                let _ = rustix::io::fcntl_setfd(fd, flags);
            }
        };
        cloexec(false);
        let e = cmd.exec();
        cloexec(true);
        eprintln!(
            "execute {}: {e}; the monitor follows the container itself",
            shim.display()
        );
    }

    /// Whether the OOM killer killed a process of the container during
    /// this run (docker's `State.OOMKilled`), from the kernel's count in the
    /// container's cgroup: made for each run and removed by the runtime's
    /// delete, so this is read before that.
    fn oom_killed(&self, rt: &Runtime) -> bool {
        rt.oom_kills(&self.id).ok().flatten().is_some_and(|n| n > 0)
    }

    /// Waits for `go` from the spawner while serving clients. False if the
    /// spawner went away.
    fn await_go(&mut self) -> Result<bool> {
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

    /// Accepts pending clients and reads their request lines.
    fn accept(&mut self, io: Option<&Io>) {
        while let Ok((s, _)) = self.listener.accept() {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
            let mut c = Client {
                fd: s,
                kind: Kind::New,
                read_done: false,
            };
            // read the request line (small; sent at once by the engine)
            let mut line = Vec::new();
            let mut b = [0u8; 1];
            while line.len() < 4096 {
                match c.fd.read(&mut b) {
                    Ok(1) if b[0] == b'\n' => break,
                    Ok(1) => line.push(b[0]),
                    _ => {
                        line.clear();
                        break;
                    }
                }
            }
            match Request::parse(&line) {
                Some(Request::Attach {
                    stdin,
                    stdout,
                    stderr,
                }) => {
                    let stdin = stdin && self.record.open_stdin;
                    c.kind = Kind::Attach {
                        stdin,
                        stdout,
                        stderr,
                    };
                    c.read_done = !stdin;
                    if c.fd.write_all(b"\n").is_ok() {
                        let _ = c.fd.set_read_timeout(None);
                        let _ = c.fd.set_nonblocking(false);
                        self.clients.push(c);
                    }
                }
                Some(Request::Wait) => {
                    c.kind = Kind::Wait;
                    c.read_done = false;
                    if c.fd.write_all(b"\n").is_ok() {
                        self.clients.push(c);
                    }
                }
                Some(Request::Resize(h, w)) => {
                    if let Some(m) = io.and_then(|io| io.pty.as_ref()) {
                        let _ = rustix::termios::tcsetwinsize(
                            m,
                            rustix::termios::Winsize {
                                ws_row: h,
                                ws_col: w,
                                ws_xpixel: 0,
                                ws_ypixel: 0,
                            },
                        );
                    }
                    let _ = c.fd.write_all(b"\n");
                }
                // wake / unknown: answered and closed
                Some(Request::Wake) | None => {
                    let _ = c.fd.write_all(b"\n");
                }
            }
        }
    }
    /// Sends output to the log and the attached clients.
    fn output(&mut self, stream: u8, data: &[u8]) {
        self.log.write(stream, data);
        let mut frame = Vec::with_capacity(8 + data.len());
        frame.push(stream);
        frame.extend_from_slice(&[0, 0, 0]);
        frame.extend_from_slice(&(data.len() as u32).to_be_bytes());
        frame.extend_from_slice(data);
        self.clients.retain_mut(|c| match c.kind {
            Kind::Attach { stdout, stderr, .. } => {
                let wants = (stream == 1 && stdout) || (stream == 2 && stderr);
                !wants || c.fd.write_all(&frame).is_ok()
            }
            _ => true,
        });
    }

    /// Follows the running container until its init exits; returns the code.
    fn follow(&mut self, io: &mut Io, pidfd: &OwnedFd, pid: i32) -> Result<i32> {
        for fd in [&io.out, &io.err, &io.pty].into_iter().flatten() {
            nonblocking(fd.as_fd());
        }
        let mut buf = vec![0u8; 64 * 1024];
        let mut exited: Option<i32> = None;
        let mut drain_deadline: Option<Instant> = None;
        loop {
            let sources_open = io.out.is_some() || io.err.is_some() || io.pty.is_some();
            if let Some(code) = exited
                && (!sources_open || drain_deadline.is_some_and(|d| Instant::now() >= d))
            {
                self.log.flush();
                return Ok(code);
            }
            let mut fds: Vec<PollFd<'_>> = Vec::new();
            let mut tags: Vec<u8> = Vec::new(); // 0 pidfd 1 out 2 err 3 pty 4 listener 10+i client
            if exited.is_none() {
                fds.push(PollFd::new(pidfd, PollFlags::IN));
                tags.push(0);
            }
            if let Some(f) = &io.out {
                fds.push(PollFd::new(f, PollFlags::IN));
                tags.push(1);
            }
            if let Some(f) = &io.err {
                fds.push(PollFd::new(f, PollFlags::IN));
                tags.push(2);
            }
            if let Some(f) = &io.pty {
                fds.push(PollFd::new(f, PollFlags::IN));
                tags.push(3);
            }
            fds.push(PollFd::new(&self.listener, PollFlags::IN));
            tags.push(4);
            let mut client_idx = Vec::new();
            for (i, c) in self.clients.iter().enumerate() {
                if !c.read_done {
                    fds.push(PollFd::new(&c.fd, PollFlags::IN));
                    tags.push(10);
                    client_idx.push(i);
                }
            }
            let wake = match (
                drain_deadline,
                self.next_health.filter(|_| exited.is_none()),
            ) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let timeout = wake.map(|d| {
                let left = d.saturating_duration_since(Instant::now());
                rustix::time::Timespec {
                    tv_sec: left.as_secs() as i64,
                    tv_nsec: left.subsec_nanos() as i64,
                }
            });
            match rustix::event::poll(&mut fds, timeout.as_ref()) {
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(sys_err("poll", e)),
                Ok(_) => {}
            }
            let ready: Vec<(u8, PollFlags)> = tags
                .iter()
                .zip(fds.iter())
                .map(|(t, f)| (*t, f.revents()))
                .collect();
            drop(fds);
            if exited.is_none() && self.next_health.is_some_and(|t| Instant::now() >= t) {
                self.health_check();
            }
            let mut ci = 0;
            for (tag, rev) in ready {
                if tag == 10 {
                    let idx = client_idx[ci];
                    ci += 1;
                    if !rev.is_empty() {
                        self.client_input(idx, io, &mut buf);
                    }
                    continue;
                }
                if rev.is_empty() {
                    continue;
                }
                match tag {
                    0 => {
                        let st = rustix::process::waitpid(
                            rustix::process::Pid::from_raw(pid),
                            rustix::process::WaitOptions::NOHANG,
                        );
                        if let Ok(Some((_, st))) = st {
                            exited = Some(berth_runtime::container::exit_code(st));
                            drain_deadline = Some(Instant::now() + Duration::from_millis(500));
                        }
                    }
                    1..=3 => {
                        let slot = match tag {
                            1 => &mut io.out,
                            2 => &mut io.err,
                            _ => &mut io.pty,
                        };
                        let stream = if tag == 2 { 2 } else { 1 };
                        let n = match slot.as_ref().map(|f| rustix::io::read(f, &mut buf)) {
                            Some(Ok(n)) => n,
                            Some(Err(rustix::io::Errno::AGAIN)) => continue,
                            _ => 0,
                        };
                        if n == 0 {
                            *slot = None;
                            if tag == 3 {
                                io.stdin = None;
                            }
                        } else {
                            let data = buf[..n].to_vec();
                            self.output(stream, &data);
                        }
                    }
                    4 => self.accept(Some(io)),
                    _ => {}
                }
            }
            // clients whose reads ended and that are not attached for output go
            self.clients.retain(|c| !matches!(c.kind, Kind::New));
        }
    }

    fn client_input(&mut self, idx: usize, io: &mut Io, buf: &mut [u8]) {
        let c = &mut self.clients[idx];
        let n = match c.fd.read(buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return,
            Err(_) => 0,
        };
        match c.kind {
            Kind::Attach { stdin: true, .. } if n > 0 => {
                if let Some(w) = &io.stdin
                    && rustix::io::write(w, &buf[..n]).is_err()
                {
                    io.stdin = None;
                }
            }
            Kind::Attach { stdin: true, .. } => {
                c.read_done = true;
                // docker: with StdinOnce the container's stdin closes when
                // the attached client's input ends
                if self.record.stdin_once && io.pty.is_none() {
                    io.stdin = None;
                }
            }
            Kind::Wait if n == 0 => {
                // the waiter went away
                c.read_done = true;
                let _ = c.fd.shutdown(std::net::Shutdown::Both);
                self.clients.remove(idx);
            }
            _ => {
                if n == 0 {
                    c.read_done = true;
                }
            }
        }
    }

    /// Ends clients at an exit: attach streams close; waiters get the code
    /// (`final_` also ends waiters when there is no code to give).
    fn finish_clients(&mut self, code: Option<i32>, final_: bool) {
        let mut keep = Vec::new();
        for mut c in self.clients.drain(..) {
            match c.kind {
                Kind::Wait => match code {
                    Some(code) => {
                        let _ = c.fd.write_all(format!("{code}\n").as_bytes());
                    }
                    None if final_ => {}
                    None => keep.push(c),
                },
                _ => {
                    let _ = c.fd.shutdown(std::net::Shutdown::Both);
                }
            }
        }
        self.clients = keep;
    }
}

/// Receives the terminal the runtime sends to the console socket `l` and
/// makes it the process's stdio (`io.pty`, `io.stdin`).
fn take_terminal(l: &std::os::unix::net::UnixListener, path: &Path, io: &mut Io) -> Result<()> {
    let conn = rustix::net::accept(l).map_err(|e| sys_err("accept the console", e))?;
    let (_, master) = berth_runtime::sync::recv_fd(conn.as_fd())
        .map_err(|e| sys_err("receive the terminal", e))?;
    let _ = fs::remove_file(path);
    io.stdin = Some(rustix::io::fcntl_dupfd_cloexec(&master, 3).map_err(|e| sys_err("dup", e))?);
    io.pty = Some(master);
    Ok(())
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

fn spawn_with(
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

/// A request on a monitor's socket: one JSON line (berth-shim reads the
/// same lines), answered with a newline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// Attach to the process's streams: output comes as multiplexed frames
    /// (1 stdout, 2 stderr), the client's bytes go to stdin.
    Attach {
        /// Send the client's bytes to stdin.
        stdin: bool,
        /// Receive stdout.
        stdout: bool,
        /// Receive stderr.
        stderr: bool,
    },
    /// Receive the exit code (and a newline) when the process exits.
    Wait,
    /// Set the terminal's rows and columns.
    Resize(u16, u16),
    /// Wake a monitor waiting out a restart delay (to see a stop).
    Wake,
}

impl Request {
    /// The request line.
    pub fn line(&self) -> String {
        match *self {
            Request::Attach {
                stdin,
                stdout,
                stderr,
            } => format!(
                "{{\"attach\":{{\"stdin\":{stdin},\"stdout\":{stdout},\"stderr\":{stderr}}}}}"
            ),
            Request::Wait => r#"{"wait":true}"#.to_owned(),
            Request::Resize(h, w) => format!("{{\"resize\":[{h},{w}]}}"),
            Request::Wake => r#"{"wake":true}"#.to_owned(),
        }
    }

    /// Reads a request line (`None`: not one berth sends).
    pub fn parse(line: &[u8]) -> Option<Request> {
        let v: serde_json::Value = serde_json::from_slice(line).ok()?;
        if let Some(a) = v.get("attach") {
            let flag = |k: &str| a.get(k).and_then(|v| v.as_bool()).unwrap_or(false);
            return Some(Request::Attach {
                stdin: flag("stdin"),
                stdout: flag("stdout"),
                stderr: flag("stderr"),
            });
        }
        if v.get("wait").is_some() {
            return Some(Request::Wait);
        }
        if let Some(hw) = v.get("resize").and_then(|v| v.as_array()) {
            let n = |i: usize| {
                hw.get(i)
                    .and_then(|v| v.as_u64())
                    .and_then(|x| u16::try_from(x).ok())
            };
            return Some(Request::Resize(n(0)?, n(1)?));
        }
        v.get("wake").map(|_| Request::Wake)
    }
}

/// Connects to a container's monitor with a request; `None` if no monitor
/// listens.
pub fn connect(dir: &Path, request: &Request) -> Option<std::os::unix::net::UnixStream> {
    connect_socket(&dir.join(ATTACH_SOCKET), request)
}

/// Connects to a monitor's socket at `path` with a request.
pub fn connect_socket(path: &Path, request: &Request) -> Option<std::os::unix::net::UnixStream> {
    let fd = berth_runtime::container::unix::connect(path).ok()?;
    let mut s = std::os::unix::net::UnixStream::from(fd);
    let mut line = request.line();
    line.push('\n');
    s.write_all(line.as_bytes()).ok()?;
    let mut ack = [0u8; 1];
    match s.read(&mut ack) {
        Ok(1) if ack[0] == b'\n' => Some(s),
        _ => None,
    }
}
