//! The contract's tests. A backend runs them all with
//! `berth_kv::testsuite::backend_tests!(async { <make a fresh store> })`
//! in a test module; each test gets a fresh, empty store.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;

use crate::{Error, EventKind, ListOptions, Store};

/// Generates one `#[tokio::test]` per contract test. `$make` is an
/// expression (usually an `async` block) whose awaited value is a fresh,
/// empty store.
#[macro_export]
macro_rules! backend_tests {
    ($make:expr) => {
        $crate::backend_tests!(@tests $make;
            create_get_update_delete, revisions_are_gapless, list_by_prefix_in_pages,
            list_at_an_old_revision, count_counts_live_keys, watch_replays_then_follows,
            watch_filters_by_prefix, watch_from_now, compaction_refuses_old_reads,
            compaction_keeps_live_keys, keys_expire, conflicts_leave_the_store_unchanged,
            many_concurrent_writers);
    };
    (@tests $make:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let store = $make.await;
                $crate::testsuite::$name(&store).await;
            }
        )*
    };
}
pub use backend_tests;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// Create, get, update with the right and a wrong revision, delete.
pub async fn create_get_update_delete(store: &dyn Store) {
    assert_eq!(store.current_revision().await.unwrap(), 0);
    let created = store
        .create("/registry/pods/default/a", b("one"), None)
        .await
        .unwrap();
    assert_eq!(created.mod_revision, 1);
    assert_eq!(created.create_revision, 1);
    assert!(matches!(
        store.create("/registry/pods/default/a", b("x"), None).await,
        Err(Error::Exists(_))
    ));

    let (rev, got) = store.get("/registry/pods/default/a", 0).await.unwrap();
    assert_eq!(rev, 1);
    assert_eq!(got.unwrap().value, b("one"));
    assert_eq!(
        store.get("/registry/pods/default/none", 0).await.unwrap().1,
        None
    );

    let updated = store
        .update("/registry/pods/default/a", b("two"), 1, None)
        .await
        .unwrap();
    assert_eq!(updated.mod_revision, 2);
    assert_eq!(updated.create_revision, 1);
    match store
        .update("/registry/pods/default/a", b("three"), 1, None)
        .await
    {
        Err(Error::Conflict {
            expected: 1,
            current,
            ..
        }) => assert_eq!(current.value, b("two")),
        other => panic!("stale update: {other:?}"),
    }
    assert!(matches!(
        store
            .update("/registry/pods/default/none", b("x"), 1, None)
            .await,
        Err(Error::NotFound(_))
    ));

    assert!(matches!(
        store.delete("/registry/pods/default/a", Some(1)).await,
        Err(Error::Conflict { .. })
    ));
    let deleted = store
        .delete("/registry/pods/default/a", Some(2))
        .await
        .unwrap();
    assert_eq!(deleted.mod_revision, 3);
    assert_eq!(deleted.value, b("two"));
    assert_eq!(
        store.get("/registry/pods/default/a", 0).await.unwrap().1,
        None
    );
    assert!(matches!(
        store.delete("/registry/pods/default/a", None).await,
        Err(Error::NotFound(_))
    ));

    // A key created again starts a new life.
    let again = store
        .create("/registry/pods/default/a", b("new"), None)
        .await
        .unwrap();
    assert_eq!(again.create_revision, 4);
    // Reading at the old revision still sees the old life.
    let (_, old) = store.get("/registry/pods/default/a", 2).await.unwrap();
    assert_eq!(old.unwrap().value, b("two"));
    assert_eq!(
        store.get("/registry/pods/default/a", 3).await.unwrap().1,
        None
    );
    assert!(matches!(
        store.get("/registry/pods/default/a", 99).await,
        Err(Error::FutureRevision { .. })
    ));
}

/// Every write takes exactly the next revision.
pub async fn revisions_are_gapless(store: &dyn Store) {
    let mut expected = 0;
    for i in 0..20 {
        let key = format!("/k/{i}");
        expected += 1;
        assert_eq!(
            store.create(&key, b("v"), None).await.unwrap().mod_revision,
            expected
        );
        expected += 1;
        assert_eq!(
            store
                .update(&key, b("w"), expected - 1, None)
                .await
                .unwrap()
                .mod_revision,
            expected
        );
    }
    // Failed writes take no revision.
    let _ = store.create("/k/0", b("v"), None).await.unwrap_err();
    assert_eq!(store.current_revision().await.unwrap(), expected);
}

