//! Receiving a build context that arrives as a stream (`POST /build`'s
//! body, `berth build -`): a tar, maybe gzip-, bzip2-, xz- or
//! zstd-compressed, unpacked as it is read into a fresh directory under
//! `<root>/build/tmp` (never held in memory; nothing in it can leave the
//! directory), removed when the [`Received`] is dropped. A Dockerfile sent
//! alone (`-f -` with no context) is a context of that one file.

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::builder::BuildError;

/// A received context directory, removed on drop.
#[derive(Debug)]
pub struct Received {
    dir: PathBuf,
}

impl Received {
    /// Its directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Received {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Makes a fresh directory for a context under berth's root.
pub fn fresh_dir(root: &Path) -> Result<Received, BuildError> {
    let id = berth_engine::run::new_id().map_err(BuildError::from)?;
    let dir = root
        .join("build/tmp")
        .join(format!("context.{}", id.get(..16).unwrap_or(&id)));
    std::fs::create_dir_all(&dir)
        .map_err(|e| BuildError::Io(format!("make {}", dir.display()), e))?;
    Ok(Received { dir })
}

/// Removes what killed builds left under `<root>/build/tmp` (contexts,
/// downloads, secrets) whose process is gone.
pub fn sweep(root: &Path) {
    let Ok(dir) = std::fs::read_dir(root.join("build/tmp")) else {
        return;
    };
    let cutoff = std::time::SystemTime::now() - std::time::Duration::from_secs(24 * 3600);
    for e in dir.flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t < cutoff);
        if old {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// The stream's compression, from its first bytes.
fn decoder<'r>(input: impl Read + 'r) -> Result<Box<dyn Read + 'r>, BuildError> {
    crate::context::decompress(BufReader::with_capacity(256 << 10, input)).map_err(BuildError::from)
}

/// Unpacks a (maybe compressed) context tar from `input` into a fresh
/// directory. A stream that is not a tar at all is taken as a Dockerfile
/// alone (docker's `-` with a Dockerfile on stdin), named `Dockerfile`.
pub fn receive(root: &Path, input: impl Read) -> Result<Received, BuildError> {
    let got = fresh_dir(root)?;
    let mut r = decoder(input)?;
    // the first tar header (512 bytes) tells a tar from a Dockerfile
    let mut head = vec![0u8; 512];
    let mut n = 0;
    while n < head.len() {
        match r.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(BuildError::Io("read the build context".into(), e)),
        }
    }
    head.truncate(n);
    let is_tar = n == 0 || (n >= 262 && &head[257..262] == b"ustar");
    let r = BufReader::with_capacity(256 << 10, std::io::Cursor::new(head).chain(r));
    let dir = std::fs::File::open(&got.dir)
        .map_err(|e| BuildError::Io(format!("open {}", got.dir.display()), e))?;
    if is_tar {
        berth_engine::archive::extract_tar(std::os::fd::AsFd::as_fd(&dir), r, None).map_err(
            |e| match e {
                berth_engine::Error::Invalid(m) => {
                    BuildError::Image(format!("the build context is not a valid tar archive: {m}"))
                }
                other => BuildError::Engine(other),
            },
        )?;
    } else {
        let mut f = std::fs::File::create(got.dir.join("Dockerfile"))
            .map_err(|e| BuildError::Io("write the Dockerfile".into(), e))?;
        let mut r = r;
        std::io::copy(&mut r, &mut f)
            .map_err(|e| BuildError::Io("write the Dockerfile".into(), e))?;
    }
    Ok(got)
}
