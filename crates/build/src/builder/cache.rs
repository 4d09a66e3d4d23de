//! berth's build cache: for every step a build ran, a record from the
//! step's key (a hash of everything that decides the step's result: the
//! parent image, the instruction after expansion, the build arguments it
//! sees, the content of what it copies) to the image it made. Records are
//! files under `<root>/build/cache`, written atomically; only builds write
//! them, so an image that merely looks like a step's result (a pulled one,
//! a loaded one) is never taken for it (CVE-2024-24557). A record whose
//! image is gone is a miss.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use berth_engine::Engine;
use berth_types::Digest;
use sha2::{Digest as _, Sha256};

/// A step's cache key, built from its inputs in order, with the step's
/// history text (what a `--cache-from` image's history is matched by).
#[derive(Clone, Debug)]
pub struct Key {
    hash: Sha256,
    /// The history text of the step's image.
    pub created_by: Option<String>,
    /// Whether the step adds no layer (`None`: it depends).
    pub empty_layer: Option<bool>,
}

impl Key {
    /// A key starting from the parent image (`None`: scratch).
    pub fn new(parent: Option<&Digest>) -> Key {
        let mut h = Sha256::new();
        h.update(b"berth-build-cache v1\0");
        match parent {
            Some(p) => h.update(p.to_string().as_bytes()),
            None => h.update(b"scratch"),
        }
        h.update(b"\0");
        Key {
            hash: h,
            created_by: None,
            empty_layer: None,
        }
    }

    /// Records the step's history text and whether it adds a layer.
    pub fn describe(&mut self, created_by: &str, empty_layer: Option<bool>) -> &mut Key {
        self.created_by = Some(created_by.to_owned());
        self.empty_layer = empty_layer;
        self
    }

    /// Adds one input (length-prefixed: inputs never run together).
    pub fn add(&mut self, label: &str, value: &[u8]) -> &mut Key {
        self.hash.update(label.as_bytes());
        self.hash.update((value.len() as u64).to_le_bytes());
        self.hash.update(value);
        self
    }

    /// The key's text.
    pub fn finish(&self) -> String {
        hex::encode(self.hash.clone().finalize())
    }
}

/// The cache's directory under berth's root.
pub fn dir(root: &Path) -> PathBuf {
    root.join("build/cache")
}

fn path(root: &Path, key: &str) -> PathBuf {
    let (a, _) = key.split_at(key.len().min(2));
    dir(root).join(a).join(key)
}

/// The image a step with `key` made, if it is still there.
pub fn lookup(engine: &Engine, key: &str) -> Option<Digest> {
    let text = fs::read_to_string(path(engine.root(), key)).ok()?;
    let id: Digest = text.trim().parse().ok()?;
    match engine.images().db().image(&id) {
        Ok(Some(_)) => Some(id),
        _ => None,
    }
}

/// Records that the step with `key` made `id`.
pub fn record(engine: &Engine, key: &str, id: &Digest) -> std::io::Result<()> {
    let p = path(engine.root(), key);
    let parent = p.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent)?;
    let tmp = parent.join(format!(".{key}.{}", std::process::id()));
    let mut f = fs::File::create(&tmp)?;
    f.write_all(id.to_string().as_bytes())?;
    drop(f);
    fs::rename(&tmp, &p)
}

/// `build prune`: removes every record and every cache mount; returns
/// what went (record keys, cache mount ids) and the bytes freed.
pub fn prune_all(root: &Path) -> std::io::Result<(Vec<String>, u64)> {
    let (mut keys, mut bytes) = prune(root)?;
    let mounts = root.join("build/mounts/cache");
    if let Ok(dir) = fs::read_dir(&mounts) {
        for e in dir.flatten() {
            bytes += du(&e.path());
            keys.push(e.file_name().to_string_lossy().into_owned());
            let _ = fs::remove_dir_all(e.path());
        }
    }
    Ok((keys, bytes))
}

fn du(p: &Path) -> u64 {
    let Ok(m) = fs::symlink_metadata(p) else {
        return 0;
    };
    if !m.is_dir() {
        return m.len();
    }
    fs::read_dir(p)
        .map(|d| d.flatten().map(|e| du(&e.path())).sum())
        .unwrap_or(0)
}

/// Removes every record: returns how many went and their bytes on disk.
fn prune(root: &Path) -> std::io::Result<(Vec<String>, u64)> {
    let mut keys = Vec::new();
    let mut bytes = 0;
    let Ok(top) = fs::read_dir(dir(root)) else {
        return Ok((keys, bytes));
    };
    for d in top.flatten() {
        for e in fs::read_dir(d.path())?.flatten() {
            bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
            keys.push(e.file_name().to_string_lossy().into_owned());
            let _ = fs::remove_file(e.path());
        }
        let _ = fs::remove_dir(d.path());
    }
    Ok((keys, bytes))
}
