//! Container management through berth's own CLI, with no daemon: detached
//! containers, ps, logs, stop, rm, names, restart policies, and a monitor
//! killed with SIGKILL leaving no ghost "running" container. Then the
//! Docker API: `berth daemon` driven by the real `docker` CLI and docker-py
//! over the same root, surviving a `kill -9` of the daemon.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_testutil::{
    Berth, Daemon, busybox_tar, have_docker, have_docker_py, http_get, root_or_skip,
};

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
            .contains("Invalid filter 'colour'")
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
    v["monitor_pid"].as_i64().unwrap() as i32
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

/// The log records a container's monitor wrote, as (stream, log) pairs.
fn log_records(b: &Berth, id: &str, file: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(b.root().join("containers").join(id).join(file))
        .unwrap_or_default();
    text.lines()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("bad record {l:?}: {e}"));
            let t = v["time"].as_str().unwrap();
            assert!(
                t.len() == 30 && t.ends_with('Z') && t.as_bytes()[19] == b'.',
                "RFC 3339 with nanoseconds: {t}"
            );
            (
                v["stream"].as_str().unwrap().to_owned(),
                v["log"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_running_container_is_held_by_the_small_shim() {
    if !root_or_skip("containers") {
        return;
    }
    let b = berth_with_image();
    // awkward output: quotes, a backslash, control bytes, a byte that is
    // not UTF-8, a valid two-byte character, a line longer than docker's
    // 16 KiB split, stderr, and a last line without a newline
    let script = r#"printf 'q"b\\s\t\001\377x\303\251\n'; echo e >&2;
        head -c 20000 /dev/zero | tr '\0' a; echo;
        while [ ! -e /tmp/go ]; do sleep 0.05; done; printf tail; exit 3"#;
    let id = b
        .ok(&["run", "-d", "bb:1", "sh", "-c", script])
        .trim()
        .to_owned();
    eventually("the output", || {
        log_records(&b, &id, "container.log").len() >= 4
    });
    // the monitor became berth-shim: the same process, a few pages
    let mon = monitor_pid(&b, &id);
    let exe = std::fs::read_link(format!("/proc/{mon}/exe")).unwrap();
    assert_eq!(exe, b.root().join("berth-shim"));
    let rollup = std::fs::read_to_string(format!("/proc/{mon}/smaps_rollup")).unwrap();
    let rss_kb: u64 = rollup
        .lines()
        .find_map(|l| l.strip_prefix("Rss:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    assert!(
        rss_kb < 1024,
        "the monitor of a running container uses {rss_kb} kB"
    );
    // a waiter connected to the shim learns the code from berth, after
    // the shim hands the exit back
    let waiter = b
        .cmd(&["wait", &id])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    b.ok(&["exec", &id, "touch", "/tmp/go"]);
    let out = waiter.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "3");
    assert_eq!(status(&b, &id), "exited 3");
    let recs = log_records(&b, &id, "container.log");
    let stdout: Vec<&str> = recs
        .iter()
        .filter(|(s, _)| s == "stdout")
        .map(|(_, l)| l.as_str())
        .collect();
    let long = "a".repeat(20000);
    assert_eq!(
        stdout,
        [
            String::from_utf8_lossy(b"q\"b\\s\t\x01\xffx\xc3\xa9\n").as_ref(),
            &long[..16384],
            &format!("{}\n", &long[16384..]),
            "tail",
        ],
    );
    assert!(recs.contains(&("stderr".into(), "e\n".into())));
    assert!(b.ok(&["logs", &id]).ends_with(&format!("{long}\ntail")));
    eventually("the monitor to end with the container", || {
        !Path::new(&format!("/proc/{mon}")).exists()
    });

    // rotation: two files of at most 1 KiB, the newest lines kept
    let id = b
        .ok(&[
            "run",
            "-d",
            "--log-opt",
            "max-size=1k",
            "--log-opt",
            "max-file=2",
            "bb:1",
            "sh",
            "-c",
            "i=0; while [ $i -lt 100 ]; do echo line $i; i=$((i+1)); done",
        ])
        .trim()
        .to_owned();
    eventually("the exit", || status(&b, &id) == "exited 0");
    let dir = b.root().join("containers").join(&id);
    for f in ["container.log", "container.log.1"] {
        let len = std::fs::metadata(dir.join(f)).unwrap().len();
        assert!(len > 0 && len <= 1024, "{f}: {len} bytes");
    }
    assert!(!dir.join("container.log.2").exists());
    let last = log_records(&b, &id, "container.log");
    assert_eq!(last.last().unwrap().1, "line 99\n");
    let older = log_records(&b, &id, "container.log.1");
    let n = |l: &str| l.trim().trim_start_matches("line ").parse::<u32>().unwrap();
    assert_eq!(
        n(&older.last().unwrap().1) + 1,
        n(&last[0].1),
        "no line lost between files"
    );
}

#[test]
fn the_docker_cli_drives_berth_daemon() {
    if !root_or_skip("berth daemon") {
        return;
    }
    if !have_docker() {
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
    d.kill();
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
    d2.ok(&["network", "create", "n1"]);
    let o = d2.docker(&["network", "disconnect", "n1", "cli-made"]);
    assert!(!o.status.success());
    d2.ok(&["network", "rm", "n1"]);

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
    if !have_docker_py() {
        return;
    }
    assert!(o.status.success(), "{err}");
}

/// An image with content under a declared `VOLUME /data` (mode 0750).
fn berth_with_volume_image() -> Berth {
    let b = berth_with_image();
    let rfs = b.dir.path().join("vol-rootfs");
    std::fs::create_dir_all(rfs.join("data/sub")).unwrap();
    std::fs::write(rfs.join("data/seed"), "seeded\n").unwrap();
    std::fs::write(rfs.join("data/sub/deep"), "deep\n").unwrap();
    std::os::unix::fs::symlink("/etc/shadow", rfs.join("data/link")).unwrap();
    std::fs::set_permissions(
        rfs.join("data"),
        std::os::unix::fs::PermissionsExt::from_mode(0o750),
    )
    .unwrap();
    let tar = b.dir.path().join("vol.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&rfs)
        .args(["-cf"])
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    // the volume layer on top of busybox: import a flat image of both
    let both = b.dir.path().join("both");
    std::fs::create_dir_all(&both).unwrap();
    for t in [busybox_tar(b.dir.path()), tar] {
        let st = Command::new("tar")
            .arg("-C")
            .arg(&both)
            .arg("-xf")
            .arg(&t)
            .status()
            .unwrap();
        assert!(st.success());
    }
    let flat = b.dir.path().join("flat.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&both)
        .arg("-cf")
        .arg(&flat)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    b.ok(&[
        "import",
        "-c",
        "VOLUME /data",
        flat.to_str().unwrap(),
        "vol:1",
    ]);
    b
}

#[test]
fn volumes_binds_tmpfs_and_exec_without_a_daemon() {
    if !root_or_skip("volumes and exec") {
        return;
    }
    let b = berth_with_volume_image();
    let none = ["--network", "none"];
    // image VOLUME: an anonymous volume, seeded from the image (mode,
    // content, links as links), removed with --rm
    let out = b.ok(&[
        "run", none[0], none[1], "--rm", "vol:1", "sh", "-c",
        "stat -c '%a' /data; cat /data/seed /data/sub/deep; readlink /data/link; grep ' /data ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1",
    ]);
    assert_eq!(out, "750\nseeded\ndeep\n/etc/shadow\nrw\n", "{out}");
    assert!(
        b.ok(&["volume", "ls", "-q"]).trim().is_empty(),
        "--rm removed it"
    );
    // a named volume keeps data between containers
    b.ok(&[
        "run",
        none[0],
        none[1],
        "--rm",
        "-v",
        "keep:/data",
        "vol:1",
        "sh",
        "-c",
        "echo mine > /data/new",
    ]);
    let out = b.ok(&[
        "run",
        none[0],
        none[1],
        "--rm",
        "-v",
        "keep:/data:ro",
        "vol:1",
        "sh",
        "-c",
        "cat /data/new /data/seed; touch /data/x 2>/dev/null || echo read-only",
    ]);
    assert_eq!(out, "mine\nseeded\nread-only\n");
    assert_eq!(b.ok(&["volume", "ls", "-q"]).trim(), "keep");
    let insp = b.ok(&["volume", "inspect", "-f", "{{.Driver}} {{.Name}}", "keep"]);
    assert_eq!(insp.trim(), "local keep");
    // binds (read-only refused writes), tmpfs, --mount
    let host = b.dir.path().join("hostdir");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("f"), "from-host\n").unwrap();
    let bind_ro = format!("{}:/h:ro", host.display());
    let bind_rw = format!("type=bind,source={},target=/w", host.display());
    let out = b.ok(&[
        "run", none[0], none[1], "--rm", "-v", &bind_ro, "--mount", &bind_rw, "--tmpfs", "/scratch:size=1m",
        "vol:1", "sh", "-c",
        "cat /h/f; echo x > /h/g 2>/dev/null || echo ro; echo y > /w/g; grep ' /scratch ' /proc/mounts | grep -c 'size=1024k'",
    ]);
    assert_eq!(out, "from-host\nro\n1\n", "{out}");
    assert_eq!(std::fs::read_to_string(host.join("g")).unwrap(), "y\n");
    // bad mounts are refused before anything is made
    let err = b.fails(&["run", "--rm", "-v", "rel/dir:/x", "vol:1", "true"]);
    assert!(
        err.contains("invalid characters for a local volume name"),
        "{err}"
    );
    let err = b.fails(&[
        "run",
        "--rm",
        "--mount",
        "type=bind,source=/definitely/absent,target=/x",
        "vol:1",
        "true",
    ]);
    assert!(err.contains("bind source path does not exist"), "{err}");
    let err = b.fails(&[
        "run", "--rm", "-v", "aa:/same", "-v", "bb:/same", "vol:1", "true",
    ]);
    assert!(err.contains("Duplicate mount point"), "{err}");
    assert!(b.ok(&["ps", "-aq"]).trim().is_empty(), "nothing half-made");
    assert_eq!(b.ok(&["volume", "ls", "-q"]).trim(), "keep");
    // a volume in use is not removed; rm -v takes the anonymous ones
    b.ok(&[
        "create", none[0], none[1], "--name", "holder", "-v", "keep:/k", "vol:1", "true",
    ]);
    let err = b.fails(&["volume", "rm", "keep"]);
    assert!(err.contains("volume is in use"), "{err}");
    assert_eq!(
        b.ok(&["volume", "ls", "-q"]).lines().count(),
        2,
        "keep + the anonymous /data"
    );
    b.ok(&["rm", "-v", "holder"]);
    assert_eq!(b.ok(&["volume", "ls", "-q"]).trim(), "keep");
    b.ok(&["volume", "rm", "keep"]);
    assert!(
        b.fails(&["volume", "inspect", "keep"])
            .contains("no such volume")
    );

    // exec: exit codes, stdin, user, directory, environment, errors
    b.ok(&[
        "run",
        "-d",
        none[0],
        none[1],
        "--name",
        "box",
        "vol:1",
        "sh",
        "-c",
        "trap 'exit 0' TERM; while true; do sleep 0.1; done",
    ]);
    let o = b.run(&["exec", "box", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&o.stderr), "err\n");
    let mut child = b
        .cmd(&["exec", "-i", "box", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"piped in\n").unwrap();
    drop(child.stdin.take());
    let o = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "piped in\n");
    let out = b.ok(&[
        "exec",
        "-u",
        "1000:1000",
        "-w",
        "/data/sub",
        "-e",
        "X=1",
        "box",
        "sh",
        "-c",
        "id -u; id -g; pwd; echo $X",
    ]);
    assert_eq!(out, "1000\n1000\n/data/sub\n1\n");
    // an exec that cannot start exits 126, as `docker exec` against dockerd
    let o = b.run(&["exec", "box", "/no/such"]);
    assert_eq!(o.status.code(), Some(126));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("/no/such") && err.contains("no such file or directory"),
        "{err}"
    );
    // exec --privileged: that process gets the capabilities of a
    // privileged container, the container's own stay
    let cap_eff = |args: &[&str]| {
        b.ok(args)
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .unwrap()
            .trim()
            .to_owned()
    };
    let plain = cap_eff(&["exec", "box", "cat", "/proc/self/status"]);
    let privileged = cap_eff(&["exec", "--privileged", "box", "cat", "/proc/self/status"]);
    let full = cap_eff(&[
        "run",
        "--rm",
        "--privileged",
        "--network",
        "none",
        "vol:1",
        "cat",
        "/proc/self/status",
    ]);
    assert_ne!(plain, privileged);
    assert_eq!(privileged, full);
    assert_eq!(plain, cap_eff(&["exec", "box", "cat", "/proc/self/status"]));
    b.ok(&["exec", "-d", "box", "sh", "-c", "echo detached > /data/d"]);
    eventually("detached exec", || {
        b.run(&["exec", "box", "cat", "/data/d"]).status.success()
    });
    // stats from the cgroup
    let st = b.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.PIDs}}",
        "box",
    ]);
    assert!(st.starts_with("box ") && st.trim() != "box 0", "{st}");
    // the exec's processes die with the container; exec into a stopped one fails
    b.ok(&["stop", "box"]);
    let err = b.fails(&["exec", "box", "true"]);
    assert!(err.contains("is not running"), "{err}");
    b.ok(&["rm", "-v", "box"]);
    assert!(b.ok(&["volume", "ls", "-q"]).trim().is_empty());
    // every step left an event
    let until = berth_testutil::until_now();
    let ev = b.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--filter",
        "container=box",
        "--format",
        "{{.Action}}",
    ]);
    let actions: Vec<&str> = ev.lines().collect();
    for want in [
        "create",
        "start",
        "exec_create: /no/such",
        "exec_die",
        "kill",
        "die",
        "stop",
        "destroy",
    ] {
        assert!(actions.contains(&want), "{want} missing from {actions:?}");
    }
    let ev = b.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--filter",
        "type=volume",
        "--filter",
        "event=destroy",
        "--format",
        "{{.ID}}",
    ]);
    assert!(ev.lines().any(|l| l == "keep"), "{ev}");
    assert!(
        std::fs::read_dir(b.root().join("execs"))
            .map(|d| d.count())
            .unwrap_or(0)
            == 0,
        "exec index cleaned with the container"
    );
}

