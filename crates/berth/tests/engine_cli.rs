//! Container management through berth's own CLI, with no daemon: detached
//! containers, ps, logs, stop, rm, names, restart policies, and a monitor
//! killed with SIGKILL leaving no ghost "running" container. Then the
//! Docker API: `berth daemon` driven by the real `docker` CLI and docker-py
//! over the same root, surviving a `kill -9` of the daemon.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_testutil::{Berth, busybox_tar, root_or_skip};

fn berth_with_image() -> Berth {
    let b = Berth::new(Path::new(env!("CARGO_BIN_EXE_berth")));
    let tar = busybox_tar(b.dir.path());
    b.ok(&["import", tar.to_str().unwrap(), "bb:1"]);
    b
}

fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(15);
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn status(b: &Berth, c: &str) -> String {
    b.ok(&["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", c])
        .trim()
        .to_owned()
}

#[test]
fn detached_containers_logs_stop_rm_and_names() {
    if !root_or_skip("containers") {
        return;
    }
    let b = berth_with_image();
    let id = b
        .ok(&[
            "run", "-d", "--name", "web", "bb:1", "sh", "-c",
            "trap 'echo bye; exit 0' TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done",
        ])
        .trim()
        .to_owned();
    assert_eq!(id.len(), 64, "{id}");
    eventually("logs", || b.ok(&["logs", "web"]).contains("tick 3"));
    let ps = b.ok(&["ps"]);
    assert!(
        ps.contains("web") && ps.contains(&id[..12]) && ps.contains("Up "),
        "{ps}"
    );
    assert_eq!(b.ok(&["logs", "--tail", "1", "web"]).lines().count(), 1);
    let top = b.ok(&["top", "web"]);
    assert!(
        top.starts_with("UID") && top.contains("sh -c trap"),
        "{top}"
    );
    assert_eq!(
        b.ok(&["ps", "-q", "--filter", "name=web"]).trim(),
        &id[..12]
    );
    assert!(
        b.ok(&["ps", "-q", "--filter", "name=nomatch"])
            .trim()
            .is_empty()
    );
    assert!(
        b.fails(&["ps", "--filter", "colour=red"])
            .contains("invalid filter")
    );
    // a name is taken once
    let err = b.fails(&["run", "-d", "--name", "web", "bb:1", "true"]);
    assert!(err.contains("is already in use"), "{err}");
    // rm of a running container needs -f
    let err = b.fails(&["rm", "web"]);
    assert!(err.contains("cannot remove a running container"), "{err}");
    b.ok(&["stop", "-t", "5", "web"]);
    assert_eq!(status(&b, "web"), "exited 0", "the trap ran on SIGTERM");
    assert!(b.ok(&["logs", "web"]).ends_with("bye\n"));
    assert!(b.ok(&["ps"]).lines().count() == 1, "only the header");
    assert!(b.ok(&["ps", "-a"]).contains("Exited (0)"));
    // a stopped container starts again, keeping its log
    b.ok(&["start", "web"]);
    eventually("second run", || {
        b.ok(&["logs", "web"]).matches("tick 0").count() == 2
    });
    b.ok(&["rm", "-f", "web"]);
    assert!(b.ok(&["ps", "-aq"]).trim().is_empty());
    b.ok(&["run", "-d", "--name", "web", "bb:1", "true"]);
    b.ok(&["rm", "-f", "web"]);
    let err = b.fails(&["logs", "nosuch"]);
    assert!(err.contains("No such container: nosuch"), "{err}");
}

