//! Node health, as kube's node lifecycle controller judges it: a node is
//! heard from when its Lease is renewed or its Ready condition is
//! re-posted (a new heartbeat time, or the condition appearing); the time is this controller's own clock when it
//! noticed, never the agent's, so clock skew does not matter. After the
//! grace period without news, Ready, MemoryPressure, DiskPressure and
//! PIDPressure turn Unknown.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// The reason of a condition this controller turned Unknown.
pub const REASON_UNKNOWN: &str = "NodeStatusUnknown";
/// Its message.
pub const MESSAGE_UNKNOWN: &str = "Kubelet stopped posting node status.";
/// The reason of a condition the agent never posted.
pub const REASON_NEVER: &str = "NodeStatusNeverUpdated";
/// Its message.
pub const MESSAGE_NEVER: &str = "Kubelet never posted node status.";

/// The conditions that turn Unknown (NetworkUnavailable is left to
/// whoever manages the network, as kube leaves it).
pub const WATCHED_CONDITIONS: [&str; 4] =
    ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/// What was last heard from a node, and when this controller heard it.
#[derive(Clone, Debug, PartialEq)]
pub struct Heard {
    /// When this controller last noticed news.
    pub probe: Timestamp,
    /// The Ready condition's heartbeat as last seen (outer None: no
    /// Ready condition).
    ready: Option<Option<Timestamp>>,
    /// The Lease's renewTime as last seen.
    renew: Option<Timestamp>,
}

fn ready_of(node: &Node) -> Option<&NodeCondition> {
    condition(node, "Ready")
}

/// A condition of a node by type.
pub fn condition<'a>(node: &'a Node, kind: &str) -> Option<&'a NodeCondition> {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == kind))
}

fn ready_summary(node: &Node) -> Option<Option<Timestamp>> {
    ready_of(node).map(|c| c.last_heartbeat_time.as_ref().map(|t| t.0))
}

/// Updates what was heard from `node` given its Lease, at `now`. The
/// first observation counts as news, as kube assumes on its first sight.
/// Conditions this controller wrote itself keep their heartbeat, so they
/// are no news.
pub fn observe(
    previous: Option<&Heard>,
    node: &Node,
    lease: Option<&Lease>,
    now: Timestamp,
) -> Heard {
    let ready = ready_summary(node);
    let renew = lease
        .and_then(|l| l.spec.as_ref())
        .and_then(|s| s.renew_time.as_ref())
        .map(|t| t.0);
    let Some(previous) = previous else {
        return Heard {
            probe: now,
            ready,
            renew,
        };
    };
    let news = previous.ready != ready || (renew.is_some() && previous.renew != renew);
    Heard {
        probe: if news { now } else { previous.probe },
        ready,
        renew,
    }
}

/// Whether the node is overdue: no news for longer than the grace period
/// (the startup grace period while it never posted Ready).
pub fn overdue(
    heard: &Heard,
    node: &Node,
    now: Timestamp,
    grace: SignedDuration,
    startup: SignedDuration,
) -> bool {
    let limit = if ready_of(node).is_none() {
        startup
    } else {
        grace
    };
    now.duration_since(heard.probe) > limit
}

