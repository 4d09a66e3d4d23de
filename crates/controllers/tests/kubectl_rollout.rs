//! `kubectl rollout status/history/undo` for StatefulSets and DaemonSets
//! read the ControllerRevisions the controllers keep (skipped when
//! kubectl is missing).

mod support;

use std::process::Command;

use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use support::{create, pods, running_ready, set_pod_status, until};

fn have_kubectl() -> bool {
    Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success())
}

async fn kubectl(kubeconfig: &std::path::Path, args: &[&str]) -> (bool, String) {
    let kubeconfig = kubeconfig.to_path_buf();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(&args)
            .output()
            .expect("run kubectl");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    })
    .await
    .expect("kubectl task")
}

/// Marks every pod matching `sel` running and ready, until `done`.
async fn ready_all(admin: &kube::Client, sel: &str) {
    for p in pods(admin, "default", sel).await {
        let ready = p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
        if !ready && p.metadata.deletion_timestamp.is_none() {
            set_pod_status(
                admin,
                "default",
                p.metadata.name.as_deref().unwrap_or(""),
                running_ready(),
            )
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_rollout_reads_statefulset_and_daemonset_revisions() {
    if !have_kubectl() {
        eprintln!("kubectl missing: skipped");
        return;
    }
    let (plane, admin) = support::start_all().await;
    // Serve HTTPS for kubectl: the listener is bound, run it.
    let (dir, cp) = plane.into_parts();
    let kubeconfig = cp.kubeconfig.clone();
    tokio::spawn(cp.server.run(std::future::pending()));

    let sets: Api<StatefulSet> = Api::namespaced(admin.clone(), "default");
    let s: StatefulSet = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 2, "serviceName": "web",
                 "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "main", "image": "nginx:1"}]}}}
    }))
    .expect("set");
    sets.create(&PostParams::default(), &s)
        .await
        .expect("create");
    let nodes: Api<Node> = Api::all(admin.clone());
    create(&nodes, json!({"metadata": {"name": "n1"}})).await;
    let dss: Api<DaemonSet> = Api::namespaced(admin.clone(), "default");
    let d: DaemonSet = serde_json::from_value(json!({
        "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}},
                 "template": {"metadata": {"labels": {"app": "agent"}},
                              "spec": {"containers": [{"name": "main", "image": "agent:1"}]}}}
    }))
    .expect("ds");
    dss.create(&PostParams::default(), &d)
        .await
        .expect("create");

    let image = |img: &str| {
        Patch::Merge(
            json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": img}]}}}}),
        )
    };
    let settle = |what: &'static str| {
        let admin = admin.clone();
        let sets = sets.clone();
        let dss = dss.clone();
        async move {
            until(20, what, || async {
                ready_all(&admin, "app=web").await;
                ready_all(&admin, "app=agent").await;
                let set = sets.get("web").await.ok()?;
                let ds = dss.get("agent").await.ok()?;
                let (s, d) = (set.status.clone()?, ds.status.clone()?);
                (s.observed_generation == set.metadata.generation
                    && d.observed_generation == ds.metadata.generation
                    && s.ready_replicas == Some(2)
                    && s.current_revision == s.update_revision
                    && s.updated_replicas == Some(2)
                    && d.updated_number_scheduled == Some(1)
                    && d.number_available == Some(1))
                .then_some(())
            })
            .await;
        }
    };
    settle("first rollout").await;
    sets.patch("web", &PatchParams::default(), &image("nginx:2"))
        .await
        .expect("update");
    dss.patch("agent", &PatchParams::default(), &image("agent:2"))
        .await
        .expect("update");
    settle("second rollout").await;

    for target in ["statefulset/web", "daemonset/agent"] {
        let (ok, out) = kubectl(&kubeconfig, &["rollout", "history", target]).await;
        assert!(ok, "{out}");
        let revisions: Vec<&str> = out
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|w| w.chars().all(|c| c.is_ascii_digit()))
            .collect();
        assert_eq!(revisions, vec!["1", "2"], "{out}");
        let (ok, out) = kubectl(&kubeconfig, &["rollout", "status", target, "--timeout=20s"]).await;
        assert!(ok, "{out}");
        assert!(out.contains("roll"), "{out}");
        let (ok, out) = kubectl(&kubeconfig, &["rollout", "history", target, "--revision=1"]).await;
        assert!(ok && out.contains(":1"), "{out}");
    }
    let (ok, out) = kubectl(&kubeconfig, &["rollout", "undo", "statefulset/web"]).await;
    assert!(ok && out.contains("rolled back"), "{out}");
    let (ok, out) = kubectl(&kubeconfig, &["rollout", "undo", "daemonset/agent"]).await;
    assert!(ok && out.contains("rolled back"), "{out}");
    settle("rollback").await;
    let (ok, out) = kubectl(&kubeconfig, &["rollout", "history", "statefulset/web"]).await;
    assert!(ok, "{out}");
    let revisions: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.chars().all(|c| c.is_ascii_digit()))
        .collect();
    assert_eq!(revisions, vec!["2", "3"], "{out}");
    let img = sets
        .get("web")
        .await
        .expect("web")
        .spec
        .and_then(|s| s.template.spec)
        .map(|s| s.containers[0].image.clone());
    assert_eq!(img, Some(Some("nginx:1".to_owned())));
    drop(dir);
}
