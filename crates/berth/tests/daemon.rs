//! `berth daemon` as a process: stopped with SIGTERM it says that
//! containers keep running, and they do (live-restore); a new daemon finds
//! them; and hundreds of half-open connections do not keep it from
//! answering.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::Path;

use berth_testutil::{Berth, Daemon, root_or_skip, wait_for};

fn setup() -> Option<Berth> {
    if !root_or_skip("berth daemon") {
        return None;
    }
    Some(Berth::with_busybox(
        Path::new(env!("CARGO_BIN_EXE_berth")),
        "bb:1",
    ))
}

#[test]
fn sigterm_says_containers_keep_running_and_they_do() {
    let Some(b) = setup() else { return };
    let mut d = Daemon::start(&b);
    let (st, body) = d.api_json(
        "POST",
        "/v1.41/containers/create?name=keeper",
        &serde_json::json!({"Image": "bb:1", "Cmd": ["sleep", "600"],
            "HostConfig": {"NetworkMode": "none"}}),
    );
    assert_eq!(st, 201, "{body}");
    let (st, _) = d.api("POST", "/v1.41/containers/keeper/start", b"");
    assert_eq!(st, 204);
    let started = b.ok(&["inspect", "-f", "{{.State.StartedAt}}", "keeper"]);

    rustix::process::kill_process(
        rustix::process::Pid::from_raw(d.pid() as i32).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    wait_for("the daemon to exit", || (!d.alive()).then_some(()));
    let log = d.log();
    assert!(
        log.contains("SIGTERM: shutting down; containers keep running")
            && log.contains("1 running now"),
        "{log}"
    );
    // still running, same run, seen by the CLI and by a new daemon
    let now = b.ok(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.StartedAt}}",
        "keeper",
    ]);
    assert_eq!(now.trim(), format!("running {}", started.trim()));
    let d2 = Daemon::start(&b);
    let (st, v) = d2.api_json(
        "GET",
        "/v1.41/containers/keeper/json",
        &serde_json::Value::Null,
    );
    assert_eq!(st, 200);
    assert_eq!(v["State"]["Running"], true);
    assert_eq!(v["State"]["StartedAt"].as_str(), Some(started.trim()));
    b.ok(&["rm", "-f", "keeper"]);
}

#[test]
fn half_open_connections_do_not_block_the_api() {
    let Some(b) = setup() else { return };
    let d = Daemon::start(&b);
    // 300 clients that connect and send half a request, then nothing
    let mut held = Vec::new();
    for i in 0..300 {
        let mut s = UnixStream::connect(&d.sock).unwrap();
        let part: &[u8] = match i % 3 {
            0 => b"",
            1 => b"GET /v1.41/_ping HTT",
            _ => b"POST /v1.41/containers/create HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"Ima",
        };
        s.write_all(part).unwrap();
        held.push(s);
    }
    // others are served meanwhile, including a container's whole life
    for _ in 0..20 {
        let (st, body) = d.api("GET", "/_ping", b"");
        assert_eq!((st, body.as_str()), (200, "OK"));
    }
    let (st, body) = d.api_json(
        "POST",
        "/v1.41/containers/create",
        &serde_json::json!({"Image": "bb:1", "Cmd": ["echo", "through"],
            "HostConfig": {"NetworkMode": "none"}}),
    );
    assert_eq!(st, 201, "{body}");
    let id = body["Id"].as_str().unwrap().to_owned();
    let (st, _) = d.api("POST", &format!("/v1.41/containers/{id}/start"), b"");
    assert_eq!(st, 204);
    let (st, w) = d.api_json(
        "POST",
        &format!("/v1.41/containers/{id}/wait"),
        &serde_json::Value::Null,
    );
    assert_eq!((st, w["StatusCode"].as_i64()), (200, Some(0)));
    drop(held);
    let (st, _) = d.api("DELETE", &format!("/v1.41/containers/{id}"), b"");
    assert_eq!(st, 204);
}
