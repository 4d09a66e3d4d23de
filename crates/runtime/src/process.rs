//! The container process: what to run and with which credentials, limits
//! and filters. [`ProcessPlan::from_spec`] checks everything in the
//! runtime before a child exists; the functions below apply it in the
//! child (the container's init, or an exec'd process).

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{PosixRlimitType, Process, Spec};
use rustix::process::{Resource, Rlimit};

use crate::caps::{self, CapPlan};
use crate::error::{Context, Error, Result};
use crate::seccomp::{self, Filter};

/// The PATH a container gets when its environment has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What to execute, as whom, with which limits.
#[derive(Clone, Debug)]
pub struct ProcessPlan {
    /// argv.
    pub args: Vec<String>,
    /// Environment (`KEY=value`).
    pub env: Vec<String>,
    /// Working directory inside the container.
    pub cwd: PathBuf,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Supplementary groups.
    pub additional_gids: Vec<u32>,
    /// umask, if set.
    pub umask: Option<u32>,
    /// Capability sets (None: keep the runtime's, which only happens with
    /// no `capabilities` in the spec: then all are dropped).
    pub caps: CapPlan,
    /// Capabilities requested but not held by the runtime (warned about).
    pub caps_unavailable: u64,
    /// `no_new_privs`.
    pub no_new_privs: bool,
    /// rlimits (resource, soft, hard).
    pub rlimits: Vec<(Resource, u64, u64)>,
    /// oom_score_adj.
    pub oom_score_adj: Option<i32>,
    /// Seccomp filter.
    pub seccomp: Option<Filter>,
    /// Allocate a terminal.
    pub terminal: bool,
    /// Initial terminal size (rows, cols).
    pub console_size: Option<(u16, u16)>,
    /// Execution domain.
    pub personality: Option<u64>,
    /// Extra fds passed through (3 .. 3+n).
    pub preserve_fds: u32,
}

fn resource(t: PosixRlimitType) -> Resource {
    use PosixRlimitType as T;
    match t {
        T::RlimitCpu => Resource::Cpu,
        T::RlimitFsize => Resource::Fsize,
        T::RlimitData => Resource::Data,
        T::RlimitStack => Resource::Stack,
        T::RlimitCore => Resource::Core,
        T::RlimitRss => Resource::Rss,
        T::RlimitNproc => Resource::Nproc,
        T::RlimitNofile => Resource::Nofile,
        T::RlimitMemlock => Resource::Memlock,
        T::RlimitAs => Resource::As,
        T::RlimitLocks => Resource::Locks,
        T::RlimitSigpending => Resource::Sigpending,
        T::RlimitMsgqueue => Resource::Msgqueue,
        T::RlimitNice => Resource::Nice,
        T::RlimitRtprio => Resource::Rtprio,
        T::RlimitRttime => Resource::Rttime,
    }
}

fn rlimit_name(t: PosixRlimitType) -> String {
    format!("{t:?}").to_uppercase().replace("RLIMIT", "RLIMIT_")
}

const CAP_SYS_RESOURCE: u32 = 24;

