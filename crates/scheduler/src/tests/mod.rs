//! Unit tests of the pure core: builders and one file per plugin.

mod affinity;
mod cache;
mod filters;
mod preemption;
mod scoring;
mod spread;

use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::{Value, json};

use crate::schedule::Scheduler;

/// A node with `cpu` cores, `mem` memory and room for 110 pods.
pub fn node(name: &str, cpu: &str, mem: &str) -> Value {
    json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {},
        "status": {
            "allocatable": {"cpu": cpu, "memory": mem, "pods": "110", "ephemeral-storage": "100Gi"},
            "capacity": {"cpu": cpu, "memory": mem, "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}]
        }
    })
}

/// A pod in `default` with one container requesting `cpu` and `mem`
/// (empty strings request nothing).
pub fn pod(name: &str, cpu: &str, mem: &str) -> Value {
    let mut requests = serde_json::Map::new();
    if !cpu.is_empty() {
        requests.insert("cpu".into(), json!(cpu));
    }
    if !mem.is_empty() {
        requests.insert("memory".into(), json!(mem));
    }
    json!({
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")},
        "spec": {"containers": [{"name": "c", "image": "app:v1", "resources": {"requests": requests}}]}
    })
}

/// Sets `value` at a `/`-separated path, creating objects on the way.
pub fn set(mut v: Value, path: &str, value: Value) -> Value {
    let mut at = &mut v;
    let parts: Vec<&str> = path.split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            at[*part] = value;
            break;
        }
        if at.get(*part).is_none() {
            at[*part] = json!({});
        }
        at = &mut at[*part];
    }
    v
}

/// Parses a Node.
pub fn as_node(v: Value) -> Node {
    serde_json::from_value(v).expect("node")
}

/// Parses a Pod.
pub fn as_pod(v: Value) -> Pod {
    serde_json::from_value(v).expect("pod")
}

/// A scheduler over `nodes`, with `pods` bound (each names its node).
pub fn cluster(nodes: Vec<Value>, pods: Vec<Value>) -> Scheduler {
    let mut s = Scheduler::new();
    for n in nodes {
        s.cache.upsert_node(&as_node(n));
    }
    for p in pods {
        s.cache.upsert_pod(&as_pod(p));
    }
    s
}

/// Binds `pod` to `node`.
pub fn on(pod: Value, node: &str) -> Value {
    set(pod, "spec/nodeName", json!(node))
}

/// Schedules `pod`: the node, or the error text.
pub fn place(s: &mut Scheduler, pod: Value) -> Result<String, String> {
    s.schedule(&as_pod(pod))
        .map(|d| d.node)
        .map_err(|e| e.to_string())
}
