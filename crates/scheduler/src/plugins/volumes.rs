//! VolumeBinding, for claims already bound: the pod's claims must exist
//! and the bound volumes' node affinity must admit the node.

use crate::cache::Cache;
use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;
use crate::selectors::NodeTerms;
use crate::status::Status;

/// kube's `ErrReasonNodeConflict`.
pub const REASON_CONFLICT: &str = "node(s) had volume node affinity conflict";
/// kube's `ErrReasonPVNotExist`.
pub const REASON_PV_MISSING: &str =
    "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)";

/// What the filter checks for the pod's bound claims.
#[derive(Debug, Clone, Default)]
pub struct State {
    /// The node affinity of each bound volume that has one.
    pub terms: Vec<NodeTerms>,
    /// Whether a bound claim names a volume that does not exist.
    pub missing_volume: bool,
}

/// Checks the pod's claims; a missing or deleted claim rejects the pod
/// outright, as kube's PreFilter does. Unbound claims are left to
/// provisioning (they pass).
pub fn prefilter(pod: &PodInfo, cache: &Cache) -> Result<State, Status> {
    let mut state = State::default();
    for name in &pod.claims {
        let key = format!("{}/{}", pod.namespace, name);
        let Some(claim) = cache.claim(&key) else {
            return Err(Status::unresolvable(format!(
                "persistentvolumeclaim \"{name}\" not found"
            )));
        };
        if claim.deleting {
            return Err(Status::unresolvable(format!(
                "persistentvolumeclaim \"{name}\" is being deleted"
            )));
        }
        if claim.volume_name.is_empty() {
            continue;
        }
        match cache.volume(&claim.volume_name) {
            None => state.missing_volume = true,
            Some(Some(terms)) => state.terms.push(terms.clone()),
            Some(None) => {}
        }
    }
    Ok(state)
}

/// Rejects a node a bound volume cannot be used from.
pub fn filter(state: &State, node: &NodeInfo) -> Result<(), Status> {
    if state.missing_volume {
        return Err(Status::unresolvable(REASON_PV_MISSING));
    }
    if state
        .terms
        .iter()
        .all(|t| t.matches(&node.labels, &node.name))
    {
        Ok(())
    } else {
        Err(Status::unresolvable(REASON_CONFLICT))
    }
}
