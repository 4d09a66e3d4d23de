//! Mount calls rustix does not wrap (`mount_setattr(2)`).

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `MOUNT_ATTR_*` bits for [`mount_setattr`].
pub mod attr {
    /// Read-only.
    pub const RDONLY: u64 = 0x0000_0001;
    /// Ignore setuid/setgid bits.
    pub const NOSUID: u64 = 0x0000_0002;
    /// No device access.
    pub const NODEV: u64 = 0x0000_0004;
    /// No program execution.
    pub const NOEXEC: u64 = 0x0000_0008;
    /// Mask of the atime settings.
    pub const ATIME_MASK: u64 = 0x0000_0070;
    /// Relative atime (the kernel default).
    pub const RELATIME: u64 = 0x0000_0000;
    /// No atime updates.
    pub const NOATIME: u64 = 0x0000_0010;
    /// Always update atime.
    pub const STRICTATIME: u64 = 0x0000_0020;
    /// No directory atime updates.
    pub const NODIRATIME: u64 = 0x0000_0080;
    /// Do not follow symlinks.
    pub const NOSYMFOLLOW: u64 = 0x0020_0000;
}

/// `AT_RECURSIVE`: apply to the whole mount tree.
pub const AT_RECURSIVE: u32 = 0x8000;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Changes mount attributes (`mount_setattr(dfd, path, flags, attr)`).
/// `propagation` is 0 (unchanged) or one of `MS_SHARED`/`MS_SLAVE`/
/// `MS_PRIVATE`/`MS_UNBINDABLE`.
pub fn mount_setattr(
    dirfd: BorrowedFd<'_>,
    path: &CStr,
    flags: u32,
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
) -> io::Result<()> {
    let attr = MountAttr {
        attr_set,
        attr_clr,
        propagation,
        userns_fd: 0,
    };
    // SAFETY: `path` is NUL-terminated and `attr` is a correctly sized
    // mount_attr; both outlive the call and the kernel only reads them.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dirfd.as_raw_fd(),
            path.as_ptr(),
            flags as libc::c_uint,
            &raw const attr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    crate::cvt(ret).map(drop)
}
