//! Adoption through the API (kube's `ControllerRefManager.ClaimPods`
//! without release): a controller takes over the orphan pods its
//! selector matches, so pods left by an owner deleted with
//! `--cascade=orphan` return to its successor.

use k8s_openapi::api::core::v1::Pod;
use kube::Resource;
use kube::api::{Api, Patch, PatchParams};

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
                match api
                    .patch(
                        pods::name(&pod),
                        &PatchParams::default(),
                        &Patch::Merge(patch),
                    )
                    .await
                {
                    Ok(adopted) => out.push(adopted),
                    Err(e) if api::is_not_found(&e) || api::is_conflict(&e) => {}
                    Err(e) => return Err(e),
                }
            }
            Claim::Release | Claim::Ignore => {}
        }
    }
    Ok(out)
}
