//! The scheduler against a real API server in process, acting as
//! `system:kube-scheduler`.

mod support;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::scheduling::v1::PriorityClass;
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::{Plane, eventually};

async fn add_node(admin: &kube::Client, name: &str, cpu: &str, memory: &str) {
    let nodes: Api<Node> = Api::all(admin.clone());
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
    }))
    .expect("node");
    nodes
        .create(&PostParams::default(), &node)
        .await
        .expect("create node");
    let status = json!({"status": {
        "capacity": {"cpu": cpu, "memory": memory, "pods": "110"},
        "allocatable": {"cpu": cpu, "memory": memory, "pods": "110"},
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status"}]
    }});
    nodes
        .patch_status(name, &PatchParams::default(), &Patch::Merge(status))
        .await
        .expect("node status");
}

fn pod(name: &str, cpu: &str, extra: Value) -> Pod {
    let mut v = json!({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "app:v1", "resources": {"requests": {"cpu": cpu, "memory": "64Mi"}}}]}
    });
    if let (Some(spec), Some(extra)) = (v["spec"].as_object_mut(), extra.as_object()) {
        for (k, val) in extra {
            spec.insert(k.clone(), val.clone());
        }
    }
    serde_json::from_value(v).expect("pod")
}

async fn node_of(pods: &Api<Pod>, name: &str) -> Option<String> {
    let p = pods.get(name).await.ok()?;
    p.spec.and_then(|s| s.node_name).filter(|n| !n.is_empty())
}

fn start(plane: &Plane) -> tokio::task::JoinHandle<()> {
    berth_scheduler::spawn(
        plane.client_as("system:kube-scheduler", &["system:authenticated"]),
        Default::default(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binds_to_the_least_allocated_node() {
    let plane = Plane::start().await;
    let admin = plane.admin();
    add_node(&admin, "busy", "4", "8Gi").await;
    add_node(&admin, "idle", "4", "8Gi").await;
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "default");
    // Already running on "busy" (bound by hand).
    pods.create(
        &PostParams::default(),
        &pod("running", "3", json!({"nodeName": "busy"})),
    )
    .await
    .expect("create");
    let scheduler = start(&plane);
    pods.create(&PostParams::default(), &pod("web", "500m", json!({})))
        .await
        .expect("create");
    let node = eventually("web bound", || node_of(&pods, "web")).await;
    assert_eq!(node, "idle");
    let web = pods.get("web").await.expect("get");
    let scheduled = web
        .status
        .and_then(|s| s.conditions)
        .and_then(|c| c.into_iter().find(|c| c.type_ == "PodScheduled"))
        .expect("PodScheduled");
    assert_eq!(scheduled.status, "True");
    let events: Api<Event> = Api::namespaced(admin.clone(), "default");
    let event = eventually("the Scheduled event", || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items.into_iter().find(|e| {
            e.reason.as_deref() == Some("Scheduled")
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("web")
        })
    })
    .await;
    assert_eq!(
        event.note.as_deref(),
        Some("Successfully assigned default/web to idle")
    );
    assert_eq!(event.type_.as_deref(), Some("Normal"));
    // Pods for another scheduler are left alone.
    pods.create(
        &PostParams::default(),
        &pod("other", "100m", json!({"schedulerName": "my-scheduler"})),
    )
    .await
    .expect("create");
    // Consecutive pods see each other: six half-cores fill both nodes evenly.
    for i in 0..6 {
        pods.create(
            &PostParams::default(),
            &pod(&format!("w{i}"), "500m", json!({})),
        )
        .await
        .expect("create");
    }
    for i in 0..6 {
        let name = format!("w{i}");
        eventually("wN bound", || node_of(&pods, &name)).await;
    }
    let all = pods.list(&ListParams::default()).await.expect("list");
    let on_idle = all
        .items
        .iter()
        .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some("idle"))
        .count();
    // idle: web + 5 of the 6 (3.0 cpu), busy: running + 1 (3.5 cpu).
    assert_eq!(on_idle, 6);
    assert_eq!(node_of(&pods, "other").await, None);
    scheduler.abort();
}

