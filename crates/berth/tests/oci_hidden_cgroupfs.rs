//! A process that cannot reach the cgroup filesystem — /sys/fs/cgroup
//! unmounted, shadowed, or replaced with the fresh sysfs `ip netns exec`
//! mounts — must not run containers without their device rules, and must
//! still be able to kill and delete the containers it finds, never
//! reporting success while one lives.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use berth_testutil::{Berth, Bundle, Oci, busybox_rootfs, busybox_tar, root_or_skip, unique_id};

fn berth() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_berth"))
}

/// Ways of hiding cgroupfs from a process, as shell commands run in a
/// private mount (and network) namespace, with what they stand for.
const HIDE: &[(&str, &str)] = &[
    ("umount -l /sys/fs/cgroup", "cgroupfs unmounted"),
    (
        "umount -l /sys && mount -t sysfs sysfs /sys",
        "a fresh sysfs over /sys (ip netns exec)",
    ),
    (
        "mount -t tmpfs tmpfs /sys/fs/cgroup",
        "a tmpfs stacked over cgroupfs (listed in mountinfo, not reachable)",
    ),
    (
        "umount -l /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup && \
         mount -t tmpfs tmpfs /sys/fs/cgroup",
        "a cgroup2 hierarchy under a tmpfs",
    ),
];

/// Runs `script` after `hide` in a private mount and network namespace.
fn hidden(hide: &str, script: &str) -> Output {
    Command::new("unshare")
        .args(["--mount", "--net", "--propagation", "private", "sh", "-c"])
        .arg(format!("set -e; {hide}; {script}"))
        .output()
        .expect("run unshare")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A bundle whose process makes a loop device node and opens it: the
/// default device rules refuse that (EPERM).
fn device_bundle() -> Bundle {
    let mut b = Bundle::new(
        &berth(),
        &busybox_rootfs(),
        &[
            "sh",
            "-c",
            "mknod /dev/loop9 b 7 0 && berth-probe read /dev/loop9",
        ],
    );
    for set in ["bounding", "effective", "permitted"] {
        b.config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push("CAP_MKNOD".into());
    }
    b.write();
    b
}

#[test]
fn device_rules_fail_closed_without_a_reachable_cgroupfs() {
    if !root_or_skip("hidden cgroupfs") {
        return;
    }
    let oci = Oci::new(&berth());
    let b = device_bundle();
    // with cgroupfs: the rule holds
    let id = unique_id("dev");
    let out = oci.ok(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
    assert_eq!(out.trim(), "errno=1", "{out}");

    let mut hides: Vec<(&str, &str)> = HIDE.to_vec();
    if Path::new("/sys/fs/cgroup/devices/devices.list").exists() {
        hides.push((
            "umount /sys/fs/cgroup/devices",
            "only the v1 devices hierarchy unmounted",
        ));
    }
    for (hide, what) in hides {
        let id = unique_id("dev");
        let cmd = format!(
            "{} oci --root {} run --bundle {} {id}",
            berth().display(),
            oci.root.path().display(),
            b.path().display()
        );
        let o = hidden(hide, &cmd);
        let (stdout, stderr) = (text(&o.stdout), text(&o.stderr));
        assert!(
            !o.status.success(),
            "{what}: the container ran without its device rules: {stdout}{stderr}"
        );
        assert!(
            !stdout.contains("bytes="),
            "{what}: the device was opened: {stdout}"
        );
        assert!(
            stderr.contains("device rules need the devices cgroup controller"),
            "{what}: {stderr}"
        );
        assert!(
            oci.ok(&["list", "-q"]).trim().is_empty(),
            "{what}: a container was left behind"
        );
    }

    // rules that allow every device (privileged) have nothing to enforce
    let mut b = device_bundle();
    b.config["linux"]["resources"]["devices"] =
        serde_json::json!([{"allow": true, "access": "rwm"}]);
    b.write();
    let id = unique_id("dev");
    let cmd = format!(
        "{} oci --root {} run --bundle {} {id}",
        berth().display(),
        oci.root.path().display(),
        b.path().display()
    );
    let o = hidden(HIDE[0].0, &cmd);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout).trim(), "bytes=0");
}

/// Whether process `pid` exists (a zombie counts as gone).
fn alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

