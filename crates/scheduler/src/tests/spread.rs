//! PodTopologySpread: DoNotSchedule filters, ScheduleAnyway scores.

use serde_json::json;

use super::*;

fn zoned(name: &str, zone: &str) -> serde_json::Value {
    set(node(name, "8", "16Gi"), "metadata/labels/zone", json!(zone))
}

fn web(name: &str) -> serde_json::Value {
    set(
        pod(name, "100m", "100Mi"),
        "metadata/labels",
        json!({"app": "web"}),
    )
}

fn spread(
    p: serde_json::Value,
    key: &str,
    skew: i32,
    when: &str,
    extra: serde_json::Value,
) -> serde_json::Value {
    let mut c = json!({"maxSkew": skew, "topologyKey": key, "whenUnsatisfiable": when,
        "labelSelector": {"matchLabels": {"app": "web"}}});
    if let (Some(c), Some(e)) = (c.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            c.insert(k.clone(), v.clone());
        }
    }
    set(p, "spec/topologySpreadConstraints", json!([c]))
}

#[test]
fn do_not_schedule_keeps_the_skew() {
    let mut s = cluster(
        vec![zoned("a", "z1"), zoned("b", "z2")],
        vec![on(web("w1"), "a"), on(web("w2"), "a"), on(web("w3"), "b")],
    );
    // z1 has 2, z2 has 1: a new pod in z1 would make the skew 2.
    s.cache.remove_node("b");
    let mut s2 = cluster(
        vec![zoned("a", "z1"), zoned("b", "z2")],
        vec![on(web("w1"), "a"), on(web("w2"), "a"), on(web("w3"), "b")],
    );
    let p = spread(web("p"), "zone", 1, "DoNotSchedule", json!({}));
    assert_eq!(place(&mut s2, p.clone()), Ok("b".into()));
    // With only z1 left... z1 is the only domain, skew 0: fits.
    assert_eq!(place(&mut s, p.clone()), Ok("a".into()));
    // Cordon b: it is still a domain (nodeTaintsPolicy Ignore) but cannot take the pod.
    let b = set(zoned("b", "z2"), "spec/unschedulable", json!(true));
    s2.cache.upsert_node(&as_node(b));
    s2.cache.upsert_pod(&as_pod(on(web("w4"), "a")));
    assert_eq!(
        place(&mut s2, p),
        Err("0/2 nodes are available: 1 node(s) didn't match pod topology spread constraints, 1 node(s) were unschedulable.".into())
    );
}

#[test]
fn missing_topology_label() {
    let mut s = cluster(vec![zoned("a", "z1"), node("bare", "8", "16Gi")], vec![]);
    let p = spread(web("p"), "zone", 1, "DoNotSchedule", json!({}));
    assert_eq!(place(&mut s, p), Ok("a".into()));
    s.cache.remove_node("a");
    let p = spread(web("p"), "zone", 1, "DoNotSchedule", json!({}));
    assert_eq!(
        place(&mut s, p),
        Err("0/1 nodes are available: 1 node(s) didn't match pod topology spread constraints (missing required label).".into())
    );
}

#[test]
fn min_domains_forces_a_new_domain() {
    let mut s = cluster(
        vec![zoned("a", "z1"), zoned("b", "z1")],
        vec![on(web("w1"), "a")],
    );
    let p = spread(
        web("p"),
        "zone",
        1,
        "DoNotSchedule",
        json!({"minDomains": 3}),
    );
    // One domain < 3: the global minimum counts as 0, so z1 (1 + 1 − 0 = 2 > 1) is full.
    assert_eq!(
        place(&mut s, p),
        Err(
            "0/2 nodes are available: 2 node(s) didn't match pod topology spread constraints."
                .into()
        )
    );
}

