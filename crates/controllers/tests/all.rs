//! Every controller at once (as `berth server` runs them): a Deployment's
//! pods come up, and deleting its namespace takes all of it away.

mod support;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;
use support::{active_pods, eventually, namespace, wait_active_pods};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawn_all_runs_a_deployment_and_deletes_its_namespace() {
    let (_plane, admin) = support::start_all().await;
    namespace(&admin, "whole").await;
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), "whole");
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "demo"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "demo"}},
            "template": {"metadata": {"labels": {"app": "demo"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
        },
    }))
    .expect("deployment");
    deployments
        .create(&PostParams::default(), &d)
        .await
        .expect("create");
    wait_active_pods(&admin, "whole", "app=demo", 2).await;

    // Deleting the Deployment (background) takes its ReplicaSet and pods.
    deployments
        .delete("demo", &DeleteParams::background())
        .await
        .expect("delete");
    let sets: Api<ReplicaSet> = Api::namespaced(admin.clone(), "whole");
    eventually("cascade", || async {
        let rs = sets
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?
            .items
            .len();
        let pods = active_pods(&admin, "whole", "app=demo").await.len();
        if rs == 0 && pods == 0 {
            Ok(())
        } else {
            Err(format!("{rs} sets, {pods} pods"))
        }
    })
    .await;

    // Foreground: the pods, then the ReplicaSet, then the Deployment.
    deployments
        .create(&PostParams::default(), &d)
        .await
        .expect("create again");
    wait_active_pods(&admin, "whole", "app=demo", 2).await;
    deployments
        .delete("demo", &DeleteParams::foreground())
        .await
        .expect("delete fg");
    eventually("foreground cascade", || async {
        let gone = deployments
            .get_opt("demo")
            .await
            .map_err(|e| e.to_string())?
            .is_none();
        let rs = sets
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?
            .items
            .len();
        let pods = active_pods(&admin, "whole", "app=demo").await.len();
        if gone {
            assert_eq!(
                (rs, pods),
                (0, 0),
                "the Deployment went before its dependents"
            );
            Ok(())
        } else {
            Err(format!("{rs} sets, {pods} pods"))
        }
    })
    .await;

    // A namespace with a running Deployment goes, content and all.
    deployments
        .create(&PostParams::default(), &d)
        .await
        .expect("create again");
    wait_active_pods(&admin, "whole", "app=demo", 2).await;
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    namespaces
        .delete("whole", &DeleteParams::default())
        .await
        .expect("delete ns");
    eventually("namespace gone", || async {
        match namespaces.get_opt("whole").await {
            Ok(None) => Ok(()),
            Ok(Some(ns)) => Err(format!("{:?}", ns.status)),
            Err(e) => Err(e.to_string()),
        }
    })
    .await;
}
