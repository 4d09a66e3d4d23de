//! Adoption (kube's `ControllerRefManager`): a controller takes over the
//! orphan pods its selector matches, so pods left by an owner deleted
//! with `--cascade=orphan` return to its successor.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::{owner, pods, runner};

/// Makes `controller` the controller of each orphan in `list` (a merge
/// patch guarded by the pod's resourceVersion) and returns the pods now
/// controlled by it: those it had and those adopted.
pub async fn adopt_pods(
    api: &Api<Pod>,
    controller: &OwnerReference,
    owner_deleting: bool,
    list: Vec<Pod>,
) -> Result<Vec<Pod>, kube::Error> {
    let mut out = Vec::new();
    for pod in list {
        if owner::controlled_by(&pod.metadata, &controller.uid) {
            out.push(pod);
            continue;
        }
        let orphan = owner::controller_of(&pod.metadata).is_none() && !pods::is_deleting(&pod);
        if owner_deleting || !orphan {
            continue;
        }
        let mut refs = pod.metadata.owner_references.clone().unwrap_or_default();
        refs.push(controller.clone());
        let patch = json!({"metadata": {
            "ownerReferences": refs,
            "resourceVersion": pod.metadata.resource_version,
        }});
        match api
            .patch(
                pods::name(&pod),
                &PatchParams::default(),
                &Patch::Merge(patch),
            )
            .await
        {
            Ok(adopted) => out.push(adopted),
            Err(e) if runner::is_not_found(&e) || runner::is_conflict(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}
