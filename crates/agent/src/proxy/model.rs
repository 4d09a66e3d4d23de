//! Services and EndpointSlices in, the proxy's Service ports out (pure):
//! each port of each Service with a ClusterIP or node port, with the
//! ready endpoints of its slices (the serving, terminating ones when none
//! is ready, as kube-proxy falls back), its affinity and traffic policy.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use berth_net::Proto;
use berth_net::services::{ServicePort, Services};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// The label naming a slice's Service.
const SERVICE_NAME: &str = "kubernetes.io/service-name";

/// The Service ports to program, by `namespace/name:port/proto`.
pub fn build<S, E>(services: &[S], slices: &[E], node: &str) -> Services
where
    S: Borrow<Service>,
    E: Borrow<EndpointSlice>,
{
    let mut by_service: BTreeMap<(String, String), Vec<&EndpointSlice>> = BTreeMap::new();
    for s in slices {
        let s = s.borrow();
        if s.address_type != "IPv4" {
            continue;
        }
        let (Some(ns), Some(svc)) = (
            s.metadata.namespace.clone(),
            s.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SERVICE_NAME))
                .cloned(),
        ) else {
            continue;
        };
        by_service.entry((ns, svc)).or_default().push(s);
    }
    let mut out = Services::new();
    for svc in services {
        let svc = svc.borrow();
        let Some(spec) = &svc.spec else { continue };
        if spec.type_.as_deref() == Some("ExternalName") {
            continue;
        }
        let ns = svc.metadata.namespace.clone().unwrap_or_default();
        let name = svc.metadata.name.clone().unwrap_or_default();
        let cluster_ip = spec
            .cluster_ip
            .as_deref()
            .and_then(|ip| ip.parse::<Ipv4Addr>().ok());
        let affinity = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
            spec.session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .and_then(|t| u32::try_from(t).ok())
                .unwrap_or(10800)
        });
        let local_only = spec.external_traffic_policy.as_deref() == Some("Local");
        // a LoadBalancer's addresses (its status, filled by the service
        // load balancer)
        let external_ips: Vec<Ipv4Addr> = if spec.type_.as_deref() == Some("LoadBalancer") {
            svc.status
                .as_ref()
                .and_then(|s| s.load_balancer.as_ref())
                .and_then(|lb| lb.ingress.as_ref())
                .into_iter()
                .flatten()
                .filter_map(|i| i.ip.as_deref()?.parse().ok())
                .collect()
        } else {
            Vec::new()
        };
        let slices = by_service
            .get(&(ns.clone(), name.clone()))
            .map(Vec::as_slice)
            .unwrap_or_default();
        for p in spec.ports.iter().flatten() {
            let proto = match p.protocol.as_deref().unwrap_or("TCP") {
                "TCP" => Proto::Tcp,
                "UDP" => Proto::Udp,
                _ => continue, // SCTP: not supported by the proxy yet
            };
            let node_port = p.node_port.and_then(|n| u16::try_from(n).ok());
            if cluster_ip.is_none() && node_port.is_none() && external_ips.is_empty() {
                continue; // headless: DNS only
            }
            let Ok(port) = u16::try_from(p.port) else {
                continue;
            };
            let pname = p.name.clone().unwrap_or_default();
            let (mut ready, mut fallback, mut local, mut local_fallback) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for s in slices {
                let Some(target) = s
                    .ports
                    .iter()
                    .flatten()
                    .find(|sp| {
                        sp.name.clone().unwrap_or_default() == pname
                            && sp.protocol.as_deref().unwrap_or("TCP")
                                == p.protocol.as_deref().unwrap_or("TCP")
                    })
                    .and_then(|sp| sp.port)
                    .and_then(|n| u16::try_from(n).ok())
                else {
                    continue;
                };
                for e in &s.endpoints {
                    let Some(ip) = e
                        .addresses
                        .first()
                        .and_then(|a| a.parse::<Ipv4Addr>().ok())
                        .filter(|ip| routable(*ip))
                    else {
                        continue;
                    };
                    let c = e.conditions.clone().unwrap_or_default();
                    let here = e.node_name.as_deref() == Some(node);
                    if c.ready.unwrap_or(true) {
                        ready.push((ip, target));
                        if here {
                            local.push((ip, target));
                        }
                    } else if c.serving.unwrap_or(false) && c.terminating.unwrap_or(false) {
                        fallback.push((ip, target));
                        if here {
                            local_fallback.push((ip, target));
                        }
                    }
                }
            }
            let pick = |mut main: Vec<(Ipv4Addr, u16)>, fb: Vec<(Ipv4Addr, u16)>| {
                if main.is_empty() {
                    main = fb;
                }
                main.sort();
                main.dedup();
                main
            };
            out.insert(
                format!("{ns}/{name}:{pname}/{proto}"),
                ServicePort {
                    name: format!("{ns}/{name}:{pname}"),
                    cluster_ip,
                    proto,
                    port,
                    node_port,
                    affinity_timeout: affinity,
                    local_only: local_only && (node_port.is_some() || !external_ips.is_empty()),
                    external_ips: external_ips.clone(),
                    endpoints: pick(ready, fallback),
                    local_endpoints: pick(local, local_fallback),
                },
            );
        }
    }
    out
}