#[test]
fn restart_policies_and_exit_codes() {
    if !root_or_skip("containers") {
        return;
    }
    let b = berth_with_image();
    b.ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "bb:1",
        "sh",
        "-c",
        "echo run; exit 3",
    ]);
    eventually("three runs", || {
        b.ok(&[
            "inspect",
            "-f",
            "{{.RestartCount}} {{.State.Status}}",
            "flaky",
        ])
        .trim()
            == "2 exited"
    });
    assert_eq!(b.ok(&["logs", "flaky"]).matches("run").count(), 3);
    assert_eq!(b.ok(&["wait", "flaky"]).trim(), "3");
    let o = b.run(&[
        "run",
        "--rm",
        "bb:1",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 7",
    ]);
    assert_eq!(o.status.code(), Some(7));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "out\n");
    assert!(String::from_utf8_lossy(&o.stderr).contains("err\n"));
    let o = b.run(&["run", "--rm", "bb:1", "/nosuch"]);
    assert_eq!(o.status.code(), Some(127));
    // --rm leaves nothing
    assert_eq!(b.ok(&["ps", "-aq"]).lines().count(), 1, "only flaky");
    // an always-restarting container stops for good on stop
    b.ok(&[
        "run",
        "-d",
        "--name",
        "loop",
        "--restart",
        "always",
        "bb:1",
        "sh",
        "-c",
        "sleep 0.2",
    ]);
    eventually("a restart", || {
        b.ok(&["inspect", "-f", "{{.RestartCount}}", "loop"]).trim() != "0"
    });
    b.ok(&["stop", "-t", "1", "loop"]);
    let st = status(&b, "loop");
    assert!(st.starts_with("exited"), "{st}");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        status(&b, "loop").starts_with("exited"),
        "not restarted after stop"
    );
    b.ok(&["rm", "-f", "flaky", "loop"]);
}

fn monitor_pid(b: &Berth, id: &str) -> i32 {
    let s =
        std::fs::read_to_string(b.root().join("containers").join(id).join("state.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&s).unwrap();
    v["MonitorPid"].as_i64().unwrap() as i32
}

#[test]
fn a_killed_monitor_leaves_no_ghost_and_no_process() {
    if !root_or_skip("containers") {
        return;
    }
    let b = berth_with_image();
    let id = b
        .ok(&["run", "-d", "bb:1", "sleep", "1000"])
        .trim()
        .to_owned();
    let pid: i32 = b
        .ok(&["inspect", "-f", "{{.State.Pid}}", &id])
        .trim()
        .parse()
        .unwrap();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    let mon = monitor_pid(&b, &id);
    assert!(mon > 0);
    Command::new("kill")
        .args(["-9", &mon.to_string()])
        .status()
        .unwrap();
    eventually("the container process to die", || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.contains(") Z "))
            .unwrap_or(true)
    });
    let st = status(&b, &id);
    assert!(st.starts_with("exited"), "{st}");
    assert!(b.ok(&["ps", "-q"]).trim().is_empty());
    b.ok(&["rm", &id]);
    assert!(
        !b.root().join("oci").join(&id).exists(),
        "runtime state cleaned"
    );
}

struct Daemon {
    child: Child,
    sock: std::path::PathBuf,
}

