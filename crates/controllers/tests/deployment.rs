//! The Deployment controller (with the ReplicaSet controller) against the
//! real API server; the test plays the kubelet.

mod support;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use support::{active_pods, eventually, make_all_ready, make_ready, wait_active_pods};

const NS: &str = "dep";

fn deployment(image: &str) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": "web", "annotations": {"kubernetes.io/change-cause": format!("image {image}")}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": image}]},
            },
        },
    }))
    .expect("deployment")
}

fn image(p: &k8s_openapi::api::core::v1::Pod) -> String {
    p.spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default()
}

fn is_ready(p: &k8s_openapi::api::core::v1::Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn annotation(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    key: &str,
) -> Option<String> {
    meta.annotations.as_ref().and_then(|a| a.get(key).cloned())
}

/// Plays the kubelet through a rollout to `image`: makes one pod of the
/// new template Ready at a time, checking on every look that at least 3
/// pods are available and at most 4 exist.
async fn roll_to(admin: &kube::Client, deployments: &Api<Deployment>, want: &str) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "rollout to {want} did not finish"
        );
        let pods = active_pods(admin, NS, "app=web").await;
        let ready = pods.iter().filter(|p| is_ready(p)).count();
        assert!(ready >= 3, "only {ready} available pods during the rollout");
        assert!(
            pods.len() <= 4,
            "{} pods: more than replicas + maxSurge",
            pods.len()
        );
        let d = deployments.get("web").await.expect("get deployment");
        let s = d.status.clone().unwrap_or_default();
        let done = d.metadata.generation == s.observed_generation
            && s.updated_replicas == Some(3)
            && s.replicas == Some(3)
            && s.available_replicas == Some(3)
            && pods.len() == 3
            && pods.iter().all(|p| image(p) == want);
        if done {
            return;
        }
        if let Some(p) = pods.iter().find(|p| image(p) == want && !is_ready(p)) {
            make_ready(admin, NS, p.metadata.name.as_deref().unwrap_or_default()).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    }
}

