//! Pod sandboxes (the engine's `PodRuntime`, through `berth pod` and
//! `berth run --pod`): containers of a pod share its network namespace
//! (one address, localhost between them, published ports), IPC and host
//! name, and live under its cgroup parent by QoS class; the address
//! survives a container's restart; stop gives the address back and keeps
//! containers from starting; removal leaves no mount, cgroup, namespace,
//! endpoint or file; a sandbox whose creation was killed is swept.

use std::path::{Path, PathBuf};

use berth_testutil::{Berth, http_get, root_or_skip};

fn berth() -> Option<Berth> {
    if !root_or_skip("pods") {
        return None;
    }
    Some(Berth::with_busybox(
        Path::new(env!("CARGO_BIN_EXE_berth")),
        "bb:1",
    ))
}

fn inspect(b: &Berth, pod: &str) -> serde_json::Value {
    let out = b.ok(&["pod", "inspect", pod]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v[0].clone()
}

/// The memory controller's directory of a cgroup path (cgroup v1 here;
/// the unified hierarchy when that is all there is).
fn cgroup_dir(path: &str) -> PathBuf {
    let v1 = Path::new("/sys/fs/cgroup/memory");
    let base = if v1.exists() {
        v1
    } else {
        Path::new("/sys/fs/cgroup")
    };
    base.join(path.trim_start_matches('/'))
}

fn mounts_under(dir: &Path) -> Vec<String> {
    let d = dir.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.split(' ').nth(4).is_some_and(|m| m.starts_with(&d)))
        .map(str::to_owned)
        .collect()
}

fn ns_of(b: &Berth, c: &str, kind: &str) -> String {
    b.ok(&["exec", c, "readlink", &format!("/proc/self/ns/{kind}")])
        .trim()
        .to_owned()
}

