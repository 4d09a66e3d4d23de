//! The content store: blobs by digest under `content/blobs/<alg>/<hex>`,
//! written atomically (temporary file, fsync, rename, fsync of the
//! directory) and verified while they stream in (digest and size). Every
//! image that references a blob shares the one copy.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_types::{Algorithm, Digest};
use sha2::{Digest as _, Sha256, Sha512};

use crate::error::{Context, Error, Result};

/// The blob store.
#[derive(Clone, Debug)]
pub struct ContentStore {
    root: PathBuf,
    journal: Option<Arc<Journal>>,
}

/// The blobs one operation brought into the store (that were not there
/// before), so that they can be removed again if it fails (see
/// [`crate::transaction`]).
#[derive(Debug, Default)]
pub struct Journal {
    added: Mutex<Vec<Digest>>,
}

impl Journal {
    fn record(&self, d: &Digest) {
        self.added
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(d.clone());
    }

    /// The blobs recorded so far (and forgets them).
    pub fn take(&self) -> Vec<Digest> {
        std::mem::take(&mut *self.added.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// A running hash of either algorithm.
#[derive(Clone, Debug)]
pub enum Hasher {
    /// SHA-256.
    Sha256(Sha256),
    /// SHA-512.
    Sha512(Sha512),
}

impl Hasher {
    /// A fresh hasher for `alg`.
    pub fn new(alg: Algorithm) -> Hasher {
        match alg {
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }

    /// Feeds bytes.
    pub fn update(&mut self, b: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(b),
            Hasher::Sha512(h) => h.update(b),
        }
    }

    /// The digest of everything fed.
    pub fn finish(self) -> Digest {
        match self {
            Hasher::Sha256(h) => {
                Digest::new(Algorithm::Sha256, &hex::encode(h.finalize())).expect("hex")
            }
            Hasher::Sha512(h) => {
                Digest::new(Algorithm::Sha512, &hex::encode(h.finalize())).expect("hex")
            }
        }
    }
}

/// The sha256 digest of `b`.
pub fn sha256(b: &[u8]) -> Digest {
    let mut h = Hasher::new(Algorithm::Sha256);
    h.update(b);
    h.finish()
}

/// What a writer must end up with.
#[derive(Clone, Debug, Default)]
pub struct Expect {
    /// The digest the content must have.
    pub digest: Option<Digest>,
    /// The size it must have (also a limit while writing).
    pub size: Option<u64>,
    /// A limit on the size when none is declared.
    pub max: Option<u64>,
}

impl ContentStore {
    /// Opens (creating) the store under `root` (`<root>/blobs`, `<root>/ingest`).
    pub fn open(root: &Path) -> Result<ContentStore> {
        for d in ["blobs/sha256", "blobs/sha512", "ingest"] {
            fs::create_dir_all(root.join(d))
                .ctx(|| format!("create {}", root.join(d).display()))?;
        }
        Ok(ContentStore {
            root: root.to_path_buf(),
            journal: None,
        })
    }

    /// The same store, recording in `journal` every blob its writers add.
    pub fn journaled(&self, journal: Arc<Journal>) -> ContentStore {
        ContentStore {
            root: self.root.clone(),
            journal: Some(journal),
        }
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob `d` lives.
    pub fn path(&self, d: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(d.algorithm().as_str())
            .join(d.hex())
    }

    /// Whether the blob exists.
    pub fn has(&self, d: &Digest) -> bool {
        self.path(d).exists()
    }

    /// The blob's size, if present.
    pub fn size(&self, d: &Digest) -> Option<u64> {
        fs::metadata(self.path(d)).ok().map(|m| m.len())
    }

    /// Opens the blob for reading.
    pub fn open_blob(&self, d: &Digest) -> Result<File> {
        File::open(self.path(d)).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                Error::NotFound(format!("blob {d} is not in the content store"))
            } else {
                Error::Io {
                    context: format!("open blob {d}"),
                    source: e,
                }
            }
        })
    }

    /// Reads a small blob whole (manifests, configs), refusing more than `max`.
    pub fn read(&self, d: &Digest, max: usize) -> Result<Vec<u8>> {
        let f = self.open_blob(d)?;
        let mut buf = Vec::new();
        f.take(max as u64 + 1)
            .read_to_end(&mut buf)
            .ctx(|| format!("read blob {d}"))?;
        if buf.len() > max {
            return Err(Error::Limit(format!("blob {d} is larger than {max} bytes")));
        }
        Ok(buf)
    }

    /// Stores `bytes`, checking them against `expected` if given.
    pub fn put(&self, bytes: &[u8], expected: Option<&Digest>) -> Result<Digest> {
        let mut w = self.writer(Expect {
            digest: expected.cloned(),
            size: Some(bytes.len() as u64),
            max: None,
        })?;
        w.write_all(bytes).ctx(|| "write blob")?;
        w.commit()
    }

    /// A writer that becomes a blob on [`BlobWriter::commit`].
    pub fn writer(&self, expect: Expect) -> Result<BlobWriter> {
        let alg = expect
            .digest
            .as_ref()
            .map_or(Algorithm::Sha256, |d| d.algorithm());
        let name = format!("{}{}", crate::owner::prefix(), unique());
        let path = self.root.join("ingest").join(name);
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .ctx(|| format!("create {}", path.display()))?;
        Ok(BlobWriter {
            store: self.clone(),
            file: Some(file),
            path,
            hasher: Hasher::new(alg),
            written: 0,
            expect,
        })
    }

    /// Deletes the blob (absent is fine).
    pub fn delete(&self, d: &Digest) -> Result<()> {
        match fs::remove_file(self.path(d)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::Io {
                context: format!("delete blob {d}"),
                source: e,
            }),
        }
    }

