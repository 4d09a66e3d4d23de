//! The scores, their normalization and weights, and the tie-break.

use serde_json::json;

use super::*;
use crate::plugins::{self, fit};

fn info(s: &Scheduler, p: serde_json::Value) -> crate::pod_info::PodInfo {
    s.cache.pod_info(&as_pod(p))
}

#[test]
fn least_allocated_numbers() {
    let s = cluster(
        vec![node("a", "4", "8Gi")],
        vec![on(pod("x", "1", "2Gi"), "a")],
    );
    let n = s.cache.node("a").expect("node");
    // (4000-2000)/4000 and (8Gi-4Gi)/8Gi: 50 each.
    assert_eq!(fit::least_allocated(&info(&s, pod("p", "1", "2Gi")), n), 50);
    // A pod without requests counts 100m and 200Mi.
    assert_eq!(
        fit::least_allocated(&info(&s, pod("p", "", "")), n),
        (2900 * 100 / 4000 + ((8192 - 2048 - 200) * 100 / 8192)) / 2
    );
}

#[test]
fn balanced_allocation_numbers() {
    let s = cluster(vec![node("a", "4", "8Gi")], vec![]);
    let n = s.cache.node("a").expect("node");
    assert_eq!(
        fit::balanced_allocation(&info(&s, pod("p", "1", "2Gi")), n),
        100
    );
    // cpu 0.5, memory 0.125: 100 × (1 − 0.1875) = 81.
    assert_eq!(
        fit::balanced_allocation(&info(&s, pod("p", "2", "1Gi")), n),
        81
    );
    assert!(fit::balanced_skips(&info(&s, pod("p", "", ""))));
}

#[test]
fn picks_least_allocated_node() {
    let mut s = cluster(
        vec![
            node("a", "4", "8Gi"),
            node("b", "4", "8Gi"),
            node("c", "4", "8Gi"),
        ],
        vec![on(pod("x", "2", "4Gi"), "a"), on(pod("y", "1", "1Gi"), "b")],
    );
    assert_eq!(place(&mut s, pod("p", "500m", "512Mi")), Ok("c".into()));
}

#[test]
fn ties_break_by_name() {
    let mut s = cluster(
        vec![
            node("c", "4", "8Gi"),
            node("a", "4", "8Gi"),
            node("b", "4", "8Gi"),
        ],
        vec![],
    );
    assert_eq!(place(&mut s, pod("p", "1", "1Gi")), Ok("a".into()));
}

#[test]
fn consecutive_pods_spread_when_assumed() {
    let mut s = cluster(vec![node("a", "4", "8Gi"), node("b", "4", "8Gi")], vec![]);
    let mut placed = Vec::new();
    for i in 0..4 {
        let p = as_pod(pod(&format!("p{i}"), "1", "1Gi"));
        let d = s.schedule(&p).expect("fits");
        let info = s.cache.pod_info(&p);
        s.cache.assume(info, &d.node);
        placed.push(d.node);
    }
    assert_eq!(placed, vec!["a", "b", "a", "b"]);
    assert_eq!(
        place(&mut s, pod("big", "3", "1Gi")),
        Err("0/2 nodes are available: 2 Insufficient cpu.".into())
    );
}

#[test]
fn prefer_no_schedule_taint_lowers_score() {
    let tainted = set(
        node("a", "8", "16Gi"),
        "spec/taints",
        json!([{"key": "k", "effect": "PreferNoSchedule"}]),
    );
    let mut s = cluster(vec![tainted, node("b", "4", "8Gi")], vec![]);
    assert_eq!(place(&mut s, pod("p", "1", "1Gi")), Ok("b".into()));
    let tolerant = set(
        pod("p", "1", "1Gi"),
        "spec/tolerations",
        json!([{"key": "k", "operator": "Exists", "effect": "PreferNoSchedule"}]),
    );
    assert_eq!(place(&mut s, tolerant), Ok("a".into()));
}

#[test]
fn preferred_node_affinity() {
    let a = set(node("a", "4", "8Gi"), "metadata/labels/disk", json!("ssd"));
    let mut s = cluster(vec![a, node("b", "8", "16Gi")], vec![]);
    let p = set(
        pod("p", "1", "1Gi"),
        "spec/affinity/nodeAffinity/preferredDuringSchedulingIgnoredDuringExecution",
        json!([{"weight": 50, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}}]),
    );
    assert_eq!(place(&mut s, p), Ok("a".into()));
    assert_eq!(place(&mut s, pod("q", "1", "1Gi")), Ok("b".into()));
}

#[test]
fn image_locality() {
    let mut a = node("a", "4", "8Gi");
    a["status"]["images"] = json!([{"names": ["registry/big:v1"], "sizeBytes": 900 * 1024 * 1024}]);
    let mut s = cluster(
        vec![a, node("b", "4", "8Gi"), node("c", "4", "8Gi")],
        vec![],
    );
    let mut p = pod("p", "1", "1Gi");
    p["spec"]["containers"][0]["image"] = json!("registry/big:v1");
    let i = info(&s, p.clone());
    // 900MB × 1/3 spread, between 23MB and 1000MB.
    let n = s.cache.node("a").expect("node");
    let spreads = plugins::images::spreads(&i, &s.cache);
    assert_eq!(
        plugins::images::score(&spreads, n),
        100 * (300 * 1024 * 1024 - 23 * 1024 * 1024) / (977 * 1024 * 1024)
    );
    assert_eq!(place(&mut s, p), Ok("a".into()));
}

#[test]
fn normalizers() {
    let mut v = vec![0, 2, 4];
    plugins::default_normalize(&mut v, false);
    assert_eq!(v, vec![0, 50, 100]);
    let mut v = vec![0, 2, 4];
    plugins::default_normalize(&mut v, true);
    assert_eq!(v, vec![100, 50, 0]);
    let mut v = vec![0, 0];
    plugins::default_normalize(&mut v, true);
    assert_eq!(v, vec![100, 100]);
    let mut v = vec![-10, 0, 10];
    plugins::min_max_normalize(&mut v);
    assert_eq!(v, vec![0, 50, 100]);
}

#[test]
fn share_of_nodes_considered() {
    let s = Scheduler::new();
    assert_eq!(s.feasible_nodes_to_find(50), 50);
    assert_eq!(s.feasible_nodes_to_find(100), 100);
    assert_eq!(s.feasible_nodes_to_find(1000), 420);
    assert_eq!(s.feasible_nodes_to_find(5000), 500);
    assert_eq!(s.feasible_nodes_to_find(100_000), 5000);
}
