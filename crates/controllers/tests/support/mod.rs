//! The shared test plane (`berth-testplane`: an API server in process,
//! clients into it, waiting, playing the kubelet), and the controllers'
//! options for it.

#![allow(dead_code, unused_imports)]

pub use berth_testplane::kubelet::{
    make_all_ready, make_ready, ready_now, running_ready, set_all_status, set_pod_status,
    terminated,
};
pub use berth_testplane::objects::{
    active_pods, create, event_reasons, namespace, pods, wait_active_pods,
};
pub use berth_testplane::wait::{eventually, until};
pub use berth_testplane::{Plane, logs, start_in};

/// The controllers' options for `plane`: volumes under its temporary
/// directory, its cluster CA.
pub fn options(plane: &Plane) -> berth_controllers::Options {
    berth_controllers::Options {
        storage_dir: plane.storage_dir(),
        ca_pem: plane.ca_pem(),
        queues: Default::default(),
    }
}

/// A pod's `controller-revision-hash` label (empty when unset).
pub fn revision_hash(p: &k8s_openapi::api::core::v1::Pod) -> String {
    p.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("controller-revision-hash"))
        .cloned()
        .unwrap_or_default()
}

/// Starts a plane with every controller running (as `berth server`
/// does), and returns it with its admin client.
pub async fn start_all() -> (Plane, kube::Client) {
    logs();
    let plane = Plane::start().await;
    berth_controllers::spawn_all(&plane.controller_clients(), &options(&plane));
    let admin = plane.admin();
    (plane, admin)
}
