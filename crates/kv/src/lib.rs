//! The cluster store contract.
//!
//! A revisioned key/value store in the shape kine gives Kubernetes: every
//! write (create, update, delete, expiry) takes the next revision of one
//! global, gapless counter; reads can be made at an older revision until it
//! is compacted; a watch replays every change after a revision, with the
//! previous value, and then follows live changes. Keys are strings laid out
//! as kube-apiserver lays them (`/registry/<resource>/<namespace>/<name>`),
//! values opaque bytes.
//!
//! Backends: [`memory::MemoryStore`] here (tests, tools), `berth-kv-sqlite`
//! (the embedded default) and `berth-kv-etcd` (several servers, one
//! cluster). The `testsuite` feature holds the contract's tests; every
//! backend runs them unchanged. Nothing above this crate names a backend.
#![forbid(unsafe_code)]

pub mod memory;
#[cfg(feature = "testsuite")]
pub mod testsuite;

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

/// A store revision. Revision 0 means "the current one" where a revision
/// is asked for; the first write of an empty store is revision 1.
pub type Revision = i64;

/// One stored version of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key.
    pub key: String,
    /// The value (empty in a delete event's `kv`).
    pub value: Bytes,
    /// The revision at which this key was created (its current life).
    pub create_revision: Revision,
    /// The revision of this version.
    pub mod_revision: Revision,
}

/// What happened to a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// Created or updated.
    Put,
    /// Deleted (by a client or because it expired).
    Delete,
}

/// One change, as a watch delivers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Put or delete.
    pub kind: EventKind,
    /// The new version; for a delete, the key with the deletion's revision
    /// as `mod_revision` and the deleted value.
    pub kv: KeyValue,
    /// The version before this change (none for a create).
    pub prev: Option<KeyValue>,
}

impl Event {
    /// The revision at which the change happened.
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }
}

/// A page of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListResult {
    /// The revision the list was read at.
    pub revision: Revision,
    /// Keys in byte order.
    pub items: Vec<KeyValue>,
    /// Whether keys after the last item match too (the list was cut at
    /// its limit).
    pub more: bool,
    /// How many matching keys follow the last item, when `more`.
    pub remaining: i64,
}

/// How a list is asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// Start after this key (exclusive): a continue token's key.
    pub start_after: Option<String>,
    /// Read at this revision (0 = current).
    pub revision: Revision,
    /// At most this many items (0 = all).
    pub limit: usize,
}

/// The stream of a watch: changes in revision order. It ends with an error
/// when the store cannot keep up with the watcher or shuts down.
pub type WatchStream = BoxStream<'static, Result<Event, Error>>;

/// The store's errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The revision asked for has been compacted away.
    #[error(
        "the requested revision {requested} has been compacted (oldest available: {compacted})"
    )]
    Compacted {
        /// The revision asked for.
        requested: Revision,
        /// The store's compacted revision.
        compacted: Revision,
    },
    /// A revision beyond the current one was asked for.
    #[error(
        "the requested revision {requested} is newer than the store's current revision {current}"
    )]
    FutureRevision {
        /// The revision asked for.
        requested: Revision,
        /// The store's current revision.
        current: Revision,
    },
    /// A create found the key present.
    #[error("key {0} already exists")]
    Exists(String),
    /// An update or delete found the key absent.
    #[error("key {0} not found")]
    NotFound(String),
    /// An update or delete found the key at another revision.
    #[error("key {key} changed: expected revision {expected}, found {}", .current.mod_revision)]
    Conflict {
        /// The key.
        key: String,
        /// The revision the caller expected.
        expected: Revision,
        /// What the key holds now.
        current: Box<KeyValue>,
    },
    /// A watcher fell too far behind and was dropped.
    #[error("the watch fell behind the store and was closed")]
    WatcherLagged,
    /// The backend failed (I/O, connection, corruption).
    #[error("store backend: {0}")]
    Backend(String),
}

/// The store contract every backend implements.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The current revision (0 for an empty, never-written store).
    async fn current_revision(&self) -> Result<Revision, Error>;

    /// The oldest revision reads and watches can start from.
    async fn compacted_revision(&self) -> Result<Revision, Error>;

    /// The key at `revision` (0 = current), with the revision read at.
    async fn get(
        &self,
        key: &str,
        revision: Revision,
    ) -> Result<(Revision, Option<KeyValue>), Error>;

    /// Keys under `prefix` in byte order, a page at a time.
    async fn list(&self, prefix: &str, options: &ListOptions) -> Result<ListResult, Error>;

    /// How many keys are under `prefix` now, with the revision.
    async fn count(&self, prefix: &str) -> Result<(Revision, i64), Error>;

    /// Creates `key` if absent ([`Error::Exists`] otherwise); it expires
    /// after `ttl` when one is given. Returns the new version.
    async fn create(
        &self,
        key: &str,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> Result<KeyValue, Error>;

    /// Replaces `key` if it is at `expected` ([`Error::Conflict`] or
    /// [`Error::NotFound`] otherwise). Returns the new version.
    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Revision,
        ttl: Option<Duration>,
    ) -> Result<KeyValue, Error>;

    /// Deletes `key`, if it is at `expected` when one is given. Returns the
    /// deleted version, with the deletion's revision as `mod_revision`.
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue, Error>;

    /// Every change under `prefix` after revision `after` (0 = from now),
    /// then live changes.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, Error>;

    /// Forgets history older than `revision` (the latest version of each
    /// live key is kept).
    async fn compact(&self, revision: Revision) -> Result<(), Error>;
}

/// The smallest key greater than every key that starts with `prefix`, or
/// `None` when no such key exists (a prefix of 0xff bytes, or empty).
pub fn prefix_end(prefix: &str) -> Option<Vec<u8>> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}
