//! The taints a node's conditions call for, as kube's node lifecycle
//! controller keeps them: NoExecute `not-ready` (Ready False) or
//! `unreachable` (Ready Unknown), and the NoSchedule taints of
//! TaintNodesByCondition (Ready, the pressures, the network, and
//! `spec.unschedulable`).

use k8s_openapi::api::core::v1::{Node, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::health::condition;

/// Ready is False.
pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
/// Ready is Unknown.
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// `spec.unschedulable`.
pub const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
/// MemoryPressure is True.
pub const MEMORY_PRESSURE: &str = "node.kubernetes.io/memory-pressure";
/// DiskPressure is True.
pub const DISK_PRESSURE: &str = "node.kubernetes.io/disk-pressure";
/// PIDPressure is True.
pub const PID_PRESSURE: &str = "node.kubernetes.io/pid-pressure";
/// NetworkUnavailable is True.
pub const NETWORK_UNAVAILABLE: &str = "node.kubernetes.io/network-unavailable";

/// The keys this controller owns (any other taint is left alone).
pub const OWNED: [&str; 7] = [
    NOT_READY,
    UNREACHABLE,
    UNSCHEDULABLE,
    MEMORY_PRESSURE,
    DISK_PRESSURE,
    PID_PRESSURE,
    NETWORK_UNAVAILABLE,
];

fn status_of(node: &Node, kind: &str) -> Option<String> {
    condition(node, kind).map(|c| c.status.clone())
}

/// The (key, effect) pairs the node's state calls for.
pub fn wanted(node: &Node) -> Vec<(&'static str, &'static str)> {
    let mut out = Vec::new();
    match status_of(node, "Ready").as_deref() {
        Some("False") => {
            out.push((NOT_READY, "NoExecute"));
            out.push((NOT_READY, "NoSchedule"));
        }
        Some("Unknown") => {
            out.push((UNREACHABLE, "NoExecute"));
            out.push((UNREACHABLE, "NoSchedule"));
        }
        _ => {}
    }
    for (kind, key) in [
        ("MemoryPressure", MEMORY_PRESSURE),
        ("DiskPressure", DISK_PRESSURE),
        ("PIDPressure", PID_PRESSURE),
        ("NetworkUnavailable", NETWORK_UNAVAILABLE),
    ] {
        if status_of(node, kind).as_deref() == Some("True") {
            out.push((key, "NoSchedule"));
        }
    }
    if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
        out.push((UNSCHEDULABLE, "NoSchedule"));
    }
    out
}

/// The node's taints once reconciled with [`wanted`]: owned taints no
/// longer called for go, missing ones are added (NoExecute ones stamped
/// `timeAdded`), others stay in place. None when nothing changes.
pub fn reconcile(node: &Node, now: Timestamp) -> Option<Vec<Taint>> {
    let current = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let wanted = wanted(node);
    let mut next: Vec<Taint> = current
        .iter()
        .filter(|t| {
            !OWNED.contains(&t.key.as_str())
                || wanted.iter().any(|(k, e)| *k == t.key && *e == t.effect)
        })
        .cloned()
        .collect();
    for (key, effect) in &wanted {
        if !next.iter().any(|t| t.key == *key && t.effect == *effect) {
            next.push(Taint {
                key: (*key).to_owned(),
                effect: (*effect).to_owned(),
                value: None,
                time_added: (*effect == "NoExecute").then_some(Time(now)),
            });
        }
    }
    (next != current).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeCondition, NodeSpec, NodeStatus};

    fn node(conditions: &[(&str, &str)], unschedulable: bool, taints: Vec<Taint>) -> Node {
        Node {
            spec: Some(NodeSpec {
                unschedulable: unschedulable.then_some(true),
                taints: (!taints.is_empty()).then_some(taints),
                ..Default::default()
            }),
            status: Some(NodeStatus {
                conditions: Some(
                    conditions
                        .iter()
                        .map(|(t, s)| NodeCondition {
                            type_: (*t).into(),
                            status: (*s).into(),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn taint(key: &str, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            effect: effect.into(),
            ..Default::default()
        }
    }

    fn now() -> Timestamp {
        Timestamp::from_second(1_700_000_000).unwrap()
    }

    #[test]
    fn conditions_map_to_taints() {
        type Pairs<'a> = Vec<(&'a str, &'a str)>;
        let cases: Vec<(Pairs, bool, Pairs)> = vec![
            (vec![("Ready", "True")], false, vec![]),
            (
                vec![("Ready", "False")],
                false,
                vec![(NOT_READY, "NoExecute"), (NOT_READY, "NoSchedule")],
            ),
            (
                vec![("Ready", "Unknown")],
                false,
                vec![(UNREACHABLE, "NoExecute"), (UNREACHABLE, "NoSchedule")],
            ),
            (
                vec![("Ready", "True"), ("MemoryPressure", "True")],
                false,
                vec![(MEMORY_PRESSURE, "NoSchedule")],
            ),
            (
                vec![("Ready", "True"), ("DiskPressure", "True")],
                false,
                vec![(DISK_PRESSURE, "NoSchedule")],
            ),
            (
                vec![("Ready", "True"), ("PIDPressure", "True")],
                false,
                vec![(PID_PRESSURE, "NoSchedule")],
            ),
            (
                vec![("Ready", "True"), ("NetworkUnavailable", "True")],
                false,
                vec![(NETWORK_UNAVAILABLE, "NoSchedule")],
            ),
            (
                vec![("Ready", "True"), ("DiskPressure", "False")],
                true,
                vec![(UNSCHEDULABLE, "NoSchedule")],
            ),
            // Unknown pressure is no pressure.
            (
                vec![("Ready", "True"), ("MemoryPressure", "Unknown")],
                false,
                vec![],
            ),
        ];
        for (conditions, unschedulable, expected) in cases {
            assert_eq!(
                wanted(&node(&conditions, unschedulable, vec![])),
                expected,
                "{conditions:?}"
            );
        }
    }

    #[test]
    fn reconcile_swaps_not_ready_for_unreachable_and_keeps_foreign_taints() {
        let n = node(
            &[("Ready", "Unknown")],
            false,
            vec![
                taint("dedicated", "NoSchedule"),
                taint(NOT_READY, "NoExecute"),
                taint(NOT_READY, "NoSchedule"),
            ],
        );
        let next = reconcile(&n, now()).expect("changed");
        let keys: Vec<(&str, &str)> = next
            .iter()
            .map(|t| (t.key.as_str(), t.effect.as_str()))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("dedicated", "NoSchedule"),
                (UNREACHABLE, "NoExecute"),
                (UNREACHABLE, "NoSchedule")
            ]
        );
        assert_eq!(next[1].time_added, Some(Time(now())));
        assert_eq!(next[2].time_added, None);
        // Reconciled: nothing more to do.
        let done = node(&[("Ready", "Unknown")], false, next);
        assert_eq!(reconcile(&done, now()), None);
    }

    #[test]
    fn recovery_removes_owned_taints() {
        let n = node(
            &[("Ready", "True")],
            false,
            vec![
                taint(UNREACHABLE, "NoExecute"),
                taint(UNREACHABLE, "NoSchedule"),
                taint("x", "NoExecute"),
            ],
        );
        assert_eq!(reconcile(&n, now()), Some(vec![taint("x", "NoExecute")]));
    }
}