#[test]
fn the_docker_cli_runs_exec_and_volumes_against_berth_daemon() {
    if !root_or_skip("berth daemon") {
        return;
    }
    if !have_docker() {
        return;
    }
    let b = berth_with_volume_image();
    let d = Daemon::start(&b);
    let host = b.dir.path().join("hostdir");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("f"), "from-host\n").unwrap();
    let bind = format!("{}:/h:ro", host.display());
    d.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "web",
        "-v",
        "dvol:/data",
        "-v",
        &bind,
        "--tmpfs",
        "/run",
        "vol:1",
        "sh",
        "-c",
        "trap 'exit 0' TERM; while true; do sleep 0.1; done",
    ]);
    assert_eq!(
        d.ok(&["exec", "web", "cat", "/h/f", "/data/seed"]),
        "from-host\nseeded\n"
    );
    let o = d.docker(&["exec", "web", "sh", "-c", "echo e >&2; exit 4"]);
    assert_eq!(o.status.code(), Some(4));
    assert_eq!(String::from_utf8_lossy(&o.stderr), "e\n");
    let o = d.docker(&["exec", "web", "nosuch"]);
    assert_eq!(
        o.status.code(),
        Some(126),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("executable file not found"));
    let mut child = Command::new("docker")
        .args(["exec", "-i", "web", "cat"])
        .envs(d.env())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), b"via docker\n").unwrap();
    drop(child.stdin.take());
    assert_eq!(
        String::from_utf8_lossy(&child.wait_with_output().unwrap().stdout),
        "via docker\n"
    );
    // docker exec -it through a pty: terminal size and exit code
    let o = Command::new("script")
        .args([
            "-eqc",
            "stty rows 33 cols 111; docker exec -it web sh -c 'sleep 1; stty size; exit 5'",
            "/dev/null",
        ])
        .envs(d.env())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(5));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("33 111"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    d.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "limited",
        "-m",
        "64m",
        "vol:1",
        "sh",
        "-c",
        "while true; do sleep 0.1; done",
    ]);
    let st = d.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.MemUsage}}",
        "limited",
    ]);
    assert!(
        st.starts_with("limited ") && st.trim_end().ends_with("/ 64MiB"),
        "{st}"
    );
    d.ok(&["rm", "-f", "limited"]);
    // docker run -it through a pty
    let o = Command::new("script")
        .args([
            "-eqc",
            // (the docker CLI 20.10 sets the size by a resize after the
            // start, as against dockerd: the shell waits for it)
            "stty rows 21 cols 77; docker run --rm -it --network none vol:1 sh -c 'sleep 1; stty size; tty; exit 3'",
            "/dev/null",
        ])
        .envs(d.env())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(3), "{out}");
    assert!(out.contains("21 77") && out.contains("/dev/pts/0"), "{out}");
    let mounts = d.ok(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{.Type}}:{{.Destination}} {{end}}",
        "web",
    ]);
    let mut mounts: Vec<&str> = mounts.split_whitespace().collect();
    mounts.sort();
    // a --tmpfs mount is only in HostConfig.Tmpfs (as dockerd)
    assert_eq!(mounts, ["bind:/h", "volume:/data"]);
    // HostConfig's namespace modes and process options, as the CLI sends them
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--volumes-from",
        "web:ro",
        "--pid",
        "container:web",
        "--shm-size",
        "2m",
        "--group-add",
        "777",
        "--oom-score-adj",
        "300",
        "--device-cgroup-rule",
        "c 10:237 r",
        "vol:1",
        "sh",
        "-c",
        "cat /data/seed; ps -o args | grep -c 'sleep 0.1' >/dev/null && echo sees-web; \
         grep -o 'size=2048k' /proc/mounts; grep ^Groups: /proc/self/status; \
         cat /proc/self/oom_score_adj; touch /data/x 2>/dev/null || echo ro",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..3], ["seeded", "sees-web", "size=2048k"], "{out}");
    assert!(lines[3].split_whitespace().any(|g| g == "777"), "{out}");
    assert_eq!(lines[4..], ["300", "ro"], "{out}");
    let o = d.docker(&["run", "--rm", "--runtime", "kata", "vol:1", "true"]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not supported yet: --runtime kata"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // links: web is on no network: refused as dockerd refuses it
    let o = d.docker(&["run", "--rm", "--link", "web:w", "vol:1", "true"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("does not belong to the default network"),
        "{err}"
    );
    let o = d.docker(&["run", "--rm", "--link", "nosuch:w", "vol:1", "true"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("could not get container for nosuch"), "{err}");
    // on the default bridge: /etc/hosts and docker's environment
    d.ok(&[
        "run",
        "-d",
        "--name",
        "lnk",
        "--expose",
        "80",
        "-e",
        "SECRET=s1",
        "vol:1",
        "sh",
        "-c",
        "trap 'exit 0' TERM; while true; do sleep 0.1; done",
    ]);
    let out = d.ok(&["run", "--rm", "--link", "lnk:db", "vol:1", "sh", "-c",
        "grep -w db /etc/hosts | grep -w lnk | wc -l; echo $DB_NAME $DB_PORT_80_TCP_PORT $DB_ENV_SECRET; ping -c1 -W2 db >/dev/null && echo up"]);
    assert!(out.starts_with("1\n"), "{out}");
    assert!(out.contains("/db 80 s1"), "{out}");
    assert!(out.ends_with("up\n"), "{out}");
    let links = d.ok(&["inspect", "-f", "{{json .HostConfig.Links}}", "lnk"]);
    assert_eq!(links.trim(), "null");
    d.ok(&["rm", "-f", "lnk"]);
    assert_eq!(
        d.ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.IpcMode}} {{.HostConfig.ShmSize}}",
            "web"
        ])
        .trim(),
        "private 67108864"
    );
    assert!(d.ok(&["volume", "ls", "-q"]).contains("dvol"));
    let o = d.docker(&["volume", "rm", "dvol"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("volume is in use"));
    d.ok(&["rm", "-f", "-v", "web"]);
    d.ok(&["volume", "rm", "dvol"]);
    let until = berth_testutil::until_now();
    let ev = d.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--filter",
        "container=web",
        "--format",
        "{{.Action}} {{.Actor.Attributes.name}}",
    ]);
    for want in ["create web", "start web", "die web", "destroy web"] {
        assert!(ev.lines().any(|l| l == want), "{want} missing from {ev}");
    }
    // the local driver's options, by `volume create --opt` and by
    // `--mount …,volume-opt=`
    d.ok(&[
        "volume",
        "create",
        "--opt",
        "type=tmpfs",
        "--opt",
        "o=size=2m",
        "dtv",
    ]);
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "dtv:/t",
        "vol:1",
        "grep",
        " /t ",
        "/proc/mounts",
    ]);
    assert!(out.contains("tmpfs") && out.contains("size=2048k"), "{out}");
    let out = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--mount",
        "type=volume,src=dmv,dst=/m,volume-opt=type=tmpfs,volume-opt=o=size=3m",
        "vol:1",
        "grep",
        " /m ",
        "/proc/mounts",
    ]);
    assert!(out.contains("size=3072k"), "{out}");
    d.ok(&["volume", "rm", "dtv", "dmv"]);
    d.ok(&["volume", "create", "--label", "team=a", "labelled"]);
    d.ok(&["volume", "create", "--label", "team=b", "other"]);
    assert_eq!(
        d.ok(&["volume", "ls", "-q", "-f", "label=team=a"]).trim(),
        "labelled"
    );
    // prune with a label filter takes only the volumes it names; named
    // volumes are pruned with --all (CLI >= 23, API >= 1.42) or by
    // default at API 1.41 (the docker CLI 20.10 speaks 1.41)
    let all: &[&str] = if d.ok(&["volume", "prune", "--help"]).contains("--all") {
        &["-af"]
    } else {
        &["-f"]
    };
    let prune = |more: &[&str]| {
        let mut args = vec!["volume", "prune"];
        args.extend(all);
        args.extend(more);
        d.ok(&args)
    };
    let pruned = prune(&["--filter", "label=team=b"]);
    assert!(
        pruned.contains("other") && !pruned.contains("labelled"),
        "{pruned}"
    );
    let left = d.ok(&["volume", "ls", "-q"]);
    assert!(
        left.contains("labelled") && !left.contains("other"),
        "{left}"
    );
    assert!(prune(&[]).contains("labelled"));
    assert!(d.ok(&["volume", "ls", "-q"]).trim().is_empty());

    // docker-py: exec_run with and without demux, volumes
    let py = r#"
