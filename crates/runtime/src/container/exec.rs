//! `exec`: a new process inside a running container's namespaces and
//! cgroup, with its own credentials and the container's seccomp filter.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use berth_sys::fork::{CloneArgs, Forked};
use oci_spec::runtime::{Capability, LinuxNamespaceType as T, Process};
use rustix::thread::{LinkNameSpaceType, ThreadNameSpaceType};

use super::{Runtime, wait};
use crate::error::{Context, Error, Result};
use crate::process::{self, ProcessPlan};
use crate::state::Status;
use crate::sync::{self, Msg};

/// Options of `exec`.
#[derive(Clone, Debug, Default)]
pub struct ExecOptions {
    /// A process.json to run instead of building one from flags.
    pub process: Option<PathBuf>,
    /// Command and arguments.
    pub args: Vec<String>,
    /// Working directory.
    pub cwd: Option<PathBuf>,
    /// Extra environment.
    pub env: Vec<String>,
    /// Allocate a terminal.
    pub tty: bool,
    /// `uid[:gid]`.
    pub user: Option<(u32, Option<u32>)>,
    /// Supplementary groups.
    pub additional_gids: Vec<u32>,
    /// Capabilities to add.
    pub caps: Vec<String>,
    /// Set no_new_privs.
    pub no_new_privs: bool,
    /// Return once started.
    pub detach: bool,
    /// Write the process's pid here.
    pub pid_file: Option<PathBuf>,
    /// Send the terminal here.
    pub console_socket: Option<PathBuf>,
    /// Pass fds 3 .. 3+n.
    pub preserve_fds: u32,
    /// Allow exec into a paused container.
    pub ignore_paused: bool,
}

fn build_process(base: Option<&Process>, o: &ExecOptions) -> Result<Process> {
    if let Some(path) = &o.process {
        let text = std::fs::read(path)
            .map_err(|e| Error::Invalid(format!("process file {}: {e}", path.display())))?;
        return serde_json::from_slice::<Process>(&text)
            .map_err(|e| Error::Invalid(format!("process file {}: {e}", path.display())));
    }
    if o.args.is_empty() {
        return Err(Error::Invalid("exec needs a command (or --process)".into()));
    }
    let mut p = base.cloned().unwrap_or_default();
    p.set_args(Some(o.args.clone()));
    p.set_terminal(Some(o.tty));
    if let Some(cwd) = &o.cwd {
        p.set_cwd(cwd.clone());
    }
    if !o.env.is_empty() {
        let mut env = p.env().clone().unwrap_or_default();
        for e in &o.env {
            let key = e.split('=').next().unwrap_or(e);
            env.retain(|x| x.split('=').next() != Some(key));
            env.push(e.clone());
        }
        p.set_env(Some(env));
    }
    if let Some((uid, gid)) = o.user {
        let mut u = p.user().clone();
        u.set_uid(uid);
        if let Some(g) = gid {
            u.set_gid(g);
        }
        p.set_user(u);
    }
    if !o.additional_gids.is_empty() {
        let mut u = p.user().clone();
        u.set_additional_gids(Some(o.additional_gids.clone()));
        p.set_user(u);
    }
    if o.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if !o.caps.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for name in &o.caps {
            let c: Capability = serde_json::from_value(serde_json::Value::String(name.clone()))
                .map_err(|_| Error::Invalid(format!("unknown capability {name:?}")))?;
            for set in [
                caps.bounding().clone(),
                caps.effective().clone(),
                caps.permitted().clone(),
                caps.ambient().clone(),
            ]
            .into_iter()
            .enumerate()
            {
                let (i, s) = set;
                let mut s = s.unwrap_or_default();
                s.insert(c);
                match i {
                    0 => caps.set_bounding(Some(s)),
                    1 => caps.set_effective(Some(s)),
                    2 => caps.set_permitted(Some(s)),
                    _ => caps.set_ambient(Some(s)),
                };
            }
        }
        p.set_capabilities(Some(caps));
    }
    Ok(p)
}

