//! Resolving a COPY/ADD's sources into the list of entries it creates.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};

use sha2::{Digest as _, Sha256};

use super::fsops::{self, Kind, Meta, Resolved};
use super::{ContextError, CopyRequest, DestState, Ignore, SourceTree, glob, ignore};

/// What one entry of the result is.
#[derive(Clone, Debug)]
pub(super) enum ItemKind {
    Dir,
    /// A file of the tree (canonical path), its size and sha256 when planned.
    File {
        src: String,
        size: u64,
        sha: [u8; 32],
    },
    Symlink {
        target: Vec<u8>,
    },
    /// A hard link to an earlier entry (its destination).
    Link {
        to: String,
    },
    /// A here-document.
    Inline {
        data: Vec<u8>,
    },
    /// A fifo or device node.
    Device {
        kind: Kind,
        rdev: u64,
    },
    /// An ADD archive unpacked into the entry's destination directory.
    Archive {
        src: String,
        size: u64,
        sha: [u8; 32],
    },
}

/// One entry of the result.
#[derive(Clone, Debug)]
pub(super) struct Item {
    /// Relative to `/` (no leading slash).
    pub dest: String,
    pub kind: ItemKind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: u64,
}

/// A resolved COPY/ADD: what it creates, where, with which owners and
/// modes, read from the tree when written.
#[derive(Debug)]
pub struct CopyPlan {
    pub(super) root: OwnedFd,
    pub(super) items: Vec<Item>,
    pub(super) infos: Vec<String>,
    pub(super) dest: String,
}

/// A source after resolution.
struct Source {
    /// Components as named (cleaned), for the base name and `--parents`.
    named: Vec<String>,
    /// How many leading components of `named` `--parents` drops (before a
    /// `/./` pivot).
    pivot: usize,
    /// Canonical components in the tree.
    canon: Vec<String>,
    meta: Meta,
    archive: bool,
}

