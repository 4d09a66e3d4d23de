//! The ReplicaSet and ReplicationController controllers: keep
//! `spec.replicas` pods matching the selector, owned by the set (adopting
//! orphans, releasing pods that stopped matching), and report their
//! counts in status, as kube's ReplicaSetController.

mod kind;
pub mod reconcile;

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};

pub use kind::{ReplicaKind, Spec};
use reconcile::{Failure, Scale};

use crate::Clients;
use crate::util::events::{NORMAL, Recorder, WARNING};
use crate::util::expectations::Expectations;
use crate::util::informer::Informer;
use crate::util::owner::{self, Claim};
use crate::util::queue::WorkQueue;
use crate::util::runner::{Next, spawn_workers};
use crate::util::{api as apierr, key_of, pod as podutil, selector, split_key};

/// Starts the ReplicaSet controller (as `replicaset-controller`).
pub fn spawn_replicasets(clients: &Clients) {
    spawn::<ReplicaSet>(clients(ReplicaSet::CONTROLLER));
}

/// Starts the ReplicationController controller (as
/// `replication-controller`).
pub fn spawn_replication_controllers(clients: &Clients) {
    spawn::<ReplicationController>(clients(ReplicationController::CONTROLLER));
}

/// Errors of one sync.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// An API call failed.
    #[error("{0}")]
    Api(#[from] kube::Error),
    /// The set changed identity or is being deleted while adopting.
    #[error("{0}")]
    Adopt(String),
    /// Creating or deleting pods failed (the status tells why).
    #[error("{0}")]
    Manage(String),
}

struct Ctl<K: ReplicaKind> {
    client: kube::Client,
    sets: Store<K>,
    pods: Store<Pod>,
    expectations: Expectations,
    recorder: Recorder,
    _informers: (Informer<K>, Informer<Pod>),
}