#[test]
fn containers_in_a_pod_share_its_namespaces_address_and_cgroup() {
    let Some(b) = berth() else { return };
    let port = berth_testutil::free_port();
    let id = b
        .ok(&[
            "pod",
            "create",
            "--name",
            "p1",
            "--hostname",
            "podhost",
            "-p",
            &format!("127.0.0.1:{port}:80"),
            "--add-host",
            "extra.test:198.18.9.9",
            "--sysctl",
            "net.ipv4.ip_unprivileged_port_start=100",
        ])
        .trim()
        .to_owned();
    assert_eq!(id.len(), 64, "{id}");
    let pod = inspect(&b, "p1");
    assert_eq!(pod["state"], "ready");
    let ip = pod["ip"].as_str().expect("an address").to_owned();
    assert!(ip.starts_with("198.18."), "{ip}");
    let ls = b.ok(&["pod", "ls"]);
    assert!(
        ls.contains("p1") && ls.contains("Ready") && ls.contains(&ip),
        "{ls}"
    );

    // a server in one container, reached from the other over localhost
    // and from the host through the pod's published port
    b.ok(&[
        "run",
        "-d",
        "--pod",
        "p1",
        "--name",
        "srv",
        "bb:1",
        "sh",
        "-c",
        "echo served > /tmp/i; exec httpd -f -p 80 -h /tmp",
    ]);
    b.ok(&[
        "run", "-d", "--pod", "p1", "--name", "cli", "bb:1", "sleep", "600",
    ]);
    let got = berth_testutil::wait_for("the server in the pod", || {
        let o = b.run(&["exec", "cli", "wget", "-q", "-O-", "http://127.0.0.1/i"]);
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
    });
    assert_eq!(got, "served\n");
    assert!(http_get(port, "/i").ends_with("served\n"));

    for kind in ["net", "ipc", "uts"] {
        assert_eq!(ns_of(&b, "srv", kind), ns_of(&b, "cli", kind), "{kind}");
    }
    // the pid and mount namespaces stay each container's own
    assert_ne!(ns_of(&b, "srv", "mnt"), ns_of(&b, "cli", "mnt"));
    assert_eq!(b.ok(&["exec", "cli", "hostname"]).trim(), "podhost");
    let hosts = b.ok(&["exec", "cli", "cat", "/etc/hosts"]);
    assert!(hosts.contains("198.18.9.9\textra.test"), "{hosts}");
    assert!(hosts.contains(&ip), "{hosts}");
    let addr = b.ok(&["exec", "cli", "ip", "-4", "-o", "addr", "show", "eth0"]);
    assert!(addr.contains(&format!("{ip}/")), "{addr}");
    let sysctl = b.ok(&[
        "exec",
        "cli",
        "cat",
        "/proc/sys/net/ipv4/ip_unprivileged_port_start",
    ]);
    assert_eq!(sysctl.trim(), "100");
    // IPC: a shared memory segment made in one is seen by the other
    b.ok(&["exec", "srv", "sh", "-c", "echo x > /dev/shm/mark"]);
    assert_eq!(b.ok(&["exec", "cli", "cat", "/dev/shm/mark"]), "x\n");

    // cgroups: the pod's parent (burstable by default), each container below
    let parent = pod["cgroup_parent"].as_str().unwrap().to_owned();
    assert_eq!(parent, format!("/berth/pods/burstable/{id}"));
    let srv_id = b.ok(&["inspect", "-f", "{{.Id}}", "srv"]).trim().to_owned();
    assert!(cgroup_dir(&parent).join(&srv_id).is_dir());

    // the address survives a container's restart
    b.ok(&["restart", "-t", "1", "srv"]);
    assert_eq!(inspect(&b, "p1")["ip"], ip.as_str());
    let again = berth_testutil::wait_for("the restarted server", || {
        let o = b.run(&["exec", "cli", "wget", "-q", "-O-", "http://127.0.0.1/i"]);
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
    });
    assert_eq!(again, "served\n");

    // flags the pod owns conflict with --pod
    let err = b.fails(&[
        "run",
        "--rm",
        "--pod",
        "p1",
        "--network",
        "none",
        "bb:1",
        "true",
    ]);
    assert!(err.contains("--network cannot be used with --pod"), "{err}");

    // removal: refused while containers run, then everything goes
    let err = b.fails(&["pod", "rm", "p1"]);
    assert!(err.contains("has running containers"), "{err}");
    b.ok(&["pod", "rm", "-f", "p1"]);
    assert_eq!(b.ok(&["ps", "-aq"]), "");
    assert_eq!(b.ok(&["pod", "ls", "-q"]), "");
    assert!(!cgroup_dir(&parent).exists(), "the pod's cgroup is gone");
    assert_eq!(mounts_under(&b.root()), Vec::<String>::new());
    assert!(
        std::fs::read_dir(b.root().join("sandboxes"))
            .map(|d| d.count())
            .unwrap_or(0)
            == 0,
        "no sandbox directory left"
    );
    let net: serde_json::Value =
        serde_json::from_str(&b.ok(&["network", "inspect", "bridge"])).unwrap();
    let eps = &net[0]["Containers"];
    assert!(
        eps.is_null() || eps.as_object().is_some_and(|m| m.is_empty()),
        "{eps}"
    );
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn a_stopped_pod_keeps_its_containers_from_starting_and_qos_places_cgroups() {
    let Some(b) = berth() else { return };
    b.ok(&[
        "pod",
        "create",
        "--name",
        "gp",
        "--qos",
        "guaranteed",
        "-m",
        "64m",
        "--network",
        "none",
    ]);
    b.ok(&[
        "pod",
        "create",
        "--name",
        "be",
        "--qos",
        "besteffort",
        "--network",
        "none",
    ]);
    let g = inspect(&b, "gp");
    let be = inspect(&b, "be");
    let gp = g["cgroup_parent"].as_str().unwrap().to_owned();
    let bp = be["cgroup_parent"].as_str().unwrap().to_owned();
    assert_eq!(gp, format!("/berth/pods/{}", g["id"].as_str().unwrap()));
    assert!(bp.starts_with("/berth/pods/besteffort/"), "{bp}");
    // the pod's own limit is on its cgroup
    if Path::new("/sys/fs/cgroup/memory").exists() {
        let limit = std::fs::read_to_string(cgroup_dir(&gp).join("memory.limit_in_bytes")).unwrap();
        assert_eq!(limit.trim(), (64 << 20).to_string());
    }
    assert_eq!(g["ip"], serde_json::Value::Null);
    b.ok(&[
        "run", "-d", "--pod", "gp", "--name", "gc", "bb:1", "sleep", "600",
    ]);
    let lo = b.ok(&["exec", "gc", "ip", "-o", "link"]);
    assert!(lo.contains("lo:") && !lo.contains("eth0"), "{lo}");

    b.ok(&["pod", "stop", "-t", "1", "gp"]);
    assert_eq!(inspect(&b, "gp")["state"], "not-ready");
    let st = b.ok(&["inspect", "-f", "{{.State.Status}}", "gc"]);
    assert_eq!(st.trim(), "exited");
    let err = b.fails(&["start", "gc"]);
    assert!(err.contains("is not ready"), "{err}");
    let err = b.fails(&["run", "--rm", "--pod", "gp", "bb:1", "true"]);
    assert!(err.contains("is not ready"), "{err}");
    // stopped: removal needs no force
    b.ok(&["pod", "rm", "gp", "be"]);
    assert_eq!(b.ok(&["ps", "-aq"]), "");
    assert!(!cgroup_dir(&gp).exists() && !cgroup_dir(&bp).exists());
}

#[test]
fn bad_pods_are_refused_and_leave_nothing() {
    let Some(b) = berth() else { return };
    b.ok(&["pod", "create", "--name", "dup", "--network", "none"]);
    let before = std::fs::read_dir(b.root().join("sandboxes"))
        .unwrap()
        .count();
    let err = b.fails(&["pod", "create", "--name", "dup", "--network", "none"]);
    assert!(err.contains("already in use"), "{err}");
    let err = b.fails(&["pod", "create", "--name", "bad/name"]);
    assert!(err.contains("invalid pod name"), "{err}");
    let err = b.fails(&[
        "pod",
        "create",
        "--name",
        "s1",
        "--sysctl",
        "kernel.hostname=x",
    ]);
    assert!(err.contains("kernel.hostname"), "{err}");
    let err = b.fails(&["pod", "create", "--name", "s2", "--network", "nosuchnet"]);
    assert!(err.contains("nosuchnet"), "{err}");
    let err = b.fails(&[
        "pod",
        "create",
        "--name",
        "s3",
        "--network",
        "none",
        "-p",
        "80",
    ]);
    assert!(
        err.contains("published ports need a bridge network"),
        "{err}"
    );
    let err = b.fails(&["pod", "create", "--name", "s4", "--qos", "gold"]);
    assert!(err.contains("invalid QoS class"), "{err}");
    let err = b.fails(&[
        "pod",
        "create",
        "--name",
        "s5",
        "--hostname",
        "é".repeat(40).as_str(),
    ]);
    assert!(err.contains("host name"), "{err}");
    assert_eq!(
        std::fs::read_dir(b.root().join("sandboxes"))
            .unwrap()
            .count(),
        before,
        "a refused pod left a directory"
    );
    let ls = b.ok(&["pod", "ls", "-q"]);
    assert_eq!(ls.lines().count(), 1, "{ls}");
    let err = b.fails(&["run", "--rm", "--pod", "nosuchpod", "bb:1", "true"]);
    assert!(err.contains("nosuchpod"), "{err}");
    b.ok(&["pod", "rm", "dup"]);
    assert_eq!(mounts_under(&b.root()), Vec::<String>::new());
}

#[test]
fn a_sandbox_whose_creation_was_killed_is_swept_at_the_next_start() {
    let Some(b) = berth() else { return };
    // what a create killed after making its namespaces leaves: the
    // directory with its "creating" mark naming a process that is gone,
    // and a mounted namespace file
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    let id = "ab".repeat(32);
    let dir = b.root().join("sandboxes").join(&id);
    std::fs::create_dir_all(dir.join("ns")).unwrap();
    std::fs::write(dir.join("creating"), format!("{pid} 1\n")).unwrap();
    let uts = dir.join("ns/uts");
    std::fs::write(&uts, "").unwrap();
    let st = std::process::Command::new("mount")
        .args(["--bind", "/proc/self/ns/uts"])
        .arg(&uts)
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(mounts_under(&dir).len(), 1);
    // any command opens the engine, which sweeps
    assert_eq!(b.ok(&["pod", "ls", "-q"]), "");
    assert!(!dir.exists(), "the half-made sandbox was swept");
    assert_eq!(mounts_under(&b.root()), Vec::<String>::new());
}

#[test]
fn a_container_lives_under_the_cgroup_parent_it_asks_for() {
    let Some(b) = berth() else { return };
    let parent = format!("/berth-test-parent-{}", std::process::id());
    let id = b
        .ok(&[
            "run",
            "-d",
            "--cgroup-parent",
            &parent,
            "--network",
            "none",
            "-m",
            "32m",
            "bb:1",
            "sleep",
            "600",
        ])
        .trim()
        .to_owned();
    let dir = cgroup_dir(&parent).join(&id);
    assert!(dir.is_dir(), "{}", dir.display());
    if Path::new("/sys/fs/cgroup/memory").exists() {
        let limit = std::fs::read_to_string(dir.join("memory.limit_in_bytes")).unwrap();
        assert_eq!(limit.trim(), (32 << 20).to_string());
    }
    let shown = b.ok(&["inspect", "-f", "{{.HostConfig.CgroupParent}}", &id]);
    assert_eq!(shown.trim(), parent);
    b.ok(&["rm", "-f", &id]);
    assert!(!dir.exists(), "the container's cgroup is gone");
    // the parent stays (as with docker); the test removes it everywhere
    for c in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let _ = std::fs::remove_dir(c.path().join(parent.trim_start_matches('/')));
    }
    let _ = std::fs::remove_dir(Path::new("/sys/fs/cgroup").join(parent.trim_start_matches('/')));
    // a parent outside the hierarchy is refused
    let err = b.fails(&["run", "--rm", "--cgroup-parent", "../../x", "bb:1", "true"]);
    assert!(err.contains("invalid cgroup parent"), "{err}");
}

