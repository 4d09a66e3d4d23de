//! Upload sessions and moving finished uploads into the content store.
//!
//! A session's bytes go to `<root>/uploads/<uuid>`; the session keeps a
//! running hash of everything written (SHA-256, or the algorithm the client
//! named with `digest-algorithm`), so closing it does not re-read the file —
//! unless the closing digest uses the other algorithm, and then the file is
//! hashed once more. Hash states live in memory (they cannot be saved), so
//! sessions do not outlive the server: the database row records the
//! session and, at startup, every leftover session and file is removed.
//! Sessions idle for [`SESSION_TTL`] are removed as well.
//!
//! A finished upload is fsynced and renamed into the content store's place
//! for its digest while the metadata lock is held, and linked into the
//! repository in the same critical section, so that a concurrent delete
//! never removes a blob that is being linked.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_image::store::{ContentStore, Expect, Hasher};
use berth_types::{Algorithm, Digest};

use crate::db::Db;
use crate::error::{ApiError, Code, Error};

/// Write buffer of uploads.
const WRITE_BUFFER: usize = 1024 * 1024;

/// How long an untouched session lives.
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// An open upload session.
#[derive(Debug)]
pub(crate) struct Session {
    pub id: String,
    pub repo: String,
    pub path: PathBuf,
    /// Bytes received so far.
    pub size: u64,
    /// Hash of those bytes.
    pub hasher: Hasher,
    pub algorithm: Algorithm,
    pub touched: Instant,
    /// Set when the session was completed or cancelled while someone
    /// waited for its lock.
    pub closed: bool,
}

impl Session {
    /// The `Range` header value: `0-<last byte>` (`0-0` when empty, as
    /// distribution sends).
    pub(crate) fn range(&self) -> String {
        format!("0-{}", self.size.saturating_sub(1))
    }
}

/// A session shared between requests.
pub(crate) type Shared = Arc<tokio::sync::Mutex<Session>>;

/// The open sessions.
#[derive(Debug)]
pub(crate) struct Uploads {
    dir: PathBuf,
    sessions: Mutex<HashMap<String, Shared>>,
}

impl Uploads {
    /// Sessions under `dir` (created); removes whatever was left there.
    pub(crate) fn open(dir: &Path) -> Result<Uploads, Error> {
        fs::create_dir_all(dir).map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        let mut removed = 0;
        for e in fs::read_dir(dir)
            .map_err(|e| Error::io(format!("list {}", dir.display()), e))?
            .flatten()
        {
            let p = e.path();
            let gone = if p.is_dir() {
                fs::remove_dir_all(&p)
            } else {
                fs::remove_file(&p)
            };
            if gone.is_ok() {
                removed += 1;
            }
        }
        if removed > 0 {
            tracing::info!("removed {removed} stale upload(s)");
        }
        Ok(Uploads {
            dir: dir.to_path_buf(),
            sessions: Mutex::new(HashMap::new()),
        })
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Shared>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new, empty file for an upload; its id and path.
    pub(crate) fn new_file(&self) -> io::Result<(String, PathBuf)> {
        let id = uuid::Uuid::new_v4().to_string();
        let path = self.dir.join(&id);
        File::options().write(true).create_new(true).open(&path)?;
        Ok((id, path))
    }

    /// Registers a session whose file exists.
    pub(crate) fn insert(&self, id: String, repo: &str, path: PathBuf, algorithm: Algorithm) {
        let s = Session {
            id: id.clone(),
            repo: repo.to_owned(),
            path,
            size: 0,
            hasher: Hasher::new(algorithm),
            algorithm,
            touched: Instant::now(),
            closed: false,
        };
        self.map().insert(id, Arc::new(tokio::sync::Mutex::new(s)));
    }

    /// The session `id`.
    pub(crate) fn get(&self, id: &str) -> Option<Shared> {
        self.map().get(id).cloned()
    }

    /// Forgets session `id` (its file and row are the caller's).
    pub(crate) fn forget(&self, id: &str) {
        self.map().remove(id);
    }

    /// Every session, for expiry.
    pub(crate) fn all(&self) -> Vec<Shared> {
        self.map().values().cloned().collect()
    }
}

/// Why an append failed.
#[derive(Debug)]
pub(crate) enum AppendError {
    /// Reading the body or writing the file failed.
    Io(io::Error),
    /// The body was not as long as its `Content-Range` said.
    Length { want: u64, got: u64 },
}

impl From<AppendError> for ApiError {
    fn from(e: AppendError) -> ApiError {
        match e {
            AppendError::Io(e) => ApiError::internal(format!("writing upload: {e}")),
            AppendError::Length { want, got } => ApiError::bad_request(
                Code::SizeInvalid,
                format!("Content-Range announced {want} bytes, the body had {got}"),
            ),
        }
    }
}

/// A writer that hashes what it writes.
struct HashingWriter<'a> {
    file: File,
    hasher: &'a mut Hasher,
}

