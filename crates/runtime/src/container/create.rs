//! `create` and `run`: the runtime side of starting a container.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use berth_sys::fork::{CloneArgs, Forked};
use berth_types::ContainerId;
use oci_spec::runtime::{LinuxNamespaceType as T, Spec};
use rustix::process::Pid;

use super::init::{self, InitCtx, StartVia};
use super::namespaces::{NamespacePlan, clone_flag};
use super::{Runtime, unix, wait};
use crate::cgroups::{Cgroup, Layout, resources};
use crate::error::{Context, Error, Result};
use crate::hooks::{self, Stage};
use crate::process::ProcessPlan;
use crate::rootfs::RootfsPlan;
use crate::spec;
use crate::state::{ContainerState, START_SOCKET, Status};
use crate::sync::{self, Msg};

/// Options of `create` and `run`.
#[derive(Clone, Debug, Default)]
pub struct CreateOptions {
    /// Container id.
    pub id: String,
    /// Bundle directory.
    pub bundle: PathBuf,
    /// Where to write the init's pid.
    pub pid_file: Option<PathBuf>,
    /// Where to send the terminal's master fd.
    pub console_socket: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root.
    pub no_pivot: bool,
    /// Do not join a new session keyring.
    pub no_new_keyring: bool,
    /// Pass fds 3 .. 3+n to the container.
    pub preserve_fds: u32,
    /// Mounts that make the root filesystem (from the image snapshotter),
    /// made inside the container's mount namespace.
    pub rootfs_mounts: Vec<berth_types::image::MountSpec>,
    /// The container is killed if the process that creates it dies (the
    /// engine's monitor creates it and must never leave a ghost behind).
    pub kill_with_parent: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Create,
    Run { detach: bool },
}

/// Undoes a half-made container if creation fails.
struct Guard<'a> {
    rt: &'a Runtime,
    id: String,
    cgroup: Option<Cgroup>,
    child: Option<(Pid, OwnedFd)>,
    /// Mounts made in the host's namespace (no mount namespace).
    host_mounts: Option<PathBuf>,
    armed: bool,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some((pid, pidfd)) = self.child.take() {
            let _ = rustix::process::pidfd_send_signal(&pidfd, rustix::process::Signal::KILL);
            let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty());
        }
        if let Some(root) = &self.host_mounts
            && let Err(e) = crate::rootfs::unmount_under(root)
        {
            tracing::warn!("cleanup: {e}");
        }
        if let Some(cg) = &self.cgroup
            && let Err(e) = cg.destroy()
        {
            tracing::warn!("cleanup: {e}");
        }
        if let Err(e) = self.rt.root.remove(&self.id) {
            tracing::warn!("cleanup: {e}");
        }
    }
}

/// A container whose init is set up and waiting.
pub(crate) struct Spawned {
    pub state: ContainerState,
    pub ch: sync::Channel,
    pub pid: Pid,
    pub pty: Option<OwnedFd>,
    pub signals: Option<OwnedFd>,
}

/// The error an init reported before exiting, if it did (read without
/// waiting on a live one).
fn init_error(ch: &sync::Channel) -> Option<Error> {
    let mut fds = [rustix::event::PollFd::new(ch, rustix::event::PollFlags::IN)];
    let ts = rustix::time::Timespec {
        tv_sec: 0,
        tv_nsec: 100_000_000,
    };
    if rustix::event::poll(&mut fds, Some(&ts)).ok()? == 0 {
        return None;
    }
    match ch.recv() {
        Ok(Some((Msg::Error { message }, _))) => Some(Error::Init(message)),
        _ => None,
    }
}

pub(crate) fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let path = std::path::absolute(path).ctx(|| format!("pid file {}", path.display()))?;
    let dir = path.parent().unwrap_or(Path::new("/"));
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    std::fs::write(&tmp, pid.to_string()).ctx(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).ctx(|| format!("write pid file {}", path.display()))
}

pub(crate) fn forwardable_signals() -> berth_sys::signal::SigSet {
    let mut set = berth_sys::signal::SigSet::empty();
    for s in 1..=64 {
        if !matches!(
            s,
            libc::SIGKILL
                | libc::SIGSTOP
                | libc::SIGSEGV
                | libc::SIGBUS
                | libc::SIGILL
                | libc::SIGFPE
                | libc::SIGTRAP
        ) && !(32..=33).contains(&s)
        {
            set.add(s);
        }
    }
    set
}

