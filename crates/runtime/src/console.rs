//! Terminals: creating a container's pty (in the child, on the
//! container's own devpts), and relaying a pty to the caller's terminal.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{Mode, OFlags};
use rustix::pty::OpenptFlags;

use crate::error::{Context, Result};
use berth_sys::paths;

/// A new pty: the master (for whoever relays it) and the slave.
#[derive(Debug)]
pub struct Pty {
    /// Master side.
    pub master: OwnedFd,
    /// Slave side.
    pub slave: OwnedFd,
    /// Path of the slave inside the container.
    pub slave_path: String,
}

/// Opens a pty through the container's `/dev/ptmx` (call after pivot_root).
pub fn open_pty(size: Option<(u16, u16)>) -> Result<Pty> {
    let master =
        rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
            .ctx(|| "open /dev/ptmx")?;
    rustix::pty::grantpt(&master).ctx(|| "grantpt")?;
    rustix::pty::unlockpt(&master).ctx(|| "unlockpt")?;
    let name = rustix::pty::ptsname(&master, Vec::new()).ctx(|| "ptsname")?;
    let slave_path = name.to_string_lossy().into_owned();
    let slave = rustix::fs::open(
        name.as_c_str(),
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("open {slave_path}"))?;
    if let Some((rows, cols)) = size
        && rows > 0
        && cols > 0
    {
        let ws = rustix::termios::Winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        rustix::termios::tcsetwinsize(&slave, ws).ctx(|| "set the terminal size")?;
    }
    Ok(Pty {
        master,
        slave,
        slave_path,
    })
}

/// Makes the slave the process's controlling terminal and its stdio, and
/// (for a container's init) bind-mounts it on /dev/console.
pub fn attach_slave(pty: &Pty, console: bool) -> Result<()> {
    if console {
        let root = rustix::fs::open(
            "/",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ctx(|| "open /")?;
        let target = paths::create_all(root.as_fd(), Path::new("/dev/console"), paths::Kind::File)
            .ctx(|| "create /dev/console")?;
        let tree = rustix::mount::open_tree(
            &pty.slave,
            "",
            rustix::mount::OpenTreeFlags::OPEN_TREE_CLONE
                | rustix::mount::OpenTreeFlags::OPEN_TREE_CLOEXEC
                | rustix::mount::OpenTreeFlags::AT_EMPTY_PATH,
        )
        .ctx(|| format!("open_tree {}", pty.slave_path))?;
        rustix::mount::move_mount(
            &tree,
            "",
            &target,
            "",
            rustix::mount::MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH
                | rustix::mount::MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
        )
        .ctx(|| "mount the terminal on /dev/console")?;
    }
    rustix::process::ioctl_tiocsctty(&pty.slave).ctx(|| "make the pty the controlling terminal")?;
    for fd in 0..3 {
        berth_sys::fd::dup_onto(pty.slave.as_raw_fd(), fd)
            .ctx(|| format!("dup the pty onto fd {fd}"))?;
    }
    Ok(())
}

/// Saved terminal settings, restored on drop.
pub struct RawMode {
    fd: OwnedFd,
    saved: rustix::termios::Termios,
}

impl std::fmt::Debug for RawMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RawMode")
    }
}

impl RawMode {
    /// Puts `fd` (a terminal) into raw mode.
    pub fn enter(fd: BorrowedFd<'_>) -> io::Result<RawMode> {
        let saved = rustix::termios::tcgetattr(fd)?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(fd, rustix::termios::OptionalActions::Now, &raw)?;
        Ok(RawMode {
            fd: fd.try_clone_to_owned()?,
            saved,
        })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(
            &self.fd,
            rustix::termios::OptionalActions::Now,
            &self.saved,
        );
    }
}

/// Copies the caller's terminal size to the pty.
pub fn copy_winsize(from: BorrowedFd<'_>, to: BorrowedFd<'_>) {
    if let Ok(ws) = rustix::termios::tcgetwinsize(from) {
        let _ = rustix::termios::tcsetwinsize(to, ws);
    }
}
