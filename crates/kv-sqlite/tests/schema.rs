//! Schema versions: a version 1 database made by hand (this file keeps its
//! own copy of version 1's SQL, frozen) opens; newer and foreign databases
//! are refused with a clear error.

use std::path::Path;

use berth_kv::{Error, EventKind, ListOptions, Store};
use berth_kv_sqlite::{SCHEMA_VERSION, SqliteStore};
use bytes::Bytes;
use futures::StreamExt;
use rusqlite::Connection;

/// Version 1, as it shipped.
const V1: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE log (
    id INTEGER PRIMARY KEY,
    name BLOB NOT NULL,
    created INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,
    expires_at INTEGER,
    value BLOB NOT NULL
);
CREATE INDEX log_name_id ON log (name, id);
CREATE INDEX log_expires_at ON log (expires_at) WHERE expires_at IS NOT NULL;
INSERT INTO meta (key, value) VALUES ('schema_version', 1), ('compact_revision', 0);
";

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn open_error(path: &Path) -> String {
    match SqliteStore::open(path) {
        Err(Error::Backend(message)) => message,
        Err(other) => panic!("unexpected error: {other}"),
        Ok(_) => panic!("{} was accepted", path.display()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_database_made_by_hand_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(V1).unwrap();
        // /v/a created at 1, updated at 2; /v/b created at 3, deleted at 4.
        conn.execute_batch(
            "INSERT INTO log VALUES (1, CAST('/v/a' AS BLOB), 1, 0, 1, 0, NULL, CAST('a1' AS BLOB));
             INSERT INTO log VALUES (2, CAST('/v/a' AS BLOB), 0, 0, 1, 1, NULL, CAST('a2' AS BLOB));
             INSERT INTO log VALUES (3, CAST('/v/b' AS BLOB), 1, 0, 3, 0, NULL, CAST('b1' AS BLOB));
             INSERT INTO log VALUES (4, CAST('/v/b' AS BLOB), 0, 1, 3, 3, NULL, X'');",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.current_revision().await.unwrap(), 4);
    let now = store.list("/v/", &ListOptions::default()).await.unwrap();
    assert_eq!(now.items.len(), 1);
    assert_eq!(now.items[0].value, b("a2"));
    assert_eq!(now.items[0].create_revision, 1);
    assert_eq!(
        store.get("/v/b", 3).await.unwrap().1.unwrap().value,
        b("b1")
    );
    let mut watch = store.watch("/v/", 1).await.unwrap();
    let mut kinds = Vec::new();
    for _ in 0..3 {
        let event = watch.next().await.unwrap().unwrap();
        kinds.push((event.revision(), event.kind, event.prev.map(|p| p.value)));
    }
    assert_eq!(
        kinds,
        [
            (2, EventKind::Put, Some(b("a1"))),
            (3, EventKind::Put, None),
            (4, EventKind::Delete, Some(b("b1"))),
        ]
    );
    let next = store.update("/v/a", b("a3"), 2, None).await.unwrap();
    assert_eq!(next.mod_revision, 5);
}

#[test]
fn a_fresh_database_records_its_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    drop(SqliteStore::open(&path).unwrap());
    let conn = Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(V1).unwrap();
        conn.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'schema_version'",
            [SCHEMA_VERSION + 1],
        )
        .unwrap();
    }
    let message = open_error(&path);
    assert!(
        message.contains(&format!("schema version {}", SCHEMA_VERSION + 1))
            && message.contains("newer"),
        "{message}"
    );
}

#[test]
fn a_database_that_is_not_a_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE things (id INTEGER PRIMARY KEY)")
        .unwrap();
    let message = open_error(&path);
    assert!(message.contains("not a berth store"), "{message}");

    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![b'x'; 8192]).unwrap();
    let message = open_error(&garbage);
    assert!(message.contains("garbage.db"), "{message}");
}