import docker, sys
c = docker.DockerClient(base_url=sys.argv[1])
ct = c.containers.run('vol:1', ['sh', '-c', 'while true; do sleep 0.1; done'], detach=True, name='pyx', network_mode='none')
r = ct.exec_run(['sh', '-c', 'echo out; echo err >&2; exit 3'])
assert r.exit_code == 3 and r.output == b'out\nerr\n', r
r = ct.exec_run(['sh', '-c', 'echo out; echo err >&2'], demux=True)
assert r.exit_code == 0 and r.output == (b'out\n', b'err\n'), r
v = c.volumes.create('pyvol', labels={'k': 'v'})
assert v.attrs['Labels'] == {'k': 'v'} and v.attrs['Driver'] == 'local'
v.remove()
s = ct.stats(stream=False)
assert s['name'] == '/pyx' and s['pids_stats']['current'] >= 1 and s['cpu_stats']['online_cpus'] >= 1, s
# streaming: one sample a second, each with the previous one as precpu
it = ct.stats(stream=True, decode=True)
a = next(it); b = next(it)
assert b['read'] > a['read'], (a['read'], b['read'])
assert b['precpu_stats']['cpu_usage']['total_usage'] == a['cpu_stats']['cpu_usage']['total_usage'], (a, b)
assert b['cpu_stats']['cpu_usage']['total_usage'] >= a['cpu_stats']['cpu_usage']['total_usage']
ct.remove(force=True, v=True)
print('ok')
"#;
    let o = Command::new("python3")
        .args(["-c", py, &format!("unix://{}", d.sock.display())])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    if !have_docker_py() {
        return;
    }
    assert!(o.status.success(), "{err}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An HTTP GET to 127.0.0.1:port (loopback only), retried briefly.
fn host_links() -> String {
    String::from_utf8_lossy(
        &Command::new("ip")
            .args(["-o", "link"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned()
}

#[test]
fn bridge_networks_ports_and_dns_without_a_daemon() {
    if !root_or_skip("bridge networks") {
        return;
    }
    let b = berth_with_volume_image();
    let net: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(b.root().join("net.json")).unwrap()).unwrap();
    let bridge = net["default_bridge"].as_str().unwrap().to_owned();
    let table = net["table"].as_str().unwrap().to_owned();
    // the default bridge: an address, a published port on loopback
    let port = free_port();
    let publish = format!("{port}:80");
    b.ok(&[
        "run", "-d", "--name", "web", "-p", &publish, "vol:1", "busybox", "httpd", "-f", "-p",
        "80", "-h", "/data",
    ]);
    let ip = b.ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "web"]);
    assert!(ip.starts_with("198.18."), "{ip}");
    assert!(http_get(port, "/seed").ends_with("seeded\n"));
    assert!(b.ok(&["ps"]).contains(&format!("0.0.0.0:{port}->80/tcp")));
    assert_eq!(
        b.ok(&["port", "web", "80"]).trim(),
        format!("0.0.0.0:{port}")
    );
    // --add-host (host-gateway is the bridge's address), --dns, --ulimit, --sysctl
    let out = b.ok(&[
        "run", "--rm", "--add-host", "db.test:198.18.7.7", "--add-host", "gw.test:host-gateway",
        "--dns", "198.18.0.53", "--dns-search", "example.test", "--ulimit", "nofile=1024:2048",
        "--sysctl", "net.ipv4.ip_unprivileged_port_start=99", "vol:1", "sh", "-c",
        "grep -E 'db.test|gw.test' /etc/hosts; grep -E '^(nameserver|search)' /etc/resolv.conf; ulimit -n; ulimit -Hn; cat /proc/sys/net/ipv4/ip_unprivileged_port_start",
    ]);
    let gw = net["default_subnet"]
        .as_str()
        .unwrap()
        .replace(".0/24", ".1");
    assert_eq!(
        out,
        format!(
            "198.18.7.7\tdb.test\n{gw}\tgw.test\nnameserver 198.18.0.53\nsearch example.test\n1024\n2048\n99\n"
        )
    );
    let err = b.fails(&["run", "--rm", "--sysctl", "kernel.panic=1", "vol:1", "true"]);
    assert!(err.contains("namespaced"), "{err}");
    let err = b.fails(&["run", "--rm", "--ulimit", "nofile=5:2", "vol:1", "true"]);
    assert!(err.contains("soft limit"), "{err}");
    // --network container:web shares web's namespace (its address, its ports)
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "container:web",
        "vol:1",
        "sh",
        "-c",
        "ip -4 -o addr show eth0 | awk '{print $4}'; busybox wget -qO- http://127.0.0.1:80/seed",
    ]);
    assert_eq!(out, format!("{}/24\nseeded\n", ip.trim()));
    // seccomp profiles: unconfined, or docker's JSON format
    let prof = b.dir.path().join("prof.json");
    std::fs::write(&prof, r#"{"defaultAction":"SCMP_ACT_ALLOW","archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86"]},{"architecture":"SCMP_ARCH_AARCH64","subArchitectures":[]}],"syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#).unwrap();
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--security-opt",
        &format!("seccomp={}", prof.display()),
        "vol:1",
        "sh",
        "-c",
        "mkdir /x 2>/dev/null; echo $?",
    ]);
    assert_eq!(out.trim(), "1", "the profile's rule applies");
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--security-opt",
        "seccomp=unconfined",
        "vol:1",
        "grep",
        "^Seccomp:",
        "/proc/self/status",
    ]);
    assert_eq!(out.trim(), "Seccomp:\t0");
    // the same host port twice is refused, and the loser leaves nothing
    let o = b.run(&[
        "run", "-d", "--name", "web2", "-p", &publish, "vol:1", "true",
    ]);
    assert_eq!(o.status.code(), Some(125));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("port is already allocated"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    b.ok(&["rm", "-f", "web2"]);
    // a user-defined network: names, aliases, fixed addresses
    let appnet_id = b.ok(&["network", "create", "appnet"]).trim().to_owned();
    let subnet = b.ok(&[
        "network",
        "inspect",
        "-f",
        "{{json .IPAM.Config}}",
        "appnet",
    ]);
    assert!(subnet.contains("198.19."), "{subnet}");
    b.ok(&[
        "run",
        "-d",
        "--name",
        "db",
        "--network",
        "appnet",
        "--network-alias",
        "database",
        "vol:1",
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/data",
    ]);
    let out = b.ok(&["run", "--rm", "--network", "appnet", "vol:1", "sh", "-c",
        "for i in 1 2 3 4 5 6 7 8 9 10; do busybox wget -qO- http://database/seed && break; sleep 0.3; done; busybox wget -qO- http://db/seed"]);
    assert_eq!(out, "seeded\nseeded\n");
    // other networks cannot reach it
    let db_ip = b.ok(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.Networks.appnet.IPAddress}}",
        "db",
    ]);
    let o = b.run(&[
        "run",
        "--rm",
        "vol:1",
        "busybox",
        "wget",
        "-T",
        "2",
        "-qO-",
        &format!("http://{}/seed", db_ip.trim()),
    ]);
    assert!(
        !o.status.success(),
        "the default bridge reached another network"
    );
    let err = b.fails(&["network", "rm", "appnet"]);
    assert!(err.contains("has active endpoints"), "{err}");
    // connected before start: both networks at every start (eth0, eth1)
    b.ok(&[
        "create",
        "--name",
        "multi",
        "vol:1",
        "sh",
        "-c",
        "ip -4 -o addr; busybox wget -qO- http://db/seed",
    ]);
    b.ok(&["network", "connect", "appnet", "multi"]);
    b.ok(&["start", "multi"]);
    eventually("multi to finish", || {
        status(&b, "multi").starts_with("exited")
    });
    let out = b.ok(&["logs", "multi"]);
    assert!(
        out.contains("eth0") && out.contains("eth1") && out.contains("seeded"),
        "{out}"
    );
    // connecting again a container that does not run keeps what it has
    // (docker's rule; a running one is refused, see docker_networks)
    b.ok(&["network", "connect", "appnet", "multi"]);
    b.ok(&["start", "multi"]);
    eventually("multi to finish again", || {
        status(&b, "multi").starts_with("exited")
    });
    let out = b.ok(&["logs", "multi"]);
    let eth1 = out
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("eth1"))
        .count();
    assert_eq!(eth1, 2, "one eth1 a run: {out}");
    assert!(!out.contains("eth2"), "connected twice: {out}");
    b.ok(&["rm", "multi"]);
    // names on every user network a container is on, through one resolver
    b.ok(&["network", "create", "appnet2"]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "far",
        "--network",
        "appnet2",
        "vol:1",
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/data",
    ]);
    b.ok(&["create", "--name", "both", "--network", "appnet", "vol:1", "sh", "-c",
        "for i in 1 2 3 4 5 6 7 8 9 10; do busybox wget -qO- http://far/seed && break; sleep 0.3; done; busybox wget -qO- http://db/seed"]);
    b.ok(&["network", "connect", "appnet2", "both"]);
    b.ok(&["start", "both"]);
    eventually("both to finish", || {
        status(&b, "both").starts_with("exited")
    });
    assert_eq!(b.ok(&["logs", "both"]), "seeded\nseeded\n");
    b.ok(&["rm", "-f", "both", "far"]);
    // prune removes unused user networks only
    b.ok(&["network", "create", "unused"]);
    let pruned = b.ok(&["network", "prune", "-f"]);
    assert!(
        pruned.contains("unused") && pruned.contains("appnet2"),
        "{pruned}"
    );
    assert!(
        !pruned.contains("appnet\n") && !pruned.contains("bridge"),
        "{pruned}"
    );
    assert!(
        b.fails(&["network", "inspect", "unused"])
            .contains("not found")
    );
    let err = b.fails(&["network", "rm", "bridge"]);
    assert!(err.contains("pre-defined network"), "{err}");
    assert!(
        b.fails(&["run", "--rm", "--network", "nonet", "vol:1", "true"])
            .contains("not found")
    );
    // stopping takes the container off its networks; removing leaves nothing
    b.ok(&["rm", "-f", "web", "db"]);
    // (other tests run at once: look at this root's bridge only)
    let members = String::from_utf8_lossy(
        &Command::new("ip")
            .args(["-o", "link", "show", "master", &bridge])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    assert!(
        members.trim().is_empty(),
        "no veth left on {bridge}: {members}"
    );
    let rules = String::from_utf8_lossy(
        &Command::new("nft")
            .args(["list", "table", "ip", &table])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    assert!(
        !rules.contains(&format!("{port}")),
        "no rule for the port: {rules}"
    );
    b.ok(&["network", "rm", "appnet"]);
    let gone = format!("br-{}:", &appnet_id[..12]);
    assert!(
        !host_links().contains(&gone),
        "the network's bridge is gone"
    );
    assert!(host_links().contains(&bridge), "the default bridge stays");
    drop(b);
    assert!(
        !host_links().contains(&bridge),
        "teardown removed the default bridge"
    );
}

#[test]
fn the_docker_cli_publishes_ports_and_networks_through_berth_daemon() {
    if !root_or_skip("berth daemon") {
        return;
    }
    if !have_docker() {
        return;
    }
    let b = berth_with_volume_image();
    let d = Daemon::start(&b);
    let port = free_port();
    d.ok(&["network", "create", "--subnet", "198.19.240.0/24", "dnet"]);
    assert!(
        d.ok(&["network", "ls", "--format", "{{.Name}}"])
            .lines()
            .any(|l| l == "dnet")
    );
    d.ok(&[
        "run",
        "-d",
        "--name",
        "site",
        "--network",
        "dnet",
        "--ip",
        "198.19.240.50",
        "-p",
        &format!("127.0.0.1:{port}:80"),
        "vol:1",
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/data",
    ]);
    let dnet_ip = |d: &Daemon| {
        d.ok(&[
            "inspect",
            "-f",
            "{{.NetworkSettings.Networks.dnet.IPAddress}}",
            "site",
        ])
        .trim()
        .to_owned()
    };
    assert_eq!(dnet_ip(&d), "198.19.240.50");
    assert_eq!(
        d.ok(&["port", "site"]).trim(),
        format!("80/tcp -> 127.0.0.1:{port}")
    );
    assert!(http_get(port, "/seed").ends_with("seeded\n"));
    let out = d.ok(&["run", "--rm", "--network", "dnet", "vol:1", "sh", "-c",
        "for i in 1 2 3 4 5 6 7 8 9 10; do busybox wget -qO- http://site/seed && break; sleep 0.3; done"]);
    assert_eq!(out, "seeded\n");
    // network connect: a running container gets eth1 at once
    d.ok(&["network", "create", "--subnet", "198.19.241.0/24", "dnet2"]);
    d.ok(&["network", "connect", "--alias", "web2", "dnet2", "site"]);
    let nets = d.ok(&[
        "inspect",
        "-f",
        "{{json .NetworkSettings.Networks}}",
        "site",
    ]);
    assert!(
        nets.contains("dnet2") && nets.contains("198.19.241."),
        "{nets}"
    );
    let out = d.ok(&["run", "--rm", "--network", "dnet2", "vol:1", "sh", "-c",
        "for i in 1 2 3 4 5 6 7 8 9 10; do busybox wget -qO- http://web2/seed && break; sleep 0.3; done"]);
    assert_eq!(out, "seeded\n");
    let o = d.docker(&["network", "rm", "dnet2"]);
    assert!(!o.status.success(), "in use");
    // off the network it was created on: on dnet2 alone, now and after a
    // restart (with its published port), then back
    let nets = |d: &Daemon| {
        d.ok(&[
            "inspect",
            "-f",
            "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
            "site",
        ])
        .split_whitespace()
        .map(str::to_owned)
        .collect::<Vec<_>>()
    };
    d.ok(&["network", "disconnect", "dnet", "site"]);
    assert_eq!(nets(&d), ["dnet2"]);
    let links = d.ok(&["exec", "site", "ls", "/sys/class/net"]);
    assert!(!links.contains("eth0") && links.contains("eth1"), "{links}");
    d.ok(&["restart", "-t", "1", "site"]);
    assert_eq!(nets(&d), ["dnet2"]);
    let hosts = d.ok(&["exec", "site", "cat", "/etc/hosts"]);
    assert!(hosts.contains("198.19.241."), "{hosts}");
    let mut served = false;
    for _ in 0..50 {
        if http_get(port, "/seed").ends_with("seeded\n") {
            served = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(served, "the published port moves to dnet2");
    let o = d.docker(&["network", "disconnect", "dnet", "site"]);
    assert!(!o.status.success(), "not connected any more");
    // reconnecting takes new settings, as docker does (the old address is
    // not remembered)
    d.ok(&[
        "network",
        "connect",
        "--ip",
        "198.19.240.50",
        "--alias",
        "again",
        "dnet",
        "site",
    ]);
    let aliases = d.ok(&[
        "inspect",
        "-f",
        "{{json .NetworkSettings.Networks.dnet.Aliases}}",
        "site",
    ]);
    assert!(aliases.contains("again"), "{aliases}");
    let mut both = nets(&d);
    both.sort();
    assert_eq!(both, ["dnet", "dnet2"]);
    // published ports go to the first network at the next start
    d.ok(&["network", "disconnect", "dnet2", "site"]);
    d.ok(&["restart", "-t", "1", "site"]);
    assert_eq!(dnet_ip(&d), "198.19.240.50");
    d.ok(&["network", "rm", "dnet2"]);
    // kill -9 the daemon: the port mapping stays
    let mut d = d;
    d.kill();
    assert!(
        http_get(port, "/seed").ends_with("seeded\n"),
        "published port survives the daemon"
    );
    let d2 = Daemon::start(&b);
    drop(d);
    assert!(
        d2.ok(&["ps"])
            .contains(&format!("127.0.0.1:{port}->80/tcp"))
    );
    d2.ok(&["rm", "-f", "site"]);
    d2.ok(&["network", "rm", "dnet"]);
    assert!(!d2.ok(&["network", "ls"]).contains("dnet"));
    // docker-py: ports and networks
    let py = r#"
import docker, sys, urllib.request
c = docker.DockerClient(base_url=sys.argv[1])
n = c.networks.create('pynet')
ct = c.containers.run('vol:1', ['busybox', 'httpd', '-f', '-p', '80', '-h', '/data'], detach=True,
                      network='pynet', ports={'80/tcp': ('127.0.0.1', None)}, name='pyweb')
ct.reload()
hp = ct.ports['80/tcp'][0]['HostPort']
assert int(hp) > 0, ct.ports
import time
for _ in range(50):
    try:
        assert urllib.request.urlopen('http://127.0.0.1:%s/seed' % hp, timeout=5).read() == b'seeded\n'
        break
    except OSError:
        time.sleep(0.1)
else:
    raise SystemExit('no answer on the published port')
n.reload()
assert 'pyweb' in [x.name for x in n.containers], n.containers
ct.remove(force=True)
n.remove()
print('ok')
"#;
    let o = Command::new("python3")
        .args(["-c", py, &format!("unix://{}", d2.sock.display())])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    if !have_docker_py() {
        return;
    }
    assert!(o.status.success(), "{err}");
}

/// A raw HTTP request to the daemon's socket; (status, body).
#[test]
fn reliability_logs_restarts_parallel_clients_and_bad_input() {
    if !root_or_skip("berth daemon") {
        return;
    }
    let b = berth_with_image();
    let d = Daemon::start(&b);
    // a container writing fast while the daemon is killed loses no line
    let n = 20000;
    let script = format!("i=0; while [ $i -lt {n} ]; do echo line-$i; i=$((i+1)); done");
    let (st, body) = d.api(
        "POST",
        "/v1.47/containers/create?name=chatty",
        serde_json::json!({"Image": "bb:1", "Cmd": ["sh", "-c", script],
            "HostConfig": {"NetworkMode": "none"}})
        .to_string()
        .as_bytes(),
    );
    assert_eq!(st, 201, "{body}");
    let (st, _) = d.api("POST", "/v1.47/containers/chatty/start", b"");
    assert_eq!(st, 204);
    let mut d = d;
    d.kill();
    eventually("chatty to finish", || status(&b, "chatty") == "exited 0");
    let d2 = Daemon::start(&b);
    drop(d);
    let logs = b.ok(&["logs", "chatty"]);
    let lines: Vec<&str> = logs.lines().collect();
    assert_eq!(lines.len(), n, "every line kept");
    assert!(
        lines
            .iter()
            .enumerate()
            .all(|(i, l)| *l == format!("line-{i}"))
    );
    b.ok(&["rm", "chatty"]);

    // a restart policy works with no daemon at all
    b.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "phoenix",
        "--restart",
        "always",
        "bb:1",
        "sleep",
        "300",
    ]);
    let mut d2 = d2;
    d2.kill();
    let pid: i32 = b
        .ok(&["inspect", "-f", "{{.State.Pid}}", "phoenix"])
        .trim()
        .parse()
        .unwrap();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    eventually("the policy to restart it", || {
        b.ok(&[
            "inspect",
            "-f",
            "{{.RestartCount}} {{.State.Status}}",
            "phoenix",
        ])
        .trim()
            == "1 running"
    });
    let d3 = Daemon::start(&b);
    drop(d2);
    assert_eq!(
        d3.ok(&[
            "inspect",
            "-f",
            "{{.RestartCount}} {{.State.Running}}",
            "phoenix"
        ])
        .trim(),
        "1 true"
    );
    d3.ok(&["rm", "-f", "phoenix"]);

    // after a "reboot" (its monitor gone), a daemon start brings back an
    // always container, and an unless-stopped one a user did not stop
    b.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "boot-always",
        "--restart",
        "always",
        "bb:1",
        "sleep",
        "300",
    ]);
    b.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "boot-stopped",
        "--restart",
        "unless-stopped",
        "bb:1",
        "sleep",
        "300",
    ]);
    b.ok(&["stop", "-t", "1", "boot-stopped"]);
    let always_id = b.ok(&["inspect", "-f", "{{.Id}}", "boot-always"]);
    let mon = monitor_pid(&b, always_id.trim());
    let mut d3 = d3;
    d3.kill();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(mon).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    eventually("the container to be gone", || {
        status(&b, "boot-always").starts_with("exited")
    });
    let d3 = Daemon::start(&b);
    eventually("the policy at daemon start", || {
        status(&b, "boot-always").starts_with("running")
    });
    assert!(
        status(&b, "boot-stopped").starts_with("exited"),
        "stopped by a user: stays stopped"
    );
    b.ok(&["rm", "-f", "boot-always", "boot-stopped"]);
    // berth run and docker run at once on one root: every container made
    // once, names unique, and one name claimed by exactly one of them
    let mut kids = Vec::new();
    for i in 0..6 {
        kids.push(
            b.cmd(&[
                "run",
                "-d",
                "--network",
                "none",
                "--name",
                &format!("cli-{i}"),
                "bb:1",
                "sleep",
                "60",
            ])
            .output(),
        );
    }
    let mut handles = Vec::new();
    for i in 0..6 {
        let sock = d3.sock.clone();
        handles.push(std::thread::spawn(move || {
            let o = Command::new("docker")
                .args([
                    "run",
                    "-d",
                    "--network",
                    "none",
                    "--name",
                    &format!("api-{i}"),
                    "bb:1",
                    "sleep",
                    "60",
                ])
                .env("DOCKER_HOST", format!("unix://{}", sock.display()))
                .env("DOCKER_CONFIG", sock.parent().unwrap())
                .output();
            o.map(|o| o.status.success()).unwrap_or(false)
        }));
    }
    let mut racers = Vec::new();
    for _ in 0..4 {
        let bin = b.bin.clone();
        let root = b.root();
        racers.push(std::thread::spawn(move || {
            Command::new(bin)
                .args([
                    "run",
                    "-d",
                    "--network",
                    "none",
                    "--name",
                    "contested",
                    "bb:1",
                    "sleep",
                    "60",
                ])
                .env("BERTH_ROOT", root)
                .stdin(Stdio::null())
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        }));
    }
    for k in kids {
        assert!(k.unwrap().status.success());
    }
    let docker_ok = have_docker();
    for h in handles {
        let ok = h.join().unwrap();
        assert!(ok || !docker_ok, "docker run through the daemon failed");
    }
    let winners = racers
        .into_iter()
        .map(|h| h.join().unwrap_or(false))
        .filter(|w| *w)
        .count();
    assert_eq!(winners, 1, "one name, one container");
    let names = b.ok(&["ps", "--format", "{{.Names}}"]);
    let mut seen: Vec<&str> = names.lines().collect();
    let total = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), total, "no duplicate names: {names}");
    assert_eq!(total, 6 + if docker_ok { 6 } else { 0 } + 1, "{names}");
    let all = b.ok(&["ps", "-q"]);
    let ids: Vec<&str> = all.lines().collect();
    let mut args = vec!["rm", "-f"];
    args.extend(ids.iter().copied());
    b.ok(&args);

    // bad input: docker's error shape, nothing half-made
    let before = b.ok(&["ps", "-aq"]);
    for (path, body, want) in [
        ("/v1.47/containers/create", &b"{not json"[..], 400),
        ("/v1.47/containers/create", &b"[1,2]"[..], 400),
        (
            "/v1.47/containers/create",
            &br#"{"Image":"no/such:image"}"#[..],
            404,
        ),
        (
            "/v1.47/containers/create?name=bad/name",
            &br#"{"Image":"bb:1"}"#[..],
            400,
        ),
        (
            "/v1.47/containers/create",
            &br#"{"Image":"bb:1","HostConfig":{"Binds":["rel:x"]}}"#[..],
            400,
        ),
        (
            "/v1.47/containers/create",
            &br#"{"Image":"bb:1","HostConfig":{"PortBindings":{"x/tcp":[{}]}}}"#[..],
            400,
        ),
        (
            "/v1.47/containers/create",
            &br#"{"Image":"bb:1","HostConfig":{"NetworkMode":"nonet"}}"#[..],
            404,
        ),
    ] {
        let (st, resp) = d3.api("POST", path, body);
        assert_eq!(st, want, "{path} {}: {resp}", String::from_utf8_lossy(body));
        let v: serde_json::Value = serde_json::from_str(&resp).unwrap_or_default();
        assert!(v["message"].is_string(), "docker's error body: {resp}");
    }
    // a body past the limit is refused without reading it all
    let huge = vec![b' '; 6 << 20];
    let (st, _) = d3.api("POST", "/v1.47/containers/create", &huge);
    assert!(st == 400 || st == 413, "{st}");
    // a name taken: 409
    b.ok(&[
        "create",
        "--network",
        "none",
        "--name",
        "taken",
        "bb:1",
        "true",
    ]);
    let (st, resp) = d3.api(
        "POST",
        "/v1.47/containers/create?name=taken",
        br#"{"Image":"bb:1"}"#,
    );
    assert_eq!(st, 409, "{resp}");
    b.ok(&["rm", "taken"]);
    assert_eq!(b.ok(&["ps", "-aq"]), before, "nothing half-created");
    assert!(b.ok(&["volume", "ls", "-q"]).trim().is_empty());
}

