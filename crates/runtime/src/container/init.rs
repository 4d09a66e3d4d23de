//! The container's init before it becomes the container process: runs in
//! the child created by `clone3` with the new namespaces, single-threaded,
//! on a copy of the runtime's memory. It reports every failure to the
//! parent over the sync channel and exits; on success it ends in `execve`.

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};

use oci_spec::runtime::{Hook, LinuxNamespaceType as T};

use crate::container::namespaces::clone_flag;
use crate::error::{Context, Error, Result};
use crate::hooks::{self, Stage};
use crate::process::{self, ProcessPlan};
use crate::rootfs::{self, RootfsPlan};
use crate::sync::{Channel, Msg, monotonic_ns};

/// How the init learns that it may start the container process.
#[derive(Debug)]
pub enum StartVia {
    /// `berth oci create`: a listening socket that `start` connects to.
    Socket(OwnedFd),
    /// `berth oci run`: a `Start` message on the sync channel.
    Channel,
}

/// Everything the init needs, prepared by the parent.
#[derive(Debug)]
pub struct InitCtx {
    /// Sync channel to the parent.
    pub ch: Channel,
    /// How start arrives.
    pub start: StartVia,
    /// `--console-socket`, connected.
    pub console: Option<OwnedFd>,
    /// Namespaces to join (user first; the pid namespace is joined by the
    /// parent).
    pub joins: Vec<(T, OwnedFd)>,
    /// Flags of the namespaces created by clone3.
    pub created: u64,
    /// Create a cgroup namespace after joining the cgroup.
    pub unshare_cgroupns: bool,
    /// The filesystem plan.
    pub rootfs: RootfsPlan,
    /// The process plan.
    pub process: ProcessPlan,
    /// Hostname to set.
    pub hostname: Option<String>,
    /// Domain name to set.
    pub domainname: Option<String>,
    /// Sysctls to write.
    pub sysctls: Vec<(String, String)>,
    /// createContainer hooks.
    pub create_container_hooks: Vec<Hook>,
    /// startContainer hooks.
    pub start_container_hooks: Vec<Hook>,
    /// Whether the parent has prestart/createRuntime hooks to run.
    pub runtime_hooks: bool,
    /// OCI state JSON template (pid filled in by `Go`).
    pub state_json: serde_json::Value,
    /// Join a fresh session keyring.
    pub new_keyring: bool,
    /// Container id (keyring name).
    pub id: String,
    /// The sealed exec trampoline (see `seal`), when the runtime itself was
    /// not re-executed from a sealed view.
    pub trampoline: Option<OwnedFd>,
    /// Keep SIGKILL as the parent-death signal after exec (the parent is
    /// the container's monitor: the container never outlives it).
    pub kill_with_parent: bool,
}

/// Runs the init; never returns.
pub fn run(mut ctx: InitCtx) -> ! {
    let result = setup(&mut ctx);
    match result {
        Ok(never) => match never {},
        Err((e, conn)) => {
            let message = e.to_string();
            match conn {
                Some(mut c) => {
                    let _ = c.write_all(format!("error: {message}").as_bytes());
                }
                None => {
                    let _ = ctx.ch.send(&Msg::Error { message }, None);
                }
            }
            berth_sys::fork::exit_now(1)
        }
    }
}

enum Never {}

type Fail = (Error, Option<std::os::unix::net::UnixStream>);

fn early<T>(r: Result<T>) -> std::result::Result<T, Fail> {
    r.map_err(|e| (e, None))
}

