//! What the scheduler needs of a pod, computed once when the pod enters
//! the cache or a scheduling cycle.

use k8s_openapi::api::core::v1::{
    Pod, PodAffinityTerm, Toleration, TopologySpreadConstraint, WeightedPodAffinityTerm,
};

use crate::resources::{Resources, pod_requests};
use crate::selectors::{Labels, NodeTerm, NodeTerms, RequiredNodeAffinity, Selector};

/// A host port a container binds: (host IP, protocol, port).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// The host IP, `0.0.0.0` when unset.
    pub ip: String,
    /// `TCP`, `UDP` or `SCTP`.
    pub protocol: String,
    /// The port number.
    pub port: i32,
}

impl HostPort {
    /// Whether two host ports collide (same protocol and port, and the same
    /// IP or either one the wildcard).
    pub fn conflicts(&self, other: &HostPort) -> bool {
        self.port == other.port
            && self.protocol == other.protocol
            && (self.ip == other.ip || self.ip == "0.0.0.0" || other.ip == "0.0.0.0")
    }
}

/// A compiled pod (anti-)affinity term.
#[derive(Debug, Clone, PartialEq)]
pub struct AffinityTerm {
    /// The namespaces named (the pod's own when neither names nor a
    /// namespace selector are given).
    pub namespaces: Vec<String>,
    /// The namespace selector, if any (`{}` selects all).
    pub namespace_selector: Option<Selector>,
    /// The pods selected.
    pub selector: Selector,
    /// The topology domain label.
    pub topology_key: String,
}

impl AffinityTerm {
    fn new(term: &PodAffinityTerm, own_namespace: &str) -> AffinityTerm {
        let mut namespaces = term.namespaces.clone().unwrap_or_default();
        let namespace_selector = term
            .namespace_selector
            .as_ref()
            .map(|s| Selector::new(Some(s)));
        if namespaces.is_empty() && namespace_selector.is_none() {
            namespaces.push(own_namespace.to_owned());
        }
        AffinityTerm {
            namespaces,
            namespace_selector,
            selector: Selector::new(term.label_selector.as_ref()),
            topology_key: term.topology_key.clone(),
        }
    }

    /// Whether a pod in `namespace` (whose labels are `ns_labels`) with
    /// `labels` matches this term.
    pub fn matches(&self, namespace: &str, labels: &Labels, ns_labels: Option<&Labels>) -> bool {
        let ns_ok = self.namespaces.iter().any(|n| n == namespace)
            || self
                .namespace_selector
                .as_ref()
                .is_some_and(|s| s.is_everything() || ns_labels.is_some_and(|l| s.matches(l)));
        ns_ok && self.selector.matches(labels)
    }
}

/// A weighted (preferred) affinity term.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightedTerm {
    /// The weight, 1..=100.
    pub weight: i64,
    /// The term.
    pub term: AffinityTerm,
}

/// A compiled topology spread constraint.
#[derive(Debug, Clone, PartialEq)]
pub struct SpreadConstraint {
    /// The allowed skew.
    pub max_skew: i64,
    /// The topology domain label.
    pub topology_key: String,
    /// `DoNotSchedule` (a filter) rather than `ScheduleAnyway` (a score).
    pub hard: bool,
    /// The pods counted (with `matchLabelKeys` merged in).
    pub selector: Selector,
    /// `minDomains`, if set.
    pub min_domains: Option<i64>,
    /// `nodeAffinityPolicy: Honor` (the default).
    pub honor_node_affinity: bool,
    /// `nodeTaintsPolicy: Honor` (the default is Ignore).
    pub honor_taints: bool,
}

