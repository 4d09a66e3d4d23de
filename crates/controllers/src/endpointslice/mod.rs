//! The EndpointSlice and Endpoints controllers (kube's
//! `endpointslice-controller` and `endpoint-controller`, acting as their
//! ServiceAccounts): every Service with a selector gets EndpointSlices
//! (label `kubernetes.io/service-name`, owned by the Service) and an
//! Endpoints object listing its pods, kept current as pods come, go and
//! change readiness. [`plan`] decides the content.

pub mod plan;

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, PostParams};
use kube::runtime::reflector::Store;

use crate::Clients;
use crate::util::informer::Informer;
use crate::util::owner::controller_ref;
use crate::util::queue::WorkQueue;
use crate::util::queue_metrics::QueueMetrics;
use crate::util::selector::map_matches;
use crate::util::workers::{Next, spawn_workers};

/// The slices controller's ServiceAccount.
pub const SLICES: &str = "endpointslice-controller";
/// The Endpoints controller's ServiceAccount.
pub const ENDPOINTS: &str = "endpoint-controller";
/// Label: the Service a slice belongs to.
pub const SERVICE_NAME: &str = "kubernetes.io/service-name";
/// Label: who manages a slice.
pub const MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
/// This controller's value of [`MANAGED_BY`].
pub const CONTROLLER: &str = "endpointslice-controller.k8s.io";

/// Starts both controllers; they run until the process ends.
/// `queues`: where its work queue (`endpoint_slice`) reports.
pub fn spawn(clients: &Clients, queues: &QueueMetrics) {
    let slices = clients(SLICES);
    let endpoints = clients(ENDPOINTS);
    tokio::spawn(run(slices, endpoints, queues.clone()));
}

fn key(ns: &str, name: &str) -> String {
    format!("{ns}/{name}")
}

async fn run(slices_client: kube::Client, endpoints_client: kube::Client, queues: QueueMetrics) {
    let queue: WorkQueue<String> = WorkQueue::named("endpoint_slice", &queues);
    let q = queue.clone();
    let services = Informer::<Service>::spawn(
        Api::all(slices_client.clone()),
        Arc::new(move |old, new| {
            if let Some(s) = new.or(old) {
                q.add(key(&s.namespace().unwrap_or_default(), &s.name_any()));
            }
        }),
    );
    let svc_store = services.store();
    let q = queue.clone();
    let for_pods = svc_store.clone();
    let pods = Informer::<Pod>::spawn(
        Api::all(slices_client.clone()),
        Arc::new(move |old, new| {
            // every Service that selects the pod before or after the change
            for p in [old, new].into_iter().flatten() {
                let ns = p.namespace().unwrap_or_default();
                let labels = p.labels();
                for s in for_pods.state() {
                    if s.namespace().as_deref() != Some(ns.as_str()) {
                        continue;
                    }
                    let selects = s
                        .spec
                        .as_ref()
                        .and_then(|sp| sp.selector.as_ref())
                        .is_some_and(|sel| !sel.is_empty() && map_matches(sel, labels));
                    if selects {
                        q.add(key(&ns, &s.name_any()));
                    }
                }
            }
        }),
    );
    let pod_store = pods.store();
    services.ready().await;
    pods.ready().await;
    spawn_workers("endpointslice-controller", queue, 4, move |k: String| {
        let (svc_store, pod_store) = (svc_store.clone(), pod_store.clone());
        let (sc, ec) = (slices_client.clone(), endpoints_client.clone());
        async move { sync(&k, &svc_store, &pod_store, &sc, &ec).await }
    });
    let _keep = (services, pods);
    std::future::pending::<()>().await;
}

async fn sync(
    k: &str,
    services: &Store<Service>,
    pods: &Store<Pod>,
    slices_client: &kube::Client,
    endpoints_client: &kube::Client,
) -> Result<Next, kube::Error> {
    let Some((ns, name)) = k.split_once('/') else {
        return Ok(Next::Done);
    };
    let Some(svc) = services
        .state()
        .into_iter()
        .find(|s| s.namespace().as_deref() == Some(ns) && s.name_any() == name)
    else {
        // gone: its slices and Endpoints go with it (owner references, and
        // the Endpoints object by name)
        let eps: Api<Endpoints> = Api::namespaced(endpoints_client.clone(), ns);
        let _ = eps.delete(name, &DeleteParams::default()).await;
        return Ok(Next::Done);
    };
    if svc.metadata.deletion_timestamp.is_some() || !plan::managed(&svc) {
        return Ok(Next::Done);
    }
    let all: Vec<Pod> = pods
        .state()
        .into_iter()
        .filter(|p| p.namespace().as_deref() == Some(ns))
        .map(|p| (*p).clone())
        .collect();
    sync_slices(&svc, &all, slices_client).await?;
    sync_endpoints(&svc, &all, endpoints_client).await?;
    Ok(Next::Done)
}

