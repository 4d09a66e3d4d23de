//! What survives closing and reopening a store, the store's lock, and
//! watches that replay more than fits in memory at once.

use std::time::Duration;

use berth_kv::{Error, EventKind, ListOptions, Store};
use berth_kv_sqlite::{Options, SqliteStore};
use bytes::Bytes;
use futures::StreamExt;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_keeps_every_write_and_the_history() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    {
        let store = SqliteStore::open(&path).unwrap();
        store.create("/r/a", b("a1"), None).await.unwrap(); // 1
        store.update("/r/a", b("a2"), 1, None).await.unwrap(); // 2
        store.create("/r/b", b("b1"), None).await.unwrap(); // 3
        store.delete("/r/b", Some(3)).await.unwrap(); // 4
        store.create("/r/c", b("c1"), None).await.unwrap(); // 5
        store.compact(2).await.unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.current_revision().await.unwrap(), 5);
    assert_eq!(store.compacted_revision().await.unwrap(), 2);
    let now = store.list("/r/", &ListOptions::default()).await.unwrap();
    let seen: Vec<_> = now
        .items
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value.clone(), kv.mod_revision))
        .collect();
    assert_eq!(seen, [("/r/a", b("a2"), 2), ("/r/c", b("c1"), 5)]);
    let (_, b_then) = store.get("/r/b", 3).await.unwrap();
    assert_eq!(b_then.unwrap().value, b("b1"));
    assert!(matches!(
        store.get("/r/a", 1).await,
        Err(Error::Compacted {
            requested: 1,
            compacted: 2
        })
    ));

    // The history after the compacted revision replays with previous
    // values.
    let mut watch = store.watch("/r/", 2).await.unwrap();
    let mut events = Vec::new();
    for _ in 0..3 {
        events.push(
            tokio::time::timeout(Duration::from_secs(5), watch.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap(),
        );
    }
    let revisions: Vec<_> = events.iter().map(|e| e.revision()).collect();
    assert_eq!(revisions, [3, 4, 5]);
    assert_eq!(events[1].kind, EventKind::Delete);
    assert_eq!(events[1].kv.value, b("b1"));
    assert_eq!(events[1].prev.as_ref().unwrap().mod_revision, 3);

    // Writes go on from the same counter, and the watch sees them.
    let next = store.update("/r/a", b("a3"), 2, None).await.unwrap();
    assert_eq!(next.mod_revision, 6);
    let event = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(event.revision(), 6);
    assert_eq!(event.prev.unwrap().value, b("a2"));
}

/// Compacting at a deletion removes the log's last row; the revision
/// counter must not go back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compacting_away_the_last_row_keeps_the_revision() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    {
        let store = SqliteStore::open(&path).unwrap();
        store.create("/d/a", b("1"), None).await.unwrap(); // 1
        store.delete("/d/a", None).await.unwrap(); // 2
        store.compact(2).await.unwrap();
        assert_eq!(store.current_revision().await.unwrap(), 2);
        assert_eq!(store.get("/d/a", 0).await.unwrap(), (2, None));
        assert_eq!(store.count("/d/").await.unwrap(), (2, 0));
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.current_revision().await.unwrap(), 2);
    assert_eq!(store.get("/d/a", 0).await.unwrap(), (2, None));
    let again = store.create("/d/a", b("2"), None).await.unwrap();
    assert_eq!((again.create_revision, again.mod_revision), (3, 3));
}

