//! One node and the pods bound or assumed on it, with running totals of
//! what they request.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Taint};

use crate::pod_info::{HostPort, PodInfo};
use crate::resources::Resources;
use crate::selectors::Labels;

/// A node as the scheduler sees it.
#[derive(Debug, Clone, Default)]
pub struct NodeInfo {
    /// The node's name.
    pub name: String,
    /// Whether the Node object exists (pods may name a node not seen yet).
    pub present: bool,
    /// Its labels.
    pub labels: Labels,
    /// Its taints.
    pub taints: Vec<Taint>,
    /// `spec.unschedulable`.
    pub unschedulable: bool,
    /// `status.allocatable`.
    pub allocatable: Resources,
    /// `status.allocatable.pods`.
    pub allowed_pods: i64,
    /// Images on the node (interned names, see [`crate::Cache::image_id`])
    /// with their size in bytes, sorted by id.
    pub images: Vec<(u32, i64)>,
    /// The pods on it.
    pub pods: Vec<Arc<PodInfo>>,
    /// Sum of the pods' requests.
    pub requested: Resources,
    /// Sum of the pods' requests with scoring defaults.
    pub non_zero_requested: Resources,
    /// Host ports in use.
    pub used_ports: Vec<HostPort>,
    /// How many pods have any pod affinity/anti-affinity.
    pub with_affinity: usize,
    /// How many pods have required anti-affinity.
    pub with_required_anti_affinity: usize,
}

impl NodeInfo {
    /// An empty placeholder for a node not seen yet.
    pub fn placeholder(name: &str) -> NodeInfo {
        NodeInfo {
            name: name.to_owned(),
            ..NodeInfo::default()
        }
    }

    /// Takes the node object's fields (pods are kept); `intern` names
    /// image names.
    pub fn set_node(&mut self, node: &Node, intern: &mut dyn FnMut(&str) -> u32) {
        self.present = true;
        self.name = node.metadata.name.clone().unwrap_or_default();
        self.labels = node.metadata.labels.clone().unwrap_or_default();
        let spec = node.spec.as_ref();
        self.taints = spec.and_then(|s| s.taints.clone()).unwrap_or_default();
        self.unschedulable = spec.and_then(|s| s.unschedulable).unwrap_or(false);
        let status = node.status.as_ref();
        let allocatable = status.and_then(|s| s.allocatable.as_ref());
        self.allocatable = allocatable.map(Resources::from_map).unwrap_or_default();
        self.allowed_pods = allocatable
            .and_then(|a| a.get("pods"))
            .and_then(|q| crate::quantity::value(&q.0))
            .unwrap_or(0);
        self.images.clear();
        for image in status.and_then(|s| s.images.as_ref()).into_iter().flatten() {
            for name in image.names.iter().flatten() {
                self.images
                    .push((intern(name), image.size_bytes.unwrap_or(0)));
            }
        }
        self.images.sort_unstable();
        self.images.dedup_by_key(|(id, _)| *id);
    }

    /// Adds a pod and its requests.
    pub fn add_pod(&mut self, pod: Arc<PodInfo>) {
        self.requested.add(&pod.requests);
        self.non_zero_requested.add(&pod.non_zero);
        self.used_ports.extend(pod.host_ports.iter().cloned());
        if pod.has_affinity() {
            self.with_affinity += 1;
        }
        if !pod.required_anti_affinity.is_empty() {
            self.with_required_anti_affinity += 1;
        }
        self.pods.push(pod);
    }

    /// Removes the pod with `key`, returning it.
    pub fn remove_pod(&mut self, key: &str) -> Option<Arc<PodInfo>> {
        let at = self.pods.iter().position(|p| p.key == key)?;
        let pod = self.pods.swap_remove(at);
        self.requested.sub(&pod.requests);
        self.non_zero_requested.sub(&pod.non_zero);
        for hp in &pod.host_ports {
            if let Some(i) = self.used_ports.iter().position(|u| u == hp) {
                self.used_ports.swap_remove(i);
            }
        }
        if pod.has_affinity() {
            self.with_affinity -= 1;
        }
        if !pod.required_anti_affinity.is_empty() {
            self.with_required_anti_affinity -= 1;
        }
        Some(pod)
    }
}
