//! Resolving and creating paths inside a container's root filesystem
//! without ever leaving it: every lookup is `openat2(RESOLVE_IN_ROOT)`
//! relative to an fd of the root, and what gets mounted on is the fd that
//! lookup returned (never a path a container could swap meanwhile;
//! CVE-2021-30465, CVE-2024-45310).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};

const RESOLVE: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

/// The path relative to the root, without leading `/`, `.` components or
/// trailing slashes.
pub fn relative(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| {
            !matches!(
                c,
                Component::RootDir | Component::CurDir | Component::Prefix(_)
            )
        })
        .collect()
}

/// Opens `path` inside `root` as an `O_PATH` fd (symlinks are followed but
/// can never lead out of `root`).
pub fn open(root: BorrowedFd<'_>, path: &Path) -> io::Result<OwnedFd> {
    open_flags(root, path, OFlags::PATH | OFlags::CLOEXEC)
}

/// Like [`open`] with explicit open flags.
pub fn open_flags(root: BorrowedFd<'_>, path: &Path, flags: OFlags) -> io::Result<OwnedFd> {
    let rel = relative(path);
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel.as_path()
    };
    Ok(rustix::fs::openat2(
        root,
        rel,
        flags | OFlags::CLOEXEC,
        Mode::empty(),
        RESOLVE,
    )?)
}

/// Opens directory `path` inside `root` refusing any symlink on the way
/// (for `/proc` and `/sys` mount points, which must be ordinary directories).
pub fn open_no_symlinks(root: BorrowedFd<'_>, path: &Path) -> io::Result<OwnedFd> {
    let rel = relative(path);
    Ok(rustix::fs::openat2(
        root,
        rel.as_path(),
        OFlags::PATH | OFlags::CLOEXEC | OFlags::DIRECTORY,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
    )?)
}

/// What to create at the end of a path that does not exist yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// An empty regular file (a bind-mount target for a file).
    File,
}

/// Opens `path` inside `root`, creating missing directories (mode 0755)
/// and, at the end, a directory or empty file. Dangling symlinks on the
/// way are followed by creating what they point to, inside `root`.
pub fn create_all(root: BorrowedFd<'_>, path: &Path, kind: Kind) -> io::Result<OwnedFd> {
    let mut rel = relative(path);
    for _ in 0..40 {
        match open(root, &rel) {
            Ok(fd) => return Ok(fd),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e),
        }
        let comps: Vec<Component<'_>> = rel.components().collect();
        // Find the longest prefix that exists.
        let mut parent = root.try_clone_to_owned()?;
        let mut i = 0;
        let mut redirected = None;
        while i < comps.len() {
            let prefix: PathBuf = comps[..=i].iter().collect();
            match open(root, &prefix) {
                Ok(fd) => {
                    parent = fd;
                    i += 1;
                    continue;
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(e) => return Err(e),
            }
            let Component::Normal(name) = comps[i] else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "bad path component",
                ));
            };
            // Missing, or a dangling symlink?
            if let Ok(target) = rustix::fs::readlinkat(&parent, name, Vec::new()) {
                use std::os::unix::ffi::OsStrExt;
                let target = PathBuf::from(std::ffi::OsStr::from_bytes(target.as_bytes()));
                let base: PathBuf = if target.is_absolute() {
                    PathBuf::new()
                } else {
                    comps[..i].iter().collect()
                };
                let mut next = base.join(relative(&target));
                for c in &comps[i + 1..] {
                    next.push(c);
                }
                redirected = Some(relative(&next));
                break;
            }
            let last = i + 1 == comps.len();
            if last && kind == Kind::File {
                match rustix::fs::openat(
                    &parent,
                    name,
                    OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::WRONLY
                        | OFlags::CLOEXEC
                        | OFlags::NOFOLLOW,
                    Mode::from_raw_mode(0o644),
                ) {
                    Ok(_) => {}
                    Err(e) if e == rustix::io::Errno::EXIST => {}
                    Err(e) => return Err(e.into()),
                }
            } else {
                match rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(0o755)) {
                    Ok(()) => {}
                    Err(e) if e == rustix::io::Errno::EXIST => {}
                    Err(e) => return Err(e.into()),
                }
            }
            let prefix: PathBuf = comps[..=i].iter().collect();
            parent = open(root, &prefix)?;
            i += 1;
        }
        match redirected {
            Some(next) => rel = next,
            None => return open(root, &rel),
        }
    }
    Err(io::Error::from_raw_os_error(libc::ELOOP))
}

/// `/proc/self/fd/N` for an fd, for the few calls that need a path.
pub fn fd_path(fd: impl AsFd) -> String {
    use std::os::fd::AsRawFd;
    format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn root_fd(p: &Path) -> OwnedFd {
        rustix::fs::open(
            p,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .unwrap()
    }

    #[test]
    fn creates_inside_and_follows_symlinks_within_the_root() {
        let t = tempfile::tempdir().unwrap();
        let rootp = t.path().join("root");
        std::fs::create_dir(&rootp).unwrap();
        let outside = t.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        // An absolute symlink to "/" must resolve to the root, not the host.
        symlink("/", rootp.join("evil")).unwrap();
        symlink("../../../../outside", rootp.join("evil2")).unwrap();
        let root = root_fd(&rootp);
        create_all(root.as_fd(), Path::new("/evil/tmp/x"), Kind::Dir).unwrap();
        assert!(rootp.join("tmp/x").is_dir());
        create_all(root.as_fd(), Path::new("evil2/y/file"), Kind::File).unwrap();
        assert!(
            rootp.join("outside/y/file").is_file(),
            "clamped to the root"
        );
        assert!(!outside.join("y").exists(), "nothing created outside");
    }

    #[test]
    fn dangling_symlinks_are_created_inside() {
        let t = tempfile::tempdir().unwrap();
        let rootp = t.path();
        symlink("/data/real", rootp.join("link")).unwrap();
        let root = root_fd(rootp);
        create_all(root.as_fd(), Path::new("/link/sub"), Kind::Dir).unwrap();
        assert!(rootp.join("data/real/sub").is_dir());
    }

    #[test]
    fn no_symlinks_mode_refuses_links() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("tmp")).unwrap();
        symlink("/tmp", t.path().join("proc")).unwrap();
        let root = root_fd(t.path());
        assert!(open_no_symlinks(root.as_fd(), Path::new("/proc")).is_err());
        assert!(open_no_symlinks(root.as_fd(), Path::new("/tmp")).is_ok());
    }
}
