//! Services, EndpointSlices and Pods in, the cluster zone out (pure), as
//! the Kubernetes DNS specification (schema 1.1.0) and CoreDNS's
//! `kubernetes` plugin give it (`<zone>` = the cluster domain):
//!
//! - a Service with a ClusterIP: `<svc>.<ns>.svc.<zone>` A → the ClusterIP;
//!   `_<port>._<proto>.<svc>.<ns>.svc.<zone>` SRV 0 100 <port> → the
//!   Service's name, for each named port; the ClusterIP's PTR → the name;
//! - a headless Service: the name's A → each ready endpoint address (all
//!   of them with `publishNotReadyAddresses`); each endpoint's own name
//!   `<hostname>.<svc>.<ns>.svc.<zone>` (its `hostname`, else its address
//!   with dashes, as CoreDNS names it) A → its address, PTR back; SRV per
//!   named port → each endpoint's name, weight 100 / count as CoreDNS;
//! - an ExternalName Service: the name's CNAME → `externalName`;
//! - a Pod with an address: `<a-b-c-d>.<ns>.pod.<zone>` A → the address
//!   (CoreDNS's `pods verified`: only addresses of existing pods).

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use berth_net::cluster_dns::{Rdata, Zone};
use berth_net::dns_io::ptr_name;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// The label naming a slice's Service.
const SERVICE_NAME: &str = "kubernetes.io/service-name";

/// `198.18.0.5` → `198-18-0-5`.
pub fn dashed(ip: Ipv4Addr) -> String {
    ip.to_string().replace('.', "-")
}

/// The zone of `domain` for these objects.
pub fn build<S, E, P>(services: &[S], slices: &[E], pods: &[P], domain: &str) -> Zone
where
    S: Borrow<Service>,
    E: Borrow<EndpointSlice>,
    P: Borrow<Pod>,
{
    let mut z = Zone::new(domain);
    let mut by_service: BTreeMap<(&str, &str), Vec<&EndpointSlice>> = BTreeMap::new();
    for s in slices {
        let s = s.borrow();
        if s.address_type != "IPv4" {
            continue;
        }
        let (Some(ns), Some(svc)) = (
            s.metadata.namespace.as_deref(),
            s.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SERVICE_NAME))
                .map(String::as_str),
        ) else {
            continue;
        };
        by_service.entry((ns, svc)).or_default().push(s);
    }
    for svc in services {
        let svc = svc.borrow();
        let (Some(spec), Some(ns), Some(name)) = (
            svc.spec.as_ref(),
            svc.metadata.namespace.as_deref(),
            svc.metadata.name.as_deref(),
        ) else {
            continue;
        };
        let base = format!("{name}.{ns}.svc.{domain}");
        if spec.type_.as_deref() == Some("ExternalName") {
            if let Some(target) = spec.external_name.as_deref().filter(|t| !t.is_empty()) {
                z.insert(&base, Rdata::Cname(target.trim_end_matches('.').to_owned()));
            }
            continue;
        }
        let cluster_ips: Vec<&str> = match &spec.cluster_ips {
            Some(ips) if !ips.is_empty() => ips.iter().map(String::as_str).collect(),
            _ => spec.cluster_ip.as_deref().into_iter().collect(),
        };
        if cluster_ips.contains(&"None") {
            let slices = by_service
                .get(&(ns, name))
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            headless(
                &mut z,
                &base,
                spec.publish_not_ready_addresses == Some(true),
                slices,
            );
            continue;
        }
        let ips: Vec<Ipv4Addr> = cluster_ips
            .iter()
            .filter_map(|ip| ip.parse().ok())
            .collect();
        if ips.is_empty() {
            continue;
        }
        for ip in ips {
            z.insert(&base, Rdata::A(ip));
            z.insert(&ptr_name(ip), Rdata::Ptr(base.clone()));
        }
        for p in spec.ports.iter().flatten() {
            let (Some(pname), Ok(port)) = (
                p.name.as_deref().filter(|n| !n.is_empty()),
                u16::try_from(p.port),
            ) else {
                continue;
            };
            let proto = p.protocol.as_deref().unwrap_or("TCP").to_ascii_lowercase();
            z.insert(
                &format!("_{pname}._{proto}.{base}"),
                Rdata::Srv {
                    priority: 0,
                    weight: 100,
                    port,
                    target: base.clone(),
                },
            );
        }
    }
    for p in pods {
        let p = p.borrow();
        let Some(ns) = p.metadata.namespace.as_deref() else {
            continue;
        };
        let ips = p.status.as_ref().map(|s| {
            let mut v: Vec<&str> = s.pod_ip.as_deref().into_iter().collect();
            v.extend(s.pod_ips.iter().flatten().map(|i| i.ip.as_str()));
            v
        });
        for ip in ips.into_iter().flatten() {
            if let Ok(ip) = ip.parse::<Ipv4Addr>() {
                z.insert(&format!("{}.{ns}.pod.{domain}", dashed(ip)), Rdata::A(ip));
            }
        }
    }
    z
}

