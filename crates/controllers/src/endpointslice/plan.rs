//! What a Service's EndpointSlices and Endpoints should hold: its selected
//! pods with an address, their readiness (`ready`, `serving`,
//! `terminating`), each Service port resolved against the pod's container
//! ports (a named `targetPort` may differ per pod: pods are grouped by the
//! ports they resolve to, one slice per group, 100 endpoints a slice).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort as CorePort, EndpointSubset, ObjectReference, Pod, Service,
};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::util::pods::is_ready;
use crate::util::selector::map_matches;

/// Endpoints a slice holds at most (kube's default `--max-endpoints-per-slice`).
pub const MAX_PER_SLICE: usize = 100;

/// One slice's content.
#[derive(Clone, Debug, PartialEq)]
pub struct SliceContent {
    /// Its ports.
    pub ports: Vec<EndpointPort>,
    /// Its endpoints, ordered by pod name.
    pub endpoints: Vec<Endpoint>,
}

/// Whether the controller manages endpoints for `svc` (a selector, and
/// not ExternalName).
pub fn managed(svc: &Service) -> bool {
    let Some(spec) = &svc.spec else { return false };
    spec.type_.as_deref() != Some("ExternalName")
        && spec.selector.as_ref().is_some_and(|s| !s.is_empty())
}

/// The pods `svc` selects that belong in its endpoints: same namespace,
/// matching labels, an address, not finished.
pub fn selected<'a>(svc: &Service, pods: &'a [Pod]) -> Vec<&'a Pod> {
    let Some(selector) = svc.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
        return Vec::new();
    };
    let mut out: Vec<&Pod> = pods
        .iter()
        .filter(|p| p.metadata.namespace == svc.metadata.namespace)
        .filter(|p| {
            map_matches(
                selector,
                p.metadata.labels.as_ref().unwrap_or(&BTreeMap::new()),
            )
        })
        .filter(|p| {
            let st = p.status.as_ref();
            let phase = st.and_then(|s| s.phase.as_deref());
            st.and_then(|s| s.pod_ip.as_deref())
                .is_some_and(|ip| !ip.is_empty())
                && !matches!(phase, Some("Succeeded" | "Failed"))
        })
        .collect();
    out.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    out
}

/// The port a Service port reaches on `pod`: a number, or the container
/// port of that name and protocol.
fn resolve(target: Option<&IntOrString>, port: i32, protocol: &str, pod: &Pod) -> Option<i32> {
    match target {
        None => Some(port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            if let Ok(n) = name.parse::<i32>() {
                return Some(n);
            }
            pod.spec
                .as_ref()?
                .containers
                .iter()
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| {
                    p.name.as_deref() == Some(name.as_str())
                        && p.protocol.as_deref().unwrap_or("TCP") == protocol
                })
                .map(|p| p.container_port)
        }
    }
}

fn ports_for(svc: &Service, pod: &Pod) -> Vec<EndpointPort> {
    svc.spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|sp| {
            let protocol = sp.protocol.clone().unwrap_or_else(|| "TCP".into());
            let port = resolve(sp.target_port.as_ref(), sp.port, &protocol, pod)?;
            Some(EndpointPort {
                name: Some(sp.name.clone().unwrap_or_default()),
                port: Some(port),
                protocol: Some(protocol),
                app_protocol: sp.app_protocol.clone(),
            })
        })
        .collect()
}

fn publish_not_ready(svc: &Service) -> bool {
    svc.spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false)
}

fn target_ref(pod: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".into()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        ..Default::default()
    }
}

/// The pod's host name in the Service's DNS (`hostname` when its
/// `subdomain` is the Service).
fn hostname(svc: &Service, pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    (spec.subdomain.is_some() && spec.subdomain == svc.metadata.name)
        .then(|| spec.hostname.clone())
        .flatten()
}

/// The slices `svc` should have (at least one: an empty placeholder when
/// no pod qualifies, as kube keeps).
pub fn slices(svc: &Service, pods: &[Pod]) -> Vec<SliceContent> {
    let publish = publish_not_ready(svc);
    let mut groups: Vec<SliceContent> = Vec::new();
    for pod in selected(svc, pods) {
        let ports = ports_for(svc, pod);
        let terminating = pod.metadata.deletion_timestamp.is_some();
        let serving = publish || is_ready(pod);
        let ready = serving && (publish || !terminating);
        let ip = pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .unwrap_or_default();
        let ep = Endpoint {
            addresses: vec![ip],
            conditions: Some(EndpointConditions {
                ready: Some(ready),
                serving: Some(serving),
                terminating: Some(terminating),
            }),
            hostname: hostname(svc, pod),
            node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
            target_ref: Some(target_ref(pod)),
            ..Default::default()
        };
        match groups
            .iter_mut()
            .find(|g| g.ports == ports && g.endpoints.len() < MAX_PER_SLICE)
        {
            Some(g) => g.endpoints.push(ep),
            None => groups.push(SliceContent {
                ports,
                endpoints: vec![ep],
            }),
        }
    }
    if groups.is_empty() {
        groups.push(SliceContent {
            ports: Vec::new(),
            endpoints: Vec::new(),
        });
    }
    groups
}

