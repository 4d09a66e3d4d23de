//! `docker cp`: a path of a container as a tar stream, and a tar stream
//! extracted into a directory of a container.
//!
//! Safety (CVE-2018-15664, CVE-2019-14271, CVE-2021-41089): berth never
//! runs code from the container and never chroots into it. It holds an fd
//! of the container's root (`/proc/<pid>/root` while it runs, with its
//! volumes; a detached mount of its root filesystem when it does not), and
//! every lookup is `openat2(RESOLVE_IN_ROOT)` from that fd, so a symlink
//! swapped in mid-copy resolves inside the container. Below the resolved
//! directory every step is `openat(O_NOFOLLOW)` relative to its parent, and
//! modes and owners are set through fds, never through paths.

use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use serde::Serialize;

use crate::run::{Engine, Error, Result};

/// `X-Docker-Container-Path-Stat`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PathStat {
    /// Base name.
    pub name: String,
    /// Size in bytes.
    pub size: i64,
    /// Go's `os.FileMode` bits (type bits as Go encodes them).
    pub mode: u32,
    /// RFC 3339.
    pub mtime: String,
    /// The target, for a symlink.
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

fn io_err(what: &str, e: impl Into<io::Error>) -> Error {
    Error::Io(what.to_owned(), e.into())
}

/// Go's FileMode type bits (what the docker CLI decodes).
fn go_mode(st_mode: u32) -> u32 {
    let perm = st_mode & 0o777;
    let mut m = perm;
    match FileType::from_raw_mode(st_mode) {
        FileType::Directory => m |= 1 << 31,
        FileType::Symlink => m |= 1 << 27,
        FileType::Fifo => m |= 1 << 25,
        FileType::Socket => m |= 1 << 24,
        FileType::BlockDevice => m |= 1 << 26,
        FileType::CharacterDevice => m |= (1 << 26) | (1 << 21),
        _ => {}
    }
    if st_mode & 0o4000 != 0 {
        m |= 1 << 23;
    }
    if st_mode & 0o2000 != 0 {
        m |= 1 << 22;
    }
    if st_mode & 0o1000 != 0 {
        m |= 1 << 20;
    }
    m
}

/// A root to resolve container paths in, and the path below it.
struct Rooted {
    root: OwnedFd,
    rel: PathBuf,
    /// The container path `root` stands for (a mount's destination for a
    /// stopped container's volume or bind; empty: `/`).
    prefix: PathBuf,
}

fn clean(path: &str) -> Result<PathBuf> {
    if !path.starts_with('/') {
        return Err(Error::Invalid(format!(
            "the path {path:?} must be absolute inside the container"
        )));
    }
    Ok(Path::new(path)
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect())
}

impl Engine {
    /// The root a container path resolves in: the running container's own
    /// view, or (stopped) the mount source holding the path, or a detached
    /// mount of its root filesystem.
    fn rooted(&self, key: &str, path: &str) -> Result<(Rooted, crate::Container)> {
        let c = self.container(key)?;
        let rel = clean(path)?;
        if c.state.is_active() && c.state.pid > 0 {
            let root = rustix::fs::open(
                format!("/proc/{}/root", c.state.pid),
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| io_err("open the container's root", e))?;
            // the pid must still be the container's (not reused meanwhile)
            let again = self.store.state_raw(&c.record.id)?;
            if again.pid != c.state.pid || !again.monitor_alive() {
                return Err(Error::Conflict(format!(
                    "container {} stopped during the copy",
                    c.record.id
                )));
            }
            return Ok((
                Rooted {
                    root,
                    rel,
                    prefix: PathBuf::new(),
                },
                c,
            ));
        }
        // stopped: the mount whose destination holds the path, longest first
        let mut best: Option<(&crate::volumes::MountPoint, PathBuf)> = None;
        for m in c
            .record
            .mounts
            .iter()
            .filter(|m| m.kind != crate::config::MountKind::Tmpfs)
        {
            let dest = clean(&m.destination)?;
            if let Ok(rest) = rel.strip_prefix(&dest)
                && best
                    .as_ref()
                    .is_none_or(|(b, _)| b.destination.len() < m.destination.len())
            {
                best = Some((m, rest.to_path_buf()));
            }
        }
        if let Some((m, rest)) = best {
            if m.kind == crate::config::MountKind::Volume
                && crate::volume_mount::driver_mounted(&self.root, &m.name)
            {
                return Err(Error::Invalid(format!(
                    "not supported yet: copying to or from {} of a stopped container: volume {} \
                     is mounted by its driver only while a container runs with it",
                    m.destination, m.name
                )));
            }
            let root = rustix::fs::open(
                &m.source,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| io_err(&format!("open {}", m.source), e))?;
            let prefix = clean(&m.destination)?;
            return Ok((
                Rooted {
                    root,
                    rel: rest,
                    prefix,
                },
                c,
            ));
        }
        let spec: berth_types::image::MountSpec = serde_json::from_slice(
            &fs::read(
                self.store
                    .dir(&c.record.id)
                    .join(crate::monitor::ROOTFS_FILE),
            )
            .map_err(|e| io_err("read rootfs.json", e))?,
        )
        .map_err(|e| Error::Invalid(format!("rootfs.json: {e}")))?;
        let root = berth_runtime::rootfs::open_detached(&spec)?;
        Ok((
            Rooted {
                root,
                rel,
                prefix: PathBuf::new(),
            },
            c,
        ))
    }

