//! The scheduler's view of the cluster: nodes, the pods bound or assumed
//! on them (indexed by node, totals kept as pods come and go), namespaces,
//! volumes and priority classes.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    Namespace, Node, PersistentVolume, PersistentVolumeClaim, Pod, Service,
};
use k8s_openapi::api::scheduling::v1::PriorityClass;

use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;
use crate::selectors::{Labels, NodeTerms, Selector};

/// The priority of the built-in class `system-cluster-critical`.
pub const SYSTEM_CLUSTER_CRITICAL: i32 = 2_000_000_000;
/// The priority of the built-in class `system-node-critical`.
pub const SYSTEM_NODE_CRITICAL: i32 = 2_000_001_000;

/// A PersistentVolumeClaim as the volume filter needs it.
#[derive(Debug, Clone, Default)]
pub struct Claim {
    /// `spec.volumeName` (empty while unbound).
    pub volume_name: String,
    /// Whether it is being deleted.
    pub deleting: bool,
}

/// The cluster as the scheduler sees it.
#[derive(Debug, Default)]
pub struct Cache {
    nodes: Vec<NodeInfo>,
    index: HashMap<String, usize>,
    pod_node: HashMap<String, String>,
    present: usize,
    namespaces: HashMap<String, Labels>,
    claims: HashMap<String, Claim>,
    volumes: HashMap<String, Option<NodeTerms>>,
    classes: HashMap<String, (i32, bool)>,
    image_ids: HashMap<String, u32>,
    image_nodes: HashMap<u32, usize>,
    nominated: HashMap<String, Arc<PodInfo>>,
    with_affinity: usize,
    with_required_anti_affinity: usize,
    services: HashMap<String, (String, Labels)>,
    controllers: HashMap<(String, String, String), Selector>,
}

impl Cache {
    /// An empty cache.
    pub fn new() -> Cache {
        Cache::default()
    }

    /// All node slots, including placeholders for nodes not seen yet.
    pub fn node_slots(&self) -> &[NodeInfo] {
        &self.nodes
    }

    /// How many nodes exist.
    pub fn node_count(&self) -> usize {
        self.present
    }

