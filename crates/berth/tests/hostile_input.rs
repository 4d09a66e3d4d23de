//! Multi-byte text where a parser might slice bytes, and absurd values,
//! through the CLI and the Docker API: each is a clear error (or shown as
//! well as it can be), never a panic, and the daemon keeps answering.

use std::path::Path;
use std::process::Output;

use berth_testutil::archives::{Compression, DockerArchive, layer};
use berth_testutil::{Berth, Daemon, root_or_skip};

fn setup() -> Option<Berth> {
    if !root_or_skip("hostile input") {
        return None;
    }
    Some(Berth::with_busybox(
        Path::new(env!("CARGO_BIN_EXE_berth")),
        "bb:1",
    ))
}

/// A failure with a message, not a panic (101) or an abort (signal).
fn refused(o: &Output, what: &str) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "{what} should fail");
    assert!(o.status.code().is_some(), "{what} died of a signal: {err}");
    assert_ne!(o.status.code(), Some(101), "{what} panicked: {err}");
    assert!(!err.contains("panicked"), "{what}: {err}");
    err
}

#[test]
fn multi_byte_times_are_errors_not_panics() {
    let Some(b) = setup() else { return };
    b.ok(&[
        "run",
        "--name",
        "tt",
        "--network",
        "none",
        "bb:1",
        "echo",
        "x",
    ]);
    for since in [
        "1.12345678é",
        "é",
        "2026-12-02T17:00:00+0é:00",
        "1h\u{301}",
        "１h",
    ] {
        let o = b.run(&["events", "--since", since, "--until", "0s"]);
        let err = refused(&o, &format!("events --since {since}"));
        assert!(
            err.contains(since) || err.contains(&format!("{since:?}")),
            "the error names the value: {err}"
        );
        let o = b.run(&["logs", "--since", since, "tt"]);
        refused(&o, &format!("logs --since {since}"));
        let o = b.run(&["logs", "--until", since, "tt"]);
        refused(&o, &format!("logs --until {since}"));
    }
    let d = Daemon::start(&b);
    for q in [
        "/v1.41/events?since=1.12345678%C3%A9&until=0",
        "/v1.41/events?until=%C3%A9",
        "/v1.41/containers/tt/logs?stdout=1&since=%C3%A9",
        "/v1.41/containers/tt/logs?stdout=1&tail=%C3%A9",
        "/v1.41/events?filters=%C3%A9&until=0",
        "/v1.41/containers/json?filters=%C3%A9",
        // {"until":["1é"]}
        "/v1.41/containers/json?filters=%7B%22until%22%3A%5B%221%C3%A9%22%5D%7D",
        "/v1.41/containers/prune?filters=%7B%22until%22%3A%5B%221%C3%A9%22%5D%7D",
        "/v1.41/images/prune?filters=%7B%22until%22%3A%5B%221%C3%A9%22%5D%7D",
        "/v1.41/images/json?filters=%C3%A9",
        "/v1.41/networks?filters=%7B%22label%22%3A%5B%22%C3%A9%22%5D%2C%22%C3%A9%22%3A%5B%221%22%5D%7D",
        "/v1.41/volumes?filters=%7B%22dangling%22%3A%5B%22%C3%A9%22%5D%7D",
    ] {
        let method = if q.contains("/prune") { "POST" } else { "GET" };
        let (st, body) = d.api(method, q, b"");
        assert!((400..500).contains(&st), "{q}: {st} {body}");
        assert!(body.contains("message"), "{q}: {body}");
    }
    let (st, _) = d.api("GET", "/_ping", b"");
    assert_eq!(st, 200, "the daemon still answers");
}

#[test]
fn an_image_with_a_multi_byte_created_time_is_listed_not_fatal() {
    let Some(b) = setup() else { return };
    let l = layer(&[("f", b"x")], Compression::None);
    let mut a = DockerArchive::new();
    a.image(
        serde_json::json!({
            "created": "2000-03-01T00:00:00+0é:0",
            "history": [{"created": "2000-03-01T00:00:00+0é:0", "created_by": "é"}],
            "config": {"Cmd": ["true"]},
        }),
        &[&l],
        &["odd:1"],
    );
    let tar = b.dir.path().join("odd.tar");
    a.write(&tar);
    b.ok(&["load", "-i", tar.to_str().unwrap()]);
    let list = b.ok(&["images"]);
    assert!(list.contains("odd"), "{list}");
    let hist = b.ok(&["history", "odd:1"]);
    assert!(hist.lines().count() >= 2, "{hist}");
    let d = Daemon::start(&b);
    let (st, _) = d.api("GET", "/v1.41/images/json", b"");
    assert_eq!(st, 200);
    let (st, _) = d.api("GET", "/v1.41/images/odd:1/json", b"");
    assert_eq!(st, 200);
    let (st, _) = d.api("GET", "/v1.41/images/odd:1/history", b"");
    assert!(st == 200 || st == 404, "{st}");
    b.ok(&["rmi", "odd:1"]);
}