#[test]
fn kill_and_delete_reach_a_container_whose_cgroup_is_hidden() {
    if !root_or_skip("hidden cgroupfs") {
        return;
    }
    let oci = Oci::new(&berth());
    // `sleep` as the pid namespace's init ignores SIGTERM
    let b = Bundle::new(&berth(), &busybox_rootfs(), &["sleep", "1000"]);
    let run = |id: &str| {
        oci.detached(&["run", "-d", "--bundle", b.path().to_str().unwrap(), id]);
        oci.state(id)["pid"].as_i64().unwrap()
    };
    let in_hidden = |args: &str| {
        hidden(
            HIDE[0].0,
            &format!(
                "{} oci --root {} {args}",
                berth().display(),
                oci.root.path().display()
            ),
        )
    };

    // kill --all: signals the init when the cgroup cannot be read
    let id = unique_id("hk");
    let pid = run(&id);
    // (no process is started outside the container's cgroup)
    let o = in_hidden(&format!("exec {id} true"));
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("its cgroup is not reachable here"),
        "{}",
        text(&o.stderr)
    );
    let o = in_hidden(&format!("kill --all {id} KILL"));
    assert!(o.status.success(), "{}", text(&o.stderr));
    oci.wait_stopped(&id);
    assert!(!alive(pid));
    oci.ok(&["delete", &id]);

    // delete --force of a running container
    let id = unique_id("hd");
    let pid = run(&id);
    let dirs = berth_testutil::cgroup_dirs_named(&id);
    let o = in_hidden(&format!("delete --force {id}"));
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(!alive(pid), "delete reported success while the init lives");
    assert!(oci.fails(&["state", &id]).contains("does not exist"));
    // its cgroup could not be removed from there
    for d in dirs {
        let _ = std::fs::remove_dir(d);
    }

    // a paused container cannot be thawed without its cgroup: delete
    // --force says so instead of claiming success
    let id = unique_id("hp");
    let pid = run(&id);
    oci.ok(&["pause", &id]);
    let o = in_hidden(&format!("delete --force {id}"));
    let err = text(&o.stderr);
    assert!(
        !o.status.success(),
        "delete of a frozen container succeeded"
    );
    assert!(
        err.contains("did not exit after SIGKILL") && err.contains("not reachable"),
        "{err}"
    );
    assert_eq!(oci.status(&id), "paused", "the container's state is kept");
    oci.ok(&["delete", "--force", &id]);
    assert!(!alive(pid));
}

fn engine_with_image() -> Berth {
    let b = Berth::new(&berth());
    let tar = busybox_tar(b.dir.path());
    b.ok(&["import", tar.to_str().unwrap(), "bb:1"]);
    b
}

/// `berth ARGS` run where cgroupfs is hidden.
fn engine_hidden(b: &Berth, args: &str) -> Output {
    let env = format!(
        "BERTH_ROOT={} BERTH_CONFIG={} DOCKER_CONFIG={}",
        b.root().display(),
        b.dir.path().join("daemon.json").display(),
        b.dir.path().join("docker").display()
    );
    hidden(
        HIDE[0].0,
        &format!("env {env} {} {args} </dev/null", berth().display()),
    )
}

fn state(b: &Berth, c: &str) -> String {
    b.ok(&["inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", c])
        .trim()
        .to_owned()
}

#[test]
fn engine_run_stop_and_rm_where_cgroupfs_is_hidden() {
    if !root_or_skip("hidden cgroupfs") {
        return;
    }
    let b = engine_with_image();
    // run: refused, with the reason
    let o = engine_hidden(&b, "run --network none --name rr bb:1 true");
    assert!(!o.status.success(), "{}", text(&o.stdout));
    let err = text(&o.stderr);
    assert!(
        err.contains("device rules need the devices cgroup controller"),
        "{err}"
    );

    // stop: SIGTERM is ignored by `sleep` as init; the SIGKILL that
    // follows must reach it although the cgroup cannot be read
    b.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "ss",
        "bb:1",
        "sleep",
        "1000",
    ]);
    let o = engine_hidden(&b, "stop -t 1 ss");
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(state(&b, "ss"), "exited 137");

    // rm -f
    b.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "ff",
        "bb:1",
        "sleep",
        "1000",
    ]);
    let pid: i64 = b
        .ok(&["inspect", "-f", "{{.State.Pid}}", "ff"])
        .trim()
        .parse()
        .unwrap();
    let o = engine_hidden(&b, "rm -f ff");
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(!alive(pid));
    assert!(b.fails(&["inspect", "ff"]).contains("No such"));

    // a paused container cannot be stopped from there: an error, not 0
    b.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "pp",
        "bb:1",
        "sleep",
        "1000",
    ]);
    b.ok(&["pause", "pp"]);
    let o = engine_hidden(&b, "stop -t 0 pp");
    assert!(
        !o.status.success(),
        "stop reported success while the container lives"
    );
    assert_eq!(state(&b, "pp"), "paused 0");
    b.ok(&["rm", "-f", "pp"]);
}
