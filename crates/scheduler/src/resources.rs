//! Amounts of compute resources, and what a pod requests (kube's
//! `resourcehelper.PodRequests`: the init-container max rule, restartable
//! sidecars, pod overhead).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::quantity;

/// CPU a container without a request counts for when scoring (100m).
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// Memory a container without a request counts for when scoring (200Mi).
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// An amount of each resource the scheduler accounts for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// CPU in thousandths of a core.
    pub milli_cpu: i64,
    /// Memory in bytes.
    pub memory: i64,
    /// Local ephemeral storage in bytes.
    pub ephemeral_storage: i64,
    /// Extended resources and hugepages, by name.
    pub scalar: BTreeMap<String, i64>,
}

impl Resources {
    /// Reads a `requests`/`allocatable` map.
    pub fn from_map(map: &BTreeMap<String, Quantity>) -> Resources {
        let mut r = Resources::default();
        for (name, q) in map {
            r.set(name, &q.0);
        }
        r
    }

    /// Sets one resource from its quantity text (unparsable counts as 0).
    fn set(&mut self, name: &str, text: &str) {
        match name {
            "cpu" => self.milli_cpu = quantity::milli_value(text).unwrap_or(0),
            "memory" => self.memory = quantity::value(text).unwrap_or(0),
            "ephemeral-storage" => self.ephemeral_storage = quantity::value(text).unwrap_or(0),
            other if is_scalar(other) => {
                self.scalar
                    .insert(other.to_owned(), quantity::value(text).unwrap_or(0));
            }
            _ => {}
        }
    }

    /// Whether nothing at all is requested.
    pub fn is_zero(&self) -> bool {
        self.milli_cpu == 0
            && self.memory == 0
            && self.ephemeral_storage == 0
            && self.scalar.values().all(|v| *v == 0)
    }

    /// Adds `other` to this amount.
    pub fn add(&mut self, other: &Resources) {
        self.milli_cpu += other.milli_cpu;
        self.memory += other.memory;
        self.ephemeral_storage += other.ephemeral_storage;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_insert(0) += v;
        }
    }

    /// Subtracts `other` from this amount.
    pub fn sub(&mut self, other: &Resources) {
        self.milli_cpu -= other.milli_cpu;
        self.memory -= other.memory;
        self.ephemeral_storage -= other.ephemeral_storage;
        for (k, v) in &other.scalar {
            if let Some(mine) = self.scalar.get_mut(k) {
                *mine -= v;
                if *mine == 0 {
                    self.scalar.remove(k);
                }
            }
        }
    }

    /// Raises each resource to at least `other`'s amount.
    pub fn max_with(&mut self, other: &Resources) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        for (k, v) in &other.scalar {
            let e = self.scalar.entry(k.clone()).or_insert(0);
            *e = (*e).max(*v);
        }
    }

    /// The amount of a scalar resource (0 when absent).
    pub fn scalar(&self, name: &str) -> i64 {
        self.scalar.get(name).copied().unwrap_or(0)
    }
}

/// Whether `name` is accounted as a scalar resource: extended resources
/// (`example.com/gpu`), hugepages and attachable volumes.
pub fn is_scalar(name: &str) -> bool {
    name.starts_with("hugepages-") || name.starts_with("attachable-volumes-") || is_extended(name)
}

/// kube's `IsExtendedResourceName`: a qualified name outside the
/// `kubernetes.io` namespace, not a quota `requests.` name.
pub fn is_extended(name: &str) -> bool {
    name.contains('/') && !name.contains("kubernetes.io/") && !name.starts_with("requests.")
}

/// A container's requests; a missing request takes the limit (as the API
/// server defaults it). With `non_zero`, missing cpu/memory requests
/// count as kube's scoring defaults.
fn container_requests(c: &Container, non_zero: bool) -> Resources {
    let mut r = Resources::default();
    let res = c.resources.as_ref();
    let requests = res.and_then(|r| r.requests.as_ref());
    let limits = res.and_then(|r| r.limits.as_ref());
    if let Some(limits) = limits {
        for (name, q) in limits {
            if requests.is_none_or(|req| !req.contains_key(name)) {
                r.set(name, &q.0);
            }
        }
    }
    if let Some(requests) = requests {
        for (name, q) in requests {
            r.set(name, &q.0);
        }
    }
    if non_zero {
        let has = |name: &str| {
            requests.is_some_and(|m| m.contains_key(name))
                || limits.is_some_and(|m| m.contains_key(name))
        };
        if !has("cpu") {
            r.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
        }
        if !has("memory") {
            r.memory = DEFAULT_MEMORY_REQUEST;
        }
    }
    r
}

