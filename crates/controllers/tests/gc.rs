//! The garbage collector against the real API server: background,
//! foreground and orphan deletion.

mod support;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, DeleteParams, PostParams, PropagationPolicy};
use serde_json::json;
use support::eventually;

async fn owner(api: &Api<ConfigMap>, name: &str) -> String {
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": name}})).expect("cm");
    api.create(&PostParams::default(), &cm)
        .await
        .expect("owner")
        .metadata
        .uid
        .unwrap_or_default()
}

async fn dependent(api: &Api<Secret>, name: &str, owners: &[(&str, &str, bool)]) {
    let refs: Vec<serde_json::Value> = owners
        .iter()
        .map(|(n, uid, block)| json!({"apiVersion": "v1", "kind": "ConfigMap", "name": n, "uid": uid, "blockOwnerDeletion": block}))
        .collect();
    let s: Secret =
        serde_json::from_value(json!({"metadata": {"name": name, "ownerReferences": refs}}))
            .expect("secret");
    api.create(&PostParams::default(), &s)
        .await
        .expect("dependent");
}

async fn gone<K>(api: &Api<K>, name: &str)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    eventually(&format!("{name} gone"), || async {
        match api.get_opt(name).await {
            Ok(None) => Ok(()),
            Ok(Some(_)) => Err("still there".to_owned()),
            Err(e) => Err(e.to_string()),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_foreground_and_orphan() {
    let (plane, admin) = support::start_in("gc").await;
    berth_controllers::gc::spawn(&plane.controller_clients(), &Default::default());
    let cms: Api<ConfigMap> = Api::namespaced(admin.clone(), "gc");
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), "gc");

    // Background: the owner goes at once, its dependents after.
    let uid = owner(&cms, "bg").await;
    dependent(&secrets, "bg-child", &[("bg", &uid, true)]).await;
    cms.delete("bg", &DeleteParams::background())
        .await
        .expect("delete bg");
    gone(&secrets, "bg-child").await;

    // A reference to an owner of the same name but another uid dangles.
    owner(&cms, "same").await;
    dependent(&secrets, "stale", &[("same", "not-the-uid", false)]).await;
    gone(&secrets, "stale").await;

    // A dependent with another live owner only loses the dangling reference.
    let live = owner(&cms, "live").await;
    dependent(
        &secrets,
        "shared",
        &[("live", &live, false), ("ghost", "ghost-uid", false)],
    )
    .await;
    eventually("dangling reference dropped", || async {
        let s = secrets.get("shared").await.map_err(|e| e.to_string())?;
        let refs: Vec<String> = s
            .metadata
            .owner_references
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.name)
            .collect();
        if refs == vec!["live".to_owned()] {
            Ok(())
        } else {
            Err(format!("{refs:?}"))
        }
    })
    .await;

    // Foreground: dependents go first, then the owner.
    let uid = owner(&cms, "fg").await;
    dependent(&secrets, "fg-a", &[("fg", &uid, true)]).await;
    dependent(&secrets, "fg-b", &[("fg", &uid, false)]).await;
    cms.delete("fg", &DeleteParams::foreground())
        .await
        .expect("delete fg");
    gone(&cms, "fg").await;
    assert!(
        secrets.get_opt("fg-a").await.expect("get").is_none(),
        "blocking dependent outlived its owner"
    );
    gone(&secrets, "fg-b").await;

    // Orphan: the owner goes, the dependent stays without the reference.
    let uid = owner(&cms, "or").await;
    dependent(&secrets, "or-child", &[("or", &uid, true)]).await;
    let orphan = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Orphan),
        ..DeleteParams::default()
    };
    cms.delete("or", &orphan).await.expect("delete or");
    gone(&cms, "or").await;
    let child = secrets.get("or-child").await.expect("orphan kept");
    assert!(
        child
            .metadata
            .owner_references
            .unwrap_or_default()
            .is_empty()
    );
}
