//! `berth daemon` on a private socket, driven by real Docker clients: the
//! `docker` CLI, docker-py (`python3`), `docker-compose`, and raw HTTP for
//! status codes and shapes no client shows.
//!
//! A client that is not installed makes the test skip with the reason on
//! stderr, except under `CI=true`, where it fails ([`require`]).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use crate::cli::{Berth, wait_for};

/// Whether a client the test needs is there. Missing: under `CI=true` a
/// panic (CI installs every client), otherwise a note on stderr and false.
pub fn require(what: &str, present: bool) -> bool {
    if present {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{what} is missing; CI installs it (.ci/run, scripts/deps.sh)"
    );
    eprintln!("skipping: {what} is not installed (scripts/deps.sh installs it)");
    false
}

fn runs(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The `docker` CLI ([`require`]).
pub fn have_docker() -> bool {
    require("the docker CLI", runs("docker", &["--version"]))
}

/// docker-py for `python3` ([`require`]).
pub fn have_docker_py() -> bool {
    require(
        "docker-py (python3 -c 'import docker')",
        runs("python3", &["-c", "import docker"]),
    )
}

/// `docker-compose` v1 ([`require`]).
pub fn have_compose() -> bool {
    require("docker-compose", runs("docker-compose", &["version"]))
}

/// A root with the offline busybox image as `bb:1` and a daemon over it,
/// when the test can run (root, the docker CLI; see [`require`]).
pub fn busybox_daemon(bin: &Path) -> Option<(Berth, Daemon)> {
    if !crate::root_or_skip("berth daemon") || !have_docker() {
        return None;
    }
    let b = Berth::with_busybox(bin, "bb:1");
    let d = Daemon::start(&b);
    Some((b, d))
}

/// A running `berth daemon` over a [`Berth`] root, killed when dropped.
#[derive(Debug)]
pub struct Daemon {
    child: Child,
    /// The API socket.
    pub sock: PathBuf,
}

impl Daemon {
    /// Starts the daemon on `<dir>/docker.sock` and waits for the socket.
    pub fn start(b: &Berth) -> Daemon {
        let sock = b.dir.path().join("docker.sock");
        let _ = std::fs::remove_file(&sock);
        let log = std::fs::File::create(b.dir.path().join("daemon.log")).expect("daemon log");
        let mut child = b
            .cmd(&["daemon", "-H", &format!("unix://{}", sock.display())])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start berth daemon");
        wait_for("the daemon's socket", || {
            if let Ok(Some(st)) = child.try_wait() {
                panic!(
                    "berth daemon exited: {st}\n{}",
                    std::fs::read_to_string(b.dir.path().join("daemon.log")).unwrap_or_default()
                );
            }
            UnixStream::connect(&sock).is_ok().then_some(())
        });
        Daemon { child, sock }
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the daemon with SIGKILL and reaps it (its containers keep
    /// running: live-restore).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether the daemon process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// `DOCKER_HOST` at this daemon and a private `DOCKER_CONFIG`.
    pub fn env(&self) -> [(&'static str, std::ffi::OsString); 2] {
        [
            (
                "DOCKER_HOST",
                format!("unix://{}", self.sock.display()).into(),
            ),
            ("DOCKER_CONFIG", self.dir().join("docker").into()),
        ]
    }

    fn dir(&self) -> &Path {
        self.sock.parent().expect("socket directory")
    }

    /// `docker ARGS` against this daemon.
    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .args(args)
            .envs(self.env())
            .stdin(Stdio::null())
            .output()
            .expect("run docker")
    }

    /// `docker ARGS`; must succeed; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            o.status.success(),
            "docker {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// `docker ARGS`; must fail; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            !o.status.success(),
            "docker {args:?} should have failed:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stderr).into_owned()
    }

    /// A Python program with docker-py; `docker.from_env()` reaches this
    /// daemon. Must succeed; returns stdout.
    pub fn python(&self, program: &str) -> String {
        let o = Command::new("python3")
            .args(["-c", program])
            .envs(self.env())
            .stdin(Stdio::null())
            .output()
            .expect("run python3");
        assert!(
            o.status.success(),
            "python failed ({}):\n{program}\nstdout: {}\nstderr: {}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// `docker-compose ARGS` in `project` (a directory with a compose file).
    pub fn compose(&self, project: &Path, args: &[&str]) -> Output {
        Command::new("docker-compose")
            .args(args)
            .current_dir(project)
            .envs(self.env())
            .stdin(Stdio::null())
            .output()
            .expect("run docker-compose")
    }

    /// `docker-compose ARGS`; must succeed; returns stdout.
    pub fn compose_ok(&self, project: &Path, args: &[&str]) -> String {
        let o = self.compose(project, args);
        assert!(
            o.status.success(),
            "docker-compose {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// One HTTP/1.1 request on the socket: the status and the body (a
    /// chunked body decoded).
    pub fn api(&self, method: &str, path: &str, body: &[u8]) -> (u16, String) {
        self.api_with(method, path, &[], body)
    }

    /// [`Daemon::api`] with extra request headers.
    pub fn api_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, String) {
        let mut s = UnixStream::connect(&self.sock).expect("connect to the daemon");
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).expect("send");
        let _ = s.write_all(body);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let split = out
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(out.len());
        let head = String::from_utf8_lossy(&out[..split]).to_ascii_lowercase();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let raw = out.get(split + 4..).unwrap_or_default();
        let body = if head.contains("transfer-encoding: chunked") {
            dechunk(raw)
        } else {
            raw.to_vec()
        };
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// [`Daemon::api`] with a JSON body; the answer parsed as JSON (`Null`
    /// when it is not JSON).
    pub fn api_json(
        &self,
        method: &str,
        path: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let b = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        let (st, text) = self.api(method, path, &b);
        (st, serde_json::from_str(&text).unwrap_or_default())
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir().join("daemon.log")).unwrap_or_default()
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(nl) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&raw[..nl])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok());
        let Some(size) = size else { break };
        if size == 0 {
            break;
        }
        let start = nl + 2;
        let end = (start + size).min(raw.len());
        out.extend_from_slice(&raw[start..end]);
        raw = raw.get(end + 2..).unwrap_or_default();
    }
    out
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
