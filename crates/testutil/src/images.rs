//! The offline test image: a busybox rootfs with the static probe.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The workspace root (where Cargo.toml with `[workspace]` is).
pub fn workspace_root() -> PathBuf {
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    while !dir.join("Cargo.lock").exists() && !dir.join("scripts").is_dir() {
        if !dir.pop() {
            break;
        }
    }
    dir
}

fn images_dir() -> PathBuf {
    std::env::var_os("BERTH_TEST_IMAGES")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/test-images"))
}

/// The static probe binary, built on first use (`cargo build` with
/// `crt-static` into `target/probe`).
pub fn probe_path() -> PathBuf {
    static PROBE: OnceLock<PathBuf> = OnceLock::new();
    PROBE
        .get_or_init(|| {
            let ws = workspace_root();
            let target = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
            let out = ws
                .join("target/probe")
                .join(&target)
                .join("release/berth-probe");
            let _lock = FileLock::take(&ws.join("target/.probe.lock"));
            let st = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .current_dir(&ws)
                .env("RUSTFLAGS", "-C target-feature=+crt-static")
                .args([
                    "build",
                    "-q",
                    "-p",
                    "berth-probe",
                    "--release",
                    "--target",
                    &target,
                    "--target-dir",
                ])
                .arg(ws.join("target/probe"))
                .status()
                .expect("run cargo to build the probe");
            assert!(st.success(), "building the static probe failed");
            out
        })
        .clone()
}

/// The busybox rootfs (read-only use: tests share it), built on first use
/// by `scripts/mk-busybox-rootfs.sh`, with the probe at
/// `/usr/bin/berth-probe`.
pub fn busybox_rootfs() -> PathBuf {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS
        .get_or_init(|| {
            let dir = images_dir();
            std::fs::create_dir_all(&dir).expect("create test image dir");
            let _lock = FileLock::take(&dir.join(".lock"));
            let rootfs = dir.join("busybox");
            let probe = probe_path();
            let stamp = rootfs.join(".complete");
            if !stamp.exists() {
                let _ = std::fs::remove_dir_all(&rootfs);
                let script = workspace_root().join("scripts/mk-busybox-rootfs.sh");
                let st = Command::new(&script)
                    .arg(&rootfs)
                    .status()
                    .expect("run mk-busybox-rootfs.sh");
                assert!(
                    st.success(),
                    "{} failed (is busybox-static installed?)",
                    script.display()
                );
                std::fs::write(&stamp, "").expect("stamp");
            }
            let dest = rootfs.join("usr/bin/berth-probe");
            let fresh = std::fs::metadata(&dest)
                .and_then(|d| Ok((d.len(), d.modified()?)))
                .ok()
                .zip(
                    std::fs::metadata(&probe)
                        .and_then(|p| Ok((p.len(), p.modified()?)))
                        .ok(),
                )
                .is_some_and(|(d, p)| d.0 == p.0 && d.1 >= p.1);
            if !fresh {
                let tmp = rootfs.join("usr/bin/.berth-probe.tmp");
                std::fs::copy(&probe, &tmp).expect("copy probe");
                std::fs::rename(&tmp, &dest).expect("install probe");
            }
            rootfs
        })
        .clone()
}

/// A copy of the busybox rootfs a test may modify.
pub fn busybox_copy(into: &Path) -> PathBuf {
    let src = busybox_rootfs();
    let st = Command::new("cp")
        .arg("-a")
        .arg(&src)
        .arg(into)
        .status()
        .expect("cp");
    assert!(st.success());
    into.to_path_buf()
}

/// An exclusive lock on a file (across test processes).
struct FileLock(#[allow(dead_code)] std::fs::File);

impl FileLock {
    fn take(path: &Path) -> FileLock {
        if let Some(p) = path.parent() {
            let _ = std::fs::create_dir_all(p);
        }
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .expect("lock file");
        rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive).expect("flock");
        FileLock(f)
    }
}
