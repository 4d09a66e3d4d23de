//! No mounts inside `/proc` (CVE-2019-19921, CVE-2023-27561, the rule of
//! runc's mount checks): a mount over a procfs file or directory could
//! redirect what the runtime and the kernel's security setup write there
//! (`/proc/self/attr` for LSM labels, `/proc/sys`), or hide what masking
//! hides. `/proc` itself takes only a procfs (a new one, or a bind of one),
//! and inside it only a few files that lxcfs-style filesystems emulate may
//! be mounted over.
//!
//! The destination checked is where the mount really lands: resolved inside
//! the rootfs through its symlinks (an image whose `/dev` is a symlink into
//! `/proc` is refused), and refused too when it lies on a procfs mounted
//! anywhere else.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Component, Path, PathBuf};

use berth_sys::paths;

use crate::error::{Error, Result};
use crate::rootfs::MountEntry;

/// Files inside /proc that may be mounted over: views of them that
/// lxcfs-style filesystems provide, and two sysctls CRIU and FIPS setups
/// bind.
const ALLOWED: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/sys/kernel/ns_last_pid",
    "/proc/sys/crypto/fips_enabled",
];

/// Checks mount `m` whose destination is `resolved` in the container (no
/// symlinks left in it); `on_procfs`: the destination is on a procfs.
pub fn check(m: &MountEntry, resolved: &Path, on_procfs: bool) -> Result<()> {
    let proc = Path::new("/proc");
    let via = if resolved == m.dest {
        String::new()
    } else {
        format!(" (it resolves to {} in the rootfs)", resolved.display())
    };
    if resolved == proc {
        let procfs = if m.is_bind() {
            source_is_procfs(&m.source)
        } else {
            m.fstype == "proc"
        };
        if procfs {
            return Ok(());
        }
        return Err(Error::Invalid(format!(
            "cannot mount {} on {}{via}: only a procfs may be mounted on /proc",
            what(m),
            m.dest.display()
        )));
    }
    let inside = resolved.starts_with(proc) || on_procfs;
    if !inside || ALLOWED.iter().any(|a| resolved == Path::new(a)) {
        return Ok(());
    }
    Err(Error::Invalid(format!(
        "cannot mount {} on {}{via}: it is inside /proc, where only {} may be mounted over",
        what(m),
        m.dest.display(),
        ALLOWED.join(", ")
    )))
}

/// The checks that can be made on the spec alone, before any process
/// exists: the destination as written (the child checks it resolved).
pub fn check_lexically(m: &MountEntry) -> Result<()> {
    if m.dest.components().any(|c| c == Component::ParentDir) {
        return Ok(());
    }
    check(m, &m.dest, false)
}

/// Checks the mount point `target`, opened inside the rootfs `root`.
pub fn check_target(root: BorrowedFd<'_>, target: BorrowedFd<'_>, m: &MountEntry) -> Result<()> {
    let resolved = container_path(root, target).map_err(|e| io_err(e, m))?;
    let on_procfs = crate::procfs::is_procfs(target).map_err(|e| io_err(e, m))?;
    check(m, &resolved, on_procfs)
}

/// For a mount point that could not be created: the refusal, if the part
/// of it that exists already leads into /proc (where nothing can be
/// created), so that the error names the real problem.
pub fn check_uncreated(root: BorrowedFd<'_>, m: &MountEntry) -> Result<()> {
    let mut existing = m.dest.clone();
    let mut missing: Vec<std::ffi::OsString> = Vec::new();
    loop {
        match paths::open(root, &existing) {
            Ok(fd) => {
                let mut resolved = container_path(root, fd.as_fd()).map_err(|e| io_err(e, m))?;
                resolved.extend(missing.iter().rev());
                let on_procfs = crate::procfs::is_procfs(&fd).map_err(|e| io_err(e, m))?;
                return check(m, &resolved, on_procfs);
            }
            Err(_) => match existing.file_name() {
                Some(name) => {
                    missing.push(name.to_owned());
                    existing.pop();
                }
                None => return Ok(()),
            },
        }
    }
}

