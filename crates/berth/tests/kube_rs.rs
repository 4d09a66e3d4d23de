//! kube-rs, the Rust Kubernetes client, against `berth server`: typed
//! get/list/create/patch/delete, server-side apply, and a watcher (the
//! informer-style list-then-watch) that sees every change.

use std::path::Path;
use std::time::Duration;

use berth_testutil::{KubeServer, have_kubectl};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_berth"))
}

async fn client(s: &KubeServer) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(&s.kubeconfig).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .expect("config");
    kube::Client::try_from(config).expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_works_against_berth_server() {
    // The server is started the way the kubectl tests start it (kubectl
    // checks readiness), but every request here is kube-rs's.
    if !have_kubectl() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = tokio::task::spawn_blocking({
        let dir = dir.path().to_owned();
        move || KubeServer::start(bin(), &dir, &[])
    })
    .await
    .unwrap();
    let client = client(&s).await;

    let version = client.apiserver_version().await.expect("version");
    assert_eq!(version.minor, "33");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let names: Vec<String> = namespaces
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert!(names.contains(&"kube-system".to_owned()), "{names:?}");

    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let watch = tokio::spawn({
        let cms = cms.clone();
        async move {
            let mut seen = Vec::new();
            let stream = watcher(cms, watcher::Config::default().labels("kube-rs=yes"));
            futures::pin_mut!(stream);
            while let Ok(Some(event)) =
                tokio::time::timeout(Duration::from_secs(15), stream.try_next())
                    .await
                    .unwrap_or(Ok(None))
            {
                match event {
                    watcher::Event::Apply(cm) => {
                        seen.push(format!("apply {}", cm.metadata.name.unwrap_or_default()))
                    }
                    watcher::Event::Delete(cm) => {
                        seen.push(format!("delete {}", cm.metadata.name.unwrap_or_default()));
                        break;
                    }
                    _ => {}
                }
            }
            seen
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut cm = ConfigMap::default();
    cm.metadata.name = Some("from-kube-rs".into());
    cm.metadata.labels = Some([("kube-rs".to_owned(), "yes".to_owned())].into());
    cm.data = Some([("a".to_owned(), "1".to_owned())].into());
    let made = cms
        .create(&PostParams::default(), &cm)
        .await
        .expect("create");
    assert!(made.metadata.uid.is_some() && made.metadata.resource_version.is_some());
    let err = cms.create(&PostParams::default(), &cm).await.unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 409),
        "{err:?}"
    );

    let patched = cms
        .patch(
            "from-kube-rs",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"data": {"b": "2"}})),
        )
        .await
        .expect("merge patch");
    assert_eq!(
        patched.data.unwrap().get("b").map(String::as_str),
        Some("2")
    );

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let applied: Deployment = serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ssa"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "ssa"}},
                 "template": {"metadata": {"labels": {"app": "ssa"}}, "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}}
    }))
    .unwrap();
    let ssa = deployments
        .patch(
            "ssa",
            &PatchParams::apply("kube-rs-test"),
            &Patch::Apply(&applied),
        )
        .await
        .expect("server-side apply creates");
    assert_eq!(ssa.spec.unwrap().replicas, Some(2));
    let managed = ssa.metadata.managed_fields.unwrap_or_default();
    assert!(
        managed
            .iter()
            .any(|m| m.manager.as_deref() == Some("kube-rs-test")
                && m.operation.as_deref() == Some("Apply"))
    );

    cms.delete("from-kube-rs", &DeleteParams::default())
        .await
        .expect("delete");
    let seen = watch.await.unwrap();
    assert_eq!(
        seen.first().map(String::as_str),
        Some("apply from-kube-rs"),
        "{seen:?}"
    );
    assert_eq!(
        seen.last().map(String::as_str),
        Some("delete from-kube-rs"),
        "{seen:?}"
    );
    assert!(cms.get_opt("from-kube-rs").await.unwrap().is_none());
    let _ = futures::stream::iter([0]).next().await;
    drop(s);
}

/// DESIGN invariant 3: in one process, kube-rs reaches the API server
/// through its router as a `tower::Service` (no socket), as a named user
/// that RBAC authorizes like any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_in_process_through_the_router() {
    let dir = tempfile::tempdir().unwrap();
    let store: std::sync::Arc<dyn berth_kv::Store> =
        std::sync::Arc::new(berth_kv::memory::MemoryStore::new());
    let plane = berth_apiserver::start(
        store,
        berth_apiserver::Config {
            dir: dir.path().join("server"),
            bind: "127.0.0.1:0".parse().unwrap(),
            tls_sans: Vec::new(),
            kubeconfig: None,
            token_file: None,
            compaction_interval: None,
            service_cluster_ip_range: Default::default(),
            service_node_port_range: Default::default(),
            advertise_address: None,
        },
    )
    .await
    .expect("control plane");
    let as_user = |name: &str, groups: &[&str]| {
        let user = berth_apiserver::auth::authn::UserInfo {
            username: name.to_owned(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            ..Default::default()
        };
        kube::Client::new(
            berth_apiserver::server::in_process(plane.api.clone(), user),
            "default",
        )
    };
    let scheduler = as_user("system:kube-scheduler", &["system:authenticated"]);
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(scheduler.clone());
    assert!(
        nodes
            .list(&ListParams::default())
            .await
            .expect("the scheduler lists nodes")
            .items
            .is_empty()
    );
    let cms: Api<ConfigMap> = Api::namespaced(scheduler, "default");
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some("nope".into());
    match cms.create(&PostParams::default(), &cm).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403, "{status:?}"),
        other => panic!("the scheduler may not create ConfigMaps: {other:?}"),
    }
    let admin = as_user("system:admin", &["system:masters", "system:authenticated"]);
    let cms: Api<ConfigMap> = Api::namespaced(admin, "default");
    cm.metadata.name = Some("in-process".into());
    let made = cms
        .create(&PostParams::default(), &cm)
        .await
        .expect("create in process");
    assert!(made.metadata.resource_version.is_some());
    let ns: Api<Namespace> = Api::all(as_user("system:admin", &["system:masters"]));
    assert!(ns.get("kube-system").await.is_ok());
}
