//! File-descriptor table operations that affect descriptors we do not own.

use std::io;

/// Marks every descriptor numbered `first` or higher close-on-exec
/// (`close_range(first, ~0, CLOSE_RANGE_CLOEXEC)`), so that none of them
/// reaches the next program while this one can still use them.
pub fn cloexec_from(first: u32) -> io::Result<()> {
    // SAFETY: CLOSE_RANGE_CLOEXEC only sets a flag on open descriptors; no
    // descriptor is closed, so no owner is left holding a dangling one.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    crate::cvt(ret).map(drop)
}

/// Clears close-on-exec on a raw descriptor number that the caller has
/// arranged to pass on (e.g. `--preserve-fds`).
pub fn clear_cloexec(fd: i32) -> io::Result<()> {
    // SAFETY: F_GETFD/F_SETFD only read and write a descriptor flag.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    crate::cvt(flags as libc::c_long)?;
    // SAFETY: as above.
    let ret = unsafe { libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) };
    crate::cvt(ret as libc::c_long).map(drop)
}

/// Duplicates the raw descriptor `old` onto `new` (`dup3`, no close-on-exec),
/// used to install stdio in a child that is about to exec.
pub fn dup_onto(old: i32, new: i32) -> io::Result<()> {
    if old == new {
        return clear_cloexec(new);
    }
    // SAFETY: dup3 replaces descriptor `new` in this process's table; callers
    // use it only on stdio numbers in a child that is about to exec.
    let ret = unsafe { libc::dup3(old, new, 0) };
    crate::cvt(ret as libc::c_long).map(drop)
}

/// Whether the raw descriptor number `fd` is open.
pub fn is_open(fd: i32) -> bool {
    // SAFETY: F_GETFD on any number is harmless; it fails with EBADF if closed.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

/// Takes ownership of a descriptor this program inherited across exec,
/// numbered on its command line by the program that executed it (the
/// monitor's listening socket and waiting clients, handed back by the
/// monitor's shim). Marks it close-on-exec. For start-up only, once per
/// number: nothing else in the process may own `fd`.
pub fn take_inherited(fd: i32) -> io::Result<std::os::fd::OwnedFd> {
    if fd < 3 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("descriptor {fd} is stdio, not an inherited one"),
        ));
    }
    // SAFETY: F_GETFD/F_SETFD only read and write a descriptor flag.
    let ret = unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    crate::cvt(ret as libc::c_long)?;
    // SAFETY: the descriptor is open (F_SETFD succeeded) and, by this
    // function's contract, owned by nothing else in this process.
    Ok(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}
