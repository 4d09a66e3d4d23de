//! The volume controllers against the API server in process: the
//! default class, a claim provisioned and bound once its pod is on a
//! node, the directory made and removed with the claim, and a static
//! volume bound and released.

mod support;

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use support::{create, eventually};

fn claim(name: &str, class: Option<&str>) -> PersistentVolumeClaim {
    let mut c = json!({"metadata": {"name": name}, "spec": {"accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "1Gi"}}}});
    if let Some(class) = class {
        c["spec"]["storageClassName"] = json!(class);
    }
    serde_json::from_value(c).unwrap()
}

fn phase(claim: &PersistentVolumeClaim) -> &str {
    claim
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn annotation<'a>(meta: &'a kube::api::ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claim_is_provisioned_bound_and_reclaimed_with_its_directory() {
    let plane = support::Plane::start().await;
    let admin = plane.admin();
    let storage = plane.storage_dir();
    let nodes: Api<Node> = Api::all(admin.clone());
    create(
        &nodes,
        json!({"metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1"}}}),
    )
    .await;
    let mut config = berth_controllers::volume::VolumeConfig::new(storage.clone());
    config.resync = Duration::from_millis(300);
    berth_controllers::volume::spawn(&plane.controller_clients(), config);

    let classes: Api<StorageClass> = Api::all(admin.clone());
    eventually("the local-path class", || async {
        classes.get_opt("local-path").await.unwrap().is_some()
    })
    .await;
    let class = classes.get("local-path").await.unwrap();
    assert_eq!(
        class.volume_binding_mode.as_deref(),
        Some("WaitForFirstConsumer")
    );
    assert_eq!(class.reclaim_policy.as_deref(), Some("Delete"));
    assert_eq!(
        annotation(
            &class.metadata,
            "storageclass.kubernetes.io/is-default-class"
        ),
        Some("true")
    );

    let claims: Api<PersistentVolumeClaim> = Api::namespaced(admin.clone(), "default");
    let created = claims
        .create(&PostParams::default(), &claim("data", None))
        .await
        .expect("claim");
    let uid = created.metadata.uid.clone().unwrap();
    eventually("default class and protection", || async {
        let c = claims.get("data").await.unwrap();
        c.spec
            .as_ref()
            .and_then(|s| s.storage_class_name.as_deref())
            == Some("local-path")
            && c.metadata
                .finalizers
                .iter()
                .flatten()
                .any(|f| f == "kubernetes.io/pvc-protection")
    })
    .await;
    // Waits for its consumer.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(phase(&claims.get("data").await.unwrap()), "Pending");
    let volumes: Api<PersistentVolume> = Api::all(admin.clone());
    assert!(
        volumes
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );

    // A pod using it lands on n1 (no scheduler here: nodeName is set).
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "default");
    let pod = json!({"metadata": {"name": "user"}, "spec": {"nodeName": "n1",
        "containers": [{"name": "c", "image": "busybox"}],
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]}});
    create(&pods, pod).await;
    eventually("claim bound", || async {
        phase(&claims.get("data").await.unwrap()) == "Bound"
    })
    .await;
    let bound = claims.get("data").await.unwrap();
    let pv_name = format!("pvc-{uid}");
    assert_eq!(
        bound.spec.as_ref().unwrap().volume_name.as_deref(),
        Some(pv_name.as_str())
    );
    assert_eq!(
        annotation(&bound.metadata, "volume.kubernetes.io/selected-node"),
        Some("n1")
    );
    assert_eq!(
        annotation(&bound.metadata, "pv.kubernetes.io/bind-completed"),
        Some("yes")
    );
    assert_eq!(
        annotation(&bound.metadata, "pv.kubernetes.io/bound-by-controller"),
        Some("yes")
    );
    assert_eq!(
        annotation(&bound.metadata, "volume.kubernetes.io/storage-provisioner"),
        Some("berth.dev/local-path")
    );
    assert_eq!(
        bound.status.as_ref().unwrap().capacity.as_ref().unwrap()["storage"].0,
        "1Gi"
    );
    eventually("volume bound and protected", || async {
        let pv = volumes.get(&pv_name).await.unwrap();
        pv.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound")
            && pv
                .metadata
                .finalizers
                .iter()
                .flatten()
                .any(|f| f == "kubernetes.io/pv-protection")
    })
    .await;
    let pv = volumes.get(&pv_name).await.unwrap();
    let spec = pv.spec.unwrap();
    let path = spec.host_path.unwrap().path;
    assert_eq!(
        Path::new(&path),
        storage.join(format!("default_data_{pv_name}"))
    );
    assert!(Path::new(&path).is_dir());
    assert_eq!(spec.claim_ref.unwrap().uid.as_deref(), Some(uid.as_str()));
    // The events kubectl describe shows, in k3s's words.
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(admin.clone(), "default");
    let reasons: Vec<String> = events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|e| e.reason)
        .collect();
    for reason in [
        "WaitForFirstConsumer",
        "ExternalProvisioning",
        "Provisioning",
        "ProvisioningSucceeded",
    ] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "{reason} missing from {reasons:?}"
        );
    }
    assert_eq!(
        spec.persistent_volume_reclaim_policy.as_deref(),
        Some("Delete")
    );

    // Deleted while in use: held by its finalizer.
    claims
        .delete("data", &DeleteParams::default())
        .await
        .expect("delete claim");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        claims
            .get("data")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    );
    assert!(Path::new(&path).is_dir());
    // The pod goes: so do the claim, the volume and the directory.
    pods.delete("user", &DeleteParams::default().grace_period(0))
        .await
        .expect("delete pod");
    eventually("claim gone", || async {
        claims.get_opt("data").await.unwrap().is_none()
    })
    .await;
    eventually("volume gone", || async {
        volumes.get_opt(&pv_name).await.unwrap().is_none()
    })
    .await;
    assert!(!Path::new(&path).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_volume_is_matched_bound_and_released() {
    let plane = support::Plane::start().await;
    let admin = plane.admin();
    let mut config = berth_controllers::volume::VolumeConfig::new(plane.storage_dir());
    config.resync = Duration::from_millis(300);
    berth_controllers::volume::spawn(&plane.controller_clients(), config);
    let volumes: Api<PersistentVolume> = Api::all(admin.clone());
    for (name, size) in [("big", "10Gi"), ("small", "2Gi")] {
        let pv = json!({"metadata": {"name": name}, "spec": {"capacity": {"storage": size},
            "accessModes": ["ReadWriteOnce"], "storageClassName": "manual",
            "persistentVolumeReclaimPolicy": "Retain", "hostPath": {"path": "/tmp/berth-static"}}});
        create(&volumes, pv).await;
    }
    eventually("volumes available", || async {
        volumes
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .iter()
            .all(|v| v.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Available"))
    })
    .await;
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(admin.clone(), "default");
    claims
        .create(&PostParams::default(), &claim("want", Some("manual")))
        .await
        .expect("claim");
    eventually("claim bound", || async {
        phase(&claims.get("want").await.unwrap()) == "Bound"
    })
    .await;
    let bound = claims.get("want").await.unwrap();
    assert_eq!(
        bound.spec.as_ref().unwrap().volume_name.as_deref(),
        Some("small")
    );
    let small = volumes.get("small").await.unwrap();
    assert_eq!(
        annotation(&small.metadata, "pv.kubernetes.io/bound-by-controller"),
        Some("yes")
    );
    eventually("small bound", || async {
        volumes
            .get("small")
            .await
            .unwrap()
            .status
            .and_then(|s| s.phase)
            == Some("Bound".into())
    })
    .await;
    claims
        .delete("want", &DeleteParams::default())
        .await
        .expect("delete claim");
    eventually("small released", || async {
        volumes
            .get("small")
            .await
            .unwrap()
            .status
            .and_then(|s| s.phase)
            == Some("Released".into())
    })
    .await;
    // Retained: still there, still claimed by the old claim.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let small = volumes.get("small").await.unwrap();
    assert_eq!(
        small.status.and_then(|s| s.phase).as_deref(),
        Some("Released")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn immediate_class_provisions_without_a_consumer() {
    let plane = support::Plane::start().await;
    let admin = plane.admin();
    let storage = plane.storage_dir();
    let nodes: Api<Node> = Api::all(admin.clone());
    create(&nodes, json!({"metadata": {"name": "only"}})).await;
    let classes: Api<StorageClass> = Api::all(admin.clone());
    create(
        &classes,
        json!({"metadata": {"name": "instant"},
                "provisioner": "rancher.io/local-path", "volumeBindingMode": "Immediate",
                "reclaimPolicy": "Retain"}),
    )
    .await;
    let mut config = berth_controllers::volume::VolumeConfig::new(storage.clone());
    config.resync = Duration::from_millis(300);
    berth_controllers::volume::spawn(&plane.controller_clients(), config);
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(admin.clone(), "default");
    claims
        .create(&PostParams::default(), &claim("now", Some("instant")))
        .await
        .expect("claim");
    eventually("claim bound", || async {
        phase(&claims.get("now").await.unwrap()) == "Bound"
    })
    .await;
    let name = claims
        .get("now")
        .await
        .unwrap()
        .spec
        .unwrap()
        .volume_name
        .unwrap();
    let volumes: Api<PersistentVolume> = Api::all(admin.clone());
    let pv = volumes.get(&name).await.unwrap();
    let spec = pv.spec.unwrap();
    assert_eq!(
        spec.persistent_volume_reclaim_policy.as_deref(),
        Some("Retain")
    );
    let path = spec.host_path.unwrap().path;
    assert!(Path::new(&path).is_dir());
    // Retain: the claim goes, the volume and its data stay, Released.
    claims
        .delete("now", &DeleteParams::default())
        .await
        .expect("delete");
    eventually("released", || async {
        volumes
            .get(&name)
            .await
            .unwrap()
            .status
            .and_then(|s| s.phase)
            == Some("Released".into())
    })
    .await;
    assert!(Path::new(&path).is_dir());
}
