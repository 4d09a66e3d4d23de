//! ServiceAccount admission: a pod without a service account runs as
//! `default`, the account it names must exist, and its token is mounted
//! at `/var/run/secrets/kubernetes.io/serviceaccount` as a projected
//! `kube-api-access-*` volume (token, `kube-root-ca.crt`, namespace), as
//! kube's plugin does unless the pod or the account opts out.

use serde_json::{Value, json};

use crate::api::Api;
use crate::error::ApiError;
use crate::meta;

/// The annotation of a static pod's mirror (exempt).
const MIRROR: &str = "kubernetes.io/config.mirror";

fn is_mirror(pod: &Value) -> bool {
    meta::metadata(pod)
        .get("annotations")
        .and_then(|a| a.get(MIRROR))
        .is_some()
}

/// The account a pod runs as.
fn account(pod: &Value) -> &str {
    pod.pointer("/spec/serviceAccountName")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Sets `spec.serviceAccountName` (and the deprecated `serviceAccount`,
/// as kube's v1 shows it) when absent.
pub fn default_name(pod: &mut Value) {
    if is_mirror(pod) {
        return;
    }
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let name = match spec.get("serviceAccountName").and_then(Value::as_str) {
        Some(n) if !n.is_empty() => n.to_owned(),
        _ => match spec.get("serviceAccount").and_then(Value::as_str) {
            Some(n) if !n.is_empty() => n.to_owned(),
            _ => "default".to_owned(),
        },
    };
    spec.insert("serviceAccountName".to_owned(), json!(name));
    spec.insert("serviceAccount".to_owned(), json!(name));
}

/// Refuses a pod whose service account does not exist, with kube's text.
pub async fn check(api: &Api, namespace: &str, pod: &Value) -> Result<(), ApiError> {
    let name = account(pod);
    if name.is_empty() || is_mirror(pod) {
        return Ok(());
    }
    let key = format!(
        "{}/{name}",
        super::key_prefix(api, "", "serviceaccounts", namespace)
    );
    if api.objects.get_key(&key).await?.is_some() {
        return Ok(());
    }
    Err(ApiError::forbidden_on(
        "",
        "pods",
        meta::meta_str(pod, "name"),
        &format!(
            "error looking up service account {namespace}/{name}: serviceaccount \"{name}\" not found"
        ),
    ))
}

/// Where the token, CA and namespace appear in each container.
const TOKEN_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Adds the `kube-api-access-*` volume and its mounts (kube's
/// ServiceAccount plugin), unless `automountServiceAccountToken: false`
/// on the pod (or, when the pod does not say, on the account), or a
/// container already mounts something there.
pub async fn mount_token(api: &Api, namespace: &str, pod: &mut Value) -> Result<(), ApiError> {
    let name = account(pod).to_owned();
    if name.is_empty() || is_mirror(pod) {
        return Ok(());
    }
    let automount = match pod
        .pointer("/spec/automountServiceAccountToken")
        .and_then(Value::as_bool)
    {
        Some(v) => v,
        None => {
            let key = format!(
                "{}/{name}",
                super::key_prefix(api, "", "serviceaccounts", namespace)
            );
            let sa = api.objects.get_key(&key).await?;
            sa.and_then(|(sa, _)| {
                sa.get("automountServiceAccountToken")
                    .and_then(Value::as_bool)
            })
            .unwrap_or(true)
        }
    };
    if !automount {
        return Ok(());
    }
    let kinds = ["initContainers", "containers"];
    let mounted = kinds.iter().any(|k| {
        pod.pointer(&format!("/spec/{k}"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .flat_map(|c| {
                c.get("volumeMounts")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
            })
            .any(|m| m.get("mountPath").and_then(Value::as_str) == Some(TOKEN_DIR))
    });
    if mounted {
        return Ok(());
    }
    let suffix: String = uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        .take(5)
        .collect();
    let volume_name = format!("kube-api-access-{suffix}");
    let volume = json!({
        "name": volume_name,
        "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace",
                "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
        ]}
    });
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    match spec.get_mut("volumes").and_then(Value::as_array_mut) {
        Some(v) => v.push(volume),
        None => {
            spec.insert("volumes".into(), json!([volume]));
        }
    }
    for k in kinds {
        for c in spec
            .get_mut(k)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            let Some(c) = c.as_object_mut() else { continue };
            let mount = json!({"name": volume_name, "readOnly": true, "mountPath": TOKEN_DIR});
            match c.get_mut("volumeMounts").and_then(Value::as_array_mut) {
                Some(m) => m.push(mount),
                None => {
                    c.insert("volumeMounts".into(), json!([mount]));
                }
            }
        }
    }
    Ok(())
}
