//! What only a real etcd shows: the keys as etcdctl reads them, several
//! clients on one etcd, the store prefix, shared leases, a watch when etcd
//! goes away.

use std::process::Command;
use std::time::Duration;

use berth_kv::{Error, EventKind, ListOptions, Store};
use berth_kv_etcd::EtcdStore;
use berth_kv_etcd::testing::{EtcdServer, etcdctl};
use bytes::Bytes;
use futures::StreamExt;

const WAIT: Duration = Duration::from_secs(10);

/// `etcdctl` against `server`, its standard output; `None` when etcdctl is
/// not installed (outside CI).
fn ctl(server: &EtcdServer, args: &[&str]) -> Option<String> {
    let Some(binary) = etcdctl() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "etcdctl is not installed and CI=true (apt-get install etcd-client)"
        );
        eprintln!("skipping: no etcdctl on PATH (apt-get install etcd-client)");
        return None;
    };
    let output = Command::new(binary)
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={}", server.endpoint))
        .args(args)
        .output()
        .expect("running etcdctl");
    assert!(
        output.status.success(),
        "etcdctl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcdctl_reads_the_keys_as_given() {
    let Some(server) = EtcdServer::start() else {
        return;
    };
    let store = server.store("").await;
    store
        .create(
            "/registry/pods/default/web",
            Bytes::from_static(b"{\"kind\":\"Pod\"}"),
            None,
        )
        .await
        .unwrap();
    store
        .create(
            "/registry/namespaces/default",
            Bytes::from_static(b"ns"),
            None,
        )
        .await
        .unwrap();
    let Some(out) = ctl(&server, &["get", "--prefix", "/registry/"]) else {
        return;
    };
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "/registry/namespaces/default",
            "ns",
            "/registry/pods/default/web",
            "{\"kind\":\"Pod\"}"
        ]
    );
    // And a key etcdctl writes is the store's like any other.
    ctl(
        &server,
        &["put", "/registry/pods/default/db", "from-etcdctl"],
    );
    let (_, got) = store.get("/registry/pods/default/db", 0).await.unwrap();
    let got = got.unwrap();
    assert_eq!(got.value, Bytes::from_static(b"from-etcdctl"));
    assert_eq!(got.mod_revision, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_share_one_etcd() {
    let Some(server) = EtcdServer::start() else {
        return;
    };
    let writer = server.store("").await;
    let watcher = server.store("").await;
    let mut watch = watcher.watch("/registry/pods/", 0).await.unwrap();

    let created = writer
        .create("/registry/pods/ns/a", Bytes::from_static(b"1"), None)
        .await
        .unwrap();
    // The other client reads the write at once: nothing is cached.
    let (rev, got) = watcher.get("/registry/pods/ns/a", 0).await.unwrap();
    assert_eq!(rev, created.mod_revision);
    assert_eq!(got.unwrap(), created);

    // Compare-and-swap across clients: the second writer of one revision
    // loses.
    let updated = watcher
        .update(
            "/registry/pods/ns/a",
            Bytes::from_static(b"2"),
            created.mod_revision,
            None,
        )
        .await
        .unwrap();
    match writer
        .update(
            "/registry/pods/ns/a",
            Bytes::from_static(b"3"),
            created.mod_revision,
            None,
        )
        .await
    {
        Err(Error::Conflict { current, .. }) => assert_eq!(*current, updated),
        other => panic!("a stale update from the other client: {other:?}"),
    }
    writer.delete("/registry/pods/ns/a", None).await.unwrap();

    let mut seen = Vec::new();
    for _ in 0..3 {
        let event = tokio::time::timeout(WAIT, watch.next())
            .await
            .expect("an event within 10 s")
            .expect("the watch goes on")
            .unwrap();
        seen.push((event.revision(), event.kind));
    }
    assert_eq!(
        seen,
        [
            (1, EventKind::Put),
            (2, EventKind::Put),
            (3, EventKind::Delete)
        ]
    );
    assert_eq!(writer.current_revision().await.unwrap(), 3);
    assert_eq!(watcher.current_revision().await.unwrap(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefix_keeps_stores_apart() {
    let Some(server) = EtcdServer::start() else {
        return;
    };
    let all = server.store("").await;
    let one = server.store("/cluster-one").await;
    let two = server.store("/cluster-two").await;
    one.create("/registry/a", Bytes::from_static(b"1"), None)
        .await
        .unwrap();
    two.create("/registry/a", Bytes::from_static(b"2"), None)
        .await
        .unwrap();
    let listed = one
        .list("/registry/", &ListOptions::default())
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].key, "/registry/a");
    assert_eq!(listed.items[0].value, Bytes::from_static(b"1"));
    assert_eq!(one.count("").await.unwrap().1, 1);
    let everything = all.list("/", &ListOptions::default()).await.unwrap();
    let keys: Vec<&str> = everything.items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/cluster-one/registry/a", "/cluster-two/registry/a"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_of_one_ttl_share_a_lease() {
    let Some(server) = EtcdServer::start() else {
        return;
    };
    let store = server.store("").await;
    for name in ["a", "b", "c"] {
        store
            .create(
                &format!("/registry/events/ns/{name}"),
                Bytes::from_static(b"e"),
                Some(Duration::from_secs(3600)),
            )
            .await
            .unwrap();
    }
    let Some(out) = ctl(&server, &["lease", "list"]) else {
        return;
    };
    assert!(out.starts_with("found 1 leases"), "{out}");
    let lease = out.lines().nth(1).unwrap().trim().to_owned();
    let Some(out) = ctl(&server, &["lease", "timetolive", &lease, "--keys"]) else {
        return;
    };
    assert!(out.contains("granted with TTL(3660s)"), "{out}");
    assert!(out.contains("/registry/events/ns/c"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_ends_with_an_error_when_etcd_goes_away() {
    let Some(server) = EtcdServer::start() else {
        return;
    };
    let store = server.store("").await;
    let mut watch = store.watch("/w/", 0).await.unwrap();
    store
        .create("/w/a", Bytes::from_static(b"v"), None)
        .await
        .unwrap();
    let event = tokio::time::timeout(WAIT, watch.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(event.kv.key, "/w/a");
    drop(server);
    let end = tokio::time::timeout(WAIT, watch.next())
        .await
        .expect("the watch notices within 10 s");
    assert!(
        matches!(end, Some(Err(Error::Backend(_)))),
        "the watch ends with an error: {end:?}"
    );
    assert!(
        tokio::time::timeout(WAIT, watch.next())
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(store.get("/w/a", 0).await, Err(Error::Backend(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_to_nothing_fails_clearly() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    match EtcdStore::connect(std::slice::from_ref(&endpoint), "").await {
        Err(Error::Backend(message)) => assert!(message.contains(&endpoint), "{message}"),
        other => panic!("connected to nothing: {other:?}"),
    }
    assert!(matches!(
        EtcdStore::connect(&[], "").await,
        Err(Error::Backend(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_by_another_client_is_reported_exactly() {
    let Some(server) = EtcdServer::start() else {
        return;
    };
    let one = server.store("").await;
    let two = server.store("").await;
    assert_eq!(two.compacted_revision().await.unwrap(), 0);
    for i in 0..40 {
        one.create(&format!("/c/{i}"), Bytes::from_static(b"v"), None)
            .await
            .unwrap();
    }
    one.compact(17).await.unwrap();
    assert_eq!(two.compacted_revision().await.unwrap(), 17);
    assert!(matches!(
        two.get("/c/0", 16).await,
        Err(Error::Compacted {
            requested: 16,
            compacted: 17
        })
    ));
    assert!(matches!(
        two.list(
            "/c/",
            &ListOptions {
                revision: 3,
                ..Default::default()
            }
        )
        .await,
        Err(Error::Compacted {
            requested: 3,
            compacted: 17
        })
    ));
    // The compacted revision itself is still readable.
    let (rev, got) = two.get("/c/16", 17).await.unwrap();
    assert_eq!((rev, got.unwrap().mod_revision), (17, 17));
    for again in [17, 5] {
        assert!(matches!(
            two.compact(again).await,
            Err(Error::Compacted { compacted: 17, .. })
        ));
    }
    assert!(matches!(
        two.compact(41).await,
        Err(Error::FutureRevision {
            requested: 41,
            current: 40
        })
    ));
    assert!(matches!(
        two.watch("/c/", 16).await,
        Err(Error::Compacted { compacted: 17, .. })
    ));
    assert!(matches!(
        two.watch("/c/", 41).await,
        Err(Error::FutureRevision { current: 40, .. })
    ));
    two.compact(40).await.unwrap();
    assert_eq!(one.compacted_revision().await.unwrap(), 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_continue_key_outside_the_prefix() {
    let Some(server) = EtcdServer::start() else {
        return;
    };
    let store = server.store("").await;
    for key in ["/a/1", "/b/1", "/b/2", "/c/1"] {
        store
            .create(key, Bytes::from_static(b"v"), None)
            .await
            .unwrap();
    }
    let list = |after: &str| {
        let options = ListOptions {
            start_after: Some(after.to_owned()),
            ..Default::default()
        };
        let store = store.clone();
        async move {
            let result = store.list("/b/", &options).await.unwrap();
            result
                .items
                .into_iter()
                .map(|kv| kv.key)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(list("/a/9").await, ["/b/1", "/b/2"]);
    assert_eq!(list("/b/1").await, ["/b/2"]);
    assert!(list("/b/2").await.is_empty());
    assert!(list("/c/0").await.is_empty());
    assert_eq!(
        store
            .list("", &ListOptions::default())
            .await
            .unwrap()
            .items
            .len(),
        4
    );
    assert_eq!(store.count("").await.unwrap(), (4, 4));
}

/// A list or watch answer larger than gRPC's default 4 MiB cap is read
/// whole (a list of 10,000 objects is bigger than that).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_over_four_mebibytes_are_read() {
    let Some(server) = EtcdServer::start() else {
        return;
    };
    let store = server.store("").await;
    let big = Bytes::from(vec![b'x'; 1024 * 1024]);
    let mut watch = store.watch("/big/", 0).await.unwrap();
    for i in 0..6 {
        store
            .create(&format!("/big/{i}"), big.clone(), None)
            .await
            .unwrap();
    }
    let all = store.list("/big/", &ListOptions::default()).await.unwrap();
    assert_eq!(all.items.len(), 6);
    assert!(all.items.iter().all(|kv| kv.value.len() == big.len()));
    for _ in 0..6 {
        let event = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(event.kv.value.len(), big.len());
    }
    // A watch replaying that history from the start reads it too.
    let mut replay = store.watch("/big/", 1).await.unwrap();
    for _ in 0..5 {
        tokio::time::timeout(Duration::from_secs(10), replay.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}
