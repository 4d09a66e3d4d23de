//! Filesystem access below a tree's root fd. Every open is
//! `openat2(RESOLVE_IN_ROOT)` from the root (berth_sys::paths), with
//! `O_NOFOLLOW` on the last component, and paths handed around are the
//! canonical ones [`resolve`] produced (no symlink in them), so a tree
//! changed meanwhile still cannot lead outside its root.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, FileType, OFlags};

use super::ContextError;

/// What a path is, from `lstat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    File,
    Dir,
    Symlink,
    Fifo,
    Char,
    Block,
    /// Sockets and anything else: not copied.
    Other,
}

/// The metadata a copy keeps.
#[derive(Clone, Copy, Debug)]
pub(super) struct Meta {
    pub kind: Kind,
    /// Permission bits with setuid/setgid/sticky.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: u64,
    pub dev: u64,
    pub ino: u64,
    pub nlink: u64,
    pub rdev: u64,
}

impl Meta {
    pub fn from_stat(st: &rustix::fs::Stat) -> Meta {
        let kind = match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile => Kind::File,
            FileType::Directory => Kind::Dir,
            FileType::Symlink => Kind::Symlink,
            FileType::Fifo => Kind::Fifo,
            FileType::CharacterDevice => Kind::Char,
            FileType::BlockDevice => Kind::Block,
            _ => Kind::Other,
        };
        Meta {
            kind,
            mode: st.st_mode & 0o7777,
            uid: st.st_uid,
            gid: st.st_gid,
            size: u64::try_from(st.st_size).unwrap_or(0),
            mtime: u64::try_from(st.st_mtime).unwrap_or(0),
            dev: st.st_dev,
            ino: st.st_ino,
            nlink: st.st_nlink,
            rdev: st.st_rdev,
        }
    }
}

/// An I/O error naming what was being done.
pub(super) fn io_err(what: impl Into<String>, e: impl Into<io::Error>) -> ContextError {
    ContextError::Io {
        context: what.into(),
        source: e.into(),
    }
}

/// Joins canonical components into a relative path (`""` for the root).
pub(super) fn join(parts: &[String]) -> String {
    parts.join("/")
}

/// Opens `rel` (canonical, relative to the root) with `flags`, never
/// following a symlink at its end and never leaving the root.
pub(super) fn open(root: BorrowedFd<'_>, rel: &str, flags: OFlags) -> io::Result<OwnedFd> {
    berth_sys::paths::open_flags(root, Path::new(rel), flags | OFlags::NOFOLLOW)
}

/// `lstat` of `rel` inside the root.
pub(super) fn lstat(root: BorrowedFd<'_>, rel: &str) -> io::Result<Meta> {
    let (parent, name) = match rel.rsplit_once('/') {
        Some((p, n)) => (p, n),
        None => ("", rel),
    };
    if name.is_empty() {
        let fd = open(root, "", OFlags::PATH | OFlags::DIRECTORY)?;
        return Ok(Meta::from_stat(&rustix::fs::fstat(&fd)?));
    }
    let dir = open(root, parent, OFlags::PATH | OFlags::DIRECTORY)?;
    let st = rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(Meta::from_stat(&st))
}

/// The target of the symlink `rel`.
pub(super) fn readlink(root: BorrowedFd<'_>, rel: &str) -> io::Result<Vec<u8>> {
    let (parent, name) = rel.rsplit_once('/').unwrap_or(("", rel));
    let dir = open(root, parent, OFlags::PATH | OFlags::DIRECTORY)?;
    Ok(rustix::fs::readlinkat(&dir, name, Vec::new())?.into_bytes())
}

/// Opens the directory `rel` for reading its entries.
pub(super) fn open_dir(root: BorrowedFd<'_>, rel: &str) -> io::Result<OwnedFd> {
    open(root, rel, OFlags::RDONLY | OFlags::DIRECTORY)
}

