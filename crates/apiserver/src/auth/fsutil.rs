//! Small file helpers: private directories and atomic private writes.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::AuthError;

/// Creates `dir` (and its parents) with mode 0700, or tightens an existing one to 0700.
pub(crate) fn private_dir(dir: &Path) -> Result<(), AuthError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| AuthError::io("creating directory", dir, e))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .map_err(|e| AuthError::io("setting the mode of", dir, e))
}

/// Writes `contents` to `path` through a temporary file in the same directory and a rename,
/// so readers see the old or the new file, never a part. The file gets `mode`.
pub(crate) fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), AuthError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_string());
    let tmp = dir.join(format!(".{name}.tmp-{}", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(|e| AuthError::io("creating", &tmp, e))?;
        // The umask may have cleared bits of `mode`; set it exactly.
        f.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| AuthError::io("setting the mode of", &tmp, e))?;
        f.write_all(contents)
            .map_err(|e| AuthError::io("writing", &tmp, e))?;
        f.sync_all()
            .map_err(|e| AuthError::io("syncing", &tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| AuthError::io("renaming into place", path, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Reads a file as UTF-8 text.
pub(crate) fn read_text(path: &Path) -> Result<String, AuthError> {
    fs::read_to_string(path).map_err(|e| AuthError::io("reading", path, e))
}
