//! Helpers for the workload controllers' integration tests: polling and
//! playing the kubelet.

#![allow(dead_code)]

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::{Value, json};

/// Polls `check` every 50 ms until it returns `Some`, up to `secs`.
pub async fn until<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The pods matching a label selector.
pub async fn pods(client: &kube::Client, ns: &str, selector: &str) -> Vec<Pod> {
    Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(selector))
        .await
        .map(|l| l.items)
        .unwrap_or_default()
}

/// Sets a pod's status through `pods/status`, as the kubelet would.
pub async fn set_pod_status(client: &kube::Client, ns: &str, name: &str, status: Value) {
    Api::<Pod>::namespaced(client.clone(), ns)
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await
        .expect("patch pod status");
}

/// A running, ready pod's status.
pub fn running_ready() -> Value {
    json!({
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}],
        "containerStatuses": [{"name": "main", "image": "busybox", "imageID": "", "ready": true,
                               "restartCount": 0, "state": {"running": {}}}]
    })
}

/// A terminated pod's status with the container's exit code.
pub fn terminated(exit: i32) -> Value {
    let now = jiff::Timestamp::now().to_string();
    json!({
        "phase": if exit == 0 { "Succeeded" } else { "Failed" },
        "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": now}],
        "containerStatuses": [{"name": "main", "image": "busybox", "imageID": "", "ready": false,
                               "restartCount": 0,
                               "state": {"terminated": {"exitCode": exit, "finishedAt": now}}}]
    })
}

/// The reasons of the events about an object.
pub async fn event_reasons(client: &kube::Client, ns: &str, name: &str) -> Vec<String> {
    let api: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), ns);
    api.list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .filter_map(|e| e.reason)
        .collect()
}
