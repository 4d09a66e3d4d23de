//! The StatefulSet controller against the in-process API server; the
//! test plays the kubelet.

mod support;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use support::{create, revision_hash, running_ready, set_pod_status, until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_orders_pods_and_rolls_updates() {
    let (_plane, admin) = support::start_all().await;
    let sets: Api<StatefulSet> = Api::namespaced(admin.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "default");
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(admin.clone(), "default");
    let s: StatefulSet = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 2, "serviceName": "nginx",
                 "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "main", "image": "nginx:1"}]}},
                 "volumeClaimTemplates": [{"metadata": {"name": "www"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}
    }))
    .expect("set");
    sets.create(&PostParams::default(), &s)
        .await
        .expect("create");
    let web0 = until(10, "web-0", || async { pods.get("web-0").await.ok() }).await;
    claims.get("www-web-0").await.expect("claim before the pod");
    assert_eq!(
        web0.spec.as_ref().and_then(|s| s.subdomain.as_deref()),
        Some("nginx")
    );
    // OrderedReady: web-1 waits for web-0 to be ready.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        pods.get("web-1").await.is_err(),
        "web-1 must wait for web-0"
    );
    set_pod_status(&admin, "default", "web-0", running_ready()).await;
    until(10, "web-1", || async { pods.get("web-1").await.ok() }).await;
    set_pod_status(&admin, "default", "web-1", running_ready()).await;
    let st = until(10, "2 ready", || async {
        let s = sets.get("web").await.ok()?;
        let st = s.status.clone()?;
        (st.ready_replicas == Some(2)
            && st.current_revision.is_some()
            && st.current_revision == st.update_revision)
            .then_some(st)
    })
    .await;
    assert_eq!(st.replicas, 2);
    let first = st.update_revision.clone().unwrap_or_default();

    // Update the template: web-1 goes first, then web-0.
    sets.patch("web", &PatchParams::default(), &Patch::Merge(json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "nginx:2"}]}}}})))
        .await
        .expect("update");
    let new_hash = until(10, "web-1 updated", || async {
        let p = pods.get("web-1").await.ok()?;
        (revision_hash(&p) != first).then(|| revision_hash(&p))
    })
    .await;
    assert_eq!(
        revision_hash(&pods.get("web-0").await.expect("web-0")),
        first,
        "web-0 waits for web-1"
    );
    set_pod_status(&admin, "default", "web-1", running_ready()).await;
    until(10, "web-0 updated", || async {
        let p = pods.get("web-0").await.ok()?;
        (revision_hash(&p) == new_hash).then_some(())
    })
    .await;
    set_pod_status(&admin, "default", "web-0", running_ready()).await;
    until(10, "rollout complete", || async {
        let st = sets.get("web").await.ok()?.status?;
        (st.current_revision.as_deref() == Some(new_hash.as_str())
            && st.updated_replicas == Some(2)
            && st.ready_replicas == Some(2))
        .then_some(())
    })
    .await;
    let revs: Api<ControllerRevision> = Api::namespaced(admin.clone(), "default");
    let mut numbers: Vec<i64> = revs
        .list(&ListParams::default().labels("app=web"))
        .await
        .expect("revisions")
        .items
        .iter()
        .map(|r| r.revision)
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, vec![1, 2]);

    // `kubectl rollout undo`: the revision's data as a strategic merge
    // patch; the old revision becomes the latest (3) and pods roll back.
    let all = revs
        .list(&ListParams::default().labels("app=web"))
        .await
        .expect("revisions")
        .items;
    let one = all.iter().find(|r| r.revision == 1).expect("revision 1");
    let data = one.data.clone().expect("data").0;
    sets.patch("web", &PatchParams::default(), &Patch::Strategic(data))
        .await
        .expect("undo");
    until(10, "revision 1 renumbered", || async {
        let r = revs
            .get(one.metadata.name.as_deref().unwrap_or(""))
            .await
            .ok()?;
        (r.revision == 3).then_some(())
    })
    .await;
    until(10, "web-1 rolled back", || async {
        let p = pods.get("web-1").await.ok()?;
        (revision_hash(&p) == first).then_some(())
    })
    .await;
    set_pod_status(&admin, "default", "web-1", running_ready()).await;
    until(10, "web-0 rolled back", || async {
        let p = pods.get("web-0").await.ok()?;
        (revision_hash(&p) == first).then_some(())
    })
    .await;
    set_pod_status(&admin, "default", "web-0", running_ready()).await;
    until(10, "rollback complete", || async {
        let st = sets.get("web").await.ok()?.status?;
        (st.current_revision.as_deref() == Some(first.as_str()) && st.ready_replicas == Some(2))
            .then_some(())
    })
    .await;

    // Scale down: the highest ordinal goes.
    sets.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 1}})),
    )
    .await
    .expect("scale");
    until(10, "web-1 gone", || async {
        pods.get("web-1").await.is_err().then_some(())
    })
    .await;
    assert!(pods.get("web-0").await.is_ok());
    assert!(
        claims.get("www-web-1").await.is_ok(),
        "Retain keeps the claim"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_adopts_orphan_pods() {
    let (_plane, admin) = support::start_all().await;
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "default");
    // Left behind by an owner deleted with --cascade=orphan.
    create(
        &pods,
        json!({
            "metadata": {"name": "db-0", "labels": {"app": "db"}},
            "spec": {"containers": [{"name": "main", "image": "pg:1"}]}
        }),
    )
    .await;
    let sets: Api<StatefulSet> = Api::namespaced(admin.clone(), "default");
    let s: StatefulSet = serde_json::from_value(json!({
        "metadata": {"name": "db"},
        "spec": {"replicas": 1, "serviceName": "db",
                 "selector": {"matchLabels": {"app": "db"}},
                 "template": {"metadata": {"labels": {"app": "db"}},
                              "spec": {"containers": [{"name": "main", "image": "pg:1"}]}}}
    }))
    .expect("set");
    let created = sets
        .create(&PostParams::default(), &s)
        .await
        .expect("create");
    let uid = created.metadata.uid.clone().unwrap_or_default();
    until(10, "db-0 adopted", || async {
        let p = pods.get("db-0").await.ok()?;
        let refs = p.metadata.owner_references.clone().unwrap_or_default();
        refs.iter()
            .any(|r| r.uid == uid && r.controller == Some(true))
            .then_some(())
    })
    .await;
    let st = until(10, "status counts it", || async {
        let st = sets.get("db").await.ok()?.status?;
        (st.replicas == 1).then_some(st)
    })
    .await;
    assert_eq!(st.ready_replicas, Some(0));
}
