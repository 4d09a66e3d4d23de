//! The cache: per-node totals kept incrementally, placeholders, images.

use serde_json::json;

use super::*;

#[test]
fn totals_follow_pods() {
    let mut s = cluster(
        vec![node("a", "4", "8Gi")],
        vec![on(pod("x", "1", "1Gi"), "a"), on(pod("y", "500m", ""), "a")],
    );
    let n = s.cache.node("a").expect("node");
    assert_eq!(n.requested.milli_cpu, 1500);
    assert_eq!(n.requested.memory, 1 << 30);
    // y has no memory request: 200Mi when scoring.
    assert_eq!(n.non_zero_requested.memory, (1 << 30) + (200 << 20));
    assert_eq!(n.pods.len(), 2);
    s.cache.remove_pod("default/x");
    let n = s.cache.node("a").expect("node");
    assert_eq!(n.requested.milli_cpu, 500);
    assert_eq!(n.pods.len(), 1);
    // Updating a pod replaces it.
    s.cache.upsert_pod(&as_pod(on(pod("y", "2", ""), "a")));
    assert_eq!(s.cache.node("a").expect("node").requested.milli_cpu, 2000);
}

#[test]
fn pods_of_unknown_nodes_wait_for_them() {
    let mut s = cluster(vec![], vec![on(pod("x", "1", "1Gi"), "later")]);
    assert_eq!(s.cache.node_count(), 0);
    assert!(s.cache.node("later").is_none());
    s.cache.upsert_node(&as_node(node("later", "2", "4Gi")));
    assert_eq!(
        s.cache.node("later").expect("node").requested.milli_cpu,
        1000
    );
    // Removing the node keeps its pods' accounting until they go.
    s.cache.remove_node("later");
    assert_eq!(s.cache.node_count(), 0);
    assert_eq!(s.cache.node_of("default/x"), Some("later"));
    s.cache.remove_pod("default/x");
    assert!(s.cache.node_slots().is_empty());
}

#[test]
fn node_updates_report_relevant_changes() {
    let mut s = cluster(vec![node("a", "4", "8Gi")], vec![]);
    // Same object again: nothing changed.
    assert!(!s.cache.upsert_node(&as_node(node("a", "4", "8Gi"))));
    assert!(s.cache.upsert_node(&as_node(node("a", "8", "8Gi"))));
    assert!(s.cache.upsert_node(&as_node(set(
        node("a", "8", "8Gi"),
        "metadata/labels/x",
        json!("y")
    ))));
    assert!(s.cache.upsert_node(&as_node(node("b", "1", "1Gi"))));
}

#[test]
fn image_spread_counts() {
    let with = |name: &str| {
        let mut n = node(name, "1", "1Gi");
        n["status"]["images"] = json!([{"names": ["img:v1"], "sizeBytes": 1}]);
        n
    };
    let mut s = cluster(vec![with("a"), with("b"), node("c", "1", "1Gi")], vec![]);
    assert_eq!(s.cache.nodes_with_image("img:v1"), 2);
    s.cache.upsert_node(&as_node(node("a", "1", "1Gi")));
    assert_eq!(s.cache.nodes_with_image("img:v1"), 1);
    s.cache.remove_node("b");
    assert_eq!(s.cache.nodes_with_image("img:v1"), 0);
}

#[test]
fn affinity_counters() {
    let anti = set(
        pod("g", "", ""),
        "spec/affinity/podAntiAffinity/requiredDuringSchedulingIgnoredDuringExecution",
        json!([{"labelSelector": {}, "topologyKey": "kubernetes.io/hostname"}]),
    );
    let mut s = cluster(vec![node("a", "1", "1Gi")], vec![on(anti, "a")]);
    assert_eq!(s.cache.pods_with_affinity(), 1);
    assert_eq!(s.cache.pods_with_required_anti_affinity(), 1);
    s.cache.remove_pod("default/g");
    assert_eq!(s.cache.pods_with_required_anti_affinity(), 0);
}
