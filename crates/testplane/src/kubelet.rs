//! Playing the kubelet (there is no node agent in these tests): pod
//! statuses written as admin through `pods/status`, as the agent would.

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

/// Sets a pod's status (merge patch of `status`) through `pods/status`.
/// Panics when the API refuses it.
pub async fn set_pod_status(client: &kube::Client, ns: &str, name: &str, status: Value) {
    Api::<Pod>::namespaced(client.clone(), ns)
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await
        .unwrap_or_else(|e| panic!("status of pod {ns}/{name}: {e}"));
}

/// [`set_pod_status`] of each of `pods` (in its own namespace).
pub async fn set_all_status(client: &kube::Client, pods: &[Pod], status: Value) {
    for p in pods {
        let ns = p.metadata.namespace.as_deref().unwrap_or("default");
        let name = p.metadata.name.as_deref().unwrap_or_default();
        set_pod_status(client, ns, name, status.clone()).await;
    }
}

/// [`make_ready`] each of `pods` (in its own namespace).
pub async fn make_all_ready(client: &kube::Client, pods: &[Pod]) {
    set_all_status(client, pods, ready_now()).await;
}

/// Marks a pod Running and Ready from now on (Ready and ContainersReady
/// conditions with this moment as their transition time).
pub async fn make_ready(client: &kube::Client, ns: &str, name: &str) {
    set_pod_status(client, ns, name, ready_now()).await;
}

/// A Running pod's status whose Ready and ContainersReady conditions turn
/// True now (so minReadySeconds count from now).
pub fn ready_now() -> Value {
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    json!({
        "phase": "Running",
        "conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": now},
            {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
        ],
    })
}

/// A Running pod's status, Ready since long ago (so available whatever
/// its minReadySeconds), with its container `main` running.
pub fn running_ready() -> Value {
    json!({
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}],
        "containerStatuses": [{"name": "main", "image": "busybox", "imageID": "", "ready": true,
                               "restartCount": 0, "state": {"running": {}}}]
    })
}

/// A finished pod's status: its container `main` exited with `exit`
/// (phase Succeeded for 0, else Failed).
pub fn terminated(exit: i32) -> Value {
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    json!({
        "phase": if exit == 0 { "Succeeded" } else { "Failed" },
        "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": now}],
        "containerStatuses": [{"name": "main", "image": "busybox", "imageID": "", "ready": false,
                               "restartCount": 0,
                               "state": {"terminated": {"exitCode": exit, "finishedAt": now}}}]
    })
}
