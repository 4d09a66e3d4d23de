//! Helpers for berth's integration tests.
//!
//! - [`archives`]: docker-archives and layers (plain, gzip, zstd, bombs)
//!   built in memory.
//! - [`images`]: the offline busybox rootfs (built once per checkout by
//!   `scripts/mk-busybox-rootfs.sh`, with the static probe copied in).
//! - [`Bundle`]: an OCI bundle whose config.json a test edits as JSON.
//! - [`Daemon`]: `berth daemon` on a private socket for the docker CLI,
//!   docker-py, docker-compose and raw HTTP; [`require`] fails a test
//!   whose client is missing under `CI=true`.
//! - [`Oci`]: runs `berth oci` against a private state root and removes
//!   every container it created when dropped, even after a failed assert.
#![forbid(unsafe_code)]

pub mod archives;
pub mod cli;
pub mod daemon;
pub mod fake_registry;
pub mod images;
pub mod kube;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

pub use cli::{
    Berth, Server, StoreState, busybox_tar, docker_registry, free_port, http_body, http_get,
    wait_for,
};
pub use daemon::{Daemon, busybox_daemon, have_compose, have_docker, have_docker_py, require};
pub use images::{busybox_copy, busybox_rootfs, probe_path, workspace_root};
pub use kube::{KubeServer, have_kube_py, have_kubectl};

/// A second past now, in Unix seconds, as `events --until` takes it: the
/// end of "every event so far" that does not wait for new ones.
pub fn until_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    (now.as_secs() + 1).to_string()
}

/// Whether privileged tests can run; prints why not when they cannot.
pub fn root_or_skip(test: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        true
    } else {
        eprintln!("skipping {test}: needs root (CI runs as root)");
        false
    }
}

/// A unique container id for this test process.
pub fn unique_id(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// An OCI bundle in a temporary directory.
#[derive(Debug)]
pub struct Bundle {
    /// The bundle directory (removed on drop).
    pub dir: tempfile::TempDir,
    /// config.json, as JSON; call [`Bundle::write`] after editing.
    pub config: serde_json::Value,
}

impl Bundle {
    /// A bundle with berth's default spec (`berth oci spec`), no terminal,
    /// `root.path` pointing at `rootfs`, and `args` as the process.
    pub fn new(berth: &Path, rootfs: &Path, args: &[&str]) -> Bundle {
        let dir = tempfile::Builder::new()
            .prefix("berth-bundle-")
            .tempdir()
            .expect("tempdir");
        let st = Command::new(berth)
            .args(["oci", "spec", "--bundle"])
            .arg(dir.path())
            .status()
            .expect("run berth oci spec");
        assert!(st.success(), "berth oci spec failed");
        let text = std::fs::read_to_string(dir.path().join("config.json")).expect("config.json");
        let mut config: serde_json::Value = serde_json::from_str(&text).expect("json");
        config["process"]["terminal"] = false.into();
        config["process"]["args"] = args.iter().map(|a| serde_json::Value::from(*a)).collect();
        config["root"]["path"] = rootfs.to_string_lossy().into_owned().into();
        let b = Bundle { dir, config };
        b.write();
        b
    }

    /// The bundle directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes config.json.
    pub fn write(&self) {
        std::fs::write(
            self.dir.path().join("config.json"),
            serde_json::to_vec_pretty(&self.config).expect("json"),
        )
        .expect("write config.json");
    }
}

/// `berth oci` with a private state root; deletes its containers on drop.
#[derive(Debug)]
pub struct Oci {
    /// The berth binary.
    pub berth: PathBuf,
    /// The state root (removed on drop).
    pub root: tempfile::TempDir,
    ids: std::cell::RefCell<Vec<String>>,
}

impl Oci {
    /// A fresh state root.
    pub fn new(berth: &Path) -> Oci {
        let root = tempfile::Builder::new()
            .prefix("berth-oci-")
            .tempdir()
            .expect("tempdir");
        Oci {
            berth: berth.to_path_buf(),
            root,
            ids: Default::default(),
        }
    }

    /// A command `berth oci --root <root> <args>`.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.berth);
        c.arg("oci").arg("--root").arg(self.root.path()).args(args);
        c
    }

    /// Runs `berth oci <args>` and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.remember(args);
        self.cmd(args)
            .stdin(Stdio::null())
            .output()
            .expect("run berth")
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "berth oci {} failed ({}):\nstdout: {}\nstderr: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs and asserts failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "berth oci {} should have failed:\nstdout: {}\nstderr: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Runs a command that leaves a container running (`run -d`,
    /// `create`): the container keeps its stdio, so they go to files here,
    /// not to pipes a caller would wait on. Asserts success; returns the
    /// container's stdout file.
    pub fn detached(&self, args: &[&str]) -> PathBuf {
        self.remember(args);
        let n = unique_id("out");
        let out = self.root.path().join(format!("{n}.out"));
        let err = self.root.path().join(format!("{n}.err"));
        let st = self
            .cmd(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).expect("out file"))
            .stderr(std::fs::File::create(&err).expect("err file"))
            .status()
            .expect("run berth");
        assert!(
            st.success(),
            "berth oci {} failed ({st}): {}",
            args.join(" "),
            std::fs::read_to_string(&err).unwrap_or_default()
        );
        out
    }

    /// The status of container `id` ("stopped" etc.).
    pub fn status(&self, id: &str) -> String {
        let out = self.ok(&["state", id]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("state json");
        v["status"].as_str().unwrap_or_default().to_owned()
    }

    /// The state document of container `id`.
    pub fn state(&self, id: &str) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["state", id])).expect("state json")
    }

    /// Waits until container `id` is stopped (up to 10 s).
    pub fn wait_stopped(&self, id: &str) {
        for _ in 0..1000 {
            if self.status(id) == "stopped" {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("container {id} did not stop");
    }

    fn remember(&self, args: &[&str]) {
        let verbs = ["create", "run"];
        if let Some(pos) = args.iter().position(|a| verbs.contains(a)) {
            // the id is the last argument
            if let Some(id) = args[pos..].last() {
                self.ids.borrow_mut().push((*id).to_owned());
            }
        }
    }
}

impl Drop for Oci {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            let _ = self
                .cmd(&["delete", "--force", id])
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Bundle {
    /// Adds berth's default seccomp profile (for the default capabilities).
    pub fn with_default_seccomp(mut self) -> Bundle {
        let caps: Vec<String> = self.config["process"]["capabilities"]["bounding"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| c.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let profile = berth_runtime::seccomp::default_profile(&caps);
        self.config["linux"]["seccomp"] = serde_json::to_value(profile).expect("json");
        self.write();
        self
    }
}

/// The host directory of a container's cgroup in one v1 hierarchy (or the
/// v2 tree), for checking that nothing is left behind.
pub fn cgroup_dirs_named(id: &str) -> Vec<PathBuf> {
    let layout = berth_runtime::cgroups::Layout::detect().expect("cgroup layout");
    berth_runtime::cgroups::Cgroup::plan(&layout, None, id, false)
        .expect("plan")
        .all_dirs()
}
