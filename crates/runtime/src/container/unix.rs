//! Unix sockets addressed by paths of any length (through
//! `/proc/self/fd/<dir>/<name>`, which stays under `sun_path`'s 108 bytes).

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{Mode, OFlags};
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

fn short_addr(path: &Path) -> io::Result<(OwnedFd, SocketAddrUnix)> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "socket path has no name"))?;
    let dirfd = rustix::fs::open(
        dir,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let short = format!(
        "{}/{}",
        berth_sys::paths::fd_path(dirfd.as_fd()),
        name.to_string_lossy()
    );
    let addr = SocketAddrUnix::new(short.as_str())?;
    Ok((dirfd, addr))
}

/// Connects a stream socket to `path`.
pub fn connect(path: &Path) -> io::Result<OwnedFd> {
    let (_dir, addr) = short_addr(path)?;
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )?;
    rustix::net::connect(&fd, &addr)?;
    Ok(fd)
}

/// Binds and listens on `path` (mode 0600).
pub fn listen(path: &Path) -> io::Result<OwnedFd> {
    let (_dir, addr) = short_addr(path)?;
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )?;
    rustix::net::bind(&fd, &addr)?;
    rustix::fs::chmod(path, Mode::from_raw_mode(0o600))?;
    rustix::net::listen(&fd, 4)?;
    Ok(fd)
}