fn spawn<K: ReplicaKind>(client: kube::Client) {
    let queue: WorkQueue<String> = WorkQueue::new();
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

/// The set (in `sets`) a controller reference names, if it is there with
/// that uid.
fn resolve<K: ReplicaKind>(
    sets: &Store<K>,
    namespace: &str,
    r: &k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
) -> Option<Arc<K>> {
    if r.kind != K::kind(&()) {
        return None;
    }
    let set = sets.get(&ObjectRef::new(&r.name).within(namespace))?;
    (set.meta().uid.as_deref() == Some(r.uid.as_str())).then_some(set)
}

/// Sets whose selector matches an orphan pod's labels.
fn matching_sets<K: ReplicaKind>(sets: &Store<K>, pod: &Pod) -> Vec<Arc<K>> {
    let ns = pod.namespace().unwrap_or_default();
    let empty = Default::default();
    let labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
    sets.state()
        .into_iter()
        .filter(|s| s.namespace().unwrap_or_default() == ns)
        .filter(|s| {
            let sel = s.spec_view().selector;
            !selector::is_empty(&sel) && selector::matches(&sel, labels)
        })
        .collect()
}

fn set_key<K: ReplicaKind>(set: &K) -> String {
    key_of(set.meta().namespace.as_deref(), &set.name_any())
}

/// Queues the sets a pod change concerns, and counts what the pod's
/// owner expected (kube's addPod/updatePod/deletePod).
fn on_pod<K: ReplicaKind>(
    sets: &Store<K>,
    queue: &WorkQueue<String>,
    expectations: &Expectations,
    old: Option<&Pod>,
    new: Option<&Pod>,
) {
    let ns_of = |p: &Pod| p.namespace().unwrap_or_default();
    let pod_key = |p: &Pod| key_of(p.namespace().as_deref(), &p.name_any());
    let deleted = |p: &Pod| {
        if let Some(r) = owner::controller_of(&p.metadata)
            && let Some(set) = resolve(sets, &ns_of(p), r)
        {
            let key = set_key(set.as_ref());
            expectations.deletion_observed(&key, &pod_key(p));
            queue.add(key);
        }
    };
    match (old, new) {
        (None, Some(pod)) => {
            if pod.metadata.deletion_timestamp.is_some() {
                deleted(pod);
                return;
            }
            if let Some(r) = owner::controller_of(&pod.metadata) {
                if let Some(set) = resolve(sets, &ns_of(pod), r) {
                    let key = set_key(set.as_ref());
                    expectations.creation_observed(&key);
                    queue.add(key);
                }
                return;
            }
            for set in matching_sets(sets, pod) {
                queue.add(set_key(set.as_ref()));
            }
        }
        (Some(old), Some(cur)) => {
            if old.metadata.resource_version == cur.metadata.resource_version {
                return;
            }
            let labels_changed = old.metadata.labels != cur.metadata.labels;
            if cur.metadata.deletion_timestamp.is_some() {
                deleted(cur);
                if labels_changed {
                    deleted(old);
                }
                return;
            }
            let old_ref = owner::controller_of(&old.metadata);
            let cur_ref = owner::controller_of(&cur.metadata);
            let ref_changed = old_ref != cur_ref;
            if ref_changed
                && let Some(r) = old_ref
                && let Some(set) = resolve(sets, &ns_of(old), r)
            {
                queue.add(set_key(set.as_ref()));
            }
            if let Some(r) = cur_ref {
                if let Some(set) = resolve(sets, &ns_of(cur), r) {
                    let key = set_key(set.as_ref());
                    let min_ready = set.spec_view().min_ready_seconds;
                    if !podutil::is_ready(old) && podutil::is_ready(cur) && min_ready > 0 {
                        let secs = u64::try_from(min_ready).unwrap_or(0) + 1;
                        queue.add_after(key.clone(), Duration::from_secs(secs));
                    }
                    queue.add(key);
                }
                return;
            }
            if labels_changed || ref_changed {
                for set in matching_sets(sets, cur) {
                    queue.add(set_key(set.as_ref()));
                }
            }
        }
        (Some(old), None) => deleted(old),
        (None, None) => {}
    }
}

impl<K: ReplicaKind> Ctl<K> {
    fn api(&self, ns: &str) -> Api<K> {
        Api::namespaced(self.client.clone(), ns)
    }

    fn pod_api(&self, ns: &str) -> Api<Pod> {
        Api::namespaced(self.client.clone(), ns)
    }

    async fn event(&self, set: &ObjectMeta, type_: &str, reason: &str, message: &str) {
        let api_version = K::api_version(&());
        self.recorder
            .record(&api_version, &K::kind(&()), set, type_, reason, message)
            .await;
    }

    async fn sync(&self, key: &str) -> Result<Next, SyncError> {
        let (ns, name) = split_key(key);
        let Some(set) = self.sets.get(&ObjectRef::new(name).within(ns)) else {
            self.expectations.delete(key);
            return Ok(Next::Done);
        };
        let set = set.as_ref().clone();
        let needs_sync = self.expectations.satisfied(key);
        let spec = set.spec_view();
        let deleting = set.meta().deletion_timestamp.is_some();

        let all: Vec<Arc<Pod>> = self
            .pods
            .state()
            .into_iter()
            .filter(|p| p.namespace().as_deref() == Some(ns))
            .collect();
        let owned = self.claim(&set, &spec, deleting, &all).await?;
        let owned_refs: Vec<&Pod> = owned.iter().map(|p| p.as_ref()).collect();

        let mut failure = None;
        if needs_sync && !deleting {
            failure = self.manage(key, &set, &spec, &owned_refs, &all).await;
        }
        let now = k8s_openapi::jiff::Timestamp::now();
        let template_labels = spec
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        let current = set.status_view();
        let status = reconcile::calculate_status(
            &current,
            &template_labels,
            spec.min_ready_seconds,
            &owned_refs,
            failure.as_ref(),
            now,
        );
        let status = self.write_status(&set, current, status).await?;
        if let Some(f) = failure {
            return Err(SyncError::Manage(f.message));
        }
        if spec.min_ready_seconds > 0
            && status.ready_replicas.unwrap_or(0) == spec.replicas
            && status.available_replicas.unwrap_or(0) != spec.replicas
        {
            let secs = u64::try_from(spec.min_ready_seconds).unwrap_or(0);
            return Ok(Next::After(Duration::from_secs(secs)));
        }
        Ok(Next::Done)
    }

    /// kube's ClaimPods over the namespace's active pods: the pods the set
    /// owns after adopting matching orphans and releasing non-matching.
    async fn claim(
        &self,
        set: &K,
        spec: &Spec,
        deleting: bool,
        all: &[Arc<Pod>],
    ) -> Result<Vec<Arc<Pod>>, SyncError> {
        let empty = Default::default();
        let mut owned = Vec::new();
        let mut can_adopt: Option<bool> = None;
        let sel_empty = selector::is_empty(&spec.selector);
        let ns = set.namespace().unwrap_or_default();
        for pod in all.iter().filter(|p| podutil::is_active(p)) {
            let labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
            let matches = !sel_empty && selector::matches(&spec.selector, labels);
            match owner::claim(set.meta(), deleting, matches, &pod.metadata) {
                Claim::Owned => owned.push(pod.clone()),
                Claim::Ignore => {}
                Claim::Adopt => {
                    if can_adopt.is_none() {
                        can_adopt = Some(self.recheck(set).await?);
                    }
                    if can_adopt != Some(true) {
                        continue;
                    }
                    let r = owner::controller_ref(&K::api_version(&()), &K::kind(&()), set.meta());
                    let patch = owner::adopt_patch(&pod.metadata, &r);
                    match self
                        .pod_api(&ns)
                        .patch(
                            &pod.name_any(),
                            &PatchParams::default(),
                            &Patch::Merge(&patch),
                        )
                        .await
                    {
                        Ok(p) => owned.push(Arc::new(p)),
                        Err(e) if apierr::is_not_found(&e) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                Claim::Release => {
                    let uid = set.meta().uid.clone().unwrap_or_default();
                    let patch = owner::release_patch(&pod.metadata, &uid);
                    match self
                        .pod_api(&ns)
                        .patch(
                            &pod.name_any(),
                            &PatchParams::default(),
                            &Patch::Merge(&patch),
                        )
                        .await
                    {
                        Ok(_) => {}
                        Err(e) if apierr::is_not_found(&e) || apierr::is_conflict(&e) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        Ok(owned)
    }

    /// kube's canAdopt: the set, read afresh, is the same object and not
    /// being deleted.
    async fn recheck(&self, set: &K) -> Result<bool, SyncError> {
        let ns = set.namespace().unwrap_or_default();
        let fresh = self.api(&ns).get(&set.name_any()).await?;
        if fresh.meta().uid != set.meta().uid {
            return Err(SyncError::Adopt(format!(
                "original {} {}/{} is gone: got uid {:?}, wanted {:?}",
                K::kind(&()),
                ns,
                set.name_any(),
                fresh.meta().uid,
                set.meta().uid
            )));
        }
        if fresh.meta().deletion_timestamp.is_some() {
            return Err(SyncError::Adopt(format!(
                "{}/{} has just been deleted",
                ns,
                set.name_any()
            )));
        }
        Ok(true)
    }

    /// kube's manageReplicas: creates or deletes pods; the failure, if
    /// any, for the ReplicaFailure condition.
    async fn manage(
        &self,
        key: &str,
        set: &K,
        spec: &Spec,
        owned: &[&Pod],
        all: &[Arc<Pod>],
    ) -> Option<Failure> {
        match reconcile::scale(owned.len(), spec.replicas) {
            Scale::Keep => None,
            Scale::Create(n) => self.create(key, set, spec, n).await,
            Scale::Delete(n) => {
                let related = self.related_pods(set, all);
                let related: Vec<&Pod> = related.iter().map(|p| p.as_ref()).collect();
                let now = k8s_openapi::jiff::Timestamp::now();
                let victims = reconcile::pods_to_delete(owned, &related, n, now);
                self.delete(key, set, &victims).await
            }
        }
    }

    /// The active pods of the sets sharing this set's controller (a
    /// Deployment's ReplicaSets), or the set's own.
    fn related_pods(&self, set: &K, all: &[Arc<Pod>]) -> Vec<Arc<Pod>> {
        let uids: Vec<String> = match owner::controller_of(set.meta()) {
            Some(r) => self
                .sets
                .state()
                .into_iter()
                .filter(|s| s.namespace() == set.namespace())
                .filter(|s| owner::controller_of(s.meta()).is_some_and(|o| o.uid == r.uid))
                .filter_map(|s| s.meta().uid.clone())
                .collect(),
            None => set.meta().uid.clone().into_iter().collect(),
        };
        all.iter()
            .filter(|p| podutil::is_active(p))
            .filter(|p| owner::controller_of(&p.metadata).is_some_and(|r| uids.contains(&r.uid)))
            .cloned()
            .collect()
    }

    fn pod_from_template(&self, set: &K, spec: &Spec) -> Pod {
        let tmeta = spec.template.metadata.clone().unwrap_or_default();
        Pod {
            metadata: ObjectMeta {
                generate_name: Some(format!("{}-", set.name_any())),
                namespace: set.namespace(),
                labels: tmeta.labels,
                annotations: tmeta.annotations,
                finalizers: tmeta.finalizers,
                owner_references: Some(vec![owner::controller_ref(
                    &K::api_version(&()),
                    &K::kind(&()),
                    set.meta(),
                )]),
                ..Default::default()
            },
            spec: spec.template.spec.clone(),
            status: None,
        }
    }

    async fn create(&self, key: &str, set: &K, spec: &Spec, count: usize) -> Option<Failure> {
        let ns = set.namespace().unwrap_or_default();
        self.expectations
            .expect(key, i64::try_from(count).unwrap_or(i64::MAX), Vec::new());
        let pod = self.pod_from_template(set, spec);
        let api = self.pod_api(&ns);
        let mut created = 0usize;
        let mut failure = None;
        for batch in reconcile::slow_start_batches(count) {
            let params = PostParams::default();
            let results = join_all((0..batch).map(|_| api.create(&params, &pod))).await;
            for result in results {
                match result {
                    Ok(p) => {
                        created += 1;
                        let msg = format!("Created pod: {}", p.name_any());
                        self.event(set.meta(), NORMAL, "SuccessfulCreate", &msg)
                            .await;
                    }
                    // A terminating namespace takes no new pods: nothing to report.
                    Err(e) if apierr::is_namespace_terminating(&e) => {}
                    Err(e) => {
                        let message = apierr::message(&e);
                        self.event(
                            set.meta(),
                            WARNING,
                            "FailedCreate",
                            &format!("Error creating: {message}"),
                        )
                        .await;
                        if failure.is_none() {
                            failure = Some(Failure {
                                reason: "FailedCreate",
                                message,
                            });
                        }
                    }
                }
            }
            if failure.is_some() {
                break;
            }
        }
        // Creations that failed or never started will not be observed.
        for _ in created..count {
            self.expectations.creation_observed(key);
        }
        failure
    }

    async fn delete(&self, key: &str, set: &K, victims: &[&Pod]) -> Option<Failure> {
        let ns = set.namespace().unwrap_or_default();
        let keys: Vec<String> = victims
            .iter()
            .map(|p| key_of(p.namespace().as_deref(), &p.name_any()))
            .collect();
        self.expectations.expect(key, 0, keys.clone());
        let api = self.pod_api(&ns);
        let results = join_all(victims.iter().map(|p| async {
            (
                p.name_any(),
                api.delete(&p.name_any(), &DeleteParams::default()).await,
            )
        }))
        .await;
        let mut failure = None;
        for ((name, result), pod_key) in results.into_iter().zip(keys) {
            match result {
                Ok(_) => {
                    self.event(
                        set.meta(),
                        NORMAL,
                        "SuccessfulDelete",
                        &format!("Deleted pod: {name}"),
                    )
                    .await;
                }
                Err(e) => {
                    self.expectations.deletion_observed(key, &pod_key);
                    if apierr::is_not_found(&e) {
                        continue;
                    }
                    let message = apierr::message(&e);
                    self.event(
                        set.meta(),
                        WARNING,
                        "FailedDelete",
                        &format!("Error deleting: {message}"),
                    )
                    .await;
                    if failure.is_none() {
                        failure = Some(Failure {
                            reason: "FailedDelete",
                            message,
                        });
                    }
                }
            }
        }
        failure
    }

    /// Writes `status` (with observedGeneration) when it changed; on a
    /// conflict reads the set again and retries once, as kube does.
    async fn write_status(
        &self,
        set: &K,
        current: k8s_openapi::api::apps::v1::ReplicaSetStatus,
        mut status: k8s_openapi::api::apps::v1::ReplicaSetStatus,
    ) -> Result<k8s_openapi::api::apps::v1::ReplicaSetStatus, SyncError> {
        let generation = set.meta().generation;
        if !reconcile::status_changed(&current, &status, generation) {
            return Ok(status);
        }
        status.observed_generation = generation;
        let ns = set.namespace().unwrap_or_default();
        let api = self.api(&ns);
        let mut target = set.clone();
        for attempt in 0..2 {
            target.set_status(status.clone());
            match api
                .replace_status(&target.name_any(), &PostParams::default(), &target)
                .await
            {
                Ok(_) => return Ok(status),
                Err(e) if attempt == 0 && apierr::is_conflict(&e) => {
                    target = api.get(&set.name_any()).await?;
                    if target.meta().uid != set.meta().uid {
                        return Ok(status);
                    }
                    status.observed_generation = target.meta().generation;
                }
                Err(e) if apierr::is_not_found(&e) => return Ok(status),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(status)
    }
}