/// Whether an endpoint address may be a DNAT target: never the node's
/// loopback, link-local (metadata services) or unspecified addresses, which
/// a hand-written EndpointSlice could otherwise point a Service at
/// (CVE-2021-25740).
fn routable(ip: Ipv4Addr) -> bool {
    !(ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || (ip.octets()[0] == 224 && ip.octets()[1] == 0 && ip.octets()[2] == 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(v: serde_json::Value) -> Service {
        serde_json::from_value(v).unwrap()
    }

    fn slice(eps: serde_json::Value) -> EndpointSlice {
        serde_json::from_value(json!({
            "metadata": {"name": "web-x", "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": eps
        }))
        .unwrap()
    }

    #[test]
    fn ports_get_their_ready_endpoints() {
        let s = svc(json!({"metadata": {"name": "web", "namespace": "default"},
            "spec": {"type": "NodePort", "clusterIP": "198.19.0.10", "sessionAffinity": "ClientIP",
                     "ports": [{"name": "http", "port": 80, "nodePort": 30080, "protocol": "TCP"}]}}));
        let sl = slice(json!([
            {"addresses": ["198.18.0.3"], "conditions": {"ready": true}, "nodeName": "n1"},
            {"addresses": ["198.18.0.2"], "conditions": {"ready": true}, "nodeName": "n2"},
            {"addresses": ["198.18.0.4"], "conditions": {"ready": false, "serving": false}}
        ]));
        let m = build(&[s], &[sl], "n1");
        let p = &m["default/web:http/tcp"];
        assert_eq!(p.cluster_ip, Some(Ipv4Addr::new(198, 19, 0, 10)));
        assert_eq!(p.node_port, Some(30080));
        assert_eq!(p.affinity_timeout, Some(10800));
        assert_eq!(
            p.endpoints,
            [
                (Ipv4Addr::new(198, 18, 0, 2), 8080),
                (Ipv4Addr::new(198, 18, 0, 3), 8080)
            ]
        );
        assert_eq!(p.local_endpoints, [(Ipv4Addr::new(198, 18, 0, 3), 8080)]);
    }

    #[test]
    fn loopback_and_link_local_endpoints_are_never_targets() {
        let s = svc(json!({"metadata": {"name": "web", "namespace": "default"},
            "spec": {"clusterIP": "198.19.0.10", "ports": [{"name": "http", "port": 80}]}}));
        let sl = slice(json!([
            {"addresses": ["127.0.0.1"], "conditions": {"ready": true}},
            {"addresses": ["169.254.169.254"], "conditions": {"ready": true}},
            {"addresses": ["0.0.0.0"], "conditions": {"ready": true}},
            {"addresses": ["224.0.0.5"], "conditions": {"ready": true}},
            {"addresses": ["198.18.0.7"], "conditions": {"ready": true}}
        ]));
        let m = build(&[s], &[sl], "n1");
        assert_eq!(
            m["default/web:http/tcp"].endpoints,
            [(Ipv4Addr::new(198, 18, 0, 7), 8080)]
        );
    }

    #[test]
    fn terminating_endpoints_serve_when_none_is_ready_and_headless_is_skipped() {
        let s = svc(json!({"metadata": {"name": "web", "namespace": "default"},
            "spec": {"clusterIP": "198.19.0.10", "ports": [{"name": "http", "port": 80}]}}));
        let sl = slice(json!([
            {"addresses": ["198.18.0.5"], "conditions": {"ready": false, "serving": true, "terminating": true}}
        ]));
        let m = build(&[s], std::slice::from_ref(&sl), "n1");
        assert_eq!(
            m["default/web:http/tcp"].endpoints,
            [(Ipv4Addr::new(198, 18, 0, 5), 8080)]
        );
        let headless = svc(json!({"metadata": {"name": "web", "namespace": "default"},
            "spec": {"clusterIP": "None", "ports": [{"name": "http", "port": 80}]}}));
        assert!(build(&[headless], std::slice::from_ref(&sl), "n1").is_empty());
        let ext = svc(json!({"metadata": {"name": "web", "namespace": "default"},
            "spec": {"type": "ExternalName", "externalName": "example.invalid"}}));
        assert!(build(&[ext], &[sl], "n1").is_empty());
    }
}
