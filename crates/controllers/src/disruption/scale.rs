//! The scale of the controllers of a budget's pods: each pod's controller
//! (a ReplicaSet owned by a Deployment counts as the Deployment), found
//! once, its `spec.replicas` summed, as kube's disruption controller's
//! finders do. Other kinds are read through their `scale` subresource.

use std::collections::BTreeSet;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use kube::api::{Api, DynamicObject};
use kube::discovery::pinned_kind;

async fn get<K>(api: Api<K>, name: &str) -> Result<Option<K>, String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.get_opt(name).await.map_err(|e| e.to_string())
}

/// A controller reference: (apiVersion, kind, name, uid).
type Owner = (String, String, String, String);

fn controller_of(pod: &Pod) -> Option<Owner> {
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .map(|o| {
            (
                o.api_version.clone(),
                o.kind.clone(),
                o.name.clone(),
                o.uid.clone(),
            )
        })
}

/// The summed scale of the pods' controllers, and the names of pods
/// without a controller.
pub async fn expected_scale(
    client: &kube::Client,
    ns: &str,
    pods: &[&Pod],
) -> Result<(i32, Vec<String>), String> {
    let mut seen = BTreeSet::new();
    let mut total = 0i32;
    let mut unmanaged = Vec::new();
    for pod in pods {
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        let Some(owner) = controller_of(pod) else {
            unmanaged.push(pod_name);
            continue;
        };
        let Some((uid, replicas)) = scale_of(client, ns, &owner).await? else {
            return Err(format!("found no controllers for pod \"{pod_name}\""));
        };
        if seen.insert(uid) {
            total = total.saturating_add(replicas);
        }
    }
    Ok((total, unmanaged))
}

/// (uid, replicas) of the controller `owner`, following a ReplicaSet to
/// its Deployment; None when it does not exist (or the uid differs).
async fn scale_of(
    client: &kube::Client,
    ns: &str,
    owner: &Owner,
) -> Result<Option<(String, i32)>, String> {
    let (api_version, kind, name, uid) = owner;
    let group = api_version.split_once('/').map_or("", |(g, _)| g);
    let same = |found: Option<&String>| found == Some(uid);
    match (group, kind.as_str()) {
        ("apps" | "extensions", "ReplicaSet") => {
            let Some(rs) = get(Api::<ReplicaSet>::namespaced(client.clone(), ns), name).await?
            else {
                return Ok(None);
            };
            if !same(rs.metadata.uid.as_ref()) {
                return Ok(None);
            }
            let deployment = rs
                .metadata
                .owner_references
                .iter()
                .flatten()
                .find(|o| o.controller == Some(true) && o.kind == "Deployment");
            if let Some(d) = deployment {
                let found = get(Api::<Deployment>::namespaced(client.clone(), ns), &d.name).await?;
                if let Some(dep) = found.filter(|dep| dep.metadata.uid.as_ref() == Some(&d.uid)) {
                    let replicas = dep.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                    return Ok(Some((d.uid.clone(), replicas)));
                }
                return Ok(None);
            }
            Ok(Some((
                uid.clone(),
                rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
            )))
        }
        ("apps" | "extensions", "Deployment") => {
            let found = get(Api::<Deployment>::namespaced(client.clone(), ns), name).await?;
            Ok(found.filter(|d| same(d.metadata.uid.as_ref())).map(|d| {
                (
                    uid.clone(),
                    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                )
            }))
        }
        ("apps", "StatefulSet") => {
            let found = get(Api::<StatefulSet>::namespaced(client.clone(), ns), name).await?;
            Ok(found.filter(|d| same(d.metadata.uid.as_ref())).map(|d| {
                (
                    uid.clone(),
                    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                )
            }))
        }
        ("", "ReplicationController") => {
            let found = get(
                Api::<ReplicationController>::namespaced(client.clone(), ns),
                name,
            )
            .await?;
            Ok(found.filter(|d| same(d.metadata.uid.as_ref())).map(|d| {
                (
                    uid.clone(),
                    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                )
            }))
        }
        _ => {
            // Any other controller with a scale subresource.
            let gvk = kube::api::GroupVersionKind::try_from(&kube::core::TypeMeta {
                api_version: api_version.clone(),
                kind: kind.clone(),
            })
            .map_err(|e| e.to_string())?;
            let Ok((resource, _)) = pinned_kind(client, &gvk).await else {
                return Ok(None);
            };
            let api = Api::<DynamicObject>::namespaced_with(client.clone(), ns, &resource);
            match api.get_scale(name).await {
                Ok(scale) => Ok(Some((
                    uid.clone(),
                    scale.spec.and_then(|s| s.replicas).unwrap_or(0),
                ))),
                Err(kube::Error::Api(e)) if e.code == 404 => Ok(None),
                Err(e) => Err(e.to_string()),
            }
        }
    }
}