impl Runtime {
    /// Runs a process in container `id`; returns its exit code (0 when
    /// detached).
    pub fn exec(&self, id: &str, o: &ExecOptions) -> Result<i32> {
        // The exec helper lives in the container's pid namespace: run it
        // from a sealed view of the runtime binary (CVE-2019-5736).
        crate::seal::ensure_sealed()?;
        let c = self.get(id)?;
        match c.status {
            Status::Running => {}
            Status::Created => {
                return Err(Error::State(format!(
                    "cannot exec in container {id}: it is created but not started"
                )));
            }
            Status::Paused if o.ignore_paused => {}
            s => {
                return Err(Error::State(format!(
                    "cannot exec in container {id}: it is {}",
                    s.as_str()
                )));
            }
        }
        if let Some(cg) = &c.state.cgroup
            && !cg.exists()
        {
            // outside it, the container's limits and device rules would
            // not hold for the process
            return Err(Error::State(format!(
                "cannot exec in container {id}: its cgroup is not reachable here ({})",
                crate::cgroups::UNREACHABLE_HINT
            )));
        }
        let spec = &c.state.config;
        let p = build_process(spec.process().as_ref(), o)?;
        let mut plan =
            ProcessPlan::from_spec(&p, spec, Some(&self.seccomp_cache()), o.preserve_fds)?;
        if !plan.cwd.is_absolute() {
            return Err(Error::Invalid(format!(
                "--cwd {} must be absolute",
                plan.cwd.display()
            )));
        }
        if plan.terminal && o.detach && o.console_socket.is_none() {
            return Err(Error::Invalid(
                "a detached exec with a terminal needs --console-socket".into(),
            ));
        }
        if !plan.terminal && o.console_socket.is_some() {
            return Err(Error::Invalid("--console-socket needs --tty".into()));
        }
        let pidfd = super::ops::open_pidfd(&c.state)?
            .ok_or_else(|| Error::State(format!("container {id} is not running")))?;
        let types: Vec<T> = spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .map(|n| n.iter().map(|n| n.typ()).collect())
            .unwrap_or_default();
        let mut join = ThreadNameSpaceType::empty();
        for t in &types {
            join |= match t {
                T::User => ThreadNameSpaceType::USER,
                T::Mount => ThreadNameSpaceType::MOUNT,
                T::Uts => ThreadNameSpaceType::HOST_NAME_AND_NIS_DOMAIN_NAME,
                T::Ipc => ThreadNameSpaceType::INTER_PROCESS_COMMUNICATION,
                T::Network => ThreadNameSpaceType::NETWORK,
                T::Cgroup => ThreadNameSpaceType::CONTROL_GROUP,
                T::Time => ThreadNameSpaceType::TIME,
                T::Pid => ThreadNameSpaceType::empty(),
            };
        }
        let joins_user = types.contains(&T::User);
        if types.contains(&T::Pid) {
            let pidns = rustix::fs::open(
                format!("/proc/{}/ns/pid", c.state.pid),
                rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )
            .ctx(|| "open the container's pid namespace")?;
            rustix::thread::move_into_link_name_space(
                pidns.as_fd(),
                Some(LinkNameSpaceType::ProcessID),
            )
            .ctx(|| "join the container's pid namespace")?;
        }
        let cgroup = c.state.cgroup.clone();
        let cgroup_fd = cgroup.as_ref().and_then(|cg| cg.clone_into_fd());
        let console = match &o.console_socket {
            Some(p) => Some(
                super::unix::connect(p)
                    .ctx(|| format!("connect to console socket {}", p.display()))?,
            ),
            None => None,
        };
        let (parent_ch, child_ch) = sync::pair().ctx(|| "socketpair")?;
        let signals = if o.detach {
            None
        } else {
            let set = super::create::forwardable_signals();
            berth_sys::signal::block(&set).ctx(|| "block signals")?;
            Some(berth_sys::signal::signalfd(&set).ctx(|| "signalfd")?)
        };
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
            .ctx(|| "prctl(PR_SET_DUMPABLE)")?;
        let args = CloneArgs {
            flags: 0,
            cgroup: cgroup_fd.as_ref().map(|f| f.as_fd()),
            want_pidfd: false,
        };
        let (forked, child) = berth_sys::fork::clone3(&args).ctx(|| "clone3")?;
        if let Forked::Child = forked {
            drop(parent_ch);
            exec_child(child_ch, &pidfd, join, joins_user, &mut plan, console);
        }
        drop(child_ch);
        let pid = child.expect("parent").pid;
        let killer = || {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty());
        };
        if cgroup_fd.is_none()
            && let Some(cg) = &cgroup
            && let Err(e) = cg.add_pid(pid.as_raw_nonzero().get())
        {
            killer();
            return Err(e.into());
        }
        parent_ch
            .send(
                &Msg::Go {
                    pid: pid.as_raw_nonzero().get(),
                },
                None,
            )
            .ctx(|| "signal the exec child")?;
        let mut pty: Option<OwnedFd> = None;
        loop {
            match parent_ch.recv() {
                Ok(Some((Msg::Pty, fd))) => pty = fd,
                Ok(Some((Msg::Error { message }, _))) => {
                    killer();
                    return Err(Error::Init(message));
                }
                Ok(Some((other, _))) => {
                    killer();
                    return Err(Error::Init(format!("unexpected message {other:?}")));
                }
                Ok(None) => break,
                Err(e) => {
                    killer();
                    return Err(Error::Io {
                        context: "wait for the exec child".into(),
                        source: e,
                    });
                }
            }
        }
        if let Some(p) = &o.pid_file {
            super::create::write_pid_file(p, pid.as_raw_nonzero().get())?;
        }
        if o.detach {
            return Ok(0);
        }
        wait::wait_child(pid, signals.as_ref().expect("foreground").as_fd(), pty)
    }
}

