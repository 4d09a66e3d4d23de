//! A throwaway etcd for tests (feature `testing`).
//!
//! [`EtcdServer::start`] runs the `etcd` found on `PATH` (or named by
//! `BERTH_ETCD`) as a single-member cluster on loopback ports, with its
//! data in a temporary directory, and kills it when dropped. Without an
//! etcd binary it returns `None` after printing why, so the test can skip;
//! under `CI=true` a missing etcd fails the test instead. Debian:
//! `apt-get install etcd-server etcd-client`.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::EtcdStore;

/// How long etcd may take to answer its health check.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How many times a start is tried (another process may take a port
/// between our probe and etcd's bind).
const START_TRIES: usize = 3;

/// A running etcd, killed (by its PID) when dropped.
pub struct EtcdServer {
    /// The client URL, `http://127.0.0.1:<port>`.
    pub endpoint: String,
    child: Child,
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for EtcdServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdServer")
            .field("endpoint", &self.endpoint)
            .field("pid", &self.child.id())
            .finish_non_exhaustive()
    }
}

/// Whether this is a CI run, where missing tools fail tests.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The path of `name` on `PATH`.
pub fn find_binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The `etcdctl` binary, if installed.
pub fn etcdctl() -> Option<PathBuf> {
    find_binary("etcdctl")
}

/// A TCP port on loopback that was free a moment ago.
fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// Whether etcd at `port` says it is healthy.
fn healthy(port: u16) -> bool {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let request = format!("GET /health HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.contains("\"health\":\"true\"")
}

/// The last lines of etcd's log, for a failure message.
fn log_tail(path: &Path) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

impl EtcdServer {
    /// Starts an etcd and waits until it answers. `None` when no etcd is
    /// installed (outside CI; the reason is printed). Panics when etcd is
    /// missing under `CI=true`, or is there but does not start.
    pub fn start() -> Option<EtcdServer> {
        let binary = std::env::var_os("BERTH_ETCD")
            .map(PathBuf::from)
            .or_else(|| find_binary("etcd"));
        let Some(binary) = binary else {
            if in_ci() {
                panic!(
                    "etcd is not installed and CI=true: the etcd tests must run \
                     (apt-get install etcd-server etcd-client)"
                );
            }
            eprintln!("skipping: no etcd on PATH (apt-get install etcd-server etcd-client)");
            return None;
        };
        let mut failures = Vec::new();
        for _ in 0..START_TRIES {
            match Self::try_start(&binary) {
                Ok(server) => return Some(server),
                Err(failure) => failures.push(failure),
            }
        }
        panic!(
            "{} did not start:\n{}",
            binary.display(),
            failures.join("\n---\n")
        );
    }

    fn try_start(binary: &Path) -> Result<EtcdServer, String> {
        let dir = tempfile::Builder::new()
            .prefix("berth-etcd-")
            .tempdir()
            .map_err(|e| format!("creating etcd's directory: {e}"))?;
        let client = free_port().map_err(|e| format!("finding a free port: {e}"))?;
        let peer = free_port().map_err(|e| format!("finding a free port: {e}"))?;
        let client_url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let log_path = dir.path().join("etcd.log");
        let log = std::fs::File::create(&log_path)
            .map_err(|e| format!("creating {}: {e}", log_path.display()))?;
        let log_err = log
            .try_clone()
            .map_err(|e| format!("opening {}: {e}", log_path.display()))?;
        let mut command = Command::new(binary);
        command
            .arg("--name=default")
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=default={peer_url}"))
            .arg("--initial-cluster-state=new")
            .arg("--logger=zap")
            .arg("--log-level=warn")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        // etcd reads ETCD_* variables as flags: none may leak in.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("ETCD_") {
                command.env_remove(name);
            }
        }
        let child = command
            .spawn()
            .map_err(|e| format!("running {}: {e}", binary.display()))?;
        let mut server = EtcdServer {
            endpoint: client_url,
            child,
            dir,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if healthy(client) {
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("etcd exited ({status}):\n{}", log_tail(&log_path)));
            }
            if Instant::now() > deadline {
                // Dropping the server kills it.
                return Err(format!(
                    "etcd did not answer within {START_TIMEOUT:?}:\n{}",
                    log_tail(&log_path)
                ));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The endpoints to connect to.
    pub fn endpoints(&self) -> Vec<String> {
        vec![self.endpoint.clone()]
    }

    /// The directory that holds etcd's data and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A store on this etcd with keys under `prefix`; panics when it
    /// cannot connect.
    pub async fn store(&self, prefix: &str) -> EtcdStore {
        match EtcdStore::connect(&self.endpoints(), prefix).await {
            Ok(store) => store,
            Err(error) => panic!("connecting to the test etcd at {}: {error}", self.endpoint),
        }
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        // Child::kill sends SIGKILL to this child's PID only.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A store together with the etcd it runs on (a fresh, empty one), for the
/// contract's tests: the etcd lives as long as the store.
pub type EtcdTestStore = berth_kv::testsuite::Guarded<EtcdStore, EtcdServer>;

/// Connects to `server` (panics when it cannot), keys unprefixed.
pub async fn test_store(server: EtcdServer) -> EtcdTestStore {
    EtcdTestStore {
        store: server.store("").await,
        guard: server,
    }
}