/// A headless Service's records from its slices.
fn headless(z: &mut Zone, base: &str, all: bool, slices: &[&EndpointSlice]) {
    // (endpoint name, address), and the slice's named ports
    let mut srv: BTreeMap<(String, String), Vec<(u16, String)>> = BTreeMap::new();
    for s in slices {
        let ports: Vec<(String, String, u16)> = s
            .ports
            .iter()
            .flatten()
            .filter_map(|p| {
                Some((
                    p.name.clone().filter(|n| !n.is_empty())?,
                    p.protocol.as_deref().unwrap_or("TCP").to_ascii_lowercase(),
                    u16::try_from(p.port?).ok()?,
                ))
            })
            .collect();
        for e in &s.endpoints {
            let ready = e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
            if !ready && !all {
                continue;
            }
            for ip in e
                .addresses
                .iter()
                .filter_map(|a| a.parse::<Ipv4Addr>().ok())
            {
                let host = e
                    .hostname
                    .clone()
                    .filter(|h| !h.is_empty())
                    .unwrap_or_else(|| dashed(ip));
                let own = format!("{host}.{base}");
                z.insert(base, Rdata::A(ip));
                z.insert(&own, Rdata::A(ip));
                z.insert(&ptr_name(ip), Rdata::Ptr(own.clone()));
                for (name, proto, port) in &ports {
                    srv.entry((name.clone(), proto.clone()))
                        .or_default()
                        .push((*port, own.clone()));
                }
            }
        }
    }
    for ((name, proto), targets) in srv {
        let n = u16::try_from(targets.len()).unwrap_or(u16::MAX).max(1);
        let weight = (100 / n).max(1);
        for (port, target) in targets {
            z.insert(
                &format!("_{name}._{proto}.{base}"),
                Rdata::Srv {
                    priority: 0,
                    weight,
                    port,
                    target,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(ns: &str, name: &str, spec: serde_json::Value) -> Service {
        serde_json::from_value(json!({
            "metadata": {"namespace": ns, "name": name}, "spec": spec
        }))
        .unwrap()
    }

    fn slice(
        ns: &str,
        svc: &str,
        ports: serde_json::Value,
        eps: serde_json::Value,
    ) -> EndpointSlice {
        serde_json::from_value(json!({
            "metadata": {"namespace": ns, "name": format!("{svc}-abcde"),
                         "labels": {"kubernetes.io/service-name": svc}},
            "addressType": "IPv4", "ports": ports, "endpoints": eps
        }))
        .unwrap()
    }

    fn pod(ns: &str, name: &str, ip: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"namespace": ns, "name": name},
            "status": {"podIP": ip, "podIPs": [{"ip": ip}]}
        }))
        .unwrap()
    }

    fn a(s: &str) -> Rdata {
        Rdata::A(s.parse().unwrap())
    }

    fn srv(weight: u16, port: u16, target: &str) -> Rdata {
        Rdata::Srv {
            priority: 0,
            weight,
            port,
            target: target.into(),
        }
    }

    fn sorted(z: &Zone, name: &str) -> Vec<Rdata> {
        let mut v = z.get(name).map(<[Rdata]>::to_vec).unwrap_or_default();
        v.sort();
        v
    }

    #[test]
    fn cluster_ip_services() {
        let s = svc(
            "default",
            "web",
            json!({"clusterIP": "198.19.0.21", "clusterIPs": ["198.19.0.21"], "ports": [
                {"name": "http", "port": 80, "protocol": "TCP"},
                {"name": "dns", "port": 53, "protocol": "UDP"},
                {"port": 8080}
            ]}),
        );
        let z = build(
            &[s],
            &[] as &[EndpointSlice],
            &[] as &[Pod],
            "cluster.local",
        );
        let base = "web.default.svc.cluster.local";
        let table: &[(&str, Vec<Rdata>)] = &[
            (base, vec![a("198.19.0.21")]),
            (
                "_http._tcp.web.default.svc.cluster.local",
                vec![srv(100, 80, base)],
            ),
            (
                "_dns._udp.web.default.svc.cluster.local",
                vec![srv(100, 53, base)],
            ),
            ("21.0.19.198.in-addr.arpa", vec![Rdata::Ptr(base.into())]),
        ];
        for (name, want) in table {
            assert_eq!(&sorted(&z, name), want, "{name}");
        }
        // unnamed ports get no SRV record
        assert_eq!(z.len(), 4, "{:?}", z.records());
    }

    #[test]
    fn headless_services_list_ready_endpoints_by_name() {
        let s = svc(
            "default",
            "db",
            json!({"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}),
        );
        let sl = slice(
            "default",
            "db",
            json!([{"name": "pg", "port": 15432, "protocol": "TCP"}]),
            json!([
                {"addresses": ["198.18.0.5"], "hostname": "db-0", "conditions": {"ready": true}},
                {"addresses": ["198.18.0.6"], "conditions": {"ready": true}},
                {"addresses": ["198.18.0.7"], "hostname": "db-2", "conditions": {"ready": false}}
            ]),
        );
        let z = build(
            std::slice::from_ref(&s),
            std::slice::from_ref(&sl),
            &[] as &[Pod],
            "cluster.local",
        );
        let base = "db.default.svc.cluster.local";
        let table: &[(&str, Vec<Rdata>)] = &[
            (base, vec![a("198.18.0.5"), a("198.18.0.6")]),
            ("db-0.db.default.svc.cluster.local", vec![a("198.18.0.5")]),
            (
                "198-18-0-6.db.default.svc.cluster.local",
                vec![a("198.18.0.6")],
            ),
            ("db-2.db.default.svc.cluster.local", vec![]),
            (
                "_pg._tcp.db.default.svc.cluster.local",
                vec![
                    srv(50, 15432, "198-18-0-6.db.default.svc.cluster.local"),
                    srv(50, 15432, "db-0.db.default.svc.cluster.local"),
                ],
            ),
            (
                "5.0.18.198.in-addr.arpa",
                vec![Rdata::Ptr("db-0.db.default.svc.cluster.local".into())],
            ),
        ];
        for (name, want) in table {
            assert_eq!(&sorted(&z, name), want, "{name}");
        }
        // publishNotReadyAddresses: every endpoint
        let mut s = s;
        if let Some(spec) = s.spec.as_mut() {
            spec.publish_not_ready_addresses = Some(true);
        }
        let z = build(&[s], &[sl], &[] as &[Pod], "cluster.local");
        assert_eq!(sorted(&z, base).len(), 3);
        assert_eq!(
            sorted(&z, "db-2.db.default.svc.cluster.local"),
            [a("198.18.0.7")]
        );
        let weights: Vec<u16> = sorted(&z, "_pg._tcp.db.default.svc.cluster.local")
            .iter()
            .filter_map(|r| match r {
                Rdata::Srv { weight, .. } => Some(*weight),
                _ => None,
            })
            .collect();
        assert_eq!(weights, [33, 33, 33]);
    }

    #[test]
    fn external_names_pods_and_other_namespaces() {
        let services = [
            svc(
                "prod",
                "search",
                json!({"type": "ExternalName", "externalName": "search.example.org."}),
            ),
            // headless without endpoints, and one with no address yet
            svc("prod", "empty", json!({"clusterIP": "None"})),
            svc(
                "prod",
                "pending",
                json!({"ports": [{"name": "x", "port": 1}]}),
            ),
        ];
        let pods = [
            pod("prod", "p", "198.18.0.9"),
            pod("default", "q", "198.18.0.10"),
        ];
        let slices = [slice(
            "other",
            "empty",
            json!([]),
            json!([{"addresses": ["198.18.0.11"]}]),
        )];
        let z = build(&services, &slices, &pods, "cluster.local");
        let table: &[(&str, Vec<Rdata>)] = &[
            (
                "search.prod.svc.cluster.local",
                vec![Rdata::Cname("search.example.org".into())],
            ),
            ("empty.prod.svc.cluster.local", vec![]),
            ("pending.prod.svc.cluster.local", vec![]),
            ("198-18-0-9.prod.pod.cluster.local", vec![a("198.18.0.9")]),
            (
                "198-18-0-10.default.pod.cluster.local",
                vec![a("198.18.0.10")],
            ),
            ("198-18-0-9.default.pod.cluster.local", vec![]),
        ];
        for (name, want) in table {
            assert_eq!(&sorted(&z, name), want, "{name}");
        }
        assert_eq!(z.len(), 3, "{:?}", z.records());
        // another domain
        let z = build(&services, &slices, &pods, "example.internal");
        assert!(z.get("198-18-0-9.prod.pod.example.internal").is_some());
    }
}
