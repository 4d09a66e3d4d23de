//! The disruption controller against the API server in process: budget
//! status from pods and their controllers' scale, and the eviction API
//! refusing then allowing.

mod support;

use std::time::Duration;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, EvictParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::{create, eventually};

async fn ready_pod(pods: &Api<Pod>, name: &str, app: &str, owner: Option<Value>) {
    let mut pod = json!({"metadata": {"name": name, "labels": {"app": app}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
    if let Some(owner) = owner {
        pod["metadata"]["ownerReferences"] = json!([owner]);
    }
    create(pods, pod).await;
    let status = json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("pod status");
}

fn numbers(pdb: &PodDisruptionBudget) -> Option<(i32, i32, i32, i32)> {
    let s = pdb.status.as_ref()?;
    Some((
        s.expected_pods,
        s.current_healthy,
        s.desired_healthy,
        s.disruptions_allowed,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budget_status_and_eviction() {
    let plane = support::Plane::start().await;
    let admin = plane.admin();
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "default");
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(admin.clone(), "default");
    for name in ["a", "b", "c"] {
        ready_pod(&pods, name, "web", None).await;
    }
    create(
        &pdbs,
        json!({"metadata": {"name": "web"},
            "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}}),
    )
    .await;
    berth_controllers::disruption::spawn_with_resync(
        &plane.controller_clients(),
        Duration::from_millis(200),
    );

    eventually("web status", || async {
        numbers(&pdbs.get("web").await.unwrap()) == Some((3, 3, 2, 1))
    })
    .await;
    let web = pdbs.get("web").await.unwrap();
    let status = web.status.unwrap();
    assert_eq!(status.observed_generation, web.metadata.generation);
    let condition = &status.conditions.unwrap()[0];
    assert_eq!(
        (
            condition.type_.as_str(),
            condition.status.as_str(),
            condition.reason.as_str()
        ),
        ("DisruptionAllowed", "True", "SufficientPods")
    );

    // One may go; the next is refused with 429.
    pods.evict("a", &EvictParams::default())
        .await
        .expect("first eviction");
    let refused = pods
        .evict("b", &EvictParams::default())
        .await
        .expect_err("second eviction");
    match refused {
        kube::Error::Api(e) => {
            assert_eq!(e.code, 429);
            assert_eq!(
                e.message,
                "Cannot evict pod as it would violate the pod's disruption budget."
            );
        }
        other => panic!("unexpected {other}"),
    }
    eventually("web after the eviction", || async {
        let pdb = pdbs.get("web").await.unwrap();
        numbers(&pdb) == Some((2, 2, 2, 0))
            && pdb.status.as_ref().unwrap().conditions.as_ref().unwrap()[0].reason
                == "InsufficientPods"
    })
    .await;

    // A new ready pod makes room again.
    ready_pod(&pods, "d", "web", None).await;
    eventually("room again", || async {
        numbers(&pdbs.get("web").await.unwrap()) == Some((3, 3, 2, 1))
    })
    .await;
    pods.evict("b", &EvictParams::default())
        .await
        .expect("eviction with room");

    // maxUnavailable in percent, from the ReplicaSet's replicas (4) though
    // only two of its pods exist.
    let rss: Api<ReplicaSet> = Api::namespaced(admin.clone(), "default");
    let rs = rss
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "rs"}, "spec": {"replicas": 4,
                "selector": {"matchLabels": {"app": "rs"}},
                "template": {"metadata": {"labels": {"app": "rs"}},
                    "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}))
            .unwrap(),
        )
        .await
        .expect("replicaset");
    let owner = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
        "uid": rs.metadata.uid.clone().unwrap(), "controller": true});
    for name in ["r1", "r2"] {
        ready_pod(&pods, name, "rs", Some(owner.clone())).await;
    }
    create(
        &pdbs,
        json!({"metadata": {"name": "rs"},
            "spec": {"maxUnavailable": "25%", "selector": {"matchLabels": {"app": "rs"}}}}),
    )
    .await;
    // 25% of 4 = 1 unavailable: desired 3, healthy 2, none allowed.
    eventually("rs status", || async {
        numbers(&pdbs.get("rs").await.unwrap()) == Some((4, 2, 3, 0))
    })
    .await;
}
