//! The on-disk layout under `<root>/networks/` and the primitives that keep
//! it consistent when several processes share one root.
//!
//! ```text
//! <root>/net.json                              optional NetConfig overrides
//! <root>/networks/lock                         flock: every change holds it exclusively
//! <root>/networks/<network-id>/network.json    the Network (schema-versioned)
//! <root>/networks/<network-id>/ipam/<a.b.c.d>  one file per allocated address, created
//!                                              with O_EXCL, holding the owner's id
//! <root>/networks/<network-id>/endpoints/<container-id>.json
//!                                              one Endpoint per attached container
//! <root>/networks/<network-id>/released/<epoch-ms>-<host-veth>.json
//!                                              an Endpoint whose run ended, until its
//!                                              veth is gone (see `release`)
//! ```
//!
//! A network directory is built under a dot-name and renamed into place, and
//! every JSON file is written to a temporary name, fsynced and renamed, so a
//! reader never sees half a record. Readers ignore dot-names.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// The directory holding all network state of a root.
pub fn networks_dir(root: &Path) -> PathBuf {
    root.join("networks")
}

/// An exclusive flock on `<root>/networks/lock`, released on drop.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

/// Takes the root's network lock, creating the directory if needed.
pub fn lock(root: &Path) -> Result<Lock> {
    let dir = networks_dir(root);
    std::fs::create_dir_all(&dir).map_err(Error::io(format!("create {}", dir.display())))?;
    let path = dir.join("lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(Error::io(format!("open {}", path.display())))?;
    rustix::fs::flock(file.as_fd(), rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| Error::Io(format!("lock {}", path.display()), e.into()))?;
    Ok(Lock { _file: file })
}

/// Writes `bytes` to `path` atomically: temporary file, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().expect("path has a parent");
    let name = path.file_name().expect("path has a name").to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", random_hex(4)));
    let res = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.map_err(Error::io(format!("write {}", path.display())))
}

/// Serialises `value` as pretty JSON into `path`, atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).expect("records serialise");
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

/// Reads a JSON record; `Ok(None)` when the file does not exist.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| Error::Io(format!("parse {}", path.display()), e.into())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Io(format!("read {}", path.display()), e)),
    }
}

/// Names in `dir` that do not start with a dot; empty when `dir` is missing.
pub fn list_names(dir: &Path) -> Result<Vec<String>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::Io(format!("read {}", dir.display()), e)),
    };
    let mut names = Vec::new();
    for ent in rd {
        let ent = ent.map_err(Error::io(format!("read {}", dir.display())))?;
        if let Some(n) = ent.file_name().to_str()
            && !n.starts_with('.')
        {
            names.push(n.to_string());
        }
    }
    names.sort();
    Ok(names)
}

/// Removes a file, treating "already gone" as success.
pub fn remove_file(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::Io(format!("remove {}", path.display()), e)),
    }
}

/// `n` random bytes from the kernel, as lower-case hex.
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    let mut filled = 0;
    while filled < n {
        match rustix::rand::getrandom(&mut buf[filled..], rustix::rand::GetRandomFlags::empty()) {
            Ok(k) => filled += k,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => panic!("getrandom failed: {e}"),
        }
    }
    hex::encode(buf)
}

/// The current time in RFC 3339 with nanoseconds, UTC (docker's `Created`).
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    berth_types::time::format_rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_json_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.json");
        assert_eq!(read_json::<Vec<u32>>(&p).unwrap(), None);
        write_json(&p, &vec![1u32, 2]).unwrap();
        assert_eq!(read_json::<Vec<u32>>(&p).unwrap(), Some(vec![1, 2]));
        assert_eq!(list_names(dir.path()).unwrap(), vec!["x.json".to_string()]);
        assert_eq!(random_hex(32).len(), 64);
    }
}
