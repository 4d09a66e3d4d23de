//! The first reads of a DaemonSet's or StatefulSet's sync (the owner as
//! the API has it now, the pods it controls, orphans its selector matches
//! adopted, and its ControllerRevisions) and its last writes (status,
//! when to look again).

use std::sync::Arc;

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::controller::Action;

use super::controller::{self, Ctx};
use super::{adopt, history, selector};

/// A workload read for one sync.
pub struct Workload<K> {
    /// The owner, fresh from the API.
    pub owner: Arc<K>,
    /// Pods in the owner's namespace.
    pub pods_api: Api<Pod>,
    /// ControllerRevisions in the owner's namespace.
    pub revs_api: Api<ControllerRevision>,
    /// The pods the owner controls (adopted orphans included).
    pub pods: Vec<Pod>,
    /// The owner's revisions.
    pub revisions: Vec<ControllerRevision>,
}

/// Reads `obj` afresh and what it owns; `None` when it is gone or being
/// deleted (its dependents are the garbage collector's then).
/// `selector_of` gives the owner's pod selector.
pub async fn load<K>(
    ctx: &Ctx,
    obj: &K,
    selector_of: impl Fn(&K) -> LabelSelector,
) -> Result<Option<Workload<K>>, kube::Error>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let Some(owner) = controller::fresh(&ctx.client, obj).await? else {
        return Ok(None);
    };
    let meta = owner.meta();
    if meta.deletion_timestamp.is_some() {
        return Ok(None);
    }
    let ns = meta.namespace.as_deref().unwrap_or_default();
    let uid = meta.uid.as_deref().unwrap_or_default();
    let lp = ListParams::default().labels(&selector::to_query(&selector_of(&owner)));
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let revs_api: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), ns);
    let pods = adopt::adopt_pods(&pods_api, &*owner, pods_api.list(&lp).await?.items).await?;
    let revisions = history::owned(&revs_api, &lp, uid).await?;
    Ok(Some(Workload {
        owner,
        pods_api,
        revs_api,
        pods,
        revisions,
    }))
}

/// Writes `updated`'s status (the owner with its new status) through
/// the status subresource.
pub async fn replace_status<K>(ctx: &Ctx, updated: &K) -> Result<(), kube::Error>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let meta = updated.meta();
    let api: Api<K> = Api::namespaced(
        ctx.client.clone(),
        meta.namespace.as_deref().unwrap_or_default(),
    );
    api.replace_status(
        meta.name.as_deref().unwrap_or_default(),
        &PostParams::default(),
        updated,
    )
    .await?;
    Ok(())
}

/// What a sync asks for last: with a `minReadySeconds`, a look again
/// once it elapsed (pods become available without any change to watch);
/// else the next change.
pub fn after_min_ready(min_ready_seconds: Option<i32>) -> Action {
    match min_ready_seconds.unwrap_or(0) {
        n if n > 0 => Action::requeue(std::time::Duration::from_secs(
            u64::try_from(n).unwrap_or(1),
        )),
        _ => Action::await_change(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_again_after_min_ready_seconds() {
        let cases = [
            (None, Action::await_change()),
            (Some(0), Action::await_change()),
            (Some(-1), Action::await_change()),
            (Some(5), Action::requeue(std::time::Duration::from_secs(5))),
        ];
        for (min, want) in cases {
            assert_eq!(after_min_ready(min), want, "{min:?}");
        }
    }
}