#[test]
fn the_docker_cli_saves_loads_imports_and_pulls_through_berth_daemon() {
    if !root_or_skip("berth daemon") {
        return;
    }
    if !have_docker() {
        return;
    }
    let b = berth_with_image();
    let d = Daemon::start(&b);
    let tar = b.dir.path().join("saved.tar");
    d.ok(&["save", "-o", tar.to_str().unwrap(), "bb:1"]);
    d.ok(&["rmi", "bb:1"]);
    assert!(
        d.ok(&["load", "-i", tar.to_str().unwrap()])
            .contains("Loaded image: bb:1")
    );
    assert_eq!(
        d.ok(&["run", "--rm", "--network", "none", "bb:1", "echo", "back"]),
        "back\n"
    );
    let o = d.docker(&[
        "save",
        "-o",
        b.dir.path().join("x.tar").to_str().unwrap(),
        "nosuch:1",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("No such image"));
    // import a root filesystem tarball from stdin
    let rootfs = busybox_tar(b.dir.path());
    let o = Command::new("docker")
        .args(["import", "-", "imported:1"])
        .envs(d.env())
        .stdin(std::fs::File::open(&rootfs).unwrap())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
            .contains("imported:1")
    );
    // pull from berth's own registry on loopback, with docker's progress
    let port = free_port();
    let mut reg = b
        .cmd(&["registry", "serve", "--addr", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    eventually("the registry", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let name = format!("127.0.0.1:{port}/t/bb:1");
    d.ok(&["tag", "bb:1", &name]);
    let pushed = d.ok(&["push", &name]);
    assert!(pushed.contains("digest: sha256:"), "{pushed}");
    d.ok(&["rmi", &name]);
    let out = d.ok(&["pull", &name]);
    let _ = reg.kill();
    let _ = reg.wait();
    assert!(
        out.contains("1: Pulling from t/bb") && out.contains("Digest: sha256:"),
        "{out}"
    );
    assert!(
        d.ok(&["images"])
            .contains(&format!("127.0.0.1:{port}/t/bb"))
    );
    let o = d.docker(&["pull", "127.0.0.1:1/none/such:1"]);
    assert!(!o.status.success());
}

#[test]
fn health_checks_turn_healthy_and_unhealthy() {
    if !root_or_skip("health checks") {
        return;
    }
    let b = berth_with_image();
    b.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "hc",
        "--health-cmd",
        "test -e /tmp/ok",
        "--health-interval",
        "200ms",
        "--health-retries",
        "2",
        "bb:1",
        "sh",
        "-c",
        "mkdir -p /tmp; while true; do sleep 0.1; done",
    ]);
    let health = |b: &Berth| {
        b.ok(&["inspect", "-f", "{{.State.Health.Status}}", "hc"])
            .trim()
            .to_owned()
    };
    eventually("unhealthy", || health(&b) == "unhealthy");
    assert!(
        b.ok(&["ps", "--format", "{{.Status}}"])
            .contains("(unhealthy)")
    );
    b.ok(&["exec", "hc", "touch", "/tmp/ok"]);
    eventually("healthy", || health(&b) == "healthy");
    let log = b.ok(&["inspect", "-f", "{{json .State.Health.Log}}", "hc"]);
    assert!(log.contains("\"ExitCode\":0"), "{log}");
    // the checks' execs leave no records behind (a dozen have run by now;
    // the one exec made by hand and a check in flight may remain)
    let hc_id = b.ok(&["inspect", "-f", "{{.Id}}", "hc"]).trim().to_owned();
    let records = std::fs::read_dir(b.root().join("containers").join(&hc_id).join("exec"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .count();
    assert!(records <= 2, "{records} exec logs left by health checks");
    let until = berth_testutil::until_now();
    let ev = b.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--filter",
        "container=hc",
        "--format",
        "{{.Action}}",
    ]);
    assert!(
        ev.contains("health_status: unhealthy") && ev.contains("health_status: healthy"),
        "{ev}"
    );
    b.ok(&["rm", "-f", "hc"]);
    // a bad test is refused at create
    let err = b.fails(&["run", "-d", "--health-interval", "fast", "bb:1", "true"]);
    assert!(err.contains("invalid duration"), "{err}");
    if !have_docker() {
        return;
    }
    let d = Daemon::start(&b);
    d.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "dhc",
        "--health-cmd",
        "true",
        "--health-interval",
        "200ms",
        "bb:1",
        "sh",
        "-c",
        "while true; do sleep 0.1; done",
    ]);
    eventually("healthy through docker", || {
        d.ok(&["inspect", "-f", "{{.State.Health.Status}}", "dhc"])
            .trim()
            == "healthy"
    });
    assert!(d.ok(&["ps"]).contains("(healthy)"));
    d.ok(&["rm", "-f", "dhc"]);
}

