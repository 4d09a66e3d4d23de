//! Known escapes of container runtimes, each as a test that would fail if
//! the escape worked (shared/specs/security-and-reliability.md §5.1).

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use berth_testutil::{Bundle, Oci, busybox_copy, busybox_rootfs, root_or_skip, unique_id};
use sha2::Digest;

fn berth() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_berth"))
}

fn sha256(p: &Path) -> String {
    let mut f = std::fs::File::open(p).unwrap();
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).unwrap();
    hex::encode(sha2::Sha256::digest(&buf))
}

/// A private copy of the berth binary, so the test hashes a file it owns.
fn berth_copy(dir: &Path) -> PathBuf {
    let p = dir.join("berth");
    std::fs::copy(berth(), &p).unwrap();
    p
}

/// CVE-2019-5736: a container that keeps trying to write every
/// `/proc/<pid>/exe` it can see while the host runs 20 `exec`s, directly
/// and through a `#!/proc/self/exe` script, must not change the runtime
/// binary.
#[test]
fn the_runtime_binary_cannot_be_overwritten_from_a_container() {
    if !root_or_skip("CVE-2019-5736") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let bin = berth_copy(t.path());
    let before = sha256(&bin);
    let rootfs = busybox_copy(&t.path().join("rootfs"));
    std::fs::write(rootfs.join("evil"), "#!/proc/self/exe\n").unwrap();
    std::fs::set_permissions(rootfs.join("evil"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let oci = Oci::new(&bin);
    let mut b = Bundle::new(&bin, &rootfs, &["berth-probe", "exe-attack", "4"]);
    // The worst case: an attacker that may look into other processes.
    for set in ["bounding", "effective", "permitted"] {
        b.config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push("CAP_SYS_PTRACE".into());
    }
    b.write();
    let id = unique_id("cve-5736");
    let out = oci.detached(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    for i in 0..40 {
        let cmd = if i % 2 == 0 { "true" } else { "/evil" };
        let _ = oci.run(&["exec", &id, cmd]);
    }
    oci.wait_stopped(&id);
    let report = std::fs::read_to_string(&out).unwrap();
    assert!(
        report.contains("opened=0"),
        "the container opened a host binary for writing: {report}"
    );
    assert_eq!(sha256(&bin), before, "the runtime binary changed");
}

/// The exec helper a container can see runs from a read-only view of the
/// binary, never the writable host file.
#[test]
fn exec_helpers_run_from_a_read_only_view_of_the_binary() {
    if !root_or_skip("CVE-2019-5736") {
        return;
    }
    let oci = Oci::new(&berth());
    let b = Bundle::new(&berth(), &busybox_rootfs(), &["sleep", "30"]);
    let id = unique_id("sealed");
    oci.detached(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    // While an exec waits for its process, its /proc/<pid>/exe is the
    // runtime: look at it from the host.
    let mut child = oci.cmd(&["exec", &id, "sleep", "2"]).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let exe = std::fs::read_link(format!("/proc/{}/exe", child.id())).unwrap();
    let w = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/{}/exe", child.id()));
    child.wait().unwrap();
    assert!(w.is_err(), "{} is writable", exe.display());
    let e = w.unwrap_err();
    assert!(
        e.raw_os_error() == Some(libc_erofs()) || e.raw_os_error() == Some(1),
        "expected EROFS or EPERM, got {e}"
    );
    oci.ok(&["kill", &id, "KILL"]);
}

fn libc_erofs() -> i32 {
    30
}

/// CVE-2024-21626: a working directory through a leaked fd must never
/// reach a host directory.
#[test]
fn a_cwd_through_proc_self_fd_is_refused() {
    if !root_or_skip("CVE-2024-21626") {
        return;
    }
    let oci = Oci::new(&berth());
    for n in 3..10 {
        let mut b = Bundle::new(
            &berth(),
            &busybox_rootfs(),
            &["cat", "../../../../etc/hostname"],
        );
        b.config["process"]["cwd"] = format!("/proc/self/fd/{n}").into();
        b.write();
        let id = unique_id("cwd");
        let out = oci.run(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        assert!(
            !out.status.success(),
            "cwd /proc/self/fd/{n} was accepted: {stdout}"
        );
        assert!(
            host.trim().is_empty() || !stdout.contains(host.trim()),
            "host file read through fd {n}"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("working directory"), "{err}");
    }
    // the same through exec --cwd
    let b = Bundle::new(&berth(), &busybox_rootfs(), &["sleep", "30"]);
    let id = unique_id("cwd-exec");
    oci.detached(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    for n in 3..10 {
        let cwd = format!("/proc/self/fd/{n}");
        let err = oci.fails(&[
            "exec",
            "--cwd",
            &cwd,
            &id,
            "cat",
            "../../../../etc/hostname",
        ]);
        assert!(err.contains("working directory"), "{err}");
    }
    oci.ok(&["kill", &id, "KILL"]);
}

/// CVE-2019-16884 / CVE-2023-28642: a rootfs whose /proc (or /sys) is a
/// symlink is refused.
#[test]
fn a_rootfs_with_a_proc_symlink_is_refused() {
    if !root_or_skip("CVE-2019-16884") {
        return;
    }
    for dir in ["proc", "sys"] {
        let t = tempfile::tempdir().unwrap();
        let rootfs = busybox_copy(&t.path().join("rootfs"));
        std::fs::remove_dir(rootfs.join(dir)).unwrap();
        std::fs::create_dir_all(rootfs.join("tmp/evil")).unwrap();
        std::os::unix::fs::symlink("/tmp/evil", rootfs.join(dir)).unwrap();
        let oci = Oci::new(&berth());
        let b = Bundle::new(&berth(), &rootfs, &["true"]);
        let id = unique_id("procsym");
        let err = oci.fails(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
        assert!(
            err.contains("must be mounted on an ordinary directory"),
            "{err}"
        );
        // nothing half-made is left
        assert!(oci.ok(&["list", "-q"]).trim().is_empty());
    }
}

/// CVE-2025-31133 class: an image whose /dev/null is a symlink to a
/// procfs file must not turn masking into a writable bind of that file.
#[test]
fn a_dev_null_symlink_in_the_image_cannot_unmask_proc() {
    if !root_or_skip("CVE-2025-31133") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let rootfs = busybox_copy(&t.path().join("rootfs"));
    std::os::unix::fs::symlink("/proc/sys/kernel/core_pattern", rootfs.join("dev/null")).unwrap();
    let pattern_before = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    let oci = Oci::new(&berth());
    // No /dev tmpfs: the image's own /dev is used.
    let mut b = Bundle::new(
        &berth(),
        &rootfs,
        &[
            "sh",
            "-c",
            "berth-probe read /proc/timer_list; berth-probe write /proc/sys/kernel/core_pattern '|/tmp/x'; ls -l /dev/null",
        ],
    );
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["destination"] != "/dev");
    b.config["root"]["readonly"] = false.into();
    b.write();
    let id = unique_id("devnull");
    let out = oci.ok(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "bytes=0", "{out}");
    assert_eq!(lines[1], "errno=30", "{out}");
    assert!(
        lines[2].starts_with("crw-rw-rw-") && lines[2].contains("1,   3"),
        "/dev/null must be the null device: {out}"
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap(),
        pattern_before
    );
}

/// CVE-2021-30465 / CVE-2024-45310: while one container flips a shared
/// volume's `x` between a directory and a symlink to `/`, other
/// containers mounting on `/vol/x/<name>` must never create or mount
/// anything on the host.
#[test]
fn racing_mount_destinations_never_reach_the_host() {
    if !root_or_skip("CVE-2021-30465") {
        return;
    }
    let shared = tempfile::tempdir().unwrap();
    let canary = unique_id("canary");
    let host_target = Path::new("/").join(&canary);
    let mountinfo_before = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .count();
    let oci = Oci::new(&berth());
    let vol = serde_json::json!({"destination": "/vol", "type": "bind",
        "source": shared.path().to_str().unwrap(), "options": ["rbind", "rw"]});
    let mut flipper = Bundle::new(
        &berth(),
        &busybox_rootfs(),
        &[
            "sh",
            "-c",
            "end=$(( $(date +%s) + 4 )); while [ $(date +%s) -lt $end ]; do mkdir /vol/x 2>/dev/null; rmdir /vol/x 2>/dev/null; ln -s / /vol/x 2>/dev/null; rm -f /vol/x; done",
        ],
    );
    flipper.config["mounts"]
        .as_array_mut()
        .unwrap()
        .push(vol.clone());
    flipper.write();
    let fid = unique_id("flip");
    oci.detached(&[
        "run",
        "-d",
        "--bundle",
        flipper.path().to_str().unwrap(),
        &fid,
    ]);
    let dest = format!("/vol/x/{canary}");
    for _ in 0..40 {
        let mut b = Bundle::new(&berth(), &busybox_rootfs(), &["true"]);
        b.config["mounts"].as_array_mut().unwrap().push(vol.clone());
        b.config["mounts"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
            "destination": dest, "type": "tmpfs", "source": "tmpfs", "options": ["size=64k"]}));
        b.write();
        let id = unique_id("race");
        // Success or a clean failure are both fine; reaching the host is not.
        let _ = oci.run(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
        assert!(
            !host_target.exists(),
            "{} was created on the host",
            host_target.display()
        );
    }
    oci.wait_stopped(&fid);
    assert!(!host_target.exists());
    let mountinfo_after = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .count();
    assert_eq!(
        mountinfo_before, mountinfo_after,
        "the host's mount table changed"
    );
}

/// CVE-2020-15257: berth's own sockets are filesystem sockets, never
/// abstract ones a host-network container could reach.
#[test]
fn no_abstract_sockets_are_used() {
    if !root_or_skip("CVE-2020-15257") {
        return;
    }
    let oci = Oci::new(&berth());
    let b = Bundle::new(&berth(), &busybox_rootfs(), &["true"]);
    let id = unique_id("abstract");
    oci.detached(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    let state = oci.state(&id);
    let pid = state["pid"].as_i64().unwrap();
    // every unix socket the waiting init holds
    let mut inodes = Vec::new();
    for e in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
    {
        if let Ok(l) = std::fs::read_link(e.path())
            && let Some(i) = l
                .to_str()
                .and_then(|s| s.strip_prefix("socket:["))
                .and_then(|s| s.strip_suffix(']'))
        {
            inodes.push(i.to_owned());
        }
    }
    assert!(!inodes.is_empty());
    let table = std::fs::read_to_string("/proc/net/unix").unwrap();
    for line in table.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() >= 8 && inodes.contains(&f[6].to_owned()) {
            assert!(!f[7].starts_with('@'), "abstract socket {line}");
        }
    }
    oci.ok(&["delete", "--force", &id]);
}

/// CVE-2019-5736, the original vector: an image whose entrypoint is a
/// `#!/proc/self/exe` script. The runtime binary must never run inside the
/// container (it would with the image's environment, LD_PRELOAD included).
#[test]
fn a_proc_self_exe_entrypoint_never_runs_the_runtime() {
    if !root_or_skip("CVE-2019-5736") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let bin = berth_copy(t.path());
    let before = sha256(&bin);
    let rootfs = busybox_copy(&t.path().join("rootfs"));
    std::fs::write(rootfs.join("evil"), "#!/proc/self/exe\n").unwrap();
    std::fs::set_permissions(rootfs.join("evil"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let oci = Oci::new(&bin);
    let b = Bundle::new(&bin, &rootfs, &["/evil", "oci", "--version"]);
    let id = unique_id("shebang");
    let started = std::time::Instant::now();
    let out = oci.run(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the script ran: {stdout} {stderr}");
    assert!(
        !stdout.contains("berth") && !stderr.contains("Usage"),
        "the runtime ran in the container: {stdout} {stderr}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(sha256(&bin), before);
}

/// CVE-2019-19921 / CVE-2023-27561: nothing is mounted inside /proc (a
/// tmpfs over /proc/self/attr would defeat LSM labelling, a bind over
/// /proc/sys/kernel the kernel's own files), also when the destination
/// only leads there through a symlink in the image; lxcfs-style binds
/// over /proc/cpuinfo and the like stay allowed.
#[test]
fn mounts_inside_proc_are_refused() {
    if !root_or_skip("CVE-2019-19921") {
        return;
    }
    let oci = Oci::new(&berth());
    let t = tempfile::tempdir().unwrap();
    let host_dir = t.path().join("d");
    std::fs::create_dir(&host_dir).unwrap();
    let run_with = |rootfs: &Path, mount: Option<serde_json::Value>, args: &[&str]| {
        let mut b = Bundle::new(&berth(), rootfs, args);
        if let Some(m) = mount {
            b.config["mounts"].as_array_mut().unwrap().push(m);
        }
        b.write();
        let id = unique_id("procmnt");
        oci.run(&["run", "--bundle", b.path().to_str().unwrap(), &id])
    };
    let refused = |out: std::process::Output, what: &str, want: &str| {
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !out.status.success(),
            "{what} was mounted: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(err.contains(want), "{what}: {err}");
        assert!(
            oci.ok(&["list", "-q"]).trim().is_empty(),
            "{what}: left behind"
        );
    };
    let tmpfs =
        |dst: &str| serde_json::json!({"destination": dst, "type": "tmpfs", "source": "tmpfs"});
    let bind = |src: &Path, dst: &str| {
        serde_json::json!({"destination": dst, "type": "bind",
            "source": src.to_str().unwrap(), "options": ["rbind", "ro"]})
    };
    let bb = busybox_rootfs();
    refused(
        run_with(&bb, Some(tmpfs("/proc/self/attr")), &["true"]),
        "a tmpfs on /proc/self/attr",
        "is inside /proc",
    );
    refused(
        run_with(&bb, Some(bind(&host_dir, "/proc/sys/kernel")), &["true"]),
        "a bind on /proc/sys/kernel",
        "is inside /proc",
    );
    refused(
        run_with(&bb, Some(tmpfs("/proc")), &["true"]),
        "a tmpfs on /proc",
        "only a procfs may be mounted on /proc",
    );

    // an image whose /dev leads into /proc: the /dev tmpfs would land there
    let evil = busybox_copy(&t.path().join("rootfs"));
    std::fs::remove_dir_all(evil.join("dev")).unwrap();
    std::os::unix::fs::symlink("/proc/sys/kernel", evil.join("dev")).unwrap();
    refused(
        run_with(&evil, None, &["true"]),
        "/dev as a symlink into /proc",
        "resolves to /proc/sys/kernel",
    );
    // a volume path through a symlink to a place in /proc that does not exist
    std::fs::remove_file(evil.join("dev")).unwrap();
    std::fs::create_dir(evil.join("dev")).unwrap();
    std::os::unix::fs::symlink("/proc/sys", evil.join("tunnel")).unwrap();
    refused(
        run_with(&evil, Some(tmpfs("/tunnel/new")), &["true"]),
        "a tmpfs on /tunnel/new, /tunnel a symlink to /proc/sys",
        "resolves to /proc/sys/new",
    );

    // lxcfs-style files may be bound over
    let fake = t.path().join("cpuinfo");
    std::fs::write(&fake, "processor : fake\n").unwrap();
    let out = run_with(
        &bb,
        Some(bind(&fake, "/proc/cpuinfo")),
        &["cat", "/proc/cpuinfo"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "processor : fake\n");
}

/// The same through berth's CLI: `--mount` and `-v` into /proc are refused.
#[test]
fn run_refuses_volumes_inside_proc() {
    if !root_or_skip("CVE-2019-19921") {
        return;
    }
    let b = berth_testutil::Berth::new(&berth());
    let tar = berth_testutil::busybox_tar(b.dir.path());
    b.ok(&["import", tar.to_str().unwrap(), "bb:1"]);
    let d = b.dir.path().join("d");
    std::fs::create_dir(&d).unwrap();
    let vol = format!("{}:/proc/sys/kernel", d.display());
    for flags in [
        ["--mount", "type=tmpfs,dst=/proc/self/attr"],
        ["-v", vol.as_str()],
    ] {
        let mut args = vec!["run", "--network", "none"];
        args.extend(flags);
        args.extend(["bb:1", "true"]);
        let err = b.fails(&args);
        assert!(err.contains("is inside /proc"), "{flags:?}: {err}");
    }
}
