//! Who consumes a claim, and where a claim goes when nobody waits for a
//! consumer.

use k8s_openapi::api::core::v1::{Node, PersistentVolumeClaim, Pod};

/// The node of a scheduled pod in the claim's namespace using it.
pub fn consumer_node(pods: &[Pod], claim: &PersistentVolumeClaim) -> Option<String> {
    pods.iter()
        .filter(|p| p.metadata.namespace == claim.metadata.namespace)
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| uses_claim(p, claim.metadata.name.as_deref().unwrap_or("")))
        .find_map(|p| p.spec.as_ref()?.node_name.clone().filter(|n| !n.is_empty()))
}

/// Whether a pod's volumes name the claim.
pub fn uses_claim(pod: &Pod, claim: &str) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .into_iter()
        .flatten()
        .any(|v| {
            v.persistent_volume_claim
                .as_ref()
                .is_some_and(|c| c.claim_name == claim)
        })
}

/// The node for an immediately bound claim: the first ready one by name,
/// else the first one.
pub fn pick_node(nodes: &[Node]) -> Option<&Node> {
    let mut sorted: Vec<&Node> = nodes.iter().collect();
    sorted.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let ready = |n: &&Node| {
        n.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    };
    sorted.iter().find(|n| ready(n)).or(sorted.first()).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PersistentVolumeClaimVolumeSource, PodSpec, Volume};

    fn pod(name: &str, ns: &str, claim: &str, node: Option<&str>) -> Pod {
        let mut p = Pod {
            spec: Some(PodSpec {
                node_name: node.map(Into::into),
                volumes: Some(vec![Volume {
                    name: "v".into(),
                    persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                        claim_name: claim.into(),
                        read_only: None,
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        p.metadata.name = Some(name.into());
        p.metadata.namespace = Some(ns.into());
        p
    }

    #[test]
    fn the_first_scheduled_consumer_selects_the_node() {
        let mut claim = PersistentVolumeClaim::default();
        claim.metadata.name = Some("data".into());
        claim.metadata.namespace = Some("team".into());
        let pods = vec![
            pod("unscheduled", "team", "data", None),
            pod("elsewhere", "other", "data", Some("n9")),
            pod("other-claim", "team", "logs", Some("n8")),
            pod("user", "team", "data", Some("n1")),
        ];
        assert_eq!(consumer_node(&pods, &claim), Some("n1".into()));
        assert_eq!(consumer_node(&pods[..3], &claim), None);
    }

    #[test]
    fn immediate_binding_prefers_a_ready_node() {
        let node = |name: &str, ready: bool| {
            let mut n = Node::default();
            n.metadata.name = Some(name.into());
            n.status = Some(k8s_openapi::api::core::v1::NodeStatus {
                conditions: Some(vec![k8s_openapi::api::core::v1::NodeCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            });
            n
        };
        let nodes = vec![node("a", false), node("b", true)];
        assert_eq!(
            pick_node(&nodes).and_then(|n| n.metadata.name.as_deref()),
            Some("b")
        );
        let nodes = vec![node("b", false), node("a", false)];
        assert_eq!(
            pick_node(&nodes).and_then(|n| n.metadata.name.as_deref()),
            Some("a")
        );
        assert!(pick_node(&[]).is_none());
    }
}
