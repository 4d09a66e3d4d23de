//! storebench: the cluster store's backends side by side through the same
//! `berth_kv::Store` code — write throughput with 1 and 64 concurrent
//! writers (creates of 1 KiB values) and the latency of a list of 10,000
//! keys under a prefix — kv-sqlite (WAL, synchronous=FULL, group commit)
//! against etcd 3.4 (fsync per commit), both on the filesystem of `--dir`.
//!
//! Usage: storebench --dir DIR [--seconds 5] [--rounds 2] [--writers 1,64]
//!        [--list-keys 10000] [--list-runs 30]
//! etcd's data goes to the temporary directory (`TMPDIR`): point it at the
//! same filesystem as `--dir`.
#![forbid(unsafe_code)]
#![deny(clippy::string_slice)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use berth_bench::{Flags, Samples, ms};
use berth_kv::{ListOptions, Store};
use bytes::Bytes;

/// A 1 KiB value shaped like a stored object.
fn value(i: usize) -> Bytes {
    let head = format!("{{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\",\"n\":{i},\"data\":\"");
    let mut text = head;
    while text.len() < 1022 {
        text.push('x');
    }
    text.push_str("\"}");
    Bytes::from(text)
}

/// `writers` tasks creating keys under `prefix` for `seconds`: how many,
/// and each create's latency.
async fn write_run(
    store: Arc<dyn Store>,
    prefix: &str,
    writers: usize,
    seconds: f64,
) -> Result<(usize, Duration, Samples)> {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        let prefix = prefix.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut samples = Samples::new();
            let mut i = 0usize;
            while Instant::now() < deadline {
                let key = format!("{prefix}{w:03}-{i:08}");
                let t = Instant::now();
                store.create(&key, value(i), None).await?;
                samples.push(t.elapsed());
                i += 1;
            }
            Ok::<_, berth_kv::Error>(samples)
        }));
    }
    let mut all = Samples::new();
    for task in tasks {
        all.extend(task.await.context("a writer task failed")??);
    }
    Ok((all.len(), started.elapsed(), all))
}

/// Creates `count` keys under `prefix` with 64 writers.
async fn populate(store: Arc<dyn Store>, prefix: &str, count: usize) -> Result<Duration> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let store = store.clone();
        let next = next.clone();
        let prefix = prefix.to_owned();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok::<_, berth_kv::Error>(());
                }
                store
                    .create(&format!("{prefix}{i:08}"), value(i), None)
                    .await?;
            }
        }));
    }
    for task in tasks {
        task.await.context("a populating task failed")??;
    }
    Ok(started.elapsed())
}

/// Every key under `prefix`: in one read (`page` 0) or in pages of `page`.
async fn list_all(store: &dyn Store, prefix: &str, page: usize) -> Result<usize> {
    let mut options = ListOptions {
        limit: page,
        ..ListOptions::default()
    };
    let mut count = 0;
    loop {
        let result = store.list(prefix, &options).await?;
        count += result.items.len();
        if !result.more {
            return Ok(count);
        }
        options.revision = result.revision;
        options.start_after = result.items.last().map(|kv| kv.key.clone());
    }
}

/// List latencies of `runs` lists (after two unmeasured ones).
async fn list_run(
    store: &dyn Store,
    prefix: &str,
    page: usize,
    runs: usize,
    expect: usize,
) -> Result<Samples> {
    let mut samples = Samples::new();
    for run in 0..runs + 2 {
        let t = Instant::now();
        let count = list_all(store, prefix, page).await?;
        let took = t.elapsed();
        if count != expect {
            bail!("the list returned {count} keys, not {expect}");
        }
        if run >= 2 {
            samples.push(took);
        }
    }
    Ok(samples)
}

fn main() -> Result<()> {
    let flags = Flags::from_env();
    let dir = PathBuf::from(flags.get("dir").context("--dir DIR is required")?);
    let seconds: f64 = flags.num("seconds", 5.0)?;
    let rounds: usize = flags.num("rounds", 2)?;
    let list_keys: usize = flags.num("list-keys", 10_000)?;
    let list_runs: usize = flags.num("list-runs", 30)?;
    let writers: Vec<usize> = flags
        .get("writers")
        .unwrap_or("1,64")
        .split(',')
        .map(|w| w.parse().context("--writers takes numbers: 1,64"))
        .collect::<Result<_>>()?;
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let sqlite_path = dir.join("storebench.db");
        let sqlite = berth_kv_sqlite::SqliteStore::open_with(
            &sqlite_path,
            berth_kv_sqlite::Options {
                compact_interval: None,
                ..berth_kv_sqlite::Options::default()
            },
        )?;
        let Some(etcd_server) = berth_kv_etcd::testing::EtcdServer::start() else {
            bail!("no etcd to compare with (apt-get install etcd-server)");
        };
        let etcd = etcd_server.store("").await;
        println!("sqlite: {}", sqlite_path.display());
        println!(
            "etcd:   {} (data {})",
            etcd_server.endpoint,
            etcd_server.dir().display()
        );
        let stores: Vec<(&str, Arc<dyn Store>)> = vec![
            ("kv-sqlite", Arc::new(sqlite)),
            ("etcd-3.4", Arc::new(etcd)),
        ];

        // Writes: rounds alternate the stores so that load drifts hit both.
        for &n in &writers {
            for round in 0..rounds {
                for (name, store) in &stores {
                    let prefix = format!("/registry/configmaps/w{n}r{round}/");
                    let (ops, took, lat) = write_run(store.clone(), &prefix, n, seconds).await?;
                    println!(
                        "RESULT write store={name} writers={n} round={round} ops={ops} \
                         rate={:.0}/s latency {}",
                        ops as f64 / took.as_secs_f64(),
                        lat.summary()
                    );
                }
            }
        }

        // Lists: 10,000 keys under one prefix, among the keys written above.
        for (name, store) in &stores {
            let took = populate(store.clone(), "/registry/configmaps/list/", list_keys).await?;
            println!(
                "populate store={name} keys={list_keys} in {} ({:.0}/s, 64 writers)",
                ms(took),
                list_keys as f64 / took.as_secs_f64()
            );
        }
        for page in [0usize, 500] {
            for (name, store) in &stores {
                let prefix = "/registry/configmaps/list/";
                match list_run(store.as_ref(), prefix, page, list_runs, list_keys).await {
                    Ok(lat) => println!(
                        "RESULT list store={name} keys={list_keys} page={page} latency {}",
                        lat.summary()
                    ),
                    Err(e) => println!("RESULT list store={name} page={page} FAILED: {e:#}"),
                }
            }
        }
        drop(stores);
        drop(etcd_server);
        Ok(())
    })
}
