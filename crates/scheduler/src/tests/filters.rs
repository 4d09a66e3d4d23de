//! The filters, one at a time, with kube's messages.

use serde_json::json;

use super::*;

#[test]
fn no_nodes() {
    let mut s = cluster(vec![], vec![]);
    assert_eq!(
        place(&mut s, pod("p", "1", "")),
        Err("no nodes available to schedule pods".into())
    );
}

#[test]
fn insufficient_cpu() {
    let mut s = cluster(vec![node("n1", "1", "1Gi")], vec![]);
    assert_eq!(
        place(&mut s, pod("p", "2", "")),
        Err("0/1 nodes are available: 1 Insufficient cpu.".into())
    );
}

#[test]
fn insufficient_counts_bound_pods() {
    let mut s = cluster(
        vec![node("n1", "2", "4Gi")],
        vec![on(pod("a", "1500m", "1Gi"), "n1")],
    );
    assert_eq!(
        place(&mut s, pod("p", "1", "4Gi")),
        Err("0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory.".into())
    );
    assert_eq!(place(&mut s, pod("q", "500m", "3Gi")), Ok("n1".into()));
}

#[test]
fn taint_and_memory_mix() {
    let tainted = set(
        node("a", "4", "8Gi"),
        "spec/taints",
        json!([{"key": "node-role", "value": "x", "effect": "NoSchedule"}]),
    );
    let mut s = cluster(
        vec![tainted, node("b", "4", "1Gi"), node("c", "4", "1Gi")],
        vec![],
    );
    assert_eq!(
        place(&mut s, pod("p", "1", "2Gi")),
        Err("0/3 nodes are available: 1 node(s) had untolerated taint {node-role: x}, 2 Insufficient memory.".into())
    );
    let tolerant = set(
        pod("p", "1", "2Gi"),
        "spec/tolerations",
        json!([{"key": "node-role", "operator": "Exists"}]),
    );
    assert_eq!(place(&mut s, tolerant), Ok("a".into()));
}

#[test]
fn no_execute_taint_and_prefer_no_schedule_passes() {
    let t = |effect: &str| {
        set(
            node("a", "4", "8Gi"),
            "spec/taints",
            json!([{"key": "k", "effect": effect}]),
        )
    };
    let mut s = cluster(vec![t("NoExecute")], vec![]);
    assert_eq!(
        place(&mut s, pod("p", "", "")),
        Err("0/1 nodes are available: 1 node(s) had untolerated taint {k: }.".into())
    );
    let mut s = cluster(vec![t("PreferNoSchedule")], vec![]);
    assert_eq!(place(&mut s, pod("p", "", "")), Ok("a".into()));
}

#[test]
fn too_many_pods() {
    let small = set(
        node("n1", "4", "8Gi"),
        "status/allocatable/pods",
        json!("1"),
    );
    let mut s = cluster(vec![small], vec![on(pod("a", "", ""), "n1")]);
    assert_eq!(
        place(&mut s, pod("p", "", "")),
        Err("0/1 nodes are available: 1 Too many pods.".into())
    );
}

#[test]
fn extended_resources_and_ephemeral_storage() {
    let mut gpu = node("g", "4", "8Gi");
    gpu["status"]["allocatable"]["example.com/gpu"] = json!("2");
    let mut s = cluster(vec![gpu, node("plain", "4", "8Gi")], vec![]);
    let p = json!({"metadata": {"name": "p", "namespace": "default"}, "spec": {"containers": [
        {"name": "c", "resources": {"requests": {"example.com/gpu": "3", "ephemeral-storage": "1Gi"}}}]}});
    assert_eq!(
        place(&mut s, p),
        Err("0/2 nodes are available: 2 Insufficient example.com/gpu.".into())
    );
    let p = json!({"metadata": {"name": "p", "namespace": "default"}, "spec": {"containers": [
        {"name": "c", "resources": {"requests": {"example.com/gpu": "1"}}}]}});
    assert_eq!(place(&mut s, p), Ok("g".into()));
    let p = json!({"metadata": {"name": "p", "namespace": "default"}, "spec": {"containers": [
        {"name": "c", "resources": {"requests": {"ephemeral-storage": "200Gi"}}}]}});
    assert_eq!(
        place(&mut s, p),
        Err("0/2 nodes are available: 2 Insufficient ephemeral-storage.".into())
    );
}

