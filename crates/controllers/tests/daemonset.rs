//! The DaemonSet controller against the in-process API server; the test
//! creates the nodes and plays the kubelet.

mod support;

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use support::{create, pods, revision_hash, running_ready, set_all_status, set_pod_status, until};

fn target(p: &Pod) -> String {
    p.spec
        .as_ref()
        .and_then(berth_controllers::daemonset::eligibility::target_node)
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemonset_runs_one_pod_per_node_and_rolls_updates() {
    let (_plane, admin) = support::start_all().await;
    let nodes: Api<Node> = Api::all(admin.clone());
    for (name, taints) in [
        ("n1", json!([])),
        ("n2", json!([])),
        (
            "tainted",
            json!([{"key": "dedicated", "effect": "NoExecute"}]),
        ),
    ] {
        let n: Node =
            serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"taints": taints}}))
                .expect("node");
        nodes
            .create(&PostParams::default(), &n)
            .await
            .expect("node");
    }
    let dss: Api<DaemonSet> = Api::namespaced(admin.clone(), "default");
    create(
        &dss,
        json!({
            "metadata": {"name": "agent"},
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
                     "template": {"metadata": {"labels": {"app": "agent"}},
                                  "spec": {"containers": [{"name": "main", "image": "agent:1"}]}}}
        }),
    )
    .await;
    let first = until(10, "a pod per untainted node", || async {
        let p = pods(&admin, "default", "app=agent").await;
        (p.len() == 2).then_some(p)
    })
    .await;
    let mut targets: Vec<String> = first.iter().map(target).collect();
    targets.sort();
    assert_eq!(targets, vec!["n1", "n2"]);
    set_all_status(&admin, &first, running_ready()).await;
    let st = until(10, "2 available", || async {
        let st = dss.get("agent").await.ok()?.status?;
        (st.number_available == Some(2)).then_some(st)
    })
    .await;
    assert_eq!(
        (
            st.desired_number_scheduled,
            st.current_number_scheduled,
            st.number_ready,
            st.number_misscheduled
        ),
        (2, 2, 2, 0)
    );
    let old_hash = revision_hash(&first[0]);

    // Roll to a new image, one node at a time.
    dss.patch("agent", &PatchParams::default(), &Patch::Merge(json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "agent:2"}]}}}})))
        .await
        .expect("update");
    for round in 0..2 {
        let fresh = until(10, "a new pod", || async {
            pods(&admin, "default", "app=agent")
                .await
                .into_iter()
                .find(|p| {
                    revision_hash(p) != old_hash
                        && p.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Running")
                })
        })
        .await;
        let current = pods(&admin, "default", "app=agent").await;
        assert!(
            current
                .iter()
                .filter(|p| revision_hash(p) != old_hash)
                .count()
                <= round + 1,
            "one node at a time"
        );
        set_pod_status(
            &admin,
            "default",
            fresh.metadata.name.as_deref().unwrap_or(""),
            running_ready(),
        )
        .await;
    }
    let st = until(10, "rollout done", || async {
        let st = dss.get("agent").await.ok()?.status?;
        (st.updated_number_scheduled == Some(2) && st.number_available == Some(2)).then_some(st)
    })
    .await;
    assert_eq!(st.observed_generation, Some(2));
    let revs: Api<ControllerRevision> = Api::namespaced(admin.clone(), "default");
    let n = revs
        .list(&ListParams::default().labels("app=agent"))
        .await
        .expect("revisions")
        .items
        .len();
    assert_eq!(n, 2);
}
