//! The ReplicaSet and ReplicationController controllers: keep
//! `spec.replicas` pods matching the selector, owned by the set (adopting
//! orphans, releasing pods that stopped matching), and report their
//! counts in status, as kube's ReplicaSetController.

mod handlers;
mod kind;
pub mod reconcile;
mod sync;

use std::sync::Arc;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use kube::ResourceExt;
use kube::api::Api;

use handlers::on_pod;
pub use kind::{ReplicaKind, Spec};
use sync::Ctl;
pub use sync::SyncError;

use crate::Clients;
use crate::util::events::Recorder;
use crate::util::expectations::Expectations;
use crate::util::informer::Informer;
use crate::util::key_of;
use crate::util::queue::WorkQueue;
use crate::util::queue_metrics::QueueMetrics;
use crate::util::workers::spawn_workers;

/// Starts the ReplicaSet controller (as `replicaset-controller`).
/// `queues`: where its work queue (`replicaset`) reports.
pub fn spawn_replicasets(clients: &Clients, queues: &QueueMetrics) {
    spawn::<ReplicaSet>(clients(ReplicaSet::CONTROLLER), queues);
}

/// Starts the ReplicationController controller (as
/// `replication-controller`).
/// `queues`: where its work queue (`replicationmanager`) reports.
pub fn spawn_replication_controllers(clients: &Clients, queues: &QueueMetrics) {
    spawn::<ReplicationController>(clients(ReplicationController::CONTROLLER), queues);
}

fn spawn<K: ReplicaKind>(client: kube::Client, queues: &QueueMetrics) {
    let queue: WorkQueue<String> = WorkQueue::named(K::QUEUE, queues);
    let expectations = Expectations::new();
    let set_informer = {
        let queue = queue.clone();
        let expectations = expectations.clone();
        Informer::<K>::spawn(
            Api::all(client.clone()),
            Arc::new(move |_old: Option<&K>, new: Option<&K>| {
                let Some(obj) = new.or(_old) else { return };
                let key = key_of(obj.meta().namespace.as_deref(), &obj.name_any());
                if new.is_none() {
                    expectations.delete(&key);
                }
                queue.add(key);
            }),
        )
    };
    let sets = set_informer.store();
    let pod_informer = {
        let queue = queue.clone();
        let expectations = expectations.clone();
        let sets = sets.clone();
        Informer::<Pod>::spawn(
            Api::all(client.clone()),
            Arc::new(move |old: Option<&Pod>, new: Option<&Pod>| {
                on_pod(&sets, &queue, &expectations, old, new);
            }),
        )
    };
    let pods = pod_informer.store();
    let ctl = Arc::new(Ctl {
        recorder: Recorder::new(client.clone(), K::CONTROLLER),
        client,
        sets,
        pods,
        expectations,
        _informers: (set_informer, pod_informer),
    });
    tokio::spawn(async move {
        ctl._informers.0.ready().await;
        ctl._informers.1.ready().await;
        spawn_workers(K::CONTROLLER, queue, 5, move |key: String| {
            let ctl = ctl.clone();
            async move { ctl.sync(&key).await }
        });
    });
}
