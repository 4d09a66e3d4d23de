//! Write throughput with 1 and 64 concurrent writers, on the target
//! directory's disk. Not a test: run it with
//! `cargo test -p berth-kv-sqlite --release --test throughput -- --ignored --nocapture`.

use std::time::{Duration, Instant};

use berth_kv::Store;
use berth_kv_sqlite::SqliteStore;
use bytes::Bytes;

async fn writes_per_second(store: &SqliteStore, writers: usize, run: Duration) -> f64 {
    let value = Bytes::from(vec![b'x'; 512]);
    let start = Instant::now();
    let counts = futures::future::join_all((0..writers).map(|w| {
        let value = value.clone();
        async move {
            let mut n = 0u64;
            while start.elapsed() < run {
                store
                    .create(&format!("/bench/{writers}/{w}/{n}"), value.clone(), None)
                    .await
                    .unwrap();
                n += 1;
            }
            n
        }
    }))
    .await;
    counts.iter().sum::<u64>() as f64 / start.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a measurement, not a test"]
async fn throughput() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let store = SqliteStore::open(&dir.path().join("store.db")).unwrap();
    for writers in [1, 64] {
        let rate = writes_per_second(&store, writers, Duration::from_secs(3)).await;
        println!("{writers} writer(s): {rate:.0} writes/s (512-byte values, one fsync per batch)");
    }
}
