//! NetworkPolicies, pods and namespaces in, the node's policy rules out
//! (pure): each pod of this node that a policy selects, with what may reach
//! it and what it may reach, as addresses and ports
//! ([`berth_net::policy`]). Kubernetes's semantics:
//!
//! - a pod is isolated for a direction when a policy of its namespace selects
//!   it and has that direction in `policyTypes` (default: `Ingress`, plus
//!   `Egress` when the policy has egress rules); then traffic passes when any
//!   rule of any such policy allows it;
//! - a rule allows its peers (none listed: anyone) on its ports (none
//!   listed: every port); a peer is an `ipBlock` (minus `except`), or pods by
//!   `podSelector` in the policy's namespace, or in the namespaces
//!   `namespaceSelector` picks (both: pods by the first in those);
//! - a named port is the port of that name on the pod reached: the selected
//!   pod for ingress, each peer pod for egress (a peer that is an `ipBlock`
//!   has no named ports).

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use berth_net::policy::{AddrRange, PodRules, Policies, PortMatch, Protocol, Rule};
use berth_types::labels::{Labels, Requirement, selector_matches};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The label every namespace carries with its own name.
const NAMESPACE_NAME: &str = "kubernetes.io/metadata.name";

/// A pod that can send or receive: running somewhere with an address.
struct Member<'a> {
    pod: &'a Pod,
    ns: &'a str,
    ip: Ipv4Addr,
    labels: &'a Labels,
}

static NO_LABELS: Labels = Labels::new();

fn selects(sel: &LabelSelector, labels: &Labels) -> bool {
    selector_matches(
        sel.match_labels.as_ref(),
        sel.match_expressions.iter().flatten().map(|r| Requirement {
            key: &r.key,
            operator: &r.operator,
            values: r.values.as_deref().unwrap_or_default(),
        }),
        labels,
    )
}

/// The pod's IPv4 address, unless it runs on the host's network or has
/// finished.
fn address(pod: &Pod) -> Option<Ipv4Addr> {
    let spec = pod.spec.as_ref()?;
    if spec.host_network == Some(true) {
        return None;
    }
    let status = pod.status.as_ref()?;
    if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
        return None;
    }
    status
        .pod_ips
        .iter()
        .flatten()
        .map(|p| p.ip.as_str())
        .chain(status.pod_ip.as_deref())
        .find_map(|ip| ip.parse().ok())
}

fn protocol(p: Option<&str>) -> Option<Protocol> {
    match p.unwrap_or("TCP") {
        "TCP" => Some(Protocol::Tcp),
        "UDP" => Some(Protocol::Udp),
        "SCTP" => Some(Protocol::Sctp),
        _ => None,
    }
}

/// The number of the container port named `name` (with `proto`) on `pod`.
fn named_port(pod: &Pod, name: &str, proto: Protocol) -> Option<u16> {
    let spec = pod.spec.as_ref()?;
    spec.containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .find(|p| p.name.as_deref() == Some(name) && protocol(p.protocol.as_deref()) == Some(proto))
        .and_then(|p| u16::try_from(p.container_port).ok())
}

/// A policy port with a number (or none), or a name to resolve per pod.
enum Port<'a> {
    Numbered(PortMatch),
    Named(Protocol, &'a str),
}

fn port(p: &NetworkPolicyPort) -> Option<Port<'_>> {
    let proto = protocol(p.protocol.as_deref())?;
    Some(match &p.port {
        None => Port::Numbered(PortMatch {
            protocol: proto,
            ports: None,
        }),
        Some(IntOrString::Int(n)) => {
            let first = u16::try_from(*n).ok()?;
            let last = p
                .end_port
                .and_then(|e| u16::try_from(e).ok())
                .unwrap_or(first);
            Port::Numbered(PortMatch {
                protocol: proto,
                ports: Some((first, last.max(first))),
            })
        }
        Some(IntOrString::String(name)) => Port::Named(proto, name),
    })
}

/// The cluster as the rules need it.
struct Cluster<'a> {
    members: Vec<Member<'a>>,
    namespaces: BTreeMap<&'a str, &'a Labels>,
}

impl Cluster<'_> {
    /// The labels of a namespace (its name label even before it is seen).
    fn namespace_matches(&self, sel: &LabelSelector, ns: &str) -> bool {
        let own = Labels::from([(NAMESPACE_NAME.to_owned(), ns.to_owned())]);
        let labels = self.namespaces.get(ns).copied().unwrap_or(&own);
        if labels.contains_key(NAMESPACE_NAME) {
            selects(sel, labels)
        } else {
            let mut l = labels.clone();
            l.extend(own);
            selects(sel, &l)
        }
    }

    /// The pods a selector peer names, from a policy in `ns`.
    fn peer_pods(&self, peer: &NetworkPolicyPeer, ns: &str) -> Vec<&Member<'_>> {
        self.members
            .iter()
            .filter(|m| match &peer.namespace_selector {
                Some(sel) => self.namespace_matches(sel, m.ns),
                None => m.ns == ns,
            })
            .filter(|m| {
                peer.pod_selector
                    .as_ref()
                    .is_none_or(|sel| selects(sel, m.labels))
            })
            .collect()
    }
}