fn exec_child(
    ch: sync::Channel,
    pidfd: &OwnedFd,
    join: ThreadNameSpaceType,
    joins_user: bool,
    plan: &mut ProcessPlan,
    console: Option<OwnedFd>,
) -> ! {
    let r = (|| -> Result<std::convert::Infallible> {
        match ch.recv().ctx(|| "wait for the runtime")? {
            Some((Msg::Go { .. }, _)) => {}
            _ => berth_sys::fork::exit_now(1),
        }
        if !join.is_empty() {
            rustix::thread::move_into_thread_name_spaces(pidfd.as_fd(), join)
                .ctx(|| "join the container's namespaces")?;
        }
        let _ = joins_user;
        rustix::process::setsid().ctx(|| "setsid")?;
        if plan.terminal {
            let pty = crate::console::open_pty(plan.console_size)?;
            match &console {
                Some(sock) => {
                    crate::sync::send_fd(sock.as_fd(), &pty.slave_path, pty.master.as_fd())
                        .ctx(|| "send the terminal to the console socket")?
                }
                None => ch
                    .send(&Msg::Pty, Some(pty.master.as_fd()))
                    .ctx(|| "send the terminal")?,
            }
            crate::console::attach_slave(&pty, false)?;
        }
        process::apply_limits(plan)?;
        let cwd = process::open_cwd(plan)?;
        let seccomp_loaded = process::load_seccomp_early(plan)?;
        let setgroups_allowed =
            std::fs::read_to_string("/proc/self/setgroups").map_or(true, |s| s.trim() != "deny");
        process::switch_credentials(plan, setgroups_allowed)?;
        process::enter_cwd(plan, &cwd)?;
        drop(cwd);
        process::default_home(plan);
        let exe = process::find_executable(plan)?;
        Err(process::exec(plan, &exe, seccomp_loaded, None))
    })();
    let e = match r {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let _ = ch.send(
        &Msg::Error {
            message: e.to_string(),
        },
        None,
    );
    berth_sys::fork::exit_now(1)
}