/// The conditions of an overdue node with Ready and the pressures set
/// to Unknown; None when they already are.
pub fn mark_unknown(node: &Node, now: Timestamp) -> Option<Vec<NodeCondition>> {
    let mut conditions = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let mut changed = false;
    for kind in WATCHED_CONDITIONS {
        match conditions.iter_mut().find(|c| c.type_ == kind) {
            None => {
                conditions.push(NodeCondition {
                    type_: kind.to_owned(),
                    status: "Unknown".to_owned(),
                    reason: Some(REASON_NEVER.to_owned()),
                    message: Some(MESSAGE_NEVER.to_owned()),
                    last_heartbeat_time: node.metadata.creation_timestamp.clone(),
                    last_transition_time: Some(Time(now)),
                });
                changed = true;
            }
            Some(c) if c.status != "Unknown" => {
                c.status = "Unknown".to_owned();
                c.reason = Some(REASON_UNKNOWN.to_owned());
                c.message = Some(MESSAGE_UNKNOWN.to_owned());
                c.last_transition_time = Some(Time(now));
                changed = true;
            }
            Some(_) => {}
        }
    }
    changed.then_some(conditions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::api::core::v1::NodeStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    fn node(ready: Option<(&str, i64)>) -> Node {
        let mut n = Node::default();
        n.metadata.name = Some("n1".into());
        n.metadata.creation_timestamp = Some(Time(at(0)));
        n.status = Some(NodeStatus {
            conditions: Some(
                ready
                    .into_iter()
                    .map(|(status, hb)| NodeCondition {
                        type_: "Ready".into(),
                        status: status.into(),
                        reason: Some("KubeletReady".into()),
                        last_heartbeat_time: Some(Time(at(hb))),
                        last_transition_time: Some(Time(at(0))),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        });
        n
    }

    fn lease(renew: i64) -> Lease {
        Lease {
            spec: Some(LeaseSpec {
                renew_time: Some(MicroTime(at(renew))),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    const GRACE: SignedDuration = SignedDuration::from_secs(40);
    const STARTUP: SignedDuration = SignedDuration::from_secs(60);

    #[test]
    fn lease_renewals_are_news_and_silence_is_not() {
        let n = node(Some(("True", 1)));
        let h = observe(None, &n, Some(&lease(1)), at(1));
        assert_eq!(h.probe, at(1));
        // The lease renewed: news at our clock, whatever its renewTime says.
        let h = observe(Some(&h), &n, Some(&lease(11)), at(12));
        assert_eq!(h.probe, at(12));
        // Nothing new for a while.
        let h2 = observe(Some(&h), &n, Some(&lease(11)), at(50));
        assert_eq!(h2.probe, at(12));
        assert!(!overdue(&h2, &n, at(52), GRACE, STARTUP));
        assert!(overdue(&h2, &n, at(53), GRACE, STARTUP));
        // A re-posted Ready condition (new heartbeat) is news too.
        let h3 = observe(
            Some(&h2),
            &node(Some(("True", 60))),
            Some(&lease(11)),
            at(61),
        );
        assert_eq!(h3.probe, at(61));
    }

    #[test]
    fn a_node_that_never_posted_gets_the_startup_grace() {
        let n = node(None);
        let h = observe(None, &n, None, at(30));
        assert_eq!(h.probe, at(30));
        assert!(!overdue(&h, &n, at(90), GRACE, STARTUP));
        assert!(overdue(&h, &n, at(91), GRACE, STARTUP));
        // Ready appearing is news, and then the normal grace applies.
        let ready = node(Some(("True", 95)));
        let h = observe(Some(&h), &ready, None, at(95));
        assert_eq!(h.probe, at(95));
        assert!(overdue(&h, &ready, at(136), GRACE, STARTUP));
    }

    #[test]
    fn our_own_unknown_write_is_no_news() {
        let n = node(Some(("True", 1)));
        let h = observe(None, &n, Some(&lease(1)), at(1));
        let mut marked = n.clone();
        marked.status.as_mut().unwrap().conditions = mark_unknown(&n, at(50));
        let h2 = observe(Some(&h), &marked, Some(&lease(1)), at(51));
        assert_eq!(h2.probe, at(1));
    }

    #[test]
    fn overdue_conditions_turn_unknown_with_kubes_reason() {
        let mut n = node(Some(("True", 1)));
        if let Some(s) = n.status.as_mut() {
            s.conditions.get_or_insert_default().push(NodeCondition {
                type_: "MemoryPressure".into(),
                status: "False".into(),
                ..Default::default()
            });
        }
        let conditions = mark_unknown(&n, at(100)).expect("changed");
        let ready = conditions.iter().find(|c| c.type_ == "Ready").unwrap();
        assert_eq!(ready.status, "Unknown");
        assert_eq!(ready.reason.as_deref(), Some("NodeStatusUnknown"));
        assert_eq!(
            ready.message.as_deref(),
            Some("Kubelet stopped posting node status.")
        );
        assert_eq!(ready.last_transition_time, Some(Time(at(100))));
        // The heartbeat stays the agent's last.
        assert_eq!(ready.last_heartbeat_time, Some(Time(at(1))));
        let disk = conditions
            .iter()
            .find(|c| c.type_ == "DiskPressure")
            .unwrap();
        assert_eq!(disk.reason.as_deref(), Some("NodeStatusNeverUpdated"));
        assert_eq!(
            disk.message.as_deref(),
            Some("Kubelet never posted node status.")
        );
        assert_eq!(disk.status, "Unknown");
        assert_eq!(conditions.len(), 4);
        // Already Unknown: nothing to write.
        n.status.as_mut().unwrap().conditions = Some(conditions);
        assert_eq!(mark_unknown(&n, at(200)), None);
    }
}