/// One direction's rule of a policy in `ns`, for `target` (the selected
/// pod: named ports of ingress rules are its own).
fn rules(
    cluster: &Cluster<'_>,
    ns: &str,
    peers: Option<&Vec<NetworkPolicyPeer>>,
    ports: Option<&Vec<NetworkPolicyPort>>,
    target: &Pod,
    ingress: bool,
) -> Vec<Rule> {
    // the peers: addresses, and the pods among them (for named ports)
    let (addrs, pods): (Option<Vec<AddrRange>>, Option<Vec<&Member<'_>>>) = match peers {
        None => (None, None),
        Some(list) if list.is_empty() => (None, None),
        Some(list) => {
            let mut addrs = Vec::new();
            let mut pods = Vec::new();
            for peer in list {
                if let Some(b) = &peer.ip_block {
                    match berth_net::policy::block(&b.cidr, b.except.as_deref().unwrap_or_default())
                    {
                        Ok(r) => addrs.extend(r),
                        Err(e) => {
                            tracing::warn!(namespace = ns, error = %e, "NetworkPolicy ipBlock")
                        }
                    }
                } else {
                    for m in cluster.peer_pods(peer, ns) {
                        addrs.push((m.ip, m.ip));
                        pods.push(m);
                    }
                }
            }
            (Some(addrs), Some(pods))
        }
    };
    let Some(ports) = ports.filter(|p| !p.is_empty()) else {
        return vec![Rule {
            peers: addrs,
            ports: None,
        }];
    };
    let mut numbered = Vec::new();
    let mut named = Vec::new();
    for p in ports.iter().filter_map(port) {
        match p {
            Port::Numbered(m) => numbered.push(m),
            Port::Named(proto, name) if ingress => {
                if let Some(n) = named_port(target, name, proto) {
                    numbered.push(PortMatch {
                        protocol: proto,
                        ports: Some((n, n)),
                    });
                }
            }
            Port::Named(proto, name) => named.push((proto, name)),
        }
    }
    let mut out = Vec::new();
    if !numbered.is_empty() {
        out.push(Rule {
            peers: addrs,
            ports: Some(numbered),
        });
    }
    // egress to a named port: each peer pod at its own number
    if !named.is_empty() {
        let candidates: Vec<&Member<'_>> = match pods {
            Some(p) => p,
            None => cluster.members.iter().collect(),
        };
        for m in candidates {
            let resolved: Vec<PortMatch> = named
                .iter()
                .filter_map(|(proto, name)| {
                    named_port(m.pod, name, *proto).map(|n| PortMatch {
                        protocol: *proto,
                        ports: Some((n, n)),
                    })
                })
                .collect();
            if !resolved.is_empty() {
                out.push(Rule {
                    peers: Some(vec![(m.ip, m.ip)]),
                    ports: Some(resolved),
                });
            }
        }
    }
    out
}

/// Whether the policy covers ingress and egress.
fn types(p: &NetworkPolicy) -> (bool, bool) {
    let spec = p.spec.as_ref();
    match spec.and_then(|s| s.policy_types.as_ref()) {
        Some(t) if !t.is_empty() => (
            t.iter().any(|t| t == "Ingress"),
            t.iter().any(|t| t == "Egress"),
        ),
        _ => (
            true,
            spec.and_then(|s| s.egress.as_ref())
                .is_some_and(|e| !e.is_empty()),
        ),
    }
}

/// The rules of this node's pods that policies select.
pub fn build<P, Q, N>(policies: &[P], pods: &[Q], namespaces: &[N], node: &str) -> Policies
where
    P: Borrow<NetworkPolicy>,
    Q: Borrow<Pod>,
    N: Borrow<Namespace>,
{
    let cluster = Cluster {
        members: pods
            .iter()
            .filter_map(|p| {
                let pod = p.borrow();
                Some(Member {
                    pod,
                    ns: pod.metadata.namespace.as_deref()?,
                    ip: address(pod)?,
                    labels: pod.metadata.labels.as_ref().unwrap_or(&NO_LABELS),
                })
            })
            .collect(),
        namespaces: namespaces
            .iter()
            .filter_map(|n| {
                let n = n.borrow();
                Some((
                    n.metadata.name.as_deref()?,
                    n.metadata.labels.as_ref().unwrap_or(&NO_LABELS),
                ))
            })
            .collect(),
    };
    let mut out = Policies::new();
    for m in &cluster.members {
        let on_node = m.pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node);
        if !on_node {
            continue;
        }
        let mut rules_of = PodRules {
            name: format!(
                "{}/{}",
                m.ns,
                m.pod.metadata.name.as_deref().unwrap_or_default()
            ),
            ..Default::default()
        };
        for p in policies {
            let p = p.borrow();
            let Some(spec) = &p.spec else { continue };
            if p.metadata.namespace.as_deref() != Some(m.ns)
                || !spec
                    .pod_selector
                    .as_ref()
                    .is_none_or(|sel| selects(sel, m.labels))
            {
                continue;
            }
            let (ingress, egress) = types(p);
            if ingress {
                let list = rules_of.ingress.get_or_insert_with(Vec::new);
                for r in spec.ingress.iter().flatten() {
                    list.extend(rules(
                        &cluster,
                        m.ns,
                        r.from.as_ref(),
                        r.ports.as_ref(),
                        m.pod,
                        true,
                    ));
                }
            }
            if egress {
                let list = rules_of.egress.get_or_insert_with(Vec::new);
                for r in spec.egress.iter().flatten() {
                    list.extend(rules(
                        &cluster,
                        m.ns,
                        r.to.as_ref(),
                        r.ports.as_ref(),
                        m.pod,
                        false,
                    ));
                }
            }
        }
        // a pod no policy selects has no rules at all (so pods coming and
        // going without policies change nothing to apply)
        if rules_of.ingress.is_some() || rules_of.egress.is_some() {
            out.insert(m.ip, rules_of);
        }
    }
    out
}

#[cfg(test)]
mod tests;
