//! The kubelet's own series (`kubelet_*`), counted by the pod workers and
//! the eviction manager as they work, and served with the node's running
//! pods and containers and this process's figures on the kubelet API's
//! `/metrics` (`server::kubelet`).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use berth_types::prom::{self, Histogram, Kind, Text};

use crate::names::Kind as ContainerKind;

/// kube's buckets of `kubelet_pod_start_duration_seconds`.
const POD_START_BUCKETS: &[f64] = &[
    0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 20.0, 30.0, 45.0, 60.0, 120.0, 180.0, 240.0,
    300.0, 360.0, 480.0, 600.0, 900.0, 1200.0, 1800.0, 2700.0, 3600.0,
];
/// client_golang's default buckets (`kubelet_pod_worker_duration_seconds`).
const DEFAULT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// What a pod worker's pass was (kube's `operation_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum WorkerOp {
    /// The first pass over a pod.
    Create,
    /// A pass after the pod changed.
    Update,
    /// A periodic pass.
    Sync,
}

impl WorkerOp {
    fn as_str(self) -> &'static str {
        match self {
            WorkerOp::Create => "create",
            WorkerOp::Update => "update",
            WorkerOp::Sync => "sync",
        }
    }
}

#[derive(Debug)]
struct RuntimeOp {
    errors: u64,
    duration: Histogram,
}

#[derive(Debug)]
struct Inner {
    started_pods: u64,
    started_containers: BTreeMap<&'static str, u64>,
    pod_start: Histogram,
    pod_worker: BTreeMap<WorkerOp, Histogram>,
    runtime: BTreeMap<&'static str, RuntimeOp>,
    evictions: BTreeMap<String, u64>,
}

/// The kubelet's counters.
#[derive(Debug)]
pub struct KubeletMetrics {
    inner: Mutex<Inner>,
}

impl Default for KubeletMetrics {
    fn default() -> Self {
        KubeletMetrics {
            inner: Mutex::new(Inner {
                started_pods: 0,
                started_containers: BTreeMap::new(),
                pod_start: Histogram::new(POD_START_BUCKETS),
                pod_worker: BTreeMap::new(),
                runtime: BTreeMap::new(),
                evictions: BTreeMap::new(),
            }),
        }
    }
}