pub(super) fn sha_file(
    root: std::os::fd::BorrowedFd<'_>,
    rel: &str,
) -> Result<[u8; 32], ContextError> {
    let (mut f, _) = fsops::open_file(root, rel)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| fsops::io_err(format!("read {rel}"), e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().into())
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `dest/name` for relative destination strings.
fn under(dir: &str, name: &str) -> String {
    fsops::child(dir, name)
}

struct Planner<'a, 'r> {
    tree: &'a SourceTree,
    req: &'a CopyRequest<'r>,
    instruction: &'static str,
    exclude: Ignore,
    items: Vec<Item>,
    dirs: HashSet<String>,
    inodes: HashMap<(u64, u64), String>,
}

impl SourceTree {
    /// Resolves sources: globs matched with Go `filepath.Match` per path
    /// (a `*` never crosses `/`), against the tree, excluding ignored
    /// paths; a source naming `..` that leaves the tree is refused
    /// (`forbidden path outside the build context: ../x`); a missing source
    /// gives Docker's error text (`COPY failed: file not found in build
    /// context or excluded by .dockerignore: stat x: file does not exist`);
    /// sources matching nothing at all give `no source files were
    /// specified`. Several sources (or a glob with several matches) need
    /// dest ending in '/' or an existing dir. A file source goes to dest
    /// (or dest/basename when dest ends with '/' or is an existing dir); a
    /// directory source's contents go into dest; a symlink named as a
    /// source is followed (inside the tree); symlinks below a copied
    /// directory are copied as symlinks; hard links inside one copy are
    /// kept as tar hard links. Files are read once here for their hashes.
    pub fn plan(&self, req: &CopyRequest<'_>) -> Result<CopyPlan, ContextError> {
        let instruction = if req.extract_archives { "ADD" } else { "COPY" };
        let mut p = Planner {
            tree: self,
            req,
            instruction,
            exclude: Ignore::from_patterns(req.exclude)?,
            items: Vec::new(),
            dirs: HashSet::new(),
            inodes: HashMap::new(),
        };
        let mut sources = Vec::new();
        for s in req.sources {
            p.resolve_source(s, &mut sources)?;
        }
        let total = sources.len() + req.inline.len();
        if total == 0 {
            return Err(ContextError::NoSources(instruction));
        }
        let dest_parts = dest_parts(req.dest);
        let dest = fsops::join(&dest_parts);
        let slash = req.dest.ends_with('/') || req.dest.ends_with("/.") || dest_parts.is_empty();
        let dest_is_dir = slash || req.dest_state == DestState::Dir;
        if total > 1 && !dest_is_dir {
            return Err(ContextError::NeedsDirectory(instruction));
        }
        let as_dir = dest_is_dir
            || req.parents
            || sources
                .iter()
                .any(|s| s.meta.kind == Kind::Dir || s.archive);
        if as_dir && req.dest_state == DestState::Other {
            return Err(ContextError::Invalid(format!(
                "{instruction} failed: cannot copy to non-directory: {}",
                req.dest
            )));
        }
        if as_dir && req.dest_state == DestState::Missing && !dest.is_empty() {
            let (uid, gid) = req.owner.unwrap_or((0, 0));
            p.push_dir_once(&dest, 0o755, uid, gid, now());
        }
        let mut infos = Vec::new();
        for s in &sources {
            infos.push(p.copy_source(s, &dest, dest_is_dir)?);
        }
        for (name, data) in req.inline {
            let parts = split_clean(name);
            let Some(base) = parts.last() else {
                return Err(ContextError::Invalid(format!(
                    "{instruction} failed: here-document without a file name"
                )));
            };
            let target = if dest_is_dir {
                under(&dest, base)
            } else {
                dest.clone()
            };
            let (uid, gid) = req.owner.unwrap_or((0, 0));
            p.items.push(Item {
                dest: target,
                kind: ItemKind::Inline { data: data.clone() },
                mode: req.mode.unwrap_or(0o644),
                uid,
                gid,
                mtime: now(),
            });
            infos.push(format!("file:{}", hex::encode(Sha256::digest(data))));
        }
        Ok(CopyPlan {
            root: fsops::dup(self.root.as_fd())?,
            items: p.items,
            infos,
            dest: req.dest.to_owned(),
        })
    }
}

/// The destination's components below `/` (`..` stops at the root).
fn dest_parts(dest: &str) -> Vec<String> {
    split_clean(&format!("/{dest}"))
}

/// Components of a cleaned path, `..` stopping at the root.
fn split_clean(p: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            x => out.push(x.to_owned()),
        }
    }
    out
}

