//! `/metrics/cadvisor`: the cgroup statistics of the node (`/`), of each
//! pod (its sandbox's cgroup) and of each running pod container, under
//! cAdvisor's series names and labels (`container`, `id` = the cgroup
//! path, `image`, `name`, `namespace`, `pod`), as the kubelet serves them.
//! A pod's network counters are on its pod-level series (one network
//! namespace per pod), per `interface`.

use std::collections::BTreeMap;

use axum::body::Body;
use berth_engine::stats::{NetDev, Sample};
use berth_engine::{Engine, PodRuntime};
use berth_types::prom::{self, Kind, Text};
use hyper::Response;

use super::State;
use super::http::Failure;
use crate::names::{POD_NAME, POD_NAMESPACE};

/// What a cgroup was given (kube's `container_spec_*`).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Spec {
    /// The memory limit in bytes (0: unlimited).
    pub memory_limit: u64,
    /// The CPU shares (`None`: not set, the kernel's 1024).
    pub cpu_shares: Option<u64>,
    /// The CFS quota and period, in microseconds, when limited.
    pub cpu_quota: Option<(u64, u64)>,
}

impl Spec {
    fn of(r: &berth_engine::config::Resources) -> Spec {
        let quota = if r.cpu_quota > 0 {
            let period = if r.cpu_period > 0 {
                r.cpu_period
            } else {
                100_000
            };
            Some((r.cpu_quota as u64, period as u64))
        } else {
            r.nano_cpus_quota().map(|(q, p)| (q as u64, p))
        };
        Spec {
            memory_limit: u64::try_from(r.memory).unwrap_or(0),
            cpu_shares: u64::try_from(r.cpu_shares).ok().filter(|s| *s > 0),
            cpu_quota: quota,
        }
    }
}

/// One cgroup's series.
#[derive(Clone, Debug, Default)]
pub(crate) struct Entry {
    /// The cgroup path (`/` for the node).
    pub id: String,
    /// The runtime's container id (empty for a pod or the node).
    pub name: String,
    /// The image (empty for a pod or the node).
    pub image: String,
    /// The container's name in its pod (empty for a pod or the node).
    pub container: String,
    /// The pod (empty for the node).
    pub pod: String,
    /// The pod's namespace (empty for the node).
    pub namespace: String,
    /// The cgroup's figures (and, for a pod, its network counters).
    pub sample: Sample,
    /// What it was given (`None` for the node).
    pub spec: Option<Spec>,
    /// When it started, seconds since the epoch.
    pub started: Option<f64>,
}