impl ProcessPlan {
    /// Builds and checks the plan. `seccomp_cache` is where compiled
    /// filters are kept.
    pub fn from_spec(
        p: &Process,
        spec: &Spec,
        seccomp_cache: Option<&Path>,
        preserve_fds: u32,
    ) -> Result<ProcessPlan> {
        let args = match (p.args(), p.command_line()) {
            (Some(a), _) if !a.is_empty() => a.clone(),
            (_, Some(c)) if !c.is_empty() => {
                return Err(Error::Unsupported(
                    "process.commandLine (a Windows field)".into(),
                ));
            }
            _ => {
                return Err(Error::Invalid(
                    "config.json: process.args must not be empty".into(),
                ));
            }
        };
        for a in &args {
            if a.contains('\0') {
                return Err(Error::Invalid(format!(
                    "process argument {a:?} contains a NUL byte"
                )));
            }
        }
        let env: Vec<String> = p.env().clone().unwrap_or_default();
        if let Some(e) = env.iter().find(|e| e.contains('\0')) {
            return Err(Error::Invalid(format!(
                "environment entry {e:?} contains a NUL byte"
            )));
        }
        if p.apparmor_profile().as_ref().is_some_and(|a| !a.is_empty()) && !apparmor_enabled() {
            return Err(Error::Unsupported(format!(
                "AppArmor profile {:?}: AppArmor is not enabled on this host",
                p.apparmor_profile().as_deref().unwrap_or("")
            )));
        }
        if p.selinux_label().as_ref().is_some_and(|l| !l.is_empty()) {
            tracing::debug!("SELinux is not enabled on this host: process label ignored");
        }
        if p.io_priority().is_some() {
            return Err(Error::Unsupported("process.ioPriority".into()));
        }
        if p.scheduler().is_some() {
            return Err(Error::Unsupported("process.scheduler".into()));
        }
        if p.exec_cpu_affinity().is_some() {
            return Err(Error::Unsupported("process.execCPUAffinity".into()));
        }

        // rlimits: never ask for more than the host allows without
        // CAP_SYS_RESOURCE; say which limit is at fault.
        let own_caps = berth_sys::caps::get().map_err(|e| Error::Io {
            context: "capget".into(),
            source: e,
        })?;
        let can_raise = own_caps.effective & (1 << CAP_SYS_RESOURCE) != 0;
        let mut rlimits = Vec::new();
        for r in p.rlimits().iter().flatten() {
            let res = resource(r.typ());
            let cur = rustix::process::getrlimit(res);
            if let Some(max) = cur.maximum
                && r.hard() > max
                && !can_raise
            {
                return Err(Error::Limit(format!(
                    "rlimit {}: hard limit {} is above this host's hard limit of {max}, and \
                         the runtime lacks CAP_SYS_RESOURCE to raise it",
                    rlimit_name(r.typ()),
                    r.hard()
                )));
            }
            rlimits.push((res, r.soft(), r.hard()));
        }

        let last = berth_sys::caps::last_cap();
        let (caps, caps_unavailable) = match p.capabilities() {
            Some(c) => CapPlan::from_spec(c).restrict(last, own_caps.permitted),
            None => (CapPlan::default(), 0),
        };
        if caps_unavailable != 0 {
            tracing::warn!(
                "capabilities the runtime does not hold are left out: {}",
                caps::names(caps_unavailable).join(", ")
            );
        }

        let seccomp = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
            Some(s) => Some(seccomp::compile_cached(s, seccomp_cache)?),
            None => None,
        };
        let personality = match spec.linux().as_ref().and_then(|l| l.personality().as_ref()) {
            None => None,
            Some(pers) => {
                if pers.flags().as_ref().is_some_and(|f| !f.is_empty()) {
                    return Err(Error::Unsupported("personality flags".into()));
                }
                Some(match pers.domain() {
                    oci_spec::runtime::LinuxPersonalityDomain::PerLinux => 0x0000,
                    oci_spec::runtime::LinuxPersonalityDomain::PerLinux32 => 0x0008,
                })
            }
        };
        let console_size = p.console_size().map(|b| {
            (
                b.height().min(u16::MAX as u64) as u16,
                b.width().min(u16::MAX as u64) as u16,
            )
        });
        Ok(ProcessPlan {
            args,
            env,
            cwd: p.cwd().clone(),
            uid: p.user().uid(),
            gid: p.user().gid(),
            additional_gids: p.user().additional_gids().clone().unwrap_or_default(),
            umask: p.user().umask(),
            caps,
            caps_unavailable,
            no_new_privs: p.no_new_privileges().unwrap_or(false),
            rlimits,
            oom_score_adj: p.oom_score_adj(),
            seccomp,
            terminal: p.terminal().unwrap_or(false),
            console_size,
            personality,
            preserve_fds,
        })
    }

    /// The value of `key` in the environment.
    pub fn getenv(&self, key: &str) -> Option<&str> {
        self.env
            .iter()
            .rev()
            .find_map(|e| e.strip_prefix(key)?.strip_prefix('='))
    }
}

fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.starts_with('Y'))
}

// ---------------------------------------------------------------- child side

/// Applies rlimits, oom_score_adj and personality (as root, before the
/// credentials change).
pub fn apply_limits(plan: &ProcessPlan) -> Result<()> {
    for &(res, soft, hard) in &plan.rlimits {
        let lim = Rlimit {
            current: (soft != u64::MAX).then_some(soft),
            maximum: (hard != u64::MAX).then_some(hard),
        };
        rustix::process::setrlimit(res, lim)
            .ctx(|| format!("setrlimit {res:?} to {soft}/{hard}"))?;
    }
    if let Some(adj) = plan.oom_score_adj {
        let cur: i32 = std::fs::read_to_string("/proc/self/oom_score_adj")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        if adj != cur {
            crate::procfs::write_checked(
                &format!(
                    "{}/oom_score_adj",
                    rustix::process::getpid().as_raw_nonzero()
                ),
                &adj.to_string(),
            )
            .map_err(|e| {
                if e.kind() == io::ErrorKind::PermissionDenied && adj < cur {
                    Error::Limit(format!(
                        "oomScoreAdj {adj} is below the runtime's own ({cur}); lowering it needs \
                         CAP_SYS_RESOURCE, which the runtime lacks"
                    ))
                } else {
                    Error::Io {
                        context: format!("set oom_score_adj to {adj}"),
                        source: e,
                    }
                }
            })?;
        }
    }
    if let Some(p) = plan.personality {
        berth_sys::set_personality(p).ctx(|| format!("personality({p:#x})"))?;
    }
    Ok(())
}

/// Drops the bounding set, switches to the container user and sets the
/// capability sets. `setgroups_allowed` is false inside a user namespace
/// whose setgroups is denied.
pub fn switch_credentials(plan: &ProcessPlan, setgroups_allowed: bool) -> Result<()> {
    let last = berth_sys::caps::last_cap();
    for cap in 0..=last.min(63) {
        if plan.caps.bounding & (1 << cap) == 0 {
            match berth_sys::caps::bounding_drop(cap) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
                Err(e) => {
                    return Err(Error::Io {
                        context: format!("drop {} from the bounding set", caps::name_of(cap)),
                        source: e,
                    });
                }
            }
        }
    }
    berth_sys::caps::set_keep_caps(true).ctx(|| "prctl(PR_SET_KEEPCAPS)")?;
    if setgroups_allowed {
        let groups: Vec<rustix::process::Gid> = plan
            .additional_gids
            .iter()
            .map(|&g| rustix::process::Gid::from_raw(g))
            .collect();
        rustix::thread::set_thread_groups(&groups).ctx(|| "setgroups")?;
    } else if !plan.additional_gids.is_empty() {
        return Err(Error::Invalid(
            "additionalGids cannot be set: setgroups is denied in this user namespace".into(),
        ));
    }
    let gid = rustix::process::Gid::from_raw(plan.gid);
    rustix::thread::set_thread_res_gid(gid, gid, gid).ctx(|| format!("setresgid({})", plan.gid))?;
    let uid = rustix::process::Uid::from_raw(plan.uid);
    rustix::thread::set_thread_res_uid(uid, uid, uid).ctx(|| format!("setresuid({})", plan.uid))?;
    berth_sys::caps::set_keep_caps(false).ctx(|| "prctl(PR_SET_KEEPCAPS)")?;
    let sets = berth_sys::caps::CapSets {
        effective: plan.caps.effective,
        permitted: plan.caps.permitted,
        inheritable: plan.caps.inheritable,
    };
    berth_sys::caps::set(&sets).map_err(|e| Error::Io {
        context: format!(
            "set capabilities (effective [{}], permitted [{}], inheritable [{}])",
            caps::names(sets.effective).join(" "),
            caps::names(sets.permitted).join(" "),
            caps::names(sets.inheritable).join(" ")
        ),
        source: e,
    })?;
    berth_sys::caps::ambient_clear().ctx(|| "clear ambient capabilities")?;
    for cap in 0..=last.min(63) {
        if plan.caps.ambient & (1 << cap) != 0
            && let Err(e) = berth_sys::caps::ambient_raise(cap)
        {
            tracing::debug!("cannot raise ambient {}: {e}", caps::name_of(cap));
        }
    }
    Ok(())
}