    /// `HEAD /containers/{id}/archive`: what is at `path` (not following a
    /// final symlink).
    pub fn archive_stat(&self, key: &str, path: &str) -> Result<PathStat> {
        let (r, _) = self.rooted(key, path)?;
        let (parent, name) = open_parent(&r, path, key)?;
        let st = match &name {
            Some(n) => rustix::fs::statat(&parent, n.as_str(), AtFlags::SYMLINK_NOFOLLOW),
            None => rustix::fs::fstat(&parent),
        }
        .map_err(|e| not_found(path, key, e))?;
        // docker: the path the whole chain of links ends at, absolute in
        // the container (`cp -L` copies from there)
        let link_target = if FileType::from_raw_mode(st.st_mode) == FileType::Symlink {
            final_target(&r, path)?
        } else {
            String::new()
        };
        Ok(PathStat {
            name: name.unwrap_or_else(|| "/".into()),
            size: st.st_size,
            mode: go_mode(st.st_mode),
            mtime: berth_runtime::state::format_rfc3339(st.st_mtime, st.st_mtime_nsec as u32),
            link_target,
        })
    }

    /// `GET /containers/{id}/archive`: `path` as a tar stream whose top
    /// entry is its base name (a directory with everything below it).
    pub fn archive_get(&self, key: &str, path: &str, out: impl Write) -> Result<PathStat> {
        self.archive_get_as(key, path, None, out)
    }

    /// [`Engine::archive_get`] with the top entry called `top` (`cp -L`:
    /// a link's target under the link's name).
    pub fn archive_get_as(
        &self,
        key: &str,
        path: &str,
        top: Option<&str>,
        out: impl Write,
    ) -> Result<PathStat> {
        let stat = self.archive_stat(key, path)?;
        let (r, _) = self.rooted(key, path)?;
        let (parent, name) = open_parent(&r, path, key)?;
        let mut tar = tar::Builder::new(out);
        tar.follow_symlinks(false);
        let top = top
            .map(str::to_owned)
            .or_else(|| name.clone())
            .unwrap_or_else(|| ".".into());
        match name {
            Some(n) => add_entry(&mut tar, parent.as_fd(), &n, Path::new(&top), 0)?,
            None => crate::changes::tree(&mut tar, parent.as_fd(), Path::new("."), CP, 0)?,
        }
        tar.finish().map_err(|e| io_err("write the archive", e))?;
        Ok(stat)
    }

    /// `PUT /containers/{id}/archive`: extracts a tar stream into the
    /// directory `path` of the container.
    /// `rename_top` renames the archive's top entry (`cp FILE ctr:/new`).
    pub fn archive_put(
        &self,
        key: &str,
        path: &str,
        input: impl Read,
        rename_top: Option<&str>,
    ) -> Result<()> {
        let (r, c) = self.rooted(key, path)?;
        if c.record.security.read_only_rootfs && r.rel.components().count() > 0 {
            // a volume or bind is writable; the root filesystem is not
            let in_mount = c
                .record
                .mounts
                .iter()
                .any(|m| !m.read_only && Path::new(path).starts_with(&m.destination));
            if !in_mount {
                return Err(Error::Conflict(
                    "container rootfs is marked read-only".into(),
                ));
            }
        }
        let dir = berth_sys::paths::open_flags(
            r.root.as_fd(),
            &r.rel,
            OFlags::RDONLY | OFlags::DIRECTORY,
        )
        .map_err(|e| {
            let code = e.raw_os_error();
            if code == Some(rustix::io::Errno::NOENT.raw_os_error()) {
                Error::NotFound(format!("Could not find the file {path} in container {key}"))
            } else if code == Some(rustix::io::Errno::NOTDIR.raw_os_error()) {
                Error::Invalid(format!("extraction point is not a directory: {path}"))
            } else {
                io_err(&format!("open {path} in the container"), e)
            }
        })?;
        extract_tar(dir.as_fd(), input, rename_top)
    }
}

