//! Adoption and release through the API (kube's `ControllerRefManager`):
//! a controller takes over the orphans its selector matches, so objects
//! left by an owner deleted with `--cascade=orphan` return to its
//! successor, and lets go of those that stopped matching.

use k8s_openapi::api::core::v1::Pod;
use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use serde_json::Value;

use super::owner::{self, Claim};
use super::{api, pods};

/// Of `list` (pods the owner's selector matched), the pods `owner`
/// controls: those it had and the orphans it adopts now (a merge patch
/// guarded by the pod's resourceVersion; a pod that changed or vanished
/// meanwhile is left for the next sync). An owner being deleted adopts
/// nothing.
pub async fn adopt_pods<K: Resource<DynamicType = ()>>(
    api: &Api<Pod>,
    owner: &K,
    list: Vec<Pod>,
) -> Result<Vec<Pod>, kube::Error> {
    let deleting = owner.meta().deletion_timestamp.is_some();
    let controller = owner::controller_ref_for(owner);
    let mut out = Vec::new();
    for pod in list {
        match owner::claim(owner.meta(), deleting, true, &pod.metadata) {
            Claim::Owned => out.push(pod),
            Claim::Adopt => {
                let patch = owner::adopt_patch(&pod.metadata, &controller);
                if let Some(adopted) = patch_refs(api, pods::name(&pod), &patch, true).await? {
                    out.push(adopted);
                }
            }
            Claim::Release | Claim::Ignore => {}
        }
    }
    Ok(out)
}

/// Applies an adopt or release patch ([`owner::adopt_patch`],
/// [`owner::release_patch`]: merge patches guarded by the object's
/// resourceVersion) to `name`. `Ok(None)` when the object is gone, or
/// when it changed meanwhile and `skip_conflict` (the next sync sees it).
pub async fn patch_refs<K>(
    api: &Api<K>,
    name: &str,
    patch: &Value,
    skip_conflict: bool,
) -> Result<Option<K>, kube::Error>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        Ok(o) => Ok(Some(o)),
        Err(e) if api::is_not_found(&e) => Ok(None),
        Err(e) if skip_conflict && api::is_conflict(&e) => Ok(None),
        Err(e) => Err(e),
    }
}
