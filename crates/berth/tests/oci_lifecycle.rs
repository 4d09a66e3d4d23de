//! Every `berth oci` verb through its lifecycle, and bad input: clear
//! errors and nothing left behind.

use std::os::fd::AsFd;
use std::path::PathBuf;

use berth_testutil::{Bundle, Oci, busybox_rootfs, cgroup_dirs_named, root_or_skip, unique_id};

fn berth() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_berth"))
}

fn bundle(args: &[&str]) -> Bundle {
    Bundle::new(&berth(), &busybox_rootfs(), args)
}

#[test]
fn create_start_state_kill_delete() {
    if !root_or_skip("lifecycle") {
        return;
    }
    let oci = Oci::new(&berth());
    let b = bundle(&["sleep", "30"]);
    let id = unique_id("life");
    let pidfile = oci.root.path().join("init.pid");
    oci.detached(&[
        "create",
        "--bundle",
        b.path().to_str().unwrap(),
        "--pid-file",
        pidfile.to_str().unwrap(),
        &id,
    ]);
    let st = oci.state(&id);
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], id.as_str());
    assert_eq!(st["bundle"], b.path().to_str().unwrap());
    assert!(st["ociVersion"].as_str().unwrap().starts_with("1."));
    let pid = st["pid"].as_i64().unwrap();
    assert!(pid > 0);
    assert_eq!(std::fs::read_to_string(&pidfile).unwrap(), pid.to_string());
    // the process has not run yet: the init waits in berth's code
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_ne!(comm.trim(), "sleep");

    // a second create with the same id fails and changes nothing
    let err = oci.fails(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(oci.status(&id), "created");

    // delete of a created container needs --force
    let err = oci.fails(&["delete", &id]);
    assert!(err.contains("not stopped"), "{err}");

    oci.ok(&["start", &id]);
    assert_eq!(oci.status(&id), "running");
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "sleep");
    // start twice is an error
    let err = oci.fails(&["start", &id]);
    assert!(err.contains("not created"), "{err}");

    // list, ps, events
    let list = oci.ok(&["list"]);
    assert!(list.starts_with("ID"), "{list}");
    assert!(
        list.lines()
            .any(|l| l.starts_with(&id) && l.contains("running")),
        "{list}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&oci.ok(&["list", "--format", "json"])).unwrap();
    assert_eq!(json[0]["id"], id.as_str());
    assert_eq!(oci.ok(&["list", "-q"]).trim(), id);
    let ps: Vec<i64> = serde_json::from_str(&oci.ok(&["ps", "--format", "json", &id])).unwrap();
    assert_eq!(ps, vec![pid]);
    let table = oci.ok(&["ps", &id]);
    assert!(table.lines().next().unwrap().contains("PID"));
    assert!(table.contains("sleep 30"), "{table}");
    let ev: serde_json::Value =
        serde_json::from_str(oci.ok(&["events", "--stats", &id]).trim()).unwrap();
    assert_eq!(ev["type"], "stats");
    assert_eq!(ev["data"]["pids"]["current"], 1);

    // pause / resume
    oci.ok(&["pause", &id]);
    assert_eq!(oci.status(&id), "paused");
    let err = oci.fails(&["pause", &id]);
    assert!(err.contains("not running"), "{err}");
    oci.ok(&["resume", &id]);
    assert_eq!(oci.status(&id), "running");

    // kill: bad signal, then a real one
    let err = oci.fails(&["kill", &id, "NOTASIGNAL"]);
    assert!(err.contains("unknown signal"), "{err}");
    let err = oci.fails(&["delete", &id]);
    assert!(err.contains("not stopped"), "{err}");
    oci.ok(&["kill", &id, "KILL"]);
    oci.wait_stopped(&id);
    assert_eq!(oci.state(&id)["pid"], 0);
    let err = oci.fails(&["kill", &id, "KILL"]);
    assert!(err.contains("not running"), "{err}");

    let cgroups = cgroup_dirs_named(&id);
    assert!(
        cgroups.iter().any(|d| d.exists()),
        "cgroup should exist before delete"
    );
    oci.ok(&["delete", &id]);
    for d in cgroups {
        assert!(!d.exists(), "{} left behind", d.display());
    }
    let err = oci.fails(&["state", &id]);
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn run_returns_the_exit_code_and_cleans_up() {
    if !root_or_skip("lifecycle") {
        return;
    }
    let oci = Oci::new(&berth());
    let b = bundle(&["sh", "-c", "echo out; echo err >&2; exit 7"]);
    let id = unique_id("run");
    let out = oci.run(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    assert!(
        oci.ok(&["list", "-q"]).trim().is_empty(),
        "run must delete the container"
    );
    for d in cgroup_dirs_named(&id) {
        assert!(!d.exists(), "{} left behind", d.display());
    }
    // killed by a signal: 128 + n
    let b = bundle(&["sleep", "30"]);
    let id = unique_id("run");
    let child = oci
        .cmd(&["run", "--bundle", b.path().to_str().unwrap(), &id])
        .spawn()
        .unwrap();
    for _ in 0..500 {
        if oci.run(&["state", &id]).status.success() && oci.status(&id) == "running" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    oci.ok(&["kill", &id, "KILL"]);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(137));
}

#[test]
fn run_forwards_signals_to_the_container() {
    if !root_or_skip("lifecycle") {
        return;
    }
    let oci = Oci::new(&berth());
    let b = bundle(&[
        "sh",
        "-c",
        "trap 'echo got-term; exit 3' TERM; while :; do sleep 0.05; done",
    ]);
    let id = unique_id("sig");
    let child = oci
        .cmd(&["run", "--bundle", b.path().to_str().unwrap(), &id])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if oci.run(&["state", &id]).status.success() && oci.status(&id) == "running" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(child.id() as i32).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got-term\n");
}

#[test]
fn exec_runs_in_the_container_with_its_options() {
    if !root_or_skip("exec") {
        return;
    }
    let oci = Oci::new(&berth());
    let mut b = bundle(&["sleep", "30"]);
    b.config["hostname"] = "exec-host".into();
    b.write();
    let id = unique_id("exec");
    oci.detached(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    assert_eq!(oci.ok(&["exec", &id, "hostname"]), "exec-host\n");
    let out = oci.run(&["exec", &id, "sh", "-c", "exit 5"]);
    assert_eq!(out.status.code(), Some(5));
    let out = oci.ok(&[
        "exec",
        "-e",
        "FOO=bar",
        "--cwd",
        "/tmp",
        "-u",
        "1000:1000",
        &id,
        "sh",
        "-c",
        "echo $FOO; pwd; id -u; id -g",
    ]);
    assert_eq!(out, "bar\n/tmp\n1000\n1000\n");
    // a process.json
    let p = oci.root.path().join("process.json");
    std::fs::write(&p, r#"{"user":{"uid":0,"gid":0},"args":["sh","-c","echo from-json $X"],"env":["X=1"],"cwd":"/"}"#).unwrap();
    assert_eq!(
        oci.ok(&["exec", "--process", p.to_str().unwrap(), &id]),
        "from-json 1\n"
    );
    // in the container's pid namespace and cgroup
    let out = oci.ok(&[
        "exec",
        &id,
        "sh",
        "-c",
        "echo $$; cat /proc/1/cmdline | tr '\\0' ' '",
    ]);
    let mut lines = out.lines();
    assert!(lines.next().unwrap().parse::<u32>().unwrap() > 1);
    assert_eq!(lines.next().unwrap().trim(), "sleep 30");
    // detached, with a pid file
    let pidfile = oci.root.path().join("exec.pid");
    oci.detached(&[
        "exec",
        "-d",
        "--pid-file",
        pidfile.to_str().unwrap(),
        &id,
        "sleep",
        "5",
    ]);
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().parse().unwrap();
    let ps: Vec<i32> = serde_json::from_str(&oci.ok(&["ps", "--format", "json", &id])).unwrap();
    assert!(ps.contains(&pid), "{ps:?} lacks {pid}");
    // errors
    let err = oci.fails(&["exec", &id, "/no/such/binary"]);
    assert!(err.contains("/no/such/binary"), "{err}");
    let err = oci.fails(&["exec", &id, "nosuchcommand"]);
    assert!(err.contains("executable file not found"), "{err}");
    let err = oci.fails(&["exec", "nosuchcontainer", "true"]);
    assert!(err.contains("does not exist"), "{err}");
    oci.ok(&["kill", &id, "KILL"]);
    oci.wait_stopped(&id);
    let err = oci.fails(&["exec", &id, "true"]);
    assert!(err.contains("stopped"), "{err}");
}

#[test]
fn hooks_run_in_order_with_the_state_on_stdin() {
    if !root_or_skip("hooks") {
        return;
    }
    let oci = Oci::new(&berth());
    let t = tempfile::tempdir().unwrap();
    let log = t.path().join("hooks.log");
    let mut b = bundle(&["true"]);
    let hook = |name: &str| {
        serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c",
            format!("read -r s; echo \"{name} $s\" >> {}", log.display())]})
    };
    // createContainer runs in the container's mount namespace before
    // pivot_root (host paths still resolve); startContainer runs inside the
    // container (the log directory is bind-mounted at /log).
    let in_container = |name: &str| {
        serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c",
            format!("read -r s; echo \"{name} $s\" >> /log/hooks.log")]})
    };
    b.config["mounts"].as_array_mut().unwrap().push(serde_json::json!({
        "destination": "/log", "type": "bind", "source": t.path().to_str().unwrap(), "options": ["bind"]}));
    b.config["hooks"] = serde_json::json!({
        "prestart": [hook("prestart")],
        "createRuntime": [hook("createRuntime")],
        "createContainer": [hook("createContainer")],
        "startContainer": [in_container("startContainer")],
        "poststart": [hook("poststart")],
        "poststop": [hook("poststop")],
    });
    b.write();
    let id = unique_id("hooks");
    oci.ok(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let names: Vec<&str> = lines.iter().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        names,
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ],
        "{text}"
    );
    let state = |i: usize| -> serde_json::Value {
        serde_json::from_str(lines[i].split_once(' ').unwrap().1).unwrap()
    };
    assert_eq!(state(0)["id"], id.as_str());
    assert_eq!(state(0)["status"], "created");
    assert!(state(0)["pid"].as_i64().unwrap() > 0);
    assert_eq!(state(2)["status"], "created");
    assert_eq!(state(4)["status"], "running");
    assert_eq!(state(5)["status"], "stopped");
}

