//! The first reads of a DaemonSet's or StatefulSet's sync: the owner as
//! the API has it now, the pods it controls (orphans its selector matches
//! adopted) and its ControllerRevisions.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, ListParams};

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
