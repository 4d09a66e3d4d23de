//! ServiceAccount admission: a pod without a service account runs as
//! `default`, and the account it names must exist. (Each namespace's
//! `default` account is made when the namespace is; token volumes are
//! not injected.)

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