#[test]
fn a_failing_prestart_hook_fails_create_and_leaves_nothing() {
    if !root_or_skip("hooks") {
        return;
    }
    let oci = Oci::new(&berth());
    let mut b = bundle(&["true"]);
    b.config["hooks"] = serde_json::json!({"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", "echo hook-said-no >&2; exit 3"]}]});
    b.write();
    let id = unique_id("hookfail");
    let err = oci.fails(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    assert!(
        err.contains("prestart") && err.contains("hook-said-no"),
        "{err}"
    );
    assert!(oci.ok(&["list", "-q"]).trim().is_empty());
    for d in cgroup_dirs_named(&id) {
        assert!(!d.exists(), "{} left behind", d.display());
    }
}

#[test]
fn the_terminal_goes_to_the_console_socket() {
    if !root_or_skip("console socket") {
        return;
    }
    let oci = Oci::new(&berth());
    let t = tempfile::tempdir().unwrap();
    let sock_path = t.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    let mut b = bundle(&["sh", "-c", "tty; stty size; echo hello-tty"]);
    b.config["process"]["terminal"] = true.into();
    b.config["process"]["consoleSize"] = serde_json::json!({"height": 30, "width": 100});
    b.write();
    let id = unique_id("tty");
    let recv = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut anc = rustix::net::RecvAncillaryBuffer::new(&mut space);
        let mut buf = [0u8; 4096];
        rustix::net::recvmsg(
            conn.as_fd(),
            &mut [std::io::IoSliceMut::new(&mut buf)],
            &mut anc,
            rustix::net::RecvFlags::empty(),
        )
        .unwrap();
        let mut fd = None;
        for m in anc.drain() {
            if let rustix::net::RecvAncillaryMessage::ScmRights(mut f) = m {
                fd = f.next();
            }
        }
        fd.expect("a pty master fd")
    });
    oci.detached(&[
        "create",
        "--console-socket",
        sock_path.to_str().unwrap(),
        "--bundle",
        b.path().to_str().unwrap(),
        &id,
    ]);
    let master = recv.join().unwrap();
    oci.ok(&["start", &id]);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match rustix::io::read(&master, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains("/dev/pts/0") || text.contains("/dev/console"),
        "{text}"
    );
    assert!(text.contains("30 100"), "{text}");
    assert!(text.contains("hello-tty"), "{text}");
    // a terminal without a socket is refused for create
    let id2 = unique_id("tty");
    let err = oci.fails(&["create", "--bundle", b.path().to_str().unwrap(), &id2]);
    assert!(err.contains("console-socket"), "{err}");
}