impl Daemon {
    fn start(b: &Berth) -> Daemon {
        let sock = b.dir.path().join("docker.sock");
        let child = b
            .cmd(&["daemon", "-H", &format!("unix://{}", sock.display())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        eventually("the daemon's socket", || {
            std::os::unix::net::UnixStream::connect(&sock).is_ok()
        });
        Daemon { child, sock }
    }

    fn docker(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.sock.display()))
            .env("DOCKER_CONFIG", self.sock.parent().unwrap())
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            o.status.success(),
            "docker {args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn have_docker() -> bool {
    Command::new("docker")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn the_docker_cli_drives_berth_daemon() {
    if !root_or_skip("berth daemon") {
        return;
    }
    if !have_docker() {
        eprintln!("skipped: the docker CLI is not installed");
        return;
    }
    let b = berth_with_image();
    let d = Daemon::start(&b);
    let v = d.ok(&["version", "--format", "{{.Server.APIVersion}}"]);
    assert_eq!(v.trim(), berth_docker_api::API_VERSION);
    assert_eq!(d.ok(&["run", "--rm", "bb:1", "echo", "hi"]), "hi\n");
    let o = d.docker(&["run", "--rm", "bb:1", "sh", "-c", "echo e >&2; exit 7"]);
    assert_eq!(o.status.code(), Some(7));
    assert!(String::from_utf8_lossy(&o.stderr).contains("e\n"));
    let o = d.docker(&["run", "--rm", "bb:1", "/nosuch"]);
    assert_eq!(
        o.status.code(),
        Some(127),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let id = d
        .ok(&[
            "run",
            "-d",
            "--name",
            "web",
            "-l",
            "app=demo",
            "bb:1",
            "sh",
            "-c",
            "trap 'exit 0' TERM; while true; do echo tick; sleep 0.1; done",
        ])
        .trim()
        .to_owned();
    // made through the daemon, seen by the CLI, and the reverse
    assert!(b.ok(&["ps"]).contains("web"));
    b.ok(&["run", "-d", "--name", "cli-made", "bb:1", "sleep", "100"]);
    let names = d.ok(&["ps", "--format", "{{.Names}}"]);
    assert!(
        names.contains("web") && names.contains("cli-made"),
        "{names}"
    );
    assert_eq!(
        d.ok(&["ps", "-q", "--filter", "label=app=demo"]).trim(),
        &id[..12]
    );
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.Config.Tty}} {{.Name}}",
            "web"
        ])
        .trim(),
        "running false /web"
    );
    eventually("logs", || d.ok(&["logs", "web"]).lines().count() >= 3);
    assert!(d.ok(&["top", "web"]).contains("sleep") || d.ok(&["top", "web"]).contains("sh -c"));
    let o = d.docker(&["inspect", "nosuch"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("No such object: nosuch"));
    let o = d.docker(&["rm", "web"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot remove a running container"));

    // kill -9 the daemon: containers, logs and exit codes survive
    let mut d = d;
    let _ = d.child.kill();
    let _ = d.child.wait();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        b.ok(&["ps"]).contains("web"),
        "still running without a daemon"
    );
    let d2 = Daemon::start(&b);
    drop(d);
    assert!(d2.ok(&["ps"]).contains("web"));
    d2.ok(&["stop", "web"]);
    assert_eq!(
        d2.ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "web"
        ])
        .trim(),
        "exited 0"
    );
    assert!(d2.ok(&["logs", "--tail", "1", "web"]).contains("tick"));
    d2.ok(&["rm", "-f", "web", "cli-made"]);
    assert!(d2.ok(&["ps", "-aq"]).trim().is_empty());
    assert!(d2.ok(&["images"]).contains("bb"));
    // docker's error for what is not built yet
    let o = d2.docker(&["network", "create", "n1"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("not supported yet"));

    // docker-py
    let py = r#"
import docker, sys
c = docker.DockerClient(base_url=sys.argv[1])
assert c.ping()
assert c.containers.run('bb:1', ['echo', 'from-py'], remove=True) == b'from-py\n'
ct = c.containers.run('bb:1', ['sh', '-c', 'echo hello; sleep 30'], detach=True, name='pyweb')
import time
for _ in range(100):
    if ct.logs() == b'hello\n':
        break
    time.sleep(0.05)
assert ct.logs() == b'hello\n', ct.logs()
assert [x.name for x in c.containers.list()] == ['pyweb']
ct.stop(timeout=1)
ct.reload()
assert ct.status == 'exited', ct.status
ct.remove()
assert len(c.images.list()) == 1
print('ok')
"#;
    let o = Command::new("python3")
        .args(["-c", py, &format!("unix://{}", d2.sock.display())])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    if err.contains("No module named 'docker'") {
        eprintln!("skipped docker-py: the Python docker package is not installed");
        return;
    }
    assert!(o.status.success(), "{err}");
}