impl KubeletMetrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A pod's sandbox was made.
    pub fn pod_started(&self) {
        self.lock().started_pods += 1;
    }

    /// A container was started.
    pub fn container_started(&self, kind: ContainerKind) {
        let kind = match kind {
            ContainerKind::Init => "init_container",
            ContainerKind::Container => "container",
            ContainerKind::Ephemeral => "ephemeral_container",
        };
        *self.lock().started_containers.entry(kind).or_default() += 1;
    }

    /// A pod ran `took` after its worker first saw it.
    pub fn pod_start(&self, took: Duration) {
        self.lock().pod_start.observe(took.as_secs_f64());
    }

    /// A pod worker's pass took `took`.
    pub fn pod_worker(&self, op: WorkerOp, took: Duration) {
        self.lock()
            .pod_worker
            .entry(op)
            .or_insert_with(|| Histogram::new(DEFAULT_BUCKETS))
            .observe(took.as_secs_f64());
    }

    /// A runtime operation (`pull_image`, `create_container`…) ended.
    pub fn runtime_op(&self, op: &'static str, ok: bool, took: Duration) {
        let mut m = self.lock();
        let e = m.runtime.entry(op).or_insert_with(|| RuntimeOp {
            errors: 0,
            duration: Histogram::new(&prom::exponential_buckets(0.005, 2.5, 14)),
        });
        e.duration.observe(took.as_secs_f64());
        if !ok {
            e.errors += 1;
        }
    }

    /// A pod was evicted for `signal` (`memory.available`…).
    pub fn eviction(&self, signal: &str) {
        *self.lock().evictions.entry(signal.to_owned()).or_default() += 1;
    }

    /// Writes the counted series.
    pub fn render(&self, t: &mut Text) {
        let m = self.lock();
        t.family(
            "kubelet_started_pods_total",
            Kind::Counter,
            "[ALPHA] Cumulative number of pods started",
        );
        t.sample("kubelet_started_pods_total", &[], m.started_pods as f64);
        t.family(
            "kubelet_started_containers_total",
            Kind::Counter,
            "[ALPHA] Cumulative number of containers started",
        );
        for (kind, n) in &m.started_containers {
            let labels = [("container_type", *kind)];
            t.sample("kubelet_started_containers_total", &labels, *n as f64);
        }
        t.family(
            "kubelet_pod_start_duration_seconds",
            Kind::Histogram,
            "[ALPHA] Duration in seconds from kubelet seeing a pod for the first time to the pod starting to run",
        );
        t.histogram("kubelet_pod_start_duration_seconds", &[], &m.pod_start);
        t.family(
            "kubelet_pod_worker_duration_seconds",
            Kind::Histogram,
            "[ALPHA] Duration in seconds to sync a single pod. Broken down by operation type: create, update, or sync",
        );
        for (op, h) in &m.pod_worker {
            let labels = [("operation_type", op.as_str())];
            t.histogram("kubelet_pod_worker_duration_seconds", &labels, h);
        }
        t.family(
            "kubelet_runtime_operations_total",
            Kind::Counter,
            "[ALPHA] Cumulative number of runtime operations by operation type.",
        );
        for (op, e) in &m.runtime {
            let labels = [("operation_type", *op)];
            let n = e.duration.count() as f64;
            t.sample("kubelet_runtime_operations_total", &labels, n);
        }
        t.family(
            "kubelet_runtime_operations_errors_total",
            Kind::Counter,
            "[ALPHA] Cumulative number of runtime operation errors by operation type.",
        );
        for (op, e) in &m.runtime {
            let labels = [("operation_type", *op)];
            t.sample(
                "kubelet_runtime_operations_errors_total",
                &labels,
                e.errors as f64,
            );
        }
        t.family(
            "kubelet_runtime_operations_duration_seconds",
            Kind::Histogram,
            "[ALPHA] Duration in seconds of runtime operations. Broken down by operation type.",
        );
        for (op, e) in &m.runtime {
            let labels = [("operation_type", *op)];
            t.histogram(
                "kubelet_runtime_operations_duration_seconds",
                &labels,
                &e.duration,
            );
        }
        t.family(
            "kubelet_evictions",
            Kind::Counter,
            "[ALPHA] Cumulative number of pod evictions by eviction signal",
        );
        for (signal, n) in &m.evictions {
            let labels = [("eviction_signal", signal.as_str())];
            t.sample("kubelet_evictions", &labels, *n as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_under_kubes_names() {
        let m = KubeletMetrics::default();
        m.pod_started();
        m.container_started(ContainerKind::Init);
        m.container_started(ContainerKind::Container);
        m.container_started(ContainerKind::Container);
        m.pod_start(Duration::from_millis(700));
        m.pod_worker(WorkerOp::Create, Duration::from_millis(20));
        m.runtime_op("pull_image", false, Duration::from_millis(1));
        m.runtime_op("pull_image", true, Duration::from_millis(1));
        m.eviction("memory.available");
        let mut t = Text::new();
        m.render(&mut t);
        let s = prom::parse(&t.finish()).unwrap();
        let value = |name: &str, label: Option<(&str, &str)>| {
            s.iter()
                .find(|x| x.name == name && label.is_none_or(|(k, v)| x.label(k) == Some(v)))
                .map(|x| x.value)
        };
        assert_eq!(value("kubelet_started_pods_total", None), Some(1.0));
        assert_eq!(
            value(
                "kubelet_started_containers_total",
                Some(("container_type", "container"))
            ),
            Some(2.0)
        );
        assert_eq!(
            value(
                "kubelet_started_containers_total",
                Some(("container_type", "init_container"))
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                "kubelet_pod_start_duration_seconds_bucket",
                Some(("le", "1"))
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                "kubelet_pod_worker_duration_seconds_count",
                Some(("operation_type", "create"))
            ),
            Some(1.0)
        );
        let pulls = Some(("operation_type", "pull_image"));
        assert_eq!(value("kubelet_runtime_operations_total", pulls), Some(2.0));
        assert_eq!(
            value("kubelet_runtime_operations_errors_total", pulls),
            Some(1.0)
        );
        assert_eq!(
            value(
                "kubelet_evictions",
                Some(("eviction_signal", "memory.available"))
            ),
            Some(1.0)
        );
    }
}