    /// Every blob in the store.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for alg in [Algorithm::Sha256, Algorithm::Sha512] {
            let dir = self.root.join("blobs").join(alg.as_str());
            for e in fs::read_dir(&dir)
                .ctx(|| format!("list {}", dir.display()))?
                .flatten()
            {
                if let Some(name) = e.file_name().to_str()
                    && let Ok(d) = Digest::new(alg, name)
                {
                    out.push(d);
                }
            }
        }
        Ok(out)
    }

    /// Removes the files in `ingest/` of writers that no longer run (see
    /// [`crate::owner`]); those of live writers stay. Returns how many went.
    pub fn sweep_ingest(&self) -> Result<u64> {
        let dir = self.root.join("ingest");
        let mut n = 0;
        for e in fs::read_dir(&dir)
            .ctx(|| format!("list {}", dir.display()))?
            .flatten()
        {
            let name = e.file_name();
            if crate::owner::owner_gone(&name.to_string_lossy()) == Some(true) {
                match fs::remove_file(e.path()) {
                    Ok(()) => n += 1,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(err) => {
                        return Err(Error::Io {
                            context: format!("remove {}", e.path().display()),
                            source: err,
                        });
                    }
                }
            }
        }
        Ok(n)
    }

    /// Removes files older than `age` in `ingest/` whose names do not say
    /// exactly who owns them (left by older versions of berth, whose pid
    /// may since have been reused).
    pub fn clean_ingest(&self, age: std::time::Duration) -> Result<u64> {
        let dir = self.root.join("ingest");
        let mut n = 0;
        for e in fs::read_dir(&dir)
            .ctx(|| format!("list {}", dir.display()))?
            .flatten()
        {
            if crate::owner::is_marked(&e.file_name().to_string_lossy()) {
                continue;
            }
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().unwrap_or_default() > age);
            if old && fs::remove_file(e.path()).is_ok() {
                n += 1;
            }
        }
        Ok(n)
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    t ^ (N.fetch_add(1, Ordering::Relaxed) << 48)
}

/// A blob being written; removed unless committed.
#[derive(Debug)]
pub struct BlobWriter {
    store: ContentStore,
    file: Option<File>,
    path: PathBuf,
    hasher: Hasher,
    written: u64,
    expect: Expect,
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Verifies digest and size, makes the data durable and moves it into
    /// place. Returns the digest.
    pub fn commit(mut self) -> Result<Digest> {
        let file = self.file.take().expect("not committed twice");
        let digest = std::mem::replace(&mut self.hasher, Hasher::new(Algorithm::Sha256)).finish();
        if let Some(size) = self.expect.size
            && self.written != size
        {
            return Err(Error::Integrity(format!(
                "size mismatch: expected {size} bytes, got {} (digest {digest})",
                self.written
            )));
        }
        if let Some(want) = &self.expect.digest
            && *want != digest
        {
            return Err(Error::Integrity(format!(
                "digest mismatch: expected {want}, got {digest}"
            )));
        }
        file.sync_all().ctx(|| "fsync blob")?;
        drop(file);
        let dest = self.store.path(&digest);
        let new = !dest.exists();
        fs::rename(&self.path, &dest).ctx(|| format!("commit blob {digest}"))?;
        if new && let Some(j) = &self.store.journal {
            j.record(&digest);
        }
        if let Some(dir) = dest.parent() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .ctx(|| "fsync blob directory")?;
        }
        Ok(digest)
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let limit = self.expect.size.or(self.expect.max);
        if let Some(limit) = limit
            && self.written + buf.len() as u64 > limit
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("more data than the declared {limit} bytes"),
            ));
        }
        let f = self.file.as_mut().expect("open");
        let n = f.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().expect("open").flush()
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if self.file.is_some() || self.path.exists() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_read_verify() {
        let t = tempfile::tempdir().unwrap();
        let s = ContentStore::open(t.path()).unwrap();
        let d = s.put(b"hello", None).unwrap();
        assert_eq!(
            d.to_string(),
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(s.read(&d, 100).unwrap(), b"hello");
        assert!(s.read(&d, 2).is_err());
        assert_eq!(s.list().unwrap(), vec![d.clone()]);
        // wrong digest: nothing committed, no temp left
        let wrong: Digest = format!("sha256:{}", "0".repeat(64)).parse().unwrap();
        assert!(matches!(
            s.put(b"other", Some(&wrong)),
            Err(Error::Integrity(_))
        ));
        assert_eq!(s.list().unwrap().len(), 1);
        assert_eq!(fs::read_dir(t.path().join("ingest")).unwrap().count(), 0);
        // too much data for the declared size
        let mut w = s
            .writer(Expect {
                size: Some(3),
                ..Default::default()
            })
            .unwrap();
        assert!(w.write_all(b"toolong").is_err());
        drop(w);
        assert_eq!(fs::read_dir(t.path().join("ingest")).unwrap().count(), 0);
        // sha512 works too
        let d512 = Hasher::new(Algorithm::Sha512);
        let mut h = d512;
        h.update(b"x");
        let want = h.finish();
        assert_eq!(s.put(b"x", Some(&want)).unwrap(), want);
    }
}
