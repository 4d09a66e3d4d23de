//! Pieces every controller needs, written once, one job a module:
//!
//! Watching and queueing:
//! - [`informer`]: a watch of one kind kept in a local cache, calling a
//!   handler with (old, new) on every change (kube's shared informer);
//! - [`queue`]: a de-duplicating work queue of keys with per-key
//!   exponential backoff (kube's rate-limited workqueue);
//! - [`workers`]: workers that take keys from a queue and reconcile them,
//!   retrying failures with backoff;
//! - [`cache`]: watch-fed caches sharing one wake-up, for level-triggered
//!   loops that read whole caches each pass;
//! - [`controller`]: the context, error and retry policy of controllers
//!   built on kube-runtime's `Controller`;
//! - [`expectations`]: creations/deletions a controller made and has not
//!   seen in its cache yet, so a slow watch does not make it act twice.
//!
//! Reading objects:
//! - [`owner`]: controller references (`ownerReferences` with
//!   `controller: true`), kube's claim rules, adopt/release patches;
//! - [`selector`]: label selectors against label maps, and as queries;
//! - [`node_selector`]: node selectors (required node affinity);
//! - [`pods`]: "is this pod active / terminating / ready / available";
//! - [`intstr`]: IntOrString values scaled against a total;
//! - [`revisions`]: ControllerRevision history and template hashes;
//! - [`api`]: reading API errors (not found, conflict, message);
//! - [`discovery`]: the API's resources (CRDs included) from discovery.
//!
//! Acting through the API:
//! - [`adopt`]: adopting orphan pods;
//! - [`pod_control`]: creating and deleting pods with kube's events;
//! - [`history`]: writing and pruning ControllerRevisions;
//! - [`workload`]: a DaemonSet's or StatefulSet's owner, pods and
//!   revisions read for a sync;
//! - [`events`]: Events as kube's recorders write them.
//!
//! A controller wires them so (see `replicaset` for a whole one):
//!
//! ```ignore
//! let queue: WorkQueue<String> = WorkQueue::new();
//! let q = queue.clone();
//! let jobs = Informer::<Job>::spawn(Api::all(client.clone()), Arc::new(move |old, new| {
//!     if let Some(j) = new.or(old) { q.add(key_of(j.namespace().as_deref(), &j.name_any())); }
//! }));
//! let store = jobs.store();
//! tokio::spawn(async move {
//!     jobs.ready().await;          // first full listing
//!     spawn_workers("job-controller", queue, 5, move |key: String| {
//!         let store = store.clone();
//!         async move { /* read store, act through the API */ Ok::<_, kube::Error>(Next::Done) }
//!     });
//!     let _keep = jobs;            // dropping an Informer stops its watch
//!     std::future::pending::<()>().await;
//! });
//! ```

pub mod adopt;
pub mod api;
pub mod cache;
pub mod controller;
pub mod discovery;
pub mod events;
pub mod expectations;
pub mod history;
pub mod informer;
pub mod intstr;
pub mod node_selector;
pub mod owner;
pub mod pod_control;
pub mod pods;
pub mod queue;
pub mod queue_metrics;
pub mod revisions;
pub mod selector;
pub mod workers;
pub mod workload;

/// `namespace/name` (or `name` for a cluster-scoped object), the key
/// kube's controllers queue.
pub fn key_of(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
        _ => name.to_owned(),
    }
}

/// Splits a key made by [`key_of`] into (namespace, name); the namespace
/// is empty for a cluster-scoped key.
pub fn split_key(key: &str) -> (&str, &str) {
    key.split_once('/').unwrap_or(("", key))
}

/// Now, as a Kubernetes timestamp.
pub fn now() -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now())
}
