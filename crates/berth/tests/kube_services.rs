//! Services on `berth server`'s node: EndpointSlices follow the pods, and
//! the node's service proxy (nftables) carries ClusterIP and NodePort
//! traffic to ready pods, from the host and from pods. Driven by kubectl
//! 1.33; the busybox image is imported offline.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use berth_testutil::{KubeServer, have_kubectl, http_body as get, root_or_skip};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_berth"))
}

/// Distinct answers from `addr` within `secs` (until `want` were seen).
fn answers(addr: &str, want: usize, secs: u64) -> HashSet<String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut seen = HashSet::new();
    while Instant::now() < deadline && seen.len() < want {
        if let Ok(b) = get(addr) {
            seen.insert(b);
        } else {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    seen
}

#[test]
fn a_service_spreads_over_ready_pods_by_cluster_ip_and_node_port() {
    if !root_or_skip("kube_services") || !have_kubectl() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = KubeServer::start_node(bin(), dir.path(), &[]);
    s.apply(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: web
        image: busybox:stable
        imagePullPolicy: IfNotPresent
        command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"]
        ports: [{name: http, containerPort: 8080}]
        readinessProbe: {httpGet: {path: /, port: http}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  clusterIP: 198.19.0.20
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http, nodePort: 30080}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: c
    image: busybox:stable
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
"#,
    );
    s.wait_for(&["deployment", "web"], "{.status.readyReplicas}", 60, |v| {
        v == "2"
    });
    let pods: HashSet<String> = s
        .ok(&[
            "get",
            "pods",
            "-l",
            "app=web",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ])
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(pods.len(), 2);
    // the slice lists both, ready, on the container port
    s.wait_for(
        &["endpointslices", "-l", "kubernetes.io/service-name=web"],
        "{.items[0].endpoints[*].conditions.ready}",
        30,
        |v| v == "true true",
    );
    assert_eq!(
        s.ok(&[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=web",
            "-o",
            "jsonpath={.items[0].ports[0].port}"
        ]),
        "8080"
    );
    // from the host: the ClusterIP and the NodePort reach both pods
    assert_eq!(
        answers("198.19.0.20:80", 2, 20),
        pods,
        "through the ClusterIP"
    );
    assert_eq!(
        answers("127.0.0.1:30080", 2, 20),
        pods,
        "through the NodePort"
    );
    // from a pod
    s.wait_for(&["pod", "client"], "{.status.phase}", 30, |v| {
        v == "Running"
    });
    let from_pod = s.ok(&[
        "exec",
        "client",
        "--",
        "sh",
        "-c",
        // busybox's static wget crashes resolving; nc speaks HTTP well enough
        "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 5 198.19.0.20 80 | tail -n 1",
    ]);
    assert!(pods.contains(from_pod.trim()), "{from_pod}");
    // the kubelet's Service variables: the API server's and the namespace's
    let env = s.ok(&[
        "exec",
        "client",
        "--",
        "sh",
        "-c",
        "echo $KUBERNETES_SERVICE_HOST $KUBERNETES_SERVICE_PORT $WEB_SERVICE_HOST $WEB_SERVICE_PORT_HTTP $WEB_PORT",
    ]);
    assert_eq!(
        env.trim(),
        "198.19.0.1 443 198.19.0.20 80 tcp://198.19.0.20:80"
    );
    // a LoadBalancer: served on the node's address at its own port, the
    // address in its status
    s.apply(
        r#"
apiVersion: v1
kind: Service
metadata: {name: web-lb}
spec:
  type: LoadBalancer
  clusterIP: 198.19.0.23
  selector: {app: web}
  ports: [{name: http, port: 18080, targetPort: http, nodePort: 30082}]
"#,
    );
    s.wait_for(
        &["service", "web-lb"],
        "{.status.loadBalancer.ingress[0].ip}",
        30,
        |v| v == "127.0.0.1",
    );
    assert_eq!(
        answers("127.0.0.1:18080", 2, 20),
        pods,
        "through the LoadBalancer"
    );
    let row = s.ok(&["get", "service", "web-lb", "--no-headers"]);
    assert!(
        row.contains("LoadBalancer")
            && row.contains("127.0.0.1")
            && row.contains("18080:30082/TCP"),
        "{row}"
    );
    s.ok(&["delete", "service", "web-lb"]);
    // no ready endpoint: refused at once
    s.ok(&["scale", "deployment", "web", "--replicas=0"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match get("198.19.0.20:80") {
            Err(e) if e.contains("refused") => break,
            other => {
                assert!(Instant::now() < deadline, "still answered: {other:?}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    // a deleted Service leaves nothing in the kernel (this root's table)
    let table = berth_net::services::table_for(&berth_net::NetConfig::load(&s.root).unwrap());
    s.ok(&["delete", "service", "web"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = std::process::Command::new("nft")
            .args(["list", "table", "ip", &table])
            .output()
            .unwrap();
        let rules = String::from_utf8_lossy(&out.stdout).into_owned();
        if !rules.contains("198.19.0.20") && !rules.contains("30080") {
            break;
        }
        assert!(Instant::now() < deadline, "{rules}\n{}", s.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    s.ok(&["delete", "deployment", "web"]);
    s.ok(&["delete", "pod", "client", "--wait=true"]);
}

/// Requests `targets` in turn every 10 ms until `stop`; returns the
/// answers seen and the failures (with what failed).
fn hammer(
    targets: Vec<String>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<(HashSet<String>, Vec<String>)> {
    std::thread::spawn(move || {
        let mut seen = HashSet::new();
        let mut failures = Vec::new();
        let mut i = 0usize;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let t = &targets[i % targets.len()];
            i += 1;
            match get(t) {
                Ok(b) => {
                    seen.insert(b);
                }
                Err(e) => failures.push(format!("{t}: {e}")),
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        (seen, failures)
    })
}

#[test]
fn a_rolling_update_behind_a_service_drops_no_request() {
    if !root_or_skip("kube_services") || !have_kubectl() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let hp = berth_testutil::free_port().to_string();
    let s = KubeServer::start_node(
        bin(),
        dir.path(),
        &["--ingress-http-port", &hp, "--ingress-https-port", "0"],
    );
    s.apply(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: app}
spec:
  replicas: 3
  strategy: {rollingUpdate: {maxUnavailable: 0, maxSurge: 1}}
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec:
      terminationGracePeriodSeconds: 10
      containers:
      - name: web
        image: busybox:stable
        imagePullPolicy: IfNotPresent
        env: [{name: VERSION, value: v1}]
        command: ["sh", "-c", "mkdir -p /www && echo $VERSION > /www/index.html && exec httpd -f -p 8080 -h /www"]
        readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 1}
        lifecycle: {preStop: {exec: {command: ["sleep", "3"]}}}
---
apiVersion: v1
kind: Service
metadata: {name: app}
spec:
  type: NodePort
  clusterIP: 198.19.0.22
  selector: {app: app}
  ports: [{port: 80, targetPort: 8080, nodePort: 30081}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: app}
spec:
  defaultBackend: {service: {name: app, port: {number: 80}}}
"#,
    );
    s.wait_for(&["deployment", "app"], "{.status.readyReplicas}", 60, |v| {
        v == "3"
    });
    let targets = vec![
        "198.19.0.22:80".to_owned(),
        "127.0.0.1:30081".to_owned(),
        format!("127.0.0.1:{hp}"),
    ];
    assert_eq!(answers(&targets[0], 1, 20).len(), 1, "the Service answers");
    assert_eq!(answers(&targets[1], 1, 20).len(), 1, "the NodePort answers");
    assert_eq!(answers(&targets[2], 1, 20).len(), 1, "the Ingress answers");
    // roll to v2 while a client asks every 10 ms
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let client = hammer(targets.clone(), stop.clone());
    s.ok(&["set", "env", "deployment/app", "VERSION=v2"]);
    s.ok(&["rollout", "status", "deployment/app", "--timeout=120s"]);
    // the old pods' preStop and stop, after the rollout reports done
    std::thread::sleep(Duration::from_secs(5));
    // and a pod deleted under load
    let victim = s.ok(&[
        "get",
        "pods",
        "-l",
        "app=app",
        "-o",
        "jsonpath={.items[0].metadata.name}",
    ]);
    s.ok(&["delete", "pod", victim.trim(), "--wait=false"]);
    s.wait_for(&["deployment", "app"], "{.status.readyReplicas}", 60, |v| {
        v == "3"
    });
    std::thread::sleep(Duration::from_secs(5));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (seen, failures) = client.join().unwrap();
    assert!(
        failures.is_empty(),
        "{} failed requests: {:?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
    assert!(seen.contains("v1") && seen.contains("v2"), "{seen:?}");
    s.ok(&["delete", "deployment", "app"]);
    s.ok(&["delete", "service", "app"]);
}

#[test]
fn kubectl_top_reads_the_nodes_and_pods_usage() {
    if !root_or_skip("kube_services") || !have_kubectl() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = KubeServer::start_node(bin(), dir.path(), &[]);
    s.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: busy, labels: {load: high}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: spin
    image: busybox:stable
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "while :; do :; done"]
---
apiVersion: v1
kind: Pod
metadata: {name: idle}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: rest
    image: busybox:stable
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
"#,
    );
    s.wait_for(&["pod", "busy"], "{.status.phase}", 30, |v| v == "Running");
    s.wait_for(&["pod", "idle"], "{.status.phase}", 30, |v| v == "Running");
    // discovery lists the group, as kubectl top needs
    let groups = s.ok(&["api-versions"]);
    assert!(
        groups.lines().any(|l| l == "metrics.k8s.io/v1beta1"),
        "{groups}"
    );
    let nodes = s.ok(&["top", "nodes", "--no-headers"]);
    assert!(nodes.starts_with("test-node "), "{nodes}");
    let pods = s.ok(&["top", "pods", "--no-headers"]);
    let busy_cpu = pods
        .lines()
        .find(|l| l.starts_with("busy "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.strip_suffix('m'))
        .and_then(|c| c.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("{pods}"));
    assert!(
        busy_cpu >= 200,
        "a spinning shell uses a good part of a core: {pods}"
    );
    assert!(pods.lines().any(|l| l.starts_with("idle ")), "{pods}");
    let one = s.ok(&["top", "pod", "busy", "--containers", "--no-headers"]);
    assert!(one.starts_with("busy ") && one.contains(" spin "), "{one}");
    let labelled = s.ok(&["top", "pods", "-l", "load=high", "--no-headers"]);
    assert_eq!(labelled.lines().count(), 1, "{labelled}");
    let raw = s.ok(&[
        "get",
        "--raw",
        "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/idle",
    ]);
    let v: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(v["kind"], "PodMetrics");
    assert!(
        v["containers"][0]["usage"]["memory"].as_str().is_some(),
        "{raw}"
    );
    s.ok(&["delete", "pod", "busy", "idle", "--wait=true"]);
}

#[test]
fn an_autoscaler_scales_a_busy_deployment_up_to_its_maximum() {
    if !root_or_skip("kube_services") || !have_kubectl() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = KubeServer::start_node(bin(), dir.path(), &[]);
    s.apply(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: spin}
spec:
  replicas: 1
  selector: {matchLabels: {app: spin}}
  template:
    metadata: {labels: {app: spin}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: spin
        image: busybox:stable
        imagePullPolicy: IfNotPresent
        command: ["sh", "-c", "while :; do :; done"]
        resources: {requests: {cpu: 100m}, limits: {cpu: 300m}}
"#,
    );
    s.wait_for(
        &["deployment", "spin"],
        "{.status.readyReplicas}",
        60,
        |v| v == "1",
    );
    s.ok(&[
        "autoscale",
        "deployment",
        "spin",
        "--cpu-percent=50",
        "--min=1",
        "--max=3",
    ]);
    // about 300 % of its request: the autoscaler asks for more than the
    // maximum and stops there
    s.wait_for(&["deployment", "spin"], "{.spec.replicas}", 90, |v| {
        v == "3"
    });
    s.wait_for(
        &["hpa", "spin"],
        "{.status.conditions[?(@.type==\"ScalingLimited\")].reason}",
        60,
        |v| v == "TooManyReplicas",
    );
    let row = s.ok(&["get", "hpa", "spin", "--no-headers"]);
    assert!(
        row.contains("Deployment/spin")
            && row.contains("%/50%")
            && row.contains(" 1 ")
            && row.contains(" 3 "),
        "{row}"
    );
    let events = s.ok(&[
        "get",
        "events",
        "-o",
        "jsonpath={range .items[*]}{.involvedObject.kind}/{.reason}: {.message}{\"\\n\"}{end}",
    ]);
    assert!(
        events.lines().any(|l| l
            .starts_with("HorizontalPodAutoscaler/SuccessfulRescale: New size: ")
            && l.ends_with(
                "reason: cpu resource utilization (percentage of request) above target"
            )),
        "{events}"
    );
    s.ok(&["delete", "hpa", "spin"]);
    // one container's use (ContainerResource), and a metric berth has no
    // API for (Pods: no custom metrics API), with kube's condition
    s.apply(
        r#"
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: spin-c}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: spin}
  minReplicas: 1
  maxReplicas: 3
  metrics:
  - type: ContainerResource
    containerResource: {name: cpu, container: spin, target: {type: Utilization, averageUtilization: 50}}
"#,
    );
    let used = s.wait_for(
        &["hpa", "spin-c"],
        "{.status.currentMetrics[0].type} {.status.currentMetrics[0].containerResource.container} {.status.currentMetrics[0].containerResource.current.averageUtilization}",
        60,
        |v| v.starts_with("ContainerResource spin ") && v.len() > "ContainerResource spin ".len(),
    );
    let row = s.ok(&["get", "hpa", "spin-c", "--no-headers"]);
    let pct = used.rsplit(' ').next().unwrap_or_default();
    assert!(row.contains(&format!("cpu: {pct}%/50%")), "{row}");
    s.ok(&["delete", "hpa", "spin-c"]);
    s.apply(
        r#"
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: spin-p}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: spin}
  maxReplicas: 3
  metrics:
  - type: Pods
    pods: {metric: {name: packets-per-second}, target: {type: AverageValue, averageValue: "1k"}}
"#,
    );
    s.wait_for(
        &["hpa", "spin-p"],
        "{.status.conditions[?(@.type==\"ScalingActive\")].reason}",
        60,
        |v| v == "FailedGetPodsMetric",
    );
    s.ok(&["delete", "hpa", "spin-p"]);
    s.ok(&["delete", "deployment", "spin"]);
}

/// `curl` to the ingress with `host` resolving to 127.0.0.1.
fn curl(args: &[&str]) -> (String, String) {
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "5", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (body.trim().to_owned(), code.to_owned())
}

#[test]
fn the_ingress_routes_hosts_and_paths_over_http_and_https() {
    if !root_or_skip("kube_services") || !have_kubectl() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (hp, sp) = (berth_testutil::free_port(), berth_testutil::free_port());
    let (hp_s, sp_s) = (hp.to_string(), sp.to_string());
    let s = KubeServer::start_node(
        bin(),
        dir.path(),
        &["--ingress-http-port", &hp_s, "--ingress-https-port", &sp_s],
    );
    let cert = rcgen::generate_simple_self_signed(vec!["shop.example".to_owned()]).unwrap();
    let (crt, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&crt, cert.cert.pem()).unwrap();
    std::fs::write(&key, cert.signing_key.serialize_pem()).unwrap();
    s.ok(&[
        "create",
        "secret",
        "tls",
        "shop-tls",
        "--cert",
        &crt.display().to_string(),
        "--key",
        &key.display().to_string(),
    ]);
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
      - name: web
        image: busybox:stable
        imagePullPolicy: IfNotPresent
        command: ["sh", "-c", "mkdir -p /www && echo web > /www/index.html && exec httpd -f -p 8080 -h /www"]
        readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 1}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  replicas: 1
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: api
        image: busybox:stable
        imagePullPolicy: IfNotPresent
        command: ["sh", "-c", "mkdir -p /www/api && echo api > /www/api/index.html && echo api > /www/index.html && exec httpd -f -p 8080 -h /www"]
        readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {clusterIP: 198.19.0.24, selector: {app: web}, ports: [{name: http, port: 80, targetPort: 8080}]}
---
apiVersion: v1
kind: Service
metadata: {name: api}
spec: {clusterIP: 198.19.0.25, selector: {app: api}, ports: [{name: http, port: 80, targetPort: 8080}]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop}
spec:
  tls: [{hosts: [shop.example], secretName: shop-tls}]
  rules:
  - host: shop.example
    http:
      paths:
      - {path: /api, pathType: Prefix, backend: {service: {name: api, port: {name: http}}}}
      - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
"#,
    );
    s.wait_for(&["deployment", "web"], "{.status.readyReplicas}", 60, |v| {
        v == "1"
    });
    s.wait_for(&["deployment", "api"], "{.status.readyReplicas}", 60, |v| {
        v == "1"
    });
    // the class is berth's and the default; the status names the node
    assert_eq!(
        s.ok(&["get", "ingressclass", "berth", "-o", "jsonpath={.spec.controller} {.metadata.annotations.ingressclass\\.kubernetes\\.io/is-default-class}"]),
        "berth.dev/ingress-controller true"
    );
    s.wait_for(
        &["ingress", "shop"],
        "{.status.loadBalancer.ingress[0].ip}",
        30,
        |v| v == "127.0.0.1",
    );
    let http = format!("http://127.0.0.1:{hp}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (body, code) = curl(&["-H", "Host: shop.example", &format!("{http}/")]);
        if code == "200" && body == "web" {
            break;
        }
        assert!(Instant::now() < deadline, "{code} {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        curl(&["-H", "Host: shop.example", &format!("{http}/api/")]),
        ("api".to_owned(), "200".to_owned())
    );
    assert_eq!(
        curl(&["-H", "Host: shop.example", &format!("{http}/apiary")]).1,
        "404",
        "a prefix is whole elements"
    );
    assert_eq!(
        curl(&["-H", "Host: other.example", &format!("{http}/")]).1,
        "404"
    );
    // HTTPS with the Secret's certificate, chosen by the server name
    let https = format!("https://shop.example:{sp}/api/");
    let resolve = format!("shop.example:{sp}:127.0.0.1");
    assert_eq!(
        curl(&[
            "--resolve",
            &resolve,
            "--cacert",
            &crt.display().to_string(),
            &https
        ]),
        ("api".to_owned(), "200".to_owned())
    );
    let row = s.ok(&["get", "ingress", "shop", "--no-headers"]);
    assert!(
        row.contains("berth")
            && row.contains("shop.example")
            && row.contains("127.0.0.1")
            && row.contains("80, 443"),
        "{row}"
    );
    // an Ingress naming a missing Service and Secret: 503 for its path,
    // Warning events naming both
    s.apply(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: broken}
spec:
  tls: [{hosts: [broken.example], secretName: no-such-tls}]
  rules:
  - host: broken.example
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: no-such-svc, port: {number: 80}}}}
"#,
    );
    s.wait_for(
        &["events", "--field-selector", "involvedObject.name=broken"],
        "{.items[*].reason}",
        20,
        |v| v.contains("BackendUnavailable") && v.contains("TLSSecretInvalid"),
    );
    let notes = s.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=broken",
        "-o",
        "jsonpath={.items[*].message}",
    ]);
    assert!(
        notes.contains("service \"default/no-such-svc\" not found"),
        "{notes}"
    );
    assert!(
        notes.contains("secret \"default/no-such-tls\" not found"),
        "{notes}"
    );
    assert_eq!(
        curl(&["-H", "Host: broken.example", &format!("{http}/")]).1,
        "503"
    );
    s.ok(&["delete", "ingress", "shop", "broken"]);
    s.ok(&["delete", "deployment", "web", "api"]);
}

