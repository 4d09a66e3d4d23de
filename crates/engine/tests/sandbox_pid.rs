//! A pod sandbox sharing one PID namespace among its containers
//! (`SandboxSpec::share_pid`), through the engine's own API: its pause
//! process is PID 1, the containers see each other's processes, one can
//! end and another start in the same namespace, `PidMode::Sandbox` is
//! refused where it cannot work, and stop and removal leave no process,
//! mount or cgroup.
//!
//! No test harness: the engine starts `/proc/self/exe` as each container's
//! monitor and as the sandbox's pause process, so this binary answers as
//! those when asked to. Needs root (skipped otherwise).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_engine::config::{NetworkMode, PidMode};
use berth_engine::sandbox::{QosClass, SandboxNetwork, SandboxSpec, SandboxState};
use berth_engine::{ContainerSpec, Engine, PodRuntime};

/// Runs the engine's helper processes when this binary is started as one.
fn engine_helpers(args: &[OsString]) {
    if let Some((root, id)) = berth_engine::sandbox::pause_request(args) {
        berth_engine::sandbox::pause_main(&root, &id);
    }
    let arg = |i: usize| args.get(i).map(|a| a.to_string_lossy().into_owned());
    if arg(1).as_deref() == Some("monitor") {
        let root = PathBuf::from(arg(2).unwrap_or_default());
        let id = arg(3).unwrap_or_default();
        if args.len() == 4 || (args.len() == 6 && arg(4).as_deref() == Some("--exec")) {
            berth_engine::monitor::main(&root, &id, arg(5).as_deref());
        }
        if arg(4).as_deref() == Some("--resume") {
            let rest: Vec<String> = args[5..]
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            berth_engine::monitor::resume_main(&root, &id, &rest);
        }
    }
}

fn main() {
    let args: Vec<OsString> = std::env::args_os().collect();
    engine_helpers(&args);
    if !berth_testutil::root_or_skip("sandbox_pid") {
        return;
    }
    let tests: [(&str, TestFn); 3] = [
        (
            "containers_of_a_share_pid_sandbox_live_in_one_namespace_under_its_pause_process",
            containers_of_a_share_pid_sandbox_live_in_one_namespace_under_its_pause_process,
        ),
        (
            "pid_mode_sandbox_is_refused_where_it_cannot_work",
            pid_mode_sandbox_is_refused_where_it_cannot_work,
        ),
        (
            "a_sandbox_without_share_pid_keeps_a_namespace_per_container",
            a_sandbox_without_share_pid_keeps_a_namespace_per_container,
        ),
    ];
    let filter = args
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .find(|a| !a.starts_with('-'));
    let node = Node::start();
    let mut ran = 0;
    for (name, test) in tests {
        if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        println!("test {name} ...");
        test(&node);
        println!("test {name} ... ok");
        ran += 1;
    }
    println!("test result: ok. {ran} passed");
}

/// One test: a function of the shared node.
type TestFn = fn(&Node);

struct Node {
    _dir: tempfile::TempDir,
    root: PathBuf,
    engine: Engine,
}

impl Node {
    fn start() -> Node {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let engine = Engine::open(&root).unwrap();
        let tar = berth_testutil::busybox_tar(dir.path());
        let reference = berth_types::Reference::parse("bb:1").unwrap();
        engine
            .import_image(
                std::fs::File::open(&tar).unwrap(),
                Default::default(),
                None,
                Some(&reference),
            )
            .unwrap();
        Node {
            _dir: dir,
            root,
            engine,
        }
    }

    fn sandbox(&self, name: &str, share_pid: bool) -> String {
        self.engine
            .run_sandbox(&SandboxSpec {
                name: name.into(),
                hostname: name.into(),
                network: SandboxNetwork::None,
                ports: Vec::new(),
                dns: Default::default(),
                extra_hosts: Vec::new(),
                qos: QosClass::BestEffort,
                resources: Default::default(),
                shm_size: None,
                sysctls: BTreeMap::new(),
                labels: BTreeMap::new(),
                share_pid,
                fqdn: None,
            })
            .unwrap()
    }

