//! The contract's test suite, each test on a fresh store in its own
//! temporary directory.

use std::time::Duration;

use async_trait::async_trait;
use berth_kv::{Error, KeyValue, ListOptions, ListResult, Revision, Store, WatchStream};
use berth_kv_sqlite::SqliteStore;
use bytes::Bytes;
use tempfile::TempDir;

/// A store and the directory it lives in (removed when the test ends).
struct Fresh {
    store: SqliteStore,
    _dir: TempDir,
}

async fn fresh() -> Fresh {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = SqliteStore::open(&dir.path().join("store.db")).expect("a fresh store");
    Fresh { store, _dir: dir }
}

#[async_trait]
impl Store for Fresh {
    async fn current_revision(&self) -> Result<Revision, Error> {
        self.store.current_revision().await
    }
    async fn compacted_revision(&self) -> Result<Revision, Error> {
        self.store.compacted_revision().await
    }
    async fn get(
        &self,
        key: &str,
        revision: Revision,
    ) -> Result<(Revision, Option<KeyValue>), Error> {
        self.store.get(key, revision).await
    }
    async fn list(&self, prefix: &str, options: &ListOptions) -> Result<ListResult, Error> {
        self.store.list(prefix, options).await
    }
    async fn count(&self, prefix: &str) -> Result<(Revision, i64), Error> {
        self.store.count(prefix).await
    }
    async fn create(
        &self,
        key: &str,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> Result<KeyValue, Error> {
        self.store.create(key, value, ttl).await
    }
    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Revision,
        ttl: Option<Duration>,
    ) -> Result<KeyValue, Error> {
        self.store.update(key, value, expected, ttl).await
    }
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue, Error> {
        self.store.delete(key, expected).await
    }
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, Error> {
        self.store.watch(prefix, after).await
    }
    async fn compact(&self, revision: Revision) -> Result<(), Error> {
        self.store.compact(revision).await
    }
}

berth_kv::testsuite::backend_tests!(fresh());