#[test]
fn node_affinity_policy_limits_the_domains() {
    let c = set(zoned("c", "z3"), "metadata/labels/pool", json!("other"));
    let mut s = cluster(
        vec![
            set(zoned("a", "z1"), "metadata/labels/pool", json!("main")),
            set(zoned("b", "z2"), "metadata/labels/pool", json!("main")),
            c,
        ],
        vec![on(web("w1"), "a"), on(web("w2"), "b")],
    );
    // z3 is not eligible for the pod (nodeSelector), so its 0 does not count.
    let p = set(
        spread(web("p"), "zone", 1, "DoNotSchedule", json!({})),
        "spec/nodeSelector",
        json!({"pool": "main"}),
    );
    assert!(place(&mut s, p).is_ok());
    let p = set(
        spread(
            web("p"),
            "zone",
            1,
            "DoNotSchedule",
            json!({"nodeAffinityPolicy": "Ignore"}),
        ),
        "spec/nodeSelector",
        json!({"pool": "main"}),
    );
    assert_eq!(
        place(&mut s, p),
        Err("0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 2 node(s) didn't match pod topology spread constraints.".into())
    );
}

#[test]
fn schedule_anyway_prefers_the_emptier_domain() {
    let mut s = cluster(
        vec![zoned("a", "z1"), zoned("b", "z2")],
        vec![
            on(web("w1"), "a"),
            on(web("w2"), "a"),
            on(pod("big", "6", "12Gi"), "b"),
        ],
    );
    let p = spread(web("p"), "zone", 1, "ScheduleAnyway", json!({}));
    assert_eq!(place(&mut s, p), Ok("b".into()));
    // Without the constraint, least allocated wins.
    assert_eq!(place(&mut s, web("q")), Ok("a".into()));
}

#[test]
fn match_label_keys() {
    let v1 = |name: &str| set(web(name), "metadata/labels/rev", json!("1"));
    let mut s = cluster(
        vec![zoned("a", "z1"), zoned("b", "z2")],
        vec![on(v1("w1"), "a"), on(v1("w2"), "a"), on(web("old"), "b")],
    );
    let p = spread(
        v1("p"),
        "zone",
        1,
        "DoNotSchedule",
        json!({"matchLabelKeys": ["rev"]}),
    );
    // rev=1 pods: z1 has 2, z2 has 0.
    assert_eq!(place(&mut s, p), Ok("b".into()));
}

fn owned(name: &str) -> serde_json::Value {
    set(
        web(name),
        "metadata/ownerReferences",
        json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u", "controller": true}]),
    )
}

fn default_spread_cluster() -> Scheduler {
    cluster(
        vec![node("a", "8", "16Gi"), node("b", "8", "16Gi")],
        vec![
            on(web("w1"), "a"),
            on(web("w2"), "a"),
            on(pod("big", "2", "4Gi"), "b"),
        ],
    )
}

#[test]
fn system_default_spreading_for_controlled_pods() {
    let mut s = default_spread_cluster();
    // Not selected by anything: least allocated wins.
    assert_eq!(place(&mut s, owned("p")), Ok("a".into()));
    let selector = crate::selectors::Selector::new(Some(
        &serde_json::from_value(json!({"matchLabels": {"app": "web"}})).expect("selector"),
    ));
    s.cache
        .set_controller("ReplicaSet", "default", "rs", Some(selector));
    assert_eq!(place(&mut s, owned("p")), Ok("b".into()));
    // A pod with its own constraints does not get the defaults.
    let own = spread(
        owned("p"),
        "kubernetes.io/hostname",
        10,
        "DoNotSchedule",
        json!({}),
    );
    assert_eq!(place(&mut s, own), Ok("a".into()));
}

#[test]
fn system_default_spreading_for_service_pods() {
    use k8s_openapi::api::core::v1::Service;
    let mut s = default_spread_cluster();
    let svc: Service =
        serde_json::from_value(json!({"metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": {"app": "web"}}}))
        .expect("service");
    s.cache.upsert_service(&svc);
    assert_eq!(place(&mut s, web("p")), Ok("b".into()));
    s.cache.remove_service("default/web");
    assert_eq!(place(&mut s, web("p")), Ok("a".into()));
}