    fn spec(name: &str, script: &str) -> ContainerSpec {
        ContainerSpec {
            name: Some(name.into()),
            image: "bb:1".into(),
            cmd: Some(vec!["sh".into(), "-c".into(), script.into()]),
            ..Default::default()
        }
    }

    /// Creates and starts a container in the sandbox.
    fn run(&self, sandbox: &str, name: &str, script: &str) -> String {
        let made = self
            .engine
            .create_in_sandbox(sandbox, &Node::spec(name, script))
            .unwrap();
        self.engine.start(&made.id, || Ok(())).unwrap();
        made.id
    }

    /// The pod's /dev/shm on the host (where the containers leave notes).
    fn shm(&self, sandbox: &str) -> PathBuf {
        self.root.join("sandboxes").join(sandbox).join("shm")
    }

    fn exited(&self, id: &str) -> bool {
        self.engine
            .container(id)
            .is_ok_and(|c| c.state.status == berth_engine::Status::Exited)
    }
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// The mounts under `dir`.
fn mounts_under(dir: &Path) -> Vec<String> {
    let d = dir.to_string_lossy().into_owned();
    read(Path::new("/proc/self/mountinfo"))
        .lines()
        .filter(|l| l.split(' ').nth(4).is_some_and(|m| m.starts_with(&d)))
        .map(str::to_owned)
        .collect()
}

fn cgroup_dir(path: &str) -> PathBuf {
    let v1 = Path::new("/sys/fs/cgroup/memory");
    let base = if v1.exists() {
        v1
    } else {
        Path::new("/sys/fs/cgroup")
    };
    base.join(path.trim_start_matches('/'))
}

/// Whether `pid` runs with this start time (not a zombie).
fn runs(pid: i32, start: u64) -> bool {
    read(Path::new(&format!("/proc/{pid}/stat")))
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect::<Vec<_>>())
        .is_some_and(|f| {
            f.first().is_some_and(|s| *s != "Z" && *s != "X")
                && f.get(19).and_then(|s| s.parse().ok()) == Some(start)
        })
}

fn containers_of_a_share_pid_sandbox_live_in_one_namespace_under_its_pause_process(n: &Node) {
    let id = n.sandbox("shared", true);
    let sb = n.engine.sandbox(&id).unwrap();
    assert!(sb.share_pid && sb.pause_alive(), "{sb:?}");
    let (pause, start) = (sb.pause_pid, sb.pause_start);
    assert_eq!(
        read(Path::new(&format!("/proc/{pause}/cmdline"))),
        "/pause\0"
    );
    let ns = std::fs::read_link(format!("/proc/{pause}/ns/pid")).unwrap();
    let shm = n.shm(&id);

    let long = n.run(&id, "long", "sleep 3600");
    let c = n.engine.container(&long).unwrap();
    assert_eq!(c.record.namespaces.pid, PidMode::Sandbox(id.clone()));
    let pid = c.state.pid;
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap(),
        ns
    );

    // a second one sees the first's processes, and PID 1 is the pause process
    let look = n.run(
        &id,
        "look",
        "ps > /dev/shm/ps; tr '\\0' ' ' < /proc/1/cmdline > /dev/shm/pid1",
    );
    wait_until("the look container to exit", || n.exited(&look));
    let ps = read(&shm.join("ps"));
    assert!(ps.contains("sleep 3600"), "{ps}");
    assert_eq!(read(&shm.join("pid1")).trim(), "/pause");
    assert!(runs(pause, start), "the namespace outlives a container");

    // another starts in the same namespace after that one ended
    let again = n.run(&id, "again", "ps > /dev/shm/ps2");
    wait_until("the next container to exit", || n.exited(&again));
    assert!(read(&shm.join("ps2")).contains("sleep 3600"));
    // and the first one restarts in it too
    n.engine.stop(&long, Some(1)).unwrap();
    assert!(runs(pause, start));
    n.engine.start(&long, || Ok(())).unwrap();
    let pid = n.engine.container(&long).unwrap().state.pid;
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap(),
        ns
    );

    // stop: the containers, then the pause process
    n.engine.stop_sandbox(&id, Some(1)).unwrap();
    assert!(!runs(pause, start), "the pause process is gone after stop");
    assert_eq!(n.engine.sandbox(&id).unwrap().state, SandboxState::NotReady);
    assert!(n.engine.start(&long, || Ok(())).is_err());
    let parent = sb.cgroup_parent.clone();
    n.engine.remove_sandbox(&id).unwrap();
    assert!(!cgroup_dir(&parent).exists(), "the pod's cgroup is gone");
    assert_eq!(mounts_under(&n.root), Vec::<String>::new());
    assert!(n.engine.sandbox_containers(&id).is_err());
    assert!(!n.root.join("sandboxes").join(&id).exists());
}

