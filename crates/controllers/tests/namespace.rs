//! The namespace controller against the real API server: a Terminating
//! namespace is emptied (CRD objects too), then finalized and removed.

mod support;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::json;
use support::{create, eventually, namespace};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_namespace_empties_then_removes_it() {
    support::logs();
    let plane = support::Plane::start().await;
    let admin = plane.admin();
    berth_controllers::namespace::spawn(&plane.controller_clients(), &Default::default());
    berth_controllers::gc::spawn(&plane.controller_clients(), &Default::default());

    let crds: Api<CustomResourceDefinition> = Api::all(admin.clone());
    create(&crds, json!({
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}],
        },
    }))
    .await;
    let widget = ApiResource {
        group: "example.com".to_owned(),
        version: "v1".to_owned(),
        api_version: "example.com/v1".to_owned(),
        kind: "Widget".to_owned(),
        plural: "widgets".to_owned(),
    };

    namespace(&admin, "doomed").await;
    let cms: Api<ConfigMap> = Api::namespaced(admin.clone(), "doomed");
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), "doomed");
    create(&cms, json!({"metadata": {"name": "c"}})).await;
    create(
        &secrets,
        json!({"metadata": {"name": "s"}, "stringData": {"k": "v"}}),
    )
    .await;
    let widgets: Api<DynamicObject> = Api::namespaced_with(admin.clone(), "doomed", &widget);
    let w: DynamicObject = serde_json::from_value(
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}),
    )
    .expect("widget");
    eventually("widget created", || async {
        widgets
            .create(&PostParams::default(), &w)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await;

    let namespaces: Api<Namespace> = Api::all(admin.clone());
    namespaces
        .delete("doomed", &DeleteParams::default())
        .await
        .expect("delete ns");
    eventually("namespace gone", || async {
        match namespaces.get_opt("doomed").await {
            Ok(None) => Ok(()),
            Ok(Some(ns)) => Err(format!("{:?}", ns.status)),
            Err(e) => Err(e.to_string()),
        }
    })
    .await;
    assert!(cms.get_opt("c").await.expect("get").is_none());
    assert!(secrets.get_opt("s").await.expect("get").is_none());
    assert!(widgets.get_opt("w").await.expect("get").is_none());

    // Content held by a finalizer holds the namespace, and says so.
    namespace(&admin, "held").await;
    let held: Api<ConfigMap> = Api::namespaced(admin.clone(), "held");
    create(
        &held,
        json!({"metadata": {"name": "pin", "finalizers": ["example.com/pin"]}}),
    )
    .await;
    namespaces
        .delete("held", &DeleteParams::default())
        .await
        .expect("delete held");
    eventually("finalizers reported", || async {
        let ns = namespaces.get("held").await.map_err(|e| e.to_string())?;
        let status = ns.status.unwrap_or_default();
        let c = status.conditions.unwrap_or_default();
        let f = c.iter().find(|c| c.type_ == "NamespaceFinalizersRemaining");
        let ok = status.phase.as_deref() == Some("Terminating")
            && f.is_some_and(|f| {
                f.status == "True" && f.reason.as_deref() == Some("SomeFinalizersRemain")
            })
            && c.iter().any(|c| {
                c.type_ == "NamespaceContentRemaining"
                    && c.message.as_deref()
                        == Some("Some resources are remaining: configmaps has 1 resource instances")
            });
        if ok { Ok(()) } else { Err(format!("{c:?}")) }
    })
    .await;
    held.patch(
        "pin",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("unpin");
    eventually("held namespace gone", || async {
        match namespaces.get_opt("held").await {
            Ok(None) => Ok(()),
            Ok(Some(_)) => Err("still there".to_owned()),
            Err(e) => Err(e.to_string()),
        }
    })
    .await;
    // Deleted in the foreground: the garbage collector's finalizer and the
    // namespace controller's both go, in either order.
    namespace(&admin, "fg").await;
    let fg: Api<ConfigMap> = Api::namespaced(admin.clone(), "fg");
    create(&fg, json!({"metadata": {"name": "c"}})).await;
    namespaces
        .delete("fg", &DeleteParams::foreground())
        .await
        .expect("delete fg");
    eventually("foreground namespace gone", || async {
        match namespaces.get_opt("fg").await {
            Ok(None) => Ok(()),
            Ok(Some(ns)) => Err(format!("{:?} {:?}", ns.metadata.finalizers, ns.spec)),
            Err(e) => Err(e.to_string()),
        }
    })
    .await;
}
