//! `/metrics/resource`: the kubelet's resource metrics in the Prometheus
//! text format (what metrics-server and berth's `metrics.k8s.io` read):
//! the node's CPU time and memory working set, and each running pod
//! container's, from its cgroup.

use axum::body::Body;
use berth_engine::Engine;
use berth_types::prom::{Kind, Text};
use hyper::Response;

use super::State;
use super::http::Failure;
use crate::names::{CONTAINER_NAME, POD_NAME, POD_NAMESPACE};

/// Serves the resource metrics.
pub(super) async fn resource(state: &State) -> Result<Response<Body>, Failure> {
    let text = state.blocking(render).await?;
    Response::builder()
        .status(200)
        .header("content-type", berth_types::prom::CONTENT_TYPE)
        .body(Body::from(text))
        .map_err(|e| Failure::internal(e.to_string()))
}

/// Busy CPU time of the node in nanoseconds (all but idle and iowait).
fn node_cpu_ns(stat: &str) -> u64 {
    let Some(rest) = stat.lines().find_map(|l| l.strip_prefix("cpu ")) else {
        return 0;
    };
    let v: Vec<u64> = rest
        .split_whitespace()
        .take(8)
        .filter_map(|x| x.parse().ok())
        .collect();
    let busy: u64 = v
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, x)| *x)
        .sum();
    let tick = rustix::param::clock_ticks_per_second().max(1);
    busy.saturating_mul(1_000_000_000 / tick)
}

/// MemTotal − MemAvailable, in bytes.
fn node_memory(meminfo: &str) -> u64 {
    let kib = |key: &str| {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    kib("MemTotal").saturating_sub(kib("MemAvailable")) * 1024
}

/// A running container of a pod, with a statistics sample.
pub(super) struct PodContainer {
    pub(super) namespace: String,
    pub(super) pod: String,
    /// The container's name in the pod.
    pub(super) name: String,
    pub(super) container: berth_engine::Container,
    pub(super) sample: berth_engine::stats::Sample,
}

/// The node's running pod containers with their samples (the kubelet's
/// `/metrics/resource` and `/metrics/cadvisor` read the same set).
pub(super) fn running_pod_containers(engine: &Engine) -> Vec<PodContainer> {
    let mut out = Vec::new();
    for c in engine.list() {
        let l = &c.record.labels;
        let (Some(ns), Some(pod), Some(name)) =
            (l.get(POD_NAMESPACE), l.get(POD_NAME), l.get(CONTAINER_NAME))
        else {
            continue;
        };
        if !c.state.is_active() {
            continue;
        }
        let Ok(sample) = engine.stats_sample(&c.record.id) else {
            continue;
        };
        if sample.running {
            out.push(PodContainer {
                namespace: ns.clone(),
                pod: pod.clone(),
                name: name.clone(),
                container: c,
                sample,
            });
        }
    }
    out
}

fn render(engine: &Engine) -> String {
    let at = Some(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis()),
    );
    let mut t = Text::new();
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    t.family(
        "node_cpu_usage_seconds_total",
        Kind::Counter,
        "[STABLE] Cumulative cpu time consumed by the node in core-seconds",
    );
    let cpu = node_cpu_ns(&stat) as f64 / 1e9;
    t.sample_at("node_cpu_usage_seconds_total", &[], cpu, at);
    t.family(
        "node_memory_working_set_bytes",
        Kind::Gauge,
        "[STABLE] Current working set of the node in bytes",
    );
    let mem = node_memory(&meminfo) as f64;
    t.sample_at("node_memory_working_set_bytes", &[], mem, at);
    let containers: Vec<(String, String, String, berth_engine::stats::Sample)> =
        running_pod_containers(engine)
            .into_iter()
            .map(|p| (p.name, p.namespace, p.pod, p.sample))
            .collect();
    t.family(
        "container_cpu_usage_seconds_total",
        Kind::Counter,
        "[STABLE] Cumulative cpu time consumed by the container in core-seconds",
    );
    for (name, ns, pod, s) in &containers {
        let labels = [
            ("container", name.as_str()),
            ("namespace", ns),
            ("pod", pod),
        ];
        let v = s.stats.cpu.usage.total as f64 / 1e9;
        t.sample_at("container_cpu_usage_seconds_total", &labels, v, at);
    }
    t.family(
        "container_memory_working_set_bytes",
        Kind::Gauge,
        "[STABLE] Current working set of the container in bytes",
    );
    for (name, ns, pod, s) in &containers {
        let labels = [
            ("container", name.as_str()),
            ("namespace", ns),
            ("pod", pod),
        ];
        let v = s.memory_used() as f64;
        t.sample_at("container_memory_working_set_bytes", &labels, v, at);
    }
    t.family(
        "scrape_error",
        Kind::Gauge,
        "[ALPHA] 1 if there was an error while getting container metrics, 0 otherwise",
    );
    t.sample("scrape_error", &[], 0.0);
    t.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_figures() {
        let stat = "cpu  100 0 50 1000 10 0 0 0 0 0\ncpu0 100 0 50 1000 10 0 0 0 0 0\n";
        let tick = rustix::param::clock_ticks_per_second();
        assert_eq!(node_cpu_ns(stat), 150 * (1_000_000_000 / tick));
        assert_eq!(
            node_memory("MemTotal: 1000 kB\nMemAvailable: 400 kB\n"),
            600 * 1024
        );
    }
}
