//! Loading a compiled seccomp BPF program.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

/// One classic-BPF instruction (`struct sock_filter`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SockFilter {
    /// Opcode.
    pub code: u16,
    /// Jump offset if true.
    pub jt: u8,
    /// Jump offset if false.
    pub jf: u8,
    /// Generic operand.
    pub k: u32,
}

/// `SECCOMP_FILTER_FLAG_NEW_LISTENER`: return a user-notification fd.
pub const FLAG_NEW_LISTENER: u32 = 1 << 3;

/// Installs `prog` as a seccomp filter on the calling thread
/// (`seccomp(SECCOMP_SET_MODE_FILTER, flags, prog)`). With
/// [`FLAG_NEW_LISTENER`] the notification fd is returned.
pub fn load_filter(prog: &[SockFilter], flags: u32) -> io::Result<Option<OwnedFd>> {
    if prog.is_empty() || prog.len() > u16::MAX as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "seccomp: bad program length",
        ));
    }
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: SockFilter has the layout of sock_filter (repr(C), same fields);
    // `fprog` and the program it points to outlive the call, and the kernel
    // only reads them (it copies the program).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags as libc::c_ulong,
            &raw const fprog,
        )
    };
    let ret = crate::cvt(ret)?;
    if flags & FLAG_NEW_LISTENER != 0 {
        // SAFETY: with NEW_LISTENER the kernel returns a fresh descriptor.
        Ok(Some(unsafe { OwnedFd::from_raw_fd(ret as i32) }))
    } else {
        Ok(None)
    }
}
