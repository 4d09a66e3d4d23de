//! The storage-object-in-use protection (kube's pvc-protection and
//! pv-protection controllers): every claim carries
//! `kubernetes.io/pvc-protection` until no pod uses it; every volume
//! carries `kubernetes.io/pv-protection` until it is no longer Bound.

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::ObjectMeta;

use super::consumers::uses_claim;

/// A claim's finalizer.
pub const PVC_PROTECTION: &str = "kubernetes.io/pvc-protection";
/// A volume's finalizer.
pub const PV_PROTECTION: &str = "kubernetes.io/pv-protection";

fn has(meta: &ObjectMeta, finalizer: &str) -> bool {
    meta.finalizers.iter().flatten().any(|f| f == finalizer)
}

/// What to do with an object's protection finalizer.
#[derive(Debug, PartialEq, Eq)]
pub enum Finalizer {
    /// Nothing.
    Keep,
    /// Add it (a live object without it).
    Add,
    /// Remove it (a deleted object no longer in use).
    Remove,
}

/// Whether a pod that is not finished uses the claim.
pub fn claim_in_use(claim: &PersistentVolumeClaim, pods: &[Pod]) -> bool {
    let name = claim.metadata.name.as_deref().unwrap_or("");
    pods.iter()
        .filter(|p| p.metadata.namespace == claim.metadata.namespace)
        .filter(|p| {
            !matches!(
                p.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            )
        })
        .any(|p| uses_claim(p, name))
}

/// The claim's finalizer given the pods of its namespace.
pub fn for_claim(claim: &PersistentVolumeClaim, pods: &[Pod]) -> Finalizer {
    let protected = has(&claim.metadata, PVC_PROTECTION);
    match (claim.metadata.deletion_timestamp.is_some(), protected) {
        (false, false) => Finalizer::Add,
        (true, true) if !claim_in_use(claim, pods) => Finalizer::Remove,
        _ => Finalizer::Keep,
    }
}

/// The volume's finalizer.
pub fn for_volume(pv: &PersistentVolume) -> Finalizer {
    let protected = has(&pv.metadata, PV_PROTECTION);
    let bound = pv.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
    match (pv.metadata.deletion_timestamp.is_some(), protected) {
        (false, false) => Finalizer::Add,
        (true, true) if !bound => Finalizer::Remove,
        _ => Finalizer::Keep,
    }
}

/// The finalizer list with `finalizer` added or removed.
pub fn apply(meta: &ObjectMeta, finalizer: &str, what: &Finalizer) -> Vec<String> {
    let mut list: Vec<String> = meta.finalizers.clone().unwrap_or_default();
    match what {
        Finalizer::Add => list.push(finalizer.to_owned()),
        Finalizer::Remove => list.retain(|f| f != finalizer),
        Finalizer::Keep => {}
    }
    list
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        PersistentVolumeClaimVolumeSource, PersistentVolumeStatus, PodSpec, PodStatus, Volume,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    fn claim(deleting: bool, protected: bool) -> PersistentVolumeClaim {
        let mut c = PersistentVolumeClaim::default();
        c.metadata.name = Some("data".into());
        c.metadata.namespace = Some("team".into());
        if deleting {
            c.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
        }
        if protected {
            c.metadata.finalizers = Some(vec![PVC_PROTECTION.into()]);
        }
        c
    }

    fn pod(phase: &str) -> Pod {
        let mut p = Pod {
            spec: Some(PodSpec {
                volumes: Some(vec![Volume {
                    name: "v".into(),
                    persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                        claim_name: "data".into(),
                        read_only: None,
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        p.metadata.namespace = Some("team".into());
        p
    }

    #[test]
    fn claims_are_protected_while_a_pod_uses_them() {
        assert_eq!(for_claim(&claim(false, false), &[]), Finalizer::Add);
        assert_eq!(for_claim(&claim(false, true), &[]), Finalizer::Keep);
        assert_eq!(
            for_claim(&claim(true, true), &[pod("Running")]),
            Finalizer::Keep
        );
        assert_eq!(
            for_claim(&claim(true, true), &[pod("Pending")]),
            Finalizer::Keep
        );
        assert_eq!(
            for_claim(&claim(true, true), &[pod("Succeeded")]),
            Finalizer::Remove
        );
        assert_eq!(for_claim(&claim(true, true), &[]), Finalizer::Remove);
        assert_eq!(for_claim(&claim(true, false), &[]), Finalizer::Keep);
        let c = claim(true, true);
        assert!(apply(&c.metadata, PVC_PROTECTION, &Finalizer::Remove).is_empty());
    }

    #[test]
    fn volumes_are_protected_while_bound() {
        let mut pv = PersistentVolume::default();
        assert_eq!(for_volume(&pv), Finalizer::Add);
        pv.metadata.finalizers = Some(vec![PV_PROTECTION.into()]);
        pv.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
        pv.status = Some(PersistentVolumeStatus {
            phase: Some("Bound".into()),
            ..Default::default()
        });
        assert_eq!(for_volume(&pv), Finalizer::Keep);
        pv.status.as_mut().unwrap().phase = Some("Released".into());
        assert_eq!(for_volume(&pv), Finalizer::Remove);
    }
}