/// Extracts a tar stream into the directory `dir` (nothing leaves it;
/// nothing on the way is followed). `rename_top` replaces the first path
/// component of every entry.
pub fn extract_tar(dir: BorrowedFd<'_>, input: impl Read, rename_top: Option<&str>) -> Result<()> {
    let mut ar = tar::Archive::new(input);
    for entry in ar
        .entries()
        .map_err(|e| Error::Invalid(format!("archive: {e}")))?
    {
        let mut entry = entry.map_err(|e| Error::Invalid(format!("archive: {e}")))?;
        let raw = entry.path_bytes().into_owned();
        let Some(mut rel) = berth_image::unpack::normalize(&raw) else {
            if raw.iter().all(|b| *b == b'.' || *b == b'/') {
                continue; // "./": the directory itself
            }
            return Err(Error::Invalid(format!(
                "archive entry {:?} leaves the destination",
                String::from_utf8_lossy(&raw)
            )));
        };
        if rel.as_os_str().is_empty() {
            continue; // "./" normalised: the directory itself
        }
        if let Some(top) = rename_top {
            let rest: PathBuf = rel.components().skip(1).collect();
            rel = Path::new(top).join(rest);
        }
        extract_one(dir, &rel, &mut entry)?;
    }
    Ok(())
}

/// Writes `name` (in the directory `parent`) as a tar stream whose top
/// entry is called `top`.
pub fn write_tar(parent: BorrowedFd<'_>, name: &str, top: &str, out: impl Write) -> Result<()> {
    let mut tar = tar::Builder::new(out);
    tar.follow_symlinks(false);
    add_entry(&mut tar, parent, name, Path::new(top), 0)?;
    tar.finish().map_err(|e| io_err("write the archive", e))
}

/// docker's message for a missing `path` in container `key` (as the
/// caller named it).
fn not_found(path: &str, key: &str, e: impl Into<io::Error>) -> Error {
    let e = e.into();
    if e.kind() == io::ErrorKind::NotFound {
        Error::NotFound(format!("Could not find the file {path} in container {key}"))
    } else {
        io_err(&format!("stat {path}"), e)
    }
}

/// `path` joined to `dir` (unless absolute) and cleaned of `.` and `..`.
fn lexical_join(dir: &str, path: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("{dir}/{path}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for c in joined.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            x => parts.push(x),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Follows the links at `path` (the last component, again and again, at
/// most 40 times) inside the root; the absolute path they end at.
fn final_target(r: &Rooted, path: &str) -> Result<String> {
    let mut cur = lexical_join("/", path);
    for _ in 0..40 {
        // a chain that leaves this root (a stopped container's mount) ends
        // here; the copy resolves the rest from the container's view
        let Ok(rel) = clean(&cur)?.strip_prefix(&r.prefix).map(Path::to_path_buf) else {
            return Ok(cur);
        };
        let (Some(name), Some(parent_rel)) = (rel.file_name(), rel.parent()) else {
            return Ok(cur);
        };
        let Ok(parent) = berth_sys::paths::open_flags(
            r.root.as_fd(),
            parent_rel,
            OFlags::RDONLY | OFlags::DIRECTORY,
        ) else {
            return Ok(cur); // dangling: the copy reports it
        };
        let Ok(st) = rustix::fs::statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW) else {
            return Ok(cur);
        };
        if FileType::from_raw_mode(st.st_mode) != FileType::Symlink {
            return Ok(cur);
        }
        let t = rustix::fs::readlinkat(&parent, name, Vec::new())
            .map_err(|e| io_err(&format!("readlink {cur}"), e))?;
        let dir = Path::new(&cur)
            .parent()
            .map(|d| d.display().to_string())
            .unwrap_or_else(|| "/".into());
        cur = lexical_join(&dir, &t.to_string_lossy());
    }
    Err(Error::Invalid(format!(
        "too many levels of symbolic links at {path}"
    )))
}

/// The directory holding the path (resolved in the root) and the final
/// name (None for the root itself). `path` and `key` name what is missing.
fn open_parent(r: &Rooted, path: &str, key: &str) -> Result<(OwnedFd, Option<String>)> {
    let name = r.rel.file_name().map(|n| n.to_string_lossy().into_owned());
    let parent_rel = r.rel.parent().unwrap_or(Path::new(""));
    let parent = berth_sys::paths::open_flags(
        r.root.as_fd(),
        parent_rel,
        OFlags::RDONLY | OFlags::DIRECTORY,
    )
    .map_err(|e| not_found(path, key, e))?;
    Ok((parent, name))
}

/// `cp` walks: nothing but files, directories and links.
const CP: crate::changes::Walk = crate::changes::Walk {
    dev: None,
    devices: false,
};

fn add_entry<W: Write>(
    tar: &mut tar::Builder<W>,
    parent: BorrowedFd<'_>,
    name: &str,
    at: &Path,
    depth: u32,
) -> Result<()> {
    let st = rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| io_err(&format!("stat {}", at.display()), e))?;
    crate::changes::put(tar, parent, name, at, &st, CP, depth)
}

