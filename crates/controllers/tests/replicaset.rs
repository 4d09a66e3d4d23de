//! The ReplicaSet and ReplicationController controllers against the real
//! API server.

mod support;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use support::{active_pods, create, eventually, make_all_ready};

fn rs(name: &str, replicas: i32) -> ReplicaSet {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}, "annotations": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    }))
    .expect("replicaset")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicaset_creates_pods_and_replaces_a_deleted_one() {
    let (plane, admin) = support::start_in("rs1").await;
    berth_controllers::replicaset::spawn_replicasets(
        &plane.controller_clients(),
        &Default::default(),
    );
    let sets: Api<ReplicaSet> = Api::namespaced(admin.clone(), "rs1");
    let created = sets
        .create(&PostParams::default(), &rs("web", 3))
        .await
        .expect("create rs");
    let uid = created.metadata.uid.clone().unwrap_or_default();

    let pods = eventually("3 pods", || async {
        let pods = active_pods(&admin, "rs1", "app=web").await;
        if pods.len() == 3 {
            Ok(pods)
        } else {
            Err(format!("{} pods", pods.len()))
        }
    })
    .await;
    for p in &pods {
        let name = p.metadata.name.clone().unwrap_or_default();
        assert!(name.starts_with("web-"), "{name}");
        let r = &p.metadata.owner_references.clone().unwrap_or_default()[0];
        assert_eq!(
            (r.kind.as_str(), r.uid.as_str()),
            ("ReplicaSet", uid.as_str())
        );
        assert_eq!(
            (r.controller, r.block_owner_deletion),
            (Some(true), Some(true))
        );
        assert_eq!(
            p.metadata
                .annotations
                .clone()
                .unwrap_or_default()
                .get("a")
                .map(String::as_str),
            Some("b")
        );
    }

    // Ready pods show in status.
    make_all_ready(&admin, &pods).await;
    eventually("status", || async {
        let s = sets
            .get("web")
            .await
            .map_err(|e| e.to_string())?
            .status
            .unwrap_or_default();
        if s.replicas == 3
            && s.ready_replicas == Some(3)
            && s.available_replicas == Some(3)
            && s.fully_labeled_replicas == Some(3)
            && s.observed_generation == Some(1)
        {
            Ok(())
        } else {
            Err(format!("{s:?}"))
        }
    })
    .await;

    // A deleted pod is replaced.
    let pod_api: Api<Pod> = Api::namespaced(admin.clone(), "rs1");
    let gone = pods[0].metadata.name.clone().unwrap_or_default();
    pod_api
        .delete(&gone, &DeleteParams::default())
        .await
        .expect("delete pod");
    eventually("a replacement", || async {
        let pods = active_pods(&admin, "rs1", "app=web").await;
        let names: Vec<String> = pods
            .iter()
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        if pods.len() == 3 && !names.contains(&gone) {
            Ok(())
        } else {
            Err(format!("{names:?}"))
        }
    })
    .await;

    // Scale down to 1: the not-ready replacement goes first.
    let fresh = active_pods(&admin, "rs1", "app=web").await;
    let unready: Vec<String> = fresh
        .iter()
        .filter(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_none()
        })
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    assert_eq!(unready.len(), 1);
    sets.patch(
        "web",
        &Default::default(),
        &kube::api::Patch::Merge(json!({"spec": {"replicas": 2}})),
    )
    .await
    .expect("scale");
    eventually("scale down", || async {
        let pods = active_pods(&admin, "rs1", "app=web").await;
        let names: Vec<String> = pods
            .iter()
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        if pods.len() == 2 && !names.contains(&unready[0]) {
            Ok(())
        } else {
            Err(format!("{names:?}"))
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicaset_adopts_orphans_and_releases_non_matching() {
    let (plane, admin) = support::start_in("rs2").await;
    let pod_api: Api<Pod> = Api::namespaced(admin.clone(), "rs2");
    let orphan: Pod = serde_json::from_value(json!({
        "metadata": {"name": "orphan", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }))
    .expect("pod");
    pod_api
        .create(&PostParams::default(), &orphan)
        .await
        .expect("orphan");
    berth_controllers::replicaset::spawn_replicasets(
        &plane.controller_clients(),
        &Default::default(),
    );
    let sets: Api<ReplicaSet> = Api::namespaced(admin.clone(), "rs2");
    sets.create(&PostParams::default(), &rs("web", 2))
        .await
        .expect("create rs");
    eventually("adoption + 1 new pod", || async {
        let pods = active_pods(&admin, "rs2", "app=web").await;
        let adopted = pods.iter().any(|p| {
            p.metadata.name.as_deref() == Some("orphan")
                && p.metadata
                    .owner_references
                    .as_ref()
                    .is_some_and(|r| r.iter().any(|r| r.name == "web"))
        });
        if pods.len() == 2 && adopted {
            Ok(())
        } else {
            Err(format!("{} pods, adopted {adopted}", pods.len()))
        }
    })
    .await;
    // Relabel: released (no owner), and replaced.
    pod_api
        .patch(
            "orphan",
            &Default::default(),
            &kube::api::Patch::Merge(json!({"metadata": {"labels": {"app": "other"}}})),
        )
        .await
        .expect("relabel");
    eventually("release + replacement", || async {
        let p = pod_api.get("orphan").await.map_err(|e| e.to_string())?;
        let released = p
            .metadata
            .owner_references
            .as_ref()
            .is_none_or(Vec::is_empty);
        let n = active_pods(&admin, "rs2", "app=web").await.len();
        if released && n == 2 {
            Ok(())
        } else {
            Err(format!("released {released}, {n} pods"))
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_controller_keeps_replicas() {
    let (plane, admin) = support::start_in("rc1").await;
    berth_controllers::replicaset::spawn_replication_controllers(
        &plane.controller_clients(),
        &Default::default(),
    );
    let rcs: Api<ReplicationController> = Api::namespaced(admin.clone(), "rc1");
    create(
        &rcs,
        json!({
            "metadata": {"name": "old"},
            "spec": {
                "replicas": 2,
                "selector": {"app": "old"},
                "template": {
                    "metadata": {"labels": {"app": "old"}},
                    "spec": {"containers": [{"name": "c", "image": "busybox"}]},
                },
            },
        }),
    )
    .await;
    eventually("2 pods and status", || async {
        let n = active_pods(&admin, "rc1", "app=old").await.len();
        let s = rcs
            .get("old")
            .await
            .map_err(|e| e.to_string())?
            .status
            .unwrap_or_default();
        if n == 2 && s.replicas == 2 && s.observed_generation == Some(1) {
            Ok(())
        } else {
            Err(format!("{n} pods, {s:?}"))
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_refusals_show_as_replica_failure_and_clear() {
    let (plane, admin) = support::start_in("rs3").await;
    let quotas: Api<k8s_openapi::api::core::v1::ResourceQuota> =
        Api::namespaced(admin.clone(), "rs3");
    let quota =
        serde_json::from_value(json!({"metadata": {"name": "q"}, "spec": {"hard": {"pods": "2"}}}))
            .expect("quota");
    quotas
        .create(&PostParams::default(), &quota)
        .await
        .expect("quota");
    berth_controllers::replicaset::spawn_replicasets(
        &plane.controller_clients(),
        &Default::default(),
    );
    let sets: Api<ReplicaSet> = Api::namespaced(admin.clone(), "rs3");
    sets.create(&PostParams::default(), &rs("web", 3))
        .await
        .expect("create rs");
    eventually("ReplicaFailure", || async {
        let s = sets
            .get("web")
            .await
            .map_err(|e| e.to_string())?
            .status
            .unwrap_or_default();
        let c = s.conditions.clone().unwrap_or_default();
        let failed = c.iter().any(|c| {
            c.type_ == "ReplicaFailure"
                && c.status == "True"
                && c.reason.as_deref() == Some("FailedCreate")
                && c.message
                    .as_deref()
                    .is_some_and(|m| m.contains("exceeded quota"))
        });
        if failed && s.replicas == 2 {
            Ok(())
        } else {
            Err(format!("{s:?}"))
        }
    })
    .await;
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(admin.clone(), "rs3");
    let list = events.list(&Default::default()).await.expect("events");
    let reasons: Vec<String> = list.items.iter().filter_map(|e| e.reason.clone()).collect();
    assert!(reasons.iter().any(|r| r == "FailedCreate"), "{reasons:?}");
    assert_eq!(
        reasons.iter().filter(|r| *r == "SuccessfulCreate").count(),
        2,
        "{reasons:?}"
    );
    sets.patch(
        "web",
        &Default::default(),
        &kube::api::Patch::Merge(json!({"spec": {"replicas": 2}})),
    )
    .await
    .expect("scale");
    eventually("condition cleared", || async {
        let s = sets
            .get("web")
            .await
            .map_err(|e| e.to_string())?
            .status
            .unwrap_or_default();
        if s.conditions.is_none() && s.observed_generation == Some(2) {
            Ok(())
        } else {
            Err(format!("{s:?}"))
        }
    })
    .await;
}