/// Opens the working directory inside the process's root (symlinks may
/// not lead out of it, and magic links such as `/proc/self/fd/7` are
/// refused: CVE-2024-21626). Done before seccomp and the credential change;
/// [`enter_cwd`] then changes into it as the container user.
pub fn open_cwd(plan: &ProcessPlan) -> Result<std::os::fd::OwnedFd> {
    let root = rustix::fs::open(
        "/",
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .ctx(|| "open /")?;
    berth_sys::paths::open_flags(
        std::os::fd::AsFd::as_fd(&root),
        &plan.cwd,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY,
    )
    .map_err(|e| {
        let why = match e.raw_os_error() {
            Some(libc::ELOOP) => {
                "it goes through a magic link (such as /proc/self/fd) or too many symlinks"
                    .to_owned()
            }
            Some(libc::EXDEV) => "it resolves outside the container's root".to_owned(),
            _ => e.to_string(),
        };
        Error::Invalid(format!("working directory {}: {why}", plan.cwd.display()))
    })
}

/// Changes into the directory [`open_cwd`] returned (a permission check
/// as the container user).
pub fn enter_cwd(plan: &ProcessPlan, cwd: &std::os::fd::OwnedFd) -> Result<()> {
    rustix::process::fchdir(cwd).map_err(|e| {
        Error::Invalid(format!(
            "cannot change to the working directory {}: {e}",
            plan.cwd.display()
        ))
    })
}

/// Adds `HOME` from the container's /etc/passwd if the environment lacks
/// it (as runc does).
pub fn default_home(plan: &mut ProcessPlan) {
    if plan.getenv("HOME").is_some() {
        return;
    }
    let home = std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 6 && f[2].parse::<u32>().ok() == Some(plan.uid))
                    .then(|| f[5].to_owned())
            })
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "/".to_owned());
    plan.env.push(format!("HOME={home}"));
}

/// Finds the program to run, as `execvp` would but with the container's
/// PATH, reporting the same errors runc does.
pub fn find_executable(plan: &ProcessPlan) -> Result<CString> {
    let name = &plan.args[0];
    let check = |p: &Path| -> io::Result<()> {
        let st = rustix::fs::stat(p)?;
        let ft = rustix::fs::FileType::from_raw_mode(st.st_mode);
        if ft == rustix::fs::FileType::Directory {
            return Err(io::Error::from_raw_os_error(libc::EISDIR));
        }
        if st.st_mode & 0o111 == 0 {
            return Err(io::Error::from_raw_os_error(libc::EACCES));
        }
        // Catch "exec format error" now, while it can still be reported.
        if let Ok(fd) = rustix::fs::open(
            p,
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        ) {
            let mut magic = [0u8; 4];
            if let Ok(n) = rustix::io::read(&fd, &mut magic)
                && n >= 2
                && magic[..n.min(4)] != *b"\x7fELF"
                && magic[..2] != *b"#!"
            {
                return Err(io::Error::from_raw_os_error(libc::ENOEXEC));
            }
        }
        Ok(())
    };
    let cstr = |p: &Path| CString::new(p.as_os_str().as_bytes()).expect("no NUL (checked)");
    if name.contains('/') {
        let p = Path::new(name);
        check(p).map_err(|e| Error::Invalid(format!("exec: {name:?}: stat {name}: {e}")))?;
        return Ok(cstr(p));
    }
    let path = plan.getenv("PATH").unwrap_or(DEFAULT_PATH);
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(name);
        if check(&candidate).is_ok() {
            return Ok(cstr(&candidate));
        }
    }
    Err(Error::Invalid(format!(
        "exec: {name:?}: executable file not found in $PATH"
    )))
}

