//! Which existing PersistentVolume a claim binds to, as kube's
//! findMatchingVolume chooses: a volume pre-bound to the claim wins;
//! otherwise the smallest Available volume of the claim's class whose
//! access modes include the claim's, whose volume mode is the claim's,
//! whose labels the claim's selector accepts, that is large enough, and
//! (when the claim waits for its consumer) reachable from the chosen
//! node.

use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim};

use super::quantity;
use crate::util::{node_selector, selector};

/// The class a claim asks for ("" = none).
pub fn claim_class(claim: &PersistentVolumeClaim) -> &str {
    claim
        .spec
        .as_ref()
        .and_then(|s| s.storage_class_name.as_deref())
        .unwrap_or("")
}

/// The class of a volume ("" = none).
pub fn volume_class(pv: &PersistentVolume) -> &str {
    pv.spec
        .as_ref()
        .and_then(|s| s.storage_class_name.as_deref())
        .unwrap_or("")
}

/// The storage a claim requests, in bytes.
pub fn requested(claim: &PersistentVolumeClaim) -> f64 {
    claim
        .spec
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .and_then(|q| quantity::bytes(&q.0))
        .unwrap_or(0.0)
}

fn capacity(pv: &PersistentVolume) -> f64 {
    pv.spec
        .as_ref()
        .and_then(|s| s.capacity.as_ref())
        .and_then(|c| c.get("storage"))
        .and_then(|q| quantity::bytes(&q.0))
        .unwrap_or(0.0)
}

/// Whether the volume's claimRef names this claim (and its uid, if set).
pub fn bound_to(pv: &PersistentVolume, claim: &PersistentVolumeClaim) -> bool {
    let Some(r) = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else {
        return false;
    };
    r.namespace == claim.metadata.namespace
        && r.name == claim.metadata.name
        && (r.uid.as_deref().unwrap_or("").is_empty() || r.uid == claim.metadata.uid)
}

fn mode(m: Option<&String>) -> &str {
    m.map_or("Filesystem", String::as_str)
}

/// Whether the volume satisfies the claim (all but size and binding).
fn satisfies(pv: &PersistentVolume, claim: &PersistentVolumeClaim, node: Option<&Node>) -> bool {
    let (Some(spec), Some(want)) = (pv.spec.as_ref(), claim.spec.as_ref()) else {
        return false;
    };
    if volume_class(pv) != claim_class(claim) {
        return false;
    }
    if mode(spec.volume_mode.as_ref()) != mode(want.volume_mode.as_ref()) {
        return false;
    }
    let has = spec.access_modes.as_deref().unwrap_or(&[]);
    if !want.access_modes.iter().flatten().all(|m| has.contains(m)) {
        return false;
    }
    if let Some(selector) = &want.selector
        && !selector::matches(
            selector,
            pv.metadata.labels.as_ref().unwrap_or(&Default::default()),
        )
    {
        return false;
    }
    if let (Some(node), Some(required)) = (
        node,
        spec.node_affinity
            .as_ref()
            .and_then(|a| a.required.as_ref()),
    ) && !node_selector::matches(required, node)
    {
        return false;
    }
    true
}