/// A TTL counts on while the store is closed; the key is deleted, with an
/// event, once the store is open again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_expire_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    {
        let store = SqliteStore::open(&path).unwrap();
        store
            .create("/t/short", b("v"), Some(Duration::from_millis(300)))
            .await
            .unwrap(); // 1
        store
            .create("/t/long", b("v"), Some(Duration::from_secs(3600)))
            .await
            .unwrap(); // 2
        // An update without a TTL takes the TTL away.
        store
            .create("/t/kept", b("v"), Some(Duration::from_millis(300)))
            .await
            .unwrap(); // 3
        store.update("/t/kept", b("w"), 3, None).await.unwrap(); // 4
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let store = SqliteStore::open(&path).unwrap();
    let mut watch = store.watch("/t/", 4).await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(event.kind, EventKind::Delete);
    assert_eq!(event.kv.key, "/t/short");
    assert_eq!(event.revision(), 5);
    assert_eq!(store.get("/t/short", 0).await.unwrap().1, None);
    assert!(store.get("/t/long", 0).await.unwrap().1.is_some());
    assert!(store.get("/t/kept", 0).await.unwrap().1.is_some());
    assert!(
        tokio::time::timeout(Duration::from_millis(300), watch.next())
            .await
            .is_err(),
        "only the expired key is deleted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_opens_once_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let store = SqliteStore::open(&path).unwrap();
    store.create("/x", b("v"), None).await.unwrap();
    let Err(Error::Backend(message)) = SqliteStore::open(&path) else {
        panic!("a second open of the same store was allowed");
    };
    assert!(message.contains("in use"), "{message}");
    drop(store);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.current_revision().await.unwrap(), 1);
}

/// A watch from far back reads more history than one page, and the live
/// changes overflow the buffer meanwhile: each change once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_long_replay_misses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        watch_buffer: 8,
        ..Options::default()
    };
    let store = SqliteStore::open_with(&dir.path().join("store.db"), options).unwrap();
    write_many(&store, 16, 150, "/a/").await; // 2400 revisions
    let mut watch = store.watch("/", 1).await.unwrap();
    write_many(&store, 16, 40, "/b/").await; // 640 more, unread
    let total = 2400 + 640;
    let mut seen = Vec::new();
    while seen.len() < total - 1 {
        let event = tokio::time::timeout(Duration::from_secs(20), watch.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen.push(event.revision());
    }
    assert_eq!(seen, (2..=total as i64).collect::<Vec<_>>());
    // Then live changes.
    store.create("/c", b("v"), None).await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(event.revision(), total as i64 + 1);
}

/// A watch replaying history while writers write: each change once, in
/// order (a buffer larger than a batch, a watcher that keeps up).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replay_during_writes_misses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("store.db")).unwrap();
    write_many(&store, 16, 150, "/a/").await; // 2400 revisions
    let mut watch = store.watch("/", 1).await.unwrap();
    let more = {
        let store = store.clone();
        tokio::spawn(async move { write_many(&store, 16, 40, "/b/").await })
    };
    let total = 2400 + 640;
    let mut seen = Vec::new();
    while seen.len() < total - 1 {
        let event = tokio::time::timeout(Duration::from_secs(20), watch.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen.push(event.revision());
    }
    more.await.unwrap();
    assert_eq!(seen, (2..=total as i64).collect::<Vec<_>>());
}

/// A watcher that falls behind live changes is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_watcher_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        watch_buffer: 8,
        ..Options::default()
    };
    let store = SqliteStore::open_with(&dir.path().join("store.db"), options).unwrap();
    let mut watch = store.watch("/", 0).await.unwrap();
    store.create("/first", b("v"), None).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.revision(), 1);
    for i in 0..50 {
        store
            .create(&format!("/k/{i}"), b("v"), None)
            .await
            .unwrap();
    }
    let mut ended = None;
    while let Some(item) = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .unwrap()
    {
        if let Err(e) = item {
            ended = Some(e);
        }
    }
    assert!(matches!(ended, Some(Error::WatcherLagged)), "{ended:?}");
}

/// `writers` tasks each creating `each` keys under `prefix`.
async fn write_many(store: &SqliteStore, writers: usize, each: usize, prefix: &str) {
    futures::future::join_all((0..writers).map(|w| async move {
        for i in 0..each {
            store
                .create(&format!("{prefix}{w}/{i}"), b("v"), None)
                .await
                .unwrap();
        }
    }))
    .await;
}
