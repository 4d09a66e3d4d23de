//! The contract's test suite, each test on a fresh store in its own
//! temporary directory.

use berth_kv::testsuite::Guarded;
use berth_kv_sqlite::SqliteStore;
use tempfile::TempDir;

/// A store and the directory it lives in (removed when the test ends).
async fn fresh() -> Guarded<SqliteStore, TempDir> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = SqliteStore::open(&dir.path().join("store.db")).expect("a fresh store");
    Guarded { store, guard: dir }
}

berth_kv::testsuite::backend_tests!(fresh());
