//! The Deployment controller: rolls a Deployment's pod template out
//! through ReplicaSets (RollingUpdate with maxSurge/maxUnavailable, or
//! Recreate), keeps revisions, scales proportionally, cleans up old
//! ReplicaSets and reports progress, as kube's DeploymentController.

pub mod hash;
pub mod revision;
pub mod rolling;
mod rollout;
pub mod status;
mod sync;

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::Clients;
use crate::util::events::Recorder;
use crate::util::informer::Informer;
use crate::util::owner;
use crate::util::queue::WorkQueue;
use crate::util::queue_metrics::QueueMetrics;
use crate::util::workers::spawn_workers;
use crate::util::{key_of, selector};

/// The controller's name (its ServiceAccount and event source).
pub const CONTROLLER: &str = "deployment-controller";

/// Starts the Deployment controller (as `deployment-controller`).
/// `queues`: where its work queue (`deployment`) reports.
pub fn spawn(clients: &Clients, queues: &QueueMetrics) {
    let client = clients(CONTROLLER);
    let queue: WorkQueue<String> = WorkQueue::named("deployment", queues);
    let deployments = {
        let queue = queue.clone();
        Informer::<Deployment>::spawn(
            Api::all(client.clone()),
            Arc::new(move |old: Option<&Deployment>, new: Option<&Deployment>| {
                if let Some(d) = new.or(old) {
                    queue.add(key_of(d.namespace().as_deref(), &d.name_any()));
                }
            }),
        )
    };
    let d_store = deployments.store();
    let sets = {
        let queue = queue.clone();
        let d_store = d_store.clone();
        Informer::<ReplicaSet>::spawn(
            Api::all(client.clone()),
            Arc::new(move |old: Option<&ReplicaSet>, new: Option<&ReplicaSet>| {
                on_replicaset(&d_store, &queue, old, new);
            }),
        )
    };
    let rs_store = sets.store();
    let pods = {
        let queue = queue.clone();
        let d_store = d_store.clone();
        let rs_store = rs_store.clone();
        Informer::<Pod>::spawn(
            Api::all(client.clone()),
            Arc::new(move |old: Option<&Pod>, new: Option<&Pod>| {
                // Recreate waits for old pods to go: look again when one
                // stops being active.
                let gone = match (old, new) {
                    (Some(o), None) => Some(o),
                    (Some(o), Some(n))
                        if crate::util::pods::is_active(o) && !crate::util::pods::is_active(n) =>
                    {
                        Some(n)
                    }
                    _ => None,
                };
                let Some(pod) = gone else { return };
                let ns = pod.namespace().unwrap_or_default();
                let Some(r) = owner::controller_of(&pod.metadata) else {
                    return;
                };
                let Some(rs) = rs_store.get(&ObjectRef::new(&r.name).within(&ns)) else {
                    return;
                };
                if let Some(d) = resolve(&d_store, &ns, owner::controller_of(&rs.metadata))
                    && !rolling::is_rolling(&d)
                {
                    queue.add(key_of(Some(&ns), &d.name_any()));
                }
            }),
        )
    };
    let pod_store = pods.store();
    let ctl = Arc::new(sync::Ctl {
        recorder: Recorder::new(client.clone(), CONTROLLER),
        client,
        deployments: d_store,
        sets: rs_store,
        pods: pod_store,
    });
    tokio::spawn(async move {
        deployments.ready().await;
        sets.ready().await;
        pods.ready().await;
        let _keep = (deployments, sets, pods);
        let worker_ctl = ctl.clone();
        spawn_workers(CONTROLLER, queue, 5, move |key: String| {
            let ctl = worker_ctl.clone();
            async move { ctl.sync(&key).await }
        });
        std::future::pending::<()>().await;
    });
}

/// The Deployment a controller reference names (same uid), if cached.
fn resolve(
    store: &Store<Deployment>,
    ns: &str,
    r: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>,
) -> Option<Arc<Deployment>> {
    let r = r?;
    if r.kind != "Deployment" {
        return None;
    }
    let d = store.get(&ObjectRef::new(&r.name).within(ns))?;
    (d.metadata.uid.as_deref() == Some(r.uid.as_str())).then_some(d)
}

/// Deployments whose selector matches an orphan ReplicaSet's labels.
fn matching(store: &Store<Deployment>, rs: &ReplicaSet) -> Vec<Arc<Deployment>> {
    let ns = rs.namespace().unwrap_or_default();
    let empty = Default::default();
    let labels = rs.metadata.labels.as_ref().unwrap_or(&empty);
    store
        .state()
        .into_iter()
        .filter(|d| d.namespace().unwrap_or_default() == ns)
        .filter(|d| {
            let sel = d
                .spec
                .as_ref()
                .map(|s| s.selector.clone())
                .unwrap_or_default();
            !selector::is_empty(&sel) && selector::matches(&sel, labels)
        })
        .collect()
}

/// Queues the Deployments a ReplicaSet change concerns (kube's
/// add/update/deleteReplicaSet).
fn on_replicaset(
    store: &Store<Deployment>,
    queue: &WorkQueue<String>,
    old: Option<&ReplicaSet>,
    new: Option<&ReplicaSet>,
) {
    let enqueue = |d: &Deployment| queue.add(key_of(d.namespace().as_deref(), &d.name_any()));
    let ns_of = |rs: &ReplicaSet| rs.namespace().unwrap_or_default();
    if let (Some(o), Some(n)) = (old, new)
        && o.metadata.resource_version == n.metadata.resource_version
    {
        return;
    }
    if let Some(o) = old {
        let old_ref = owner::controller_of(&o.metadata);
        let new_ref = new.and_then(|n| owner::controller_of(&n.metadata));
        if (new.is_none() || old_ref != new_ref)
            && let Some(d) = resolve(store, &ns_of(o), old_ref)
        {
            enqueue(&d);
        }
    }
    let Some(rs) = new else { return };
    match owner::controller_of(&rs.metadata) {
        Some(r) => {
            if let Some(d) = resolve(store, &ns_of(rs), Some(r)) {
                enqueue(&d);
            }
        }
        None => {
            let labels_changed = old.is_none_or(|o| o.metadata.labels != rs.metadata.labels);
            if labels_changed || old.is_some_and(|o| owner::controller_of(&o.metadata).is_some()) {
                for d in matching(store, rs) {
                    enqueue(&d);
                }
            }
        }
    }
}