/// The entries of an open directory with their metadata, sorted by name.
pub(super) fn entries(dir: BorrowedFd<'_>, rel: &str) -> Result<Vec<(String, Meta)>, ContextError> {
    let fd = rustix::fs::openat(
        dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| io_err(format!("open {}", show(rel)), e))?;
    let mut out = Vec::new();
    for entry in
        rustix::fs::Dir::read_from(&fd).map_err(|e| io_err(format!("read {}", show(rel)), e))?
    {
        let entry = entry.map_err(|e| io_err(format!("read {}", show(rel)), e))?;
        let raw = entry.file_name().to_bytes();
        if raw == b"." || raw == b".." {
            continue;
        }
        let name = String::from_utf8(raw.to_vec()).map_err(|_| {
            ContextError::Invalid(format!(
                "not supported yet: the file name {:?} in {} is not UTF-8",
                String::from_utf8_lossy(raw),
                show(rel)
            ))
        })?;
        let st = rustix::fs::statat(dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| io_err(format!("stat {}", show(&child(rel, &name))), e))?;
        out.push((name, Meta::from_stat(&st)));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// `rel/name` (or `name` at the root).
pub(super) fn child(rel: &str, name: &str) -> String {
    if rel.is_empty() {
        name.to_owned()
    } else {
        format!("{rel}/{name}")
    }
}

/// A path for messages (`.` for the root).
pub(super) fn show(rel: &str) -> &str {
    if rel.is_empty() { "." } else { rel }
}

/// Whether an error says the path does not exist (or a component on the
/// way is not a directory).
pub(super) fn is_missing(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
        || e.raw_os_error() == Some(rustix::io::Errno::NOTDIR.raw_os_error())
}

/// What resolving a source path gave.
#[derive(Debug)]
pub(super) enum Resolved {
    /// Canonical components (no symlinks) and the final metadata.
    Found(Vec<String>, Meta),
    /// Something on the way does not exist (or is not a directory).
    Missing,
}

/// Resolves `parts` (already cleaned, no `..` that leaves the root) inside
/// the root the way `RESOLVE_IN_ROOT` does: symlinks (the last one too)
/// are followed, an absolute target starts again at the root, `..` stops
/// at the root. Returns the canonical path, which names no symlink.
pub(super) fn resolve(root: BorrowedFd<'_>, parts: &[String]) -> Result<Resolved, ContextError> {
    let mut pending: std::collections::VecDeque<String> = parts.iter().cloned().collect();
    let mut canon: Vec<String> = Vec::new();
    let mut links = 0;
    let mut meta = lstat(root, "").map_err(|e| io_err("stat the root", e))?;
    while let Some(c) = pending.pop_front() {
        match c.as_str() {
            "" | "." => continue,
            ".." => {
                canon.pop();
                meta = lstat(root, &join(&canon)).map_err(|e| io_err("stat", e))?;
                continue;
            }
            _ => {}
        }
        if meta.kind != Kind::Dir {
            return Ok(Resolved::Missing);
        }
        canon.push(c);
        let rel = join(&canon);
        meta = match lstat(root, &rel) {
            Ok(m) => m,
            Err(e) if is_missing(&e) => return Ok(Resolved::Missing),
            Err(e) => return Err(io_err(format!("stat {rel}"), e)),
        };
        if meta.kind == Kind::Symlink {
            links += 1;
            if links > 40 {
                return Err(ContextError::Invalid(format!(
                    "too many levels of symbolic links at {rel}"
                )));
            }
            let target = readlink(root, &rel).map_err(|e| io_err(format!("readlink {rel}"), e))?;
            let target = String::from_utf8(target).map_err(|_| {
                ContextError::Invalid(format!(
                    "not supported yet: the symlink {rel} has a non-UTF-8 target"
                ))
            })?;
            canon.pop();
            if target.starts_with('/') {
                canon.clear();
            }
            for (i, part) in target.split('/').enumerate() {
                pending.insert(i, part.to_owned());
            }
            meta = lstat(root, &join(&canon)).map_err(|e| io_err("stat", e))?;
        }
    }
    Ok(Resolved::Found(canon, meta))
}

/// Reads a whole regular file `rel` (canonical) of the tree.
pub(super) fn open_file(
    root: BorrowedFd<'_>,
    rel: &str,
) -> Result<(std::fs::File, Meta), ContextError> {
    let fd =
        open(root, rel, OFlags::RDONLY).map_err(|e| io_err(format!("open {}", show(rel)), e))?;
    let st = rustix::fs::fstat(&fd).map_err(|e| io_err(format!("stat {}", show(rel)), e))?;
    let meta = Meta::from_stat(&st);
    if meta.kind != Kind::File {
        return Err(ContextError::Invalid(format!(
            "{} is not a regular file",
            show(rel)
        )));
    }
    Ok((std::fs::File::from(fd), meta))
}

/// A duplicate of a root fd (a plan outlives the tree it was made from).
pub(super) fn dup(fd: BorrowedFd<'_>) -> Result<OwnedFd, ContextError> {
    fd.as_fd()
        .try_clone_to_owned()
        .map_err(|e| io_err("duplicate the tree's fd", e))
}
