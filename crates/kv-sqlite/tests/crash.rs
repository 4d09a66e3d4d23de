//! Crash safety: a child process (this test binary again) writes with many
//! writers and prints every acknowledged write; it is killed with SIGKILL
//! mid-storm, and the reopened store must hold every acknowledged write,
//! with revisions 1..=current and no gap. Three rounds on one store.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};

use berth_kv::{Revision, Store};
use berth_kv_sqlite::{Options, SqliteStore};
use bytes::Bytes;
use rusqlite::Connection;

/// Set in the child: the store to write to.
const CHILD_ENV: &str = "BERTH_KV_SQLITE_CRASH_CHILD";

fn options() -> Options {
    Options {
        compact_interval: None,
        ..Options::default()
    }
}

/// One acknowledged write: the revision, the key and the value the key
/// then holds (`None` for a deletion).
#[derive(Debug)]
struct Ack {
    revision: Revision,
    key: String,
    value: Option<String>,
}

fn ack(revision: Revision, key: &str, value: &str) {
    let mut out = std::io::stdout().lock();
    // One line, one write: the parent reads whole lines.
    let line = format!("ack {revision} {key} {value}\n");
    out.write_all(line.as_bytes()).unwrap();
    out.flush().unwrap();
}

fn parse(line: &str) -> Option<Ack> {
    let mut fields = line.split(' ');
    if fields.next()? != "ack" {
        return None;
    }
    let revision = fields.next()?.parse().ok()?;
    let key = fields.next()?.to_owned();
    let value = fields.next()?;
    Some(Ack {
        revision,
        key,
        value: (value != "-").then(|| value.to_owned()),
    })
}

/// The child: writes until it is killed. Does nothing in a normal run.
#[test]
fn crash_child() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let store = SqliteStore::open_with(Path::new(&path), options()).unwrap();
        let round = store.current_revision().await.unwrap();
        let writers = (0..32).map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0.. {
                    let key = format!("/crash/{round}/{w}/{i}");
                    let one = format!("{w}-{i}-1");
                    let kv = store
                        .create(&key, Bytes::from(one.clone()), None)
                        .await
                        .unwrap();
                    ack(kv.mod_revision, &key, &one);
                    let two = format!("{w}-{i}-2");
                    let kv = store
                        .update(&key, Bytes::from(two.clone()), kv.mod_revision, None)
                        .await
                        .unwrap();
                    ack(kv.mod_revision, &key, &two);
                    if i % 3 == 0 {
                        let kv = store.delete(&key, Some(kv.mod_revision)).await.unwrap();
                        ack(kv.mod_revision, &key, "-");
                    }
                }
            })
        });
        for writer in futures::future::join_all(writers).await {
            writer.unwrap();
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let exe = std::env::current_exe().unwrap();
    let mut acked = Vec::new();
    for round in 0..3 {
        let target = 400 + round * 400;
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD_ENV, &path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut this_round = 0;
        // Reads to the end: the lines printed before the kill are
        // acknowledged writes too.
        for line in BufReader::new(stdout).lines() {
            let Some(ack) = parse(&line.unwrap()) else {
                continue;
            };
            acked.push(ack);
            this_round += 1;
            if this_round == target {
                // SIGKILL, by the child's pid.
                child.kill().unwrap();
            }
        }
        let status = child.wait().unwrap();
        assert!(
            this_round >= target,
            "round {round}: the child stopped after {this_round} writes ({status})"
        );
        assert_eq!(status.signal(), Some(9), "round {round}: {status}");
        eprintln!(
            "round {round}: {this_round} writes acknowledged, {} after the kill",
            this_round - target
        );
        check(&path, &acked).await;
    }
}

async fn check(path: &Path, acked: &[Ack]) {
    let store = SqliteStore::open_with(path, options()).unwrap();
    let current = store.current_revision().await.unwrap();
    let highest = acked.iter().map(|a| a.revision).max().unwrap();
    assert!(
        current >= highest,
        "current {current} < acknowledged {highest}"
    );
    let ids: Vec<Revision> = {
        let conn = Connection::open(path).unwrap();
        let mut stmt = conn.prepare("SELECT id FROM log ORDER BY id").unwrap();
        stmt.query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(
        ids,
        (1..=current).collect::<Vec<_>>(),
        "revisions have gaps"
    );
    for ack in acked {
        let (_, found) = store.get(&ack.key, ack.revision).await.unwrap();
        match &ack.value {
            Some(value) => {
                let found = found.unwrap_or_else(|| panic!("{ack:?} is lost"));
                assert_eq!(found.mod_revision, ack.revision, "{ack:?}");
                assert_eq!(found.value, value.as_bytes(), "{ack:?}");
            }
            None => {
                assert_eq!(found, None, "{ack:?}: the deletion is lost");
                let (_, before) = store.get(&ack.key, ack.revision - 1).await.unwrap();
                assert!(before.is_some(), "{ack:?}: nothing was deleted");
            }
        }
    }
}
