//! Prometheus metrics of `berth server` as kubectl reads them: the API
//! server's `/metrics` with the controllers' work queues and the
//! scheduler's series, the node's kubelet `/metrics` and
//! `/metrics/cadvisor` through the API server's node proxy, a user
//! without `nodes/proxy` refused, and a direct caller of the kubelet API
//! (a client certificate of the cluster CA, made with openssl) reviewed
//! for `nodes/metrics` as the kubelet reviews it. Each exposition is
//! parsed and values are checked. Driven by kubectl 1.33 and curl; the
//! busybox image is imported offline.

use std::path::Path;
use std::process::Command;

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

/// Runs a tool, which must succeed.
fn run(tool: &str, args: &[&str]) {
    let out = Command::new(tool).args(args).output().expect(tool);
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A client certificate and key for `user` in `group`, signed by the
/// cluster CA under `pki`, written to `dir`: (cert, key).
fn client_cert(pki: &Path, dir: &Path, user: &str, group: &str) -> (String, String) {
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let (key, csr, crt, ext) = (path("c.key"), path("c.csr"), path("c.crt"), path("c.ext"));
    std::fs::write(
        &ext,
        "keyUsage = critical, digitalSignature\nextendedKeyUsage = clientAuth\n",
    )
    .unwrap();
    let ca = |name: &str| pki.join(name).to_string_lossy().into_owned();
    run(
        "openssl",
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            &key,
        ],
    );
    let subject = format!("/CN={user}/O={group}");
    run(
        "openssl",
        &["req", "-new", "-key", &key, "-subj", &subject, "-out", &csr],
    );
    run(
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca("ca.crt"),
            "-CAkey",
            &ca("ca.key"),
            "-set_serial",
            "4242",
            "-days",
            "1",
            "-extfile",
            &ext,
            "-out",
            &crt,
        ],
    );
    (crt, key)
}

/// `GET url` with a client certificate: (status, body).
fn get_as(url: &str, (cert, key): &(String, String)) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sk", "--max-time", "10", "--cert", cert, "--key", key])
        .args(["-w", "\n%{http_code}", url])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_owned())
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

    // a direct caller of the kubelet API is reviewed for nodes/metrics
    let ip = s.ok(&[
        "get",
        "node",
        &node,
        "-o",
        "jsonpath={.status.addresses[?(@.type==\"InternalIP\")].address}",
    ]);
    let port = s.ok(&[
        "get",
        "node",
        &node,
        "-o",
        "jsonpath={.status.daemonEndpoints.kubeletEndpoint.Port}",
    ]);
    let kubelet = format!("https://{ip}:{port}");
    let jane = client_cert(&s.root.join("server/pki"), dir.path(), "jane", "devs");
    let (code, body) = get_as(&format!("{kubelet}/metrics"), &jane);
    assert_eq!(
        (code, body.as_str()),
        (
            403,
            "Forbidden (user=jane, verb=get, resource=nodes, subresource=metrics)"
        )
    );
    s.apply(
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: node-metrics}
rules:
- apiGroups: [""]
  resources: [nodes/metrics]
  verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: jane-node-metrics}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: node-metrics}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: jane}
"#,
    );
    let (code, body) = get_as(&format!("{kubelet}/metrics/cadvisor"), &jane);
    assert_eq!(code, 200, "{body}");
    let samples = prom::parse(&body).unwrap();
    let ws = value(&samples, "container_memory_working_set_bytes", &labels);
    assert!(ws.is_some_and(|v| v > 0.0), "working set: {ws:?}");
    // nodes/metrics is not nodes/proxy: logs stay refused
    let logs = format!("{kubelet}/containerLogs/default/{pod}/app");
    let (code, body) = get_as(&logs, &jane);
    assert_eq!(
        (code, body.as_str()),
        (
            403,
            "Forbidden (user=jane, verb=get, resource=nodes, subresource=proxy)"
        )
    );
}
