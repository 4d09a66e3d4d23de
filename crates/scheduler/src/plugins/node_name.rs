//! NodeName: a pod that names its node fits only there.

use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;
use crate::status::Status;

/// kube's `ErrReason` of NodeName.
pub const REASON: &str = "node(s) didn't match the requested node name";

/// Rejects every node but the one `spec.nodeName` names (when set).
pub fn filter(pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
    if pod.node_name.is_empty() || pod.node_name == node.name {
        Ok(())
    } else {
        Err(Status::unresolvable(REASON))
    }
}
