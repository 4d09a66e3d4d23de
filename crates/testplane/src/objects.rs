//! Setting up and reading objects as tests do: create from JSON,
//! namespaces, pods by label, events about an object.

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, ListParams, PostParams};
use serde_json::{Value, json};

/// Creates the object `value` (JSON of `K`) through `api` and returns it
/// as stored. Panics naming the type when it does not parse or the API
/// refuses it (a test setup failure).
pub async fn create<K>(api: &Api<K>, value: Value) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let kind = std::any::type_name::<K>();
    let obj: K = serde_json::from_value(value).unwrap_or_else(|e| panic!("{kind} JSON: {e}"));
    api.create(&PostParams::default(), &obj)
        .await
        .unwrap_or_else(|e| panic!("create {kind}: {e}"))
}

/// Creates a namespace.
pub async fn namespace(client: &kube::Client, name: &str) {
    create(
        &Api::<Namespace>::all(client.clone()),
        json!({"metadata": {"name": name}}),
    )
    .await;
}

/// The pods of `ns` matching `selector` (`k=v,…`); none when the list
/// fails (a poll looks again).
pub async fn pods(client: &kube::Client, ns: &str, selector: &str) -> Vec<Pod> {
    Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(selector))
        .await
        .map(|l| l.items)
        .unwrap_or_default()
}

/// [`pods`] that are active: neither being deleted nor finished.
pub async fn active_pods(client: &kube::Client, ns: &str, selector: &str) -> Vec<Pod> {
    pods(client, ns, selector)
        .await
        .into_iter()
        .filter(|p| {
            let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
            p.metadata.deletion_timestamp.is_none()
                && !matches!(phase, Some("Succeeded" | "Failed"))
        })
        .collect()
}

/// Waits (up to [`DEFAULT_SECS`](crate::wait::DEFAULT_SECS)) until
/// exactly `n` [`active_pods`] match, and returns them.
pub async fn wait_active_pods(
    client: &kube::Client,
    ns: &str,
    selector: &str,
    n: usize,
) -> Vec<Pod> {
    let what = format!("{n} active pods {selector} in {ns}");
    crate::wait::eventually(&what, || async {
        let pods = active_pods(client, ns, selector).await;
        if pods.len() == n {
            Ok(pods)
        } else {
            Err(format!("{} pods", pods.len()))
        }
    })
    .await
}

/// The reasons of the events.k8s.io Events about the object `name` in
/// `ns`.
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
