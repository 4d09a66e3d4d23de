//! berth's built-in Ingress controller (k3s ships Traefik; berth serves
//! Ingresses itself): `networking.k8s.io/v1` Ingresses of the class
//! `berth` (made at start, the default class) are served on the node's
//! HTTP and HTTPS ports — host and path rules and default backends
//! ([`model`]), TLS from the Ingresses' Secrets by server name ([`tls`]),
//! requests forwarded to the Services' ClusterIPs ([`serve`]) — and their
//! `status.loadBalancer` lists the Ready nodes' addresses. It acts as the
//! ServiceAccount `kube-system/ingress-controller`.
#![forbid(unsafe_code)]

pub mod model;
pub mod serve;
pub mod tls;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Secret, Service};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Resource, ResourceExt};
use serde_json::json;
use tokio::sync::Notify;

/// The ServiceAccount it acts as.
pub const ACCOUNT: &str = "ingress-controller";
/// The class it makes and serves.
pub const CLASS: &str = "berth";

/// Where it listens (`None`: that port is off).
#[derive(Clone, Debug)]
pub struct Settings {
    /// HTTP (`0.0.0.0:80` by default).
    pub http: Option<SocketAddr>,
    /// HTTPS (`0.0.0.0:443` by default).
    pub https: Option<SocketAddr>,
}

async fn watch<K>(api: Api<K>, writer: reflector::store::Writer<K>, wake: Arc<Notify>)
where
    K: kube::Resource
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(|o: &mut K| o.meta_mut().managed_fields = None)
        .reflect(writer);
    futures::pin_mut!(stream);
    while stream.next().await.is_some() {
        wake.notify_one();
    }
}

/// Makes the `berth` IngressClass (the default class) unless it exists.
async fn ensure_class(client: &kube::Client) {
    let api: Api<IngressClass> = Api::all(client.clone());
    if matches!(api.get_opt(CLASS).await, Ok(Some(_))) {
        return;
    }
    let class: Result<IngressClass, _> = serde_json::from_value(json!({
        "metadata": {"name": CLASS, "annotations": {model::DEFAULT_CLASS: "true"}},
        "spec": {"controller": model::CONTROLLER}
    }));
    if let Ok(class) = class
        && let Err(e) = api.create(&PostParams::default(), &class).await
    {
        tracing::warn!(error = %e, "create the berth IngressClass");
    }
}

