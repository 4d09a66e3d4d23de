//! NodeAffinity: `spec.nodeSelector` and required node affinity filter;
//! preferred node affinity scores.

use std::collections::HashSet;

use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;
use crate::status::Status;

/// kube's `ErrReasonPod`.
pub const REASON: &str = "node(s) didn't match Pod's node affinity/selector";

/// kube's `errReasonConflict`: the `metadata.name` requirements of a term
/// exclude each other.
pub const REASON_CONFLICT: &str = "pod affinity terms conflict";

/// The node names the required terms are limited to through
/// `matchFields metadata.name In`, when every term limits them.
pub fn prefilter(pod: &PodInfo) -> Option<HashSet<String>> {
    let terms = pod.node_affinity.terms.as_ref()?;
    let mut names = HashSet::new();
    for t in &terms.0 {
        names.extend(t.name_set()?);
    }
    Some(names)
}

/// Rejects a node the pod's selector or required affinity excludes.
pub fn filter(pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
    if pod.node_affinity.matches(&node.labels, &node.name) {
        Ok(())
    } else {
        Err(Status::unresolvable(REASON))
    }
}

/// The sum of the weights of the preferred terms the node matches.
pub fn score(pod: &PodInfo, node: &NodeInfo) -> i64 {
    pod.preferred_node_affinity
        .iter()
        .filter(|(_, t)| t.matches(&node.labels, &node.name))
        .map(|(w, _)| *w)
        .sum()
}
