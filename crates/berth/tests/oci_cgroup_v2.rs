//! cgroup v2 with a real kernel on a hybrid host: in a private mount
//! namespace whose /sys/fs/cgroup is only the cgroup2 hierarchy, berth
//! detects v2 and manages containers with it (CLONE_INTO_CGROUP, a cgroup
//! namespace showing the container's own cgroup, the eBPF device filter,
//! cgroup.freeze for pause). On a pure v2 host the other tests cover this
//! path directly.

use std::path::PathBuf;
use std::process::Command;

use berth_testutil::{Bundle, busybox_rootfs, root_or_skip, unique_id};

fn berth() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_berth"))
}

#[test]
fn containers_run_with_cgroup_v2() {
    if !root_or_skip("cgroup v2") {
        return;
    }
    // (f_type's integer type differs between architectures)
    #[allow(clippy::unnecessary_cast)]
    let is_cgroup2 = |p: &str| {
        rustix::fs::statfs(p)
            .map(|s| s.f_type as i64 == 0x6367_7270)
            .unwrap_or(false)
    };
    let pure_v2 = is_cgroup2("/sys/fs/cgroup");
    if !pure_v2 && !is_cgroup2("/sys/fs/cgroup/unified") {
        eprintln!("skipping: no cgroup2 hierarchy on this host");
        return;
    }
    let state = tempfile::tempdir().unwrap();
    let mut b = Bundle::new(
        &berth(),
        &busybox_rootfs(),
        &[
            "sh",
            "-c",
            "stat -f -c %t /sys/fs/cgroup; cat /proc/self/cgroup; \
            head -c 1 /dev/null && echo null-ok; \
            mknod /dev/tty1x c 4 1 && berth-probe read /dev/tty1x",
        ],
    );
    for set in ["bounding", "effective", "permitted"] {
        b.config["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push("CAP_MKNOD".into());
    }
    b.write();
    let sleeper = Bundle::new(&berth(), &busybox_rootfs(), &["sleep", "30"]);
    let (id1, id2) = (unique_id("v2"), unique_id("v2"));
    let oci = format!(
        "{} oci --root {}",
        berth().display(),
        state.path().display()
    );
    let script = format!(
        "set -e
         umount -R /sys/fs/cgroup 2>/dev/null || umount -l /sys/fs/cgroup
         mount -t cgroup2 cgroup2 /sys/fs/cgroup
         {oci} run --bundle {b1} {id1}
         {oci} run -d --bundle {b2} {id2} >/dev/null 2>&1
         {oci} pause {id2}; {oci} state {id2} | grep -o '\"status\": \"[a-z]*\"'
         {oci} resume {id2}; {oci} state {id2} | grep -o '\"status\": \"[a-z]*\"'
         ls -d /sys/fs/cgroup/{id2} >/dev/null && echo cgroup-exists
         {oci} delete --force {id2}
         test ! -e /sys/fs/cgroup/{id2} && echo cgroup-removed",
        b1 = b.path().display(),
        b2 = sleeper.path().display(),
    );
    let script = if pure_v2 {
        script
            .replace(
                "umount -R /sys/fs/cgroup 2>/dev/null || umount -l /sys/fs/cgroup\n",
                "",
            )
            .replace("mount -t cgroup2 cgroup2 /sys/fs/cgroup\n", "")
    } else {
        script
    };
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout: {text}\nstderr: {err}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "63677270", "/sys/fs/cgroup is cgroup2: {text}");
    assert!(
        lines.contains(&"0::/"),
        "the cgroup namespace shows the container's cgroup as its root: {text}"
    );
    assert!(
        text.contains("null-ok\nerrno=1\n"),
        "the device filter must refuse c 4:1 (EPERM): {text}"
    );
    assert!(
        text.contains(
            "\"status\": \"paused\"\n\"status\": \"running\"\ncgroup-exists\ncgroup-removed"
        ),
        "{text}"
    );
}