/// Lists are in key order, limited, and continue after a key.
pub async fn list_by_prefix_in_pages(store: &dyn Store) {
    for name in ["c", "a", "b", "d", "e"] {
        store
            .create(&format!("/registry/pods/ns/{name}"), b(name), None)
            .await
            .unwrap();
    }
    store
        .create("/registry/pods/ns2/z", b("z"), None)
        .await
        .unwrap();
    store
        .create("/registry/podsx/ns/a", b("x"), None)
        .await
        .unwrap();

    let all = store
        .list("/registry/pods/ns/", &ListOptions::default())
        .await
        .unwrap();
    let names: Vec<_> = all.items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(
        names,
        [
            "/registry/pods/ns/a",
            "/registry/pods/ns/b",
            "/registry/pods/ns/c",
            "/registry/pods/ns/d",
            "/registry/pods/ns/e"
        ]
    );
    assert!(!all.more);
    assert_eq!(all.revision, 7);

    let page = store
        .list(
            "/registry/pods/ns/",
            &ListOptions {
                limit: 2,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 2);
    assert!(page.more);
    assert_eq!(page.remaining, 3);
    let next = store
        .list(
            "/registry/pods/ns/",
            &ListOptions {
                limit: 2,
                start_after: Some(page.items[1].key.clone()),
                revision: page.revision,
            },
        )
        .await
        .unwrap();
    assert_eq!(next.items[0].key, "/registry/pods/ns/c");
    assert_eq!(next.items[1].key, "/registry/pods/ns/d");
    assert!(next.more);

    let pods = store
        .list("/registry/pods/", &ListOptions::default())
        .await
        .unwrap();
    assert_eq!(pods.items.len(), 6);
}

/// A list at an older revision sees the keys as they were.
pub async fn list_at_an_old_revision(store: &dyn Store) {
    store.create("/p/a", b("a1"), None).await.unwrap();
    store.create("/p/b", b("b1"), None).await.unwrap();
    let at = store.current_revision().await.unwrap();
    store.update("/p/a", b("a2"), 1, None).await.unwrap();
    store.delete("/p/b", None).await.unwrap();
    store.create("/p/c", b("c1"), None).await.unwrap();

    let old = store
        .list(
            "/p/",
            &ListOptions {
                revision: at,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let seen: Vec<_> = old
        .items
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value.clone()))
        .collect();
    assert_eq!(seen, [("/p/a", b("a1")), ("/p/b", b("b1"))]);
    assert_eq!(old.revision, at);
    let now = store.list("/p/", &ListOptions::default()).await.unwrap();
    let seen: Vec<_> = now
        .items
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value.clone()))
        .collect();
    assert_eq!(seen, [("/p/a", b("a2")), ("/p/c", b("c1"))]);
}

/// Count sees live keys under a prefix only.
pub async fn count_counts_live_keys(store: &dyn Store) {
    for i in 0..5 {
        store
            .create(&format!("/c/{i}"), b("v"), None)
            .await
            .unwrap();
    }
    store.create("/d/0", b("v"), None).await.unwrap();
    store.delete("/c/3", None).await.unwrap();
    assert_eq!(store.count("/c/").await.unwrap(), (7, 4));
}

