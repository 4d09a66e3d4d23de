//! Protection of the runtime binary against being overwritten from inside
//! a container (CVE-2019-5736).
//!
//! A container process could reach the runtime's executable through
//! `/proc/<pid>/exe` of a runtime process in its pid namespace (the init
//! before it execs, an `exec` helper, or the runtime re-executed through a
//! `#!/proc/self/exe` script) and write to it once the runtime exits. So
//! every command that starts container processes first makes sure it runs
//! from a read-only file: if `/proc/self/exe` is not on a read-only mount,
//! it re-executes itself through a private, detached, read-only overlayfs
//! mount of its own directory (no copy: the page cache is shared; nothing
//! is left mounted). Where overlayfs is unavailable it falls back to a
//! sealed memfd copy.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{Mode, OFlags, SealFlags, StatVfsMountFlags};
use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags};

use crate::error::{Context, Error, Result};

/// Whether the running executable can be written through
/// `/proc/self/exe` (false when it is on a read-only mount or a sealed memfd).
pub fn exe_is_writable() -> bool {
    match rustix::fs::statvfs("/proc/self/exe") {
        Ok(st) if st.f_flag.contains(StatVfsMountFlags::RDONLY) => false,
        Ok(_) => !is_sealed_memfd(),
        Err(_) => true,
    }
}

fn is_sealed_memfd() -> bool {
    rustix::fs::open(
        "/proc/self/exe",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()
    .and_then(|fd| rustix::fs::fcntl_get_seals(&fd).ok())
    .is_some_and(|s| s.contains(SealFlags::WRITE))
}

/// Re-executes the current process from a read-only view of its binary
/// unless it already runs from one. Returns only if no re-exec was needed
/// (or on error).
pub fn ensure_sealed() -> Result<()> {
    if !exe_is_writable() {
        return Ok(());
    }
    let fd = match overlay_view() {
        Ok(fd) => fd,
        Err(e) => {
            tracing::debug!(
                "read-only overlay of the runtime binary failed ({e}); using a memfd copy"
            );
            memfd_copy()?
        }
    };
    let argv: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.as_bytes()).map_err(|_| Error::Invalid("argument with NUL".into())))
        .collect::<Result<_>>()?;
    let envp: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).ok()
        })
        .collect();
    let err = berth_sys::exec::execve_fd(fd.as_fd(), &argv, &envp);
    Err(Error::Io {
        context: "re-execute the runtime from its read-only view".into(),
        source: err,
    })
}

/// The running binary, opened through a detached read-only overlayfs whose
/// lower layer is the binary's directory.
fn overlay_view() -> Result<OwnedFd> {
    let exe = std::fs::read_link("/proc/self/exe").ctx(|| "read /proc/self/exe")?;
    let dir = exe.parent().unwrap_or(Path::new("/"));
    let name = exe
        .file_name()
        .ok_or_else(|| Error::Invalid("runtime binary has no name".into()))?;
    // The file at that path must still be the running binary.
    let running = rustix::fs::stat("/proc/self/exe").ctx(|| "stat /proc/self/exe")?;
    let on_disk = rustix::fs::stat(&exe).ctx(|| format!("stat {}", exe.display()))?;
    if (running.st_dev, running.st_ino) != (on_disk.st_dev, on_disk.st_ino) {
        return Err(Error::Invalid(
            "the runtime binary was replaced while running".into(),
        ));
    }
    // overlayfs needs two lower layers without an upper one; the second is
    // an empty detached tmpfs.
    let tmp = rustix::mount::fsopen("tmpfs", FsOpenFlags::FSOPEN_CLOEXEC).ctx(|| "fsopen tmpfs")?;
    rustix::mount::fsconfig_create(&tmp).ctx(|| "create tmpfs")?;
    let empty = rustix::mount::fsmount(
        &tmp,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_RDONLY,
    )
    .ctx(|| "fsmount tmpfs")?;
    let ov =
        rustix::mount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC).ctx(|| "fsopen overlay")?;
    let lower = format!("{}:{}", dir.display(), crate::paths::fd_path(empty.as_fd()));
    rustix::mount::fsconfig_set_string(&ov, "lowerdir", lower.as_str())
        .ctx(|| "overlay lowerdir")?;
    rustix::mount::fsconfig_create(&ov).ctx(|| "create overlay")?;
    let mnt = rustix::mount::fsmount(
        &ov,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_RDONLY
            | MountAttrFlags::MOUNT_ATTR_NODEV
            | MountAttrFlags::MOUNT_ATTR_NOSUID,
    )
    .ctx(|| "fsmount overlay")?;
    rustix::fs::openat(&mnt, name, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
        .ctx(|| "open the binary in the overlay")
}

/// A sealed in-memory copy of the running binary.
fn memfd_copy() -> Result<OwnedFd> {
    let fd = rustix::fs::memfd_create(
        "berth-sealed",
        rustix::fs::MemfdFlags::CLOEXEC | rustix::fs::MemfdFlags::ALLOW_SEALING,
    )
    .ctx(|| "memfd_create")?;
    let mut src = std::fs::File::open("/proc/self/exe").ctx(|| "open /proc/self/exe")?;
    let mut dst = std::fs::File::from(fd);
    std::io::copy(&mut src, &mut dst).ctx(|| "copy the runtime binary")?;
    let fd = OwnedFd::from(dst);
    rustix::fs::fcntl_add_seals(
        &fd,
        SealFlags::SEAL | SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE,
    )
    .ctx(|| "seal the copy")?;
    Ok(fd)
}
