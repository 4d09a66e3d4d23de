//! The node lifecycle controller against the API server in process: a
//! node whose Lease stops is marked Unknown and tainted, its pods are
//! evicted after their tolerationSeconds, and recovery lifts the taints.

mod support;

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use support::{create, eventually};

async fn post_ready(nodes: &Api<Node>, name: &str) {
    let now = Timestamp::now().to_string();
    let status = json!({"status": {"conditions": [
        {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status",
         "lastHeartbeatTime": now, "lastTransitionTime": now},
        {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory",
         "lastHeartbeatTime": now, "lastTransitionTime": now},
    ]}});
    nodes
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("node status");
}

async fn renew(leases: &Api<Lease>, name: &str) {
    let patch = json!({"spec": {"holderIdentity": name, "leaseDurationSeconds": 40,
        "renewTime": MicroTime(Timestamp::now())}});
    leases
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("renew lease");
}

fn taint_keys(node: &Node) -> Vec<(String, String)> {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|t| (t.key, t.effect))
        .collect()
}

fn ready(node: &Node) -> Option<(String, Option<String>, Option<String>)> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_node_goes_unknown_is_tainted_and_its_pods_are_evicted() {
    let plane = support::Plane::start().await;
    let admin = plane.admin();
    let nodes: Api<Node> = Api::all(admin.clone());
    let leases: Api<Lease> = Api::namespaced(admin.clone(), "kube-node-lease");
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "default");

    create(&nodes, json!({"metadata": {"name": "n1"}})).await;
    post_ready(&nodes, "n1").await;
    create(
        &leases,
        json!({"metadata": {"name": "n1"}, "spec": {"holderIdentity": "n1"}}),
    )
    .await;
    renew(&leases, "n1").await;

    for (name, tolerations) in [
        (
            "short",
            json!([{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 2}]),
        ),
        ("forever", json!([{"operator": "Exists"}])),
    ] {
        let pod = json!({"metadata": {"name": name}, "spec": {"nodeName": "n1", "tolerations": tolerations,
            "containers": [{"name": "c", "image": "busybox"}]}});
        create(&pods, pod).await;
    }

    let running = json!({"status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True", "reason": "", "lastTransitionTime": Timestamp::now().to_string()}]}});
    pods.patch_status("forever", &PatchParams::default(), &Patch::Merge(&running))
        .await
        .expect("pod status");

    berth_controllers::node_lifecycle::spawn(
        &plane.controller_clients(),
        berth_controllers::node_lifecycle::NodeLifecycleConfig {
            grace_period: Duration::from_secs(2),
            startup_grace_period: Duration::from_secs(4),
            monitor_period: Duration::from_millis(100),
        },
    );

    // Renewed in time: stays Ready and untainted.
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        renew(&leases, "n1").await;
    }
    let n1 = nodes.get("n1").await.unwrap();
    assert_eq!(ready(&n1).map(|r| r.0), Some("True".to_owned()));
    assert!(taint_keys(&n1).is_empty(), "{:?}", taint_keys(&n1));

    // Silence: Unknown, with kube's reason and message, and the taints.
    let stopped = tokio::time::Instant::now();
    eventually("Ready Unknown", || async {
        ready(&nodes.get("n1").await.unwrap())
            == Some((
                "Unknown".to_owned(),
                Some("NodeStatusUnknown".to_owned()),
                Some("Kubelet stopped posting node status.".to_owned()),
            ))
    })
    .await;
    assert!(
        stopped.elapsed() >= Duration::from_millis(1900),
        "marked too early"
    );
    eventually("unreachable taints", || async {
        let keys = taint_keys(&nodes.get("n1").await.unwrap());
        keys.contains(&(
            "node.kubernetes.io/unreachable".to_owned(),
            "NoExecute".to_owned(),
        )) && keys.contains(&(
            "node.kubernetes.io/unreachable".to_owned(),
            "NoSchedule".to_owned(),
        ))
    })
    .await;
    let memory = nodes.get("n1").await.unwrap();
    let memory = memory.status.unwrap().conditions.unwrap();
    assert!(
        memory
            .iter()
            .any(|c| c.type_ == "MemoryPressure" && c.status == "Unknown")
    );

    // The pod tolerating for 2 s goes after them; the other stays.
    eventually("short pod evicted", || async {
        match pods.get_opt("short").await.unwrap() {
            None => true,
            Some(p) => p.metadata.deletion_timestamp.is_some(),
        }
    })
    .await;
    // Unknown after the 2 s grace, then 2 s of toleration.
    assert!(
        stopped.elapsed() >= Duration::from_millis(3900),
        "evicted before its tolerationSeconds"
    );
    if let Some(p) = pods.get_opt("short").await.unwrap() {
        let conditions = p.status.unwrap().conditions.unwrap_or_default();
        let target = conditions
            .iter()
            .find(|c| c.type_ == "DisruptionTarget")
            .expect("DisruptionTarget");
        assert_eq!(target.reason.as_deref(), Some("DeletionByTaintManager"));
    }
    let forever = pods.get("forever").await.unwrap();
    assert!(forever.metadata.deletion_timestamp.is_none());
    // Its Ready condition was set False (the agent cannot say so).
    eventually("forever not ready", || async {
        pods.get("forever")
            .await
            .unwrap()
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "False")
    })
    .await;
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(admin.clone(), "default");
    eventually("TaintManagerEviction event", || async {
        events
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .iter()
            .any(|e| {
                e.reason.as_deref() == Some("TaintManagerEviction")
                    && e.note.as_deref() == Some("Marking for deletion Pod default/short")
            })
    })
    .await;

    // Recovery lifts the taints.
    renew(&leases, "n1").await;
    post_ready(&nodes, "n1").await;
    eventually("taints lifted", || async {
        taint_keys(&nodes.get("n1").await.unwrap()).is_empty()
    })
    .await;
    assert_eq!(
        ready(&nodes.get("n1").await.unwrap()).map(|r| r.0),
        Some("True".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_of_a_deleted_node_are_garbage_collected() {
    let plane = support::Plane::start().await;
    let admin = plane.admin();
    let nodes: Api<Node> = Api::all(admin.clone());
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "default");
    create(&nodes, json!({"metadata": {"name": "n2"}})).await;
    for (name, node) in [("orphan", "gone"), ("kept", "n2")] {
        let pod = json!({"metadata": {"name": name}, "spec": {"nodeName": node,
            "containers": [{"name": "c", "image": "busybox"}]}});
        create(&pods, pod).await;
    }
    berth_controllers::podgc::spawn(
        &plane.controller_clients(),
        berth_controllers::podgc::PodGcConfig {
            threshold: 12500,
            quarantine: Duration::from_millis(300),
            period: Duration::from_millis(100),
        },
    );
    eventually("orphan gone", || async {
        pods.get_opt("orphan").await.unwrap().is_none()
    })
    .await;
    assert!(
        pods.get("kept")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_no_execute_taint_evicts_pods_that_do_not_tolerate_it() {
    let plane = support::Plane::start().await;
    let admin = plane.admin();
    let nodes: Api<Node> = Api::all(admin.clone());
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "default");
    create(&nodes, json!({"metadata": {"name": "n3"}})).await;
    post_ready(&nodes, "n3").await;
    for (name, tolerations) in [
        ("plain", json!([])),
        (
            "tolerant",
            json!([{"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoExecute"}]),
        ),
    ] {
        let pod = json!({"metadata": {"name": name}, "spec": {"nodeName": "n3", "tolerations": tolerations,
            "containers": [{"name": "c", "image": "busybox"}]}});
        create(&pods, pod).await;
    }
    berth_controllers::node_lifecycle::spawn(
        &plane.controller_clients(),
        berth_controllers::node_lifecycle::NodeLifecycleConfig::default(),
    );
    // As `kubectl taint nodes n3 dedicated=db:NoExecute`.
    let taint =
        json!({"spec": {"taints": [{"key": "dedicated", "value": "db", "effect": "NoExecute"}]}});
    nodes
        .patch("n3", &PatchParams::default(), &Patch::Merge(&taint))
        .await
        .expect("taint");
    eventually("plain evicted", || async {
        pods.get_opt("plain")
            .await
            .unwrap()
            .is_none_or(|p| p.metadata.deletion_timestamp.is_some())
    })
    .await;
    let tolerant = pods.get("tolerant").await.unwrap();
    assert!(tolerant.metadata.deletion_timestamp.is_none());
    // The user's taint stays; the node is healthy, so nothing is added.
    let n3 = nodes.get("n3").await.unwrap();
    assert_eq!(
        taint_keys(&n3),
        vec![("dedicated".to_owned(), "NoExecute".to_owned())]
    );
}