/// The Ready nodes' addresses, as `status.loadBalancer.ingress`.
fn node_ingress(nodes: &[Arc<Node>]) -> serde_json::Value {
    let mut ips: Vec<String> = nodes
        .iter()
        .filter(|n| {
            n.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .filter_map(|n| {
            n.status
                .as_ref()?
                .addresses
                .as_ref()?
                .iter()
                .find(|a| a.type_ == "InternalIP")
                .map(|a| a.address.clone())
        })
        .collect();
    ips.sort();
    ips.dedup();
    json!(
        ips.into_iter()
            .map(|ip| json!({"ip": ip}))
            .collect::<Vec<_>>()
    )
}

/// The problems already reported as events, by Ingress uid.
type Reported = HashMap<String, Vec<(String, String)>>;

/// Publishes a Warning event for each new problem of `ing` (each once,
/// until it goes and comes back).
async fn report(
    recorder: &Recorder,
    reported: &mut Reported,
    ing: &Ingress,
    services: &[Service],
    secrets: &[Secret],
) {
    let Some(uid) = ing.metadata.uid.clone() else {
        return;
    };
    let now = model::problems(ing, services, secrets);
    let before = reported.insert(uid, now.clone()).unwrap_or_default();
    for (reason, note) in now.into_iter().filter(|p| !before.contains(p)) {
        let ev = Event {
            type_: EventType::Warning,
            reason: reason.clone(),
            note: Some(note),
            action: "Sync".into(),
            secondary: None,
        };
        if let Err(e) = recorder.publish(&ev, &ing.object_ref(&())).await {
            tracing::debug!(error = %e, reason, "ingress event not recorded");
        }
    }
}

/// Runs until the process ends: the listeners, the table kept current,
/// and the served Ingresses' status.
pub async fn run(client: kube::Client, settings: Settings) {
    ensure_class(&client).await;
    let table: Arc<RwLock<model::Table>> = Arc::default();
    let certs = match tls::Certs::new() {
        Ok(c) => Arc::new(c),
        Err(e) => {
            tracing::error!(error = %e, "ingress: no fallback certificate; HTTPS is off");
            return;
        }
    };
    if let Some(addr) = settings.http {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => {
                tokio::spawn(serve::http(l, table.clone()));
            }
            Err(e) => tracing::error!(%addr, error = %e, "ingress: cannot listen for HTTP"),
        }
    }
    if let Some(addr) = settings.https {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => {
                tokio::spawn(serve::https(l, table.clone(), certs.clone()));
            }
            Err(e) => tracing::error!(%addr, error = %e, "ingress: cannot listen for HTTPS"),
        }
    }
    let wake = Arc::new(Notify::new());
    let (ings, w1) = reflector::store::<Ingress>();
    let (classes, w2) = reflector::store::<IngressClass>();
    let (services, w3) = reflector::store::<Service>();
    let (secrets, w4) = reflector::store::<Secret>();
    let (nodes, w5) = reflector::store::<Node>();
    tokio::spawn(watch(Api::all(client.clone()), w1, wake.clone()));
    tokio::spawn(watch(Api::all(client.clone()), w2, wake.clone()));
    tokio::spawn(watch(Api::all(client.clone()), w3, wake.clone()));
    tokio::spawn(watch(Api::all(client.clone()), w4, wake.clone()));
    tokio::spawn(watch(Api::all(client.clone()), w5, wake.clone()));
    for ready in [
        ings.wait_until_ready().await,
        classes.wait_until_ready().await,
        services.wait_until_ready().await,
        secrets.wait_until_ready().await,
        nodes.wait_until_ready().await,
    ] {
        let _ = ready;
    }
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "berth-ingress-controller".into(),
            instance: None,
        },
    );
    let mut reported: Reported = HashMap::new();
    loop {
        reported.retain(|uid, _| {
            ings.state()
                .iter()
                .any(|i| i.metadata.uid.as_ref() == Some(uid))
        });
        let all_ings: Vec<Ingress> = ings.state().iter().map(|i| (**i).clone()).collect();
        let all_classes: Vec<IngressClass> =
            classes.state().iter().map(|c| (**c).clone()).collect();
        let all_services: Vec<Service> = services.state().iter().map(|s| (**s).clone()).collect();
        let all_secrets: Vec<Secret> = secrets.state().iter().map(|s| (**s).clone()).collect();
        let next = model::build(&all_ings, &all_classes, &all_services, &all_secrets);
        let changed = *table.read().unwrap_or_else(|p| p.into_inner()) != next;
        if changed {
            certs.set(&next.tls);
            *table.write().unwrap_or_else(|p| p.into_inner()) = next;
        }
        let lb = node_ingress(&nodes.state());
        for ing in all_ings.iter().filter(|i| model::serves(i, &all_classes)) {
            report(&recorder, &mut reported, ing, &all_services, &all_secrets).await;
            let have = ing
                .status
                .as_ref()
                .and_then(|s| s.load_balancer.as_ref())
                .and_then(|l| l.ingress.as_ref())
                .map(|i| serde_json::to_value(i).unwrap_or_default())
                .unwrap_or_else(|| json!([]));
            if have == lb {
                continue;
            }
            let api: Api<Ingress> =
                Api::namespaced(client.clone(), &ing.namespace().unwrap_or_default());
            let patch = json!({"status": {"loadBalancer": {"ingress": lb}}});
            if let Err(e) = api
                .patch_status(
                    &ing.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
            {
                tracing::debug!(error = %e, "ingress status");
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(30), wake.notified()).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
