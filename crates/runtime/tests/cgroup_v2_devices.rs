//! The cgroup v2 device filter, enforced by the real kernel: a process in a
//! cgroup2 directory with berth's program may open /dev/null but not
//! /dev/zero. Runs wherever a cgroup2 hierarchy is mounted (on hybrid hosts
//! that is /sys/fs/cgroup/unified), as root.

use std::process::Command;

use berth_runtime::cgroups::{Layout, devices_bpf, host_dir, resources::DeviceRule};

#[test]
fn the_device_program_is_enforced_by_the_kernel() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipping: needs root");
        return;
    }
    let layout = Layout::detect().unwrap();
    let Some(u) = layout.unified else {
        eprintln!("skipping: no cgroup2 hierarchy mounted");
        return;
    };
    let own = host_dir(&u.mountpoint, &u.mount_root, &u.own_path);
    let dir = own.join(format!("berth-devtest-{}", std::process::id()));
    std::fs::create_dir(&dir).unwrap();
    struct Rm(std::path::PathBuf);
    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(&self.0);
        }
    }
    let _rm = Rm(dir.clone());
    let rules = vec![
        DeviceRule {
            allow: false,
            kind: 'a',
            major: None,
            minor: None,
            access: "rwm".into(),
        },
        DeviceRule {
            allow: true,
            kind: 'c',
            major: Some(1),
            minor: Some(3),
            access: "rwm".into(),
        },
    ];
    devices_bpf::attach(&dir, &rules).expect("the verifier accepts the program");
    let script = format!(
        "echo $$ > {}/cgroup.procs && head -c 1 /dev/null && echo null-ok; head -c 1 /dev/zero >/dev/null 2>&1 || echo zero-denied",
        dir.display()
    );
    let out = Command::new("sh").args(["-c", &script]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text,
        "null-ok\nzero-denied\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