#[test]
fn init_containers_and_overhead_count() {
    let mut s = cluster(vec![node("n1", "2", "8Gi")], vec![]);
    let p = json!({"metadata": {"name": "p", "namespace": "default"}, "spec": {
        "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "3"}}}],
        "containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]}});
    assert_eq!(
        place(&mut s, p),
        Err("0/1 nodes are available: 1 Insufficient cpu.".into())
    );
    let p = json!({"metadata": {"name": "p", "namespace": "default"}, "spec": {
        "overhead": {"cpu": "1500m"},
        "containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}]}});
    assert_eq!(
        place(&mut s, p),
        Err("0/1 nodes are available: 1 Insufficient cpu.".into())
    );
}

#[test]
fn node_name() {
    let mut s = cluster(vec![node("a", "1", "1Gi"), node("b", "1", "1Gi")], vec![]);
    let p = set(pod("p", "", ""), "spec/nodeName", json!("b"));
    assert_eq!(place(&mut s, p), Ok("b".into()));
    let p = set(pod("p", "", ""), "spec/nodeName", json!("zz"));
    assert_eq!(
        place(&mut s, p),
        Err("0/2 nodes are available: 2 node(s) didn't match the requested node name.".into())
    );
}

#[test]
fn unschedulable_node_and_its_toleration() {
    let cordoned = set(node("a", "1", "1Gi"), "spec/unschedulable", json!(true));
    let mut s = cluster(vec![cordoned], vec![]);
    assert_eq!(
        place(&mut s, pod("p", "", "")),
        Err("0/1 nodes are available: 1 node(s) were unschedulable.".into())
    );
    let p = set(
        pod("p", "", ""),
        "spec/tolerations",
        json!([{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]),
    );
    assert_eq!(place(&mut s, p), Ok("a".into()));
}

#[test]
fn node_selector_and_required_affinity() {
    let a = set(node("a", "1", "1Gi"), "metadata/labels/disk", json!("ssd"));
    let b = set(
        set(node("b", "1", "1Gi"), "metadata/labels/disk", json!("hdd")),
        "metadata/labels/cores",
        json!("16"),
    );
    let mut s = cluster(vec![a, b], vec![]);
    let p = set(
        pod("p", "", ""),
        "spec/nodeSelector",
        json!({"disk": "ssd"}),
    );
    assert_eq!(place(&mut s, p), Ok("a".into()));
    let p = set(
        pod("p", "", ""),
        "spec/nodeSelector",
        json!({"disk": "nvme"}),
    );
    assert_eq!(
        place(&mut s, p),
        Err("0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector.".into())
    );
    let req = |exprs: serde_json::Value| {
        set(
            pod("p", "", ""),
            "spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution",
            json!({"nodeSelectorTerms": [{"matchExpressions": exprs}]}),
        )
    };
    assert_eq!(
        place(
            &mut s,
            req(json!([{"key": "cores", "operator": "Gt", "values": ["8"]}]))
        ),
        Ok("b".into())
    );
    assert_eq!(
        place(
            &mut s,
            req(json!([{"key": "disk", "operator": "NotIn", "values": ["hdd"]}]))
        ),
        Ok("a".into())
    );
    assert_eq!(
        place(
            &mut s,
            req(json!([{"key": "cores", "operator": "DoesNotExist"}]))
        ),
        Ok("a".into())
    );
    assert_eq!(
        place(
            &mut s,
            req(json!([{"key": "cores", "operator": "Lt", "values": ["8"]}]))
        )
        .ok(),
        None
    );
    let by_name = set(
        pod("p", "", ""),
        "spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution",
        json!({"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["b"]}]}]}),
    );
    assert_eq!(place(&mut s, by_name), Ok("b".into()));
    let by_name = set(
        pod("p", "", ""),
        "spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution",
        json!({"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["zz"]}]}]}),
    );
    assert_eq!(
        place(&mut s, by_name),
        Err("0/2 nodes are available: 2 node(s) didn't satisfy plugin(s) [NodeAffinity].".into())
    );
}

#[test]
fn host_ports() {
    let with_port = |name: &str, port: i32| {
        json!({"metadata": {"name": name, "namespace": "default"}, "spec": {"containers": [
            {"name": "c", "ports": [{"containerPort": 80, "hostPort": port}]}]}})
    };
    let mut s = cluster(
        vec![node("a", "1", "1Gi")],
        vec![on(with_port("web", 8080), "a")],
    );
    assert_eq!(
        place(&mut s, with_port("p", 8080)),
        Err("0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports.".into())
    );
    assert_eq!(place(&mut s, with_port("p", 8081)), Ok("a".into()));
}

#[test]
fn volume_node_affinity() {
    use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
    let a = set(node("a", "1", "1Gi"), "metadata/labels/zone", json!("z1"));
    let b = set(node("b", "1", "1Gi"), "metadata/labels/zone", json!("z2"));
    let mut s = cluster(vec![a, b], vec![]);
    let pv: PersistentVolume = serde_json::from_value(json!({"metadata": {"name": "pv1"}, "spec": {"nodeAffinity": {"required": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z2"]}]}]}}}}))
    .expect("pv");
    let pvc: PersistentVolumeClaim =
        serde_json::from_value(json!({"metadata": {"name": "data", "namespace": "default"}, "spec": {"volumeName": "pv1"}})).expect("pvc");
    s.cache.upsert_volume(&pv);
    s.cache.upsert_claim(&pvc);
    let p = |claim: &str| {
        set(
            pod("p", "", ""),
            "spec/volumes",
            json!([{"name": "v", "persistentVolumeClaim": {"claimName": claim}}]),
        )
    };
    assert_eq!(place(&mut s, p("data")), Ok("b".into()));
    assert_eq!(
        place(&mut s, p("nope")),
        Err("0/2 nodes are available: persistentvolumeclaim \"nope\" not found.".into())
    );
    s.cache.remove_node("b");
    assert_eq!(
        place(&mut s, p("data")),
        Err("0/1 nodes are available: 1 node(s) had volume node affinity conflict.".into())
    );
}

#[test]
fn conflicting_node_name_terms() {
    let mut s = cluster(vec![node("a", "1", "1Gi")], vec![]);
    let p = set(
        pod("p", "", ""),
        "spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution",
        json!({"nodeSelectorTerms": [{"matchFields": [
            {"key": "metadata.name", "operator": "In", "values": ["a"]},
            {"key": "metadata.name", "operator": "In", "values": ["b"]}]}]}),
    );
    assert_eq!(
        place(&mut s, p),
        Err("0/1 nodes are available: pod affinity terms conflict.".into())
    );
}
