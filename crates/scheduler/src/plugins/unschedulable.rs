//! NodeUnschedulable: cordoned nodes take only pods that tolerate the
//! `node.kubernetes.io/unschedulable:NoSchedule` taint.

use k8s_openapi::api::core::v1::Taint;

use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;
use crate::selectors::tolerated;
use crate::status::Status;

/// kube's `ErrReasonUnschedulable`.
pub const REASON: &str = "node(s) were unschedulable";

/// Rejects a cordoned node unless the pod tolerates it.
pub fn filter(pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
    if !node.unschedulable {
        return Ok(());
    }
    let taint = Taint {
        key: "node.kubernetes.io/unschedulable".to_owned(),
        effect: "NoSchedule".to_owned(),
        ..Taint::default()
    };
    if tolerated(&pod.tolerations, &taint) {
        Ok(())
    } else {
        Err(Status::unresolvable(REASON))
    }
}
