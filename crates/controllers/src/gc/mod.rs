//! The garbage collector: deletes objects whose owners are gone (uid
//! mismatch included), and serves the `foregroundDeletion` and `orphan`
//! finalizers of owners being deleted, as kube's GarbageCollector. It
//! watches every resource the API serves (CRDs too, found again by
//! discovery every 15 s).

pub mod graph;
mod sync;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::api::{Api, DynamicObject};
use kube::core::PartialObjectMeta;
use kube::discovery::ApiResource;

use crate::Clients;
use crate::util::discovery::{Served, resources};
use crate::util::informer::Informer;
use crate::util::queue::WorkQueue;
use crate::util::queue_metrics::QueueMetrics;
use crate::util::workers::spawn_workers;
use graph::{Graph, Node};

/// What the collector watches of each object: its metadata.
type Meta = PartialObjectMeta<DynamicObject>;

/// The collector's name (its ServiceAccount).
pub const CONTROLLER: &str = "generic-garbage-collector";

/// How often the served resources are discovered again.
const RESYNC: Duration = Duration::from_secs(15);

/// Resources never collected (kube's ignored resources): events.
fn ignored(s: &Served) -> bool {
    s.resource.plural == "events"
        && (s.resource.group.is_empty() || s.resource.group == "events.k8s.io")
}

pub(crate) struct Gc {
    client: kube::Client,
    graph: Mutex<Graph>,
    /// (group, kind) → served resource, to find an owner by its reference.
    kinds: Mutex<HashMap<(String, String), Served>>,
    queue: WorkQueue<String>,
}

impl Gc {
    fn graph(&self) -> std::sync::MutexGuard<'_, Graph> {
        self.graph.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn kinds(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Served>> {
        self.kinds.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Starts the garbage collector (as `generic-garbage-collector`).
/// `queues`: where its work queue (`garbage_collector_attempt_to_delete`)
/// reports.
pub fn spawn(clients: &Clients, queues: &QueueMetrics) {
    let gc = Arc::new(Gc {
        client: clients(CONTROLLER),
        graph: Mutex::new(Graph::default()),
        kinds: Mutex::new(HashMap::new()),
        queue: WorkQueue::named("garbage_collector_attempt_to_delete", queues),
    });
    let workers = gc.clone();
    spawn_workers(
        "garbage-collector",
        gc.queue.clone(),
        5,
        move |uid: String| {
            let gc = workers.clone();
            async move { gc.sync(&uid).await }
        },
    );
    tokio::spawn(monitor(gc));
}

/// Keeps one watch per served resource, following discovery.
async fn monitor(gc: Arc<Gc>) {
    let mut monitors: HashMap<(String, String, String), Informer<Meta>> = HashMap::new();
    loop {
        match resources(&gc.client).await {
            Ok(served) => {
                let served: Vec<Served> = served
                    .into_iter()
                    .filter(|s| s.supports(&["list", "watch", "delete"]) && !ignored(s))
                    .collect();
                *gc.kinds() = served
                    .iter()
                    .map(|s| {
                        (
                            (s.resource.group.clone(), s.resource.kind.clone()),
                            s.clone(),
                        )
                    })
                    .collect();
                let key = |r: &ApiResource| (r.group.clone(), r.version.clone(), r.plural.clone());
                let wanted: Vec<_> = served.iter().map(|s| key(&s.resource)).collect();
                let gone: Vec<_> = monitors
                    .keys()
                    .filter(|k| !wanted.contains(k))
                    .cloned()
                    .collect();
                for k in gone {
                    monitors.remove(&k);
                    let stale = served_resource(&k);
                    let uids = gc.graph().remove_resource(&stale);
                    for uid in uids {
                        enqueue_dependents(&gc, &uid);
                    }
                }
                for s in served {
                    let k = key(&s.resource);
                    if monitors.contains_key(&k) {
                        continue;
                    }
                    let api: Api<Meta> = Api::all_with(gc.client.clone(), &s.resource);
                    let handler_gc = gc.clone();
                    let resource = s.resource.clone();
                    let informer = Informer::spawn_dynamic(
                        api,
                        s.resource.clone(),
                        Arc::new(move |old: Option<&Meta>, new: Option<&Meta>| {
                            on_change(&handler_gc, &resource, old, new);
                        }),
                    );
                    monitors.insert(k, informer);
                }
            }
            Err(e) => tracing::info!(error = %e, "garbage collector: discovery failed"),
        }
        tokio::time::sleep(RESYNC).await;
    }
}

/// A resource key back as an ApiResource (for graph cleanup only: group,
/// version and plural are what identify it there).
fn served_resource(k: &(String, String, String)) -> ApiResource {
    ApiResource {
        group: k.0.clone(),
        version: k.1.clone(),
        api_version: if k.0.is_empty() {
            k.1.clone()
        } else {
            format!("{}/{}", k.0, k.1)
        },
        kind: String::new(),
        plural: k.2.clone(),
    }
}

fn node_of(
    resource: &ApiResource,
    m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Option<Node> {
    Some(Node {
        resource: resource.clone(),
        namespace: m.namespace.clone(),
        name: m.name.clone()?,
        uid: m.uid.clone()?,
        owners: m.owner_references.clone().unwrap_or_default(),
        deleting: m.deletion_timestamp.is_some(),
        finalizers: m.finalizers.clone().unwrap_or_default(),
        resource_version: m.resource_version.clone(),
    })
}

fn enqueue_dependents(gc: &Gc, uid: &str) {
    let deps: Vec<String> = gc
        .graph()
        .dependents_of(uid)
        .iter()
        .map(|n| n.uid.clone())
        .collect();
    for d in deps {
        gc.queue.add(d);
    }
}

/// Keeps the graph and queues what a change concerns (kube's
/// processGraphChanges).
fn on_change(gc: &Gc, resource: &ApiResource, old: Option<&Meta>, new: Option<&Meta>) {
    match new {
        Some(obj) => {
            let Some(node) = node_of(resource, &obj.metadata) else {
                return;
            };
            let uid = node.uid.clone();
            let previous = gc.graph().upsert(node.clone());
            let owners_changed = previous.as_ref().is_none_or(|p| p.owners != node.owners);
            if !node.owners.is_empty() && owners_changed {
                gc.queue.add(uid.clone());
            }
            if node.deleting_dependents() || node.orphaning() {
                gc.queue.add(uid.clone());
            }
            if node.deleting_dependents()
                && !previous.as_ref().is_some_and(Node::deleting_dependents)
            {
                enqueue_dependents(gc, &uid);
            }
            // A dependent changed: an owner waiting on it may finish.
            let graph = gc.graph();
            let waiting: Vec<String> = node
                .owners
                .iter()
                .filter(|r| graph.get(&r.uid).is_some_and(Node::deleting_dependents))
                .map(|r| r.uid.clone())
                .collect();
            drop(graph);
            for w in waiting {
                gc.queue.add(w);
            }
        }
        None => {
            let Some(uid) = old.and_then(|o| o.metadata.uid.clone()) else {
                return;
            };
            let removed = gc.graph().remove(&uid);
            enqueue_dependents(gc, &uid);
            if let Some(node) = removed {
                for r in node.owners {
                    gc.queue.add(r.uid);
                }
            }
        }
    }
}