/// A watch from a revision replays every later change with its previous
/// value, then follows live changes, each exactly once.
pub async fn watch_replays_then_follows(store: &dyn Store) {
    store.create("/w/a", b("1"), None).await.unwrap(); // 1
    store.update("/w/a", b("2"), 1, None).await.unwrap(); // 2
    store.create("/w/b", b("1"), None).await.unwrap(); // 3
    let mut watch = store.watch("/w/", 1).await.unwrap();
    store.delete("/w/a", None).await.unwrap(); // 4
    store.create("/w/c", b("1"), None).await.unwrap(); // 5

    let mut seen = Vec::new();
    for _ in 0..4 {
        let event = tokio::time::timeout(Duration::from_secs(5), watch.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen.push(event);
    }
    let revisions: Vec<_> = seen.iter().map(|e| e.revision()).collect();
    assert_eq!(revisions, [2, 3, 4, 5]);
    assert_eq!(seen[0].kind, EventKind::Put);
    assert_eq!(seen[0].prev.as_ref().unwrap().value, b("1"));
    assert_eq!(seen[1].prev, None);
    assert_eq!(seen[2].kind, EventKind::Delete);
    assert_eq!(seen[2].kv.key, "/w/a");
    assert_eq!(seen[2].prev.as_ref().unwrap().value, b("2"));
    assert!(
        tokio::time::timeout(Duration::from_millis(200), watch.next())
            .await
            .is_err(),
        "no more events"
    );
}

/// A watch sees only its prefix.
pub async fn watch_filters_by_prefix(store: &dyn Store) {
    let mut watch = store.watch("/x/a/", 0).await.unwrap();
    store.create("/x/b/1", b("v"), None).await.unwrap();
    store.create("/x/a/1", b("v"), None).await.unwrap();
    store.create("/x/ab", b("v"), None).await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(event.kv.key, "/x/a/1");
    assert!(
        tokio::time::timeout(Duration::from_millis(200), watch.next())
            .await
            .is_err()
    );
}

/// A watch from revision 0 starts at the current revision.
pub async fn watch_from_now(store: &dyn Store) {
    store.create("/n/old", b("v"), None).await.unwrap();
    let mut watch = store.watch("/n/", 0).await.unwrap();
    store.create("/n/new", b("v"), None).await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(event.kv.key, "/n/new");
}

/// After compaction, older reads and watches get the compacted error.
pub async fn compaction_refuses_old_reads(store: &dyn Store) {
    for i in 0..5 {
        store
            .create(&format!("/o/{i}"), b("v"), None)
            .await
            .unwrap();
    }
    store.compact(3).await.unwrap();
    assert_eq!(store.compacted_revision().await.unwrap(), 3);
    assert!(matches!(
        store.get("/o/0", 2).await,
        Err(Error::Compacted {
            requested: 2,
            compacted: 3
        })
    ));
    assert!(matches!(
        store
            .list(
                "/o/",
                &ListOptions {
                    revision: 1,
                    ..Default::default()
                }
            )
            .await,
        Err(Error::Compacted { .. })
    ));
    assert!(matches!(
        store.watch("/o/", 2).await,
        Err(Error::Compacted { .. })
    ));
    // From the compacted revision itself, the later history is there.
    let mut watch = store.watch("/o/", 3).await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(event.revision(), 4);
    assert!(matches!(
        store.compact(2).await,
        Err(Error::Compacted { .. })
    ));
}

/// Compaction keeps the latest version of every live key and drops
/// deleted ones.
pub async fn compaction_keeps_live_keys(store: &dyn Store) {
    store.create("/l/a", b("1"), None).await.unwrap(); // 1
    store.update("/l/a", b("2"), 1, None).await.unwrap(); // 2
    store.create("/l/b", b("1"), None).await.unwrap(); // 3
    store.delete("/l/b", None).await.unwrap(); // 4
    store.create("/l/c", b("1"), None).await.unwrap(); // 5
    store.compact(5).await.unwrap();
    let now = store.list("/l/", &ListOptions::default()).await.unwrap();
    let seen: Vec<_> = now
        .items
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value.clone(), kv.mod_revision))
        .collect();
    assert_eq!(seen, [("/l/a", b("2"), 2), ("/l/c", b("1"), 5)]);
    assert_eq!(store.count("/l/").await.unwrap().1, 2);
    // Writes go on from the same counter.
    assert_eq!(
        store
            .update("/l/a", b("3"), 2, None)
            .await
            .unwrap()
            .mod_revision,
        6
    );
}

