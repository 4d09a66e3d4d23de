//! Process creation with namespace flags (`clone3(2)` used like `fork(2)`).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use rustix::process::Pid;

/// Which side of a [`clone3`] this process is on.
#[derive(Debug)]
pub enum Forked {
    /// The new process.
    Child,
    /// The caller; holds the new process's pid.
    Parent(Pid),
}

/// Arguments to [`clone3`].
#[derive(Debug, Default)]
pub struct CloneArgs<'a> {
    /// `CLONE_NEW*` and other flags. `CLONE_VM`, `CLONE_THREAD` and
    /// `CLONE_SIGHAND` are refused: the child gets its own copy of memory.
    pub flags: u64,
    /// Place the child in this cgroup v2 directory (`CLONE_INTO_CGROUP`).
    pub cgroup: Option<BorrowedFd<'a>>,
    /// Receive a pidfd for the child (`CLONE_PIDFD`).
    pub want_pidfd: bool,
}

/// The result of [`clone3`] in the parent when a pidfd was asked for.
#[derive(Debug)]
pub struct Child {
    /// The child's pid.
    pub pid: Pid,
    /// A pidfd referring to the child, if asked for.
    pub pidfd: Option<std::os::fd::OwnedFd>,
}

/// Creates a child process as `fork(2)` does, with extra `clone3` flags.
///
/// The child continues on a copy-on-write copy of the caller's stack and
/// memory, like `fork`. This is sound only while the caller has a single
/// thread (another thread could hold a lock the child then waits on forever);
/// the function checks that and refuses otherwise.
///
/// Returns `Ok((Forked::Child, None))` in the child, where a panic aborts
/// the child instead of unwinding.
pub fn clone3(args: &CloneArgs<'_>) -> io::Result<(Forked, Option<Child>)> {
    let forbidden = (libc::CLONE_VM | libc::CLONE_THREAD | libc::CLONE_SIGHAND) as u64;
    if args.flags & forbidden != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "clone3: shared-memory flags",
        ));
    }
    if thread_count()? != 1 {
        return Err(io::Error::other(
            "clone3: the calling process has more than one thread",
        ));
    }
    let mut pidfd: libc::c_int = -1;
    let mut flags = args.flags;
    if args.cgroup.is_some() {
        flags |= 0x2_0000_0000; // CLONE_INTO_CGROUP
    }
    if args.want_pidfd {
        flags |= libc::CLONE_PIDFD as u64;
    }
    let mut cl = libc::clone_args {
        flags,
        pidfd: if args.want_pidfd {
            &raw mut pidfd as u64
        } else {
            0
        },
        child_tid: 0,
        parent_tid: 0,
        exit_signal: libc::SIGCHLD as u64,
        stack: 0,
        stack_size: 0,
        tls: 0,
        set_tid: 0,
        set_tid_size: 0,
        cgroup: args.cgroup.map_or(0, |fd| fd.as_raw_fd() as u64),
    };
    // SAFETY: without CLONE_VM the child gets its own copy of the address
    // space and continues on a copy of this stack, exactly as after fork(2).
    // The process has one thread (checked above), so no lock can be held by a
    // thread that does not exist in the child. `cl` and `pidfd` outlive the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &raw mut cl,
            std::mem::size_of::<libc::clone_args>(),
        )
    };
    match crate::cvt(ret)? {
        0 => {
            // the child runs on a copy of the caller's stack: a panic must
            // not unwind into frames that belong to the parent's story
            // (their destructors would run twice, in two processes)
            std::panic::set_hook(Box::new(|info| {
                eprintln!("berth: {info}");
                std::process::abort();
            }));
            Ok((Forked::Child, None))
        }
        pid => {
            let pid = Pid::from_raw(pid as i32).expect("clone3 returned a positive pid");
            let pidfd = if args.want_pidfd {
                // SAFETY: the kernel stored a fresh pidfd that nothing else owns.
                Some(unsafe {
                    <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(pidfd)
                })
            } else {
                None
            };
            Ok((Forked::Parent(pid), Some(Child { pid, pidfd })))
        }
    }
}

/// Number of threads of the calling process, from `/proc/self/stat`.
pub fn thread_count() -> io::Result<usize> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Field 20 (num_threads); fields after the parenthesised comm are plain.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    after
        .split_ascii_whitespace()
        .nth(17)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other("cannot parse /proc/self/stat"))
}

/// Ends the calling process at once with `code`, running no destructors,
/// atexit handlers or stdio flushes (the right exit for a forked child).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no Rust-managed memory.
    unsafe { libc::_exit(code) }
}
