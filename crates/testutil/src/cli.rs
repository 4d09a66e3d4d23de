//! Running the `berth` CLI against a private root, and a real registry
//! (Debian's `docker-registry`, the reference distribution server) on
//! loopback.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `berth` with its own root, config file and Docker config directory.
#[derive(Debug)]
pub struct Berth {
    /// The binary.
    pub bin: PathBuf,
    /// Temporary directory holding `root/`, `daemon.json`, `docker/`.
    pub dir: tempfile::TempDir,
}

impl Drop for Berth {
    /// Removes what the root put in the kernel (bridges, veths, its nft
    /// table); the files go with the temporary directory.
    fn drop(&mut self) {
        clean_root(&self.bin, &self.root());
    }
}

/// Removes what a root put in the kernel and left running (containers,
/// pod sandboxes, bridges, veths, its nft table); the files stay.
pub fn clean_root(bin: &Path, root: &Path) {
    let root = root.to_owned();
    let cmd = |args: &[&str]| {
        let _ = Command::new(bin)
            .arg("--root")
            .arg(&root)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    };
    // containers a failed test left running: their monitors (the
    // containers die with them)
    let mut left = Vec::new();
    for e in std::fs::read_dir(root.join("containers"))
        .into_iter()
        .flatten()
        .flatten()
    {
        left.push(e.file_name().to_string_lossy().into_owned());
        let pid = std::fs::read(e.path().join("state.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|v| {
                v["monitor_pid"]
                    .as_i64()
                    .or_else(|| v["MonitorPid"].as_i64())
            })
            .filter(|p| *p > 0)
            .and_then(|p| rustix::process::Pid::from_raw(p as i32));
        if let Some(pid) = pid {
            let cmdline = std::fs::read(format!("/proc/{}/cmdline", pid.as_raw_nonzero()))
                .unwrap_or_default();
            // still our monitor (not a reused pid)
            if String::from_utf8_lossy(&cmdline).contains(&*root.to_string_lossy()) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
    }
    if !left.is_empty() {
        // removal takes them off their networks and unmounts their namespaces
        let mut args = vec!["rm", "-f", "-v"];
        args.extend(left.iter().map(String::as_str));
        cmd(&args);
    }
    let sandboxes: Vec<String> = std::fs::read_dir(root.join("sandboxes"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    if !sandboxes.is_empty() {
        let mut args = vec!["pod", "rm", "-f"];
        args.extend(sandboxes.iter().map(String::as_str));
        cmd(&args);
    }
    // the root's DNS server, if a test started one (its pid is in the
    // lock it holds)
    if let Ok(f) = std::fs::File::open(root.join("dns.lock"))
        && rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockShared).is_err()
        && let Some(pid) = std::fs::read_to_string(root.join("dns.lock"))
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
            .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
    if root.join("networks").exists()
        && let Ok(net) = berth_net::Net::open(&root)
        && let Err(e) = net.teardown()
    {
        eprintln!("network teardown of {}: {e}", root.display());
    }
}

impl Berth {
    /// A fresh root.
    pub fn new(bin: &Path) -> Berth {
        let dir = tempfile::Builder::new()
            .prefix("berth-cli-")
            .tempdir()
            .expect("tempdir");
        isolate_network(&dir.path().join("root"));
        Berth {
            bin: bin.to_path_buf(),
            dir,
        }
    }

    /// A fresh root holding the offline busybox image as `name`
    /// (`berth import`).
    pub fn with_busybox(bin: &Path, name: &str) -> Berth {
        let b = Berth::new(bin);
        let tar = busybox_tar(b.dir.path());
        b.ok(&["import", tar.to_str().expect("utf-8 path"), name]);
        b
    }

    /// berth's root.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// Writes berth's config file (`daemon.json`).
    pub fn config(&self, json: &serde_json::Value) {
        std::fs::write(self.dir.path().join("daemon.json"), json.to_string())
            .expect("write daemon.json");
    }

    /// Writes the Docker config file (credentials).
    pub fn docker_config(&self, json: &serde_json::Value) {
        let d = self.dir.path().join("docker");
        std::fs::create_dir_all(&d).expect("mkdir");
        std::fs::write(d.join("config.json"), json.to_string()).expect("write config.json");
    }

    /// A command with the environment set.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(args)
            .env("BERTH_ROOT", self.root())
            .env("BERTH_CONFIG", self.dir.path().join("daemon.json"))
            .env("DOCKER_CONFIG", self.dir.path().join("docker"))
            .stdin(Stdio::null());
        c
    }

    /// Runs to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run berth")
    }

    /// Runs; must succeed; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "berth {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// A directory `name` under the test's directory holding `files`
    /// (relative path, content): a build context.
    pub fn context(&self, name: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = self.dir.path().join(name);
        std::fs::create_dir_all(&dir).expect("mkdir context");
        for (p, content) in files {
            let f = dir.join(p);
            std::fs::create_dir_all(f.parent().expect("a parent")).expect("mkdir");
            std::fs::write(&f, content).expect("write a context file");
        }
        dir
    }

    /// `berth build ARGS`: success, stdout, stderr.
    pub fn build(&self, args: &[&str]) -> (bool, String, String) {
        let mut a = vec!["build"];
        a.extend_from_slice(args);
        let o = self.run(&a);
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    /// `berth image inspect WHAT`, the one object.
    pub fn inspect_image(&self, what: &str) -> serde_json::Value {
        let out = self.ok(&["image", "inspect", what]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("inspect JSON");
        v[0].clone()
    }

    /// Runs; must fail; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            !o.status.success(),
            "berth {args:?} should have failed:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stderr).into_owned()
    }
}

/// Everything an image operation could leave behind in a root: the image
/// list, every row of the image database, the blobs, the snapshot
/// directories and the files being written. A failed operation must leave
/// it exactly as it found it.
#[derive(Debug, PartialEq, Eq)]
pub struct StoreState {
    /// `berth images -a --no-trunc`.
    pub images: String,
    /// Every row of every table of `images.db`.
    pub db: Vec<String>,
    /// `content/blobs/sha256/*`.
    pub blobs: Vec<String>,
    /// `snapshots/*`.
    pub snapshots: Vec<String>,
    /// `content/ingest/*`.
    pub ingest: Vec<String>,
}

/// The sorted names in a directory (none if it does not exist).
pub fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

impl Berth {
    /// The state of the root's image store (see [`StoreState`]).
    pub fn store_state(&self) -> StoreState {
        let images = self.ok(&["images", "-a", "--no-trunc"]);
        let root = self.root();
        let db = berth_image::db::Db::open(&root.join("images.db"))
            .and_then(|db| db.dump())
            .expect("read images.db");
        StoreState {
            images,
            db,
            blobs: names_in(&root.join("content/blobs/sha256")),
            snapshots: names_in(&root.join("snapshots")),
            ingest: names_in(&root.join("content/ingest")),
        }
    }
}

/// Polls `f` until it gives something (panicking with `what` after a
/// minute: the thing never happened).
pub fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(t) = f() {
            return t;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A child process that is killed (by PID) and reaped when dropped, even
/// when a failed assert (or a SIGSTOP the test sent) left it running.
#[derive(Debug)]
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// `GET path` over HTTP/1.0 on 127.0.0.1:`port`: the whole answer (head
/// and body), retried for ten seconds until something answers.
pub fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n");
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            if !out.is_empty() {
                return out;
            }
        }
        assert!(Instant::now() < end, "nothing answered on 127.0.0.1:{port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The body of `GET /` at `addr` (`ip:port`), trimmed, in one try with
/// two-second timeouts; the error names what failed.
pub fn http_body(addr: &str) -> Result<String, String> {
    use std::io::{Read, Write};
    let sa: std::net::SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    let mut s = std::net::TcpStream::connect_timeout(&sa, Duration::from_secs(2))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok();
    write!(s, "GET / HTTP/1.0\r\nHost: x\r\n\r\n").map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| e.to_string())?;
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.trim().to_owned())
        .ok_or_else(|| format!("no HTTP answer from {addr}: {out:?}"))
}

