//! Pieces every controller needs, written once:
//!
//! - [`informer`]: a watch of one kind kept in a local cache, calling a
//!   handler with (old, new) on every change (kube's shared informer);
//! - [`queue`]: a de-duplicating work queue of keys with per-key
//!   exponential backoff (kube's rate-limited workqueue);
//! - [`runner`]: workers that take keys from a queue and reconcile them,
//!   retrying failures with backoff;
//! - [`expectations`]: creations/deletions a controller made and has not
//!   seen in its cache yet, so a slow watch does not make it act twice;
//! - [`owner`]: controller references (`ownerReferences` with
//!   `controller: true`), adoption and release;
//! - [`pod`]: "is this pod active / ready / available";
//! - [`api`]: reading API errors (not found, conflict, message);
//! - [`discovery`]: the API's resources (CRDs included) from discovery;
//! - [`events`]: core/v1 Events as kube's recorder writes them;
//! - [`selector`]: label selectors against label maps.
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

pub mod api;
pub mod discovery;
pub mod events;
pub mod expectations;
pub mod informer;
pub mod owner;
pub mod pod;
pub mod queue;
pub mod runner;
pub mod selector;

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
