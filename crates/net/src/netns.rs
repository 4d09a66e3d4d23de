//! Persistent network namespaces: an nsfs bind mount on a file, the way
//! `ip netns add` makes them, so a namespace outlives any process in it and
//! the runtime can join it by path (`{"type": "network", "path": ...}`).

use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;

use rustix::thread::LinkNameSpaceType;

use crate::error::{Error, Result};
use crate::netlink::Netlink;

/// `NSFS_MAGIC` from `<linux/magic.h>`: the file system of namespace files.
const NSFS_MAGIC: i64 = 0x6e73_6673;

/// Creates a new network namespace bind-mounted at `path` (which must not
/// exist; its parent is created), with `lo` up.
///
/// A short-lived thread unshares its network namespace and bind-mounts
/// `/proc/thread-self/ns/net` onto the file; the process's other threads are
/// untouched. The mount lives in the caller's mount namespace.
pub fn create(path: &Path) -> Result<()> {
    let _t = crate::timing::span("net.netns.create");
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(Error::io(format!("create {}", parent.display())))?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                Error::Conflict(format!(
                    "network namespace {} already exists",
                    path.display()
                ))
            } else {
                Error::Io(format!("create {}", path.display()), e)
            }
        })?;
    let made = std::thread::scope(|s| {
        s.spawn(|| -> Result<()> {
            berth_sys::ns::unshare_namespaces(libc::CLONE_NEWNET)
                .map_err(Error::io("unshare a network namespace"))?;
            rustix::mount::mount_bind("/proc/thread-self/ns/net", path).map_err(|e| {
                Error::Io(
                    format!("bind-mount a network namespace on {}", path.display()),
                    e.into(),
                )
            })?;
            loopback_up()
        })
        .join()
        .unwrap_or_else(|_| Err(Error::Invalid("network namespace thread panicked".into())))
    });
    if made.is_err() {
        let _ = remove(path);
    }
    made
}

/// Unmounts and deletes a namespace file made by [`create`]. Succeeds when
/// it is already gone; the namespace itself disappears with its last user.
pub fn remove(path: &Path) -> Result<()> {
    let _t = crate::timing::span("net.netns.remove");
    match rustix::mount::unmount(path, rustix::mount::UnmountFlags::DETACH) {
        Ok(()) | Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => {}
        Err(e) => {
            return Err(Error::Io(
                format!("unmount network namespace {}", path.display()),
                e.into(),
            ));
        }
    }
    crate::store::remove_file(path)
}

/// Whether `path` is a mounted namespace file.
// `f_type` is i64 here but narrower on some architectures.
#[allow(clippy::unnecessary_cast)]
pub fn is_mounted(path: &Path) -> bool {
    rustix::fs::statfs(path).is_ok_and(|s| s.f_type as i64 == NSFS_MAGIC)
}

/// Runs `f` on a new thread that has joined the network namespace at
/// `path`; sockets `f` opens belong to that namespace.
pub fn run_in<T: Send>(path: &Path, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    let ns = File::open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::NotFound(format!(
                "network namespace {} does not exist",
                path.display()
            ))
        } else {
            Error::Io(format!("open network namespace {}", path.display()), e)
        }
    })?;
    std::thread::scope(|s| {
        s.spawn(move || -> Result<T> {
            rustix::thread::move_into_link_name_space(ns.as_fd(), Some(LinkNameSpaceType::Network))
                .map_err(|e| {
                    Error::Io(
                        format!("join network namespace {}", path.display()),
                        e.into(),
                    )
                })?;
            drop(ns);
            f()
        })
        .join()
        .unwrap_or_else(|_| Err(Error::Invalid("network namespace thread panicked".into())))
    })
}

/// Brings `lo` up in the calling thread's namespace.
pub(crate) fn loopback_up() -> Result<()> {
    let mut nl = Netlink::open().map_err(Error::io("open netlink"))?;
    let idx = nl
        .link_index("lo")
        .map_err(Error::io("find lo"))?
        .ok_or_else(|| Error::NotFound("no lo in the network namespace".into()))?;
    nl.set_up(idx).map_err(Error::io("bring lo up"))
}
