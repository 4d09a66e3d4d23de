//! The `kube-dns` Service `berth server` keeps in `kube-system`: the
//! cluster DNS's well-known ClusterIP (what the kubelet's `--cluster-dns`
//! gives pods), CoreDNS's labels and ports, no selector, and an
//! EndpointSlice of its own pointing at the node agent's DNS server (the
//! pods' gateway, port 53), so the service proxy carries the Service's
//! address there. Re-applied at every start (server-side apply).

use std::net::IpAddr;

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, Patch, PatchParams};

/// The field manager (and the slice's `managed-by`).
const MANAGER: &str = "berth-server";
/// The Service's namespace and name.
const NAMESPACE: &str = "kube-system";
const NAME: &str = "kube-dns";

/// The Service's desired state.
pub fn service(cluster_ip: IpAddr) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": NAME,
            "namespace": NAMESPACE,
            "labels": {
                "k8s-app": "kube-dns",
                "kubernetes.io/cluster-service": "true",
                "kubernetes.io/name": "CoreDNS",
            },
        },
        "spec": {
            "clusterIP": cluster_ip.to_string(),
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
            ],
        },
    })
}

/// The slice pointing at `node`'s DNS server at `addr`.
pub fn slice(node: &str, addr: IpAddr) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": NAME,
            "namespace": NAMESPACE,
            "labels": {
                "kubernetes.io/service-name": NAME,
                "endpointslice.kubernetes.io/managed-by": MANAGER,
                "k8s-app": "kube-dns",
            },
        },
        "addressType": "IPv4",
        "endpoints": [{
            "addresses": [addr.to_string()],
            "conditions": {"ready": true, "serving": true, "terminating": false},
            "nodeName": node,
        }],
        "ports": [
            {"name": "dns", "port": 53, "protocol": "UDP"},
            {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
        ],
    })
}

/// Applies the Service and its slice with `client` (an administrator).
pub async fn ensure(
    client: kube::Client,
    cluster_ip: IpAddr,
    node: &str,
    addr: IpAddr,
) -> Result<()> {
    let pp = PatchParams::apply(MANAGER).force();
    Api::<Service>::namespaced(client.clone(), NAMESPACE)
        .patch(NAME, &pp, &Patch::Apply(service(cluster_ip)))
        .await
        .with_context(|| format!("apply the {NAMESPACE}/{NAME} Service at {cluster_ip}"))?;
    Api::<EndpointSlice>::namespaced(client, NAMESPACE)
        .patch(NAME, &pp, &Patch::Apply(slice(node, addr)))
        .await
        .with_context(|| format!("apply the {NAMESPACE}/{NAME} EndpointSlice ({addr})"))?;
    Ok(())
}