impl Entry {
    fn labels(&self) -> [(&'static str, &str); 6] {
        [
            ("container", &self.container),
            ("id", &self.id),
            ("image", &self.image),
            ("name", &self.name),
            ("namespace", &self.namespace),
            ("pod", &self.pod),
        ]
    }
}

/// Serves the cAdvisor metrics.
pub(super) async fn serve(state: &State) -> Result<Response<Body>, Failure> {
    let text = state
        .blocking(|engine| {
            let at = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            write(&collect(engine), at)
        })
        .await?;
    Response::builder()
        .status(200)
        .header("content-type", prom::CONTENT_TYPE)
        .body(Body::from(text))
        .map_err(|e| Failure::internal(e.to_string()))
}

fn epoch_seconds(rfc3339: &str) -> Option<f64> {
    berth_types::time::parse_rfc3339(rfc3339)
        .ok()
        .filter(|(s, _)| *s > 0)
        .map(|(s, n)| s as f64 + f64::from(n) / 1e9)
}

/// Reads the node's, the pods' and the running pod containers' cgroups.
fn collect(engine: &Engine) -> Vec<Entry> {
    let mut out = Vec::new();
    if let Ok(stats) = engine.cgroup_stats("/") {
        out.push(Entry {
            id: "/".to_owned(),
            sample: Sample {
                stats,
                running: true,
                ..Sample::default()
            },
            ..Entry::default()
        });
    }
    // a pod's network counters, read through any of its running containers
    let mut networks: BTreeMap<(String, String), BTreeMap<String, NetDev>> = BTreeMap::new();
    let mut containers = Vec::new();
    for p in super::metrics::running_pod_containers(engine) {
        let (c, mut sample) = (p.container, p.sample);
        if let Some(n) = sample.networks.take() {
            networks
                .entry((p.namespace.clone(), p.pod.clone()))
                .or_insert(n);
        }
        containers.push(Entry {
            id: c.record.cgroups_path(),
            name: c.record.id.clone(),
            image: c.record.image.clone(),
            container: p.name,
            pod: p.pod,
            namespace: p.namespace,
            sample,
            spec: Some(Spec::of(&c.record.resources)),
            started: epoch_seconds(&c.state.started_at),
        });
    }
    for s in engine.sandboxes() {
        let (Some(ns), Some(pod)) = (s.labels.get(POD_NAMESPACE), s.labels.get(POD_NAME)) else {
            continue;
        };
        if s.state != berth_engine::sandbox::SandboxState::Ready {
            continue;
        }
        let Ok(stats) = engine.cgroup_stats(&s.cgroup_parent) else {
            continue;
        };
        out.push(Entry {
            id: s.cgroup_parent.clone(),
            pod: pod.clone(),
            namespace: ns.clone(),
            sample: Sample {
                stats,
                running: true,
                networks: networks.remove(&(ns.clone(), pod.clone())),
                ..Sample::default()
            },
            spec: Some(Spec::of(&s.resources)),
            started: epoch_seconds(&s.created),
            ..Entry::default()
        });
    }
    out.extend(containers);
    out
}

/// A family of one value per entry (`None`: the entry has none).
fn family(
    t: &mut Text,
    entries: &[Entry],
    at: u128,
    (name, kind, help): (&str, Kind, &str),
    value: impl Fn(&Entry) -> Option<f64>,
) {
    t.family(name, kind, help);
    for e in entries {
        if let Some(v) = value(e) {
            t.sample_at(name, &e.labels(), v, Some(at));
        }
    }
}

/// A network family: one value per pod interface.
fn network(
    t: &mut Text,
    entries: &[Entry],
    at: u128,
    (name, help): (&str, &str),
    value: impl Fn(&NetDev) -> u64,
) {
    t.family(name, Kind::Counter, help);
    for e in entries {
        for (interface, dev) in e.sample.networks.iter().flatten() {
            let [c, id, image, n, ns, pod] = e.labels();
            let labels = [c, id, image, ("interface", interface.as_str()), n, ns, pod];
            t.sample_at(name, &labels, value(dev) as f64, Some(at));
        }
    }
}

/// The exposition of `entries`, stamped `at` (milliseconds).
pub(crate) fn write(entries: &[Entry], at: u128) -> String {
    let mut t = Text::new();
    let name = "container_cpu_usage_seconds_total";
    t.family(
        name,
        Kind::Counter,
        "Cumulative cpu time consumed in seconds.",
    );
    for e in entries {
        let [c, id, image, n, ns, pod] = e.labels();
        let labels = [c, ("cpu", "total"), id, image, n, ns, pod];
        let v = e.sample.stats.cpu.usage.total as f64 / 1e9;
        t.sample_at(name, &labels, v, Some(at));
    }
    family(
        &mut t,
        entries,
        at,
        (
            "container_cpu_user_seconds_total",
            Kind::Counter,
            "Cumulative user cpu time consumed in seconds.",
        ),
        |e| Some(e.sample.stats.cpu.usage.user as f64 / 1e9),
    );
    family(
        &mut t,
        entries,
        at,
        (
            "container_cpu_system_seconds_total",
            Kind::Counter,
            "Cumulative system cpu time consumed in seconds.",
        ),
        |e| Some(e.sample.stats.cpu.usage.kernel as f64 / 1e9),
    );
    let throttled = |e: &Entry| e.sample.stats.cpu.throttling.periods > 0;
    family(
        &mut t,
        entries,
        at,
        (
            "container_cpu_cfs_periods_total",
            Kind::Counter,
            "Number of elapsed enforcement period intervals.",
        ),
        |e| throttled(e).then_some(e.sample.stats.cpu.throttling.periods as f64),
    );
    family(
        &mut t,
        entries,
        at,
        (
            "container_cpu_cfs_throttled_periods_total",
            Kind::Counter,
            "Number of throttled period intervals.",
        ),
        |e| throttled(e).then_some(e.sample.stats.cpu.throttling.throttled_periods as f64),
    );
    family(
        &mut t,
        entries,
        at,
        (
            "container_cpu_cfs_throttled_seconds_total",
            Kind::Counter,
            "Total time duration the container has been throttled.",
        ),
        |e| throttled(e).then(|| e.sample.stats.cpu.throttling.throttled_time as f64 / 1e9),
    );
    let raw = |e: &Entry, keys: &[&str]| {
        keys.iter()
            .find_map(|k| e.sample.stats.memory.raw.get(*k).copied())
            .unwrap_or(0) as f64
    };
    family(
        &mut t,
        entries,
        at,
        (
            "container_memory_usage_bytes",
            Kind::Gauge,
            "Current memory usage in bytes, including all memory regardless of when it was accessed",
        ),
        |e| Some(e.sample.stats.memory.usage.usage as f64),
    );
    family(
        &mut t,
        entries,
        at,
        (
            "container_memory_working_set_bytes",
            Kind::Gauge,
            "Current working set in bytes.",
        ),
        |e| Some(e.sample.memory_used() as f64),
    );
    family(
        &mut t,
        entries,
        at,
        ("container_memory_rss", Kind::Gauge, "Size of RSS in bytes."),
        |e| Some(raw(e, &["total_rss", "anon"])),
    );
    family(
        &mut t,
        entries,
        at,
        (
            "container_memory_cache",
            Kind::Gauge,
            "Number of bytes of page cache memory.",
        ),
        |e| Some(raw(e, &["total_cache", "file"])),
    );
    family(
        &mut t,
        entries,
        at,
        (
            "container_memory_max_usage_bytes",
            Kind::Gauge,
            "Maximum memory usage recorded in bytes",
        ),
        |e| (e.sample.stats.memory.usage.max > 0).then_some(e.sample.stats.memory.usage.max as f64),
    );
    family(
        &mut t,
        entries,
        at,
        (
            "container_memory_failcnt",
            Kind::Counter,
            "Number of memory usage hits limits",
        ),
        |e| Some(e.sample.stats.memory.usage.failcnt as f64),
    );
    family(
        &mut t,
        entries,
        at,
        (
            "container_threads",
            Kind::Gauge,
            "Number of threads running inside the container",
        ),
        // the node's root cgroup counts no tasks
        |e| (e.id != "/").then_some(e.sample.stats.pids.current as f64),
    );
    family(
        &mut t,
        entries,
        at,
        (
            "container_spec_memory_limit_bytes",
            Kind::Gauge,
            "Memory limit for the container.",
        ),
        |e| e.spec.as_ref().map(|s| s.memory_limit as f64),
    );
    family(
        &mut t,
        entries,
        at,
        (
            "container_spec_cpu_shares",
            Kind::Gauge,
            "CPU share of the container.",
        ),
        |e| e.spec.as_ref().map(|s| s.cpu_shares.unwrap_or(1024) as f64),
    );
    family(
        &mut t,
        entries,
        at,
        (
            "container_spec_cpu_period",
            Kind::Gauge,
            "CPU period of the container.",
        ),
        |e| e.spec.as_ref()?.cpu_quota.map(|(_, p)| p as f64),
    );
    family(
        &mut t,
        entries,
        at,
        (
            "container_spec_cpu_quota",
            Kind::Gauge,
            "CPU quota of the container.",
        ),
        |e| e.spec.as_ref()?.cpu_quota.map(|(q, _)| q as f64),
    );
    family(
        &mut t,
        entries,
        at,
        (
            "container_start_time_seconds",
            Kind::Gauge,
            "Start time of the container since unix epoch in seconds.",
        ),
        |e| e.started,
    );
    for (name, help, value) in [
        (
            "container_network_receive_bytes_total",
            "Cumulative count of bytes received",
            (|d: &NetDev| d.rx_bytes) as fn(&NetDev) -> u64,
        ),
        (
            "container_network_receive_packets_total",
            "Cumulative count of packets received",
            |d| d.rx_packets,
        ),
        (
            "container_network_receive_errors_total",
            "Cumulative count of errors encountered while receiving",
            |d| d.rx_errors,
        ),
        (
            "container_network_receive_packets_dropped_total",
            "Cumulative count of packets dropped while receiving",
            |d| d.rx_dropped,
        ),
        (
            "container_network_transmit_bytes_total",
            "Cumulative count of bytes transmitted",
            |d| d.tx_bytes,
        ),
        (
            "container_network_transmit_packets_total",
            "Cumulative count of packets transmitted",
            |d| d.tx_packets,
        ),
        (
            "container_network_transmit_errors_total",
            "Cumulative count of errors encountered while transmitting",
            |d| d.tx_errors,
        ),
        (
            "container_network_transmit_packets_dropped_total",
            "Cumulative count of packets dropped while transmitting",
            |d| d.tx_dropped,
        ),
    ] {
        network(&mut t, entries, at, (name, help), value);
    }
    t.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_figures_map_to_cadvisor_series() {
        let mut c = Entry {
            id: "/berth/pods/burstable/podu1/abc".into(),
            name: "abc".into(),
            image: "busybox:latest".into(),
            container: "app".into(),
            pod: "web".into(),
            namespace: "default".into(),
            spec: Some(Spec::of(&berth_engine::config::Resources {
                memory: 64 << 20,
                cpu_shares: 102,
                nano_cpus: 500_000_000,
                ..Default::default()
            })),
            started: Some(1700000000.5),
            ..Entry::default()
        };
        let s = &mut c.sample.stats;
        s.cpu.usage.total = 1_500_000_000;
        s.memory.usage.usage = 10_000;
        s.memory.raw.insert("total_inactive_file".into(), 4_000);
        s.memory.raw.insert("total_rss".into(), 5_000);
        s.memory.raw.insert("total_cache".into(), 4_500);
        let mut pod = Entry {
            id: "/berth/pods/burstable/podu1".into(),
            pod: "web".into(),
            namespace: "default".into(),
            spec: Some(Spec::default()),
            ..Entry::default()
        };
        pod.sample.networks = Some(BTreeMap::from([(
            "eth0".to_owned(),
            NetDev {
                rx_bytes: 42,
                tx_bytes: 7,
                ..NetDev::default()
            },
        )]));
        let root = Entry {
            id: "/".into(),
            ..Entry::default()
        };
        let samples = prom::parse(&write(&[root, pod, c], 1)).unwrap();
        let find = |name: &str, id: &str| {
            samples
                .iter()
                .find(|s| s.name == name && s.label("id") == Some(id))
        };
        let app = "/berth/pods/burstable/podu1/abc";
        let cpu = find("container_cpu_usage_seconds_total", app).unwrap();
        assert_eq!(cpu.value, 1.5);
        let labels: Vec<&str> = cpu.labels.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            labels,
            [
                "container",
                "cpu",
                "id",
                "image",
                "name",
                "namespace",
                "pod"
            ]
        );
        assert_eq!(cpu.label("container"), Some("app"));
        assert_eq!(cpu.label("cpu"), Some("total"));
        let v = |name: &str, id: &str| find(name, id).map(|s| s.value);
        assert_eq!(v("container_memory_working_set_bytes", app), Some(6000.0));
        assert_eq!(v("container_memory_usage_bytes", app), Some(10000.0));
        assert_eq!(v("container_memory_rss", app), Some(5000.0));
        assert_eq!(v("container_memory_cache", app), Some(4500.0));
        assert_eq!(
            v("container_spec_memory_limit_bytes", app),
            Some((64 << 20) as f64)
        );
        assert_eq!(v("container_spec_cpu_shares", app), Some(102.0));
        assert_eq!(v("container_spec_cpu_quota", app), Some(50000.0));
        assert_eq!(v("container_spec_cpu_period", app), Some(100000.0));
        assert_eq!(v("container_start_time_seconds", app), Some(1700000000.5));
        // the node has no spec; a pod without a CPU limit has no quota
        assert_eq!(v("container_spec_memory_limit_bytes", "/"), None);
        assert_eq!(
            v("container_spec_cpu_quota", "/berth/pods/burstable/podu1"),
            None
        );
        let rx = find(
            "container_network_receive_bytes_total",
            "/berth/pods/burstable/podu1",
        )
        .unwrap();
        assert_eq!((rx.value, rx.label("interface")), (42.0, Some("eth0")));
        assert_eq!(rx.label("container"), Some(""));
        assert!(find("container_network_receive_bytes_total", app).is_none());
    }
}
