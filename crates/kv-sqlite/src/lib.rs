//! berth's embedded cluster store: the [`berth_kv::Store`] contract on
//! SQLite, in kine's shape.
//!
//! Every write appends one row to a revision log (`id` = the revision); a
//! key's value at a revision is its latest row at or before it. One writer
//! thread owns the write connection: it takes every write queued, applies
//! each at its own revision (compare-and-swap checks in order) in one
//! transaction and commits once, so concurrent writers share one fsync
//! (WAL, `synchronous=FULL`: a write is on disk before it is answered).
//! Reads run on a pool of read connections on tokio's blocking threads.
//! Watches replay the log, then follow the writer's changes. The writer
//! also deletes keys whose TTL is up and compacts history (see
//! [`Options`]). An flock on `<path>.lock` keeps a second process off the
//! store. The schema is in [`schema`].
#![forbid(unsafe_code)]

mod reader;
pub mod schema;
mod watch;
mod writer;

use std::ffi::OsString;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use async_trait::async_trait;
use berth_kv::{Error, Event, KeyValue, ListOptions, ListResult, Revision, Store, WatchStream};
use bytes::Bytes;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::{broadcast, oneshot};

use reader::Readers;
pub use schema::SCHEMA_VERSION;
use writer::{Op, Request, Writer, Written};

/// How a store is run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// How often the automatic compactor runs; `None` turns it off.
    /// Default: 5 minutes.
    pub compact_interval: Option<Duration>,
    /// How many of the latest revisions the automatic compactor keeps
    /// readable. Default: 1000.
    pub compact_keep: Revision,
    /// At most this many idle read connections stay open. Default: 8.
    pub read_connections: usize,
    /// At most this many writes share one transaction. Default: 1024.
    pub max_batch: usize,
    /// How many changes a watcher may fall behind live changes before it
    /// is dropped with [`Error::WatcherLagged`]. Default: 16384.
    pub watch_buffer: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            compact_interval: Some(Duration::from_secs(5 * 60)),
            compact_keep: 1000,
            read_connections: 8,
            max_batch: 1024,
            watch_buffer: 16 * 1024,
        }
    }
}

/// What the writer thread and the store share.
pub(crate) struct Shared {
    /// The last committed revision.
    pub(crate) current: AtomicI64,
    /// The committed compacted revision.
    pub(crate) compacted: AtomicI64,
    /// Committed changes, in order.
    pub(crate) changes: broadcast::Sender<Arc<Event>>,
}

struct Inner {
    path: PathBuf,
    shared: Arc<Shared>,
    readers: Arc<Readers>,
    requests: Option<mpsc::Sender<Request>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The writer finishes its batch and stops; waiting for it releases
        // the store's lock before the store is gone, so that it can be
        // opened again at once.
        drop(self.requests.take());
        let handle = self
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(handle) = handle
            && handle.join().is_err()
        {
            tracing::error!(path = %self.path.display(), "the store's writer panicked");
        }
    }
}

/// The SQLite store. Clones share one store; it closes when the last
/// clone is dropped (watches then end).
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

/// Maps an SQLite error to the contract's, saying what was being done.
pub(crate) fn backend(doing: &'static str) -> impl Fn(rusqlite::Error) -> Error {
    move |e| Error::Backend(format!("{doing}: {e}"))
}

/// The end of `prefix`'s key range: [`berth_kv::prefix_end`], or a byte
/// no UTF-8 key holds for the empty prefix.
pub(crate) fn range_end(prefix: &str) -> Vec<u8> {
    berth_kv::prefix_end(prefix).unwrap_or_else(|| vec![0xff])
}

