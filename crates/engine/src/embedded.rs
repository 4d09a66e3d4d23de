//! The small C programs built with the engine (build.rs) and carried inside
//! the berth binary: each is written once per build into the engine's root
//! and run from there.

use std::fs;
use std::path::{Path, PathBuf};

use crate::run::{Error, Result};

/// berth-init, process 1 of `--init` containers (static).
pub const INIT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/berth-init"));
/// berth-shim, the steady state of a container's monitor (freestanding).
pub const SHIM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/berth-shim"));

/// The copy of `bytes` at `<root>/<name>`, written (atomically, mode 0555)
/// when missing or from another build. `None` when the program was not
/// built (no C compiler at build time).
pub fn install(root: &Path, name: &str, bytes: &[u8]) -> Result<Option<PathBuf>> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let path = root.join(name);
    if fs::read(&path).map(|b| b != bytes).unwrap_or(true) {
        let tmp = root.join(format!(".{name}.{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            fs::write(&tmp, bytes)?;
            fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o555))?;
            fs::rename(&tmp, &path)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            Error::Io(format!("install {name}"), e)
        })?;
    }
    Ok(Some(path))
}
