//! One sync of a set: kube's syncReplicaSet — claim pods, create or
//! delete to match replicas, write status.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};

use super::reconcile::{self, Failure, Scale};
use super::{ReplicaKind, Spec};
use crate::util::events::{NORMAL, Recorder, WARNING};
use crate::util::expectations::Expectations;
use crate::util::informer::Informer;
use crate::util::owner::{self, Claim};
use crate::util::workers::Next;
use crate::util::{adopt, api as apierr, key_of, pods as podutil, selector, split_key};

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

pub(super) struct Ctl<K: ReplicaKind> {
    pub(super) client: kube::Client,
    pub(super) sets: Store<K>,
    pub(super) pods: Store<Pod>,
    pub(super) expectations: Expectations,
    pub(super) recorder: Recorder,
    pub(super) _informers: (Informer<K>, Informer<Pod>),
}

impl<K: ReplicaKind> Ctl<K> {
    pub(super) fn api(&self, ns: &str) -> Api<K> {
        Api::namespaced(self.client.clone(), ns)
    }

    pub(super) fn pod_api(&self, ns: &str) -> Api<Pod> {
        Api::namespaced(self.client.clone(), ns)
    }

    pub(super) async fn event(&self, set: &ObjectMeta, type_: &str, reason: &str, message: &str) {
        let api_version = K::api_version(&());
        self.recorder
            .record(&api_version, &K::kind(&()), set, type_, reason, message)
            .await;
    }

    /// Records a failed pod creation or deletion (`FailedCreate`: "Error
    /// creating: …", `FailedDelete`: "Error deleting: …", as kube's pod
    /// control) and keeps the sync's first failure for its condition.
    async fn failed(
        &self,
        set: &K,
        reason: &'static str,
        e: &kube::Error,
        failure: &mut Option<Failure>,
    ) {
        let message = apierr::message(e);
        let verb = if reason == "FailedCreate" {
            "creating"
        } else {
            "deleting"
        };
        self.event(
            set.meta(),
            WARNING,
            reason,
            &format!("Error {verb}: {message}"),
        )
        .await;
        failure.get_or_insert(Failure { reason, message });
    }

    pub(super) async fn sync(&self, key: &str) -> Result<Next, SyncError> {
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
    pub(super) async fn claim(
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
                    let r = owner::controller_ref_for(set);
                    let patch = owner::adopt_patch(&pod.metadata, &r);
                    let api = self.pod_api(&ns);
                    if let Some(p) = adopt::patch_refs(&api, &pod.name_any(), &patch, false).await?
                    {
                        owned.push(Arc::new(p));
                    }
                }
                Claim::Release => {
                    let uid = set.meta().uid.clone().unwrap_or_default();
                    let patch = owner::release_patch(&pod.metadata, &uid);
                    let api = self.pod_api(&ns);
                    adopt::patch_refs(&api, &pod.name_any(), &patch, true).await?;
                }
            }
        }
        Ok(owned)
    }

    /// kube's canAdopt: the set, read afresh, is the same object and not
    /// being deleted.
    pub(super) async fn recheck(&self, set: &K) -> Result<bool, SyncError> {
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
    pub(super) async fn manage(
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
    pub(super) fn related_pods(&self, set: &K, all: &[Arc<Pod>]) -> Vec<Arc<Pod>> {
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

    pub(super) fn pod_from_template(&self, set: &K, spec: &Spec) -> Pod {
        let tmeta = spec.template.metadata.clone().unwrap_or_default();
        Pod {
            metadata: ObjectMeta {
                generate_name: Some(format!("{}-", set.name_any())),
                namespace: set.namespace(),
                labels: tmeta.labels,
                annotations: tmeta.annotations,
                finalizers: tmeta.finalizers,
                owner_references: Some(vec![owner::controller_ref_for(set)]),
                ..Default::default()
            },
            spec: spec.template.spec.clone(),
            status: None,
        }
    }

    pub(super) async fn create(
        &self,
        key: &str,
        set: &K,
        spec: &Spec,
        count: usize,
    ) -> Option<Failure> {
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
                    Err(e) => self.failed(set, "FailedCreate", &e, &mut failure).await,
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

    pub(super) async fn delete(&self, key: &str, set: &K, victims: &[&Pod]) -> Option<Failure> {
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
                    self.failed(set, "FailedDelete", &e, &mut failure).await;
                }
            }
        }
        failure
    }

    /// Writes `status` (with observedGeneration) when it changed; on a
    /// conflict reads the set again and retries once, as kube does.
    pub(super) async fn write_status(
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
