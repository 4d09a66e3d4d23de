//! Table-style tests of the DaemonSet controller's pure decisions.

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Node, Pod, PodSpec};
use serde_json::{Value, json};

use super::{core, eligibility};
use crate::util::revisions as revision;

fn now() -> Timestamp {
    "2024-01-01T01:00:00Z".parse().expect("ts")
}

fn node(name: &str, labels: Value, taints: Value) -> Node {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {"taints": taints}
    }))
    .expect("node")
}

fn pod_spec(v: Value) -> PodSpec {
    let mut base = json!({"containers": [{"name": "c", "image": "i"}]});
    if let (Some(b), Some(o)) = (base.as_object_mut(), v.as_object()) {
        for (k, val) in o {
            b.insert(k.clone(), val.clone());
        }
    }
    serde_json::from_value(base).expect("spec")
}

#[test]
fn node_eligibility() {
    let linux = json!({"kubernetes.io/os": "linux", "disk": "ssd"});
    let taint = |k: &str, e: &str| json!([{"key": k, "effect": e}]);
    let cases = [
        (json!({}), json!({}), json!([]), (true, true)),
        (
            json!({"nodeSelector": {"disk": "ssd"}}),
            linux.clone(),
            json!([]),
            (true, true),
        ),
        (
            json!({"nodeSelector": {"disk": "hdd"}}),
            linux.clone(),
            json!([]),
            (false, false),
        ),
        (
            json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd", "nvme"]}]}]}}}}),
            linux.clone(),
            json!([]),
            (true, true),
        ),
        (
            json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "disk", "operator": "DoesNotExist"}]}]}}}}),
            linux.clone(),
            json!([]),
            (false, false),
        ),
        (
            json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}}}}),
            linux.clone(),
            json!([]),
            (true, true),
        ),
        (
            json!({"nodeName": "other"}),
            json!({}),
            json!([]),
            (false, false),
        ),
        // Untolerated NoSchedule: not placed, but an existing pod stays.
        (
            json!({}),
            json!({}),
            taint("dedicated", "NoSchedule"),
            (false, true),
        ),
        // Untolerated NoExecute: not placed and evicted.
        (
            json!({}),
            json!({}),
            taint("dedicated", "NoExecute"),
            (false, false),
        ),
        (
            json!({"tolerations": [{"key": "dedicated", "operator": "Exists"}]}),
            json!({}),
            taint("dedicated", "NoExecute"),
            (true, true),
        ),
        (
            json!({"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "x", "effect": "NoSchedule"}]}),
            json!({}),
            json!([{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]),
            (true, true),
        ),
        (
            json!({"tolerations": [{"operator": "Exists"}]}),
            json!({}),
            taint("anything", "NoExecute"),
            (true, true),
        ),
        // The daemon tolerations.
        (
            json!({}),
            json!({}),
            taint("node.kubernetes.io/not-ready", "NoExecute"),
            (true, true),
        ),
        (
            json!({}),
            json!({}),
            taint("node.kubernetes.io/unreachable", "NoExecute"),
            (true, true),
        ),
        (
            json!({}),
            json!({}),
            taint("node.kubernetes.io/unschedulable", "NoSchedule"),
            (true, true),
        ),
        (
            json!({}),
            json!({}),
            taint("node.kubernetes.io/disk-pressure", "NoSchedule"),
            (true, true),
        ),
        (
            json!({}),
            json!({}),
            taint("node.kubernetes.io/memory-pressure", "NoSchedule"),
            (true, true),
        ),
        (
            json!({}),
            json!({}),
            taint("node.kubernetes.io/pid-pressure", "NoSchedule"),
            (true, true),
        ),
        (
            json!({}),
            json!({}),
            taint("node.kubernetes.io/network-unavailable", "NoSchedule"),
            (false, true),
        ),
        (
            json!({"hostNetwork": true}),
            json!({}),
            taint("node.kubernetes.io/network-unavailable", "NoSchedule"),
            (true, true),
        ),
    ];
    for (spec, labels, taints, want) in cases {
        let n = node("n1", labels, taints.clone());
        assert_eq!(
            eligibility::should_run(&pod_spec(spec.clone()), &n),
            want,
            "{spec} on {taints}"
        );
    }
}

fn ds(spec: Value) -> DaemonSet {
    let mut s = json!({
        "selector": {"matchLabels": {"app": "agent"}},
        "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": [{"name": "c", "image": "agent:1"}]}},
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    });
    if let (Some(b), Some(o)) = (s.as_object_mut(), spec.as_object()) {
        for (k, v) in o {
            b.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(json!({"metadata": {"name": "agent", "namespace": "kube-system", "uid": "d1", "generation": 1}, "spec": s}))
        .expect("ds")
}

fn rev(d: &DaemonSet, n: i64) -> ControllerRevision {
    revision::new_revision(
        crate::util::owner::controller_ref_for(d),
        "kube-system",
        None,
        revision::template_patch(&d.spec.clone().unwrap_or_default().template),
        n,
        None,
    )
}

fn pod(name: &str, node: &str, hash: &str, ready: bool) -> Pod {
    let mut p = json!({
        "metadata": {"name": name, "namespace": "kube-system", "uid": format!("uid-{name}"),
                     "creationTimestamp": "2024-01-01T00:00:00Z",
                     "labels": {"app": "agent", "controller-revision-hash": hash}},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i"}]},
        "status": {"phase": "Running"}
    });
    if ready {
        p["status"]["conditions"] = json!([{"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}]);
    }
    serde_json::from_value(p).expect("pod")
}

fn target(p: &Pod) -> Option<String> {
    p.spec.as_ref().and_then(eligibility::target_node)
}

#[test]
fn one_pod_per_eligible_node() {
    let d = ds(json!({}));
    let r = rev(&d, 1);
    let h = revision::hash_of(&r).to_owned();
    let nodes = [
        node("n1", json!({}), json!([])),
        node("n2", json!({}), json!([])),
        node(
            "n3",
            json!({}),
            json!([{"key": "gpu", "effect": "NoExecute"}]),
        ),
    ];
    let pods = [
        pod("agent-a", "n2", &h, true),
        pod("agent-b", "n3", &h, true),
        pod("agent-c", "gone", &h, true),
    ];
    let p = core::plan(&d, &nodes, &pods, std::slice::from_ref(&r), now());
    let targets: Vec<Option<String>> = p.create_pods.iter().map(target).collect();
    assert_eq!(targets, vec![Some("n1".to_owned())]);
    let mut deleted = p.delete_pods.clone();
    deleted.sort();
    assert_eq!(deleted, vec!["agent-b", "agent-c"]);
    let created = &p.create_pods[0];
    assert_eq!(created.metadata.generate_name.as_deref(), Some("agent-"));
    let labels = created.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels["controller-revision-hash"], h);
    assert_eq!(labels["pod-template-generation"], "1");
    let spec = created.spec.clone().unwrap_or_default();
    assert!(spec.node_name.is_none(), "the scheduler binds it");
    let keys: Vec<String> = spec
        .tolerations
        .unwrap_or_default()
        .iter()
        .filter_map(|t| t.key.clone())
        .collect();
    assert_eq!(keys.len(), 6);
    assert!(keys.contains(&"node.kubernetes.io/unschedulable".to_owned()));
    let st = &p.status;
    assert_eq!(
        (
            st.desired_number_scheduled,
            st.current_number_scheduled,
            st.number_misscheduled,
            st.number_ready
        ),
        (2, 1, 1, 1)
    );
    assert_eq!(
        (
            st.number_available,
            st.number_unavailable,
            st.updated_number_scheduled
        ),
        (Some(1), Some(1), Some(1))
    );
    assert_eq!(st.observed_generation, Some(1));
    assert!(p.create_revision.is_none());
}

#[test]
fn rolling_updates_respect_max_unavailable_and_max_surge() {
    let old_ds = ds(json!({}));
    let old = rev(&old_ds, 1);
    let oh = revision::hash_of(&old).to_owned();
    let nodes: Vec<Node> = (1..=3)
        .map(|i| node(&format!("n{i}"), json!({}), json!([])))
        .collect();
    let olds: Vec<Pod> = (1..=3)
        .map(|i| pod(&format!("old-{i}"), &format!("n{i}"), &oh, true))
        .collect();
    let new_tpl = json!({"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": [{"name": "c", "image": "agent:2"}]}});
    let strategy = |mu: Value, ms: Value| json!({"template": new_tpl.clone(), "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": mu, "maxSurge": ms}}});
    let cases: [(Value, usize, usize); 4] = [
        (strategy(json!(1), json!(0)), 1, 0),
        (strategy(json!(2), json!(0)), 2, 0),
        (strategy(json!("100%"), json!(0)), 3, 0),
        (strategy(json!(0), json!(1)), 0, 1),
    ];
    for (spec, deletes, creates) in cases {
        let d = ds(spec.clone());
        let p = core::plan(&d, &nodes, &olds, std::slice::from_ref(&old), now());
        let new = p.create_revision.clone().expect("new revision");
        assert_eq!(new.revision, 2);
        assert_eq!(p.delete_pods.len(), deletes, "{spec}");
        assert_eq!(p.create_pods.len(), creates, "{spec}");
    }
    // Surge: once the new pod is available, the old one goes.
    let d = ds(strategy(json!(0), json!(1)));
    let nh = revision::hash(
        &revision::template_patch(&d.spec.clone().unwrap_or_default().template),
        None,
    );
    let mut pods = olds.clone();
    pods.push(pod("new-1", "n1", &nh, true));
    let p = core::plan(&d, &nodes, &pods, std::slice::from_ref(&old), now());
    assert!(p.delete_pods.contains(&"old-1".to_owned()));
    assert_eq!(p.create_pods.len(), 1, "the next node surges");
    // OnDelete: nothing is replaced.
    let d = ds(json!({"template": new_tpl, "updateStrategy": {"type": "OnDelete"}}));
    let p = core::plan(&d, &nodes, &olds, std::slice::from_ref(&old), now());
    assert!(p.delete_pods.is_empty() && p.create_pods.is_empty());
    assert_eq!(p.status.updated_number_scheduled, Some(0));
}