impl Runtime {
    /// `create`: sets the container up and leaves its init waiting for
    /// `start`.
    pub fn create(&self, opts: &CreateOptions) -> Result<()> {
        let sp = self.spawn(opts, Mode::Create)?;
        drop(sp);
        Ok(())
    }

    /// `run`: create + start, then (unless `detach`) wait for the container
    /// process, delete the container and return its exit code.
    pub fn run(&self, opts: &CreateOptions, detach: bool) -> Result<i32> {
        let sp = self.spawn(opts, Mode::Run { detach })?;
        let Spawned {
            state,
            ch,
            pid,
            pty,
            signals,
        } = sp;
        let id = state.id.clone();
        // From here the container exists: a failure must not leak it.
        let started = (|| -> Result<()> {
            ch.send(&Msg::Start, None).ctx(|| "start the container")?;
            match ch.recv().ctx(|| "wait for the container process")? {
                None => Ok(()),
                Some((Msg::Error { message }, _)) => Err(Error::Init(message)),
                Some((other, _)) => Err(Error::Init(format!("unexpected message {other:?}"))),
            }
        })();
        if let Err(e) = started {
            let _ = rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty());
            let _ = self.delete(&id, true);
            return Err(e);
        }
        self.phase("start");
        if let Some(h) = state
            .config
            .hooks()
            .as_ref()
            .and_then(|h| h.poststart().clone())
        {
            let st = state.oci_state(Status::Running).to_string();
            hooks::run_all_logged(Stage::Poststart, &h, &st);
        }
        if detach {
            return Ok(0);
        }
        let signals = signals.expect("run mode blocks signals");
        let code = wait::wait_child(pid, signals.as_fd(), pty)?;
        self.phase("wait");
        self.delete(&id, true)?;
        self.phase("delete");
        Ok(code)
    }

    pub(crate) fn spawn(&self, opts: &CreateOptions, mode: Mode) -> Result<Spawned> {
        let id = ContainerId::new(opts.id.as_str()).map_err(|e| Error::Invalid(e.to_string()))?;
        let bundle = spec::load_bundle(&opts.bundle)?;
        let spec: &Spec = &bundle.spec;
        let process = spec.process().as_ref().expect("validated");
        let terminal = process.terminal().unwrap_or(false);
        let detached = matches!(mode, Mode::Create | Mode::Run { detach: true });
        if terminal && detached && opts.console_socket.is_none() {
            return Err(Error::Invalid(
                "process.terminal is true but no --console-socket was given: a detached container \
                 hands its terminal to a console socket"
                    .into(),
            ));
        }
        if !terminal && opts.console_socket.is_some() {
            return Err(Error::Invalid(
                "--console-socket was given but process.terminal is false".into(),
            ));
        }
        // A container in a pid namespace of its own cannot see the runtime
        // while it sets up; it execs through the sealed trampoline. Any other
        // container (host or joined pid namespace) needs the runtime itself
        // re-executed from a sealed view first (CVE-2019-5736, see `seal`).
        let trampoline = if spec::creates_ns(spec, T::Pid) {
            crate::seal::trampoline()
        } else {
            None
        };
        if trampoline.is_none() {
            crate::seal::ensure_sealed()?;
        }
        let plan = ProcessPlan::from_spec(
            process,
            spec,
            Some(&self.seccomp_cache()),
            opts.preserve_fds,
        )?;
        for fd in 3..3 + opts.preserve_fds as i32 {
            if !berth_sys::fd::is_open(fd) {
                return Err(Error::Invalid(format!(
                    "--preserve-fds: fd {fd} is not open"
                )));
            }
        }
        let mut ns = NamespacePlan::from_spec(spec)?;
        let linux = spec.linux().as_ref();
        let resources_spec = linux.and_then(|l| l.resources().as_ref());
        let layout = Layout::detect().ctx(|| "read the cgroup layout")?;
        let needs_hugetlb = resources_spec
            .and_then(|r| r.hugepage_limits().as_ref())
            .is_some_and(|h| !h.is_empty());
        let cgroups_path = linux
            .and_then(|l| l.cgroups_path().as_ref())
            .map(|p| p.to_string_lossy().into_owned());
        let cgroup = Cgroup::plan(&layout, cgroups_path.as_deref(), id.as_str(), needs_hugetlb)?;
        let spec_devices: Vec<(char, i64, i64)> = linux
            .and_then(|l| l.devices().as_ref())
            .into_iter()
            .flatten()
            .map(|d| {
                let k = match d.typ() {
                    oci_spec::runtime::LinuxDeviceType::B => 'b',
                    _ => 'c',
                };
                (k, d.major(), d.minor())
            })
            .collect();
        let device_rules = resources::container_device_rules(resources_spec, &spec_devices)?;
        cgroup.check_devices(&device_rules)?;
        let mut rootfs_plan = RootfsPlan::from_spec(
            spec,
            &bundle.dir,
            &bundle.rootfs,
            opts.no_pivot,
            Some(cgroup.clone()),
        )?;
        rootfs_plan.rootfs_mounts = opts.rootfs_mounts.clone();
        let sysctls: Vec<(String, String)> = linux
            .and_then(|l| l.sysctl().clone())
            .map(|m| {
                let mut v: Vec<_> = m.into_iter().collect();
                v.sort();
                v
            })
            .unwrap_or_default();
        let hooks = spec.hooks().clone().unwrap_or_default();
        let runtime_hooks: Vec<_> = hooks
            .prestart()
            .iter()
            .flatten()
            .chain(hooks.create_runtime().iter().flatten())
            .cloned()
            .collect();
        self.phase("prepare");

        // Claim the id; from here on every failure undoes what was done.
        let dir = self.root.claim(id.as_str())?;
        let host_mounts = (!spec::has_ns(spec, T::Mount)).then(|| bundle.rootfs.clone());
        let mut guard = Guard {
            rt: self,
            id: id.to_string(),
            cgroup: None,
            child: None,
            host_mounts,
            armed: true,
        };
        cgroup.create()?;
        guard.cgroup = Some(cgroup.clone());
        cgroup.apply(resources_spec, &device_rules)?;
        self.phase("cgroup");

        let (parent_ch, child_ch) = sync::pair().ctx(|| "socketpair")?;
        let start = match mode {
            Mode::Create => {
                let l = unix::listen(&dir.join(START_SOCKET)).ctx(|| "create the start socket")?;
                StartVia::Socket(l)
            }
            Mode::Run { .. } => StartVia::Channel,
        };
        let console = match &opts.console_socket {
            Some(p) => Some(
                unix::connect(p).ctx(|| format!("connect to console socket {}", p.display()))?,
            ),
            None => None,
        };
        if let Some(pidns) = ns.take_join(T::Pid) {
            rustix::thread::move_into_link_name_space(
                pidns.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::ProcessID),
            )
            .ctx(|| "join the pid namespace")?;
        }
        let signals = match mode {
            Mode::Run { detach: false } => {
                let set = forwardable_signals();
                berth_sys::signal::block(&set).ctx(|| "block signals")?;
                Some(berth_sys::signal::signalfd(&set).ctx(|| "signalfd")?)
            }
            _ => None,
        };
        // The init must not be ptraceable or readable through /proc by the
        // container until it execs (CVE-2016-9962).
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
            .ctx(|| "prctl(PR_SET_DUMPABLE)")?;

        let cgroup_fd = cgroup.clone_into_fd();
        let mut flags = ns.new;
        let unshare_cgroupns = ns.creates(T::Cgroup) && cgroup_fd.is_none();
        if unshare_cgroupns {
            flags &= !clone_flag(T::Cgroup);
        }
        let mut state_json = serde_json::json!({
            "ociVersion": spec.version(),
            "id": id.as_str(),
            // Hooks run during create see "created": the environment exists
            // (runtime-spec lifecycle, steps 3-5).
            "status": "created",
            "pid": 0,
            "bundle": bundle.dir,
        });
        if let Some(a) = spec.annotations() {
            state_json["annotations"] = serde_json::to_value(a).unwrap_or_default();
        }
        let ctx = InitCtx {
            ch: child_ch,
            start,
            console,
            joins: std::mem::take(&mut ns.join),
            created: flags
                | if unshare_cgroupns {
                    clone_flag(T::Cgroup)
                } else {
                    0
                },
            unshare_cgroupns,
            rootfs: rootfs_plan,
            process: plan,
            hostname: spec.hostname().clone(),
            domainname: spec.domainname().clone(),
            sysctls,
            create_container_hooks: hooks.create_container().clone().unwrap_or_default(),
            start_container_hooks: hooks.start_container().clone().unwrap_or_default(),
            runtime_hooks: !runtime_hooks.is_empty(),
            state_json: state_json.clone(),
            new_keyring: !opts.no_new_keyring,
            id: id.to_string(),
            trampoline,
            kill_with_parent: opts.kill_with_parent,
        };
        let args = CloneArgs {
            flags,
            cgroup: cgroup_fd.as_ref().map(|f| f.as_fd()),
            want_pidfd: true,
        };
        let (forked, child) = berth_sys::fork::clone3(&args).ctx(|| "clone3")?;
        if let Forked::Child = forked {
            // The child must hold only its own end of the channel, so that
            // it sees end-of-file if the runtime dies.
            drop(parent_ch);
            init::run(ctx);
        }
        let child = child.expect("parent side has the child");
        let pid = child.pid;
        drop(ctx);
        guard.child = Some((pid, child.pidfd.expect("asked for a pidfd")));
        self.phase("clone");

        if flags & clone_flag(T::User) != 0 {
            write_id_maps(pid.as_raw_nonzero().get(), spec)?;
        }
        parent_ch
            .send(
                &Msg::Go {
                    pid: pid.as_raw_nonzero().get(),
                },
                None,
            )
            .ctx(|| "signal the init")?;
        // The init mounts meanwhile and waits for `CgroupJoined` before
        // anything that depends on its cgroup.
        let joined = (|| -> Result<()> {
            if cgroup_fd.is_none() {
                cgroup.add_pid(pid.as_raw_nonzero().get())?;
            }
            parent_ch
                .send(&Msg::CgroupJoined, None)
                .ctx(|| "signal the init")
        })();
        if let Err(e) = joined {
            // an init that failed first (and so left nothing to join or to
            // signal) has said why
            return Err(init_error(&parent_ch).unwrap_or(e));
        }
        self.phase("cgroup-join");
        state_json["pid"] = pid.as_raw_nonzero().get().into();
        let mut pty = None;
        let child_phases = loop {
            match parent_ch.recv().ctx(|| "wait for the container's init")? {
                Some((Msg::RunRuntimeHooks, _)) => {
                    let st = state_json.to_string();
                    hooks::run_all(
                        Stage::Prestart,
                        hooks.prestart().as_deref().unwrap_or(&[]),
                        &st,
                    )?;
                    hooks::run_all(
                        Stage::CreateRuntime,
                        hooks.create_runtime().as_deref().unwrap_or(&[]),
                        &st,
                    )?;
                    parent_ch
                        .send(&Msg::HooksDone, None)
                        .ctx(|| "signal the init")?;
                }
                Some((Msg::Pty, fd)) => pty = fd,
                Some((Msg::Ready { phases }, _)) => break phases,
                Some((Msg::Error { message }, _)) => return Err(Error::Init(message)),
                Some((other, _)) => {
                    return Err(Error::Init(format!("unexpected message {other:?}")));
                }
                None => {
                    let status =
                        rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty())
                            .ok()
                            .flatten()
                            .map(|(_, s)| format!("{s:?}"))
                            .unwrap_or_default();
                    guard.child = None;
                    return Err(Error::Init(format!(
                        "the container's init exited during setup {status}"
                    )));
                }
            }
        };
        self.child_phases(child_phases);
        let pid_start = crate::procfs::stat(pid.as_raw_nonzero().get())
            .map(|s| s.start_time)
            .ok_or_else(|| Error::Init("the container's init vanished".into()))?;
        let state = ContainerState {
            schema: crate::state::SCHEMA,
            id: id.to_string(),
            bundle: bundle.dir.clone(),
            rootfs: bundle.rootfs.clone(),
            pid: pid.as_raw_nonzero().get(),
            pid_start,
            boot_id: crate::procfs::boot_id(),
            created: crate::state::now_rfc3339(),
            owner: String::new(),
            annotations: spec
                .annotations()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            cgroup: Some(cgroup),
            config: bundle.spec.clone(),
        };
        self.root.save(&state)?;
        if let Some(p) = &opts.pid_file {
            write_pid_file(p, state.pid)?;
        }
        guard.armed = false;
        self.phase("ready");
        Ok(Spawned {
            state,
            ch: parent_ch,
            pid,
            pty,
            signals,
        })
    }
}

fn write_id_maps(pid: i32, spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref().expect("validated");
    let fmt = |maps: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| {
        maps.iter()
            .flatten()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect::<String>()
    };
    let uid = fmt(linux.uid_mappings());
    let gid = fmt(linux.gid_mappings());
    std::fs::write(format!("/proc/{pid}/uid_map"), &uid)
        .ctx(|| format!("write uid_map {uid:?}"))?;
    std::fs::write(format!("/proc/{pid}/gid_map"), &gid)
        .ctx(|| format!("write gid_map {gid:?}"))?;
    Ok(())
}
