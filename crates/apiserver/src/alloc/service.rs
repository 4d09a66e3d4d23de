//! What a Service asks of the allocators and what it holds, read from its
//! JSON (pure; the store side is in [`super`]), and kube's update rules
//! that keep allocated values across writes that leave them out and drop
//! them when the type no longer needs them.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use serde_json::{Value, json};

/// What a Service asks for its cluster IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpWant {
    /// Nothing (ExternalName, headless).
    None,
    /// Any free address.
    Any,
    /// This address.
    Specific(Ipv4Addr),
}

/// What one port (or the health check) asks for a node port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortWant {
    /// Any free port.
    Any,
    /// This port (checked against the range when allocated).
    Specific(i64),
    /// The same node port as an earlier port of the same number (another
    /// protocol), as kube shares them.
    SameAs(usize),
}

/// Everything a Service asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wants {
    /// The cluster IP.
    pub ip: IpWant,
    /// Per port that needs one: (index in `spec.ports`, want).
    pub ports: Vec<(usize, PortWant)>,
    /// `healthCheckNodePort` (LoadBalancer with `externalTrafficPolicy: Local`).
    pub health: Option<PortWant>,
}

/// What a stored Service holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Held {
    /// Its cluster IP.
    pub ip: Option<Ipv4Addr>,
    /// Its node ports and health check port.
    pub ports: BTreeSet<u16>,
}