impl Write for HashingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Appends what `reader` yields to the file at `path`, which holds `size`
/// bytes hashed into `hasher`. On success returns the new hasher and the
/// bytes added; on failure the file is cut back to `size` (and the
/// caller's hasher was never touched).
pub(crate) fn append(
    path: &Path,
    size: u64,
    hasher: &Hasher,
    reader: &mut impl Read,
    expect: Option<u64>,
) -> Result<(Hasher, u64), AppendError> {
    use std::io::Seek as _;
    let mut file = File::options()
        .write(true)
        .open(path)
        .map_err(AppendError::Io)?;
    file.seek(io::SeekFrom::Start(size))
        .map_err(AppendError::Io)?;
    let mut hasher = hasher.clone();
    // big writes: fewer syscalls, and the hash is fed in large blocks
    let mut w = io::BufWriter::with_capacity(
        WRITE_BUFFER,
        HashingWriter {
            file,
            hasher: &mut hasher,
        },
    );
    let result = io::copy(reader, &mut w).and_then(|n| w.flush().map(|()| n));
    // on failure: drop whatever is still buffered (never flush it) and cut
    // the file back
    let rollback = |w: io::BufWriter<HashingWriter<'_>>| {
        let (inner, _unwritten) = w.into_parts();
        let _ = inner.file.set_len(size);
    };
    match result {
        Ok(n) => {
            if let Some(want) = expect
                && n != want
            {
                rollback(w);
                return Err(AppendError::Length { want, got: n });
            }
            drop(w);
            Ok((hasher, n))
        }
        Err(e) => {
            rollback(w);
            Err(AppendError::Io(e))
        }
    }
}

/// The digest of the `size`-byte file at `path` under `want`'s algorithm:
/// from the running hash when it is the same algorithm, else by reading the
/// file again.
pub(crate) fn digest_of(
    path: &Path,
    hasher: Hasher,
    algorithm: Algorithm,
    want: Algorithm,
) -> io::Result<Digest> {
    if algorithm == want {
        return Ok(hasher.finish());
    }
    let mut h = Hasher::new(want);
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finish())
}

/// Moves the verified upload at `path` (of `digest`, `size` bytes) into the
/// content store and links it into `repo`. The file is fsynced before the
/// metadata lock is taken; the rename and the link happen under it.
pub(crate) fn commit(
    db: &Mutex<Db>,
    store: &ContentStore,
    path: &Path,
    digest: &Digest,
    size: u64,
    repo: &str,
) -> Result<(), ApiError> {
    let file = File::open(path).map_err(|e| Error::io("open upload", e))?;
    file.sync_all().map_err(|e| Error::io("fsync upload", e))?;
    drop(file);
    let db = db.lock().unwrap_or_else(|e| e.into_inner());
    if store.has(digest) {
        let _ = fs::remove_file(path);
    } else {
        let dest = store.path(digest);
        if fs::rename(path, &dest).is_err() {
            // another filesystem: copy through the store's verifying writer
            let mut src = File::open(path).map_err(|e| Error::io("open upload", e))?;
            let mut w = store.writer(Expect {
                digest: Some(digest.clone()),
                size: Some(size),
                max: None,
            })?;
            io::copy(&mut src, &mut w).map_err(|e| Error::io("copy upload into the store", e))?;
            w.commit()?;
            let _ = fs::remove_file(path);
        } else if let Some(dir) = dest.parent() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| Error::io("fsync blob directory", e))?;
        }
    }
    db.link_blob(repo, digest, size)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_rolls_back_and_digests() {
        let t = tempfile::tempdir().unwrap();
        let ups = Uploads::open(&t.path().join("uploads")).unwrap();
        let (_, path) = ups.new_file().unwrap();
        let h = Hasher::new(Algorithm::Sha256);
        let (h, n) = append(&path, 0, &h, &mut &b"hello "[..], None).unwrap();
        assert_eq!(n, 6);
        // a short chunk is cut back off
        assert!(matches!(
            append(&path, 6, &h, &mut &b"wor"[..], Some(5)),
            Err(AppendError::Length { want: 5, got: 3 })
        ));
        assert_eq!(fs::metadata(&path).unwrap().len(), 6);
        // a body that fails part way: nothing of it stays
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::new(io::ErrorKind::ConnectionAborted, "gone"));
                }
                self.0 -= 1;
                buf[..100].fill(b'x');
                Ok(100)
            }
        }
        assert!(matches!(
            append(&path, 6, &h, &mut Failing(50), None),
            Err(AppendError::Io(_))
        ));
        assert_eq!(fs::metadata(&path).unwrap().len(), 6);
        let (h, _) = append(&path, 6, &h, &mut &b"world"[..], Some(5)).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"hello world");
        let want = berth_image::store::sha256(b"hello world");
        let got = digest_of(&path, h.clone(), Algorithm::Sha256, Algorithm::Sha256).unwrap();
        assert_eq!(got, want);
        let mut h512 = Hasher::new(Algorithm::Sha512);
        h512.update(b"hello world");
        assert_eq!(
            digest_of(&path, h, Algorithm::Sha256, Algorithm::Sha512).unwrap(),
            h512.finish()
        );
        // reopening clears leftovers
        drop(ups);
        let _ = Uploads::open(&t.path().join("uploads")).unwrap();
        assert!(!path.exists());
    }
}
