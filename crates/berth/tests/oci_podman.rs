//! podman drives berth as its OCI runtime (`podman --runtime berth-runc`),
//! with a private store and configuration (podman's rootful defaults ask
//! for rlimits above this host's hard limits; see shared/bench/PEERS.md).

use std::path::{Path, PathBuf};
use std::process::Command;

use berth_testutil::{busybox_rootfs, root_or_skip};

fn berth() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_berth"))
}

struct Podman {
    dir: tempfile::TempDir,
    runtime: PathBuf,
}

impl Podman {
    fn new() -> Option<Podman> {
        if Command::new("podman").arg("--version").output().is_err() {
            eprintln!("skipping: podman is not installed (apt-get install podman)");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("berth-podman-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        for sub in ["root", "run", "tmp", "runtime"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let runtime = d.join("runtime/berth-runc");
        std::os::unix::fs::symlink(berth(), &runtime).unwrap();
        let nofile = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .maximum
            .unwrap_or(1 << 20);
        let nproc = rustix::process::getrlimit(rustix::process::Resource::Nproc)
            .maximum
            .unwrap_or(32768)
            .min(32768);
        std::fs::write(
            d.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"overlay\"\ngraphroot = \"{0}/root\"\nrunroot = \"{0}/run\"\n",
                d.display()
            ),
        )
        .unwrap();
        std::fs::write(
            d.join("containers.conf"),
            format!(
                "[containers]\ndefault_ulimits = [\"nofile={nofile}:{nofile}\", \"nproc={nproc}:{nproc}\"]\n\
                 [engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\ntmp_dir = \"{0}/tmp\"\n\
                 runtime_supports_json = [\"berth-runc\"]\n",
                d.display()
            ),
        )
        .unwrap();
        Some(Podman { dir, runtime })
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", self.dir.path().join("containers.conf"))
            .env(
                "CONTAINERS_STORAGE_CONF",
                self.dir.path().join("storage.conf"),
            )
            .arg("--runtime")
            .arg(&self.runtime)
            .args(args);
        c
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args).output().unwrap();
        assert!(
            out.status.success(),
            "podman {}: {}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn import(&self, rootfs: &Path, name: &str) {
        let tar = self.dir.path().join("image.tar");
        let st = Command::new("tar")
            .arg("--numeric-owner")
            .arg("-C")
            .arg(rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(st.success());
        self.ok(&["import", "-q", tar.to_str().unwrap(), name]);
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.cmd(&["rm", "-af", "-t", "0"]).output();
        let _ = self.cmd(&["rmi", "-af"]).output();
        let root = self.dir.path().to_path_buf();
        // podman leaves its overlay mounts and run dirs mounted
        if let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") {
            let mut mps: Vec<&str> = info
                .lines()
                .filter_map(|l| l.split(' ').nth(4))
                .filter(|m| Path::new(m).starts_with(&root))
                .collect();
            mps.sort_by_key(|m| std::cmp::Reverse(m.len()));
            for m in mps {
                let _ = rustix::mount::unmount(m, rustix::mount::UnmountFlags::DETACH);
            }
        }
    }
}

#[test]
fn podman_runs_containers_with_berth_as_its_runtime() {
    if !root_or_skip("podman") {
        return;
    }
    let Some(p) = Podman::new() else { return };
    p.import(&busybox_rootfs(), "localhost/berth-test:latest");
    // run --rm, the command from the issue
    let out = p.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "localhost/berth-test:latest",
        "true",
    ]);
    assert!(out.is_empty(), "{out}");
    let out = p.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "localhost/berth-test:latest",
        "sh",
        "-c",
        "echo $$; id -u",
    ]);
    assert_eq!(out, "1\n0\n");
    // a detached container: exec, top, pause, stop, rm
    let id = p.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "berth-pod-test",
        "localhost/berth-test:latest",
        "sleep",
        "60",
    ]);
    let id = id.trim();
    assert_eq!(p.ok(&["exec", id, "sh", "-c", "echo exec-ok"]), "exec-ok\n");
    assert!(p.ok(&["top", id]).contains("sleep 60"));
    p.ok(&["pause", id]);
    assert!(
        p.ok(&["inspect", "-f", "{{.State.Status}}", id])
            .contains("paused")
    );
    p.ok(&["unpause", id]);
    p.ok(&["stop", "-t", "1", id]);
    let status = p.ok(&["inspect", "-f", "{{.State.Status}}", id]);
    assert!(status.contains("exited"), "{status}");
    p.ok(&["rm", id]);
    // exit codes and resource limits pass through
    let out = p
        .cmd(&[
            "run",
            "--rm",
            "--network",
            "none",
            "localhost/berth-test:latest",
            "sh",
            "-c",
            "exit 9",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(9));
    let out = p.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--pids-limit",
        "42",
        "localhost/berth-test:latest",
        "sh",
        "-c",
        "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max",
    ]);
    assert_eq!(out.trim(), "42");
}