/// A pod as the scheduler sees it.
#[derive(Debug, Clone)]
pub struct PodInfo {
    /// `namespace/name`.
    pub key: String,
    /// The namespace.
    pub namespace: String,
    /// The name.
    pub name: String,
    /// The UID.
    pub uid: String,
    /// The labels.
    pub labels: Labels,
    /// The resolved priority.
    pub priority: i32,
    /// `spec.nodeName`.
    pub node_name: String,
    /// `status.nominatedNodeName`.
    pub nominated_node: String,
    /// What it requests (for fitting).
    pub requests: Resources,
    /// What it requests with scoring defaults for unset cpu/memory.
    pub non_zero: Resources,
    /// The host ports it binds.
    pub host_ports: Vec<HostPort>,
    /// Required pod affinity.
    pub required_affinity: Vec<AffinityTerm>,
    /// Required pod anti-affinity.
    pub required_anti_affinity: Vec<AffinityTerm>,
    /// Preferred pod affinity.
    pub preferred_affinity: Vec<WeightedTerm>,
    /// Preferred pod anti-affinity.
    pub preferred_anti_affinity: Vec<WeightedTerm>,
    /// Its tolerations.
    pub tolerations: Vec<Toleration>,
    /// nodeSelector and required node affinity.
    pub node_affinity: RequiredNodeAffinity,
    /// Preferred node affinity (weight, term).
    pub preferred_node_affinity: Vec<(i64, NodeTerm)>,
    /// Topology spread constraints.
    pub spread: Vec<SpreadConstraint>,
    /// Container images, normalized (`:latest` added when untagged).
    pub images: Vec<String>,
    /// The PersistentVolumeClaims its volumes name.
    pub claims: Vec<String>,
    /// Whether it is being deleted.
    pub terminating: bool,
    /// `status.startTime` in seconds since the epoch, if it started.
    pub start_time: Option<i64>,
    /// `preemptionPolicy: Never`.
    pub never_preempts: bool,
    /// The controlling owner's kind and name (`ReplicaSet`, `StatefulSet`,
    /// `ReplicationController`, ...), for the default spreading.
    pub controller: Option<(String, String)>,
}

impl PodInfo {
    /// Reads `pod`, whose priority was resolved to `priority`.
    pub fn new(pod: &Pod, priority: i32) -> PodInfo {
        let meta = &pod.metadata;
        let namespace = meta.namespace.clone().unwrap_or_default();
        let name = meta.name.clone().unwrap_or_default();
        let labels = meta.labels.clone().unwrap_or_default();
        let spec = pod.spec.as_ref();
        let status = pod.status.as_ref();
        let affinity = spec.and_then(|s| s.affinity.as_ref());
        let pod_aff = affinity.and_then(|a| a.pod_affinity.as_ref());
        let pod_anti = affinity.and_then(|a| a.pod_anti_affinity.as_ref());
        let node_aff = affinity.and_then(|a| a.node_affinity.as_ref());
        let req = |terms: Option<&Vec<PodAffinityTerm>>| -> Vec<AffinityTerm> {
            terms
                .into_iter()
                .flatten()
                .map(|t| AffinityTerm::new(t, &namespace))
                .collect()
        };
        let pref = |terms: Option<&Vec<WeightedPodAffinityTerm>>| -> Vec<WeightedTerm> {
            terms
                .into_iter()
                .flatten()
                .filter(|t| t.weight != 0)
                .map(|t| WeightedTerm {
                    weight: i64::from(t.weight),
                    term: AffinityTerm::new(&t.pod_affinity_term, &namespace),
                })
                .collect()
        };
        let node_affinity = RequiredNodeAffinity {
            node_selector: spec
                .and_then(|s| s.node_selector.clone())
                .unwrap_or_default(),
            terms: node_aff
                .and_then(|n| {
                    n.required_during_scheduling_ignored_during_execution
                        .as_ref()
                })
                .map(|r| NodeTerms::new(&r.node_selector_terms)),
        };
        let preferred_node_affinity = node_aff
            .and_then(|n| {
                n.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .into_iter()
            .flatten()
            .filter(|p| p.weight != 0)
            .map(|p| (i64::from(p.weight), NodeTerm::new(&p.preference)))
            .collect();
        let mut host_ports = Vec::new();
        let mut images = Vec::new();
        if let Some(spec) = spec {
            let sidecars = spec
                .init_containers
                .iter()
                .flatten()
                .filter(|c| c.restart_policy.as_deref() == Some("Always"));
            for c in spec.containers.iter().chain(sidecars) {
                for p in c.ports.iter().flatten() {
                    if let Some(hp) = p.host_port.filter(|p| *p > 0) {
                        host_ports.push(HostPort {
                            ip: p
                                .host_ip
                                .clone()
                                .filter(|i| !i.is_empty())
                                .unwrap_or_else(|| "0.0.0.0".to_owned()),
                            protocol: p
                                .protocol
                                .clone()
                                .filter(|i| !i.is_empty())
                                .unwrap_or_else(|| "TCP".to_owned()),
                            port: hp,
                        });
                    }
                }
            }
            for c in spec
                .init_containers
                .iter()
                .flatten()
                .chain(&spec.containers)
            {
                if let Some(image) = c.image.as_deref().filter(|i| !i.is_empty()) {
                    images.push(normalized_image(image));
                }
            }
        }
        let spread = spec
            .and_then(|s| s.topology_spread_constraints.as_ref())
            .into_iter()
            .flatten()
            .map(|c| spread_constraint(c, &labels))
            .collect();
        let claims = spec
            .and_then(|s| s.volumes.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|v| {
                v.persistent_volume_claim
                    .as_ref()
                    .map(|c| c.claim_name.clone())
            })
            .collect();
        PodInfo {
            key: format!("{namespace}/{name}"),
            uid: meta.uid.clone().unwrap_or_default(),
            priority,
            node_name: spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
            nominated_node: status
                .and_then(|s| s.nominated_node_name.clone())
                .unwrap_or_default(),
            requests: spec.map(|s| pod_requests(s, false)).unwrap_or_default(),
            non_zero: spec.map(|s| pod_requests(s, true)).unwrap_or_default(),
            host_ports,
            required_affinity: req(pod_aff.and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })),
            required_anti_affinity: req(pod_anti.and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })),
            preferred_affinity: pref(pod_aff.and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })),
            preferred_anti_affinity: pref(pod_anti.and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })),
            tolerations: spec.and_then(|s| s.tolerations.clone()).unwrap_or_default(),
            node_affinity,
            preferred_node_affinity,
            spread,
            images,
            claims,
            terminating: meta.deletion_timestamp.is_some(),
            start_time: status
                .and_then(|s| s.start_time.as_ref())
                .map(|t| t.0.as_second()),
            never_preempts: spec.and_then(|s| s.preemption_policy.as_deref()) == Some("Never"),
            controller: meta
                .owner_references
                .iter()
                .flatten()
                .find(|o| o.controller == Some(true))
                .map(|o| (o.kind.clone(), o.name.clone())),
            namespace,
            name,
            labels,
        }
    }

    /// Whether it has any pod affinity or anti-affinity.
    pub fn has_affinity(&self) -> bool {
        !self.required_affinity.is_empty()
            || !self.required_anti_affinity.is_empty()
            || !self.preferred_affinity.is_empty()
            || !self.preferred_anti_affinity.is_empty()
    }
}

