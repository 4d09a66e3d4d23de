//! `execve(2)` and `execveat(2)`.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

fn to_ptrs(list: &[CString]) -> Vec<*const libc::c_char> {
    list.iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// Replaces the process image with `path`. Returns only on failure.
pub fn execve(path: &CStr, argv: &[CString], envp: &[CString]) -> io::Error {
    let argv = to_ptrs(argv);
    let envp = to_ptrs(envp);
    // SAFETY: `path`, every argv/envp string and both NULL-terminated pointer
    // arrays stay alive for the duration of the call.
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    io::Error::last_os_error()
}

/// Replaces the process image with the file `fd` refers to
/// (`execveat(fd, "", ..., AT_EMPTY_PATH)`). Returns only on failure.
pub fn execve_fd(fd: BorrowedFd<'_>, argv: &[CString], envp: &[CString]) -> io::Error {
    let argv = to_ptrs(argv);
    let envp = to_ptrs(envp);
    let empty = c"";
    // SAFETY: as in `execve`; `fd` is a valid open descriptor for the call.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd.as_raw_fd(),
            empty.as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    io::Error::last_os_error()
}