fn slice_labels(svc: &Service) -> BTreeMap<String, String> {
    let mut l: BTreeMap<String, String> = svc
        .labels()
        .iter()
        .filter(|(k, _)| k.as_str() != SERVICE_NAME && k.as_str() != MANAGED_BY)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    l.insert(SERVICE_NAME.into(), svc.name_any());
    l.insert(MANAGED_BY.into(), CONTROLLER.into());
    if svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None") {
        l.insert("service.kubernetes.io/headless".into(), String::new());
    }
    l
}

async fn sync_slices(
    svc: &Service,
    pods: &[Pod],
    client: &kube::Client,
) -> Result<(), kube::Error> {
    let ns = svc.namespace().unwrap_or_default();
    let api: Api<EndpointSlice> = Api::namespaced(client.clone(), &ns);
    let lp = ListParams::default().labels(&format!(
        "{SERVICE_NAME}={},{MANAGED_BY}={CONTROLLER}",
        svc.name_any()
    ));
    let mut existing = api.list(&lp).await?.items;
    existing.sort_by_key(|s| s.name_any());
    let desired = plan::slices(svc, pods);
    let labels = slice_labels(svc);
    let owner = controller_ref("v1", "Service", &svc.metadata);
    for (i, want) in desired.iter().enumerate() {
        match existing.get(i) {
            Some(have)
                if have.endpoints == want.endpoints
                    && have.ports.as_deref().unwrap_or_default() == want.ports.as_slice()
                    && have.metadata.labels.as_ref() == Some(&labels) => {}
            Some(have) => {
                let mut next = have.clone();
                next.endpoints = want.endpoints.clone();
                next.ports = Some(want.ports.clone());
                next.metadata.labels = Some(labels.clone());
                api.replace(&have.name_any(), &PostParams::default(), &next)
                    .await?;
            }
            None => {
                let slice = EndpointSlice {
                    metadata: ObjectMeta {
                        generate_name: Some(format!("{}-", svc.name_any())),
                        namespace: Some(ns.clone()),
                        labels: Some(labels.clone()),
                        owner_references: Some(vec![owner.clone()]),
                        ..Default::default()
                    },
                    address_type: "IPv4".into(),
                    endpoints: want.endpoints.clone(),
                    ports: Some(want.ports.clone()),
                };
                api.create(&PostParams::default(), &slice).await?;
            }
        }
    }
    for extra in existing.iter().skip(desired.len()) {
        match api
            .delete(&extra.name_any(), &DeleteParams::default())
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn sync_endpoints(
    svc: &Service,
    pods: &[Pod],
    client: &kube::Client,
) -> Result<(), kube::Error> {
    let ns = svc.namespace().unwrap_or_default();
    let api: Api<Endpoints> = Api::namespaced(client.clone(), &ns);
    let subsets = plan::subsets(svc, pods);
    let mut labels: BTreeMap<String, String> = svc.labels().clone();
    if svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None") {
        labels.insert("service.kubernetes.io/headless".into(), String::new());
    }
    let subsets_opt = (!subsets.is_empty()).then_some(subsets);
    match api.get_opt(&svc.name_any()).await? {
        Some(have)
            if have.subsets == subsets_opt
                && have.metadata.labels.clone().unwrap_or_default() == labels =>
        {
            Ok(())
        }
        Some(mut have) => {
            have.subsets = subsets_opt;
            have.metadata.labels = Some(labels);
            api.replace(&svc.name_any(), &PostParams::default(), &have)
                .await
                .map(drop)
        }
        None => {
            let e = Endpoints {
                metadata: ObjectMeta {
                    name: Some(svc.name_any()),
                    namespace: Some(ns),
                    labels: Some(labels),
                    ..Default::default()
                },
                subsets: subsets_opt,
            };
            match api.create(&PostParams::default(), &e).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(x)) if x.code == 409 => Ok(()),
                Err(x) => Err(x),
            }
        }
    }
}