/// A key with a TTL is deleted (with a delete event) once it expires.
pub async fn keys_expire(store: &dyn Store) {
    let mut watch = store.watch("/e/", 0).await.unwrap();
    store
        .create("/e/short", b("v"), Some(Duration::from_secs(1)))
        .await
        .unwrap();
    store.create("/e/long", b("v"), None).await.unwrap();
    let created = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(created.kind, EventKind::Put);
    let _ = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .unwrap();
    let mut gone = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if store.get("/e/short", 0).await.unwrap().1.is_none() {
            gone = true;
            break;
        }
    }
    assert!(gone, "the key with a 1 s TTL is still there after 10 s");
    let deleted = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(deleted.kind, EventKind::Delete);
    assert_eq!(deleted.kv.key, "/e/short");
    assert!(store.get("/e/long", 0).await.unwrap().1.is_some());
}

/// A refused write leaves the store exactly as it was.
pub async fn conflicts_leave_the_store_unchanged(store: &dyn Store) {
    store.create("/u/a", b("1"), None).await.unwrap();
    let before = store.list("/u/", &ListOptions::default()).await.unwrap();
    let _ = store.update("/u/a", b("2"), 7, None).await.unwrap_err();
    let _ = store.delete("/u/a", Some(7)).await.unwrap_err();
    let _ = store.create("/u/a", b("3"), None).await.unwrap_err();
    let after = store.list("/u/", &ListOptions::default()).await.unwrap();
    assert_eq!(before, after);
}

/// Concurrent compare-and-swap writers: every acknowledged write is there,
/// revisions have no gaps, and a watcher sees each change once.
pub async fn many_concurrent_writers(store: &dyn Store) {
    let mut watch = store.watch("/m/", 0).await.unwrap();
    let writers = 16;
    let per_writer = 25;
    let results = futures::future::join_all((0..writers).map(|w| async move {
        let mut revisions = Vec::new();
        for i in 0..per_writer {
            let key = format!("/m/{w}/{i}");
            revisions.push(store.create(&key, b("v"), None).await.unwrap().mod_revision);
        }
        revisions
    }))
    .await;
    let mut all: Vec<_> = results.into_iter().flatten().collect();
    all.sort_unstable();
    let total = writers * per_writer;
    assert_eq!(all, (1..=i64::try_from(total).unwrap()).collect::<Vec<_>>());
    let mut seen = Vec::new();
    while seen.len() < total {
        let event = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen.push(event.revision());
    }
    assert_eq!(
        seen,
        (1..=i64::try_from(total).unwrap()).collect::<Vec<_>>()
    );
}

/// A store kept together with what must outlive it in a test (a temporary
/// directory, a test etcd): every call goes to `store`.
#[derive(Debug)]
pub struct Guarded<S, G> {
    /// The store.
    pub store: S,
    /// What the store needs to stay alive.
    pub guard: G,
}

#[async_trait::async_trait]
impl<S: Store, G: Send + Sync + 'static> Store for Guarded<S, G> {
    async fn current_revision(&self) -> Result<crate::Revision, Error> {
        self.store.current_revision().await
    }
    async fn compacted_revision(&self) -> Result<crate::Revision, Error> {
        self.store.compacted_revision().await
    }
    async fn get(
        &self,
        key: &str,
        revision: crate::Revision,
    ) -> Result<(crate::Revision, Option<crate::KeyValue>), Error> {
        self.store.get(key, revision).await
    }
    async fn list(&self, prefix: &str, options: &ListOptions) -> Result<crate::ListResult, Error> {
        self.store.list(prefix, options).await
    }
    async fn count(&self, prefix: &str) -> Result<(crate::Revision, i64), Error> {
        self.store.count(prefix).await
    }
    async fn create(
        &self,
        key: &str,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> Result<crate::KeyValue, Error> {
        self.store.create(key, value, ttl).await
    }
    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: crate::Revision,
        ttl: Option<Duration>,
    ) -> Result<crate::KeyValue, Error> {
        self.store.update(key, value, expected, ttl).await
    }
    async fn delete(
        &self,
        key: &str,
        expected: Option<crate::Revision>,
    ) -> Result<crate::KeyValue, Error> {
        self.store.delete(key, expected).await
    }
    async fn watch(
        &self,
        prefix: &str,
        after: crate::Revision,
    ) -> Result<crate::WatchStream, Error> {
        self.store.watch(prefix, after).await
    }
    async fn compact(&self, revision: crate::Revision) -> Result<(), Error> {
        self.store.compact(revision).await
    }
}
