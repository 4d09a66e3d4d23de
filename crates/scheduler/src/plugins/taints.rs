//! TaintToleration: NoSchedule/NoExecute taints must be tolerated; each
//! untolerated PreferNoSchedule taint lowers the score.

use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;
use crate::selectors::{tolerated, tolerates};
use crate::status::Status;

/// Rejects a node with an untolerated NoSchedule/NoExecute taint, naming
/// the first one as kube does.
pub fn filter(pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
    let untolerated = node.taints.iter().find(|t| {
        (t.effect == "NoSchedule" || t.effect == "NoExecute") && !tolerated(&pod.tolerations, t)
    });
    match untolerated {
        None => Ok(()),
        Some(t) => Err(Status::unresolvable(format!(
            "node(s) had untolerated taint {{{}: {}}}",
            t.key,
            t.value.as_deref().unwrap_or("")
        ))),
    }
}

/// How many PreferNoSchedule taints the pod does not tolerate (counting
/// only its tolerations with that effect or none).
pub fn score(pod: &PodInfo, node: &NodeInfo) -> i64 {
    let mut n = 0;
    for taint in node
        .taints
        .iter()
        .filter(|t| t.effect == "PreferNoSchedule")
    {
        let ok = pod
            .tolerations
            .iter()
            .filter(|t| {
                matches!(
                    t.effect.as_deref(),
                    None | Some("") | Some("PreferNoSchedule")
                )
            })
            .any(|t| tolerates(t, taint));
        if !ok {
            n += 1;
        }
    }
    n
}
