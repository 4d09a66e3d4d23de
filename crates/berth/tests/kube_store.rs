//! `berth server`'s stores seen through the API: etcd 3.4 (Debian's) as
//! the store of two servers that serve one cluster, keys laid out so that
//! `etcdctl` reads them, a server killed while the other keeps serving;
//! history compaction and the 410 a watch from before it gets.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use berth_kv_etcd::testing::{EtcdServer, etcdctl};
use berth_testutil::kube::WriteStorm;
use berth_testutil::{KubeServer, have_kube_py, have_kubectl};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_berth"))
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn cm(name: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata: {{k: v}}\n")
}

#[test]
fn two_servers_on_one_etcd_serve_one_cluster() {
    if !have_kubectl() {
        return;
    }
    let Some(etcd) = EtcdServer::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = format!("etcd://{}", etcd.endpoint.trim_start_matches("http://"));
    let root = dir.path().join("root");
    let mut a = KubeServer::start_shared(
        bin(),
        &root,
        &dir.path().join("a"),
        &["--datastore", &store],
    );
    let b = KubeServer::start_shared(
        bin(),
        &root,
        &dir.path().join("b"),
        &["--datastore", &store],
    );

    a.apply(&cm("from-a"));
    let via_b = json(&b.ok(&["get", "cm", "from-a", "-o", "json"]));
    let via_a = json(&a.ok(&["get", "cm", "from-a", "-o", "json"]));
    assert_eq!(
        via_a["metadata"]["resourceVersion"], via_b["metadata"]["resourceVersion"],
        "one resourceVersion space"
    );
    assert_eq!(via_a["metadata"]["uid"], via_b["metadata"]["uid"]);

    // A watch on b sees what is written through a, from a list's revision.
    let rv = json(&b.ok(&["get", "--raw", "/api/v1/namespaces/default/configmaps"]))["metadata"]["resourceVersion"].as_str().unwrap().to_owned();
    a.apply(&cm("second"));
    let out = b.ok(&[
        "get",
        "--raw",
        &format!(
            "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv}&timeoutSeconds=2"
        ),
    ]);
    let events: Vec<serde_json::Value> = out.lines().map(json).collect();
    assert_eq!(events.len(), 1, "{out}");
    assert_eq!(events[0]["type"], "ADDED");
    assert_eq!(events[0]["object"]["metadata"]["name"], "second");

    // etcdctl reads the keys where kube-apiserver puts them.
    if let Some(ctl) = etcdctl() {
        let out = Command::new(ctl)
            .args([
                "--endpoints",
                &etcd.endpoint,
                "get",
                "--prefix",
                "--keys-only",
                "/registry/configmaps/default/",
            ])
            .env("ETCDCTL_API", "3")
            .output()
            .unwrap();
        let keys = String::from_utf8_lossy(&out.stdout);
        assert!(
            keys.contains("/registry/configmaps/default/from-a")
                && keys.contains("/registry/configmaps/default/second"),
            "{keys}"
        );
        let out = Command::new(etcdctl().unwrap())
            .args([
                "--endpoints",
                &etcd.endpoint,
                "get",
                "--prefix",
                "--keys-only",
                "/registry/namespaces/",
            ])
            .env("ETCDCTL_API", "3")
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).contains("/registry/namespaces/kube-system"));
    }

    // One server killed: the other keeps serving writes and reads; the
    // restarted one sees everything.
    a.kill();
    for i in 0..5 {
        b.apply(&cm(&format!("while-a-down-{i}")));
    }
    a.restart();
    let names = a.ok(&["get", "cm", "-o", "name"]);
    for i in 0..5 {
        assert!(
            names.contains(&format!("configmap/while-a-down-{i}")),
            "{names}"
        );
    }
}

#[test]
fn a_watch_from_compacted_history_gets_410_expired() {
    if !have_kubectl() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = KubeServer::start(bin(), dir.path(), &["--compaction-interval", "1"]);
    s.apply(&cm("old"));
    let rv = json(&s.ok(&["get", "cm", "old", "-o", "json"]))["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    s.apply(&cm("newer"));
    // Two compactor ticks: the history before `newer` is gone.
    std::thread::sleep(Duration::from_millis(2500));
    s.apply(&cm("newest"));
    std::thread::sleep(Duration::from_millis(1200));
    let out = s.ok(&[
        "get",
        "--raw",
        &format!(
            "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv}&timeoutSeconds=2"
        ),
    ]);
    let event = json(out.lines().next().unwrap_or("{}"));
    assert_eq!(event["type"], "ERROR", "{out}");
    assert_eq!(event["object"]["code"], 410);
    assert_eq!(event["object"]["reason"], "Expired");
    assert!(
        event["object"]["message"]
            .as_str()
            .unwrap()
            .starts_with("too old resource version"),
        "{event}"
    );
    // A list at that exact revision is refused the same way.
    let err = s.fails(&[
        "get",
        "--raw",
        &format!(
            "/api/v1/namespaces/default/configmaps?resourceVersion={rv}&resourceVersionMatch=Exact"
        ),
    ]);
    assert!(
        err.contains("Expired") || err.contains("410") || err.contains("too old"),
        "{err}"
    );
    if have_kube_py() {
        let out = s.python(&format!(
            "from kubernetes.client.rest import ApiException\nv1 = client.CoreV1Api()\ntry:\n    for e in watch.Watch().stream(v1.list_namespaced_config_map, 'default', resource_version='{rv}', timeout_seconds=2):\n        print('event', e['type'])\nexcept ApiException as e:\n    print('status', e.status)\n"
        ));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("status 410"),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn sigterm_stops_the_server_cleanly_and_it_starts_again_on_its_store() {
    if !have_kubectl() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut s = KubeServer::start(bin(), dir.path(), &[]);
    s.apply(&cm("kept"));
    let pid = rustix::process::Pid::from_raw(i32::try_from(s.pid()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let status = s
        .wait_exit(Duration::from_secs(10))
        .expect("berth server ends within 10 s of SIGTERM");
    assert!(status.success(), "exit status {status}\n{}", s.log());
    s.restart();
    assert_eq!(
        s.ok(&["get", "cm", "kept", "-o", "jsonpath={.data.k}"]),
        "v"
    );
}

#[test]
fn with_etcd_acknowledged_writes_survive_kill_9_of_the_server_they_went_through() {
    if !have_kubectl() || !have_kube_py() {
        return;
    }
    let Some(etcd) = EtcdServer::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = format!("etcd://{}", etcd.endpoint.trim_start_matches("http://"));
    let root = dir.path().join("root");
    let mut a = KubeServer::start_shared(
        bin(),
        &root,
        &dir.path().join("a"),
        &["--datastore", &store],
    );
    let b = KubeServer::start_shared(
        bin(),
        &root,
        &dir.path().join("b"),
        &["--datastore", &store],
    );
    // A writer storm through a; a is killed with SIGKILL in the middle while
    // b keeps taking writes.
    let mut storm = WriteStorm::start(&a);
    storm.wait_for(100);
    a.kill();
    for i in 0..5 {
        b.apply(&cm(&format!("via-b-{i}")));
    }
    let acked = storm.finish();
    a.restart();
    let stored = a.configmap_versions();
    for (name, rv) in &acked {
        assert_eq!(
            stored.get(name),
            Some(rv),
            "acknowledged {name} at {rv} is missing"
        );
    }
    for i in 0..5 {
        assert!(stored.contains_key(&format!("via-b-{i}")));
    }
}