#[test]
fn kubectl_services_get_cluster_ips() {
    if !have_kubectl() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = KubeServer::start(bin(), dir.path(), &[]);
    s.ok(&["create", "service", "clusterip", "web", "--tcp=80:8080"]);
    let out = s.ok(&["get", "svc", "web"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    let cols: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(cols[0], "web", "{out}");
    assert_eq!(cols[1], "ClusterIP", "{out}");
    assert!(cols[2].starts_with("198.19."), "{out}");
    assert_eq!(cols[3], "<none>", "{out}");
    assert_eq!(cols[4], "80/TCP", "{out}");

    let out = s.ok(&["get", "svc", "kubernetes"]);
    let cols: Vec<&str> = out
        .lines()
        .nth(1)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        cols[..5],
        ["kubernetes", "ClusterIP", "198.19.0.1", "<none>", "443/TCP"],
        "{out}"
    );

    // The allocation is an IPAddress kubectl lists, under the ServiceCIDR.
    let ip = cols[2].to_owned();
    let out = s.ok(&["get", "ipaddresses,servicecidrs"]);
    assert!(out.contains("services/default/kubernetes"), "{out}");
    assert!(out.contains(&ip), "{out}");
    assert!(out.contains("198.19.0.0/20"), "{out}");

    let err = s.fails(&[
        "create",
        "service",
        "clusterip",
        "dup",
        "--tcp=80",
        "--clusterip=198.19.0.1",
    ]);
    assert!(
        err.contains("spec.clusterIPs: Invalid value: []string{\"198.19.0.1\"}: failed to allocate IP 198.19.0.1: provided IP is already allocated"),
        "{err}"
    );
    let out = s.ok(&[
        "create",
        "service",
        "nodeport",
        "np",
        "--tcp=80:8080",
        "--node-port=30080",
    ]);
    assert!(out.contains("service/np created"), "{out}");
    let out = s.ok(&["get", "svc", "np", "--no-headers"]);
    assert!(out.contains("80:30080/TCP"), "{out}");
}

#[test]
fn services_keep_answering_while_the_server_is_killed_and_restarted() {
    if !root_or_skip("kube_services") || !have_kubectl() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut s = KubeServer::start_node(bin(), dir.path(), &[]);
    s.apply(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: steady}
spec:
  replicas: 2
  selector: {matchLabels: {app: steady}}
  template:
    metadata: {labels: {app: steady}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: web
        image: busybox:stable
        imagePullPolicy: IfNotPresent
        command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"]
        readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: steady}
spec:
  type: NodePort
  selector: {app: steady}
  ports: [{port: 80, targetPort: 8080}]
"#,
    );
    s.wait_for(
        &["deployment", "steady"],
        "{.status.readyReplicas}",
        60,
        |v| v == "2",
    );
    let ip = s.ok(&[
        "get",
        "service",
        "steady",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]);
    let port = s.ok(&[
        "get",
        "service",
        "steady",
        "-o",
        "jsonpath={.spec.ports[0].nodePort}",
    ]);
    assert!(ip.starts_with("198.19."), "{ip}");
    let targets = vec![format!("{ip}:80"), format!("127.0.0.1:{port}")];
    assert_eq!(answers(&targets[0], 2, 20).len(), 2);
    assert_eq!(answers(&targets[1], 2, 20).len(), 2);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let client = hammer(targets, stop.clone());
    std::thread::sleep(Duration::from_secs(1));
    // the kernel keeps the rules and the pods keep running without the server
    s.kill();
    std::thread::sleep(Duration::from_secs(3));
    // the next server rewrites the table in one transaction: no gap
    s.restart();
    s.wait_for(
        &["nodes", "test-node"],
        "{.status.conditions[?(@.type==\"Ready\")].status}",
        30,
        |v| v == "True",
    );
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (seen, failures) = client.join().unwrap();
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
    assert_eq!(seen.len(), 2, "{seen:?}");
    s.ok(&["delete", "deployment", "steady"]);
    s.ok(&["delete", "service", "steady"]);
}
