//! `ADD http(s)://…`: the file downloaded (streamed to disk under berth's
//! root, checked against `--checksum`), then copied like a local file with
//! mode 0600 as Docker does.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::error::{BuildError, at};
use super::stage::Builder;

/// A directory removed when dropped.
#[derive(Debug)]
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    /// Makes a fresh directory under `<root>/build/tmp`.
    pub fn new(root: &Path, what: &str) -> Result<TempDir, BuildError> {
        let id = berth_engine::run::new_id().map_err(BuildError::from)?;
        let p = root
            .join("build/tmp")
            .join(format!("{what}.{}", id.get(..12).unwrap_or(&id)));
        std::fs::create_dir_all(&p)
            .map_err(|e| BuildError::Io(format!("make {}", p.display()), e))?;
        Ok(TempDir(p))
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The file name `ADD` gives a URL's content: its path's last segment.
fn file_name(url: &url::Url) -> Option<String> {
    url.path_segments()?
        .next_back()
        .filter(|s| !s.is_empty() && *s != "." && *s != "..")
        .map(percent_decode)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) =
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).replace('/', "_")
}

/// Downloads `url` into a new temporary directory; returns it and the
/// file's name in it.
pub(crate) fn download(
    b: &Builder<'_>,
    url: &str,
    checksum: Option<&str>,
    line: usize,
) -> Result<(TempDir, String), BuildError> {
    let parsed = url::Url::parse(url).map_err(|e| at(line, format!("invalid URL {url}: {e}")))?;
    let name = file_name(&parsed).unwrap_or_else(|| "index.html".into());
    let want = match checksum {
        Some(c) => {
            let hex = c.strip_prefix("sha256:").ok_or_else(|| {
                at(
                    line,
                    format!("unsupported digest algorithm in --checksum={c} (sha256 only)"),
                )
            })?;
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(at(line, format!("invalid checksum {c}")));
            }
            Some(hex.to_ascii_lowercase())
        }
        None => None,
    };
    let dir = TempDir::new(b.engine.root(), "add")?;
    let path = dir.path().join(&name);
    let got = berth_image::fetch::download(parsed.as_str(), &path)
        .map_err(|e| BuildError::Image(e.to_string()))?;
    if let Some(w) = want
        && w != got
    {
        return Err(BuildError::Image(format!(
            "digest mismatch for {url}: expected sha256:{w}, got sha256:{got}"
        )));
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| BuildError::Io(format!("chmod {}", path.display()), e))?;
    Ok((dir, name))
}