/// Opens a connection with the store's settings.
pub(crate) fn open_connection(path: &Path, flags: OpenFlags) -> Result<Connection, Error> {
    let fail = |doing: &str, e: rusqlite::Error| {
        Error::Backend(format!("{doing} the store {}: {e}", path.display()))
    };
    let conn = Connection::open_with_flags(path, flags).map_err(|e| fail("opening", e))?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(|e| fail("configuring", e))?;
    conn.set_prepared_statement_cache_capacity(32);
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(|e| fail("switching to WAL", e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Backend(format!(
            "the store {} cannot use WAL (journal mode is {mode})",
            path.display()
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(|e| fail("configuring", e))?;
    Ok(conn)
}

/// Takes `<path>.lock`, or says who holds it.
fn lock(path: &Path) -> Result<File, Error> {
    let mut name = OsString::from(path.as_os_str());
    name.push(".lock");
    let lock_path = PathBuf::from(name);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| {
            Error::Backend(format!(
                "opening the store's lock {}: {e}",
                lock_path.display()
            ))
        })?;
    match rustix::fs::flock(
        file.as_fd(),
        rustix::fs::FlockOperation::NonBlockingLockExclusive,
    ) {
        Ok(()) => Ok(file),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(Error::Backend(format!(
            "the store {} is in use by another process (it holds {})",
            path.display(),
            lock_path.display()
        ))),
        Err(e) => Err(Error::Backend(format!(
            "locking the store {}: {e}",
            lock_path.display()
        ))),
    }
}

impl SqliteStore {
    /// Opens (or creates) the store at `path` with [`Options::default`].
    pub fn open(path: &Path) -> Result<SqliteStore, Error> {
        Self::open_with(path, Options::default())
    }

    /// Opens (or creates) the store at `path`: takes its lock, brings its
    /// schema to [`SCHEMA_VERSION`] (refusing a newer one) and starts its
    /// writer thread.
    pub fn open_with(path: &Path, options: Options) -> Result<SqliteStore, Error> {
        let lock = lock(path)?;
        let mut conn = open_connection(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        schema::migrate(&mut conn, path)?;
        let (max_id, compacted): (Revision, Revision) = conn
            .query_row(
                "SELECT (SELECT IFNULL(MAX(id), 0) FROM log), \
                 (SELECT value FROM meta WHERE key = 'compact_revision')",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .map_err(backend("reading the store's revisions"))?;
        let revision = max_id.max(compacted);
        let readers = Arc::new(Readers::new(path, options.read_connections)?);
        let (changes, _) = broadcast::channel(options.watch_buffer.max(1));
        let shared = Arc::new(Shared {
            current: AtomicI64::new(revision),
            compacted: AtomicI64::new(compacted),
            changes,
        });
        let writer = Writer::new(
            conn,
            path.to_owned(),
            shared.clone(),
            options,
            revision,
            compacted,
            lock,
        );
        let (requests, receiver) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("kv-sqlite-writer".to_owned())
            .spawn(move || writer.run(receiver))
            .map_err(|e| Error::Backend(format!("starting the store's writer thread: {e}")))?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                shared,
                readers,
                requests: Some(requests),
                writer: Mutex::new(Some(handle)),
            }),
        })
    }

    /// The path of the store's database.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    async fn write(&self, op: Op) -> Result<Written, Error> {
        let stopped = || Error::Backend("the store's writer has stopped".to_owned());
        let (reply, answer) = oneshot::channel();
        self.inner
            .requests
            .as_ref()
            .ok_or_else(stopped)?
            .send(Request { op, reply })
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    async fn write_kv(&self, op: Op) -> Result<KeyValue, Error> {
        match self.write(op).await? {
            Written::Kv(kv) => Ok(kv),
            Written::Compacted => Err(Error::Backend(
                "the store's writer answered a write with a compaction".to_owned(),
            )),
        }
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn current_revision(&self) -> Result<Revision, Error> {
        Ok(self.inner.shared.current.load(Ordering::SeqCst))
    }

    async fn compacted_revision(&self) -> Result<Revision, Error> {
        Ok(self.inner.shared.compacted.load(Ordering::SeqCst))
    }

    async fn get(
        &self,
        key: &str,
        revision: Revision,
    ) -> Result<(Revision, Option<KeyValue>), Error> {
        let key = key.to_owned();
        self.inner
            .readers
            .run(move |conn| reader::get(conn, &key, revision))
            .await
    }

    async fn list(&self, prefix: &str, options: &ListOptions) -> Result<ListResult, Error> {
        let prefix = prefix.to_owned();
        let options = options.clone();
        self.inner
            .readers
            .run(move |conn| reader::list(conn, &prefix, &options))
            .await
    }

    async fn count(&self, prefix: &str) -> Result<(Revision, i64), Error> {
        let prefix = prefix.to_owned();
        self.inner
            .readers
            .run(move |conn| reader::count(conn, &prefix))
            .await
    }

    async fn create(
        &self,
        key: &str,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> Result<KeyValue, Error> {
        self.write_kv(Op::Create {
            key: key.to_owned(),
            value,
            ttl,
        })
        .await
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Revision,
        ttl: Option<Duration>,
    ) -> Result<KeyValue, Error> {
        self.write_kv(Op::Update {
            key: key.to_owned(),
            value,
            expected,
            ttl,
        })
        .await
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue, Error> {
        self.write_kv(Op::Delete {
            key: key.to_owned(),
            expected,
        })
        .await
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, Error> {
        watch::watch(
            &self.inner.readers,
            &self.inner.shared.changes,
            prefix,
            after,
        )
        .await
    }

    async fn compact(&self, revision: Revision) -> Result<(), Error> {
        match self.write(Op::Compact { revision }).await? {
            Written::Compacted => Ok(()),
            Written::Kv(_) => Err(Error::Backend(
                "the store's writer answered a compaction with a write".to_owned(),
            )),
        }
    }
}