#[test]
fn cp_copies_both_ways_and_never_leaves_the_container() {
    if !root_or_skip("cp") {
        return;
    }
    let b = berth_with_image();
    b.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "box",
        "-h",
        "in-container",
        "bb:1",
        "sh",
        "-c",
        "mkdir -p /d/sub; echo hi > /d/sub/f; ln -s / /d/escape; while true; do sleep 0.1; done",
    ]);
    eventually("setup", || {
        b.run(&["exec", "box", "test", "-L", "/d/escape"])
            .status
            .success()
    });
    let out = b.dir.path().join("out");
    // a directory to a new name, then into an existing directory
    b.ok(&["cp", "box:/d", out.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(out.join("sub/f")).unwrap(), "hi\n");
    assert_eq!(
        std::fs::read_link(out.join("escape")).unwrap(),
        Path::new("/")
    );
    b.ok(&["cp", "box:/d/sub", out.to_str().unwrap()]);
    assert!(out.join("sub/sub/f").exists() || out.join("sub/f").exists());
    // through the container's symlink to /: its own files, never the host's
    let hn = b.dir.path().join("hn");
    b.ok(&["cp", "box:/d/escape/etc/hostname", hn.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&hn).unwrap(), "in-container\n");
    let canary = b.dir.path().join("canary.txt");
    std::fs::write(&canary, "from the host\n").unwrap();
    // -L: a chain of links (relative, then absolute) is followed inside the
    // container, and the target lands under the link's name; without -L
    // the link itself is copied
    b.ok(&[
        "exec",
        "box",
        "sh",
        "-c",
        "ln -s sub/f /d/l1; ln -s /d/l1 /d/l2",
    ]);
    let lo = b.dir.path().join("lo");
    std::fs::create_dir_all(&lo).unwrap();
    b.ok(&["cp", "-L", "box:/d/l2", lo.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(lo.join("l2")).unwrap(), "hi\n");
    b.ok(&["cp", "box:/d/l2", lo.join("plain").to_str().unwrap()]);
    assert_eq!(
        std::fs::read_link(lo.join("plain")).unwrap(),
        Path::new("/d/l1")
    );
    let hl = b.dir.path().join("host-link");
    std::os::unix::fs::symlink(&canary, &hl).unwrap();
    b.ok(&["cp", "-L", hl.to_str().unwrap(), "box:/d/"]);
    assert_eq!(
        b.ok(&["exec", "box", "cat", "/d/host-link"]),
        "from the host\n"
    );
    b.ok(&["cp", canary.to_str().unwrap(), "box:/d/escape/tmp/"]);
    assert_eq!(
        b.ok(&["exec", "box", "cat", "/tmp/canary.txt"]),
        "from the host\n"
    );
    assert!(
        !Path::new("/tmp/canary.txt").exists(),
        "written on the host"
    );
    // a container flipping a directory and a symlink to / while we copy
    b.ok(&["exec", "-d", "box", "sh", "-c",
        "while true; do rm -rf /x; mkdir /x; echo inside > /x/hostname; rm -rf /x; ln -s /etc /x; done"]);
    let host_hostname = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    for i in 0..30 {
        let o = b.dir.path().join(format!("race-{i}"));
        if b.run(&["cp", "box:/x/hostname", o.to_str().unwrap()])
            .status
            .success()
        {
            let got = std::fs::read_to_string(&o).unwrap_or_default();
            // the container's file (maybe caught empty while it is rewritten),
            // never the host's
            assert!(
                got.is_empty() || got == "inside\n" || got == "in-container\n",
                "copied {got:?}"
            );
            assert!(host_hostname.is_empty() || got != host_hostname || got == "in-container\n");
        }
        let _ = b.run(&["cp", canary.to_str().unwrap(), "box:/x/race-canary"]);
    }
    assert!(
        !Path::new("/etc/race-canary").exists(),
        "written on the host"
    );
    // stopped: read and write its filesystem
    b.ok(&["stop", "-t", "1", "box"]);
    let f2 = b.dir.path().join("f2");
    b.ok(&["cp", "box:/d/sub/f", f2.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&f2).unwrap(), "hi\n");
    b.ok(&["cp", canary.to_str().unwrap(), "box:/new-name.txt"]);
    b.ok(&["start", "box"]);
    assert_eq!(
        b.ok(&["exec", "box", "cat", "/new-name.txt"]),
        "from the host\n"
    );
    assert!(
        b.fails(&["cp", "box:/nonexistent", f2.to_str().unwrap()])
            .contains("Could not find")
    );
    b.ok(&["rm", "-f", "box"]);
    if !have_docker() {
        return;
    }
    let d = Daemon::start(&b);
    d.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "dbox",
        "bb:1",
        "sh",
        "-c",
        "mkdir -p /d; echo hi > /d/f; while true; do sleep 0.1; done",
    ]);
    eventually("setup", || {
        d.docker(&["exec", "dbox", "test", "-f", "/d/f"])
            .status
            .success()
    });
    let dout = b.dir.path().join("dout");
    d.ok(&["cp", "dbox:/d", dout.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(dout.join("f")).unwrap(), "hi\n");
    d.ok(&["cp", canary.to_str().unwrap(), "dbox:/d/"]);
    assert_eq!(
        d.ok(&["exec", "dbox", "cat", "/d/canary.txt"]),
        "from the host\n"
    );
    // `cp … -` and `cp - …`: tar streams on stdout and stdin
    let o = d.docker(&["cp", "dbox:/d", "-"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut names: Vec<String> = tar::Archive::new(&o.stdout[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .map(|p| p.trim_end_matches('/').to_owned())
        .collect();
    names.sort();
    assert!(
        names.contains(&"d/f".to_owned()) && names.contains(&"d/canary.txt".to_owned()),
        "{names:?}"
    );
    let mut t = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(9);
    h.set_mode(0o640);
    h.set_entry_type(tar::EntryType::Regular);
    t.append_data(&mut h, "streamed.txt", &b"streamed\n"[..])
        .unwrap();
    let body = t.into_inner().unwrap();
    let mut child = Command::new("docker")
        .args(["cp", "-", "dbox:/d/"])
        .envs(d.env())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &body).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        d.ok(&["exec", "dbox", "stat", "-c", "%a %s", "/d/streamed.txt"])
            .trim(),
        "640 9"
    );
    // docker cp -L follows the chain through the stat's LinkTarget
    d.ok(&[
        "exec",
        "dbox",
        "sh",
        "-c",
        "ln -s f /d/lf; ln -s /d/lf /d/lf2",
    ]);
    let dl = b.dir.path().join("dl");
    std::fs::create_dir_all(&dl).unwrap();
    d.ok(&["cp", "-L", "dbox:/d/lf2", dl.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(dl.join("lf2")).unwrap(), "hi\n");
    // the same through berth's own CLI, with no daemon
    let o = b.run(&["cp", "dbox:/d/streamed.txt", "-"]);
    let mut a = tar::Archive::new(&o.stdout[..]);
    let mut e = a.entries().unwrap().next().unwrap().unwrap();
    let mut got = String::new();
    std::io::Read::read_to_string(&mut e, &mut got).unwrap();
    assert_eq!(got, "streamed\n");
    d.ok(&["rm", "-f", "dbox"]);
}

/// Whether a volume's `_data` is a mount point on the host now (from the
/// mount table, so binds on the same filesystem count).
fn volume_mounted(b: &Berth, name: &str) -> bool {
    let data = b.root().join("volumes").join(name).join("_data");
    let data = data.to_string_lossy();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(&*data))
}

#[test]
fn volumes_with_local_driver_options() {
    if !root_or_skip("volumes_with_local_driver_options") {
        return;
    }
    let b = berth_with_image();
    // tmpfs: mounted while containers use it, shared between them, and
    // fresh after the last one stopped (as docker's local driver)
    b.ok(&[
        "volume",
        "create",
        "--opt",
        "type=tmpfs",
        "--opt",
        "o=size=1m,uid=1000",
        "tv",
    ]);
    let insp = b.ok(&[
        "volume",
        "inspect",
        "-f",
        "{{.Options.type}} {{.Options.o}}",
        "tv",
    ]);
    assert_eq!(insp.trim(), "tmpfs size=1m,uid=1000");
    assert!(!volume_mounted(&b, "tv"), "not mounted before use");
    b.ok(&[
        "run",
        "-d",
        "--name",
        "holder",
        "--network",
        "none",
        "-v",
        "tv:/t",
        "bb:1",
        "sh",
        "-c",
        "echo kept > /t/f; exec sleep 300",
    ]);
    eventually("the holder's file", || {
        b.run(&["exec", "holder", "test", "-f", "/t/f"])
            .status
            .success()
    });
    assert!(volume_mounted(&b, "tv"));
    let out = sh_in(
        &b,
        &["-v", "tv:/t"],
        "cat /t/f; grep ' /t ' /proc/mounts; stat -c %u /t",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "kept");
    assert!(
        lines[1].starts_with("tv /t tmpfs") || lines[1].contains(" /t tmpfs "),
        "{out}"
    );
    assert!(lines[1].contains("size=1024k"), "{out}");
    assert_eq!(lines[2], "1000");
    assert!(
        volume_mounted(&b, "tv"),
        "still held by the running container"
    );
    b.ok(&["rm", "-f", "holder"]);
    assert!(!volume_mounted(&b, "tv"), "unmounted after the last user");
    let out = sh_in(&b, &["-v", "tv:/t"], "cat /t/f 2>/dev/null || echo fresh");
    assert_eq!(out.trim(), "fresh");
    // a bind of a host directory: the data is the host's, and removing the
    // volume never touches it
    let host = b.dir.path().join("bind-src");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("old"), "host file\n").unwrap();
    let device = format!("device={}", host.display());
    b.ok(&[
        "volume",
        "create",
        "--opt",
        "type=none",
        "--opt",
        "o=bind",
        "--opt",
        &device,
        "bv",
    ]);
    let out = sh_in(&b, &["-v", "bv:/b"], "cat /b/old; echo new > /b/new");
    assert_eq!(out, "host file\n");
    assert_eq!(std::fs::read_to_string(host.join("new")).unwrap(), "new\n");
    assert!(!volume_mounted(&b, "bv"));
    // flags of a bind take (a remount): read-only here
    let ro_device = format!("device={}", host.display());
    b.ok(&[
        "volume",
        "create",
        "--opt",
        "type=none",
        "--opt",
        "o=bind,ro,nosuid",
        "--opt",
        &ro_device,
        "rov",
    ]);
    let out = sh_in(
        &b,
        &["-v", "rov:/r"],
        "cat /r/old; touch /r/x 2>/dev/null && echo wrote || echo read-only",
    );
    assert_eq!(out, "host file\nread-only\n");
    // cp cannot reach a driver-mounted volume of a stopped container
    b.ok(&["create", "--name", "stopped", "-v", "bv:/b", "bb:1", "true"]);
    let x = b.dir.path().join("x");
    assert!(
        b.fails(&["cp", "stopped:/b/old", x.to_str().unwrap()])
            .contains("not supported yet")
    );
    b.ok(&["rm", "stopped"]);
    b.ok(&["volume", "rm", "bv", "rov"]);
    assert!(
        host.join("old").exists() && host.join("new").exists(),
        "host data kept"
    );
    // --mount with volume-opt makes such a volume; bad options are refused
    let out = sh_in(
        &b,
        &[
            "--mount",
            "type=volume,source=mv,target=/m,volume-opt=type=tmpfs,volume-opt=o=size=2m",
        ],
        "grep ' /m ' /proc/mounts",
    );
    assert!(out.contains("tmpfs") && out.contains("size=2048k"), "{out}");
    assert!(
        b.fails(&["volume", "create", "--opt", "size=1m", "bad"])
            .contains("invalid option key")
    );
    assert!(
        b.fails(&[
            "volume",
            "create",
            "--opt",
            "type=none",
            "--opt",
            "device=/tmp",
            "bad"
        ])
        .contains("o=bind")
    );
    // a device that is not there fails at the first use, as docker's
    b.ok(&[
        "volume",
        "create",
        "--opt",
        "type=none",
        "--opt",
        "o=bind",
        "--opt",
        "device=/nonexistent-berth-dir",
        "gone",
    ]);
    let err = b.fails(&["run", "--rm", "-v", "gone:/g", "bb:1", "true"]);
    assert!(err.contains("failed to mount local volume"), "{err}");
    assert!(!volume_mounted(&b, "gone"));
    b.ok(&["volume", "rm", "tv", "mv", "gone"]);
}

/// The output of `sh -c script` in a fresh container (no network) run
/// with `flags`.
fn sh_in(b: &Berth, flags: &[&str], script: &str) -> String {
    let mut args = vec!["run", "--rm", "--network", "none"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["bb:1", "sh", "-c", script]);
    b.ok(&args)
}

/// `readlink /proc/self/ns/KIND` in a fresh container run with `flags`.
fn ns_of(b: &Berth, flags: &[&str], kind: &str) -> String {
    sh_in(b, flags, &format!("readlink /proc/self/ns/{kind}"))
        .trim()
        .to_owned()
}

#[test]
fn namespace_modes_and_process_options() {
    if !root_or_skip("namespace_modes_and_process_options") {
        return;
    }
    let b = berth_with_image();
    let host = |kind: &str| {
        std::fs::read_link(format!("/proc/self/ns/{kind}"))
            .unwrap()
            .display()
            .to_string()
    };
    // host namespaces, and private ones by default
    for (flag, kind) in [("--pid", "pid"), ("--ipc", "ipc"), ("--uts", "uts")] {
        assert_eq!(ns_of(&b, &[flag, "host"], kind), host(kind), "{flag} host");
        assert_ne!(ns_of(&b, &[], kind), host(kind), "no {flag}");
    }
    assert_eq!(ns_of(&b, &["--cgroupns", "host"], "cgroup"), host("cgroup"));
    assert_ne!(ns_of(&b, &[], "cgroup"), host("cgroup"));
    let nodename = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--uts",
        "host",
        "bb:1",
        "hostname",
    ]);
    assert_eq!(out.trim(), nodename);
    assert!(
        b.fails(&["run", "--rm", "--uts", "host", "-h", "x", "bb:1", "true"])
            .contains("Conflicting options: hostname and the UTS mode")
    );
    assert!(
        b.fails(&["run", "--rm", "--pid", "bogus", "bb:1", "true"])
            .contains("invalid PID mode")
    );
    // resource and naming flags reach the kernel (v1 memory knobs, or
    // docker's warning where cgroup v2 has none)
    let out = b.run(&[
        "run", "--rm", "--network", "none", "--memory-swappiness", "7", "--oom-kill-disable",
        "--cpu-period", "100000", "--cpu-quota", "50000", "--domainname", "example.org", "bb:1",
        "sh", "-c",
        "cat /proc/sys/kernel/domainname; cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us \
         /sys/fs/cgroup/cpu.max 2>/dev/null; cat /sys/fs/cgroup/memory/memory.swappiness \
         2>/dev/null; grep oom_kill_disable /sys/fs/cgroup/memory/memory.oom_control 2>/dev/null; true",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "example.org", "{text}");
    assert!(lines[1] == "50000" || lines[1] == "50000 100000", "{text}");
    if std::path::Path::new("/sys/fs/cgroup/memory").is_dir() {
        assert_eq!(lines[2..], ["7", "oom_kill_disable 1"], "{text}");
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("Memory swappiness discarded"), "{err}");
    }
    // /dev/shm: its size, none, the host's
    let shm = |flags: &[&str]| sh_in(&b, flags, "grep ' /dev/shm ' /proc/mounts || echo none");
    assert!(shm(&[]).contains("size=65536k"), "{}", shm(&[]));
    assert!(shm(&["--shm-size", "2m"]).contains("size=2048k"));
    assert_eq!(shm(&["--ipc", "none"]).trim(), "none");
    // groups, oom_score_adj, masked paths
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--group-add",
        "777",
        "--group-add",
        "778",
        "--oom-score-adj",
        "321",
        "bb:1",
        "sh",
        "-c",
        "grep ^Groups: /proc/self/status; cat /proc/self/oom_score_adj",
    ]);
    let groups: Vec<&str> = out
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .skip(1)
        .collect();
    assert!(groups.contains(&"777") && groups.contains(&"778"), "{out}");
    assert_eq!(out.lines().nth(1), Some("321"));
    assert!(
        b.fails(&["run", "--rm", "--group-add", "nosuchgroup", "bb:1", "true"])
            .contains("Unable to find group nosuchgroup")
    );
    let masked = |flags: &[&str]| {
        sh_in(&b, flags, "wc -c < /proc/timer_list")
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    if std::path::Path::new("/proc/timer_list").exists() {
        assert_eq!(masked(&[]), 0, "masked by default");
        assert!(masked(&["--security-opt", "systempaths=unconfined"]) > 0);
    } else {
        eprintln!("skipping systempaths=unconfined: this kernel has no /proc/timer_list");
    }
    // --device-cgroup-rule: a node made in the container opens as the rule says
    let open = |flags: &[&str]| {
        let script = "mknod /tmp/lc c 10 237; (exec 3</tmp/lc) 2>/dev/null && echo r=ok || echo r=denied; \
             (exec 3>/tmp/lc) 2>/dev/null && echo w=ok || echo w=denied";
        sh_in(&b, flags, script)
            .split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(open(&[]), ["r=denied", "w=denied"]);
    assert_eq!(
        open(&["--device-cgroup-rule", "c 10:237 r"]),
        ["r=ok", "w=denied"]
    );
    assert_eq!(
        open(&["--device-cgroup-rule", "c 10:* rw"]),
        ["r=ok", "w=ok"]
    );
    assert!(
        b.fails(&[
            "run",
            "--rm",
            "--device-cgroup-rule",
            "c x:1 r",
            "bb:1",
            "true"
        ])
        .contains("invalid device cgroup rule format")
    );

    // sharing another container's namespaces: pid, ipc (shareable), and
    // the network of one with no bridge
    b.ok(&[
        "run",
        "-d",
        "--name",
        "donor",
        "--network",
        "none",
        "--ipc",
        "shareable",
        "-v",
        "/data",
        "bb:1",
        "sh",
        "-c",
        "echo hello > /data/f; exec sleep 300",
    ]);
    let donor = |kind: &str| {
        b.ok(&[
            "exec",
            "donor",
            "readlink",
            &format!("/proc/self/ns/{kind}"),
        ])
        .trim()
        .to_owned()
    };
    eventually("the donor's file", || {
        b.run(&["exec", "donor", "test", "-f", "/data/f"])
            .status
            .success()
    });
    for (flag, kind) in [("--pid", "pid"), ("--ipc", "ipc"), ("--network", "net")] {
        let out = b.ok(&[
            "run",
            "--rm",
            flag,
            "container:donor",
            "bb:1",
            "readlink",
            &format!("/proc/self/ns/{kind}"),
        ]);
        assert_eq!(out.trim(), donor(kind), "{flag} container:donor");
    }
    let out = b.ok(&[
        "run",
        "--rm",
        "--pid",
        "container:donor",
        "bb:1",
        "ps",
        "-o",
        "args",
    ]);
    assert!(out.contains("sleep 300"), "{out}");
    // its /dev/shm and its hostname come along
    b.ok(&["exec", "donor", "sh", "-c", "echo shared > /dev/shm/x"]);
    let out = b.ok(&[
        "run",
        "--rm",
        "--ipc",
        "container:donor",
        "bb:1",
        "cat",
        "/dev/shm/x",
    ]);
    assert_eq!(out.trim(), "shared");
    let donor_host = b.ok(&["exec", "donor", "hostname"]);
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "container:donor",
        "bb:1",
        "hostname",
    ]);
    assert_eq!(out, donor_host);
    // --volumes-from, read-only on request
    let out = b.ok(&[
        "run",
        "--rm",
        "--volumes-from",
        "donor:ro",
        "bb:1",
        "sh",
        "-c",
        "cat /data/f; touch /data/g 2>/dev/null && echo wrote || echo read-only",
    ]);
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["hello", "read-only"]
    );
    let out = b.ok(&[
        "run",
        "--rm",
        "--volumes-from",
        "donor",
        "bb:1",
        "sh",
        "-c",
        "touch /data/g && echo wrote",
    ]);
    assert_eq!(out.trim(), "wrote");
    // a read-only mount stays read-only whatever mode is asked
    let hostdir = b.dir.path().join("ro-src");
    std::fs::create_dir_all(&hostdir).unwrap();
    let ro_bind = format!("{}:/h:ro", hostdir.display());
    b.ok(&[
        "create", "--name", "rodonor", "-v", &ro_bind, "bb:1", "true",
    ]);
    let out = sh_in(
        &b,
        &["--volumes-from", "rodonor:rw,z"],
        "touch /h/x 2>/dev/null && echo wrote || echo read-only",
    );
    assert_eq!(out.trim(), "read-only");
    assert!(
        b.fails(&[
            "run",
            "--rm",
            "--volumes-from",
            "rodonor:shared",
            "bb:1",
            "true"
        ])
        .contains("invalid mode for volumes-from")
    );
    // quick restarts: each new run is left alone by the last one's monitor
    for _ in 0..5 {
        b.ok(&["restart", "-t", "0", "donor"]);
        assert_eq!(status(&b, "donor"), "running 0");
        b.ok(&["exec", "donor", "test", "-f", "/data/f"]);
    }
    // a private IPC namespace is not shared
    b.ok(&["run", "-d", "--name", "private", "bb:1", "sleep", "300"]);
    assert!(
        b.fails(&["run", "--rm", "--ipc", "container:private", "bb:1", "true"])
            .contains("non-shareable IPC")
    );
    // joining needs the other running, at each start
    b.ok(&[
        "create",
        "--name",
        "joiner",
        "--network",
        "container:donor",
        "bb:1",
        "true",
    ]);
    b.ok(&["stop", "-t", "0", "donor"]);
    assert!(
        b.fails(&["start", "joiner"])
            .contains("non running container")
    );
    b.ok(&["start", "donor"]);
    b.ok(&["start", "-a", "joiner"]);
    assert_eq!(status(&b, "joiner"), "exited 0");
    // the execs of a run are forgotten when the container starts again
    let donor_id = b
        .ok(&["inspect", "-f", "{{.Id}}", "donor"])
        .trim()
        .to_owned();
    let execs = || {
        std::fs::read_dir(b.root().join("containers").join(&donor_id).join("exec"))
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                    .count()
            })
            .unwrap_or(0)
    };
    b.ok(&["exec", "donor", "true"]);
    assert!(execs() >= 1);
    b.ok(&["restart", "-t", "0", "donor"]);
    assert_eq!(execs(), 0);
    let index = std::fs::read_dir(b.root().join("execs"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(index, 0, "exec index entries of the forgotten execs");
    b.ok(&["rm", "-f", "donor", "private", "joiner", "rodonor"]);
}

#[test]
fn diff_commit_and_export() {
    if !root_or_skip("diff/commit/export") {
        return;
    }
    let b = berth_with_image();
    b.ok(&[
        "run",
        "--network",
        "none",
        "--name",
        "chg",
        "bb:1",
        "sh",
        "-c",
        "mkdir -p /tmp; echo new > /tmp/new; rm /etc/passwd; echo more >> /bin/busybox-note",
    ]);
    let diff = b.ok(&["diff", "chg"]);
    let lines: Vec<&str> = diff.lines().collect();
    for want in [
        "A /tmp/new",
        "D /etc/passwd",
        "C /etc",
        "A /bin/busybox-note",
    ] {
        assert!(lines.contains(&want), "{want} missing: {diff}");
    }
    assert!(
        !diff.contains("/etc/hosts") && !diff.contains("A /proc"),
        "placeholders: {diff}"
    );
    let id = b.ok(&[
        "commit",
        "-c",
        "CMD [\"cat\", \"/tmp/new\"]",
        "-m",
        "snap",
        "chg",
        "snap:1",
    ]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    assert_eq!(
        b.ok(&["run", "--rm", "--network", "none", "snap:1"]),
        "new\n"
    );
    let o = b.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "snap:1",
        "cat",
        "/etc/passwd",
    ]);
    assert!(!o.status.success(), "the deletion is in the image");
    let hist = b.ok(&["history", "snap:1"]);
    assert!(hist.contains("snap"), "{hist}");
    let tar = b.dir.path().join("export.tar");
    b.ok(&["export", "-o", tar.to_str().unwrap(), "chg"]);
    let list = Command::new("tar").arg("-tf").arg(&tar).output().unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.lines().any(|l| l.trim_end_matches('/') == "tmp/new"),
        "{list}"
    );
    assert!(
        !list.lines().any(|l| l == "etc/passwd"),
        "deleted file exported"
    );
    // --privileged: no seccomp, /sys writable, the host's devices
    let out = b.ok(&[
        "run", "--rm", "--network", "none", "--privileged", "bb:1", "sh", "-c",
        "grep '^Seccomp:' /proc/self/status; grep ' /sys ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1; ls /dev | wc -l",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..2], ["Seccomp:\t0", "rw"], "{out}");
    let host_devs = std::fs::read_dir("/dev").unwrap().count();
    let n: usize = lines[2].trim().parse().unwrap();
    assert!(
        n > 15 || host_devs < 20,
        "{n} devices of the host's {host_devs}"
    );
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "bb:1",
        "grep",
        "^Seccomp:",
        "/proc/self/status",
    ]);
    assert_eq!(out.trim(), "Seccomp:\t2", "not privileged: filtered");
    // --device: the host's node under another name
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--device",
        "/dev/zero:/dev/myzero",
        "bb:1",
        "sh",
        "-c",
        "head -c 3 /dev/myzero | od -An -tx1",
    ]);
    assert_eq!(out.trim(), "00 00 00");
    assert!(
        b.fails(&["run", "--rm", "--device", "/nonexistent", "bb:1", "true"])
            .contains("/nonexistent")
    );
    // --device with narrower permissions: the device cgroup decides each
    // open (loop-control is outside the default device list)
    if std::path::Path::new("/dev/loop-control").exists() {
        let open = |perms: &str| {
            b.ok(&[
                "run",
                "--rm",
                "--network",
                "none",
                "--device",
                &format!("/dev/loop-control:/dev/lc:{perms}"),
                "bb:1",
                "sh",
                "-c",
                "(exec 3</dev/lc) 2>/dev/null && echo r=ok || echo r=denied; \
                 (exec 3>/dev/lc) 2>/dev/null && echo w=ok || echo w=denied",
            ])
        };
        assert_eq!(
            open("r").split_whitespace().collect::<Vec<_>>(),
            ["r=ok", "w=denied"]
        );
        assert_eq!(
            open("w").split_whitespace().collect::<Vec<_>>(),
            ["r=denied", "w=ok"]
        );
        assert_eq!(
            open("rwm").split_whitespace().collect::<Vec<_>>(),
            ["r=ok", "w=ok"]
        );
        assert!(
            b.fails(&[
                "run",
                "--rm",
                "--device",
                "/dev/loop-control:/dev/lc:rx",
                "bb:1",
                "true"
            ])
            .contains("invalid device mode")
        );
    } else {
        eprintln!("skipping --device permissions: this host has no /dev/loop-control");
    }
    // --init: a reaper as process 1 that forwards signals (a plain `sleep`
    // as pid 1 would ignore SIGTERM and wait for the kill)
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--init",
        "bb:1",
        "sh",
        "-c",
        "cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$",
    ]);
    assert!(out.starts_with("/sbin/docker-init -- sh -c"), "{out}");
    assert_eq!(out.lines().nth(1), Some("2"), "{out}");
    let o = b.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--init",
        "bb:1",
        "sh",
        "-c",
        "exit 7",
    ]);
    assert_eq!(o.status.code(), Some(7));
    b.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--init",
        "--name",
        "inited",
        "bb:1",
        "sleep",
        "100",
    ]);
    b.ok(&["stop", "-t", "8", "inited"]);
    // 143: SIGTERM reached sleep through the init (137 would be the kill after the timeout)
    assert_eq!(status(&b, "inited"), "exited 143");
    b.ok(&["rm", "inited"]);
    // system df counts the container's writes; container prune removes it
    let df = b.ok(&["system", "df"]);
    assert!(df.contains("Containers") && df.contains("Images"), "{df}");
    let pruned = b.ok(&["container", "prune", "-f"]);
    assert!(pruned.contains("Deleted Containers:"), "{pruned}");
    assert!(b.ok(&["ps", "-aq"]).trim().is_empty());
    // update: limits written to the running container's cgroup, kept for the next start
    b.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "up",
        "-m",
        "64m",
        "bb:1",
        "sleep",
        "100",
    ]);
    b.ok(&[
        "update",
        "-m",
        "128m",
        "--pids-limit",
        "50",
        "--restart",
        "on-failure:2",
        "up",
    ]);
    let id = b.ok(&["inspect", "-f", "{{.Id}}", "up"]).trim().to_owned();
    // v1 (pids hierarchy) or v2 (unified) layout of the host
    let limit = [
        format!("/sys/fs/cgroup/pids/berth/{id}/pids.max"),
        format!("/sys/fs/cgroup/berth/{id}/pids.max"),
    ]
    .iter()
    .find_map(|p| std::fs::read_to_string(p).ok())
    .expect("the container's pids cgroup");
    assert_eq!(limit.trim(), "50");
    assert_eq!(
        b.ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.Memory}} {{.HostConfig.RestartPolicy.Name}}",
            "up"
        ])
        .trim(),
        "134217728 on-failure"
    );
    b.ok(&["rm", "-f", "up"]);
    // a policy given by update applies at the next exit
    b.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "later",
        "bb:1",
        "sh",
        "-c",
        "sleep 3; exit 3",
    ]);
    b.ok(&["update", "--restart", "on-failure:1", "later"]);
    eventually("the restart the updated policy asks for", || {
        b.ok(&["inspect", "-f", "{{.RestartCount}}", "later"])
            .trim()
            == "1"
    });
    b.ok(&["rm", "-f", "later"]);
    if !have_docker() {
        return;
    }
    let d = Daemon::start(&b);
    d.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "dup",
        "bb:1",
        "sleep",
        "100",
    ]);
    d.ok(&["update", "--cpus", "0.5", "dup"]);
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.HostConfig.NanoCpus}}", "dup"])
            .trim(),
        "500000000"
    );
    d.ok(&["rm", "-f", "dup"]);
    d.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "live",
        "bb:1",
        "sh",
        "-c",
        "echo hi > /hello; while true; do sleep 0.1; done",
    ]);
    eventually("the write", || {
        d.docker(&["exec", "live", "test", "-f", "/hello"])
            .status
            .success()
    });
    assert!(d.ok(&["diff", "live"]).lines().any(|l| l == "A /hello"));
    d.ok(&[
        "commit",
        "--change",
        "CMD [\"cat\", \"/hello\"]",
        "live",
        "live-snap:1",
    ]);
    assert_eq!(
        d.ok(&["run", "--rm", "--network", "none", "live-snap:1"]),
        "hi\n"
    );
    let tar2 = b.dir.path().join("live.tar");
    d.ok(&["export", "-o", tar2.to_str().unwrap(), "live"]);
    let list = Command::new("tar").arg("-tf").arg(&tar2).output().unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(list.lines().any(|l| l == "hello"), "{list}");
    assert!(
        !list.lines().any(|l| l.starts_with("proc/") && l.len() > 5),
        "kernel filesystems exported"
    );
    d.ok(&["rm", "-f", "live"]);
    d.ok(&[
        "run",
        "--network",
        "none",
        "--name",
        "stopped",
        "bb:1",
        "true",
    ]);
    assert!(d.ok(&["system", "df"]).contains("Containers"));
    let out = d.ok(&["system", "prune", "-f"]);
    assert!(out.contains("Deleted Containers:"), "{out}");
    assert!(d.ok(&["ps", "-aq"]).trim().is_empty());
}