/// The legacy Endpoints object's subsets: ready addresses and not-ready
/// ones, per port set (terminating pods are left out unless the Service
/// publishes not-ready addresses).
pub fn subsets(svc: &Service, pods: &[Pod]) -> Vec<EndpointSubset> {
    let publish = publish_not_ready(svc);
    let mut out: Vec<EndpointSubset> = Vec::new();
    for pod in selected(svc, pods) {
        if pod.metadata.deletion_timestamp.is_some() && !publish {
            continue;
        }
        let ports: Vec<CorePort> = ports_for(svc, pod)
            .into_iter()
            .map(|p| CorePort {
                name: p.name.filter(|n| !n.is_empty()),
                port: p.port.unwrap_or(0),
                protocol: p.protocol,
                app_protocol: p.app_protocol,
            })
            .collect();
        if ports.is_empty() {
            continue;
        }
        let addr = EndpointAddress {
            ip: pod
                .status
                .as_ref()
                .and_then(|s| s.pod_ip.clone())
                .unwrap_or_default(),
            hostname: hostname(svc, pod),
            node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
            target_ref: Some(target_ref(pod)),
        };
        let ready = publish || is_ready(pod);
        let subset = match out.iter_mut().find(|s| s.ports.as_ref() == Some(&ports)) {
            Some(s) => s,
            None => {
                out.push(EndpointSubset {
                    ports: Some(ports),
                    ..Default::default()
                });
                out.last_mut().expect("pushed")
            }
        };
        let list = if ready {
            subset.addresses.get_or_insert_with(Vec::new)
        } else {
            subset.not_ready_addresses.get_or_insert_with(Vec::new)
        };
        list.push(addr);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(extra: serde_json::Value) -> Service {
        let mut v = json!({"metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"app": "web"}, "ports": [
                {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"},
                {"name": "metrics", "port": 9090, "targetPort": 9090, "protocol": "TCP"}]}});
        if let Some(m) = extra.as_object() {
            for (k, x) in m {
                v["spec"][k] = x.clone();
            }
        }
        serde_json::from_value(v).unwrap()
    }

    fn pod(name: &str, ip: &str, ready: bool, http_port: i32) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("u-{name}"), "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": http_port}]}]},
            "status": {"phase": "Running", "podIP": ip, "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}
        }))
        .unwrap()
    }

    #[test]
    fn pods_become_endpoints_with_their_readiness() {
        let pods = vec![
            pod("b", "198.18.0.3", false, 8080),
            pod("a", "198.18.0.2", true, 8080),
        ];
        let s = slices(&svc(json!({})), &pods);
        assert_eq!(s.len(), 1);
        let ports: Vec<(String, i32)> = s[0]
            .ports
            .iter()
            .map(|p| (p.name.clone().unwrap(), p.port.unwrap()))
            .collect();
        assert_eq!(
            ports,
            [("http".to_owned(), 8080), ("metrics".to_owned(), 9090)]
        );
        assert_eq!(s[0].endpoints[0].addresses, ["198.18.0.2"]);
        assert_eq!(
            s[0].endpoints[0].conditions.as_ref().unwrap().ready,
            Some(true)
        );
        assert_eq!(
            s[0].endpoints[1].conditions.as_ref().unwrap().ready,
            Some(false)
        );
        assert_eq!(
            s[0].endpoints[0]
                .target_ref
                .as_ref()
                .unwrap()
                .name
                .as_deref(),
            Some("a")
        );
        let sub = subsets(&svc(json!({})), &pods);
        assert_eq!(sub.len(), 1);
        assert_eq!(sub[0].addresses.as_ref().unwrap()[0].ip, "198.18.0.2");
        assert_eq!(
            sub[0].not_ready_addresses.as_ref().unwrap()[0].ip,
            "198.18.0.3"
        );
    }

    #[test]
    fn named_ports_that_differ_make_separate_slices() {
        let pods = vec![
            pod("a", "198.18.0.2", true, 8080),
            pod("b", "198.18.0.3", true, 8081),
        ];
        let s = slices(&svc(json!({})), &pods);
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].ports[0].port, Some(8081));
    }

    #[test]
    fn placeholders_terminating_and_publish_not_ready() {
        assert_eq!(slices(&svc(json!({})), &[]).len(), 1);
        assert!(slices(&svc(json!({})), &[])[0].endpoints.is_empty());
        let mut p = pod("a", "198.18.0.2", true, 8080);
        p.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::now(),
        ));
        let c = slices(&svc(json!({})), std::slice::from_ref(&p))[0].endpoints[0]
            .conditions
            .clone()
            .unwrap();
        assert_eq!(
            (c.ready, c.serving, c.terminating),
            (Some(false), Some(true), Some(true))
        );
        assert!(subsets(&svc(json!({})), std::slice::from_ref(&p)).is_empty());
        let nr = pod("b", "198.18.0.3", false, 8080);
        let s = slices(&svc(json!({"publishNotReadyAddresses": true})), &[nr]);
        assert_eq!(
            s[0].endpoints[0].conditions.as_ref().unwrap().ready,
            Some(true)
        );
        // no address yet, or finished: not an endpoint
        let mut none = pod("c", "", true, 8080);
        none.status.as_mut().unwrap().pod_ip = None;
        let mut done = pod("d", "198.18.0.9", false, 8080);
        done.status.as_mut().unwrap().phase = Some("Succeeded".into());
        assert!(
            slices(&svc(json!({})), &[none, done])[0]
                .endpoints
                .is_empty()
        );
    }

    #[test]
    fn what_is_managed() {
        assert!(managed(&svc(json!({}))));
        assert!(!managed(&svc(json!({"selector": {}}))));
        assert!(!managed(&svc(json!({"type": "ExternalName"}))));
    }
}