fn setup(ctx: &mut InitCtx) -> std::result::Result<Never, Fail> {
    let mut phases: Vec<(String, u64)> = vec![("init:start".into(), monotonic_ns())];
    // Die with the parent while setting up (cleared before `Ready`).
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    match early(ctx.ch.recv().ctx(|| "wait for the runtime"))? {
        Some((Msg::Go { pid }, _)) => ctx.state_json["pid"] = pid.into(),
        Some((other, _)) => {
            return Err((Error::Init(format!("unexpected message {other:?}")), None));
        }
        None => berth_sys::fork::exit_now(1),
    }
    phases.push(("init:go".into(), monotonic_ns()));
    let new_userns = ctx.created & clone_flag(T::User) != 0;
    if new_userns {
        let root_gid = rustix::process::Gid::from_raw(0);
        let root_uid = rustix::process::Uid::from_raw(0);
        early(
            rustix::thread::set_thread_res_gid(root_gid, root_gid, root_gid)
                .ctx(|| "become gid 0 in the user namespace"),
        )?;
        early(
            rustix::thread::set_thread_res_uid(root_uid, root_uid, root_uid)
                .ctx(|| "become uid 0 in the user namespace"),
        )?;
    }
    for (t, fd) in ctx.joins.drain(..) {
        early(
            rustix::thread::move_into_link_name_space(
                fd.as_fd(),
                Some(crate::container::namespaces::link_type(t)),
            )
            .ctx(|| {
                format!(
                    "join the {} namespace",
                    crate::container::namespaces::proc_name(t)
                )
            }),
        )?;
        if t == T::User {
            let r = rustix::process::Uid::from_raw(0);
            let g = rustix::process::Gid::from_raw(0);
            early(rustix::thread::set_thread_res_gid(g, g, g).ctx(|| "setresgid(0)"))?;
            early(rustix::thread::set_thread_res_uid(r, r, r).ctx(|| "setresuid(0)"))?;
        }
    }
    early(rustix::process::setsid().map(drop).ctx(|| "setsid"))?;
    phases.push(("init:setsid".into(), monotonic_ns()));
    if ctx.new_keyring {
        let name = std::ffi::CString::new(format!("_ses.{}", ctx.id)).unwrap_or_default();
        match berth_sys::join_session_keyring(&name) {
            Ok(()) => {}
            // No keyrings in this kernel, or refused by an outer seccomp.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EPERM)) => {}
            Err(e) => {
                return Err((
                    Error::Io {
                        context: "join a new session keyring".into(),
                        source: e,
                    },
                    None,
                ));
            }
        }
    }
    phases.push(("init:namespaces".into(), monotonic_ns()));

    // The runtime joins us to our cgroup meanwhile: wait for that before
    // the first cgroup mount (or the end of the mounts), then make the
    // cgroup namespace rooted at it.
    let (ch, unshare_cgroupns) = (&ctx.ch, ctx.unshare_cgroupns);
    let mut in_cgroup = || -> Result<()> {
        match ch
            .recv()
            .ctx(|| "wait for the runtime to join the cgroup")?
        {
            Some((Msg::CgroupJoined, _)) => {}
            Some((other, _)) => return Err(Error::Init(format!("unexpected message {other:?}"))),
            None => berth_sys::fork::exit_now(1),
        }
        if unshare_cgroupns {
            berth_sys::ns::unshare_namespaces(libc::CLONE_NEWCGROUP)
                .ctx(|| "create the cgroup namespace")?;
        }
        Ok(())
    };
    let root = early(rootfs::prepare(&ctx.rootfs, &mut in_cgroup))?;
    phases.push(("init:mounts".into(), monotonic_ns()));
    if ctx.runtime_hooks {
        early(
            ctx.ch
                .send(&Msg::RunRuntimeHooks, None)
                .ctx(|| "ask for the runtime hooks"),
        )?;
        match early(ctx.ch.recv().ctx(|| "wait for the runtime hooks"))? {
            Some((Msg::HooksDone, _)) => {}
            _ => berth_sys::fork::exit_now(1),
        }
    }
    if !ctx.create_container_hooks.is_empty() {
        early(hooks::run_all(
            Stage::CreateContainer,
            &ctx.create_container_hooks,
            &ctx.state_json.to_string(),
        ))?;
    }
    early(rootfs::enter(&ctx.rootfs, &root))?;
    drop(root);
    phases.push(("init:pivot_root".into(), monotonic_ns()));

    for (k, v) in &ctx.sysctls {
        let rel = format!("sys/{}", k.replace('.', "/"));
        early(crate::procfs::write_checked(&rel, v).ctx(|| format!("set sysctl {k}={v}")))?;
    }
    if ctx.process.terminal {
        let pty = early(crate::console::open_pty(ctx.process.console_size))?;
        match &ctx.console {
            Some(sock) => early(
                crate::sync::send_fd(sock.as_fd(), &pty.slave_path, pty.master.as_fd())
                    .ctx(|| "send the terminal to the console socket"),
            )?,
            None => early(
                ctx.ch
                    .send(&Msg::Pty, Some(pty.master.as_fd()))
                    .ctx(|| "send the terminal"),
            )?,
        }
        early(crate::console::attach_slave(&pty, true))?;
    }
    ctx.console = None;
    early(rootfs::finish(&ctx.rootfs))?;
    phases.push(("init:rootfs".into(), monotonic_ns()));

    if let Some(h) = ctx.hostname.as_deref().filter(|h| !h.is_empty()) {
        early(rustix::system::sethostname(h.as_bytes()).ctx(|| format!("set hostname {h:?}")))?;
    }
    if let Some(d) = ctx.domainname.as_deref().filter(|d| !d.is_empty()) {
        early(rustix::system::setdomainname(d.as_bytes()).ctx(|| format!("set domainname {d:?}")))?;
    }
    early(process::apply_limits(&ctx.process))?;
    // Without no_new_privs the filter needs CAP_SYS_ADMIN, which is only
    // held until the credentials change.
    let cwd = early(process::open_cwd(&ctx.process))?;
    let seccomp_loaded = early(process::load_seccomp_early(&ctx.process))?;
    let setgroups_allowed =
        std::fs::read_to_string("/proc/self/setgroups").map_or(true, |s| s.trim() != "deny");
    early(process::switch_credentials(&ctx.process, setgroups_allowed))?;
    early(process::enter_cwd(&ctx.process, &cwd))?;
    drop(cwd);
    process::default_home(&mut ctx.process);
    let exe = early(process::find_executable(&ctx.process))?;
    phases.push(("init:ready".into(), monotonic_ns()));
    // From now on the container outlives the runtime process, unless that
    // process is its monitor. (Set again: changing credentials cleared it.)
    let pdeath = ctx
        .kill_with_parent
        .then_some(rustix::process::Signal::KILL);
    early(
        rustix::process::set_parent_process_death_signal(pdeath)
            .ctx(|| "set the parent death signal"),
    )?;

    early(
        ctx.ch
            .send(&Msg::Ready { phases }, None)
            .ctx(|| "report ready"),
    )?;

    // Wait for start.
    let conn = match &ctx.start {
        StartVia::Channel => match ctx.ch.recv() {
            Ok(Some((Msg::Start, _))) => None,
            _ => berth_sys::fork::exit_now(1),
        },
        StartVia::Socket(listener) => {
            let conn = loop {
                match rustix::net::accept_with(listener, rustix::net::SocketFlags::CLOEXEC) {
                    Ok(c) => break c,
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(e) => {
                        return Err((
                            Error::Io {
                                context: "wait for start".into(),
                                source: e.into(),
                            },
                            None,
                        ));
                    }
                }
            };
            let mut c = std::os::unix::net::UnixStream::from(conn);
            let mut b = [0u8; 1];
            if c.read(&mut b).unwrap_or(0) == 0 {
                berth_sys::fork::exit_now(1);
            }
            Some(c)
        }
    };
    // The listening socket must not reach the container.
    ctx.start = StartVia::Channel;
    let fail = |e: Error, conn: Option<std::os::unix::net::UnixStream>| -> Fail { (e, conn) };
    if !ctx.start_container_hooks.is_empty() {
        let mut st = ctx.state_json.clone();
        st["status"] = "created".into();
        if let Err(e) = hooks::run_all(
            Stage::StartContainer,
            &ctx.start_container_hooks,
            &st.to_string(),
        ) {
            return Err(fail(e, conn));
        }
    }
    let err = process::exec(
        &ctx.process,
        &exe,
        seccomp_loaded,
        ctx.trampoline.as_ref().map(|t| t.as_fd()),
    );
    Err(fail(err, conn))
}
