//! One sync of a Deployment: kube's `syncDeployment` and the rollout
//! procedures it calls, acting through the API.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};

use super::hash::{POD_TEMPLATE_HASH, compute_hash, equal_ignore_hash};
use super::revision::{
    self, REVISION, max_revision, replicas_annotations_need_update, set_new_rs_annotations,
    set_replicas_annotations,
};
use super::rolling::{self, max_surge, replicas, spec_replicas};
use super::status::{self, FAILED_RS_CREATE, FOUND_NEW_RS, NEW_RS_CREATED, PROGRESSING};
use crate::util::events::{NORMAL, Recorder, WARNING};
use crate::util::owner::{self, Claim};
use crate::util::workers::Next;
use crate::util::{adopt, api as apierr, selector, split_key};

/// Errors of one sync.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// An API call failed.
    #[error("{0}")]
    Api(#[from] kube::Error),
    /// Something kube would also refuse (e.g. adopting for a replaced
    /// Deployment).
    #[error("{0}")]
    Refused(String),
}

pub(super) struct Ctl {
    pub client: kube::Client,
    pub deployments: Store<Deployment>,
    pub sets: Store<ReplicaSet>,
    pub pods: Store<Pod>,
    pub recorder: Recorder,
}

/// The ReplicaSets of a Deployment: which is new (its template's), the
/// rest old.
pub(super) fn split(d: &Deployment, sets: &[ReplicaSet]) -> (Option<usize>, Vec<usize>) {
    let template = d
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let mut order: Vec<usize> = (0..sets.len()).collect();
    order.sort_by(|a, b| rolling::by_creation(&sets[*a], &sets[*b]));
    let new = order.iter().copied().find(|i| {
        sets[*i]
            .spec
            .as_ref()
            .and_then(|s| s.template.as_ref())
            .is_some_and(|t| equal_ignore_hash(t, &template))
    });
    let old = (0..sets.len()).filter(|i| Some(*i) != new).collect();
    (new, old)
}

pub(super) fn refs<'a>(sets: &'a [ReplicaSet], idx: &[usize]) -> Vec<&'a ReplicaSet> {
    idx.iter().map(|i| &sets[*i]).collect()
}