/// kube's `normalizedImageName`: `:latest` when the name has no tag.
pub fn normalized_image(name: &str) -> String {
    let colon = name.rfind(':');
    let slash = name.rfind('/');
    if name.contains('@') || colon.is_some_and(|c| slash.is_none_or(|s| c > s)) {
        name.to_owned()
    } else {
        format!("{name}:latest")
    }
}

fn spread_constraint(c: &TopologySpreadConstraint, pod_labels: &Labels) -> SpreadConstraint {
    let mut selector = Selector::new(c.label_selector.as_ref());
    for key in c.match_label_keys.iter().flatten() {
        if let Some(v) = pod_labels.get(key) {
            selector.require(key, v);
        }
    }
    SpreadConstraint {
        max_skew: i64::from(c.max_skew),
        topology_key: c.topology_key.clone(),
        hard: c.when_unsatisfiable == "DoNotSchedule",
        selector,
        min_domains: c.min_domains.map(i64::from),
        honor_node_affinity: c.node_affinity_policy.as_deref() != Some("Ignore"),
        honor_taints: c.node_taints_policy.as_deref() == Some("Honor"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names() {
        assert_eq!(normalized_image("nginx"), "nginx:latest");
        assert_eq!(normalized_image("nginx:1.25"), "nginx:1.25");
        assert_eq!(normalized_image("reg:5000/app"), "reg:5000/app:latest");
        assert_eq!(normalized_image("reg:5000/app:v1"), "reg:5000/app:v1");
        assert_eq!(normalized_image("app@sha256:abc"), "app@sha256:abc");
    }

    #[test]
    fn host_port_conflicts() {
        let p = |ip: &str, proto: &str, port| HostPort {
            ip: ip.into(),
            protocol: proto.into(),
            port,
        };
        assert!(p("0.0.0.0", "TCP", 80).conflicts(&p("198.18.7.1", "TCP", 80)));
        assert!(!p("198.18.7.2", "TCP", 80).conflicts(&p("198.18.7.1", "TCP", 80)));
        assert!(!p("0.0.0.0", "UDP", 80).conflicts(&p("0.0.0.0", "TCP", 80)));
        assert!(!p("0.0.0.0", "TCP", 81).conflicts(&p("0.0.0.0", "TCP", 80)));
    }
}
