//! The watches the loop keeps its cache with, each a task feeding one
//! channel.

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{
    Namespace, Node, PersistentVolume, PersistentVolumeClaim, Pod, ReplicationController, Service,
};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

/// Something the loop learns.
#[derive(Debug)]
pub enum Update {
    /// A Node changed.
    Node(Box<watcher::Event<Node>>),
    /// A Pod changed.
    Pod(Box<watcher::Event<Pod>>),
    /// A PriorityClass changed.
    Class(Box<watcher::Event<PriorityClass>>),
    /// A PersistentVolumeClaim changed.
    Claim(Box<watcher::Event<PersistentVolumeClaim>>),
    /// A PersistentVolume changed.
    Volume(Box<watcher::Event<PersistentVolume>>),
    /// A Namespace changed.
    Namespace(Box<watcher::Event<Namespace>>),
    /// A PodDisruptionBudget changed.
    Pdb(Box<watcher::Event<PodDisruptionBudget>>),
    /// A Service changed.
    Service(Box<watcher::Event<Service>>),
    /// A ReplicaSet changed.
    ReplicaSet(Box<watcher::Event<ReplicaSet>>),
    /// A StatefulSet changed.
    StatefulSet(Box<watcher::Event<StatefulSet>>),
    /// A ReplicationController changed.
    ReplicationController(Box<watcher::Event<ReplicationController>>),
    /// A binding finished.
    Bound {
        /// The pod, `namespace/name`.
        key: String,
        /// The error, if it failed.
        error: Option<String>,
    },
}

fn watch<K>(
    api: Api<K>,
    what: &'static str,
    tx: UnboundedSender<Update>,
    wrap: fn(Box<watcher::Event<K>>) -> Update,
) -> JoinHandle<()>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    tokio::spawn(async move {
        // managedFields are of no use to the scheduler: not kept
        let mut stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .modify(|o: &mut K| o.meta_mut().managed_fields = None)
            .boxed();
        while let Some(event) = stream.next().await {
            match event {
                Ok(e) => {
                    if tx.send(wrap(Box::new(e))).is_err() {
                        return;
                    }
                }
                Err(e) => tracing::warn!(error = %e, what, "scheduler: watch failed, retrying"),
            }
        }
    })
}

/// Starts every watch the loop needs.
pub fn spawn_all(client: &Client, tx: &UnboundedSender<Update>) -> Vec<JoinHandle<()>> {
    vec![
        watch(
            Api::<Node>::all(client.clone()),
            "nodes",
            tx.clone(),
            Update::Node,
        ),
        watch(
            Api::<Pod>::all(client.clone()),
            "pods",
            tx.clone(),
            Update::Pod,
        ),
        watch(
            Api::<PriorityClass>::all(client.clone()),
            "priorityclasses",
            tx.clone(),
            Update::Class,
        ),
        watch(
            Api::<PersistentVolumeClaim>::all(client.clone()),
            "persistentvolumeclaims",
            tx.clone(),
            Update::Claim,
        ),
        watch(
            Api::<PersistentVolume>::all(client.clone()),
            "persistentvolumes",
            tx.clone(),
            Update::Volume,
        ),
        watch(
            Api::<Namespace>::all(client.clone()),
            "namespaces",
            tx.clone(),
            Update::Namespace,
        ),
        watch(
            Api::<PodDisruptionBudget>::all(client.clone()),
            "poddisruptionbudgets",
            tx.clone(),
            Update::Pdb,
        ),
        watch(
            Api::<Service>::all(client.clone()),
            "services",
            tx.clone(),
            Update::Service,
        ),
        watch(
            Api::<ReplicaSet>::all(client.clone()),
            "replicasets",
            tx.clone(),
            Update::ReplicaSet,
        ),
        watch(
            Api::<StatefulSet>::all(client.clone()),
            "statefulsets",
            tx.clone(),
            Update::StatefulSet,
        ),
        watch(
            Api::<ReplicationController>::all(client.clone()),
            "replicationcontrollers",
            tx.clone(),
            Update::ReplicationController,
        ),
    ]
}
