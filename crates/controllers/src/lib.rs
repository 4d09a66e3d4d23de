//! berth's controllers (layer 3): each keeps one kind of object's promise
//! (a Deployment's replicas, a Job's completions, an owner's dependents…)
//! by watching the cluster through the Kubernetes API and acting through
//! it, as kube-controller-manager's controllers do.
//!
//! Every controller is a pure reconcile function (objects in, actions out)
//! under a loop that feeds it from watches and applies what it returns.
//! Each runs as its own ServiceAccount (`kube-system/<name>`), so RBAC
//! limits it as it limits kube's.
#![forbid(unsafe_code)]

use std::sync::Arc;

pub mod disruption;
mod kube_match;
pub mod node_lifecycle;
pub mod podgc;
pub mod serviceaccount;
pub mod volume;
mod watched;

/// Makes a client that acts as the named controller's ServiceAccount
/// (`kube-system/<name>`, e.g. `replicaset-controller`).
pub type Clients = Arc<dyn Fn(&str) -> kube::Client + Send + Sync>;

/// Starts every controller; they run until the process ends.
pub fn spawn_all(clients: &Clients) {
    disruption::spawn(clients);
    node_lifecycle::spawn(clients, node_lifecycle::NodeLifecycleConfig::default());
    podgc::spawn(clients, podgc::PodGcConfig::default());
    serviceaccount::spawn_service_accounts(clients);
}