async fn sets_by_revision(admin: &kube::Client) -> BTreeMap<String, ReplicaSet> {
    let api: Api<ReplicaSet> = Api::namespaced(admin.clone(), NS);
    let list = api.list(&ListParams::default()).await.expect("list rs");
    list.items
        .into_iter()
        .map(|rs| {
            (
                annotation(&rs.metadata, "deployment.kubernetes.io/revision").unwrap_or_default(),
                rs,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_update_follows_readiness_and_rollback_reuses_the_old_replicaset() {
    let (plane, admin) = support::start_in(NS).await;
    let clients = plane.controller_clients();
    berth_controllers::replicaset::spawn_replicasets(&clients, &Default::default());
    berth_controllers::deployment::spawn(&clients, &Default::default());
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), NS);
    deployments
        .create(&PostParams::default(), &deployment("v1"))
        .await
        .expect("create");

    // First rollout: 3 pods of revision 1.
    wait_active_pods(&admin, NS, "app=web", 3).await;
    make_all_ready(&admin, &active_pods(&admin, NS, "app=web").await).await;
    let d = eventually("complete", || async {
        let d = deployments.get("web").await.map_err(|e| e.to_string())?;
        let s = d.status.clone().unwrap_or_default();
        let conds: Vec<(String, String, String)> = s
            .conditions
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|c| (c.type_, c.status, c.reason.unwrap_or_default()))
            .collect();
        let want = vec![
            (
                "Available".to_owned(),
                "True".to_owned(),
                "MinimumReplicasAvailable".to_owned(),
            ),
            (
                "Progressing".to_owned(),
                "True".to_owned(),
                "NewReplicaSetAvailable".to_owned(),
            ),
        ];
        let mut sorted = conds.clone();
        sorted.sort();
        if s.available_replicas == Some(3) && s.updated_replicas == Some(3) && sorted == want {
            Ok(d)
        } else {
            Err(format!("{s:?}"))
        }
    })
    .await;
    assert_eq!(
        annotation(&d.metadata, "deployment.kubernetes.io/revision").as_deref(),
        Some("1")
    );
    let sets = sets_by_revision(&admin).await;
    let first = sets.get("1").expect("revision 1").clone();
    let hash = first
        .metadata
        .labels
        .clone()
        .unwrap_or_default()
        .get("pod-template-hash")
        .cloned()
        .expect("hash label");
    assert_eq!(
        first.metadata.name.as_deref(),
        Some(format!("web-{hash}").as_str())
    );
    assert_eq!(
        first
            .spec
            .as_ref()
            .and_then(|s| s.selector.match_labels.clone())
            .unwrap_or_default()
            .get("pod-template-hash"),
        Some(&hash)
    );
    assert_eq!(
        annotation(&first.metadata, "deployment.kubernetes.io/desired-replicas").as_deref(),
        Some("3")
    );
    assert_eq!(
        annotation(&first.metadata, "deployment.kubernetes.io/max-replicas").as_deref(),
        Some("4")
    );
    assert_eq!(
        annotation(&first.metadata, "kubernetes.io/change-cause").as_deref(),
        Some("image v1")
    );

    // Update: v2 rolls out only as its pods become Ready.
    let patch = json!({"metadata": {"annotations": {"kubernetes.io/change-cause": "image v2"}},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "v2"}]}}}});
    deployments
        .patch("web", &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .expect("update");
    roll_to(&admin, &deployments, "v2").await;
    let sets = sets_by_revision(&admin).await;
    assert_eq!(sets.len(), 2, "{:?}", sets.keys());
    assert_eq!(
        sets.get("1")
            .and_then(|r| r.spec.as_ref())
            .and_then(|s| s.replicas),
        Some(0)
    );

    // Rollback by applying the old template: the revision-1 set comes back as revision 3.
    let patch =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "v1"}]}}}});
    deployments
        .patch("web", &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .expect("rollback");
    roll_to(&admin, &deployments, "v1").await;
    let sets = sets_by_revision(&admin).await;
    assert_eq!(sets.len(), 2, "{:?}", sets.keys());
    let reused = sets.get("3").expect("revision 3");
    assert_eq!(reused.metadata.uid, first.metadata.uid);
    assert_eq!(
        annotation(
            &reused.metadata,
            "deployment.kubernetes.io/revision-history"
        )
        .as_deref(),
        Some("1")
    );
    let d = eventually("revision 3 on the deployment", || async {
        let d = deployments.get("web").await.map_err(|e| e.to_string())?;
        match annotation(&d.metadata, "deployment.kubernetes.io/revision").as_deref() {
            Some("3") => Ok(d),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(
        d.metadata.generation,
        d.status.and_then(|s| s.observed_generation)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_scales_old_to_zero_first_and_pause_reports() {
    let (plane, admin) = support::start_in(NS).await;
    let clients = plane.controller_clients();
    berth_controllers::replicaset::spawn_replicasets(&clients, &Default::default());
    berth_controllers::deployment::spawn(&clients, &Default::default());
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), NS);
    let mut d = deployment("v1");
    if let Some(s) = d.spec.as_mut() {
        s.strategy = serde_json::from_value(json!({"type": "Recreate"})).ok();
    }
    deployments
        .create(&PostParams::default(), &d)
        .await
        .expect("create");
    wait_active_pods(&admin, NS, "app=web", 3).await;
    let patch =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "v2"}]}}}});
    deployments
        .patch("web", &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .expect("update");
    eventually("3 v2 pods and no v1", || async {
        let pods = active_pods(&admin, NS, "app=web").await;
        let images: Vec<String> = pods.iter().map(image).collect();
        if images.len() == 3 && images.iter().all(|i| i == "v2") {
            Ok(())
        } else {
            Err(format!("{images:?}"))
        }
    })
    .await;
    deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"paused": true}})),
        )
        .await
        .expect("pause");
    eventually("DeploymentPaused", || async {
        let d = deployments.get("web").await.map_err(|e| e.to_string())?;
        let c = d.status.and_then(|s| s.conditions).unwrap_or_default();
        let p = c
            .iter()
            .find(|c| c.type_ == "Progressing")
            .map(|c| (c.status.clone(), c.reason.clone()));
        if p == Some(("Unknown".to_owned(), Some("DeploymentPaused".to_owned()))) {
            Ok(())
        } else {
            Err(format!("{p:?}"))
        }
    })
    .await;
}

async fn set_image(deployments: &Api<Deployment>, image: &str) {
    let patch =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}});
    deployments
        .patch("web", &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .expect("update");
}

