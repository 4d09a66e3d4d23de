//! NodePorts: a host port can be bound once per node.

use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;
use crate::status::Status;

/// kube's `ErrReason` of NodePorts.
pub const REASON: &str = "node(s) didn't have free ports for the requested pod ports";

/// Rejects a node where one of the pod's host ports is taken.
pub fn filter(pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
    let taken = pod
        .host_ports
        .iter()
        .any(|want| node.used_ports.iter().any(|used| used.conflicts(want)));
    if taken {
        Err(Status::unschedulable(REASON))
    } else {
        Ok(())
    }
}
