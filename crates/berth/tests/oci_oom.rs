//! A container whose memory limit makes the kernel's OOM killer end it:
//! `State.OOMKilled` is true, an `oom` event comes before `die`, through
//! berth's CLI and through the docker CLI against `berth daemon`; a
//! SIGKILL that is not the OOM killer's leaves OOMKilled false.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_testutil::{Berth, busybox_tar, have_docker, root_or_skip};

fn engine_with_image() -> Berth {
    let b = Berth::new(Path::new(env!("CARGO_BIN_EXE_berth")));
    let tar = busybox_tar(b.dir.path());
    b.ok(&["import", tar.to_str().unwrap(), "bb:1"]);
    b
}

/// The actions of the events of container `name`, oldest first.
fn actions(b: &Berth, name: &str) -> Vec<String> {
    b.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &berth_testutil::until_now(),
        "--filter",
        &format!("container={name}"),
        "--format",
        "{{.Action}}",
    ])
    .lines()
    .map(str::to_owned)
    .collect()
}

/// `tail` reads an endless line from /dev/zero into memory.
const EAT: &[&str] = &["sh", "-c", "tail /dev/zero"];

#[test]
fn an_oom_kill_sets_oomkilled_and_emits_oom_before_die() {
    if !root_or_skip("oom") {
        return;
    }
    let b = engine_with_image();
    let mut args = vec![
        "run",
        "--network",
        "none",
        "--name",
        "eater",
        "-m",
        "8m",
        "--memory-swap",
        "8m",
        "bb:1",
    ];
    args.extend(EAT);
    let o = b.run(&args);
    assert_eq!(
        o.status.code(),
        Some(137),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let st = b.ok(&[
        "inspect",
        "-f",
        "{{.State.ExitCode}} {{.State.OOMKilled}}",
        "eater",
    ]);
    assert_eq!(st.trim(), "137 true");
    let ev = actions(&b, "eater");
    let oom = ev.iter().position(|a| a == "oom");
    let die = ev.iter().position(|a| a == "die");
    assert!(
        oom.is_some() && die.is_some() && oom < die,
        "oom before die: {ev:?}"
    );

    // a plain SIGKILL is no OOM
    b.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "killed",
        "-m",
        "8m",
        "bb:1",
        "sleep",
        "100",
    ]);
    b.ok(&["kill", "killed"]);
    let st = b.ok(&["inspect", "-f", "{{.State.ExitCode}}", "killed"]);
    assert_eq!(st.trim(), "137");
    let st = b.ok(&["inspect", "-f", "{{.State.OOMKilled}}", "killed"]);
    assert_eq!(st.trim(), "false");
    assert!(!actions(&b, "killed").iter().any(|a| a == "oom"));
}

#[test]
fn the_docker_cli_sees_oomkilled_through_berth_daemon() {
    if !root_or_skip("oom") || !have_docker() {
        return;
    }
    let b = engine_with_image();
    let sock = b.dir.path().join("docker.sock");
    let mut daemon = b
        .cmd(&["daemon", "-H", &format!("unix://{}", sock.display())])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    struct Stop<'a>(&'a mut std::process::Child);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let daemon = Stop(&mut daemon);
    let end = Instant::now() + Duration::from_secs(15);
    while std::os::unix::net::UnixStream::connect(&sock).is_err() {
        assert!(Instant::now() < end, "the daemon did not listen");
        if let Ok(Some(st)) = daemon.0.try_wait() {
            panic!("the daemon exited: {st}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let docker = |args: &[&str]| {
        Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", sock.display()))
            .env("DOCKER_CONFIG", b.dir.path())
            .output()
            .unwrap()
    };
    let mut args = vec![
        "run",
        "--network",
        "none",
        "--name",
        "eater",
        "-m",
        "8m",
        "--memory-swap",
        "8m",
        "bb:1",
    ];
    args.extend(EAT);
    let o = docker(&args);
    assert_eq!(
        o.status.code(),
        Some(137),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = docker(&["inspect", "-f", "{{.State.OOMKilled}}", "eater"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "true");
    let o = docker(&[
        "events",
        "--since",
        "0",
        "--until",
        &berth_testutil::until_now(),
        "--filter",
        "container=eater",
        "--format",
        "{{.Action}}",
    ]);
    let ev = String::from_utf8_lossy(&o.stdout);
    let ev: Vec<&str> = ev.lines().collect();
    let oom = ev.iter().position(|a| *a == "oom");
    let die = ev.iter().position(|a| *a == "die");
    assert!(
        oom.is_some() && die.is_some() && oom < die,
        "oom before die: {ev:?}"
    );
}
