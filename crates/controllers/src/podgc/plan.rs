//! What kube's pod garbage collector deletes, decided from the pods and
//! nodes in hand: terminated pods over the threshold (evicted ones first,
//! then the oldest), pods bound to a node gone for the quarantine time,
//! terminating pods never scheduled, and terminating pods on a node that
//! is not ready and carries the `out-of-service` taint.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// The taint an operator sets on a node that is down for good.
pub const OUT_OF_SERVICE: &str = "node.kubernetes.io/out-of-service";
/// The reason of the DisruptionTarget condition on an orphaned pod.
pub const ORPHAN_REASON: &str = "DeletionByPodGC";
/// Its message.
pub const ORPHAN_MESSAGE: &str = "PodGC: node no longer exists";

/// A pod by namespace and name.
pub type PodKey = (String, String);

/// What to delete, each list forced (grace period 0) but the terminated.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Terminated pods beyond the threshold.
    pub terminated: Vec<PodKey>,
    /// Pods on nodes that no longer exist: marked Failed with the
    /// DisruptionTarget condition, then deleted.
    pub orphaned: Vec<PodKey>,
    /// Terminating pods that no agent will finish: marked Failed
    /// (unless terminal), then deleted.
    pub terminating: Vec<PodKey>,
}

fn key(pod: &Pod) -> PodKey {
    (
        pod.metadata.namespace.clone().unwrap_or_default(),
        pod.metadata.name.clone().unwrap_or_default(),
    )
}

/// Whether the pod reached Succeeded or Failed.
pub fn terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

fn node_name(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

/// Updates the record of when each missing node was first missed (the
/// nodes pods are bound to that do not exist) and returns it.
pub fn missing_nodes(
    pods: &[Pod],
    nodes: &[Node],
    previous: &BTreeMap<String, Timestamp>,
    now: Timestamp,
) -> BTreeMap<String, Timestamp> {
    let existing: BTreeSet<&str> = nodes
        .iter()
        .filter_map(|n| n.metadata.name.as_deref())
        .collect();
    pods.iter()
        .map(node_name)
        .filter(|n| !n.is_empty() && !existing.contains(n))
        .map(|n| (n.to_owned(), previous.get(n).copied().unwrap_or(now)))
        .collect()
}

fn out_of_service(node: &Node) -> bool {
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True");
    let tainted = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|t| {
            t.iter()
                .any(|t| t.key == OUT_OF_SERVICE && t.effect == "NoExecute")
        });
    !ready && tainted
}

