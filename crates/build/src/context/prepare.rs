//! What a build starts from: the context directory with its ignore file
//! (`<Dockerfile>.dockerignore` before `.dockerignore`, as BuildKit reads
//! them), the Dockerfile's text, and the context paths `RUN --mount=type=bind`
//! hands to a step.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use super::{ContextError, CopyRequest, DestState, Ignore, SourceTree, fsops, split};

/// A context ready to build from.
#[derive(Debug)]
pub struct Prepared {
    /// The context.
    pub tree: SourceTree,
    /// The Dockerfile's name (for errors).
    pub name: String,
    /// Its text.
    pub text: String,
}

fn ignore_for(dir: &Path, dockerfile: &str) -> Result<Ignore, ContextError> {
    let plain = SourceTree::open_dir(dir, Ignore::empty())?;
    let base = dockerfile.rsplit('/').next().unwrap_or(dockerfile);
    for name in [
        format!("{dockerfile}.dockerignore"),
        format!("{base}.dockerignore"),
        ".dockerignore".into(),
    ] {
        match plain.read_file(&name) {
            Ok(bytes) => return Ignore::parse(&String::from_utf8_lossy(&bytes)),
            Err(ContextError::NotFound(_)) => continue,
            Err(ContextError::OutsideContext { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(Ignore::empty())
}

/// The context `dir` with the Dockerfile `dockerfile` inside it (a path
/// relative to the context).
pub fn prepare(dir: &Path, dockerfile: &str) -> Result<Prepared, ContextError> {
    let plain = SourceTree::open_dir(dir, Ignore::empty())?;
    let text = match plain.read_file(dockerfile) {
        Ok(b) => String::from_utf8(b).map_err(|_| {
            ContextError::Invalid(format!("the Dockerfile {dockerfile} is not UTF-8 text"))
        })?,
        Err(ContextError::NotFound(_)) | Err(ContextError::OutsideContext { .. }) => {
            return Err(ContextError::NotFound(format!(
                "Cannot locate specified Dockerfile: {dockerfile}"
            )));
        }
        Err(e) => return Err(e),
    };
    prepare_with_text(dir, dockerfile, text)
}

/// The context `dir` with a Dockerfile given as text (`-f -`, or a file
/// outside the context).
pub fn prepare_with_text(dir: &Path, name: &str, text: String) -> Result<Prepared, ContextError> {
    let ignore = ignore_for(dir, name)?;
    Ok(Prepared {
        tree: SourceTree::open_dir(dir, ignore)?,
        name: name.to_owned(),
        text,
    })
}

/// A (maybe compressed: gzip, bzip2, xz, zstd) stream, decompressed.
pub fn decompress<'r>(
    input: impl std::io::Read + 'r,
) -> Result<Box<dyn std::io::Read + 'r>, ContextError> {
    super::archive::decoder(input).map_err(|e| fsops::io_err("read a compressed stream", e))
}

impl SourceTree {
    /// `path` of the tree (symlinks resolved inside it) as an `O_PATH` fd,
    /// for a bind mount of it.
    pub fn open_path(&self, path: &str) -> Result<OwnedFd, ContextError> {
        let parts = split(path);
        match fsops::resolve(self.root.as_fd(), &parts)? {
            fsops::Resolved::Found(canon, _) => fsops::open(
                self.root.as_fd(),
                &fsops::join(&canon),
                rustix::fs::OFlags::PATH,
            )
            .map_err(|e| fsops::io_err(format!("open {path}"), e)),
            fsops::Resolved::Missing => Err(ContextError::NotFound(format!(
                "failed to compute cache key: \"/{}\" not found",
                path.trim_start_matches('/')
            ))),
        }
    }

    /// A digest of what is at `path` (its content, modes and owners), for
    /// the cache key of a step that mounts it.
    pub fn digest_path(&self, path: &str) -> Result<String, ContextError> {
        let src = if path.is_empty() {
            ".".to_owned()
        } else {
            path.to_owned()
        };
        let sources = [src];
        let plan = self.plan(&CopyRequest {
            sources: &sources,
            dest: "/m/",
            dest_state: DestState::Missing,
            owner: None,
            mode: None,
            extract_archives: false,
            parents: false,
            exclude: &[],
            inline: &[],
        })?;
        plan.digest()
    }
}
