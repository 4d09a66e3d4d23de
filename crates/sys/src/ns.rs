//! Namespace creation (`unshare(2)`).

use std::io;

/// Moves the calling process into new namespaces (`unshare(flags)`).
///
/// Only namespace flags (`CLONE_NEW*`) are accepted: the file-table and
/// fs-struct flags change state that Rust code may rely on.
pub fn unshare_namespaces(flags: i32) -> io::Result<()> {
    let allowed = libc::CLONE_NEWNS
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWNET
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWUSER
        | libc::CLONE_NEWCGROUP
        | 0x0000_0080; // CLONE_NEWTIME
    if flags & !allowed != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "unshare: non-namespace flags",
        ));
    }
    // SAFETY: namespace flags only change which kernel namespaces this process
    // belongs to; they do not invalidate any memory or descriptor.
    let ret = unsafe { libc::unshare(flags) };
    crate::cvt(ret as libc::c_long).map(drop)
}
