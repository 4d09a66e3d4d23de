//! The ServiceAccount controller and the root CA publisher against the
//! API server in process.

mod support;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use support::{create, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_namespace_gets_the_root_ca_and_keeps_its_default_account() {
    let plane = support::Plane::start().await;
    let admin = plane.admin();
    // The cluster CA as the API server keeps it (ControlPlane::ca_pem).
    let ca = std::fs::read_to_string(plane.dir().join("server/pki/ca.crt")).expect("ca.crt");
    assert!(ca.contains("BEGIN CERTIFICATE"));
    let clients = plane.controller_clients();
    berth_controllers::serviceaccount::spawn_root_ca_publisher(&clients, ca.clone());
    berth_controllers::serviceaccount::spawn_service_accounts(&clients);

    let namespaces: Api<Namespace> = Api::all(admin.clone());
    create(&namespaces, json!({"metadata": {"name": "team"}})).await;
    for ns in ["default", "kube-system", "team"] {
        let maps: Api<ConfigMap> = Api::namespaced(admin.clone(), ns);
        eventually(&format!("kube-root-ca.crt in {ns}"), || async {
            maps.get_opt("kube-root-ca.crt")
                .await
                .unwrap()
                .and_then(|c| c.data)
                .is_some_and(|d| d.get("ca.crt") == Some(&ca))
        })
        .await;
    }
    // Tampered with: restored.
    let maps: Api<ConfigMap> = Api::namespaced(admin.clone(), "team");
    let mut cm = maps.get("kube-root-ca.crt").await.unwrap();
    cm.data = Some([("ca.crt".to_owned(), "nope".to_owned())].into());
    maps.replace("kube-root-ca.crt", &PostParams::default(), &cm)
        .await
        .expect("tamper");
    eventually("restored", || async {
        maps.get("kube-root-ca.crt").await.unwrap().data.unwrap()["ca.crt"] == ca
    })
    .await;
    // Deleted: recreated, as is the default ServiceAccount.
    maps.delete("kube-root-ca.crt", &DeleteParams::default())
        .await
        .expect("delete");
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), "team");
    accounts
        .delete("default", &DeleteParams::default())
        .await
        .expect("delete account");
    eventually("recreated", || async {
        maps.get_opt("kube-root-ca.crt").await.unwrap().is_some()
            && accounts.get_opt("default").await.unwrap().is_some()
    })
    .await;
}