/// Creates one archive entry below `dir`: parents made inside `dir`, the
/// final name replaced only if it is not a directory, nothing followed.
fn extract_one<R: Read>(
    dir: BorrowedFd<'_>,
    rel: &Path,
    entry: &mut tar::Entry<'_, R>,
) -> Result<()> {
    let parent_rel = rel.parent().unwrap_or(Path::new(""));
    let name = rel
        .file_name()
        .ok_or_else(|| Error::Invalid("archive entry without a name".into()))?;
    let parent = if parent_rel.as_os_str().is_empty() {
        rustix::fs::openat(
            dir,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io_err("open the destination", e))?
    } else {
        let p = berth_sys::paths::create_all(dir, parent_rel, berth_sys::paths::Kind::Dir)
            .map_err(|e| io_err(&format!("create {}", parent_rel.display()), e))?;
        rustix::fs::openat(
            &p,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io_err(&format!("open {}", parent_rel.display()), e))?
    };
    let h = entry.header().clone();
    let mode = Mode::from_raw_mode(h.mode().unwrap_or(0o644) & 0o7777);
    let uid = h.uid().unwrap_or(0) as u32;
    let gid = h.gid().unwrap_or(0) as u32;
    let existing = rustix::fs::statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW).ok();
    let is_dir = existing
        .as_ref()
        .is_some_and(|s| FileType::from_raw_mode(s.st_mode) == FileType::Directory);
    let kind = h.entry_type();
    // replace what is there, unless both are directories
    if existing.is_some() && !(is_dir && kind == tar::EntryType::Directory) {
        let flags = if is_dir {
            AtFlags::REMOVEDIR
        } else {
            AtFlags::empty()
        };
        rustix::fs::unlinkat(&parent, name, flags)
            .map_err(|e| io_err(&format!("replace {}", rel.display()), e))?;
    }
    match kind {
        tar::EntryType::Directory => {
            if !is_dir {
                rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(0o700))
                    .map_err(|e| io_err(&format!("mkdir {}", rel.display()), e))?;
            }
            let d = rustix::fs::openat(
                &parent,
                name,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| io_err(&format!("open {}", rel.display()), e))?;
            owner_mode(&d, uid, gid, mode)?;
        }
        tar::EntryType::Regular | tar::EntryType::Continuous => {
            let f = rustix::fs::openat(
                &parent,
                name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
            .map_err(|e| io_err(&format!("create {}", rel.display()), e))?;
            let mut file = fs::File::from(f);
            io::copy(entry, &mut file)
                .map_err(|e| io_err(&format!("write {}", rel.display()), e))?;
            owner_mode(&file, uid, gid, mode)?;
        }
        tar::EntryType::Symlink => {
            let target = entry
                .link_name_bytes()
                .ok_or_else(|| Error::Invalid("symlink without a target".into()))?
                .into_owned();
            let target = std::ffi::CString::new(target)
                .map_err(|_| Error::Invalid("symlink target with NUL".into()))?;
            rustix::fs::symlinkat(target.as_c_str(), &parent, name)
                .map_err(|e| io_err(&format!("symlink {}", rel.display()), e))?;
            let _ = rustix::fs::chownat(
                &parent,
                name,
                Some(rustix::fs::Uid::from_raw(uid)),
                Some(rustix::fs::Gid::from_raw(gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            );
        }
        tar::EntryType::Link => {
            // a hard link to an entry extracted before, inside the destination
            let target = entry
                .link_name_bytes()
                .and_then(|t| berth_image::unpack::normalize(&t))
                .ok_or_else(|| Error::Invalid("hard link leaving the destination".into()))?;
            let src = berth_sys::paths::open_flags(dir, &target, OFlags::PATH | OFlags::NOFOLLOW)
                .map_err(|e| io_err(&format!("link target {}", target.display()), e))?;
            rustix::fs::linkat(&src, "", &parent, name, AtFlags::EMPTY_PATH)
                .map_err(|e| io_err(&format!("link {}", rel.display()), e))?;
        }
        other => {
            return Err(Error::Invalid(format!(
                "not supported yet: copying {other:?} entries into a container ({})",
                rel.display()
            )));
        }
    }
    Ok(())
}

fn owner_mode(fd: &impl AsFd, uid: u32, gid: u32, mode: Mode) -> Result<()> {
    rustix::fs::fchown(
        fd,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
    )
    .map_err(|e| io_err("chown", e))?;
    rustix::fs::fchmod(fd, mode).map_err(|e| io_err("chmod", e))
}