async fn wait_revision(deployments: &Api<Deployment>, want: &str) {
    eventually(&format!("revision {want}"), || async {
        let d = deployments.get("web").await.map_err(|e| e.to_string())?;
        let rev = annotation(&d.metadata, "deployment.kubernetes.io/revision");
        let observed =
            d.status.as_ref().and_then(|s| s.observed_generation) == d.metadata.generation;
        if rev.as_deref() == Some(want) && observed {
            Ok(())
        } else {
            Err(format!("{rev:?}"))
        }
    })
    .await;
}

/// kubectl 1.33's `rollout undo`, client side: the previous revision's
/// template (without its hash label) and annotations.
async fn kubectl_undo(admin: &kube::Client, deployments: &Api<Deployment>) {
    let sets = sets_by_revision(admin).await;
    let mut revisions: Vec<i64> = sets.keys().filter_map(|k| k.parse().ok()).collect();
    revisions.sort();
    let previous = revisions
        .iter()
        .rev()
        .nth(1)
        .expect("a previous revision")
        .to_string();
    let rs = sets.get(&previous).expect("previous set");
    let mut template = rs
        .spec
        .as_ref()
        .and_then(|s| s.template.clone())
        .expect("template");
    if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove("pod-template-hash");
    }
    let skip = [
        "kubectl.kubernetes.io/last-applied-configuration",
        "deployment.kubernetes.io/revision",
        "deployment.kubernetes.io/revision-history",
        "deployment.kubernetes.io/desired-replicas",
        "deployment.kubernetes.io/max-replicas",
        "deprecated.deployment.rollback.to",
    ];
    let d = deployments.get("web").await.expect("get");
    let mut annotations: BTreeMap<String, String> = d
        .metadata
        .annotations
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| skip.contains(&k.as_str()))
        .collect();
    for (k, v) in rs.metadata.annotations.clone().unwrap_or_default() {
        if !skip.contains(&k.as_str()) {
            annotations.insert(k, v);
        }
    }
    // kubectl sends these two replacements as a JSON patch; a PUT of
    // the same object is the same change.
    let mut undone = d;
    if let Some(spec) = undone.spec.as_mut() {
        spec.template = template;
    }
    undone.metadata.annotations = Some(annotations);
    deployments
        .replace("web", &PostParams::default(), &undone)
        .await
        .expect("undo");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revision_history_limit_and_kubectl_undo() {
    let (plane, admin) = support::start_in(NS).await;
    let clients = plane.controller_clients();
    berth_controllers::replicaset::spawn_replicasets(&clients, &Default::default());
    berth_controllers::deployment::spawn(&clients, &Default::default());
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), NS);
    let mut d = deployment("v1");
    if let Some(s) = d.spec.as_mut() {
        s.replicas = Some(0);
        s.revision_history_limit = Some(1);
    }
    deployments
        .create(&PostParams::default(), &d)
        .await
        .expect("create");
    wait_revision(&deployments, "1").await;
    set_image(&deployments, "v2").await;
    wait_revision(&deployments, "2").await;
    set_image(&deployments, "v3").await;
    wait_revision(&deployments, "3").await;
    eventually("only one old set kept", || async {
        let sets = sets_by_revision(&admin).await;
        let revs: Vec<String> = sets.keys().cloned().collect();
        if revs == vec!["2".to_owned(), "3".to_owned()] {
            Ok(())
        } else {
            Err(format!("{revs:?}"))
        }
    })
    .await;
    // Undo as kubectl does: back to v2, as revision 4, reusing its set.
    let v2 = sets_by_revision(&admin)
        .await
        .get("2")
        .and_then(|r| r.metadata.uid.clone());
    kubectl_undo(&admin, &deployments).await;
    wait_revision(&deployments, "4").await;
    let sets = sets_by_revision(&admin).await;
    assert_eq!(sets.get("4").and_then(|r| r.metadata.uid.clone()), v2);
    let d = deployments.get("web").await.expect("get");
    let img = d
        .spec
        .and_then(|s| s.template.spec)
        .and_then(|s| s.containers.first().and_then(|c| c.image.clone()));
    assert_eq!(img.as_deref(), Some("v2"));
}