fn pid_mode_sandbox_is_refused_where_it_cannot_work(n: &Node) {
    let own = n.sandbox("own", false);
    let shared = n.sandbox("shared2", true);
    // a sandbox without a shared namespace
    let mut spec = Node::spec("refused1", "true");
    spec.network.mode = NetworkMode::Sandbox(own.clone());
    spec.namespaces.pid = PidMode::Sandbox(own.clone());
    let err = n.engine.create(&spec).unwrap_err().to_string();
    assert!(err.contains("does not share a process namespace"), "{err}");
    // a container outside the sandbox
    let mut spec = Node::spec("refused2", "true");
    spec.network.mode = NetworkMode::None;
    spec.namespaces.pid = PidMode::Sandbox(shared.clone());
    let err = n.engine.create(&spec).unwrap_err().to_string();
    assert!(err.contains("only as one of its containers"), "{err}");
    // a namespace whose pause process is gone (as after a reboot)
    let sb = n.engine.sandbox(&shared).unwrap();
    let created = n
        .engine
        .create_in_sandbox(&shared, &Node::spec("made-before", "true"))
        .unwrap();
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(sb.pause_pid).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    wait_until("the pause process to die", || {
        !runs(sb.pause_pid, sb.pause_start)
    });
    assert_eq!(
        n.engine.sandbox(&shared).unwrap().state,
        SandboxState::NotReady
    );
    let err = n
        .engine
        .create_in_sandbox(&shared, &Node::spec("refused3", "true"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("pause process is not running"), "{err}");
    let err = n
        .engine
        .start(&created.id, || Ok(()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("pause process is not running"), "{err}");
    for s in [&own, &shared] {
        n.engine.remove_sandbox(s).unwrap();
    }
    assert_eq!(mounts_under(&n.root), Vec::<String>::new());
}

fn a_sandbox_without_share_pid_keeps_a_namespace_per_container(n: &Node) {
    let id = n.sandbox("apart", false);
    let sb = n.engine.sandbox(&id).unwrap();
    assert!(!sb.share_pid && sb.pause_pid == 0 && !sb.pause_alive());
    let long = n.run(&id, "apart-long", "sleep 3600");
    let look = n.run(
        &id,
        "apart-look",
        "ps > /dev/shm/ps; tr '\\0' ' ' < /proc/1/cmdline > /dev/shm/pid1",
    );
    wait_until("the look container to exit", || n.exited(&look));
    let c = n.engine.container(&long).unwrap();
    assert_eq!(c.record.namespaces.pid, PidMode::Private);
    let ps = read(&n.shm(&id).join("ps"));
    assert!(ps.contains("ps") && !ps.contains("sleep 3600"), "{ps}");
    let pid1 = read(&n.shm(&id).join("pid1"));
    // its own init (the shell exec'd its last command) is PID 1
    assert!(pid1.starts_with("tr "), "{pid1:?}");
    n.engine.remove_sandbox(&id).unwrap();
    assert_eq!(mounts_under(&n.root), Vec::<String>::new());
}
