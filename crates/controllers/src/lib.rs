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

pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod disruption;
pub mod endpointslice;
pub mod gc;
pub mod hpa;
pub mod job;
pub mod namespace;
pub mod node_lifecycle;
pub mod podgc;
pub mod replicaset;
pub mod serviceaccount;
pub mod servicelb;
pub mod statefulset;
pub mod util;
pub mod volume;

/// Makes a client that acts as the named controller's ServiceAccount
/// (`kube-system/<name>`, e.g. `replicaset-controller`).
pub type Clients = Arc<dyn Fn(&str) -> kube::Client + Send + Sync>;

/// What some controllers need from the server that runs them.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where the local-path provisioner keeps volumes (`<root>/storage`).
    pub storage_dir: std::path::PathBuf,
    /// The cluster CA (PEM), published as `kube-root-ca.crt` in every namespace.
    pub ca_pem: String,
    /// Where the controllers' work queues report their figures
    /// (`workqueue_*`).
    pub queues: util::queue_metrics::QueueMetrics,
}

/// Starts every controller; they run until the process ends.
pub fn spawn_all(clients: &Clients, options: &Options) {
    volume::spawn(
        clients,
        volume::VolumeConfig::new(options.storage_dir.clone()),
    );
    serviceaccount::spawn_root_ca_publisher(clients, options.ca_pem.clone());
    let queues = &options.queues;
    replicaset::spawn_replicasets(clients, queues);
    deployment::spawn(clients, queues);
    gc::spawn(clients, queues);
    namespace::spawn(clients, queues);
    replicaset::spawn_replication_controllers(clients, queues);
    tokio::spawn(cronjob::run(clients(cronjob::sync::NAME)));
    tokio::spawn(job::run(clients(job::sync::NAME)));
    tokio::spawn(job::ttl::run(clients(job::ttl::NAME)));
    tokio::spawn(daemonset::run(clients(daemonset::sync::NAME)));
    tokio::spawn(statefulset::run(clients(statefulset::sync::NAME)));
    disruption::spawn(clients);
    node_lifecycle::spawn(clients, node_lifecycle::NodeLifecycleConfig::default());
    podgc::spawn(clients, podgc::PodGcConfig::default());
    serviceaccount::spawn_service_accounts(clients);
    endpointslice::spawn(clients, queues);
    servicelb::spawn(clients, queues);
    hpa::spawn(clients, queues);
}
