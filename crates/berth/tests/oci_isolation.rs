//! Isolation, checked from inside real containers with the probe.
//! Privileged: runs as root (CI does); skipped otherwise, with a message.

use std::path::PathBuf;

use berth_testutil::{Bundle, Oci, busybox_rootfs, root_or_skip, unique_id};

fn berth() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_berth"))
}

/// Runs `args` in a fresh container built from `edit`ed default config;
/// returns (exit code, stdout, stderr).
fn run_in(args: &[&str], edit: impl FnOnce(&mut serde_json::Value)) -> (i32, String, String) {
    let oci = Oci::new(&berth());
    let mut b = Bundle::new(&berth(), &busybox_rootfs(), args);
    edit(&mut b.config);
    b.write();
    let id = unique_id("iso");
    let out = oci.run(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn run_ok(args: &[&str], edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let (code, out, err) = run_in(args, edit);
    assert_eq!(code, 0, "container failed: stdout={out} stderr={err}");
    out
}

fn with_default_seccomp(cfg: &mut serde_json::Value) {
    let caps: Vec<String> = cfg["process"]["capabilities"]["bounding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    cfg["linux"]["seccomp"] =
        serde_json::to_value(berth_runtime::seccomp::default_profile(&caps)).unwrap();
}

#[test]
fn the_process_is_pid_1_and_host_processes_are_invisible() {
    if !root_or_skip("pid namespace") {
        return;
    }
    let out = run_ok(&["berth-probe", "pid"], |_| {});
    assert!(out.contains("pid=1\n"), "{out}");
    assert!(out.contains("ppid=0\n"), "{out}");
    let out = run_ok(&["sh", "-c", "ls /proc | grep -c '^[0-9]'"], |_| {});
    let n: u32 = out.trim().parse().unwrap();
    // sh, ls and grep at most: nothing of the host
    assert!(n <= 4, "{n} processes visible");
}

#[test]
fn hostname_and_domainname_are_set() {
    if !root_or_skip("uts namespace") {
        return;
    }
    let out = run_ok(
        &["sh", "-c", "hostname; cat /proc/sys/kernel/domainname"],
        |c| {
            c["hostname"] = "probe-host".into();
            c["domainname"] = "probe.example".into();
        },
    );
    assert_eq!(out, "probe-host\nprobe.example\n");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_ne!(host.trim(), "probe-host", "the host's name must not change");
}

#[test]
fn mounts_are_as_specified() {
    if !root_or_skip("mounts") {
        return;
    }
    let out = run_ok(&["cat", "/proc/self/mountinfo"], |_| {});
    let find = |mp: &str| {
        out.lines()
            .find(|l| l.split(' ').nth(4) == Some(mp))
            .unwrap_or_else(|| panic!("no mount on {mp}:\n{out}"))
            .to_owned()
    };
    let opts = |l: &str| l.split(' ').nth(5).unwrap().to_owned();
    let fstype = |l: &str| {
        l.split(" - ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .to_owned()
    };
    let root = find("/");
    assert!(
        opts(&root).starts_with("ro"),
        "rootfs must be read-only: {root}"
    );
    assert_eq!(fstype(&find("/proc")), "proc");
    let dev = find("/dev");
    assert_eq!(fstype(&dev), "tmpfs");
    assert!(opts(&dev).contains("nosuid"), "{dev}");
    assert_eq!(fstype(&find("/dev/pts")), "devpts");
    assert_eq!(fstype(&find("/dev/shm")), "tmpfs");
    assert_eq!(fstype(&find("/dev/mqueue")), "mqueue");
    let sys = find("/sys");
    assert_eq!(fstype(&sys), "sysfs");
    assert!(opts(&sys).starts_with("ro"), "{sys}");
    // no host mount points leak in
    for l in out.lines() {
        let mp = l.split(' ').nth(4).unwrap();
        assert!(
            !mp.starts_with("/work") && !mp.starts_with("/home") && !mp.starts_with("/var/lib"),
            "{l}"
        );
    }
}

#[test]
fn default_devices_and_symlinks_exist() {
    if !root_or_skip("devices") {
        return;
    }
    let out = run_ok(
        &[
            "sh",
            "-c",
            "ls -l /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty; readlink /dev/fd; readlink /dev/ptmx; echo x > /dev/null && echo write-ok",
        ],
        |_| {},
    );
    for (name, nums) in [
        ("null", "1,   3"),
        ("zero", "1,   5"),
        ("urandom", "1,   9"),
        ("tty", "5,   0"),
    ] {
        assert!(
            out.lines()
                .any(|l| l.starts_with("crw-rw-rw-") && l.contains(nums) && l.ends_with(name)),
            "{name}: {out}"
        );
    }
    assert!(out.contains("/proc/self/fd\npts/ptmx\nwrite-ok"), "{out}");
}

#[test]
fn masked_paths_are_unreadable_and_readonly_paths_unwritable() {
    if !root_or_skip("masked paths") {
        return;
    }
    let out = run_ok(
        &[
            "sh",
            "-c",
            "berth-probe read /proc/timer_list; berth-probe read /proc/keys; ls -A /sys/firmware | wc -l; \
          berth-probe write /proc/irq/default_smp_affinity 1; berth-probe write /proc/sys/kernel/domainname x; \
          berth-probe write /sys/fs/cgroup/x 1; berth-probe write /probe-file x",
        ],
        |_| {},
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "bytes=0", "/proc/timer_list: {out}");
    assert_eq!(lines[1], "bytes=0", "/proc/keys: {out}");
    assert_eq!(lines[2].trim(), "0", "/sys/firmware: {out}");
    assert!(lines[3] == "errno=30", "/proc/irq must be read-only: {out}");
    assert_eq!(lines[4], "errno=30", "/proc/sys must be read-only: {out}");
    assert!(
        lines[5] == "errno=30" || lines[5] == "errno=2",
        "/sys/fs/cgroup: {out}"
    );
    assert_eq!(lines[6], "errno=30", "read-only rootfs: {out}");
}

#[test]
fn masking_refuses_a_fake_dev_null() {
    if !root_or_skip("masked paths") {
        return;
    }
    // A spec that binds a regular file over /dev/null: masking with it
    // would expose a writable file instead of hiding the target.
    let t = tempfile::tempdir().unwrap();
    let fake = t.path().join("fake-null");
    std::fs::write(&fake, "").unwrap();
    let (code, _, err) = run_in(&["true"], |c| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.push(
            serde_json::json!({"destination": "/dev/null", "type": "bind",
            "source": fake.to_str().unwrap(), "options": ["bind"]}),
        );
    });
    assert_ne!(code, 0);
    assert!(err.contains("not the null device"), "{err}");
}

#[test]
fn capabilities_are_as_configured_and_inheritable_is_empty() {
    if !root_or_skip("capabilities") {
        return;
    }
    let out = run_ok(&["berth-probe", "status"], |_| {});
    let field = |k: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}:")))
            .map(|v| v.trim().to_owned())
            .unwrap()
    };
    // CAP_KILL (5), CAP_NET_BIND_SERVICE (10), CAP_AUDIT_WRITE (29)
    let want = format!("{:016x}", (1u64 << 5) | (1 << 10) | (1 << 29));
    assert_eq!(field("CapEff"), want);
    assert_eq!(field("CapPrm"), want);
    assert_eq!(field("CapBnd"), want);
    assert_eq!(field("CapInh"), "0000000000000000");
    assert_eq!(field("NoNewPrivs"), "1");

    // exec gets the same, and --cap adds to it
    let oci = Oci::new(&berth());
    let b = Bundle::new(&berth(), &busybox_rootfs(), &["sleep", "30"]);
    let id = unique_id("caps");
    oci.detached(&["run", "-d", "--bundle", b.path().to_str().unwrap(), &id]);
    let out = oci.ok(&["exec", "--cap", "CAP_CHOWN", &id, "berth-probe", "status"]);
    let eff = out
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .unwrap()
        .trim()
        .to_owned();
    assert_eq!(
        eff,
        format!("{:016x}", 1u64 | (1 << 5) | (1 << 10) | (1 << 29))
    );
    let inh = out
        .lines()
        .find_map(|l| l.strip_prefix("CapInh:"))
        .unwrap()
        .trim()
        .to_owned();
    assert_eq!(inh, "0000000000000000");
}

#[test]
fn the_default_seccomp_profile_blocks_dangerous_syscalls() {
    if !root_or_skip("seccomp") {
        return;
    }
    let calls = [
        "keyctl",
        "add_key",
        "unshare-user",
        "bpf",
        "userfaultfd",
        "perf_event_open",
        "mount",
        "getpid",
    ];
    let script: Vec<String> = calls
        .iter()
        .map(|c| format!("berth-probe syscall {c}"))
        .collect();
    let out = run_ok(
        &[
            "sh",
            "-c",
            &format!("{}; grep Seccomp: /proc/self/status", script.join("; ")),
        ],
        with_default_seccomp,
    );
    let lines: Vec<&str> = out.lines().collect();
    for (i, c) in calls.iter().enumerate() {
        let want = if *c == "getpid" { "errno=0" } else { "errno=1" };
        assert_eq!(lines[i], want, "{c}: {out}");
    }
    assert!(lines[calls.len()].ends_with("\t2"), "filter mode: {out}");
}

#[test]
fn seccomp_without_no_new_privs_and_errno_values() {
    if !root_or_skip("seccomp") {
        return;
    }
    let out = run_ok(
        &[
            "sh",
            "-c",
            "berth-probe syscall getpid; berth-probe syscall keyctl; grep NoNewPrivs /proc/self/status",
        ],
        |c| {
            c["process"]["noNewPrivileges"] = false.into();
            c["linux"]["seccomp"] = serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["keyctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]});
        },
    );
    assert_eq!(out, "errno=0\nerrno=38\nNoNewPrivs:\t0\n");
}

#[test]
fn the_memory_limit_oom_kills_only_the_container() {
    if !root_or_skip("memory cgroup") {
        return;
    }
    let (code, out, err) = run_in(&["berth-probe", "alloc", "256"], |c| {
        c["linux"]["resources"]["memory"] =
            serde_json::json!({"limit": 33554432, "swap": 33554432});
    });
    assert_eq!(
        code, 137,
        "expected SIGKILL by the OOM killer; stdout={out} stderr={err}"
    );
    assert!(!out.contains("done"));
    // and a container within its limit is fine
    let out = run_ok(&["berth-probe", "alloc", "8"], |c| {
        c["linux"]["resources"]["memory"] =
            serde_json::json!({"limit": 33554432, "swap": 33554432});
    });
    assert_eq!(out, "done\n");
}

#[test]
fn a_fork_bomb_stops_at_the_pids_limit() {
    if !root_or_skip("pids cgroup") {
        return;
    }
    let out = run_ok(&["berth-probe", "forkbomb"], |c| {
        c["linux"]["resources"]["pids"] = serde_json::json!({"limit": 16});
    });
    let forked: u32 = out
        .split_whitespace()
        .find_map(|w| w.strip_prefix("forked="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(forked < 16, "{out}");
    assert!(out.contains("errno=11"), "EAGAIN expected: {out}");
}

#[test]
fn no_file_descriptors_leak_into_the_container() {
    if !root_or_skip("fds") {
        return;
    }
    let out = run_ok(&["berth-probe", "fds"], |_| {});
    let fds = out.trim().strip_prefix("fds=").unwrap();
    let nums: Vec<&str> = fds
        .split(',')
        .map(|f| f.split(':').next().unwrap())
        .collect();
    assert_eq!(nums, ["0", "1", "2"], "{out}");

    // --preserve-fds passes exactly the fds asked for; exec too
    let oci = Oci::new(&berth());
    let b = Bundle::new(&berth(), &busybox_rootfs(), &["berth-probe", "fds"]);
    let id = unique_id("fds");
    let cmd = format!(
        "exec 3</etc/hostname 4</etc/hostname; exec {} oci --root {} run --preserve-fds 1 --bundle {} {}",
        berth().display(),
        oci.root.path().display(),
        b.path().display(),
        id
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &cmd])
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    let nums: Vec<&str> = s
        .trim()
        .trim_start_matches("fds=")
        .split(',')
        .map(|f| f.split(':').next().unwrap())
        .collect();
    assert_eq!(
        nums,
        ["0", "1", "2", "3"],
        "{s} {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_user_namespace_maps_root() {
    if !root_or_skip("user namespace") {
        return;
    }
    let out = run_ok(
        &[
            "sh",
            "-c",
            "id -u; cat /proc/self/uid_map /proc/self/gid_map",
        ],
        |c| {
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({"type": "user"}));
            c["linux"]["uidMappings"] =
                serde_json::json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
            c["linux"]["gidMappings"] =
                serde_json::json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
        },
    );
    let norm: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(norm, ["0", "0 200000 65536", "0 200000 65536"], "{out}");
}

#[test]
fn rlimits_sysctls_and_user() {
    if !root_or_skip("rlimits") {
        return;
    }
    let out = run_ok(
        &[
            "sh",
            "-c",
            "ulimit -n; ulimit -Hn; cat /proc/sys/kernel/shm_rmid_forced; id -u; id -g; id -G; umask; \
             cat /proc/self/oom_score_adj",
        ],
        |c| {
            c["process"]["rlimits"] =
                serde_json::json!([{"type": "RLIMIT_NOFILE", "hard": 2048, "soft": 512}]);
            c["linux"]["sysctl"] = serde_json::json!({"kernel.shm_rmid_forced": "1"});
            c["process"]["oomScoreAdj"] = 500.into();
            c["process"]["user"] = serde_json::json!({"uid": 1000, "gid": 1000, "additionalGids": [5, 65534], "umask": 63});
        },
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..5], ["512", "2048", "1", "1000", "1000"], "{out}");
    let groups: Vec<&str> = lines[5].split_whitespace().collect();
    assert!(groups.contains(&"5") && groups.contains(&"65534"), "{out}");
    assert_eq!(lines[6], "0077");
    assert_eq!(lines.get(7), Some(&"500"), "{out}");
}

#[test]
fn an_rlimit_above_the_hosts_hard_limit_is_refused_by_name() {
    if !root_or_skip("rlimits") {
        return;
    }
    let host_hard = rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum;
    let Some(host_hard) = host_hard else {
        eprintln!("skipping: unlimited RLIMIT_NOFILE on this host");
        return;
    };
    let caps = berth_sys_caps_effective();
    if caps & (1 << 24) != 0 {
        eprintln!("skipping: the runtime holds CAP_SYS_RESOURCE here and may raise limits");
        return;
    }
    let (code, _, err) = run_in(&["true"], |c| {
        c["process"]["rlimits"] =
            serde_json::json!([{"type": "RLIMIT_NOFILE", "hard": host_hard + 1, "soft": 1024}]);
    });
    assert_ne!(code, 0);
    assert!(
        err.contains("RLIMIT_NOFILE") && err.contains(&host_hard.to_string()),
        "{err}"
    );
}

fn berth_sys_caps_effective() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let v = s
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .unwrap()
        .trim();
    u64::from_str_radix(v, 16).unwrap()
}

#[test]
fn non_namespaced_sysctls_are_refused() {
    if !root_or_skip("sysctls") {
        return;
    }
    let (code, _, err) = run_in(&["true"], |c| {
        c["linux"]["sysctl"] = serde_json::json!({"kernel.core_pattern": "|/tmp/evil"});
    });
    assert_ne!(code, 0);
    assert!(err.contains("not namespaced"), "{err}");
    let (code, _, err) = run_in(&["true"], |c| {
        c["linux"]["sysctl"] =
            serde_json::json!({"kernel.shm_rmid_forced": "1+kernel.core_pattern=|/tmp/evil"});
    });
    assert_ne!(code, 0);
    assert!(err.contains("contains '+'"), "{err}");
}

#[test]
fn signals_start_with_default_dispositions_and_an_empty_mask() {
    if !root_or_skip("signals") {
        return;
    }
    // berth's own runtime ignores SIGPIPE and blocks signals while it
    // waits; none of that may reach the container process.
    // (grep, a C program that leaves signals alone, reads its own status)
    let out = run_ok(
        &["grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"],
        |_| {},
    );
    for field in ["SigBlk", "SigIgn"] {
        let v = out
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .unwrap()
            .trim()
            .to_owned();
        assert_eq!(v, "0000000000000000", "{field}: {out}");
    }
}

#[test]
fn no_pivot_and_no_new_keyring_work() {
    if !root_or_skip("no-pivot") {
        return;
    }
    let oci = Oci::new(&berth());
    let b = Bundle::new(
        &berth(),
        &busybox_rootfs(),
        &["sh", "-c", "ls /; cat /proc/self/mountinfo | wc -l"],
    );
    let id = unique_id("nopivot");
    let out = oci.ok(&[
        "run",
        "--no-pivot",
        "--no-new-keyring",
        "--bundle",
        b.path().to_str().unwrap(),
        &id,
    ]);
    assert!(out.contains("bin\n") && out.contains("proc\n"), "{out}");
    // with pivot_root the host's mounts are detached; without it they are
    // only out of reach, but the rootfs must still be the root
    assert!(!out.contains("work\n"), "{out}");
}

#[test]
fn overlay_and_bind_mounts_from_the_spec() {
    if !root_or_skip("overlay") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let (lower, upper, work, shared) = (
        t.path().join("lower"),
        t.path().join("upper"),
        t.path().join("work"),
        t.path().join("shared"),
    );
    for d in [&lower, &upper, &work, &shared] {
        std::fs::create_dir(d).unwrap();
    }
    std::fs::write(lower.join("from-lower"), "L").unwrap();
    std::fs::write(shared.join("host-file"), "H").unwrap();
    let out = run_ok(
        &[
            "sh",
            "-c",
            "cat /data/from-lower; echo C > /data/from-container; cat /host/host-file; \
            echo x > /host/nope 2>/dev/null || echo host-ro",
        ],
        |c| {
            let m = c["mounts"].as_array_mut().unwrap();
            m.push(serde_json::json!({"destination": "/data", "type": "overlay", "source": "overlay",
                "options": [format!("lowerdir={}", lower.display()), format!("upperdir={}", upper.display()),
                            format!("workdir={}", work.display())]}));
            m.push(serde_json::json!({"destination": "/host", "type": "bind",
                "source": shared.to_str().unwrap(), "options": ["rbind", "ro"]}));
        },
    );
    assert_eq!(out, "LHhost-ro\n");
    assert_eq!(
        std::fs::read_to_string(upper.join("from-container")).unwrap(),
        "C\n"
    );
    assert!(
        !lower.join("from-container").exists(),
        "the lower layer stays intact"
    );
    assert!(!shared.join("nope").exists());
}

#[test]
fn a_container_joins_another_containers_namespaces_by_path() {
    if !root_or_skip("namespace paths") {
        return;
    }
    // The building block of pods: a sandbox, and a container in its
    // network, ipc and uts namespaces.
    let oci = Oci::new(&berth());
    let mut sandbox = Bundle::new(&berth(), &busybox_rootfs(), &["sleep", "30"]);
    sandbox.config["hostname"] = "pod-host".into();
    sandbox.write();
    let sid = unique_id("sandbox");
    oci.detached(&[
        "run",
        "-d",
        "--bundle",
        sandbox.path().to_str().unwrap(),
        &sid,
    ]);
    let pid = oci.state(&sid)["pid"].as_i64().unwrap();
    let mut member = Bundle::new(
        &berth(),
        &busybox_rootfs(),
        &[
            "sh",
            "-c",
            "hostname; readlink /proc/self/ns/net; readlink /proc/self/ns/ipc",
        ],
    );
    member.config["hostname"] = serde_json::Value::Null;
    let ns = member.config["linux"]["namespaces"].as_array_mut().unwrap();
    for (t, name) in [("network", "net"), ("ipc", "ipc"), ("uts", "uts")] {
        ns.retain(|n| n["type"] != t);
        ns.push(serde_json::json!({"type": t, "path": format!("/proc/{pid}/ns/{name}")}));
    }
    member.write();
    let out = oci.ok(&[
        "run",
        "--bundle",
        member.path().to_str().unwrap(),
        &unique_id("member"),
    ]);
    let want_net = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    assert!(out.starts_with("pod-host\n"), "{out}");
    assert!(
        out.contains(want_net.to_str().unwrap()),
        "{out} vs {}",
        want_net.display()
    );
    // a path of the wrong type is refused
    let mut wrong = Bundle::new(&berth(), &busybox_rootfs(), &["true"]);
    let ns = wrong.config["linux"]["namespaces"].as_array_mut().unwrap();
    ns.retain(|n| n["type"] != "network");
    ns.push(serde_json::json!({"type": "network", "path": format!("/proc/{pid}/ns/ipc")}));
    wrong.write();
    let err = oci.fails(&[
        "run",
        "--bundle",
        wrong.path().to_str().unwrap(),
        &unique_id("wrong"),
    ]);
    assert!(err.contains("is not a net namespace"), "{err}");
    oci.ok(&["kill", &sid, "KILL"]);
}

#[test]
fn ambient_capabilities_reach_a_non_root_process() {
    if !root_or_skip("capabilities") {
        return;
    }
    let out = run_ok(&["grep", "^Cap", "/proc/self/status"], |c| {
        c["process"]["user"] = serde_json::json!({"uid": 1000, "gid": 1000});
        let caps = serde_json::json!(["CAP_NET_BIND_SERVICE", "CAP_CHOWN"]);
        for set in [
            "bounding",
            "effective",
            "permitted",
            "inheritable",
            "ambient",
        ] {
            c["process"]["capabilities"][set] = caps.clone();
        }
    });
    let want = format!("{:016x}", 1u64 | (1 << 10));
    for field in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        let v = out
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .unwrap()
            .trim();
        assert_eq!(v, want, "{field}: {out}");
    }
}

#[test]
fn cpu_and_cpuset_limits_reach_the_cgroup() {
    if !root_or_skip("cpu cgroup") {
        return;
    }
    let v1 = std::path::Path::new("/sys/fs/cgroup/cpu/cpu.shares").exists();
    let script = if v1 {
        "cat /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us /sys/fs/cgroup/cpuset/cpuset.cpus"
    } else {
        "cat /sys/fs/cgroup/cpu.weight /sys/fs/cgroup/cpu.max /sys/fs/cgroup/cpuset.cpus"
    };
    let out = run_ok(&["sh", "-c", script], |c| {
        c["linux"]["resources"]["cpu"] =
            serde_json::json!({"shares": 512, "quota": 25000, "period": 100000, "cpus": "0"});
    });
    if v1 {
        assert_eq!(out, "512\n25000\n100000\n0\n");
    } else {
        assert_eq!(out, "20\n25000 100000\n0\n");
    }
}