    /// The node named `name`, if it exists.
    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.index
            .get(name)
            .map(|i| &self.nodes[*i])
            .filter(|n| n.present)
    }

    fn slot_index(&mut self, name: &str) -> usize {
        match self.index.get(name) {
            Some(at) => *at,
            None => {
                self.nodes.push(NodeInfo::placeholder(name));
                self.index.insert(name.to_owned(), self.nodes.len() - 1);
                self.nodes.len() - 1
            }
        }
    }

    fn slot(&mut self, name: &str) -> &mut NodeInfo {
        let at = self.slot_index(name);
        &mut self.nodes[at]
    }

    /// Adds or updates a node. Returns whether anything filters or
    /// resource scores look at changed (new node, labels, taints,
    /// cordon, allocatable).
    pub fn upsert_node(&mut self, node: &Node) -> bool {
        let Some(name) = node.metadata.name.clone() else {
            return false;
        };
        let before = self.node(&name).map(|n| {
            (
                n.labels.clone(),
                n.taints.clone(),
                n.unschedulable,
                n.allocatable.clone(),
                n.allowed_pods,
            )
        });
        let old_images: Vec<u32> = self
            .node(&name)
            .map(|n| n.images.iter().map(|(id, _)| *id).collect())
            .unwrap_or_default();
        for id in old_images {
            self.uncount_image(id);
        }
        let at = self.slot_index(&name);
        let was_present = self.nodes[at].present;
        let ids = &mut self.image_ids;
        self.nodes[at].set_node(node, &mut |image: &str| {
            let next = ids.len() as u32;
            *ids.entry(image.to_owned()).or_insert(next)
        });
        if !was_present {
            self.present += 1;
        }
        for (id, _) in &self.nodes[at].images {
            *self.image_nodes.entry(*id).or_insert(0) += 1;
        }
        let after = &self.nodes[at];
        before.is_none_or(|(labels, taints, unschedulable, allocatable, allowed)| {
            labels != after.labels
                || taints != after.taints
                || unschedulable != after.unschedulable
                || allocatable != after.allocatable
                || allowed != after.allowed_pods
        })
    }

    fn uncount_image(&mut self, id: u32) {
        if let Some(c) = self.image_nodes.get_mut(&id) {
            *c = c.saturating_sub(1);
            if *c == 0 {
                self.image_nodes.remove(&id);
            }
        }
    }

    /// The id an image name is interned as, if any node ever had it.
    pub fn image_id(&self, image: &str) -> Option<u32> {
        self.image_ids.get(image).copied()
    }

    /// Removes a node (its pods stay until they are deleted).
    pub fn remove_node(&mut self, name: &str) {
        let Some(at) = self.index.get(name).copied() else {
            return;
        };
        if !self.nodes[at].present {
            return;
        }
        let ids: Vec<u32> = self.nodes[at].images.iter().map(|(id, _)| *id).collect();
        for id in ids {
            self.uncount_image(id);
        }
        self.present -= 1;
        if self.nodes[at].pods.is_empty() {
            self.drop_slot(at);
        } else {
            let keep = NodeInfo::placeholder(name);
            let old = std::mem::replace(&mut self.nodes[at], keep);
            for p in old.pods {
                self.nodes[at].add_pod(p);
            }
        }
    }

    fn drop_slot(&mut self, at: usize) {
        let removed = self.nodes.swap_remove(at);
        self.index.remove(&removed.name);
        if let Some(moved) = self.nodes.get(at) {
            self.index.insert(moved.name.clone(), at);
        }
    }

    /// How many nodes hold `image`.
    pub fn nodes_with_image(&self, image: &str) -> usize {
        self.image_id(image)
            .and_then(|id| self.image_nodes.get(&id))
            .copied()
            .unwrap_or(0)
    }

    /// The priority of `pod`: its class's value when the class is known,
    /// else `spec.priority`, else the global default class's value.
    pub fn priority_of(&self, pod: &Pod) -> i32 {
        let spec = pod.spec.as_ref();
        let class = spec
            .and_then(|s| s.priority_class_name.as_deref())
            .unwrap_or("");
        if !class.is_empty() {
            if let Some((v, _)) = self.classes.get(class) {
                return *v;
            }
            match class {
                "system-node-critical" => return SYSTEM_NODE_CRITICAL,
                "system-cluster-critical" => return SYSTEM_CLUSTER_CRITICAL,
                _ => {}
            }
        }
        if let Some(p) = spec.and_then(|s| s.priority).filter(|p| *p != 0) {
            return p;
        }
        if class.is_empty()
            && let Some((v, _)) = self.classes.values().find(|(_, global)| *global)
        {
            return *v;
        }
        0
    }

    /// Compiles `pod` with its resolved priority.
    pub fn pod_info(&self, pod: &Pod) -> PodInfo {
        PodInfo::new(pod, self.priority_of(pod))
    }

    /// Adds or updates a pod bound to (or assumed on) `spec.nodeName`.
    /// Pods without a node are removed instead.
    pub fn upsert_pod(&mut self, pod: &Pod) {
        let info = self.pod_info(pod);
        self.upsert_pod_info(info);
    }

    /// Adds or updates a compiled pod (see [`Cache::upsert_pod`]).
    pub fn upsert_pod_info(&mut self, info: PodInfo) {
        self.remove_pod(&info.key);
        if info.node_name.is_empty() {
            return;
        }
        self.nominated.remove(&info.key);
        let node = info.node_name.clone();
        self.pod_node.insert(info.key.clone(), node.clone());
        self.count_affinity(&info, 1);
        self.slot(&node).add_pod(Arc::new(info));
    }

    /// Assumes `pod` runs on `node` (before the binding is confirmed).
    pub fn assume(&mut self, mut info: PodInfo, node: &str) {
        info.node_name = node.to_owned();
        self.upsert_pod_info(info);
    }

    /// Removes a pod by `namespace/name`.
    pub fn remove_pod(&mut self, key: &str) -> Option<Arc<PodInfo>> {
        self.nominated.remove(key);
        let node = self.pod_node.remove(key)?;
        let at = *self.index.get(&node)?;
        let pod = self.nodes[at].remove_pod(key);
        if let Some(p) = &pod {
            self.count_affinity(p, -1);
        }
        if !self.nodes[at].present && self.nodes[at].pods.is_empty() {
            self.drop_slot(at);
        }
        pod
    }

    fn count_affinity(&mut self, pod: &PodInfo, delta: isize) {
        if pod.has_affinity() {
            self.with_affinity = self.with_affinity.saturating_add_signed(delta);
        }
        if !pod.required_anti_affinity.is_empty() {
            self.with_required_anti_affinity = self
                .with_required_anti_affinity
                .saturating_add_signed(delta);
        }
    }

    /// How many pods on nodes have any pod affinity or anti-affinity.
    pub fn pods_with_affinity(&self) -> usize {
        self.with_affinity
    }

    /// How many pods on nodes have required pod anti-affinity.
    pub fn pods_with_required_anti_affinity(&self) -> usize {
        self.with_required_anti_affinity
    }

    /// The node a pod is bound or assumed on.
    pub fn node_of(&self, key: &str) -> Option<&str> {
        self.pod_node.get(key).map(String::as_str)
    }

    /// Records that `pod` is nominated to run on `pod.nominated_node`
    /// (or forgets the nomination when that is empty).
    pub fn nominate(&mut self, pod: PodInfo) {
        if pod.nominated_node.is_empty() || !pod.node_name.is_empty() {
            self.nominated.remove(&pod.key);
        } else {
            self.nominated.insert(pod.key.clone(), Arc::new(pod));
        }
    }

    /// Pods nominated to `node`.
    pub fn nominated_on<'a>(
        &'a self,
        node: &'a str,
    ) -> impl Iterator<Item = &'a Arc<PodInfo>> + 'a {
        self.nominated
            .values()
            .filter(move |p| p.nominated_node == node)
    }

    /// Whether any pod is nominated.
    pub fn has_nominations(&self) -> bool {
        !self.nominated.is_empty()
    }

    /// Adds or updates a namespace (its labels serve namespace selectors).
    pub fn upsert_namespace(&mut self, ns: &Namespace) {
        if let Some(name) = &ns.metadata.name {
            self.namespaces
                .insert(name.clone(), ns.metadata.labels.clone().unwrap_or_default());
        }
    }

    /// Removes a namespace.
    pub fn remove_namespace(&mut self, name: &str) {
        self.namespaces.remove(name);
    }

    /// The labels of namespace `name`.
    pub fn namespace_labels(&self, name: &str) -> Option<&Labels> {
        self.namespaces.get(name)
    }

    /// Adds or updates a claim.
    pub fn upsert_claim(&mut self, pvc: &PersistentVolumeClaim) {
        let key = format!(
            "{}/{}",
            pvc.metadata.namespace.as_deref().unwrap_or(""),
            pvc.metadata.name.as_deref().unwrap_or("")
        );
        let claim = Claim {
            volume_name: pvc
                .spec
                .as_ref()
                .and_then(|s| s.volume_name.clone())
                .unwrap_or_default(),
            deleting: pvc.metadata.deletion_timestamp.is_some(),
        };
        self.claims.insert(key, claim);
    }

    /// Removes a claim by `namespace/name`.
    pub fn remove_claim(&mut self, key: &str) {
        self.claims.remove(key);
    }

    /// The claim `namespace/name`.
    pub fn claim(&self, key: &str) -> Option<&Claim> {
        self.claims.get(key)
    }

    /// Adds or updates a volume (its required node affinity).
    pub fn upsert_volume(&mut self, pv: &PersistentVolume) {
        if let Some(name) = &pv.metadata.name {
            let terms = pv
                .spec
                .as_ref()
                .and_then(|s| s.node_affinity.as_ref())
                .and_then(|a| a.required.as_ref())
                .map(|r| NodeTerms::new(&r.node_selector_terms));
            self.volumes.insert(name.clone(), terms);
        }
    }

    /// Removes a volume.
    pub fn remove_volume(&mut self, name: &str) {
        self.volumes.remove(name);
    }

    /// A volume's required node affinity: `None` when the volume is
    /// unknown, `Some(None)` when it has none.
    pub fn volume(&self, name: &str) -> Option<Option<&NodeTerms>> {
        self.volumes.get(name).map(Option::as_ref)
    }

    /// Adds or updates a Service (its selector serves the default spreading).
    pub fn upsert_service(&mut self, svc: &Service) {
        let ns = svc.metadata.namespace.clone().unwrap_or_default();
        let key = format!("{ns}/{}", svc.metadata.name.as_deref().unwrap_or(""));
        match svc
            .spec
            .as_ref()
            .and_then(|s| s.selector.clone())
            .filter(|s| !s.is_empty())
        {
            Some(selector) => {
                self.services.insert(key, (ns, selector));
            }
            None => {
                self.services.remove(&key);
            }
        }
    }

    /// Removes a Service by `namespace/name`.
    pub fn remove_service(&mut self, key: &str) {
        self.services.remove(key);
    }

    /// Records the pod selector of a controller (`ReplicaSet`,
    /// `StatefulSet`, `ReplicationController`) in `namespace`.
    pub fn set_controller(
        &mut self,
        kind: &str,
        namespace: &str,
        name: &str,
        selector: Option<Selector>,
    ) {
        let key = (kind.to_owned(), namespace.to_owned(), name.to_owned());
        match selector {
            Some(s) => {
                self.controllers.insert(key, s);
            }
            None => {
                self.controllers.remove(&key);
            }
        }
    }

    /// kube's `DefaultSelector`: the selectors of the Services selecting
    /// `pod` and of its controller, merged; `None` when that selects
    /// everything (no default spreading then).
    pub fn default_selector(&self, pod: &PodInfo) -> Option<Selector> {
        if self.services.is_empty() && pod.controller.is_none() {
            return None;
        }
        let mut merged = Labels::new();
        for (ns, selector) in self.services.values() {
            if *ns == pod.namespace && selector.iter().all(|(k, v)| pod.labels.get(k) == Some(v)) {
                merged.extend(selector.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        let mut out = Selector::from_map(&merged);
        if let Some((kind, name)) = &pod.controller
            && let Some(s) =
                self.controllers
                    .get(&(kind.clone(), pod.namespace.clone(), name.clone()))
        {
            out.and(s);
        }
        (!out.is_everything()).then_some(out)
    }

    /// Adds or updates a PriorityClass.
    pub fn upsert_priority_class(&mut self, pc: &PriorityClass) {
        if let Some(name) = &pc.metadata.name {
            self.classes
                .insert(name.clone(), (pc.value, pc.global_default.unwrap_or(false)));
        }
    }

    /// Removes a PriorityClass.
    pub fn remove_priority_class(&mut self, name: &str) {
        self.classes.remove(name);
    }
}