/// Marks every fd but stdio and the preserved ones close-on-exec, so that
/// none reaches the container process. Must run before a seccomp filter
/// that may forbid `close_range` is loaded; fds opened afterwards are all
/// close-on-exec already.
pub fn close_fds_on_exec(plan: &ProcessPlan) -> Result<()> {
    berth_sys::fd::cloexec_from(3 + plan.preserve_fds).ctx(|| "close_range")?;
    for fd in 3..3 + plan.preserve_fds as i32 {
        berth_sys::fd::clear_cloexec(fd).ctx(|| format!("preserve fd {fd}"))?;
    }
    Ok(())
}

/// Loads the seccomp filter early (for processes without no_new_privs,
/// which need CAP_SYS_ADMIN to install it). Returns whether it loaded.
pub fn load_seccomp_early(plan: &ProcessPlan) -> Result<bool> {
    match (&plan.seccomp, plan.no_new_privs) {
        (Some(f), false) => {
            close_fds_on_exec(plan)?;
            seccomp::load(f)?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Everything that must happen right before `execve`: no_new_privs,
/// seccomp (if not loaded earlier), fds, umask and signals. Then execs.
/// Returns only on failure.
pub fn exec(
    plan: &ProcessPlan,
    path: &CString,
    seccomp_loaded: bool,
    trampoline: Option<std::os::fd::BorrowedFd<'_>>,
) -> Error {
    if plan.no_new_privs
        && let Err(e) = rustix::thread::set_no_new_privs(true)
    {
        return Error::Io {
            context: "prctl(PR_SET_NO_NEW_PRIVS)".into(),
            source: e.into(),
        };
    }
    if let (Some(f), false) = (&plan.seccomp, seccomp_loaded)
        && let Err(e) = seccomp::load(f)
    {
        return e.into();
    }
    if !seccomp_loaded && let Err(e) = close_fds_on_exec(plan) {
        return e;
    }
    if let Some(m) = plan.umask {
        rustix::process::umask(rustix::fs::Mode::from_raw_mode(m));
    } else {
        rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));
    }
    if let Err(e) = berth_sys::signal::reset_all() {
        return Error::Io {
            context: "reset signal handlers".into(),
            source: e,
        };
    }
    let argv: Vec<CString> = plan
        .args
        .iter()
        .map(|a| CString::new(a.as_str()).expect("checked"))
        .collect();
    let envp: Vec<CString> = plan
        .env
        .iter()
        .map(|e| CString::new(e.as_str()).expect("checked"))
        .collect();
    if let Some(t) = trampoline {
        // Through the sealed trampoline (see `seal`): argv is
        // ["berth-exec", program, argv...].
        let mut targv = vec![c"berth-exec".to_owned(), path.clone()];
        targv.extend(argv.iter().cloned());
        let err = berth_sys::exec::execve_fd(t, &targv, &envp);
        // A seccomp profile may allow execve but not execveat.
        if !matches!(
            err.raw_os_error(),
            Some(libc::EPERM) | Some(libc::ENOSYS) | Some(libc::EACCES)
        ) {
            return Error::Invalid(format!("exec {:?}: {err}", plan.args[0]));
        }
        let via_proc = CString::new(berth_sys::paths::fd_path(t)).expect("no NUL");
        let err = berth_sys::exec::execve(&via_proc, &targv, &envp);
        return Error::Invalid(format!("exec {:?}: {err}", plan.args[0]));
    }
    let err = berth_sys::exec::execve(path, &argv, &envp);
    Error::Invalid(format!("exec {:?}: {err}", plan.args[0]))
}