fn spec_str<'a>(svc: &'a Value, field: &str) -> &'a str {
    svc.get("spec")
        .and_then(|s| s.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn service_type(svc: &Value) -> &str {
    match spec_str(svc, "type") {
        "" => "ClusterIP",
        t => t,
    }
}

fn ports(svc: &Value) -> &[Value] {
    svc.pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn int(v: Option<&Value>) -> i64 {
    v.and_then(Value::as_i64).unwrap_or(0)
}

/// Whether the type has a cluster IP (all but ExternalName).
pub fn needs_cluster_ip(svc: &Value) -> bool {
    service_type(svc) != "ExternalName"
}

/// Whether the type has node ports (NodePort, LoadBalancer).
pub fn needs_node_ports(svc: &Value) -> bool {
    matches!(service_type(svc), "NodePort" | "LoadBalancer")
}

/// Whether ports without a requested node port get one: NodePort always,
/// LoadBalancer unless `allocateLoadBalancerNodePorts: false`.
fn allocates_node_ports(svc: &Value) -> bool {
    match service_type(svc) {
        "NodePort" => true,
        "LoadBalancer" => svc
            .pointer("/spec/allocateLoadBalancerNodePorts")
            .and_then(Value::as_bool)
            .unwrap_or(true),
        _ => false,
    }
}

/// Whether the Service needs a health check node port: LoadBalancer with
/// `externalTrafficPolicy: Local`.
pub fn needs_health_check(svc: &Value) -> bool {
    service_type(svc) == "LoadBalancer" && spec_str(svc, "externalTrafficPolicy") == "Local"
}

/// What `svc` asks of the allocators.
pub fn wants(svc: &Value) -> Wants {
    let ip = if !needs_cluster_ip(svc) {
        IpWant::None
    } else {
        match spec_str(svc, "clusterIP") {
            "" => IpWant::Any,
            "None" => IpWant::None,
            other => other.parse().map_or(IpWant::None, IpWant::Specific),
        }
    };
    let mut port_wants = Vec::new();
    if needs_node_ports(svc) {
        let allocate = allocates_node_ports(svc);
        let list = ports(svc);
        for (i, p) in list.iter().enumerate() {
            let node_port = int(p.get("nodePort"));
            if node_port != 0 {
                port_wants.push((i, PortWant::Specific(node_port)));
                continue;
            }
            if !allocate {
                continue;
            }
            let number = int(p.get("port"));
            let shared = port_wants.iter().find_map(|(j, _)| {
                let other = list.get(*j)?;
                (int(other.get("port")) == number).then_some(*j)
            });
            port_wants.push((i, shared.map_or(PortWant::Any, PortWant::SameAs)));
        }
    }
    let health =
        needs_health_check(svc).then(|| match int(svc.pointer("/spec/healthCheckNodePort")) {
            0 => PortWant::Any,
            n => PortWant::Specific(n),
        });
    Wants {
        ip,
        ports: port_wants,
        health,
    }
}

/// What a stored Service holds: its cluster IP (if an address) and the
/// node ports and health check port it lists.
pub fn held(svc: &Value) -> Held {
    let ip = if needs_cluster_ip(svc) {
        spec_str(svc, "clusterIP").parse().ok()
    } else {
        None
    };
    let mut held_ports = BTreeSet::new();
    for p in ports(svc) {
        if let Ok(n) = u16::try_from(int(p.get("nodePort")))
            && n != 0
        {
            held_ports.insert(n);
        }
    }
    if let Ok(n) = u16::try_from(int(svc.pointer("/spec/healthCheckNodePort")))
        && n != 0
    {
        held_ports.insert(n);
    }
    Held {
        ip,
        ports: held_ports,
    }
}

/// Sets `spec.clusterIP` and `spec.clusterIPs` to one address.
pub fn set_cluster_ip(svc: &mut Value, ip: &str) {
    if let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("clusterIP".to_owned(), json!(ip));
        spec.insert("clusterIPs".to_owned(), json!([ip]));
    }
}

fn node_ports_of(svc: &Value) -> Vec<i64> {
    ports(svc).iter().map(|p| int(p.get("nodePort"))).collect()
}

/// kube's update rules before validation (its `patchAllocatedValues` and
/// `dropTypeDependentFields`): a write that leaves out the cluster IP, a
/// node port (matched by port name) or the health check port keeps the
/// current one while the type still needs it; a type change that no
/// longer needs them drops them when the write left them as they were.
pub fn carry_allocations(old: &Value, new: &mut Value) {
    // Values left out keep what is allocated.
    if needs_cluster_ip(old) && needs_cluster_ip(new) && spec_str(new, "clusterIP").is_empty() {
        let ip = spec_str(old, "clusterIP").to_owned();
        let ips = old.pointer("/spec/clusterIPs").cloned();
        if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut)
            && !ip.is_empty()
        {
            spec.insert("clusterIP".to_owned(), json!(ip));
            if let Some(ips) = ips {
                spec.insert("clusterIPs".to_owned(), ips);
            }
        }
    }
    if needs_node_ports(old) && needs_node_ports(new) {
        let old_ports: BTreeSet<i64> = node_ports_of(old).into_iter().filter(|n| *n != 0).collect();
        let new_ports: BTreeSet<i64> = node_ports_of(new).into_iter().filter(|n| *n != 0).collect();
        let used: BTreeSet<i64> = old_ports.intersection(&new_ports).copied().collect();
        let by_name: Vec<(String, i64)> = ports(old)
            .iter()
            .map(|p| {
                (
                    p.get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned(),
                    int(p.get("nodePort")),
                )
            })
            .collect();
        if let Some(list) = new.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
            for p in list.iter_mut() {
                if int(p.get("nodePort")) != 0 {
                    continue;
                }
                let name = p.get("name").and_then(Value::as_str).unwrap_or("");
                let found = by_name
                    .iter()
                    .find(|(n, _)| n == name)
                    .map_or(0, |(_, v)| *v);
                if found != 0
                    && !used.contains(&found)
                    && let Some(map) = p.as_object_mut()
                {
                    map.insert("nodePort".to_owned(), json!(found));
                }
            }
        }
    }
    if needs_health_check(old)
        && needs_health_check(new)
        && int(new.pointer("/spec/healthCheckNodePort")) == 0
    {
        let hc = int(old.pointer("/spec/healthCheckNodePort"));
        if hc != 0
            && let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut)
        {
            spec.insert("healthCheckNodePort".to_owned(), json!(hc));
        }
    }
    // Fields the new type has no use for go when left as they were.
    let same = |a: &Value, b: &Value, field: &str| {
        a.pointer(&format!("/spec/{field}")) == b.pointer(&format!("/spec/{field}"))
    };
    let old_c = old.clone();
    let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let new_view = json!({"spec": Value::Object(spec.clone())});
    if needs_cluster_ip(&old_c) && !needs_cluster_ip(&new_view) {
        if same(&old_c, &new_view, "clusterIP") || spec_str(&new_view, "clusterIP").is_empty() {
            spec.remove("clusterIP");
        }
        if same(&old_c, &new_view, "clusterIPs") {
            spec.remove("clusterIPs");
        }
        if same(&old_c, &new_view, "ipFamilies") {
            spec.remove("ipFamilies");
        }
        if same(&old_c, &new_view, "ipFamilyPolicy") {
            spec.remove("ipFamilyPolicy");
        }
        if same(&old_c, &new_view, "internalTrafficPolicy") {
            spec.remove("internalTrafficPolicy");
        }
    }
    if needs_node_ports(&old_c)
        && !needs_node_ports(&new_view)
        && node_ports_of(&old_c) == node_ports_of(&new_view)
        && let Some(list) = spec.get_mut("ports").and_then(Value::as_array_mut)
    {
        for p in list.iter_mut().filter_map(Value::as_object_mut) {
            p.remove("nodePort");
        }
    }
    if needs_health_check(&old_c)
        && !needs_health_check(&new_view)
        && same(&old_c, &new_view, "healthCheckNodePort")
    {
        spec.remove("healthCheckNodePort");
    }
    if service_type(&old_c) == "LoadBalancer" && service_type(&new_view) != "LoadBalancer" {
        if same(&old_c, &new_view, "allocateLoadBalancerNodePorts") {
            spec.remove("allocateLoadBalancerNodePorts");
        }
        if same(&old_c, &new_view, "loadBalancerClass") {
            spec.remove("loadBalancerClass");
        }
    }
    if needs_node_ports(&old_c)
        && !needs_node_ports(&new_view)
        && same(&old_c, &new_view, "externalTrafficPolicy")
    {
        spec.remove("externalTrafficPolicy");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(spec: Value) -> Value {
        json!({"metadata": {"name": "web"}, "spec": spec})
    }

    #[test]
    fn wants_by_type() {
        let ip: Ipv4Addr = "198.19.0.10".parse().unwrap();
        let cases = [
            (
                json!({"ports": [{"port": 80}]}),
                Wants {
                    ip: IpWant::Any,
                    ports: vec![],
                    health: None,
                },
            ),
            (
                json!({"type": "ClusterIP", "clusterIP": "198.19.0.10", "ports": [{"port": 80}]}),
                Wants {
                    ip: IpWant::Specific(ip),
                    ports: vec![],
                    health: None,
                },
            ),
            (
                json!({"clusterIP": "None", "ports": [{"port": 80}]}),
                Wants {
                    ip: IpWant::None,
                    ports: vec![],
                    health: None,
                },
            ),
            (
                json!({"type": "ExternalName", "externalName": "example.com"}),
                Wants {
                    ip: IpWant::None,
                    ports: vec![],
                    health: None,
                },
            ),
            (
                json!({"type": "NodePort", "ports": [{"port": 80}, {"port": 443, "nodePort": 30443}]}),
                Wants {
                    ip: IpWant::Any,
                    ports: vec![(0, PortWant::Any), (1, PortWant::Specific(30443))],
                    health: None,
                },
            ),
            (
                json!({"type": "NodePort", "ports": [{"port": 53, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]}),
                Wants {
                    ip: IpWant::Any,
                    ports: vec![(0, PortWant::Any), (1, PortWant::SameAs(0))],
                    health: None,
                },
            ),
            (
                json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "ports": [{"port": 80}]}),
                Wants {
                    ip: IpWant::Any,
                    ports: vec![(0, PortWant::Any)],
                    health: Some(PortWant::Any),
                },
            ),
            (
                json!({"type": "LoadBalancer", "allocateLoadBalancerNodePorts": false,
                       "ports": [{"port": 80}, {"port": 81, "nodePort": 31081}]}),
                Wants {
                    ip: IpWant::Any,
                    ports: vec![(1, PortWant::Specific(31081))],
                    health: None,
                },
            ),
            (
                json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "healthCheckNodePort": 32000, "ports": [{"port": 80, "nodePort": 31000}]}),
                Wants {
                    ip: IpWant::Any,
                    ports: vec![(0, PortWant::Specific(31000))],
                    health: Some(PortWant::Specific(32000)),
                },
            ),
        ];
        for (spec, want) in cases {
            assert_eq!(wants(&svc(spec.clone())), want, "{spec}");
        }
    }

    #[test]
    fn held_lists_ip_and_ports() {
        let s = svc(json!({"type": "LoadBalancer", "clusterIP": "198.19.3.4",
            "healthCheckNodePort": 32000, "ports": [{"port": 80, "nodePort": 31000}]}));
        let h = held(&s);
        assert_eq!(h.ip, Some("198.19.3.4".parse().unwrap()));
        assert_eq!(h.ports.into_iter().collect::<Vec<_>>(), vec![31000, 32000]);
        assert_eq!(held(&svc(json!({"clusterIP": "None"}))), Held::default());
    }

    #[test]
    fn carry_keeps_and_drops() {
        // (old spec, new spec, expected new spec)
        let cases = [
            // A PUT without the clusterIP keeps it.
            (
                json!({"type": "ClusterIP", "clusterIP": "198.19.3.4", "clusterIPs": ["198.19.3.4"], "ports": [{"port": 80}]}),
                json!({"type": "ClusterIP", "ports": [{"port": 80}]}),
                json!({"type": "ClusterIP", "clusterIP": "198.19.3.4", "clusterIPs": ["198.19.3.4"], "ports": [{"port": 80}]}),
            ),
            // Node ports matched by port name.
            (
                json!({"type": "NodePort", "clusterIP": "198.19.3.4", "ports": [{"name": "a", "port": 80, "nodePort": 30080}, {"name": "b", "port": 81, "nodePort": 30081}]}),
                json!({"type": "NodePort", "clusterIP": "198.19.3.4", "ports": [{"name": "b", "port": 81}, {"name": "a", "port": 80}]}),
                json!({"type": "NodePort", "clusterIP": "198.19.3.4", "ports": [{"name": "b", "port": 81, "nodePort": 30081}, {"name": "a", "port": 80, "nodePort": 30080}]}),
            ),
            // NodePort to ClusterIP drops unchanged node ports and the policy.
            (
                json!({"type": "NodePort", "clusterIP": "198.19.3.4", "externalTrafficPolicy": "Cluster", "ports": [{"port": 80, "nodePort": 30080}]}),
                json!({"type": "ClusterIP", "clusterIP": "198.19.3.4", "externalTrafficPolicy": "Cluster", "ports": [{"port": 80, "nodePort": 30080}]}),
                json!({"type": "ClusterIP", "clusterIP": "198.19.3.4", "ports": [{"port": 80}]}),
            ),
            // To ExternalName drops the address fields.
            (
                json!({"type": "ClusterIP", "clusterIP": "198.19.3.4", "clusterIPs": ["198.19.3.4"], "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "internalTrafficPolicy": "Cluster", "ports": [{"port": 80}]}),
                json!({"type": "ExternalName", "externalName": "example.com", "clusterIP": "198.19.3.4", "clusterIPs": ["198.19.3.4"], "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "internalTrafficPolicy": "Cluster", "ports": [{"port": 80}]}),
                json!({"type": "ExternalName", "externalName": "example.com", "ports": [{"port": 80}]}),
            ),
            // A LoadBalancer losing Local loses its health check port.
            (
                json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "healthCheckNodePort": 32000, "allocateLoadBalancerNodePorts": true, "ports": [{"port": 80, "nodePort": 31000}]}),
                json!({"type": "LoadBalancer", "externalTrafficPolicy": "Cluster", "healthCheckNodePort": 32000, "allocateLoadBalancerNodePorts": true, "ports": [{"port": 80, "nodePort": 31000}]}),
                json!({"type": "LoadBalancer", "externalTrafficPolicy": "Cluster", "allocateLoadBalancerNodePorts": true, "ports": [{"port": 80, "nodePort": 31000}]}),
            ),
        ];
        for (old, new, want) in cases {
            let mut n = svc(new.clone());
            carry_allocations(&svc(old.clone()), &mut n);
            assert_eq!(n["spec"], want, "{old} -> {new}");
        }
    }
}