/// What the pod requests: the sum of its containers and restartable init
/// containers (sidecars), or the largest init container step if larger,
/// plus the pod overhead.
pub fn pod_requests(spec: &PodSpec, non_zero: bool) -> Resources {
    let mut reqs = Resources::default();
    for c in &spec.containers {
        reqs.add(&container_requests(c, non_zero));
    }
    let mut sidecars = Resources::default();
    let mut init_max = Resources::default();
    for c in spec.init_containers.iter().flatten() {
        let own = container_requests(c, non_zero);
        let step = if c.restart_policy.as_deref() == Some("Always") {
            reqs.add(&own);
            sidecars.add(&own);
            sidecars.clone()
        } else {
            let mut s = own;
            s.add(&sidecars);
            s
        };
        init_max.max_with(&step);
    }
    reqs.max_with(&init_max);
    if let Some(overhead) = &spec.overhead {
        reqs.add(&Resources::from_map(overhead));
    }
    reqs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: serde_json::Value) -> PodSpec {
        serde_json::from_value(v).expect("spec")
    }

    fn c(name: &str, cpu: &str, mem: &str) -> serde_json::Value {
        json!({"name": name, "resources": {"requests": {"cpu": cpu, "memory": mem}}})
    }

    #[test]
    fn sums_containers() {
        let r = pod_requests(
            &spec(json!({"containers": [c("a", "100m", "1Gi"), c("b", "200m", "1Gi")]})),
            false,
        );
        assert_eq!(r.milli_cpu, 300);
        assert_eq!(r.memory, 2 << 30);
    }

    #[test]
    fn init_containers_max_rule() {
        let s = spec(json!({
            "initContainers": [c("i1", "2", "1Gi"), c("i2", "500m", "3Gi")],
            "containers": [c("a", "1", "2Gi")]
        }));
        let r = pod_requests(&s, false);
        assert_eq!(r.milli_cpu, 2000);
        assert_eq!(r.memory, 3 << 30);
    }

    #[test]
    fn restartable_sidecars_add_up() {
        let mut side = c("side", "500m", "1Gi");
        side["restartPolicy"] = json!("Always");
        let s = spec(json!({
            "initContainers": [side, c("after", "1", "1Gi")],
            "containers": [c("a", "1", "1Gi")]
        }));
        let r = pod_requests(&s, false);
        // containers 1 + sidecar 0.5 = 1.5; init step after the sidecar = 1 + 0.5.
        assert_eq!(r.milli_cpu, 1500);
        assert_eq!(r.memory, 2 << 30);
        let s = spec(json!({
            "initContainers": [side_big(), c("after", "3", "1Gi")],
            "containers": [c("a", "1", "1Gi")]
        }));
        assert_eq!(pod_requests(&s, false).milli_cpu, 3500);
    }

    fn side_big() -> serde_json::Value {
        let mut side = c("side", "500m", "1Gi");
        side["restartPolicy"] = json!("Always");
        side
    }

    #[test]
    fn overhead_and_extended_and_limits() {
        let s = spec(json!({
            "overhead": {"cpu": "250m", "memory": "120Mi"},
            "containers": [{"name": "a", "resources": {
                "limits": {"cpu": "1", "example.com/gpu": "2"},
                "requests": {"memory": "1Gi"}}}]
        }));
        let r = pod_requests(&s, false);
        assert_eq!(r.milli_cpu, 1250);
        assert_eq!(r.memory, (1 << 30) + (120 << 20));
        assert_eq!(r.scalar("example.com/gpu"), 2);
    }

    #[test]
    fn non_zero_defaults() {
        let s = spec(json!({"containers": [{"name": "a"}, c("b", "1", "1Gi")]}));
        let r = pod_requests(&s, true);
        assert_eq!(r.milli_cpu, 1100);
        assert_eq!(r.memory, (1 << 30) + DEFAULT_MEMORY_REQUEST);
        assert!(pod_requests(&spec(json!({"containers": [{"name": "a"}]})), false).is_zero());
    }
}