/// Whether the process `pid` (started at `start`) still runs (not a zombie).
fn runs(pid: i64, start: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        let rest = s.rsplit_once(')').map(|(_, r)| r.trim()).unwrap_or("");
        let f: Vec<&str> = rest.split(' ').collect();
        f.first().is_some_and(|st| *st != "Z" && *st != "X") && f.get(19) == Some(&start)
    })
}

/// The start time (`/proc/<pid>/stat` field 22) of `pid`.
fn start_of(pid: i64) -> String {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = s
        .rsplit_once(')')
        .map(|(_, r)| r.trim())
        .unwrap()
        .to_owned();
    rest.split(' ').nth(19).unwrap().to_owned()
}

/// The pids of `parent`'s children on the host.
fn children_of(parent: i64) -> Vec<i64> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i64>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|s| {
                s.rsplit_once(')')
                    .and_then(|(_, r)| r.trim().split(' ').nth(1)?.parse::<i64>().ok())
                    == Some(parent)
            })
        })
        .collect()
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !ok() {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn a_pod_sharing_its_process_namespace_holds_it_with_a_pause_process() {
    let Some(b) = berth() else { return };
    b.ok(&[
        "pod",
        "create",
        "--name",
        "sp",
        "--network",
        "none",
        "--share-pid",
    ]);
    let pod = inspect(&b, "sp");
    assert_eq!(pod["state"], "ready");
    assert_eq!(pod["share_pid"], true);
    let pause = pod["pause_pid"].as_i64().unwrap();
    assert!(pause > 0, "{pod}");
    let start = start_of(pause);
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{pause}/cmdline")).unwrap(),
        "/pause\0"
    );
    let pause_ns = std::fs::read_link(format!("/proc/{pause}/ns/pid")).unwrap();
    // it lives in the pod's cgroup, and ignores SIGTERM
    let parent = pod["cgroup_parent"].as_str().unwrap().to_owned();
    let cg = std::fs::read_to_string(format!("/proc/{pause}/cgroup")).unwrap();
    assert!(cg.contains(&format!("{parent}/pause")), "{cg}");
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pause.to_string()])
        .status();
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(runs(pause, &start), "the pause process ignores SIGTERM");

    b.ok(&[
        "run", "-d", "--pod", "sp", "--name", "ca", "bb:1", "sleep", "3600",
    ]);
    b.ok(&[
        "run", "-d", "--pod", "sp", "--name", "cb", "bb:1", "sleep", "3601",
    ]);
    assert_eq!(ns_of(&b, "ca", "pid"), pause_ns.to_string_lossy());
    assert_eq!(ns_of(&b, "cb", "pid"), pause_ns.to_string_lossy());
    let ps = b.ok(&["exec", "cb", "ps"]);
    assert!(
        ps.contains("sleep 3600") && ps.contains("sleep 3601"),
        "{ps}"
    );
    let first = ps.lines().nth(1).unwrap_or("");
    assert!(
        first.split_whitespace().next() == Some("1") && first.ends_with("/pause"),
        "PID 1 is the pause process: {ps}"
    );
    assert_eq!(b.ok(&["exec", "ca", "cat", "/proc/1/cmdline"]), "/pause\0");

    // a container exits, another starts: the namespace stays
    assert_eq!(
        b.ok(&[
            "run",
            "--pod",
            "sp",
            "--name",
            "cc",
            "bb:1",
            "sh",
            "-c",
            "ps | grep -c 'sleep 360[01]'"
        ]),
        "2\n"
    );
    b.ok(&["stop", "-t", "1", "ca"]);
    assert!(runs(pause, &start));
    let ps = b.ok(&["exec", "cb", "ps"]);
    assert!(!ps.contains("sleep 3600"), "{ps}");
    b.ok(&["start", "ca"]);
    assert_eq!(ns_of(&b, "ca", "pid"), pause_ns.to_string_lossy());
    assert!(b.ok(&["exec", "cb", "ps"]).contains("sleep 3600"));

    // orphans are reaped by the pause process
    b.ok(&["exec", "ca", "sh", "-c", "(sleep 0.3 &); true"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !children_of(pause).is_empty() {
        let kids: Vec<String> = children_of(pause)
            .iter()
            .map(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default())
            .collect();
        assert!(
            std::time::Instant::now() < deadline,
            "the orphan is not reaped: {kids:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    // stop: the containers, then the pause process
    b.ok(&["pod", "stop", "-t", "1", "sp"]);
    assert!(!runs(pause, &start), "the pause process is gone after stop");
    assert_eq!(inspect(&b, "sp")["state"], "not-ready");
    let err = b.fails(&["start", "cb"]);
    assert!(
        err.contains("pause process is not running") || err.contains("not ready"),
        "{err}"
    );
    b.ok(&["pod", "rm", "-f", "sp"]);
    assert!(!cgroup_dir(&parent).exists(), "the pod's cgroup is gone");
    assert_eq!(mounts_under(&b.root()), Vec::<String>::new());
    assert_eq!(b.ok(&["ps", "-aq"]), "");
}

#[test]
fn a_pod_whose_pause_process_died_is_not_ready_and_removal_leaves_nothing() {
    let Some(b) = berth() else { return };
    b.ok(&[
        "pod",
        "create",
        "--name",
        "pk",
        "--network",
        "none",
        "--share-pid",
    ]);
    let pod = inspect(&b, "pk");
    let pause = pod["pause_pid"].as_i64().unwrap();
    let start = start_of(pause);
    let parent = pod["cgroup_parent"].as_str().unwrap().to_owned();
    b.ok(&[
        "run", "-d", "--pod", "pk", "--name", "k1", "bb:1", "sleep", "3600",
    ]);
    // as after a reboot: the holder is gone (and its namespace with it)
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &pause.to_string()])
        .status();
    wait_for("the pause process to die", || !runs(pause, &start));
    assert_eq!(inspect(&b, "pk")["state"], "not-ready");
    let err = b.fails(&["run", "-d", "--pod", "pk", "bb:1", "sleep", "1"]);
    assert!(err.contains("pause process is not running"), "{err}");
    b.ok(&["pod", "rm", "-f", "pk"]);
    assert!(!cgroup_dir(&parent).exists(), "the pod's cgroup is gone");
    assert_eq!(mounts_under(&b.root()), Vec::<String>::new());
    assert_eq!(b.ok(&["ps", "-aq"]), "");

    // without --share-pid: each container its own process namespace, no pause
    b.ok(&["pod", "create", "--name", "np", "--network", "none"]);
    let pod = inspect(&b, "np");
    assert_eq!(pod["share_pid"], false);
    assert_eq!(pod["pause_pid"], 0);
    b.ok(&[
        "run", "-d", "--pod", "np", "--name", "n1", "bb:1", "sleep", "3600",
    ]);
    b.ok(&[
        "run", "-d", "--pod", "np", "--name", "n2", "bb:1", "sleep", "3601",
    ]);
    assert_ne!(ns_of(&b, "n1", "pid"), ns_of(&b, "n2", "pid"));
    let ps = b.ok(&["exec", "n2", "ps"]);
    assert!(!ps.contains("sleep 3600"), "{ps}");
    assert_eq!(
        b.ok(&["exec", "n2", "cat", "/proc/1/cmdline"]),
        "sleep\u{0}3601\u{0}"
    );
    b.ok(&["pod", "rm", "-f", "np"]);
    assert_eq!(mounts_under(&b.root()), Vec::<String>::new());
}