impl Ctl {
    pub(super) fn d_api(&self, ns: &str) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), ns)
    }

    pub(super) fn rs_api(&self, ns: &str) -> Api<ReplicaSet> {
        Api::namespaced(self.client.clone(), ns)
    }

    pub(super) async fn event(&self, d: &Deployment, type_: &str, reason: &str, message: &str) {
        self.recorder
            .record("apps/v1", "Deployment", &d.metadata, type_, reason, message)
            .await;
    }

    pub(super) async fn sync(&self, key: &str) -> Result<Next, SyncError> {
        let (ns, name) = split_key(key);
        let Some(d) = self.deployments.get(&ObjectRef::new(name).within(ns)) else {
            return Ok(Next::Done);
        };
        let mut d = d.as_ref().clone();
        let sel = d
            .spec
            .as_ref()
            .map(|s| s.selector.clone())
            .unwrap_or_default();
        if selector::is_empty(&sel) {
            self.event(
                &d,
                WARNING,
                "SelectingAll",
                "This deployment is selecting all pods. A non-empty selector is required.",
            )
            .await;
            let status = d.status.clone().unwrap_or_default();
            if status.observed_generation < d.metadata.generation {
                let mut s = status;
                s.observed_generation = d.metadata.generation;
                d.status = Some(s);
                self.update_status(&mut d).await?;
            }
            return Ok(Next::Done);
        }
        let mut sets = self.claim(&d).await?;
        if d.metadata.deletion_timestamp.is_some() {
            self.sync_status(&mut d, &sets).await?;
            return Ok(Next::Done);
        }
        let now = Timestamp::now();
        if let Some(c) = status::paused_condition(&d, now) {
            let mut s = d.status.clone().unwrap_or_default();
            status::set_condition(&mut s, c);
            d.status = Some(s);
            self.update_status(&mut d).await?;
        }
        let paused = d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
        if paused || self.is_scaling_event(&mut d, &mut sets).await? {
            self.sync_scale(&mut d, &mut sets, paused).await?;
            return Ok(Next::Done);
        }
        if rolling::is_rolling(&d) {
            self.rollout_rolling(&mut d, &mut sets).await
        } else {
            self.rollout_recreate(&mut d, &mut sets).await
        }
    }

    /// kube's getReplicaSetsForDeployment: the namespace's ReplicaSets the
    /// Deployment owns after adopting and releasing.
    pub(super) async fn claim(&self, d: &Deployment) -> Result<Vec<ReplicaSet>, SyncError> {
        let ns = d.namespace().unwrap_or_default();
        let sel = d
            .spec
            .as_ref()
            .map(|s| s.selector.clone())
            .unwrap_or_default();
        let deleting = d.metadata.deletion_timestamp.is_some();
        let empty = BTreeMap::new();
        let mut owned = Vec::new();
        let mut checked = false;
        for rs in self
            .sets
            .state()
            .into_iter()
            .filter(|r| r.namespace().as_deref() == Some(ns.as_str()))
        {
            let matches = selector::matches(&sel, rs.metadata.labels.as_ref().unwrap_or(&empty));
            match owner::claim(&d.metadata, deleting, matches, &rs.metadata) {
                Claim::Owned => owned.push(rs.as_ref().clone()),
                Claim::Ignore => {}
                Claim::Adopt => {
                    if !checked {
                        let fresh = self.d_api(&ns).get(&d.name_any()).await?;
                        if fresh.metadata.uid != d.metadata.uid
                            || fresh.metadata.deletion_timestamp.is_some()
                        {
                            return Err(SyncError::Refused(format!(
                                "deployment {ns}/{} was replaced or is being deleted; not adopting",
                                d.name_any()
                            )));
                        }
                        checked = true;
                    }
                    let r = owner::controller_ref_for(d);
                    let patch = owner::adopt_patch(&rs.metadata, &r);
                    let api = self.rs_api(&ns);
                    if let Some(adopted) =
                        adopt::patch_refs(&api, &rs.name_any(), &patch, false).await?
                    {
                        owned.push(adopted);
                    }
                }
                Claim::Release => {
                    let patch = owner::release_patch(
                        &rs.metadata,
                        d.metadata.uid.as_deref().unwrap_or_default(),
                    );
                    let api = self.rs_api(&ns);
                    adopt::patch_refs(&api, &rs.name_any(), &patch, false).await?;
                }
            }
        }
        Ok(owned)
    }

    /// Writes the Deployment's status (and annotations) and keeps the
    /// answer.
    pub(super) async fn update_status(&self, d: &mut Deployment) -> Result<(), SyncError> {
        let ns = d.namespace().unwrap_or_default();
        let updated = self
            .d_api(&ns)
            .replace_status(&d.name_any(), &PostParams::default(), d)
            .await?;
        *d = updated;
        Ok(())
    }

    /// kube's isScalingEvent: an active ReplicaSet's desired-replicas
    /// annotation differs from the Deployment's replicas.
    pub(super) async fn is_scaling_event(
        &self,
        d: &mut Deployment,
        sets: &mut Vec<ReplicaSet>,
    ) -> Result<bool, SyncError> {
        let (new, old) = self.sync_revision(d, sets, false).await?;
        let want = replicas(d).to_string();
        let all: Vec<usize> = old.into_iter().chain(new).collect();
        Ok(all
            .iter()
            .map(|i| &sets[*i])
            .filter(|r| spec_replicas(r) > 0)
            .any(|r| {
                r.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(revision::DESIRED_REPLICAS))
                    .is_some_and(|v| *v != want)
            }))
    }

    /// kube's getAllReplicaSetsAndSyncRevision: the new ReplicaSet (made
    /// when `create`), its revision synced, and the old ones.
    pub(super) async fn sync_revision(
        &self,
        d: &mut Deployment,
        sets: &mut Vec<ReplicaSet>,
        create: bool,
    ) -> Result<(Option<usize>, Vec<usize>), SyncError> {
        let (new, old) = split(d, sets);
        let max_old = max_revision(refs(sets, &old));
        let new_revision = max_old + 1;
        let ns = d.namespace().unwrap_or_default();
        let d_annotations = d.metadata.annotations.clone().unwrap_or_default();
        let min_ready = d.spec.as_ref().and_then(|s| s.min_ready_seconds);
        if let Some(i) = new {
            let mut copy = sets[i].clone();
            let mut annotations = copy.metadata.annotations.clone().unwrap_or_default();
            let changed = set_new_rs_annotations(
                &d_annotations,
                &mut annotations,
                new_revision,
                true,
                (0, 0),
            );
            let min_ready_changed = copy
                .spec
                .as_ref()
                .and_then(|s| s.min_ready_seconds)
                .unwrap_or(0)
                != min_ready.unwrap_or(0);
            if changed || min_ready_changed {
                copy.metadata.annotations = Some(annotations);
                if let Some(s) = copy.spec.as_mut() {
                    s.min_ready_seconds = min_ready;
                }
                sets[i] = self
                    .rs_api(&ns)
                    .replace(&copy.name_any(), &PostParams::default(), &copy)
                    .await?;
                return Ok((Some(i), old));
            }
            let rev = sets[i]
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(REVISION))
                .cloned()
                .unwrap_or_default();
            let mut needs_update = set_deployment_revision(d, &rev);
            let has_progressing = d
                .status
                .as_ref()
                .is_some_and(|s| status::get_condition(s, PROGRESSING).is_some());
            if status::has_progress_deadline(d) && !has_progressing {
                let msg = format!("Found new replica set {:?}", sets[i].name_any());
                set_progressing(d, FOUND_NEW_RS, msg);
                needs_update = true;
            }
            if needs_update {
                self.update_status(d).await?;
            }
            return Ok((Some(i), old));
        }
        if !create {
            return Ok((None, old));
        }
        self.create_new(d, sets, &old, new_revision)
            .await
            .map(|n| (n, old))
    }

    /// Creates the new ReplicaSet (kube's getNewReplicaSet, create path).
    pub(super) async fn create_new(
        &self,
        d: &mut Deployment,
        sets: &mut Vec<ReplicaSet>,
        old: &[usize],
        new_revision: i64,
    ) -> Result<Option<usize>, SyncError> {
        let ns = d.namespace().unwrap_or_default();
        let spec = d.spec.clone().unwrap_or_default();
        let collision = d.status.as_ref().and_then(|s| s.collision_count);
        let hash = compute_hash(&spec.template, collision);
        let mut template = spec.template.clone();
        let tmeta = template.metadata.get_or_insert_with(Default::default);
        tmeta
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(POD_TEMPLATE_HASH.to_owned(), hash.clone());
        let labels = tmeta.labels.clone();
        let mut selector = spec.selector.clone();
        selector
            .match_labels
            .get_or_insert_with(BTreeMap::new)
            .insert(POD_TEMPLATE_HASH.to_owned(), hash.clone());
        let name = format!("{}-{hash}", d.name_any());
        let mut rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(ns.clone()),
                labels,
                owner_references: Some(vec![owner::controller_ref_for(d)]),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: spec.min_ready_seconds,
                selector,
                template: Some(template),
            }),
            status: None,
        };
        let mut all: Vec<&ReplicaSet> = refs(sets, old);
        all.push(&rs);
        let count = rolling::new_rs_new_replicas(d, &all, &rs);
        if let Some(s) = rs.spec.as_mut() {
            s.replicas = Some(count);
        }
        let mut annotations = BTreeMap::new();
        let surge = max_surge(d);
        set_new_rs_annotations(
            &d.metadata.annotations.clone().unwrap_or_default(),
            &mut annotations,
            new_revision,
            false,
            (replicas(d), replicas(d) + surge),
        );
        rs.metadata.annotations = Some(annotations);
        let mut already = false;
        let created = match self.rs_api(&ns).create(&PostParams::default(), &rs).await {
            Ok(c) => c,
            Err(e) if apierr::is_conflict(&e) => {
                // An RS of that name exists: ours with this template is
                // the new one; anything else is a hash collision.
                let existing = self.rs_api(&ns).get(&name).await?;
                let ours = owner::controller_of(&existing.metadata)
                    .is_some_and(|r| Some(&r.uid) == d.metadata.uid.as_ref());
                let same = existing
                    .spec
                    .as_ref()
                    .and_then(|s| s.template.as_ref())
                    .is_some_and(|t| equal_ignore_hash(t, &spec.template));
                if ours && same {
                    already = true;
                    existing
                } else {
                    let mut s = d.status.clone().unwrap_or_default();
                    s.collision_count = Some(s.collision_count.unwrap_or(0) + 1);
                    d.status = Some(s);
                    self.update_status(d).await?;
                    return Err(e.into());
                }
            }
            Err(e) => {
                let msg = format!(
                    "Failed to create new replica set {name:?}: {}",
                    apierr::message(&e)
                );
                if status::has_progress_deadline(d) {
                    let mut s = d.status.clone().unwrap_or_default();
                    status::set_condition(
                        &mut s,
                        status::condition(
                            PROGRESSING,
                            "False",
                            FAILED_RS_CREATE,
                            msg.clone(),
                            Timestamp::now(),
                        ),
                    );
                    d.status = Some(s);
                    let _ = self.update_status(d).await;
                }
                self.event(d, WARNING, FAILED_RS_CREATE, &msg).await;
                return Err(e.into());
            }
        };
        if !already && count > 0 {
            let msg = format!(
                "Scaled up replica set {} from 0 to {count}",
                created.name_any()
            );
            self.event(d, NORMAL, "ScalingReplicaSet", &msg).await;
        }
        let rev = new_revision.to_string();
        let mut needs_update = set_deployment_revision(d, &rev);
        if !already && status::has_progress_deadline(d) {
            let msg = format!("Created new replica set {:?}", created.name_any());
            set_progressing(d, NEW_RS_CREATED, msg);
            needs_update = true;
        }
        if needs_update {
            self.update_status(d).await?;
        }
        sets.push(created);
        Ok(Some(sets.len() - 1))
    }

    /// kube's scaleReplicaSetAndRecordEvent/scaleReplicaSet: sets the size
    /// and the desired/max annotations; whether the size changed.
    pub(super) async fn scale(
        &self,
        d: &Deployment,
        rs: &mut ReplicaSet,
        size: i32,
        op: Option<&str>,
    ) -> Result<bool, SyncError> {
        let old = spec_replicas(rs);
        let (desired, max) = (replicas(d), replicas(d) + max_surge(d));
        let size_changes = old != size;
        if !size_changes && op.is_none() {
            return Ok(false);
        }
        if !size_changes
            && !replicas_annotations_need_update(rs.metadata.annotations.as_ref(), desired, max)
        {
            return Ok(false);
        }
        let mut copy = rs.clone();
        if let Some(s) = copy.spec.as_mut() {
            s.replicas = Some(size);
        }
        set_replicas_annotations(
            copy.metadata.annotations.get_or_insert_with(BTreeMap::new),
            desired,
            max,
        );
        let ns = rs.namespace().unwrap_or_default();
        *rs = self
            .rs_api(&ns)
            .replace(&copy.name_any(), &PostParams::default(), &copy)
            .await?;
        if size_changes {
            let op = op.unwrap_or(if old < size { "up" } else { "down" });
            let msg = format!(
                "Scaled {op} replica set {} from {old} to {size}",
                rs.name_any()
            );
            self.event(d, NORMAL, "ScalingReplicaSet", &msg).await;
        }
        Ok(size_changes)
    }
}

/// Sets the Deployment's Progressing condition True with `reason`.
fn set_progressing(d: &mut Deployment, reason: &str, msg: String) {
    let mut s = d.status.clone().unwrap_or_default();
    status::set_condition(
        &mut s,
        status::condition(PROGRESSING, "True", reason, msg, Timestamp::now()),
    );
    d.status = Some(s);
}

/// Sets the Deployment's revision annotation; whether it changed.
fn set_deployment_revision(d: &mut Deployment, rev: &str) -> bool {
    let a = d.metadata.annotations.get_or_insert_with(BTreeMap::new);
    if a.get(REVISION).map(String::as_str) == Some(rev) {
        return false;
    }
    a.insert(REVISION.to_owned(), rev.to_owned());
    true
}