#[test]
fn bad_input_gets_clear_errors() {
    if !root_or_skip("bad input") {
        return;
    }
    let oci = Oci::new(&berth());
    let t = tempfile::tempdir().unwrap();
    // nonexistent bundle
    let err = oci.fails(&["create", "--bundle", "/no/such/bundle", &unique_id("bad")]);
    assert!(
        err.contains("/no/such/bundle") && err.contains("does not exist"),
        "{err}"
    );
    // missing config.json
    let err = oci.fails(&[
        "create",
        "--bundle",
        t.path().to_str().unwrap(),
        &unique_id("bad"),
    ]);
    assert!(err.contains("config.json does not exist"), "{err}");
    // invalid JSON
    std::fs::write(t.path().join("config.json"), "{\"ociVersion\": ").unwrap();
    let err = oci.fails(&[
        "create",
        "--bundle",
        t.path().to_str().unwrap(),
        &unique_id("bad"),
    ]);
    assert!(err.contains("invalid JSON"), "{err}");
    // valid JSON, wrong shape
    std::fs::write(
        t.path().join("config.json"),
        r#"{"ociVersion": "1.0.0", "process": {"args": "sh"}}"#,
    )
    .unwrap();
    let err = oci.fails(&[
        "create",
        "--bundle",
        t.path().to_str().unwrap(),
        &unique_id("bad"),
    ]);
    assert!(err.contains("invalid config"), "{err}");
    // missing rootfs
    let mut b = bundle(&["true"]);
    b.config["root"]["path"] = "/no/such/rootfs".into();
    b.write();
    let err = oci.fails(&[
        "create",
        "--bundle",
        b.path().to_str().unwrap(),
        &unique_id("bad"),
    ]);
    assert!(err.contains("/no/such/rootfs"), "{err}");
    // invalid id
    let b = bundle(&["true"]);
    let err = oci.fails(&["create", "--bundle", b.path().to_str().unwrap(), "a/b"]);
    assert!(err.contains("invalid container id"), "{err}");
    // unknown ids
    for verb in [
        &["start"][..],
        &["state"],
        &["kill"],
        &["delete"],
        &["pause"],
        &["ps"],
        &["events", "--stats"],
    ] {
        let mut args = verb.to_vec();
        args.push("no-such-container");
        let err = oci.fails(&args);
        assert!(err.contains("does not exist"), "{verb:?}: {err}");
    }
    // a missing executable fails at create, not silently at start
    let b = bundle(&["/bin/no-such-program"]);
    let err = oci.fails(&[
        "create",
        "--bundle",
        b.path().to_str().unwrap(),
        &unique_id("bad"),
    ]);
    assert!(err.contains("no-such-program"), "{err}");
    // unknown flags and commands
    let err = oci.fails(&["create", "--no-such-flag", "x"]);
    assert!(err.contains("--no-such-flag"), "{err}");
    let err = oci.fails(&["frobnicate"]);
    assert!(err.contains("frobnicate"), "{err}");
    // systemd cgroups are refused clearly
    let err = oci.fails(&["--systemd-cgroup", "list"]);
    assert!(err.contains("systemd"), "{err}");
    // nothing was left behind by any of it
    assert!(oci.ok(&["list", "-q"]).trim().is_empty());
    let leftovers: Vec<_> = std::fs::read_dir(oci.root.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            !n.starts_with('.')
                && !n.ends_with(".out")
                && !n.ends_with(".err")
                && n != "process.json"
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn spec_writes_a_default_config_once() {
    let t = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(berth())
        .args(["oci", "spec", "--bundle"])
        .arg(t.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.path().join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["root"]["path"], "rootfs");
    assert_eq!(cfg["process"]["noNewPrivileges"], true);
    let out = std::process::Command::new(berth())
        .args(["oci", "spec", "--bundle"])
        .arg(t.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists"));
}

#[test]
fn the_berth_runc_name_speaks_runc() {
    let t = tempfile::tempdir().unwrap();
    let link = t.path().join("berth-runc");
    std::os::unix::fs::symlink(berth(), &link).unwrap();
    let out = std::process::Command::new(&link)
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("spec: 1."));
    // Go-style single-dash flags, as runc accepts them
    let root = t.path().join("state");
    let out = std::process::Command::new(&link)
        .arg("-root")
        .arg(&root)
        .args(["list", "-format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
}

#[test]
fn kill_all_reaches_every_process_and_logs_are_json_when_asked() {
    if !root_or_skip("kill --all") {
        return;
    }
    let oci = Oci::new(&berth());
    let b = bundle(&["sh", "-c", "sleep 30 & sleep 30 & wait"]);
    let id = unique_id("kill-all");
    oci.detached(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    for _ in 0..200 {
        let ps: Vec<i32> = serde_json::from_str(&oci.ok(&["ps", "--format", "json", &id])).unwrap();
        if ps.len() == 3 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    oci.ok(&["kill", "--all", &id, "KILL"]);
    oci.wait_stopped(&id);
    // errors go to the log file as runc writes them for conmon
    let log = oci.root.path().join("runtime.log");
    let out = oci
        .cmd(&[
            "--log",
            log.to_str().unwrap(),
            "--log-format",
            "json",
            "state",
            "no-such-container",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let rec: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(rec["level"], "error");
    assert!(
        rec["msg"].as_str().unwrap().contains("does not exist"),
        "{text}"
    );
    assert!(rec["time"].as_str().unwrap().ends_with('Z'));
}
