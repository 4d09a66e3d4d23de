//! Build contexts and COPY/ADD sources. A [`SourceTree`] is a directory
//! (the build context, with its `.dockerignore`) or another stage's root
//! filesystem (an fd); [`SourceTree::plan`] resolves a COPY/ADD's sources
//! in it with Docker's semantics into a [`CopyPlan`], which hashes them for
//! the build cache ([`CopyPlan::digest`]) and streams them as a layer tar
//! ([`CopyPlan::write_tar`]).
//!
//! Safety: every lookup is relative to the tree's root fd, with
//! `RESOLVE_IN_ROOT` and `O_NOFOLLOW` ([`berth_sys::paths`]); symlinks are
//! resolved the way the kernel resolves them in a root (an absolute target
//! starts again at the tree's root, `..` stops there), so nothing in a
//! context ever leads to the host's files.

mod archive;
mod emit;
mod fsops;
mod glob;
pub mod ignore;
mod plan;
mod prepare;

#[cfg(test)]
mod tests;

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

pub use ignore::Ignore;
pub use plan::CopyPlan;
pub use prepare::{Prepared, decompress, prepare, prepare_with_text};

/// Why reading a context or planning a copy failed. The messages are the
/// ones Docker's classic builder gives where it has one (with its
/// `COPY failed: ` / `ADD failed: ` prefix where Docker puts it).
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// A source (or a file asked for) does not exist or is excluded by
    /// `.dockerignore`: `COPY failed: file not found in build context or
    /// excluded by .dockerignore: stat x: file does not exist`.
    #[error("{0}")]
    NotFound(String),
    /// Sources that matched nothing at all: `COPY failed: no source files
    /// were specified`.
    #[error("{0} failed: no source files were specified")]
    NoSources(&'static str),
    /// A source naming `..` beyond the tree's root.
    #[error("{instruction} failed: forbidden path outside the build context: {path}")]
    OutsideContext {
        /// `COPY` or `ADD`.
        instruction: &'static str,
        /// The source as written.
        path: String,
    },
    /// Several sources into a destination that is not a directory.
    #[error(
        "When using {0} with more than one source file, the destination must be a directory and end with a /"
    )]
    NeedsDirectory(&'static str),
    /// A malformed `.dockerignore`, `--exclude` or source pattern.
    #[error("invalid pattern {0}")]
    Pattern(String),
    /// Something the copy cannot do (named in the message).
    #[error("{0}")]
    Invalid(String),
    /// A source file changed between planning and writing.
    #[error("{0} changed while it was being copied; run the build again")]
    Changed(String),
    /// An I/O error, with what was being done.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
}

/// A tree copies come from: the build context (a directory, with its
/// `.dockerignore`) or another stage's/image's root filesystem (an fd, no
/// ignore).
#[derive(Debug)]
pub struct SourceTree {
    root: OwnedFd,
    ignore: Ignore,
    /// The build context (COPY without `--chown` makes files 0:0), not a
    /// stage's root filesystem (owners kept).
    context: bool,
}

/// What a COPY/ADD destination is in the image being built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DestState {
    /// Nothing there yet.
    Missing,
    /// A directory.
    Dir,
    /// A file, symlink or something else that is not a directory.
    Other,
}

/// One COPY or ADD, as the builder resolved it.
#[derive(Clone, Debug)]
pub struct CopyRequest<'a> {
    /// Already variable-expanded, as written in COPY/ADD (may contain
    /// globs `*` `?` `[..]`); never URLs (the caller handles URLs).
    pub sources: &'a [String],
    /// Absolute path in the image (the caller joined WORKDIR); may end
    /// with '/'.
    pub dest: &'a str,
    /// What `dest` is in the image being built (the caller looked).
    pub dest_state: DestState,
    /// `--chown` resolved to numbers; None = 0:0 for COPY from the context
    /// (Docker), the source's owner for `--from` copies.
    pub owner: Option<(u32, u32)>,
    /// `--chmod` (octal already parsed).
    pub mode: Option<u32>,
    /// ADD: local tar archives (plain, gzip, bzip2, xz, zstd, detected by
    /// content) are unpacked into dest instead of copied.
    pub extract_archives: bool,
    /// `--parents`: keep the source's directory path below dest.
    pub parents: bool,
    /// `--exclude` patterns (same syntax as `.dockerignore`).
    pub exclude: &'a [String],
    /// Here-document sources: (file name, content) created as files (mode
    /// 0644 or `--chmod`).
    pub inline: &'a [(String, Vec<u8>)],
}

impl SourceTree {
    /// The build context at `dir` with its `.dockerignore` rules.
    pub fn open_dir(dir: &Path, ignore: Ignore) -> Result<SourceTree, ContextError> {
        let root = rustix::fs::open(
            dir,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| {
            let e = std::io::Error::from(e);
            if fsops::is_missing(&e) {
                ContextError::NotFound(format!(
                    "unable to prepare context: path {:?} not found",
                    dir.display().to_string()
                ))
            } else {
                fsops::io_err(format!("open the build context {}", dir.display()), e)
            }
        })?;
        Ok(SourceTree {
            root,
            ignore,
            context: true,
        })
    }

    /// Another stage's (or image's) root filesystem, open as `root` (any
    /// fd of a directory, `O_PATH` is enough).
    pub fn from_fd(root: OwnedFd, ignore: Ignore) -> Result<SourceTree, ContextError> {
        let st = rustix::fs::fstat(&root).map_err(|e| fsops::io_err("stat the source tree", e))?;
        if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::Directory {
            return Err(ContextError::Invalid(
                "the source tree is not a directory".to_owned(),
            ));
        }
        Ok(SourceTree {
            root,
            ignore,
            context: false,
        })
    }

    /// The tree's `.dockerignore` rules.
    pub fn ignore(&self) -> &Ignore {
        &self.ignore
    }

    /// Reads a regular file of the tree (e.g. the Dockerfile), resolved
    /// inside the tree (symlinks followed, never out of it). Ignore rules
    /// do not apply (Docker reads an ignored Dockerfile all the same).
    pub fn read_file(&self, rel: &str) -> Result<Vec<u8>, ContextError> {
        use std::io::Read;
        let parts = split(rel);
        if ignore::clean(rel).starts_with("../") || ignore::clean(rel) == ".." {
            return Err(ContextError::OutsideContext {
                instruction: "read",
                path: rel.to_owned(),
            });
        }
        let canon = match fsops::resolve(self.root.as_fd(), &parts)? {
            fsops::Resolved::Found(canon, meta) if meta.kind == fsops::Kind::File => canon,
            fsops::Resolved::Found(..) => {
                return Err(ContextError::Invalid(format!(
                    "{rel} is not a regular file"
                )));
            }
            fsops::Resolved::Missing => {
                return Err(ContextError::NotFound(format!(
                    "open {rel}: no such file or directory"
                )));
            }
        };
        let (mut f, _) = fsops::open_file(self.root.as_fd(), &fsops::join(&canon))?;
        let mut out = Vec::new();
        f.read_to_end(&mut out)
            .map_err(|e| fsops::io_err(format!("read {rel}"), e))?;
        Ok(out)
    }
}

/// The components of a slash-separated relative path.
fn split(rel: &str) -> Vec<String> {
    rel.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_owned)
        .collect()
}
