//! `berth server` on a private root and a free port, driven by real
//! Kubernetes clients: `kubectl` (the dispatcher at /usr/bin/kubectl picks
//! the kubectl of the server's minor version) and the Python `kubernetes`
//! client. A missing client skips the test, except under `CI=true`
//! ([`require`]).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::daemon::require;

fn runs(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `kubectl` ([`require`]).
pub fn have_kubectl() -> bool {
    require("kubectl", runs("kubectl", &["version", "--client"]))
}

/// Where the Python `kubernetes` client is installed, apart from the
/// system's packages (it needs urllib3 2, which breaks Debian's docker-py
/// 5): `pip install --target` into this directory (`.ci/run`,
/// `scripts/deps.sh`), or `$BERTH_KUBE_PYTHONPATH`.
pub fn kube_pythonpath() -> String {
    std::env::var("BERTH_KUBE_PYTHONPATH")
        .unwrap_or_else(|_| "/opt/berth-python-kubernetes".to_owned())
}

/// The Python `kubernetes` client ([`require`]).
pub fn have_kube_py() -> bool {
    let present = Command::new("python3")
        .args(["-c", "import kubernetes"])
        .env("PYTHONPATH", kube_pythonpath())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    require(
        "the Python kubernetes client (pip install --target /opt/berth-python-kubernetes kubernetes)",
        present,
    )
}

/// A running `berth server`, killed (SIGKILL) and reaped when dropped.
#[derive(Debug)]
pub struct KubeServer {
    child: Option<Child>,
    bin: PathBuf,
    /// The server's root.
    pub root: PathBuf,
    /// The admin kubeconfig.
    pub kubeconfig: PathBuf,
    /// The HTTPS port.
    pub port: u16,
    extra: Vec<String>,
    home: PathBuf,
    /// It runs a node agent: its root's containers are removed on drop.
    node: bool,
}

impl KubeServer {
    /// Starts `berth --root <dir>/root server` on a free port with `extra`
    /// flags and waits until it is ready.
    pub fn start(bin: &Path, dir: &Path, extra: &[&str]) -> KubeServer {
        let mut all = vec!["--disable-agent"];
        all.extend_from_slice(extra);
        KubeServer::start_with(bin, dir, &all)
    }

    /// Starts `berth server` with its node agent (node `test-node`) on a
    /// root of its own network ranges that holds the offline busybox image
    /// as `busybox:stable`, for workloads that run.
    pub fn start_node(bin: &Path, dir: &Path, extra: &[&str]) -> KubeServer {
        let root = dir.join("root");
        crate::cli::isolate_network(&root);
        let tar = crate::cli::busybox_tar(dir);
        let out = Command::new(bin)
            .args([
                "--root",
                &root.display().to_string(),
                "import",
                &tar.display().to_string(),
                "busybox:stable",
            ])
            .output()
            .expect("berth import");
        assert!(
            out.status.success(),
            "import busybox: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let kubelet_port = crate::free_port().to_string();
        let mut all = vec![
            "--node-name",
            "test-node",
            "--node-ip",
            "127.0.0.1",
            "--kubelet-port",
            &kubelet_port,
        ];
        // the kubelet's disk thresholds (15 % free for images) would refuse
        // pods on a build machine whose disk is well used: tests that are
        // not about eviction only keep a little room
        // the Ingress ports are the host's (80/443): off unless a test asks
        if !extra.contains(&"--ingress-http-port") {
            all.extend(["--ingress-http-port", "0", "--ingress-https-port", "0"]);
        }
        if !extra.contains(&"--eviction-hard") {
            all.extend([
                "--eviction-hard",
                "memory.available<50Mi,nodefs.available<1%",
            ]);
        }
        all.extend_from_slice(extra);
        KubeServer::start_with(bin, dir, &all)
    }

    fn start_with(bin: &Path, dir: &Path, extra: &[&str]) -> KubeServer {
        let root = dir.join("root");
        let home = dir.join("home");
        std::fs::create_dir_all(&home).expect("home");
        let mut server = KubeServer {
            child: None,
            bin: bin.to_owned(),
            kubeconfig: root.join("server").join("admin.kubeconfig"),
            root,
            port: crate::free_port(),
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            home,
            node: !extra.contains(&"--disable-agent"),
        };
        server.spawn();
        server
    }

    /// Starts one of several servers sharing `root` (and so one PKI; the
    /// store is in `extra`, e.g. `--datastore etcd://…`): its kubeconfig
    /// and client files are under `home`.
    pub fn start_shared(bin: &Path, root: &Path, home: &Path, extra: &[&str]) -> KubeServer {
        std::fs::create_dir_all(home).expect("home");
        let kubeconfig = home.join("admin.kubeconfig");
        let mut all: Vec<String> = vec![
            "--disable-agent".to_owned(),
            "--write-kubeconfig".to_owned(),
            kubeconfig.display().to_string(),
        ];
        all.extend(extra.iter().map(|s| (*s).to_owned()));
        let mut server = KubeServer {
            child: None,
            bin: bin.to_owned(),
            kubeconfig,
            root: root.to_owned(),
            port: crate::free_port(),
            extra: all,
            home: home.to_owned(),
            node: false,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.home.join("server.log"))
            .expect("server log");
        let port = self.port.to_string();
        let mut args = vec![
            "--root".to_owned(),
            self.root.display().to_string(),
            "server".to_owned(),
            "--https-port".to_owned(),
            port,
        ];
        args.extend(self.extra.iter().cloned());
        let child = Command::new(&self.bin)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start berth server");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("berth server exited: {status}\n{}", self.log());
            }
            if self.kubeconfig.exists() {
                let out = self.kubectl(&["get", "--raw", "/readyz"]);
                if out.status.success() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "berth server not ready in 30 s\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `berth --root <its root> ARGS` (the engine's view of the node); stdout.
    pub fn berth(&self, args: &[&str]) -> String {
        let out = Command::new(&self.bin)
            .arg("--root")
            .arg(&self.root)
            .args(args)
            .output()
            .expect("run berth");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl get … -o jsonpath=PATH` polled until `ok` holds (up to
    /// `secs` seconds); the last value, or a panic with the server's log.
    pub fn wait_for(
        &self,
        what: &[&str],
        path: &str,
        secs: u64,
        ok: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let jsonpath = format!("jsonpath={path}");
        let mut args: Vec<&str> = vec!["get"];
        args.extend_from_slice(what);
        args.extend_from_slice(&["-o", &jsonpath]);
        loop {
            let out = self.kubectl(&args);
            let v = String::from_utf8_lossy(&out.stdout).into_owned();
            if out.status.success() && ok(&v) {
                return v;
            }
            if Instant::now() > deadline {
                let describe = self.kubectl(&["describe", what.first().copied().unwrap_or("pods")]);
                panic!(
                    "{what:?} {path}: last {v:?} {}\n{}\n{}",
                    String::from_utf8_lossy(&out.stderr),
                    String::from_utf8_lossy(&describe.stdout),
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.home.join("server.log")).unwrap_or_default()
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Waits up to `limit` for the server to exit on its own.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server with SIGKILL and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same root and port.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// The environment kubectl and the Python client run with: this
    /// server's kubeconfig, a private HOME and discovery cache.
    pub fn env(&self) -> Vec<(&'static str, std::ffi::OsString)> {
        vec![
            ("KUBECONFIG", self.kubeconfig.clone().into()),
            ("HOME", self.home.clone().into()),
            ("KUBECACHEDIR", self.home.join("cache").into()),
            ("KUBECTL_KUBERC", "false".into()),
        ]
    }

    /// `kubectl ARGS`.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        Command::new("kubectl")
            .args(args)
            .envs(self.env())
            .stdin(Stdio::null())
            .output()
            .expect("run kubectl")
    }

    /// `kubectl ARGS` with `input` on stdin.
    pub fn kubectl_in(&self, args: &[&str], input: &str) -> Output {
        let mut child = Command::new("kubectl")
            .args(args)
            .envs(self.env())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kubectl");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
        child.wait_with_output().expect("kubectl output")
    }

    /// `kubectl ARGS`, which must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl ARGS`, which must fail; its stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            !out.status.success(),
            "kubectl {args:?} succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `kubectl apply -f -` of `yaml`, which must succeed.
    pub fn apply(&self, yaml: &str) -> String {
        let out = self.kubectl_in(&["apply", "-f", "-"], yaml);
        assert!(
            out.status.success(),
            "kubectl apply failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A Python program using the `kubernetes` client against this
    /// server (`config.load_kube_config()` is done first); its output.
    pub fn python(&self, program: &str) -> Output {
        let script = format!(
            "from kubernetes import client, config, watch\nconfig.load_kube_config()\n{program}"
        );
        Command::new("python3")
            .args(["-c", &script])
            .envs(self.env())
            .env("PYTHONPATH", kube_pythonpath())
            .stdin(Stdio::null())
            .output()
            .expect("run python3")
    }
}

/// A writer storm: the Python client creating ConfigMaps `storm-N` in
/// `default` as fast as it can through one server, each printed once
/// acknowledged (name and resourceVersion). It ends when the server goes.
#[derive(Debug)]
pub struct WriteStorm {
    child: Child,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
    /// The acknowledged writes so far: (name, resourceVersion).
    pub acked: Vec<(String, i64)>,
}

impl WriteStorm {
    /// Starts a storm through `server`.
    pub fn start(server: &KubeServer) -> WriteStorm {
        let script = "from kubernetes import client, config\nconfig.load_kube_config()\nv1 = client.CoreV1Api()\nfor i in range(1000000):\n    cm = v1.create_namespaced_config_map('default', client.V1ConfigMap(metadata=client.V1ObjectMeta(name=f'storm-{i}')))\n    print(cm.metadata.name, cm.metadata.resource_version, flush=True)\n";
        let mut child = Command::new("python3")
            .args(["-c", script])
            .envs(server.env())
            .env("PYTHONPATH", kube_pythonpath())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the writer");
        let stdout = child.stdout.take().expect("writer stdout");
        use std::io::BufRead;
        WriteStorm {
            child,
            lines: std::io::BufReader::new(stdout).lines(),
            acked: Vec::new(),
        }
    }

    fn read_one(&mut self) -> bool {
        let Some(Ok(line)) = self.lines.next() else {
            return false;
        };
        let mut parts = line.split_whitespace();
        if let (Some(name), Some(rv)) = (parts.next(), parts.next().and_then(|r| r.parse().ok())) {
            self.acked.push((name.to_owned(), rv));
        }
        true
    }

    /// Waits until `n` writes were acknowledged.
    pub fn wait_for(&mut self, n: usize) {
        while self.acked.len() < n {
            assert!(
                self.read_one(),
                "the writer stopped after {} writes",
                self.acked.len()
            );
        }
    }

    /// Reads what the writer acknowledged until it stopped (its server is
    /// gone), stops it and returns every acknowledged write.
    pub fn finish(mut self) -> Vec<(String, i64)> {
        while self.read_one() {}
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::take(&mut self.acked)
    }
}

impl KubeServer {
    /// The ConfigMaps in `default`: name → resourceVersion.
    pub fn configmap_versions(&self) -> std::collections::HashMap<String, i64> {
        let list: serde_json::Value = serde_json::from_str(&self.ok(&[
            "get",
            "--raw",
            "/api/v1/namespaces/default/configmaps",
        ]))
        .expect("a list");
        list["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|i| {
                let name = i["metadata"]["name"].as_str()?.to_owned();
                let rv = i["metadata"]["resourceVersion"].as_str()?.parse().ok()?;
                Some((name, rv))
            })
            .collect()
    }
}

impl Drop for KubeServer {
    fn drop(&mut self) {
        self.kill();
        if self.node {
            crate::cli::clean_root(&self.bin, &self.root);
        }
    }
}
