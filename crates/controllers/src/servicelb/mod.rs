//! berth's built-in service load balancer (what k3s's ServiceLB gives a
//! cluster without a cloud): a Service of type LoadBalancer is served on
//! the addresses of the Ready nodes, at its own port, by each node's
//! service proxy; this controller (kube's `service-controller` account)
//! writes those addresses into `status.loadBalancer.ingress` and clears
//! the status of a Service that is no longer a LoadBalancer. Services
//! with a `loadBalancerClass` belong to another implementation.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Service};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::Store;
use serde_json::{Value, json};

use crate::Clients;
use crate::util::informer::Informer;
use crate::util::queue::WorkQueue;
use crate::util::queue_metrics::QueueMetrics;
use crate::util::workers::{Next, spawn_workers};

/// The ServiceAccount it acts as.
pub const ACCOUNT: &str = "service-controller";

/// Starts the controller; it runs until the process ends.
/// `queues`: where its work queue (`service`) reports.
pub fn spawn(clients: &Clients, queues: &QueueMetrics) {
    tokio::spawn(run(clients(ACCOUNT), queues.clone()));
}

/// The Ready nodes' InternalIPs (ExternalIP when there is one), sorted.
pub fn node_addresses(nodes: &[Arc<Node>]) -> Vec<String> {
    let mut out: Vec<String> = nodes
        .iter()
        .filter(|n| {
            n.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
                && !n
                    .spec
                    .as_ref()
                    .and_then(|s| s.unschedulable)
                    .unwrap_or(false)
        })
        .filter_map(|n| {
            let addrs = n.status.as_ref()?.addresses.as_ref()?;
            addrs
                .iter()
                .find(|a| a.type_ == "ExternalIP")
                .or_else(|| addrs.iter().find(|a| a.type_ == "InternalIP"))
                .map(|a| a.address.clone())
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The `status.loadBalancer` `svc` should have given the node addresses
/// (`None`: not this controller's Service).
pub fn desired(svc: &Service, addresses: &[String]) -> Option<Value> {
    let spec = svc.spec.as_ref()?;
    if spec.load_balancer_class.is_some() {
        return None;
    }
    if spec.type_.as_deref() != Some("LoadBalancer") {
        return Some(json!({}));
    }
    let ingress: Vec<Value> = addresses
        .iter()
        .map(|ip| json!({"ip": ip, "ipMode": "VIP"}))
        .collect();
    Some(if ingress.is_empty() {
        json!({})
    } else {
        json!({"ingress": ingress})
    })
}

async fn run(client: kube::Client, queues: QueueMetrics) {
    let queue: WorkQueue<String> = WorkQueue::named("service", &queues);
    let q = queue.clone();
    let services = Informer::<Service>::spawn(
        Api::all(client.clone()),
        Arc::new(move |old, new| {
            if let Some(s) = new.or(old) {
                q.add(format!(
                    "{}/{}",
                    s.namespace().unwrap_or_default(),
                    s.name_any()
                ));
            }
        }),
    );
    let svc_store = services.store();
    let q = queue.clone();
    let for_nodes = svc_store.clone();
    let nodes = Informer::<Node>::spawn(
        Api::all(client.clone()),
        Arc::new(move |_, _| {
            // node addresses or readiness changed: every LoadBalancer again
            for s in for_nodes.state() {
                if s.spec.as_ref().and_then(|p| p.type_.as_deref()) == Some("LoadBalancer") {
                    q.add(format!(
                        "{}/{}",
                        s.namespace().unwrap_or_default(),
                        s.name_any()
                    ));
                }
            }
        }),
    );
    let node_store = nodes.store();
    services.ready().await;
    nodes.ready().await;
    spawn_workers("service-controller", queue, 2, move |k: String| {
        let (svcs, nodes, client) = (svc_store.clone(), node_store.clone(), client.clone());
        async move { sync(&k, &svcs, &nodes, &client).await }
    });
    let _keep = (services, nodes);
    std::future::pending::<()>().await;
}

async fn sync(
    k: &str,
    services: &Store<Service>,
    nodes: &Store<Node>,
    client: &kube::Client,
) -> Result<Next, kube::Error> {
    let Some((ns, name)) = k.split_once('/') else {
        return Ok(Next::Done);
    };
    let Some(svc) = services
        .state()
        .into_iter()
        .find(|s| s.namespace().as_deref() == Some(ns) && s.name_any() == name)
    else {
        return Ok(Next::Done);
    };
    let Some(want) = desired(&svc, &node_addresses(&nodes.state())) else {
        return Ok(Next::Done);
    };
    let have = svc
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .map(|lb| serde_json::to_value(lb).unwrap_or_default())
        .unwrap_or_else(|| json!({}));
    if have == want {
        return Ok(Next::Done);
    }
    let api: Api<Service> = Api::namespaced(client.clone(), ns);
    // a merge patch replaces the ingress list as a whole
    let patch =
        json!({"status": {"loadBalancer": if want == json!({}) { Value::Null } else { want }}});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(Next::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, ip: &str, ready: bool) -> Arc<Node> {
        Arc::new(
            serde_json::from_value(json!({"metadata": {"name": name},
                "status": {"addresses": [{"type": "InternalIP", "address": ip}],
                           "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}}))
            .unwrap(),
        )
    }

    #[test]
    fn load_balancers_get_the_ready_nodes() {
        let nodes = [
            node("b", "198.18.1.2", true),
            node("a", "198.18.1.1", true),
            node("c", "198.18.1.3", false),
        ];
        let addrs = node_addresses(&nodes);
        assert_eq!(addrs, ["198.18.1.1", "198.18.1.2"]);
        let lb: Service =
            serde_json::from_value(json!({"spec": {"type": "LoadBalancer"}})).unwrap();
        assert_eq!(
            desired(&lb, &addrs),
            Some(
                json!({"ingress": [{"ip": "198.18.1.1", "ipMode": "VIP"}, {"ip": "198.18.1.2", "ipMode": "VIP"}]})
            )
        );
        let plain: Service =
            serde_json::from_value(json!({"spec": {"type": "ClusterIP"}})).unwrap();
        assert_eq!(desired(&plain, &addrs), Some(json!({})));
        let other: Service = serde_json::from_value(
            json!({"spec": {"type": "LoadBalancer", "loadBalancerClass": "x.example/lb"}}),
        )
        .unwrap();
        assert_eq!(desired(&other, &addrs), None);
    }
}
