//! Signal masks, dispositions and `signalfd(2)`.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// A set of signals (`sigset_t`).
#[derive(Clone, Copy)]
pub struct SigSet(libc::sigset_t);

impl std::fmt::Debug for SigSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let members: Vec<i32> = (1..=64).filter(|&s| self.contains(s)).collect();
        f.debug_tuple("SigSet").field(&members).finish()
    }
}

impl SigSet {
    /// The empty set.
    pub fn empty() -> Self {
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigemptyset initialises the whole sigset_t it is given.
        unsafe { libc::sigemptyset(set.as_mut_ptr()) };
        // SAFETY: initialised just above.
        SigSet(unsafe { set.assume_init() })
    }

    /// Every signal.
    pub fn full() -> Self {
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigfillset initialises the whole sigset_t it is given.
        unsafe { libc::sigfillset(set.as_mut_ptr()) };
        // SAFETY: initialised just above.
        SigSet(unsafe { set.assume_init() })
    }

    /// Adds `signo`; numbers outside 1..=64 are ignored.
    pub fn add(&mut self, signo: i32) {
        // SAFETY: self.0 is an initialised sigset_t; invalid numbers give EINVAL.
        unsafe { libc::sigaddset(&mut self.0, signo) };
    }

    /// Whether `signo` is in the set.
    pub fn contains(&self, signo: i32) -> bool {
        // SAFETY: self.0 is an initialised sigset_t.
        unsafe { libc::sigismember(&self.0, signo) == 1 }
    }
}

fn sigmask(how: libc::c_int, set: &SigSet) -> io::Result<SigSet> {
    let mut old = SigSet::empty();
    // SAFETY: both pointers refer to initialised sigset_t values we own.
    let ret = unsafe { libc::pthread_sigmask(how, &set.0, &mut old.0) };
    if ret != 0 {
        return Err(io::Error::from_raw_os_error(ret));
    }
    Ok(old)
}

/// Blocks the signals in `set`; returns the previous mask.
pub fn block(set: &SigSet) -> io::Result<SigSet> {
    sigmask(libc::SIG_BLOCK, set)
}

/// Replaces the signal mask; returns the previous one.
pub fn set_mask(set: &SigSet) -> io::Result<SigSet> {
    sigmask(libc::SIG_SETMASK, set)
}

/// Sets the disposition of `signo` to the default action.
pub fn set_default(signo: i32) -> io::Result<()> {
    set_handler(signo, libc::SIG_DFL)
}

/// Sets the disposition of `signo` to "ignore".
pub fn set_ignore(signo: i32) -> io::Result<()> {
    set_handler(signo, libc::SIG_IGN)
}

fn set_handler(signo: i32, handler: libc::sighandler_t) -> io::Result<()> {
    // SAFETY: a zeroed sigaction is a valid value (empty mask, no flags).
    let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
    act.sa_sigaction = handler;
    // SAFETY: SIG_DFL and SIG_IGN install no code of ours; `act` is valid.
    let ret = unsafe { libc::sigaction(signo, &act, std::ptr::null_mut()) };
    crate::cvt(ret as libc::c_long).map(drop)
}

/// The kernel's `struct sigaction` (x86_64 and aarch64 layout).
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// Gives every signal its default disposition and unblocks all of them, as a
/// freshly started program expects (Rust's runtime ignores SIGPIPE, and
/// ignored signals survive `execve`). Uses the raw system call: glibc
/// refuses to touch the two real-time signals it reserves, yet an ignored
/// one would be inherited by the next program all the same. Meant for a
/// single-threaded process about to `execve`.
pub fn reset_all() -> io::Result<()> {
    for signo in 1..=64 {
        if signo == libc::SIGKILL || signo == libc::SIGSTOP {
            continue;
        }
        let act = KernelSigaction {
            handler: libc::SIG_DFL,
            flags: 0,
            restorer: 0,
            mask: 0,
        };
        // SAFETY: SIG_DFL installs no code of ours; `act` has the kernel's
        // layout and size (8-byte signal set) and outlives the call.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                signo,
                &raw const act,
                std::ptr::null_mut::<u8>(),
                8usize,
            )
        };
        crate::cvt(ret)?;
    }
    set_mask(&SigSet::empty()).map(drop)
}

/// A signal read from a [`signalfd`].
#[derive(Clone, Copy, Debug)]
pub struct SignalInfo {
    /// Signal number.
    pub signo: i32,
    /// Sending pid (or the child's pid for SIGCHLD).
    pub pid: u32,
}

/// Creates a close-on-exec, non-blocking signalfd for `set` (which the caller
/// must have blocked).
pub fn signalfd(set: &SigSet) -> io::Result<OwnedFd> {
    // SAFETY: -1 asks for a new descriptor; set.0 is an initialised sigset_t.
    let fd = unsafe { libc::signalfd(-1, &set.0, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
    crate::cvt(fd as libc::c_long)?;
    // SAFETY: the kernel returned a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reads one pending signal from a signalfd; `Ok(None)` when none is pending.
pub fn read_signalfd(fd: BorrowedFd<'_>) -> io::Result<Option<SignalInfo>> {
    let mut info = MaybeUninit::<libc::signalfd_siginfo>::uninit();
    let size = std::mem::size_of::<libc::signalfd_siginfo>();
    // SAFETY: the buffer is exactly one signalfd_siginfo long and writable.
    let n = unsafe { libc::read(fd.as_raw_fd(), info.as_mut_ptr().cast(), size) };
    if n == -1 {
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::WouldBlock {
            return Ok(None);
        }
        return Err(err);
    }
    if n as usize != size {
        return Err(io::Error::other("short read from signalfd"));
    }
    // SAFETY: the kernel filled the whole structure (checked size above).
    let info = unsafe { info.assume_init() };
    Ok(Some(SignalInfo {
        signo: info.ssi_signo as i32,
        pid: info.ssi_pid,
    }))
}
