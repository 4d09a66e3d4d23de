//! Compaction: the automatic compactor, what compaction leaves in the log,
//! and a run of random writes and compactions checked against the
//! in-memory reference store at every readable revision.

use std::path::Path;
use std::time::Duration;

use berth_kv::memory::MemoryStore;
use berth_kv::{Error, Event, ListOptions, Revision, Store};
use berth_kv_sqlite::{Options, SqliteStore};
use bytes::Bytes;
use futures::StreamExt;
use rusqlite::Connection;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn log_rows(path: &Path) -> Vec<(Revision, String, bool)> {
    let conn = Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT id, CAST(name AS TEXT), deleted FROM log ORDER BY id")
        .unwrap();
    stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

async fn wait_for_compaction(store: &SqliteStore, revision: Revision) {
    for _ in 0..200 {
        if store.compacted_revision().await.unwrap() == revision {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the compactor did not reach {revision} (at {})",
        store.compacted_revision().await.unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compactor_keeps_the_latest_revisions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let options = Options {
        compact_interval: Some(Duration::from_millis(100)),
        compact_keep: 10,
        ..Options::default()
    };
    let store = SqliteStore::open_with(&path, options).unwrap();
    // 5 keys updated 10 times each (50), one created and deleted (52).
    for k in 0..5 {
        store
            .create(&format!("/c/{k}"), b("0"), None)
            .await
            .unwrap();
    }
    for round in 1..10 {
        for k in 0..5 {
            let key = format!("/c/{k}");
            let (_, kv) = store.get(&key, 0).await.unwrap();
            store
                .update(&key, b(&round.to_string()), kv.unwrap().mod_revision, None)
                .await
                .unwrap();
        }
    }
    store.create("/c/gone", b("v"), None).await.unwrap(); // 51
    store.delete("/c/gone", None).await.unwrap(); // 52
    wait_for_compaction(&store, 42).await;
    assert!(matches!(
        store.get("/c/0", 41).await,
        Err(Error::Compacted {
            requested: 41,
            compacted: 42
        })
    ));
    // At 42 the keys read as they were: /c/0../c/1 at round 8, the rest at 7.
    let then = store
        .list(
            "/c/",
            &ListOptions {
                revision: 42,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let values: Vec<_> = then.items.iter().map(|kv| kv.value.clone()).collect();
    assert_eq!(values, [b("8"), b("8"), b("7"), b("7"), b("7")]);
    // The log holds each key's version at 42 and everything after.
    let rows = log_rows(&path);
    let ids: Vec<_> = rows.iter().map(|(id, _, _)| *id).collect();
    assert_eq!(
        ids,
        [38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52]
    );
    drop(store);
    // The compacted revision survives a reopen.
    let store = SqliteStore::open_with(
        &path,
        Options {
            compact_interval: None,
            ..Options::default()
        },
    )
    .unwrap();
    assert_eq!(store.compacted_revision().await.unwrap(), 42);
}

/// The compactor works through a long history in steps, writes going on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_compactor_takes_long_histories_in_steps() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let options = Options {
        compact_interval: Some(Duration::from_millis(300)),
        compact_keep: 100,
        ..Options::default()
    };
    let store = SqliteStore::open_with(&path, options).unwrap();
    let writers = 64;
    let each = 400;
    futures::future::join_all((0..writers).map(|w| {
        let store = store.clone();
        async move {
            let key = format!("/s/{w}");
            let mut revision = store.create(&key, b("0"), None).await.unwrap().mod_revision;
            for i in 1..each {
                revision = store
                    .update(&key, b(&i.to_string()), revision, None)
                    .await
                    .unwrap()
                    .mod_revision;
            }
        }
    }))
    .await;
    let current = store.current_revision().await.unwrap();
    assert_eq!(current, writers * each);
    wait_for_compaction(&store, current - 100).await;
    let now = store.list("/s/", &ListOptions::default()).await.unwrap();
    assert_eq!(now.items.len(), 64);
    assert!(now.items.iter().all(|kv| kv.value == b("399")));
    assert!(log_rows(&path).len() <= 100 + 64);
}

/// A small deterministic generator (no dependency for a test).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below
    }
}

/// A page of a list: keys and revisions, `more`, `remaining`.
type Page = (Vec<(String, Revision)>, bool, i64);

/// Each revision's list, each revision's list in pages, the history.
type Everything = (
    Revision,
    Vec<Vec<(String, Bytes, Revision, Revision)>>,
    Vec<Vec<Page>>,
    Vec<Event>,
);

/// Everything readable: each revision's list and the history from the
/// compacted revision on.
async fn everything(store: &dyn Store) -> Everything {
    let compacted = store.compacted_revision().await.unwrap();
    let current = store.current_revision().await.unwrap();
    let mut lists = Vec::new();
    let mut pages = Vec::new();
    for revision in compacted.max(1)..=current {
        let list = store
            .list(
                "/",
                &ListOptions {
                    revision,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        lists.push(
            list.items
                .into_iter()
                .map(|kv| (kv.key, kv.value, kv.create_revision, kv.mod_revision))
                .collect(),
        );
        // The same, in pages of 2.
        let mut options = ListOptions {
            revision,
            limit: 2,
            ..Default::default()
        };
        let mut paged = Vec::new();
        loop {
            let page = store.list("/", &options).await.unwrap();
            paged.push((
                page.items
                    .iter()
                    .map(|kv| (kv.key.clone(), kv.mod_revision))
                    .collect(),
                page.more,
                page.remaining,
            ));
            let Some(last) = page.items.last() else { break };
            if !page.more {
                break;
            }
            options.start_after = Some(last.key.clone());
        }
        pages.push(paged);
    }
    let mut events = Vec::new();
    // The history after the compacted revision (after revision 1 when
    // nothing was compacted: 0 would mean "from now").
    let from = compacted.max(1);
    if current > from {
        let mut watch = store.watch("/", from).await.unwrap();
        while events.last().is_none_or(|e: &Event| e.revision() < current) {
            let event = tokio::time::timeout(Duration::from_secs(5), watch.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            events.push(event);
        }
    }
    (compacted, lists, pages, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_writes_and_compactions_match_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let options = Options {
        compact_interval: None,
        ..Options::default()
    };
    let sqlite = SqliteStore::open_with(&path, options.clone()).unwrap();
    let memory = MemoryStore::new();
    let mut rng = Lcg(7);
    let keys = ["/a", "/b", "/b/c", "/d", "/e/f", "/é"];
    for step in 0..600 {
        let key = keys[rng.next(keys.len() as u64) as usize];
        let value = b(&format!("v{step}"));
        let (_, live) = memory.get(key, 0).await.unwrap();
        let stale = rng.next(5) == 0;
        let (m, s) = match (rng.next(4), live) {
            (0, _) | (_, None) => (
                memory.create(key, value.clone(), None).await,
                sqlite.create(key, value, None).await,
            ),
            (1 | 2, Some(kv)) => {
                let expected = kv.mod_revision - i64::from(stale);
                (
                    memory.update(key, value.clone(), expected, None).await,
                    sqlite.update(key, value, expected, None).await,
                )
            }
            (_, Some(kv)) => {
                let expected = (!stale).then_some(kv.mod_revision);
                (
                    memory.delete(key, expected).await,
                    sqlite.delete(key, expected).await,
                )
            }
        };
        match (m, s) {
            (Ok(m), Ok(s)) => assert_eq!(m, s, "step {step}"),
            (Err(m), Err(s)) => assert_eq!(m.to_string(), s.to_string(), "step {step}"),
            (m, s) => panic!("step {step}: memory {m:?}, sqlite {s:?}"),
        }
        if rng.next(40) == 0 {
            let current = memory.current_revision().await.unwrap();
            let compacted = memory.compacted_revision().await.unwrap();
            if current > compacted {
                let revision = compacted + 1 + rng.next((current - compacted) as u64) as i64;
                memory.compact(revision).await.unwrap();
                sqlite.compact(revision).await.unwrap();
            }
        }
        if step % 100 == 99 {
            assert_eq!(
                everything(&memory).await,
                everything(&sqlite).await,
                "step {step}"
            );
        }
    }
    let expected = everything(&memory).await;
    drop(sqlite);
    let sqlite = SqliteStore::open_with(&path, options).unwrap();
    assert_eq!(expected, everything(&sqlite).await);
}
