//! berth's system layer: the only crate with `unsafe` code.
//!
//! Everything here is a thin, safe wrapper over one kernel call that rustix
//! does not already wrap safely. Each `unsafe` block says why it is sound in a
//! `// SAFETY:` comment. The rest of berth uses these wrappers and rustix's
//! safe API; it forbids `unsafe` itself.
#![allow(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod bpf;
pub mod caps;
pub mod exec;
pub mod fd;
pub mod fork;
pub mod malloc;
pub mod mount;
pub mod ns;
pub mod paths;
pub mod seccomp;
pub mod signal;

use std::io;

/// Converts a `-1`-on-error libc return value into an `io::Result`.
pub(crate) fn cvt(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Sets the process execution domain (`personality(2)`), e.g. `PER_LINUX32`.
pub fn set_personality(persona: u64) -> io::Result<()> {
    // SAFETY: personality takes a plain integer and touches no memory of ours.
    let ret = unsafe { libc::personality(persona as libc::c_ulong) };
    cvt(ret as libc::c_long).map(drop)
}

/// Joins a new anonymous-or-named session keyring
/// (`keyctl(KEYCTL_JOIN_SESSION_KEYRING, name)`), so a container does not
/// share the caller's keyring.
pub fn join_session_keyring(name: &std::ffi::CStr) -> io::Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: `name` is NUL-terminated and outlives the call; the kernel only
    // reads it.
    let ret =
        unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    cvt(ret).map(drop)
}