/// The plan for this pass. `missing` is [`missing_nodes`]'s record.
pub fn plan(
    pods: &[Pod],
    nodes: &[Node],
    missing: &BTreeMap<String, Timestamp>,
    now: Timestamp,
    quarantine: SignedDuration,
    threshold: usize,
) -> Plan {
    let mut plan = Plan::default();
    // Terminated over the threshold.
    let mut done: Vec<&Pod> = pods
        .iter()
        .filter(|p| terminal(p) && p.metadata.deletion_timestamp.is_none())
        .collect();
    if threshold > 0 && done.len() > threshold {
        done.sort_by_key(|p| {
            let evicted = p.status.as_ref().and_then(|s| s.reason.as_deref()) == Some("Evicted");
            (
                !evicted,
                p.metadata.creation_timestamp.as_ref().map(|t| t.0),
                key(p),
            )
        });
        let excess = done.len() - threshold;
        plan.terminated = done.iter().take(excess).map(|p| key(p)).collect();
    }
    let chosen: BTreeSet<PodKey> = plan.terminated.iter().cloned().collect();
    for pod in pods {
        if chosen.contains(&key(pod)) {
            continue;
        }
        let node = node_name(pod);
        if node.is_empty() {
            if pod.metadata.deletion_timestamp.is_some() {
                plan.terminating.push(key(pod));
            }
            continue;
        }
        if let Some(since) = missing.get(node) {
            if now.duration_since(*since) >= quarantine {
                plan.orphaned.push(key(pod));
            }
            continue;
        }
        if pod.metadata.deletion_timestamp.is_some()
            && nodes
                .iter()
                .find(|n| n.metadata.name.as_deref() == Some(node))
                .is_some_and(out_of_service)
        {
            plan.terminating.push(key(pod));
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        NodeCondition, NodeSpec, NodeStatus, PodSpec, PodStatus, Taint,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    fn pod(name: &str, node: &str, phase: &str, created: i64, deleting: bool) -> Pod {
        let mut p = Pod {
            spec: Some(PodSpec {
                node_name: (!node.is_empty()).then(|| node.to_owned()),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.to_owned()),
                ..Default::default()
            }),
            ..Default::default()
        };
        p.metadata.name = Some(name.into());
        p.metadata.namespace = Some("ns".into());
        p.metadata.creation_timestamp = Some(Time(at(created)));
        if deleting {
            p.metadata.deletion_timestamp = Some(Time(at(created + 1)));
        }
        p
    }

    fn node(name: &str, ready: &str, out_of_service: bool) -> Node {
        let mut n = Node {
            spec: Some(NodeSpec {
                taints: out_of_service.then(|| {
                    vec![Taint {
                        key: OUT_OF_SERVICE.into(),
                        effect: "NoExecute".into(),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
            status: Some(NodeStatus {
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".into(),
                    status: ready.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        n.metadata.name = Some(name.into());
        n
    }

    fn k(name: &str) -> PodKey {
        ("ns".into(), name.into())
    }

    const Q: SignedDuration = SignedDuration::from_secs(40);

    #[test]
    fn terminated_over_the_threshold_evicted_first_then_oldest() {
        let mut evicted = pod("evicted", "n1", "Failed", 50, false);
        evicted.status.as_mut().unwrap().reason = Some("Evicted".into());
        let pods = vec![
            pod("old", "n1", "Succeeded", 1, false),
            pod("new", "n1", "Failed", 30, false),
            pod("mid", "n1", "Succeeded", 10, false),
            evicted,
            pod("running", "n1", "Running", 0, false),
        ];
        let nodes = vec![node("n1", "True", false)];
        let p = plan(&pods, &nodes, &BTreeMap::new(), at(100), Q, 2);
        assert_eq!(p.terminated, vec![k("evicted"), k("old")]);
        assert!(p.orphaned.is_empty() && p.terminating.is_empty());
        // At or under the threshold (or 0: disabled): nothing.
        assert_eq!(
            plan(&pods, &nodes, &BTreeMap::new(), at(100), Q, 4),
            Plan::default()
        );
        assert_eq!(
            plan(&pods, &nodes, &BTreeMap::new(), at(100), Q, 0),
            Plan::default()
        );
    }

    #[test]
    fn orphans_wait_for_the_quarantine() {
        let pods = vec![
            pod("orphan", "gone", "Running", 0, false),
            pod("fine", "n1", "Running", 0, false),
        ];
        let nodes = vec![node("n1", "True", false)];
        let missing = missing_nodes(&pods, &nodes, &BTreeMap::new(), at(100));
        assert_eq!(missing, BTreeMap::from([("gone".to_owned(), at(100))]));
        assert_eq!(
            plan(&pods, &nodes, &missing, at(139), Q, 0),
            Plan::default()
        );
        // The first sighting is kept.
        let missing = missing_nodes(&pods, &nodes, &missing, at(140));
        let p = plan(&pods, &nodes, &missing, at(140), Q, 0);
        assert_eq!(p.orphaned, vec![k("orphan")]);
        // A node that comes back is forgotten.
        let back = vec![node("n1", "True", false), node("gone", "True", false)];
        assert!(missing_nodes(&pods, &back, &missing, at(150)).is_empty());
    }

    #[test]
    fn terminating_pods_no_agent_will_finish() {
        let pods = vec![
            pod("unscheduled", "", "Pending", 0, true),
            pod("pending", "", "Pending", 0, false),
            pod("oos", "down", "Running", 0, true),
            pod("oos-alive", "down", "Running", 0, false),
            pod("notready", "sick", "Running", 0, true),
        ];
        let nodes = vec![node("down", "False", true), node("sick", "False", false)];
        let p = plan(&pods, &nodes, &BTreeMap::new(), at(0), Q, 0);
        assert_eq!(p.terminating, vec![k("unscheduled"), k("oos")]);
        assert!(p.orphaned.is_empty());
    }
}
