//! cgroup logic against fake cgroupfs trees (no root, no real cgroupfs).

use super::*;
use std::fs;

fn fake_v2() -> (tempfile::TempDir, Layout) {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("cg2");
    fs::create_dir_all(&root).unwrap();
    fs::write(
        root.join("cgroup.controllers"),
        "cpuset cpu io memory hugetlb pids rdma\n",
    )
    .unwrap();
    fs::write(root.join("cgroup.subtree_control"), "").unwrap();
    let mi = format!("30 23 0:26 / {} rw - cgroup2 cgroup2 rw\n", root.display());
    let layout = Layout::parse(&mi, "0::/\n");
    (t, layout)
}

#[test]
fn v2_plan_create_apply_on_a_fake_tree() {
    let (t, layout) = fake_v2();
    let root = t.path().join("cg2");
    let cg = Cgroup::plan(&layout, Some("/berth/c1"), "c1", false).unwrap();
    assert_eq!(
        cg,
        Cgroup::V2 {
            dir: root.join("berth/c1"),
            root: root.clone()
        }
    );

    // The fake "kernel": parents offer controllers once created.
    fs::create_dir_all(root.join("berth")).unwrap();
    fs::write(
        root.join("berth/cgroup.controllers"),
        "cpuset cpu io memory hugetlb pids\n",
    )
    .unwrap();
    fs::write(root.join("berth/cgroup.subtree_control"), "").unwrap();
    cg.create().unwrap();
    let sub = fs::read_to_string(root.join("cgroup.subtree_control")).unwrap();
    assert_eq!(sub, "+cpuset +cpu +io +memory +hugetlb +pids +rdma");
    let sub = fs::read_to_string(root.join("berth/cgroup.subtree_control")).unwrap();
    assert_eq!(sub, "+cpuset +cpu +io +memory +hugetlb +pids");

    let dir = root.join("berth/c1");
    for f in [
        "memory.max",
        "memory.swap.max",
        "cpu.weight",
        "cpu.max",
        "pids.max",
        "cgroup.procs",
    ] {
        fs::write(dir.join(f), "").unwrap();
    }
    let r: LinuxResources = serde_json::from_str(
        r#"{"memory":{"limit":67108864,"swap":134217728},"cpu":{"shares":2048,"quota":25000,
        "period":100000},"pids":{"limit":100}}"#,
    )
    .unwrap();
    cg.apply(Some(&r), &[]).unwrap();
    let read = |f: &str| fs::read_to_string(dir.join(f)).unwrap();
    assert_eq!(read("memory.max"), "67108864");
    assert_eq!(read("memory.swap.max"), "67108864");
    assert_eq!(read("cpu.weight"), "79");
    assert_eq!(read("cpu.max"), "25000 100000");
    assert_eq!(read("pids.max"), "100");

    cg.add_pid(4242).unwrap();
    fs::write(dir.join("cgroup.procs"), "4242\n4243\n").unwrap();
    assert_eq!(cg.pids().unwrap(), vec![4242, 4243]);

    // A file the kernel does not offer is a clear error, not silence.
    let r: LinuxResources =
        serde_json::from_str(r#"{"hugepageLimits":[{"pageSize":"1GB","limit":1}]}"#).unwrap();
    let err = cg.apply(Some(&r), &[]).unwrap_err().to_string();
    assert!(err.contains("hugetlb.1GB.max"), "{err}");

    // Freeze: the fake kernel reports frozen at once.
    fs::write(dir.join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
    cg.set_frozen(true).unwrap();
    assert!(cg.is_frozen());
}

#[test]
fn v2_relative_path_goes_under_own_cgroup() {
    let (_t, mut layout) = fake_v2();
    layout.unified.as_mut().unwrap().own_path = "/user.slice/s1".into();
    let cg = Cgroup::plan(&layout, None, "abc", false).unwrap();
    let Cgroup::V2 { dir, .. } = cg else { panic!() };
    assert!(dir.ends_with("user.slice/s1/abc"), "{}", dir.display());
    let cg = Cgroup::plan(&layout, Some("pod/x"), "abc", false).unwrap();
    let Cgroup::V2 { dir, .. } = cg else { panic!() };
    assert!(dir.ends_with("user.slice/s1/pod/x"), "{}", dir.display());
}

#[test]
fn refuses_escaping_and_systemd_paths() {
    let (_t, layout) = fake_v2();
    assert!(Cgroup::plan(&layout, Some("/a/../../etc"), "x", false).is_err());
    let e = Cgroup::plan(&layout, Some("system.slice:berth:x"), "x", false).unwrap_err();
    assert!(e.to_string().contains("systemd"));
}

#[test]
fn v1_hybrid_plan_uses_unified_for_hugetlb() {
    let mi = "\
32 31 0:29 / /fake/cpu rw - cgroup cgroup rw,cpu
35 31 0:32 / /fake/memory rw - cgroup cgroup rw,memory
40 31 0:37 / /fake/systemd rw - cgroup cgroup rw,name=systemd
41 31 0:38 / /fake/unified rw - cgroup2 cgroup2 rw
";
    let layout = Layout::parse(mi, "4:memory:/sess\n1:cpu:/\n0::/\n");
    let cg = Cgroup::plan(&layout, None, "c", true).unwrap();
    let Cgroup::V1 { dirs, unified } = &cg else {
        panic!()
    };
    assert_eq!(dirs["memory"], Path::new("/fake/memory/sess/c"));
    assert_eq!(dirs["cpu"], Path::new("/fake/cpu/c"));
    assert!(!dirs.contains_key("name=systemd"));
    assert_eq!(unified.as_deref(), Some(Path::new("/fake/unified/c")));
    let cg = Cgroup::plan(&layout, None, "c", false).unwrap();
    assert!(matches!(cg, Cgroup::V1 { unified: None, .. }));
}

#[test]
fn state_serialisation_is_stable() {
    let cg = Cgroup::V2 {
        dir: "/sys/fs/cgroup/x".into(),
        root: "/sys/fs/cgroup".into(),
    };
    let s = serde_json::to_string(&cg).unwrap();
    assert_eq!(
        s,
        r#"{"version":"v2","dir":"/sys/fs/cgroup/x","root":"/sys/fs/cgroup"}"#
    );
    assert_eq!(serde_json::from_str::<Cgroup>(&s).unwrap(), cg);
}

#[test]
fn v1_device_rules_without_the_devices_controller_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let mem = t.path().join("memory");
    fs::create_dir_all(&mem).unwrap();
    let mi = format!(
        "35 31 0:32 / {} rw - cgroup cgroup rw,memory\n",
        mem.display()
    );
    let layout = Layout::parse(&mi, "4:memory:/\n");
    let cg = Cgroup::plan(&layout, None, "c", false).unwrap();
    let deny: LinuxResources =
        serde_json::from_str(r#"{"devices":[{"allow":false,"access":"rwm"}]}"#).unwrap();
    let rules = resources::container_device_rules(Some(&deny), &[]).unwrap();
    let err = cg.check_devices(&rules).unwrap_err().to_string();
    assert!(err.contains("devices cgroup controller"), "{err}");
    cg.create().unwrap();
    let err = cg.apply(None, &rules).unwrap_err().to_string();
    assert!(err.contains("devices cgroup controller"), "{err}");
    // no hierarchy at all (cgroupfs hidden): the same
    let none = Cgroup::plan(&Layout::default(), None, "c", false).unwrap();
    assert!(none.check_devices(&rules).is_err());
    // rules that allow everything need no controller
    let all: LinuxResources =
        serde_json::from_str(r#"{"devices":[{"allow":true,"access":"rwm"}]}"#).unwrap();
    let rules = resources::container_device_rules(Some(&all), &[]).unwrap();
    none.check_devices(&rules).unwrap();
}