async fn scheduled_condition(pods: &Api<Pod>, name: &str) -> Option<(String, String, String)> {
    let p = pods.get(name).await.ok()?;
    let c = p
        .status?
        .conditions?
        .into_iter()
        .find(|c| c.type_ == "PodScheduled")?;
    Some((
        c.status,
        c.reason.unwrap_or_default(),
        c.message.unwrap_or_default(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unschedulable_until_a_node_fits() {
    let plane = Plane::start().await;
    let admin = plane.admin();
    add_node(&admin, "small", "1", "2Gi").await;
    let scheduler = start(&plane);
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "default");
    pods.create(&PostParams::default(), &pod("big", "2", json!({})))
        .await
        .expect("create");
    let expected = "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling..";
    let (status, reason, message) = eventually("the Unschedulable condition", || async {
        scheduled_condition(&pods, "big")
            .await
            .filter(|c| c.0 == "False")
    })
    .await;
    assert_eq!(
        (status.as_str(), reason.as_str(), message.as_str()),
        ("False", "Unschedulable", expected)
    );
    let events: Api<Event> = Api::namespaced(admin.clone(), "default");
    let event = eventually("the FailedScheduling event", || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items.into_iter().find(|e| {
            e.reason.as_deref() == Some("FailedScheduling")
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("big")
        })
    })
    .await;
    assert_eq!(event.note.as_deref(), Some(expected));
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    assert_eq!(
        event.reporting_controller.as_deref(),
        Some("default-scheduler")
    );
    add_node(&admin, "large", "4", "8Gi").await;
    let node = eventually("big bound after the node came", || node_of(&pods, "big")).await;
    assert_eq!(node, "large");
    scheduler.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_nodes_at_all() {
    let plane = Plane::start().await;
    let admin = plane.admin();
    let scheduler = start(&plane);
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "default");
    pods.create(&PostParams::default(), &pod("lonely", "100m", json!({})))
        .await
        .expect("create");
    let (_, reason, message) = eventually("the Unschedulable condition", || async {
        scheduled_condition(&pods, "lonely")
            .await
            .filter(|c| c.0 == "False")
    })
    .await;
    assert_eq!(
        (reason.as_str(), message.as_str()),
        ("Unschedulable", "no nodes available to schedule pods")
    );
    scheduler.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preempts_a_lower_priority_pod() {
    let plane = Plane::start().await;
    let admin = plane.admin();
    add_node(&admin, "only", "2", "4Gi").await;
    let classes: Api<PriorityClass> = Api::all(admin.clone());
    let high: PriorityClass =
        serde_json::from_value(json!({"metadata": {"name": "high"}, "value": 1000}))
            .expect("class");
    classes
        .create(&PostParams::default(), &high)
        .await
        .expect("class");
    let scheduler = start(&plane);
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "default");
    pods.create(&PostParams::default(), &pod("low", "1500m", json!({})))
        .await
        .expect("create");
    assert_eq!(
        eventually("low bound", || node_of(&pods, "low")).await,
        "only"
    );
    pods.create(
        &PostParams::default(),
        &pod("urgent", "1", json!({"priorityClassName": "high"})),
    )
    .await
    .expect("create");
    // The victim gets DisruptionTarget and is deleted.
    let reason = eventually("the victim's DisruptionTarget", || async {
        let p = pods.get_opt("low").await.ok()?;
        let Some(p) = p else {
            return Some("deleted".to_owned());
        };
        let c = p
            .status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "DisruptionTarget")?;
        Some(c.reason.unwrap_or_default())
    })
    .await;
    if reason != "deleted" {
        assert_eq!(reason, "PreemptionByScheduler");
    }
    let nominated = eventually("urgent nominated", || async {
        let p = pods.get("urgent").await.ok()?;
        let s = p.status?;
        s.nominated_node_name
            .filter(|n| !n.is_empty())
            .or_else(|| p.spec.and_then(|s| s.node_name).filter(|n| !n.is_empty()))
    })
    .await;
    assert_eq!(nominated, "only");
    // Play the kubelet: the terminating victim goes away for good.
    let _ = pods
        .delete(
            "low",
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..DeleteParams::default()
            },
        )
        .await;
    let node = eventually("urgent bound", || node_of(&pods, "urgent")).await;
    assert_eq!(node, "only");
    let uid = pods
        .get("urgent")
        .await
        .expect("get")
        .metadata
        .uid
        .unwrap_or_default();
    let events: Api<Event> = Api::namespaced(admin.clone(), "default");
    let preempted = eventually("the Preempted event", || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("Preempted"))
    })
    .await;
    assert_eq!(
        preempted.note,
        Some(format!("Preempted by pod {uid} on node only"))
    );
    assert_eq!(
        preempted.regarding.and_then(|r| r.name).as_deref(),
        Some("low")
    );
    assert_eq!(preempted.type_.as_deref(), Some("Normal"));
    let failed = events
        .list(&ListParams::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .find(|e| {
            e.reason.as_deref() == Some("FailedScheduling")
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("urgent")
        })
        .expect("FailedScheduling for urgent");
    assert!(
        failed
            .note
            .as_deref()
            .is_some_and(|n| n.starts_with("0/1 nodes are available: 1 Insufficient cpu.")),
        "{:?}",
        failed.note
    );
    scheduler.abort();
}