/// Waits until something accepts connections on `port`.
pub fn wait_port(port: u16, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(st)) = child.try_wait() {
            panic!("{what} exited early: {st}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not listen on 127.0.0.1:{port}");
}

/// A process this test started, killed (by PID) and reaped when dropped.
#[derive(Debug)]
pub struct Server {
    /// The process.
    pub child: Child,
    /// Its port.
    pub port: u16,
    /// Its working directory.
    pub dir: tempfile::TempDir,
}

impl Server {
    /// `127.0.0.1:port`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts Debian's `docker-registry` (distribution 2.8) on loopback, with
/// optional htpasswd lines (bcrypt) for basic auth. None (and a printed
/// reason) when it is not installed.
pub fn docker_registry(htpasswd: Option<&str>) -> Option<Server> {
    if Command::new("docker-registry")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipping: docker-registry is not installed (apt-get install docker-registry)");
        return None;
    }
    let dir = tempfile::Builder::new()
        .prefix("dreg-")
        .tempdir()
        .expect("tempdir");
    let port = free_port();
    let auth = match htpasswd {
        Some(lines) => {
            std::fs::write(dir.path().join("htpasswd"), lines).expect("htpasswd");
            format!(
                "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                dir.path().join("htpasswd").display()
            )
        }
        None => String::new(),
    };
    let cfg = format!(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
         http:\n  addr: 127.0.0.1:{port}\n{auth}",
        dir.path().join("data").display()
    );
    std::fs::write(dir.path().join("config.yml"), cfg).expect("config");
    let mut child = Command::new("docker-registry")
        .arg("serve")
        .arg(dir.path().join("config.yml"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("log")).expect("log"))
        .spawn()
        .expect("start docker-registry");
    wait_port(port, &mut child, "docker-registry");
    Some(Server { child, port, dir })
}

/// A tar of the busybox rootfs (for `berth import`).
pub fn busybox_tar(into: &Path) -> PathBuf {
    let tar = into.join("busybox.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(crate::busybox_rootfs())
        .args(["--exclude=./.complete", "-cf"])
        .arg(&tar)
        .arg(".")
        .status()
        .expect("tar");
    assert!(st.success(), "tar the busybox rootfs");
    tar
}

/// Gives `root` its own bridges, nft table and address ranges, so tests
/// running at once never share network state (198.18.150+ and
/// 198.19.128/17: away from berth's defaults and from berth-net's own
/// tests).
pub fn isolate_network(root: &Path) {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst) % 32;
    let tag = format!("{}{n}", std::process::id() % 100_000);
    std::fs::create_dir_all(root).expect("mkdir root");
    let net = serde_json::json!({
        "table": format!("bt_{tag}"),
        "default_bridge": format!("bt{tag}"),
        "default_subnet": format!("198.18.{}.0/24", 150 + n),
        "pool": format!("198.19.{}.0/22", 128 + n * 4),
        "pool_prefix": 24,
    });
    std::fs::write(root.join("net.json"), net.to_string()).expect("write net.json");
}