#[test]
fn the_daemon_serves_tcp_only_with_mutual_tls() {
    if !root_or_skip("berth daemon") {
        return;
    }
    let b = berth_with_image();
    let port = free_port();
    // TCP without --tlsverify is refused
    let err = b.fails(&["daemon", "-H", &format!("tcp://127.0.0.1:{port}")]);
    assert!(err.contains("--tlsverify"), "{err}");
    if !have_docker() {
        return;
    }
    // a CA, a server certificate for 127.0.0.1, a client certificate
    let certs = b.dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let mk = |names: Vec<String>, client: bool| {
        let k = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(names).unwrap();
        p.extended_key_usages = vec![if client {
            rcgen::ExtendedKeyUsagePurpose::ClientAuth
        } else {
            rcgen::ExtendedKeyUsagePurpose::ServerAuth
        }];
        (p.signed_by(&k, &issuer).unwrap().pem(), k.serialize_pem())
    };
    let (srv_cert, srv_key) = mk(vec!["127.0.0.1".into(), "localhost".into()], false);
    let (cli_cert, cli_key) = mk(vec!["client".into()], true);
    std::fs::write(certs.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(certs.join("server-cert.pem"), srv_cert).unwrap();
    std::fs::write(certs.join("server-key.pem"), srv_key).unwrap();
    std::fs::write(certs.join("cert.pem"), cli_cert).unwrap();
    std::fs::write(certs.join("key.pem"), cli_key).unwrap();
    let sock = b.dir.path().join("tls.sock");
    let mut daemon = b
        .cmd(&[
            "daemon",
            "-H",
            &format!("unix://{}", sock.display()),
            "-H",
            &format!("tcp://127.0.0.1:{port}"),
            "--tlsverify",
            "--tlscacert",
            certs.join("ca.pem").to_str().unwrap(),
            "--tlscert",
            certs.join("server-cert.pem").to_str().unwrap(),
            "--tlskey",
            certs.join("server-key.pem").to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    eventually("the TLS port", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let docker = |tls: bool, args: &[&str]| {
        let mut c = Command::new("docker");
        c.args(args)
            .env("DOCKER_HOST", format!("tcp://127.0.0.1:{port}"))
            .env("DOCKER_CONFIG", b.dir.path());
        if tls {
            c.env("DOCKER_TLS_VERIFY", "1")
                .env("DOCKER_CERT_PATH", &certs);
        }
        c.output().unwrap()
    };
    let o = docker(
        true,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "bb:1",
            "echo",
            "over tls",
        ],
    );
    let _stop = scopeguard_kill(&mut daemon);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "over tls\n");
    // no client certificate: refused
    let mut c = Command::new("docker");
    c.args([
        "--tls",
        "--tlscacert",
        certs.join("ca.pem").to_str().unwrap(),
        "version",
    ])
    .env("DOCKER_HOST", format!("tcp://127.0.0.1:{port}"))
    .env("DOCKER_CONFIG", b.dir.path());
    let o = c.output().unwrap();
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("Server:")
            || String::from_utf8_lossy(&o.stderr)
                .to_lowercase()
                .contains("error"),
        "served without a client certificate: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(
        !docker(false, &["ps"]).status.success(),
        "plain HTTP on the TLS port"
    );
}

/// Kills a child when dropped.
fn scopeguard_kill(c: &mut Child) -> impl Drop + '_ {
    struct K<'a>(&'a mut Child);
    impl Drop for K<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    K(c)
}