/// The volume the claim should bind to. `node` is the node chosen for a
/// claim that waits for its first consumer.
pub fn find<'a>(
    claim: &PersistentVolumeClaim,
    volumes: &'a [PersistentVolume],
    node: Option<&Node>,
) -> Option<&'a PersistentVolume> {
    let live = volumes
        .iter()
        .filter(|pv| pv.metadata.deletion_timestamp.is_none());
    let mut best: Option<&PersistentVolume> = None;
    for pv in live {
        if bound_to(pv, claim) {
            if satisfies(pv, claim, node) {
                return Some(pv);
            }
            continue;
        }
        let spec_ref = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
        let available = pv.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Available");
        if spec_ref.is_some() || !available {
            continue;
        }
        if !satisfies(pv, claim, node) || capacity(pv) < requested(claim) {
            continue;
        }
        if best.is_none_or(|b| capacity(pv) < capacity(b)) {
            best = Some(pv);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, ObjectReference,
        PersistentVolumeClaimSpec, PersistentVolumeSpec, PersistentVolumeStatus,
        VolumeNodeAffinity, VolumeResourceRequirements,
    };
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
    use std::collections::BTreeMap;

    fn claim(size: &str, class: Option<&str>, modes: &[&str]) -> PersistentVolumeClaim {
        let mut c = PersistentVolumeClaim {
            spec: Some(PersistentVolumeClaimSpec {
                storage_class_name: class.map(Into::into),
                access_modes: Some(modes.iter().map(|m| (*m).into()).collect()),
                resources: Some(VolumeResourceRequirements {
                    requests: Some(BTreeMap::from([("storage".into(), Quantity(size.into()))])),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        c.metadata.name = Some("data".into());
        c.metadata.namespace = Some("ns".into());
        c.metadata.uid = Some("uid-1".into());
        c
    }

    fn pv(name: &str, size: &str, class: &str, modes: &[&str], phase: &str) -> PersistentVolume {
        let mut v = PersistentVolume {
            spec: Some(PersistentVolumeSpec {
                storage_class_name: (!class.is_empty()).then(|| class.into()),
                access_modes: Some(modes.iter().map(|m| (*m).into()).collect()),
                capacity: Some(BTreeMap::from([("storage".into(), Quantity(size.into()))])),
                ..Default::default()
            }),
            status: Some(PersistentVolumeStatus {
                phase: Some(phase.into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        v.metadata.name = Some(name.into());
        v
    }

    fn names(found: Option<&PersistentVolume>) -> Option<&str> {
        found.and_then(|v| v.metadata.name.as_deref())
    }

    #[test]
    fn smallest_fitting_available_volume_of_the_class() {
        let rwo = ["ReadWriteOnce"];
        let volumes = vec![
            pv("big", "10Gi", "slow", &rwo, "Available"),
            pv("small", "1Gi", "slow", &rwo, "Available"),
            pv("tiny", "500Mi", "slow", &rwo, "Available"),
            pv("fast", "1Gi", "fast", &rwo, "Available"),
            pv("bound", "1Gi", "slow", &rwo, "Bound"),
            pv("rox", "1Gi", "slow", &["ReadOnlyMany"], "Available"),
        ];
        assert_eq!(
            names(find(&claim("1Gi", Some("slow"), &rwo), &volumes, None)),
            Some("small")
        );
        assert_eq!(
            names(find(&claim("2Gi", Some("slow"), &rwo), &volumes, None)),
            Some("big")
        );
        assert_eq!(
            names(find(&claim("20Gi", Some("slow"), &rwo), &volumes, None)),
            None
        );
        assert_eq!(
            names(find(&claim("1Gi", Some("fast"), &rwo), &volumes, None)),
            Some("fast")
        );
        // No class matches only volumes without one.
        assert_eq!(names(find(&claim("1Gi", None, &rwo), &volumes, None)), None);
        let classless = vec![pv("plain", "1Gi", "", &rwo, "Available")];
        assert_eq!(
            names(find(&claim("1Gi", Some(""), &rwo), &classless, None)),
            Some("plain")
        );
        // Access modes must all be offered.
        assert_eq!(
            names(find(
                &claim("1Gi", Some("slow"), &["ReadWriteOnce", "ReadOnlyMany"]),
                &volumes,
                None
            )),
            None
        );
    }

    #[test]
    fn prebound_selector_mode_and_node_affinity() {
        let rwo = ["ReadWriteOnce"];
        let mut pre = pv("pre", "100Gi", "slow", &rwo, "Available");
        pre.spec.as_mut().unwrap().claim_ref = Some(ObjectReference {
            namespace: Some("ns".into()),
            name: Some("data".into()),
            ..Default::default()
        });
        let mut other = pv("other", "1Gi", "slow", &rwo, "Available");
        other.spec.as_mut().unwrap().claim_ref = Some(ObjectReference {
            namespace: Some("ns".into()),
            name: Some("else".into()),
            ..Default::default()
        });
        let volumes = vec![pv("small", "1Gi", "slow", &rwo, "Available"), pre, other];
        // Pre-bound wins over a smaller volume.
        assert_eq!(
            names(find(&claim("1Gi", Some("slow"), &rwo), &volumes, None)),
            Some("pre")
        );

        let mut labelled = pv("labelled", "5Gi", "slow", &rwo, "Available");
        labelled.metadata.labels = Some(BTreeMap::from([("tier".into(), "gold".into())]));
        let volumes = vec![pv("plain", "1Gi", "slow", &rwo, "Available"), labelled];
        let mut picky = claim("1Gi", Some("slow"), &rwo);
        picky.spec.as_mut().unwrap().selector = Some(LabelSelector {
            match_labels: Some(BTreeMap::from([("tier".into(), "gold".into())])),
            ..Default::default()
        });
        assert_eq!(names(find(&picky, &volumes, None)), Some("labelled"));
        let mut block = claim("1Gi", Some("slow"), &rwo);
        block.spec.as_mut().unwrap().volume_mode = Some("Block".into());
        assert_eq!(names(find(&block, &volumes, None)), None);

        let mut pinned = pv("pinned", "1Gi", "slow", &rwo, "Available");
        pinned.spec.as_mut().unwrap().node_affinity = Some(VolumeNodeAffinity {
            required: Some(NodeSelector {
                node_selector_terms: vec![NodeSelectorTerm {
                    match_expressions: Some(vec![NodeSelectorRequirement {
                        key: "kubernetes.io/hostname".into(),
                        operator: "In".into(),
                        values: Some(vec!["n1".into()]),
                    }]),
                    ..Default::default()
                }],
            }),
        });
        let volumes = vec![pinned];
        let node = |name: &str| {
            let mut n = Node::default();
            n.metadata.name = Some(name.into());
            n.metadata.labels = Some(BTreeMap::from([(
                "kubernetes.io/hostname".into(),
                name.into(),
            )]));
            n
        };
        let c = claim("1Gi", Some("slow"), &rwo);
        assert_eq!(names(find(&c, &volumes, Some(&node("n1")))), Some("pinned"));
        assert_eq!(names(find(&c, &volumes, Some(&node("n2")))), None);
        assert_eq!(names(find(&c, &volumes, None)), Some("pinned"));
    }
}
