//! InterPodAffinity: required and preferred, both directions.

use serde_json::json;

use super::*;

fn zoned(name: &str, zone: &str) -> serde_json::Value {
    set(node(name, "4", "8Gi"), "metadata/labels/zone", json!(zone))
}

fn labelled(name: &str, app: &str) -> serde_json::Value {
    set(
        pod(name, "100m", "100Mi"),
        "metadata/labels",
        json!({"app": app}),
    )
}

fn term(app: &str, key: &str) -> serde_json::Value {
    json!({"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": key})
}

fn with_required(p: serde_json::Value, kind: &str, terms: serde_json::Value) -> serde_json::Value {
    set(
        p,
        &format!("spec/affinity/{kind}/requiredDuringSchedulingIgnoredDuringExecution"),
        terms,
    )
}

#[test]
fn required_affinity_follows_the_pods() {
    let mut s = cluster(
        vec![zoned("a", "z1"), zoned("b", "z2"), zoned("c", "z2")],
        vec![on(labelled("db", "db"), "b")],
    );
    let p = with_required(
        labelled("web", "web"),
        "podAffinity",
        json!([term("db", "zone")]),
    );
    // b and c share zone z2; c is emptier.
    assert_eq!(place(&mut s, p), Ok("c".into()));
    let p = with_required(
        labelled("web", "web"),
        "podAffinity",
        json!([term("cache", "zone")]),
    );
    assert_eq!(
        place(&mut s, p),
        Err("0/3 nodes are available: 3 node(s) didn't match pod affinity rules.".into())
    );
}

#[test]
fn first_pod_of_a_self_affine_group_goes_anywhere() {
    let mut s = cluster(vec![zoned("a", "z1")], vec![]);
    let p = with_required(
        labelled("web", "web"),
        "podAffinity",
        json!([term("web", "zone")]),
    );
    assert_eq!(place(&mut s, p), Ok("a".into()));
    // A node without the topology label never matches.
    let mut s = cluster(vec![node("a", "4", "8Gi")], vec![]);
    let p = with_required(
        labelled("web", "web"),
        "podAffinity",
        json!([term("web", "zone")]),
    );
    assert_eq!(
        place(&mut s, p),
        Err("0/1 nodes are available: 1 node(s) didn't match pod affinity rules.".into())
    );
}

#[test]
fn required_anti_affinity() {
    let mut s = cluster(
        vec![zoned("a", "z1"), zoned("b", "z2")],
        vec![on(labelled("web1", "web"), "a")],
    );
    let p = with_required(
        labelled("web2", "web"),
        "podAntiAffinity",
        json!([term("web", "kubernetes.io/hostname")]),
    );
    assert_eq!(place(&mut s, p), Ok("b".into()));
    let mut s = cluster(
        vec![zoned("a", "z1"), zoned("b", "z1")],
        vec![on(labelled("web1", "web"), "a")],
    );
    let p = with_required(
        labelled("web2", "web"),
        "podAntiAffinity",
        json!([term("web", "zone")]),
    );
    assert_eq!(
        place(&mut s, p),
        Err("0/2 nodes are available: 2 node(s) didn't match pod anti-affinity rules.".into())
    );
}

#[test]
fn existing_pods_anti_affinity() {
    let guard = with_required(
        labelled("guard", "guard"),
        "podAntiAffinity",
        json!([term("web", "kubernetes.io/hostname")]),
    );
    let mut s = cluster(
        vec![zoned("a", "z1"), zoned("b", "z1")],
        vec![on(guard, "a")],
    );
    assert_eq!(place(&mut s, labelled("web", "web")), Ok("b".into()));
    s.cache.remove_node("b");
    assert_eq!(
        place(&mut s, labelled("web", "web")),
        Err(
            "0/1 nodes are available: 1 node(s) didn't satisfy existing pods anti-affinity rules."
                .into()
        )
    );
    // Pods the term does not select are unaffected.
    assert_eq!(place(&mut s, labelled("db", "db")), Ok("a".into()));
}

#[test]
fn namespaces_and_namespace_selector() {
    use k8s_openapi::api::core::v1::Namespace;
    let mut other = labelled("db", "db");
    other["metadata"]["namespace"] = json!("data");
    let mut s = cluster(
        vec![zoned("a", "z1"), zoned("b", "z2")],
        vec![on(other, "b")],
    );
    let ns: Namespace =
        serde_json::from_value(json!({"metadata": {"name": "data", "labels": {"team": "x"}}}))
            .expect("ns");
    s.cache.upsert_namespace(&ns);
    // Same namespace only by default: no db pod in "default".
    let p = with_required(
        labelled("web", "web"),
        "podAffinity",
        json!([term("db", "zone")]),
    );
    assert!(place(&mut s, p).is_err());
    let mut t = term("db", "zone");
    t["namespaces"] = json!(["data"]);
    let p = with_required(labelled("web", "web"), "podAffinity", json!([t]));
    assert_eq!(place(&mut s, p), Ok("b".into()));
    let mut t = term("db", "zone");
    t["namespaceSelector"] = json!({"matchLabels": {"team": "x"}});
    let p = with_required(labelled("web", "web"), "podAffinity", json!([t]));
    assert_eq!(place(&mut s, p), Ok("b".into()));
    let mut t = term("db", "zone");
    t["namespaceSelector"] = json!({});
    let p = with_required(labelled("web", "web"), "podAffinity", json!([t]));
    assert_eq!(place(&mut s, p), Ok("b".into()));
}

#[test]
fn preferred_affinity_and_anti_affinity_score() {
    let mut s = cluster(
        vec![zoned("a", "z1"), zoned("b", "z2")],
        vec![
            on(labelled("db", "db"), "a"),
            on(labelled("db2", "db"), "a"),
        ],
    );
    let pref = |kind: &str| {
        set(
            labelled("web", "web"),
            &format!("spec/affinity/{kind}/preferredDuringSchedulingIgnoredDuringExecution"),
            json!([{"weight": 100, "podAffinityTerm": term("db", "zone")}]),
        )
    };
    assert_eq!(place(&mut s, pref("podAffinity")), Ok("a".into()));
    assert_eq!(place(&mut s, pref("podAntiAffinity")), Ok("b".into()));
}

#[test]
fn existing_pods_preferred_terms_attract() {
    let magnet = set(
        labelled("m", "m"),
        "spec/affinity/podAffinity/preferredDuringSchedulingIgnoredDuringExecution",
        json!([{"weight": 100, "podAffinityTerm": term("web", "zone")}]),
    );
    let mut s = cluster(
        vec![zoned("a", "z1"), zoned("b", "z2")],
        vec![on(magnet, "b"), on(pod("filler", "1", "1Gi"), "b")],
    );
    assert_eq!(place(&mut s, labelled("web", "web")), Ok("b".into()));
}
