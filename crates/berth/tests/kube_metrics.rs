//! Prometheus metrics of `berth server` as kubectl reads them: the API
//! server's `/metrics` with the controllers' work queues and the
//! scheduler's series, the node's kubelet `/metrics` and
//! `/metrics/cadvisor` through the API server's node proxy, and a user
//! without `nodes/proxy` refused. Each exposition is parsed and values are
//! checked. Driven by kubectl 1.33; the busybox image is imported offline.

use std::path::Path;

use berth_testutil::{KubeServer, have_kubectl, root_or_skip};
use berth_types::prom::{self, Sample};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_berth"))
}

/// `kubectl get --raw PATH`, parsed.
fn scrape(s: &KubeServer, path: &str) -> Vec<Sample> {
    let text = s.ok(&["get", "--raw", path]);
    prom::parse(&text).unwrap_or_else(|e| panic!("{path}: {e}\n{text}"))
}

/// The value of the one sample `name` whose labels include `labels`.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let found: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.name == name && labels.iter().all(|(k, v)| s.label(k) == Some(*v)))
        .collect();
    assert!(found.len() <= 1, "{name} {labels:?}: several {found:?}");
    found.first().map(|s| s.value)
}

/// Scrapes `path` until `ok` holds of its samples (up to `secs`).
fn scrape_until(
    s: &KubeServer,
    path: &str,
    secs: u64,
    ok: impl Fn(&[Sample]) -> bool,
) -> Vec<Sample> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        let samples = scrape(s, path);
        if ok(&samples) {
            return samples;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{path}: the condition never held\n{}",
            s.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

#[test]
fn api_server_kubelet_and_cadvisor_metrics() {
    if !root_or_skip("kube_metrics") || !have_kubectl() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = KubeServer::start_node(bin(), dir.path(), &[]);
    let node = s.wait_for(&["nodes"], "{.items[0].metadata.name}", 30, |v| {
        !v.is_empty()
    });
    s.apply(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: app
        image: busybox:stable
        imagePullPolicy: IfNotPresent
        command: ["sh", "-c", "while true; do i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 1; done"]
        resources:
          limits: {memory: 64Mi, cpu: 500m}
"#,
    );
    let pod = s.wait_for(
        &["pods", "-l", "app=web"],
        "{.items[0].metadata.name} {.items[0].status.phase}",
        60,
        |v| v.ends_with(" Running"),
    );
    let pod = pod.trim_end_matches(" Running").to_owned();

    // the API server's /metrics: the deployment queue and the scheduler
    let api = scrape(&s, "/metrics");
    let adds = value(&api, "workqueue_adds_total", &[("name", "deployment")]);
    assert!(adds.is_some_and(|v| v > 0.0), "deployment adds: {adds:?}");
    let rs = value(&api, "workqueue_adds_total", &[("name", "replicaset")]);
    assert!(rs.is_some_and(|v| v > 0.0), "replicaset adds: {rs:?}");
    assert!(value(&api, "workqueue_depth", &[("name", "deployment")]).is_some());
    let done = value(
        &api,
        "workqueue_work_duration_seconds_count",
        &[("name", "deployment")],
    );
    assert!(done.is_some_and(|v| v > 0.0), "deployment work: {done:?}");
    let scheduled = [("result", "scheduled"), ("profile", "default-scheduler")];
    let n = value(&api, "scheduler_schedule_attempts_total", &scheduled);
    assert!(n.is_some_and(|v| v >= 1.0), "scheduled: {n:?}");
    let n = value(
        &api,
        "scheduler_scheduling_attempt_duration_seconds_count",
        &scheduled,
    );
    assert!(n.is_some_and(|v| v >= 1.0), "attempt durations: {n:?}");
    assert!(value(&api, "scheduler_pending_pods", &[("queue", "active")]).is_some());

    // the kubelet's /metrics through the node proxy
    let kubelet = scrape(&s, &format!("/api/v1/nodes/{node}/proxy/metrics"));
    assert_eq!(
        value(&kubelet, "kubelet_node_name", &[("node", &node)]),
        Some(1.0)
    );
    let running = value(&kubelet, "kubelet_running_pods", &[]);
    assert!(
        running.is_some_and(|v| v >= 1.0),
        "running pods: {running:?}"
    );
    let containers = value(
        &kubelet,
        "kubelet_running_containers",
        &[("container_state", "running")],
    );
    assert!(
        containers.is_some_and(|v| v >= 1.0),
        "containers: {containers:?}"
    );
    let started = value(&kubelet, "kubelet_started_pods_total", &[]);
    assert!(started.is_some_and(|v| v >= 1.0), "started: {started:?}");
    let started = value(
        &kubelet,
        "kubelet_started_containers_total",
        &[("container_type", "container")],
    );
    assert!(started.is_some_and(|v| v >= 1.0), "started: {started:?}");
    let starts = value(&kubelet, "kubelet_pod_start_duration_seconds_count", &[]);
    assert!(starts.is_some_and(|v| v >= 1.0), "pod starts: {starts:?}");
    let ops = value(
        &kubelet,
        "kubelet_runtime_operations_total",
        &[("operation_type", "start_container")],
    );
    assert!(ops.is_some_and(|v| v >= 1.0), "start_container: {ops:?}");
    let rss = value(&kubelet, "process_resident_memory_bytes", &[]);
    assert!(rss.is_some_and(|v| v > 1e6), "rss: {rss:?}");
    let fds = value(&kubelet, "process_open_fds", &[]);
    assert!(fds.is_some_and(|v| v > 3.0), "fds: {fds:?}");

    // cAdvisor's series for the pod's container (CPU used by its loop)
    let labels = [
        ("container", "app"),
        ("pod", pod.as_str()),
        ("namespace", "default"),
    ];
    let cadvisor = scrape_until(
        &s,
        &format!("/api/v1/nodes/{node}/proxy/metrics/cadvisor"),
        30,
        |c| value(c, "container_cpu_usage_seconds_total", &labels).is_some_and(|v| v > 0.0),
    );
    let ws = value(&cadvisor, "container_memory_working_set_bytes", &labels);
    assert!(ws.is_some_and(|v| v > 0.0), "working set: {ws:?}");
    assert_eq!(
        value(&cadvisor, "container_spec_memory_limit_bytes", &labels),
        Some(64.0 * 1024.0 * 1024.0)
    );
    assert_eq!(
        value(&cadvisor, "container_spec_cpu_quota", &labels),
        Some(50000.0)
    );
    let start = value(&cadvisor, "container_start_time_seconds", &labels);
    assert!(start.is_some_and(|v| v > 1.6e9), "start time: {start:?}");
    // the pod's own cgroup and network, and the node's root cgroup
    let pod_level = [("container", ""), ("pod", pod.as_str())];
    let cpu = value(&cadvisor, "container_cpu_usage_seconds_total", &pod_level);
    assert!(cpu.is_some_and(|v| v > 0.0), "pod cpu: {cpu:?}");
    let rx = cadvisor.iter().find(|x| {
        x.name == "container_network_receive_bytes_total" && x.label("pod") == Some(&pod)
    });
    assert!(
        rx.is_some_and(|x| x.label("interface").is_some_and(|i| !i.is_empty())),
        "pod network: {rx:?}"
    );
    let root = value(
        &cadvisor,
        "container_memory_usage_bytes",
        &[("id", "/"), ("pod", "")],
    );
    assert!(root.is_some_and(|v| v > 0.0), "root memory: {root:?}");

    // a user without nodes/proxy is refused, as kube-apiserver refuses
    let denied = s.fails(&[
        "get",
        "--raw",
        &format!("/api/v1/nodes/{node}/proxy/metrics"),
        "--as=jane",
    ]);
    assert!(
        denied.contains("Forbidden") || denied.contains("forbidden"),
        "{denied}"
    );
    let denied = s.fails(&["get", "--raw", "/metrics", "--as=jane"]);
    assert!(denied.contains("orbidden"), "{denied}");
}