/// The path in the container of `target`, an fd opened inside `root`.
fn container_path(root: BorrowedFd<'_>, target: BorrowedFd<'_>) -> io::Result<PathBuf> {
    let root = std::fs::read_link(paths::fd_path(root))?;
    let target = std::fs::read_link(paths::fd_path(target))?;
    let rel = target.strip_prefix(&root).map_err(|_| {
        io::Error::other(format!(
            "{} is outside the rootfs {}",
            target.display(),
            root.display()
        ))
    })?;
    Ok(Path::new("/").join(rel))
}

fn source_is_procfs(source: &str) -> bool {
    rustix::fs::open(
        source,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .is_ok_and(|fd| crate::procfs::is_procfs(&fd).unwrap_or(false))
}

fn what(m: &MountEntry) -> String {
    if m.is_bind() {
        format!("a bind of {}", m.source)
    } else {
        format!("a {}", m.fstype)
    }
}

fn io_err(e: io::Error, m: &MountEntry) -> Error {
    Error::Io {
        context: format!("resolve the mount point {}", m.dest.display()),
        source: e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mountopts;

    fn entry(dest: &str, fstype: &str, source: &str) -> MountEntry {
        let bind = fstype == "bind";
        MountEntry {
            dest: dest.into(),
            fstype: fstype.into(),
            source: source.into(),
            opts: mountopts::parse(&(if bind { vec!["bind".into()] } else { vec![] })).unwrap(),
            source_is_file: false,
        }
    }

    fn refused(m: &MountEntry, resolved: &str, on_procfs: bool) -> String {
        check(m, Path::new(resolved), on_procfs)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn nothing_is_mounted_inside_proc_but_the_allowed_files() {
        let tmpfs = entry("/proc/self/attr", "tmpfs", "tmpfs");
        let e = refused(&tmpfs, "/proc/self/attr", false);
        assert!(
            e.contains("inside /proc") && e.contains("/proc/cpuinfo"),
            "{e}"
        );
        let bind = entry("/proc/sys/kernel", "bind", "/tmp");
        assert!(refused(&bind, "/proc/sys/kernel", true).contains("a bind of /tmp"));
        for ok in [
            "/proc/cpuinfo",
            "/proc/meminfo",
            "/proc/sys/kernel/ns_last_pid",
        ] {
            check(&entry(ok, "bind", "/tmp"), Path::new(ok), true).unwrap();
        }
        // not exactly an allowed file
        refused(
            &entry("/proc/cpuinfo/x", "bind", "/tmp"),
            "/proc/cpuinfo/x",
            false,
        );
        refused(
            &entry("/proc/net/dev", "bind", "/tmp"),
            "/proc/net/dev",
            true,
        );
        // elsewhere is fine, /procfoo is not /proc
        check(&tmpfs_at("/tmp"), Path::new("/tmp"), false).unwrap();
        check(&tmpfs_at("/procfoo"), Path::new("/procfoo"), false).unwrap();
    }

    fn tmpfs_at(dest: &str) -> MountEntry {
        entry(dest, "tmpfs", "tmpfs")
    }

    #[test]
    fn symlinks_and_other_procfs_mounts_count_where_they_lead() {
        let dev = entry("/dev", "tmpfs", "tmpfs");
        let e = refused(&dev, "/proc/sys/kernel", false);
        assert!(e.contains("resolves to /proc/sys/kernel"), "{e}");
        // a procfs mounted at another place
        refused(
            &entry("/host/proc/sys", "tmpfs", "tmpfs"),
            "/host/proc/sys",
            true,
        );
    }

    #[test]
    fn proc_itself_takes_only_a_procfs() {
        check(&entry("/proc", "proc", "proc"), Path::new("/proc"), false).unwrap();
        check(&entry("/proc", "bind", "/proc"), Path::new("/proc"), false).unwrap();
        let e = refused(&entry("/proc", "tmpfs", "tmpfs"), "/proc", false);
        assert!(e.contains("only a procfs"), "{e}");
        refused(&entry("/proc", "bind", "/tmp"), "/proc", false);
        // ".." is left to the check of the resolved path
        check_lexically(&entry("/proc/../tmp", "tmpfs", "tmpfs")).unwrap();
        assert!(check_lexically(&entry("/proc/sys", "tmpfs", "tmpfs")).is_err());
    }
}
