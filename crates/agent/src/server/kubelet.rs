//! `/metrics`: the kubelet's series — the node's name, its running pods
//! and pod containers by state, what the workers counted
//! ([`KubeletMetrics`](crate::kubelet_metrics::KubeletMetrics)) — and this
//! process's (`process_*`, from `/proc/self`).

use std::collections::BTreeMap;

use axum::body::Body;
use berth_engine::{Engine, PodRuntime, Status};
use berth_types::prom::{self, Kind, Text};
use hyper::Response;

use super::State;
use super::http::Failure;
use crate::names::{CONTAINER_NAME, POD_NAME};

/// Serves the kubelet's metrics.
pub(super) async fn serve(state: &std::sync::Arc<State>) -> Result<Response<Body>, Failure> {
    let shared = std::sync::Arc::clone(state);
    let text = state
        .blocking(move |engine| {
            let mut t = Text::new();
            if !shared.node.is_empty() {
                t.family(
                    "kubelet_node_name",
                    Kind::Gauge,
                    "[ALPHA] The node's name. The count is always 1.",
                );
                t.sample("kubelet_node_name", &[("node", &shared.node)], 1.0);
            }
            running(engine, &mut t);
            shared.metrics.render(&mut t);
            process(&mut t);
            t.finish()
        })
        .await?;
    Response::builder()
        .status(200)
        .header("content-type", prom::CONTENT_TYPE)
        .body(Body::from(text))
        .map_err(|e| Failure::internal(e.to_string()))
}

/// kube's `container_state` of an engine status.
fn container_state(s: Status) -> &'static str {
    match s {
        Status::Created => "created",
        Status::Running | Status::Paused | Status::Restarting => "running",
        Status::Exited | Status::Dead => "exited",
        Status::Removing => "unknown",
    }
}

/// The pods with a ready sandbox, and the pod containers by state.
fn running(engine: &Engine, t: &mut Text) {
    let pods = engine
        .sandboxes()
        .iter()
        .filter(|s| s.labels.contains_key(POD_NAME))
        .filter(|s| s.state == berth_engine::sandbox::SandboxState::Ready)
        .count();
    t.family(
        "kubelet_running_pods",
        Kind::Gauge,
        "[ALPHA] Number of pods that have a running pod sandbox",
    );
    t.sample("kubelet_running_pods", &[], pods as f64);
    let mut states: BTreeMap<&str, usize> = BTreeMap::new();
    for c in engine.list() {
        if c.record.labels.contains_key(CONTAINER_NAME) {
            *states.entry(container_state(c.state.status)).or_default() += 1;
        }
    }
    t.family(
        "kubelet_running_containers",
        Kind::Gauge,
        "[ALPHA] Number of containers currently running",
    );
    for (state, n) in states {
        let labels = [("container_state", state)];
        t.sample("kubelet_running_containers", &labels, n as f64);
    }
}

/// This process's figures from `/proc/self/stat`, `/proc/self/status`,
/// `/proc/self/fd` and the boot time in `/proc/stat`.
#[derive(Debug, Default, PartialEq)]
struct Process {
    cpu_seconds: f64,
    resident_bytes: u64,
    virtual_bytes: u64,
    start_time: f64,
    open_fds: usize,
}

/// Reads `/proc/self/stat` (after the command's closing parenthesis:
/// utime, stime, starttime, vsize) and the boot time.
fn parse_process(stat: &str, proc_stat: &str, status: &str, tick: u64) -> Process {
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    // the first field after ")" is field 3 (state)
    let field = |n: usize| {
        fields
            .get(n - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let tick = tick.max(1) as f64;
    let boot = proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0);
    Process {
        cpu_seconds: (field(14) + field(15)) as f64 / tick,
        resident_bytes: rss_kib * 1024,
        virtual_bytes: field(23),
        start_time: boot as f64 + field(22) as f64 / tick,
        open_fds: 0,
    }
}

fn process(t: &mut Text) {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let tick = rustix::param::clock_ticks_per_second();
    let mut p = parse_process(
        &read("/proc/self/stat"),
        &read("/proc/stat"),
        &read("/proc/self/status"),
        tick,
    );
    p.open_fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());
    let figures = [
        (
            "process_cpu_seconds_total",
            Kind::Counter,
            "Total user and system CPU time spent in seconds.",
            p.cpu_seconds,
        ),
        (
            "process_resident_memory_bytes",
            Kind::Gauge,
            "Resident memory size in bytes.",
            p.resident_bytes as f64,
        ),
        (
            "process_virtual_memory_bytes",
            Kind::Gauge,
            "Virtual memory size in bytes.",
            p.virtual_bytes as f64,
        ),
        (
            "process_start_time_seconds",
            Kind::Gauge,
            "Start time of the process since unix epoch in seconds.",
            p.start_time,
        ),
        (
            "process_open_fds",
            Kind::Gauge,
            "Number of open file descriptors.",
            p.open_fds as f64,
        ),
    ];
    for (name, kind, help, v) in figures {
        t.family(name, kind, help);
        t.sample(name, &[], v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_figures_from_proc() {
        // a command with a space and a parenthesis in its name
        let stat = "4242 (berth (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 12 0 5000 104857600 2048 18446744073709551615";
        let p = parse_process(
            stat,
            "cpu  1 2 3\nbtime 1700000000\n",
            "Name:\tberth\nVmRSS:\t   8192 kB\n",
            100,
        );
        assert_eq!(p.cpu_seconds, 4.0);
        assert_eq!(p.start_time, 1700000050.0);
        assert_eq!(p.resident_bytes, 8192 * 1024);
        assert_eq!(p.virtual_bytes, 104857600);
        assert_eq!(container_state(Status::Exited), "exited");
        assert_eq!(container_state(Status::Running), "running");
    }
}
