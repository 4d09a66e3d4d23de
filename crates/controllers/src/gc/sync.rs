//! One pass of the collector over one object (by uid).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{
    Api, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions, PropagationPolicy,
};
use serde_json::{Value, json};

use super::Gc;
use super::graph::{Decision, FOREGROUND, Node, ORPHAN, OwnerState, decide, may_finish_foreground};
use crate::util::api as apierr;
use crate::util::workers::Next;

/// Errors of one pass.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// An API call failed.
    #[error("{0}")]
    Api(#[from] kube::Error),
    /// An owner reference names a kind the API does not serve (yet).
    #[error("cannot find the resource of owner {0}")]
    UnknownOwnerKind(String),
}

fn group_of(api_version: &str) -> &str {
    api_version.split_once('/').map(|(g, _)| g).unwrap_or("")
}

impl Gc {
    fn api_for(&self, node: &Node) -> Api<DynamicObject> {
        match &node.namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &node.resource),
            None => Api::all_with(self.client.clone(), &node.resource),
        }
    }

    pub(crate) async fn sync(&self, uid: &str) -> Result<Next, SyncError> {
        let Some(node) = self.graph().get(uid).cloned() else {
            return Ok(Next::Done);
        };
        if node.orphaning() {
            self.orphan_dependents(&node).await?;
        } else if node.deleting_dependents() {
            self.delete_dependents(&node).await?;
        } else if !node.deleting && !node.owners.is_empty() && !self.owners_all_solid(&node) {
            self.attempt_to_delete(&node).await?;
        }
        Ok(Next::Done)
    }

    /// Whether every owner is in the graph and not deleting its dependents:
    /// nothing to do, no need to ask the API.
    fn owners_all_solid(&self, node: &Node) -> bool {
        let graph = self.graph();
        node.owners
            .iter()
            .all(|r| graph.get(&r.uid).is_some_and(|o| !o.deleting_dependents()))
    }

    /// Drops the owner reference from every dependent, then the `orphan`
    /// finalizer from the owner.
    async fn orphan_dependents(&self, owner: &Node) -> Result<(), SyncError> {
        let deps: Vec<Node> = self
            .graph()
            .dependents_of(&owner.uid)
            .into_iter()
            .cloned()
            .collect();
        for d in deps {
            self.drop_refs(&d, std::slice::from_ref(&owner.uid)).await?;
        }
        self.remove_finalizer(owner, ORPHAN).await
    }

    /// Queues the dependents for deletion; drops `foregroundDeletion` once
    /// none blocks the owner any more.
    async fn delete_dependents(&self, owner: &Node) -> Result<(), SyncError> {
        let (deps, done) = {
            let graph = self.graph();
            let deps = graph.dependents_of(&owner.uid);
            let done = may_finish_foreground(&owner.uid, &deps);
            let pending: Vec<String> = deps
                .iter()
                .filter(|d| !d.deleting)
                .map(|d| d.uid.clone())
                .collect();
            (pending, done)
        };
        for d in deps {
            self.queue.add(d);
        }
        if done {
            self.remove_finalizer(owner, FOREGROUND).await?;
        }
        Ok(())
    }

    /// kube's attemptToDeleteItem for an object with owners: decides on
    /// the object as the API has it now (the cache may lag).
    async fn attempt_to_delete(&self, cached: &Node) -> Result<(), SyncError> {
        let Some(latest) = self.api_for(cached).get_opt(&cached.name).await? else {
            return Ok(());
        };
        if latest.metadata.uid.as_deref() != Some(cached.uid.as_str()) {
            return Ok(());
        }
        let Some(node) = super::node_of(&cached.resource, &latest.metadata) else {
            return Ok(());
        };
        if node.deleting || node.owners.is_empty() {
            return Ok(());
        }
        let node = &node;
        let mut states = Vec::with_capacity(node.owners.len());
        for r in &node.owners {
            states.push((r.uid.clone(), self.owner_state(node, r).await?));
        }
        let has_dependents = !self.graph().dependents_of(&node.uid).is_empty();
        match decide(&states, has_dependents, &node.finalizers) {
            Decision::Keep => Ok(()),
            Decision::DropRefs(uids) => self.drop_refs(node, &uids).await,
            Decision::Delete(policy) => {
                let policy = match policy {
                    "Orphan" => PropagationPolicy::Orphan,
                    "Foreground" => PropagationPolicy::Foreground,
                    _ => PropagationPolicy::Background,
                };
                let params = DeleteParams {
                    propagation_policy: Some(policy),
                    preconditions: Some(Preconditions {
                        uid: Some(node.uid.clone()),
                        resource_version: node.resource_version.clone(),
                    }),
                    ..DeleteParams::default()
                };
                match self.api_for(node).delete(&node.name, &params).await {
                    Ok(_) => Ok(()),
                    // Gone. (A conflict — it changed since read — retries.)
                    Err(e) if apierr::is_not_found(&e) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
        }
    }

    /// An owner's state: from the graph, else read from the API (404 or
    /// another uid: dangling).
    async fn owner_state(&self, node: &Node, r: &OwnerReference) -> Result<OwnerState, SyncError> {
        if let Some(owner) = self.graph().get(&r.uid) {
            return Ok(if owner.deleting_dependents() {
                OwnerState::Waiting
            } else {
                OwnerState::Solid
            });
        }
        let served = self
            .kinds()
            .get(&(group_of(&r.api_version).to_owned(), r.kind.clone()))
            .cloned()
            .ok_or_else(|| SyncError::UnknownOwnerKind(format!("{} {}", r.api_version, r.kind)))?;
        let api: Api<DynamicObject> = match (&node.namespace, served.namespaced) {
            (Some(ns), true) => Api::namespaced_with(self.client.clone(), ns, &served.resource),
            // A cluster-scoped object cannot have a namespaced owner.
            (None, true) => return Ok(OwnerState::Dangling),
            (_, false) => Api::all_with(self.client.clone(), &served.resource),
        };
        match api.get_opt(&r.name).await? {
            None => Ok(OwnerState::Dangling),
            Some(o) if o.metadata.uid.as_deref() != Some(r.uid.as_str()) => {
                Ok(OwnerState::Dangling)
            }
            Some(o) => {
                let deleting = o.metadata.deletion_timestamp.is_some()
                    && o.metadata
                        .finalizers
                        .iter()
                        .flatten()
                        .any(|f| f == FOREGROUND);
                Ok(if deleting {
                    OwnerState::Waiting
                } else {
                    OwnerState::Solid
                })
            }
        }
    }

    /// Removes the references to `uids` from a dependent (guarded by its
    /// resourceVersion; a conflict retries).
    async fn drop_refs(&self, node: &Node, uids: &[String]) -> Result<(), SyncError> {
        let kept: Vec<&OwnerReference> = node
            .owners
            .iter()
            .filter(|r| !uids.contains(&r.uid))
            .collect();
        let refs = if kept.is_empty() {
            Value::Null
        } else {
            json!(kept)
        };
        let patch = json!({"metadata": {"ownerReferences": refs, "resourceVersion": node.resource_version}});
        self.merge_patch(node, &patch).await
    }

    /// Merge-patches an object; one already gone is fine.
    async fn merge_patch(&self, node: &Node, patch: &Value) -> Result<(), SyncError> {
        match self
            .api_for(node)
            .patch(&node.name, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if apierr::is_not_found(&e) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes one finalizer from an object (guarded by resourceVersion).
    async fn remove_finalizer(&self, node: &Node, finalizer: &str) -> Result<(), SyncError> {
        let left: Vec<&String> = node.finalizers.iter().filter(|f| *f != finalizer).collect();
        let value = if left.is_empty() {
            Value::Null
        } else {
            json!(left)
        };
        let patch =
            json!({"metadata": {"finalizers": value, "resourceVersion": node.resource_version}});
        self.merge_patch(node, &patch).await
    }
}
