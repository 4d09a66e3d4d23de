//! The EndpointSlice and Endpoints controllers against a real API server:
//! a Service's pods appear in its slice and Endpoints as they get an
//! address, follow their readiness, and leave when deleted.

mod support;

use support::eventually;

use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

async fn set_status(pods: &Api<Pod>, name: &str, ip: &str, ready: bool) {
    let status = json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("pod status");
}

/// (address, ready) of the Service's slices' endpoints, sorted.
async fn slice_endpoints(slices: &Api<EndpointSlice>) -> Vec<(String, bool)> {
    let lp = ListParams::default().labels("kubernetes.io/service-name=web");
    let mut out: Vec<(String, bool)> = slices
        .list(&lp)
        .await
        .expect("slices")
        .items
        .into_iter()
        .flat_map(|s| s.endpoints)
        .map(|e| {
            (
                e.addresses[0].clone(),
                e.conditions.and_then(|c| c.ready).unwrap_or(false),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slices_and_endpoints_follow_the_pods() {
    let plane = support::Plane::start().await;
    let admin = plane.admin();
    berth_controllers::endpointslice::spawn(&plane.controller_clients(), &Default::default());
    support::namespace(&admin, "eps").await;
    let services: Api<Service> = Api::namespaced(admin.clone(), "eps");
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "eps");
    let slices: Api<EndpointSlice> = Api::namespaced(admin.clone(), "eps");
    let endpoints: Api<Endpoints> = Api::namespaced(admin.clone(), "eps");
    let svc: Service = serde_json::from_value(json!({"metadata": {"name": "web", "labels": {"tier": "front"}},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}))
    .unwrap();
    services
        .create(&PostParams::default(), &svc)
        .await
        .expect("service");
    // an empty placeholder first, owned by the Service
    let placeholder = eventually("a placeholder slice", || async {
        let l = slices.list(&ListParams::default()).await.ok()?.items;
        l.into_iter().next()
    })
    .await;
    assert!(placeholder.endpoints.is_empty());
    let labels = placeholder.metadata.labels.clone().unwrap();
    assert_eq!(labels["kubernetes.io/service-name"], "web");
    assert_eq!(
        labels["endpointslice.kubernetes.io/managed-by"],
        "endpointslice-controller.k8s.io"
    );
    assert_eq!(labels["tier"], "front");
    let owner = &placeholder.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("Service", "web", Some(true))
    );
    for name in ["a", "b"] {
        let p: Pod = serde_json::from_value(json!({"metadata": {"name": name, "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "busybox", "ports": [{"name": "http", "containerPort": 8080}]}]}}))
        .unwrap();
        pods.create(&PostParams::default(), &p).await.expect("pod");
    }
    set_status(&pods, "a", "198.18.0.2", true).await;
    set_status(&pods, "b", "198.18.0.3", false).await;
    eventually("both pods in the slice", || async {
        let e = slice_endpoints(&slices).await;
        (e == [
            ("198.18.0.2".to_owned(), true),
            ("198.18.0.3".to_owned(), false),
        ])
        .then_some(())
    })
    .await;
    let s = slices.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(s.len(), 1, "the placeholder was filled, not joined");
    assert_eq!(s[0].ports.as_ref().unwrap()[0].port, Some(8080));
    let ep = eventually("the Endpoints object", || async {
        let e = endpoints.get_opt("web").await.ok()??;
        let sub = e.subsets.as_ref()?.first()?.clone();
        (sub.addresses.as_ref()?.len() == 1 && sub.not_ready_addresses.as_ref()?.len() == 1)
            .then_some(sub)
    })
    .await;
    assert_eq!(ep.addresses.unwrap()[0].ip, "198.18.0.2");
    assert_eq!(ep.ports.unwrap()[0].port, 8080);
    // readiness changes and deletions follow
    set_status(&pods, "b", "198.18.0.3", true).await;
    eventually("b ready", || async {
        let e = slice_endpoints(&slices).await;
        e.iter().all(|(_, r)| *r).then_some(())
    })
    .await;
    pods.delete(
        "a",
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        },
    )
    .await
    .expect("delete a");
    eventually("a gone", || async {
        (slice_endpoints(&slices).await == [("198.18.0.3".to_owned(), true)]).then_some(())
    })
    .await;
}