impl Planner<'_, '_> {
    fn root(&self) -> std::os::fd::BorrowedFd<'_> {
        self.tree.root.as_fd()
    }

    fn not_found(&self, path: &str) -> ContextError {
        let what = if self.tree.context {
            "file not found in build context or excluded by .dockerignore: "
        } else {
            ""
        };
        ContextError::NotFound(format!(
            "{} failed: {what}stat {path}: file does not exist",
            self.instruction
        ))
    }

    fn owner(&self, meta: &Meta) -> (u32, u32) {
        self.req.owner.unwrap_or(if self.tree.context {
            (0, 0)
        } else {
            (meta.uid, meta.gid)
        })
    }

    fn mode(&self, meta: &Meta) -> u32 {
        if meta.kind == Kind::Symlink {
            0o777
        } else {
            self.req.mode.unwrap_or(meta.mode)
        }
    }

    fn excluded(&self, canon: &str) -> bool {
        self.tree.ignore.is_excluded(canon)
    }

    /// Resolves one source as written (a glob may give several).
    fn resolve_source(&self, raw: &str, out: &mut Vec<Source>) -> Result<(), ContextError> {
        let cleaned = ignore::clean(raw);
        let cleaned = cleaned.trim_start_matches('/');
        if cleaned == ".." || cleaned.starts_with("../") {
            return Err(ContextError::OutsideContext {
                instruction: self.instruction,
                path: raw.to_owned(),
            });
        }
        let parts = split_clean(cleaned);
        // `--parents` keeps what follows a `/./` pivot
        let pivot = match raw.trim_start_matches("./").split_once("/./") {
            Some((before, _)) if self.req.parents => split_clean(before).len(),
            _ => 0,
        };
        if glob::has_wildcards(cleaned) {
            let toks = parts
                .iter()
                .map(|p| {
                    if glob::has_wildcards(p) {
                        glob::compile(p).map(Some)
                    } else {
                        Ok(None)
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            self.expand(&parts, &toks, 0, Vec::new(), Vec::new(), pivot, out)?;
            return Ok(());
        }
        let parts: Vec<String> = parts.iter().map(|p| glob::unescape(p)).collect();
        let named = fsops::join(&parts);
        if self.excluded(&named) {
            return Err(self.not_found(ignore::clean(cleaned).as_str()));
        }
        let src = self.found(parts, pivot)?;
        match src {
            Some(s) => out.push(s),
            None => return Err(self.not_found(&ignore::clean(cleaned))),
        }
        Ok(())
    }

    /// Resolves `named`; None when missing or (after symlinks) ignored.
    fn found(&self, named: Vec<String>, pivot: usize) -> Result<Option<Source>, ContextError> {
        let Resolved::Found(canon, meta) = fsops::resolve(self.root(), &named)? else {
            return Ok(None);
        };
        if self.excluded(&fsops::join(&canon)) {
            return Ok(None);
        }
        let archive = self.req.extract_archives
            && meta.kind == Kind::File
            && super::archive::is_archive(self.root(), &fsops::join(&canon));
        Ok(Some(Source {
            named,
            pivot,
            canon,
            meta,
            archive,
        }))
    }

    /// Matches a glob component by component (a wildcard never crosses
    /// `/`; directories are entered only when they are real directories).
    #[allow(clippy::too_many_arguments)]
    fn expand(
        &self,
        parts: &[String],
        toks: &[Option<Vec<glob::Tok>>],
        i: usize,
        named: Vec<String>,
        canon: Vec<String>,
        pivot: usize,
        out: &mut Vec<Source>,
    ) -> Result<(), ContextError> {
        let last = i + 1 == parts.len();
        match toks.get(i) {
            None => {
                if let Some(s) = self.found(named, pivot)? {
                    out.push(s);
                }
                Ok(())
            }
            Some(None) => {
                // a literal component: follow it (symlinks too) inside the tree
                let mut n = named;
                n.push(glob::unescape(&parts[i]));
                let mut c = canon;
                c.push(glob::unescape(&parts[i]));
                match fsops::resolve(self.root(), &c)? {
                    Resolved::Found(c2, meta) if last || meta.kind == Kind::Dir => {
                        self.expand(parts, toks, i + 1, n, c2, pivot, out)
                    }
                    _ => Ok(()),
                }
            }
            Some(Some(t)) => {
                let dir = fsops::join(&canon);
                let fd = match fsops::open_dir(self.root(), &dir) {
                    Ok(fd) => fd,
                    Err(e) if fsops::is_missing(&e) => return Ok(()),
                    Err(e) => return Err(fsops::io_err(format!("open {}", fsops::show(&dir)), e)),
                };
                for (name, meta) in fsops::entries(fd.as_fd(), &dir)? {
                    if !glob::matches(t, &name) || self.excluded(&fsops::child(&dir, &name)) {
                        continue;
                    }
                    if !last && meta.kind != Kind::Dir {
                        continue;
                    }
                    let mut n = named.clone();
                    n.push(name.clone());
                    let mut c = canon.clone();
                    c.push(name);
                    self.expand(parts, toks, i + 1, n, c, pivot, out)?;
                }
                Ok(())
            }
        }
    }

    fn push_dir_once(&mut self, dest: &str, mode: u32, uid: u32, gid: u32, mtime: u64) {
        if self.dirs.insert(dest.to_owned()) {
            self.items.push(Item {
                dest: dest.to_owned(),
                kind: ItemKind::Dir,
                mode,
                uid,
                gid,
                mtime,
            });
        }
    }

    /// `--parents`: the directories of the source's path below dest,
    /// `upto` components of it, with the source's metadata.
    fn parent_dirs(&mut self, s: &Source, dest: &str, upto: usize) -> Result<String, ContextError> {
        let mut at = dest.to_owned();
        for k in s.pivot..upto {
            at = under(&at, &s.named[k]);
            if let Resolved::Found(_, meta) = fsops::resolve(self.root(), &s.named[..=k])? {
                let (uid, gid) = self.owner(&meta);
                let mode = self.mode(&meta);
                self.push_dir_once(&at, mode, uid, gid, meta.mtime);
            }
        }
        Ok(at)
    }

    /// Plans one resolved source; returns its history hash (`file:…`,
    /// `dir:…`).
    fn copy_source(
        &mut self,
        s: &Source,
        dest: &str,
        dest_is_dir: bool,
    ) -> Result<String, ContextError> {
        let canon = fsops::join(&s.canon);
        if s.meta.kind == Kind::Dir {
            let target = if self.req.parents {
                self.parent_dirs(s, dest, s.named.len())?
            } else {
                dest.to_owned()
            };
            let start = self.items.len();
            self.walk(&canon, &target, "", 0)?;
            let mut subs: Vec<String> = self.items[start..]
                .iter()
                .map(|it| record_hash(it, &target))
                .collect();
            subs.sort();
            return Ok(format!(
                "dir:{}",
                hex::encode(Sha256::digest(subs.join(",")))
            ));
        }
        let sha = if matches!(s.meta.kind, Kind::File) {
            sha_file(self.root(), &canon)?
        } else {
            [0; 32]
        };
        let info = format!("file:{}", hex::encode(sha));
        let parent_dir = if self.req.parents {
            self.parent_dirs(s, dest, s.named.len().saturating_sub(1))?
        } else {
            dest.to_owned()
        };
        if s.archive {
            self.items.push(Item {
                dest: parent_dir,
                kind: ItemKind::Archive {
                    src: canon,
                    size: s.meta.size,
                    sha,
                },
                mode: 0o755,
                uid: 0,
                gid: 0,
                mtime: s.meta.mtime,
            });
            return Ok(info);
        }
        let base = s.named.last().cloned().unwrap_or_default();
        let target = if self.req.parents || dest_is_dir {
            under(&parent_dir, &base)
        } else {
            dest.to_owned()
        };
        if target.is_empty() {
            return Err(ContextError::Invalid(format!(
                "{} failed: cannot copy a file onto /",
                self.instruction
            )));
        }
        self.push_entry(&canon, &target, &s.meta, Some(sha))?;
        Ok(info)
    }

    /// One non-directory entry (a file, symlink, device) at `target`.
    fn push_entry(
        &mut self,
        canon: &str,
        target: &str,
        meta: &Meta,
        sha: Option<[u8; 32]>,
    ) -> Result<(), ContextError> {
        let (uid, gid) = self.owner(meta);
        let mode = self.mode(meta);
        let kind = match meta.kind {
            Kind::File => if meta.nlink > 1 {
                match self.inodes.get(&(meta.dev, meta.ino)) {
                    Some(first) => Some(ItemKind::Link { to: first.clone() }),
                    None => {
                        self.inodes.insert((meta.dev, meta.ino), target.to_owned());
                        None
                    }
                }
            } else {
                None
            }
            .map_or_else(
                || -> Result<ItemKind, ContextError> {
                    let sha = match sha {
                        Some(s) => s,
                        None => sha_file(self.root(), canon)?,
                    };
                    Ok(ItemKind::File {
                        src: canon.to_owned(),
                        size: meta.size,
                        sha,
                    })
                },
                Ok,
            )?,
            Kind::Symlink => ItemKind::Symlink {
                target: fsops::readlink(self.root(), canon)
                    .map_err(|e| fsops::io_err(format!("readlink {canon}"), e))?,
            },
            Kind::Fifo | Kind::Char | Kind::Block => ItemKind::Device {
                kind: meta.kind,
                rdev: meta.rdev,
            },
            Kind::Dir | Kind::Other => return Ok(()),
        };
        self.items.push(Item {
            dest: target.to_owned(),
            kind,
            mode,
            uid,
            gid,
            mtime: meta.mtime,
        });
        Ok(())
    }

    /// The contents of the directory `canon` into `target`; `rel` is the
    /// path below the copied source (what `--exclude` matches).
    fn walk(
        &mut self,
        canon: &str,
        target: &str,
        rel: &str,
        depth: u32,
    ) -> Result<(), ContextError> {
        if depth > 256 {
            return Err(ContextError::Invalid(format!(
                "directory tree too deep at {}",
                fsops::show(canon)
            )));
        }
        let fd = fsops::open_dir(self.root(), canon)
            .map_err(|e| fsops::io_err(format!("open {}", fsops::show(canon)), e))?;
        for (name, meta) in fsops::entries(fd.as_fd(), canon)? {
            let c = fsops::child(canon, &name);
            let r = fsops::child(rel, &name);
            let t = under(target, &name);
            let ignored = self.tree.ignore.is_excluded(&c);
            let excluded = self.exclude.is_excluded(&r);
            if meta.kind == Kind::Dir {
                let (uid, gid) = self.owner(&meta);
                let mode = self.mode(&meta);
                if ignored || excluded {
                    let descend = (!ignored || self.tree.ignore.must_descend(&c))
                        && (!excluded || self.exclude.must_descend(&r));
                    if !descend {
                        continue;
                    }
                    // kept only if something below is re-included
                    let mark = self.items.len();
                    let was_new = !self.dirs.contains(&t);
                    self.push_dir_once(&t, mode, uid, gid, meta.mtime);
                    self.walk(&c, &t, &r, depth + 1)?;
                    if was_new && self.items.len() == mark + 1 {
                        self.items.pop();
                        self.dirs.remove(&t);
                    }
                    continue;
                }
                self.push_dir_once(&t, mode, uid, gid, meta.mtime);
                self.walk(&c, &t, &r, depth + 1)?;
                continue;
            }
            if ignored || excluded {
                continue;
            }
            self.push_entry(&c, &t, &meta, None)?;
        }
        Ok(())
    }
}

/// A stable text of everything that decides an entry (not its mtime),
/// its destination taken relative to `base`.
pub(super) fn record(it: &Item, base: &str) -> String {
    let dest = it
        .dest
        .strip_prefix(base)
        .map(|d| d.trim_start_matches('/'))
        .unwrap_or(&it.dest);
    let (kind, payload) = match &it.kind {
        ItemKind::Dir => ("dir", String::new()),
        ItemKind::File { sha, .. } => ("file", hex::encode(sha)),
        ItemKind::Symlink { target } => ("symlink", hex::encode(target)),
        ItemKind::Link { to } => ("link", hex::encode(to.as_bytes())),
        ItemKind::Inline { data } => ("file", hex::encode(Sha256::digest(data))),
        ItemKind::Device { kind, rdev } => ("device", format!("{kind:?}:{rdev}")),
        ItemKind::Archive { sha, .. } => ("archive", hex::encode(sha)),
    };
    format!(
        "{}\0{kind}\0{:o}\0{}\0{}\0{payload}",
        hex::encode(dest.as_bytes()),
        it.mode,
        it.uid,
        it.gid
    )
}

fn record_hash(it: &Item, base: &str) -> String {
    hex::encode(Sha256::digest(record(it, base)))
}