#[test]
fn failed_daemon_pods_are_replaced_with_a_warning() {
    let d = ds(json!({}));
    let r = rev(&d, 1);
    let h = revision::hash_of(&r).to_owned();
    let mut failed = pod("agent-x", "n1", &h, false);
    if let Some(s) = failed.status.as_mut() {
        s.phase = Some("Failed".to_owned());
    }
    let p = core::plan(
        &d,
        &[node("n1", json!({}), json!([]))],
        &[failed],
        std::slice::from_ref(&r),
        now(),
    );
    assert_eq!(p.delete_pods, vec!["agent-x"]);
    assert_eq!(p.create_pods.len(), 1);
    assert_eq!(
        p.events,
        vec![(
            true,
            "FailedDaemonPod",
            "Found failed daemon pod kube-system/agent-x on node n1, will try to kill it"
                .to_owned()
        )]
    );
}

#[test]
fn pinned_pods_name_their_node() {
    let mut spec = pod_spec(
        json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}]}}}}),
    );
    eligibility::pin_to_node(&mut spec, "n7");
    assert_eq!(eligibility::target_node(&spec).as_deref(), Some("n7"));
    let terms = spec
        .affinity
        .and_then(|a| a.node_affinity)
        .and_then(|n| n.required_during_scheduling_ignored_during_execution)
        .map(|s| s.node_selector_terms)
        .unwrap_or_default();
    assert_eq!(terms.len(), 1);
    assert!(terms[0].match_expressions.is_none());
}
