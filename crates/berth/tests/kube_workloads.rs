//! Workloads on `berth server`'s own node: the node agent registers the
//! node, runs the pods bound to it in real sandboxes and containers
//! (namespaces, cgroups, the bridge), reports their status as the kubelet
//! does, restarts what dies, and leaves nothing behind when a pod goes.
//! Driven by kubectl 1.33; the busybox image is imported offline.

use std::path::Path;
use std::time::{Duration, Instant};

use berth_testutil::{KubeServer, have_kubectl, root_or_skip};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_berth"))
}

/// A server with its node, or None when kubectl or root is missing
/// (outside CI, where both are present: there a missing kubectl fails).
fn node(dir: &Path) -> Option<KubeServer> {
    if !root_or_skip("kube_workloads") || !have_kubectl() {
        return None;
    }
    Some(KubeServer::start_node(bin(), dir, &[]))
}

/// Waits until the node runs no container and no sandbox (the agent
/// cleans up after the API server has let a pod go).
fn wait_node_empty(s: &KubeServer) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let ps = s.berth(&["ps", "-aq"]);
        let pods = s.berth(&["pod", "ls", "-q"]);
        if ps.trim().is_empty() && pods.trim().is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "left on the node: containers {ps:?}, sandboxes {pods:?}\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn node_is_ready_and_a_pod_runs_with_its_config() {
    let dir = tempfile::tempdir().unwrap();
    let Some(s) = node(dir.path()) else { return };
    // the node is Ready with the kubelet's conditions
    let ready = s.wait_for(
        &["node", "test-node"],
        "{.status.conditions[?(@.type==\"Ready\")].status}",
        5,
        |v| v == "True",
    );
    assert_eq!(ready, "True");
    let info = s.ok(&["get", "node", "test-node", "-o", "jsonpath={.status.nodeInfo.containerRuntimeVersion} {.status.allocatable.pods} {.metadata.labels.kubernetes\\.io/hostname}"]);
    assert!(
        info.starts_with("berth://") && info.ends_with(" 110 test-node"),
        "{info}"
    );
    let lease = s.ok(&[
        "get",
        "lease",
        "-n",
        "kube-node-lease",
        "test-node",
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ]);
    assert_eq!(lease, "test-node");

    s.apply(
        r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {greeting: hello, "file.txt": "from a configmap"}
---
apiVersion: v1
kind: Secret
metadata: {name: sec}
stringData: {password: "s3cret"}
---
apiVersion: v1
kind: Pod
metadata: {name: conf, labels: {app: conf}}
spec:
  nodeName: test-node
  restartPolicy: Never
  volumes:
  - {name: work, emptyDir: {}}
  - {name: cfg, configMap: {name: cfg, items: [{key: "file.txt", path: "sub/f.txt"}]}}
  - {name: sec, secret: {secretName: sec, defaultMode: 0400}}
  - name: info
    downwardAPI: {items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}]}
  initContainers:
  - name: init
    image: busybox:stable
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "echo from-init > /work/init.txt"]
    volumeMounts: [{name: work, mountPath: /work}]
  containers:
  - name: main
    image: busybox:stable
    imagePullPolicy: IfNotPresent
    env:
    - {name: GREETING, valueFrom: {configMapKeyRef: {name: cfg, key: greeting}}}
    - {name: POD, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: MSG, value: "$(GREETING) $(POD)"}
    - {name: PW, valueFrom: {secretKeyRef: {name: sec, key: password}}}
    command: ["sh", "-c"]
    args:
    - >-
      printf '%s|%s|%s|%s|%s|%s|%s' "$MSG" "$PW" "$(cat /work/init.txt)" "$(cat /cfg/sub/f.txt)"
      "$(cat /sec/password)" "$(cat /info/labels)" "$(hostname)" > /dev/termination-log; exit 3
    volumeMounts:
    - {name: work, mountPath: /work}
    - {name: cfg, mountPath: /cfg}
    - {name: sec, mountPath: /sec}
    - {name: info, mountPath: /info}
"#,
    );
    let phase = s.wait_for(&["pod", "conf"], "{.status.phase}", 30, |v| v == "Failed");
    assert_eq!(phase, "Failed");
    let term = s.ok(&["get", "pod", "conf", "-o", "jsonpath={.status.containerStatuses[0].state.terminated.exitCode} {.status.containerStatuses[0].state.terminated.reason}"]);
    assert_eq!(term, "3 Error");
    let msg = s.ok(&[
        "get",
        "pod",
        "conf",
        "-o",
        "jsonpath={.status.containerStatuses[0].state.terminated.message}",
    ]);
    assert_eq!(
        msg,
        "hello conf|s3cret|from-init|from a configmap|s3cret|app=\"conf\"|conf"
    );
    let init = s.ok(&[
        "get",
        "pod",
        "conf",
        "-o",
        "jsonpath={.status.initContainerStatuses[0].state.terminated.reason}",
    ]);
    assert_eq!(init, "Completed");
    let events = s.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=conf",
        "-o",
        "jsonpath={range .items[*]}{.reason} {end}",
    ]);
    for r in ["Pulled", "Created", "Started"] {
        assert!(events.contains(r), "{events}");
    }
    s.ok(&["delete", "pod", "conf", "--wait=true"]);
    wait_node_empty(&s);
}

#[test]
fn killed_container_restarts_and_a_deleted_pod_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let Some(s) = node(dir.path()) else { return };
    s.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  nodeName: test-node
  terminationGracePeriodSeconds: 2
  containers:
  - name: httpd
    image: busybox:stable
    imagePullPolicy: IfNotPresent
    command: ["httpd", "-f", "-p", "8080"]
    ports: [{name: http, containerPort: 8080}]
    readinessProbe: {httpGet: {path: /, port: http}, periodSeconds: 1}
    livenessProbe: {tcpSocket: {port: 8080}, periodSeconds: 1}
"#,
    );
    // busybox httpd answers 404 for "/" without an index: not ready yet
    s.wait_for(&["pod", "web"], "{.status.phase}", 30, |v| v == "Running");
    let ready = s.ok(&[
        "get",
        "pod",
        "web",
        "-o",
        "jsonpath={.status.containerStatuses[0].ready}",
    ]);
    assert_eq!(ready, "false");
    let ip = s.ok(&["get", "pod", "web", "-o", "jsonpath={.status.podIP}"]);
    assert!(ip.starts_with("198.18."), "{ip}");
    let name = s.berth(&["ps", "--format", "{{.Names}}"]);
    let name = name.trim();
    assert!(name.starts_with("k8s_httpd_web_default_"), "{name}");
    // an index page makes the readiness probe pass
    let out = std::process::Command::new(bin())
        .args([
            "--root",
            &s.root.display().to_string(),
            "exec",
            name,
            "sh",
            "-c",
            "echo ok > /index.html",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s.wait_for(
        &["pod", "web"],
        "{.status.containerStatuses[0].ready}",
        15,
        |v| v == "true",
    );
    // kill the container's process: the agent starts a new attempt
    let pid = s.berth(&["inspect", "-f", "{{.State.Pid}}", name]);
    let pid: i32 = pid.trim().parse().expect("pid");
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    s.wait_for(
        &["pod", "web"],
        "{.status.containerStatuses[0].restartCount}",
        15,
        |v| v == "1",
    );
    let last = s.ok(&[
        "get",
        "pod",
        "web",
        "-o",
        "jsonpath={.status.containerStatuses[0].lastState.terminated.exitCode}",
    ]);
    assert_eq!(last, "137");
    s.wait_for(
        &["pod", "web"],
        "{.status.containerStatuses[0].state.running.startedAt}",
        15,
        |v| !v.is_empty(),
    );
    // the same address after the restart
    assert_eq!(
        s.ok(&["get", "pod", "web", "-o", "jsonpath={.status.podIP}"]),
        ip
    );

    let sandbox = s.berth(&["pod", "ls", "-q", "--no-trunc"]);
    let sandbox = sandbox.trim().to_owned();
    assert_eq!(sandbox.len(), 64, "{sandbox}");
    s.ok(&["delete", "pod", "web", "--wait=true", "--timeout=30s"]);
    wait_node_empty(&s);
    assert!(!s.root.join("sandboxes").join(&sandbox).exists());
    let pods_dir = s.root.join("kubelet").join("pods");
    assert_eq!(
        std::fs::read_dir(&pods_dir).map(|d| d.count()).unwrap_or(0),
        0,
        "pod volumes removed"
    );
    // no cgroup of the pod is left
    let leftover: Vec<_> = std::fs::read_dir("/sys/fs/cgroup/memory/berth/pods/burstable")
        .into_iter()
        .flatten()
        .flatten()
        .chain(
            std::fs::read_dir("/sys/fs/cgroup/memory/berth/pods/besteffort")
                .into_iter()
                .flatten()
                .flatten(),
        )
        .filter(|e| e.file_name().to_string_lossy() == sandbox)
        .collect();
    assert!(leftover.is_empty(), "{leftover:?}");
}

#[test]
fn pods_that_cannot_run_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let Some(s) = node(dir.path()) else { return };
    s.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: noimage}
spec:
  nodeName: test-node
  containers: [{name: c, image: "nothing-here:1", imagePullPolicy: Never}]
---
apiVersion: v1
kind: Pod
metadata: {name: nokey}
spec:
  nodeName: test-node
  containers:
  - name: c
    image: busybox:stable
    imagePullPolicy: IfNotPresent
    env: [{name: X, valueFrom: {configMapKeyRef: {name: missing-cm, key: k}}}]
---
apiVersion: v1
kind: Pod
metadata: {name: nocmd}
spec:
  nodeName: test-node
  containers: [{name: c, image: busybox:stable, imagePullPolicy: IfNotPresent, command: ["/no/such/binary"]}]
"#,
    );
    let w = s.wait_for(
        &["pod", "noimage"],
        "{.status.containerStatuses[0].state.waiting.reason}",
        20,
        |v| v == "ErrImageNeverPull",
    );
    assert_eq!(w, "ErrImageNeverPull");
    let m = s.ok(&[
        "get",
        "pod",
        "noimage",
        "-o",
        "jsonpath={.status.containerStatuses[0].state.waiting.message}",
    ]);
    assert_eq!(
        m,
        "Container image \"nothing-here:1\" is not present with pull policy of Never"
    );
    let w = s.wait_for(
        &["pod", "nokey"],
        "{.status.containerStatuses[0].state.waiting.reason}",
        20,
        |v| v == "CreateContainerConfigError",
    );
    assert_eq!(w, "CreateContainerConfigError");
    let m = s.ok(&[
        "get",
        "pod",
        "nokey",
        "-o",
        "jsonpath={.status.containerStatuses[0].state.waiting.message}",
    ]);
    assert_eq!(m, "configmap \"missing-cm\" not found");
    let phase = s.ok(&["get", "pod", "nokey", "-o", "jsonpath={.status.phase}"]);
    assert_eq!(phase, "Pending");
    // a command that does not exist: the attempt fails to start, then back-off
    s.wait_for(&["pod", "nocmd"], "{.status.containerStatuses[0].lastState.terminated.exitCode}{.status.containerStatuses[0].state.terminated.exitCode}", 20, |v| !v.is_empty());
    let events = s.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=nocmd",
        "-o",
        "jsonpath={range .items[*]}{.reason}:{.message}{\"\\n\"}{end}",
    ]);
    assert!(events.contains("/no/such/binary"), "{events}");
    for p in ["noimage", "nokey", "nocmd"] {
        s.ok(&["delete", "pod", p, "--wait=true", "--timeout=30s"]);
    }
    wait_node_empty(&s);
}

#[test]
fn a_killed_server_leaves_pods_running_and_the_next_adopts_them() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut s) = node(dir.path()) else {
        return;
    };
    s.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: keep}
spec:
  nodeName: test-node
  containers: [{name: c, image: busybox:stable, imagePullPolicy: IfNotPresent, command: ["sleep", "3600"]}]
"#,
    );
    s.wait_for(&["pod", "keep"], "{.status.phase}", 30, |v| v == "Running");
    let cid = s.ok(&[
        "get",
        "pod",
        "keep",
        "-o",
        "jsonpath={.status.containerStatuses[0].containerID}",
    ]);
    s.kill();
    // nothing stops because the server died
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        s.berth(&["ps", "--format", "{{.Status}}"])
            .starts_with("Up"),
        "still running"
    );
    s.restart();
    std::thread::sleep(Duration::from_secs(3));
    let after = s.ok(&["get", "pod", "keep", "-o", "jsonpath={.status.containerStatuses[0].containerID} {.status.containerStatuses[0].restartCount} {.status.phase}"]);
    assert_eq!(after, format!("{cid} 0 Running"));
    assert_eq!(s.berth(&["ps", "-aq"]).lines().count(), 1, "not duplicated");
}

#[test]
fn a_failing_liveness_probe_restarts_the_container() {
    let dir = tempfile::tempdir().unwrap();
    let Some(s) = node(dir.path()) else { return };
    s.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: live}
spec:
  nodeName: test-node
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox:stable
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "touch /tmp/healthy; sleep 2; rm /tmp/healthy; sleep 3600"]
    livenessProbe: {exec: {command: [cat, /tmp/healthy]}, periodSeconds: 1, failureThreshold: 2}
"#,
    );
    s.wait_for(
        &["pod", "live"],
        "{.status.containerStatuses[0].restartCount}",
        30,
        |v| v == "1",
    );
    let events = s.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=live",
        "-o",
        "jsonpath={range .items[*]}{.reason}:{.message}{\"\\n\"}{end}",
    ]);
    assert!(
        events.contains("Unhealthy:Liveness probe failed:"),
        "{events}"
    );
    assert!(
        events.contains("Killing:Container c failed liveness probe, will be restarted"),
        "{events}"
    );
    s.ok(&["delete", "pod", "live", "--wait=true", "--timeout=30s"]);
    wait_node_empty(&s);
}

#[test]
fn the_scheduler_places_pods_and_says_why_it_cannot() {
    let dir = tempfile::tempdir().unwrap();
    let Some(s) = node(dir.path()) else { return };
    s.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: placed}
spec:
  terminationGracePeriodSeconds: 0
  containers: [{name: c, image: busybox:stable, imagePullPolicy: IfNotPresent, command: ["sleep", "3600"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: toobig}
spec:
  containers:
  - name: c
    image: busybox:stable
    imagePullPolicy: IfNotPresent
    resources: {requests: {cpu: "1000"}}
---
apiVersion: v1
kind: Pod
metadata: {name: nowhere}
spec:
  nodeSelector: {disk: ssd}
  containers: [{name: c, image: busybox:stable, imagePullPolicy: IfNotPresent}]
"#,
    );
    s.wait_for(
        &["pod", "placed"],
        "{.spec.nodeName} {.status.phase}",
        20,
        |v| v == "test-node Running",
    );
    let m = s.wait_for(
        &["pod", "toobig"],
        "{.status.conditions[?(@.type==\"PodScheduled\")].message}",
        20,
        |v| !v.is_empty(),
    );
    assert_eq!(
        m,
        "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.."
    );
    let m = s.wait_for(
        &["pod", "nowhere"],
        "{.status.conditions[?(@.type==\"PodScheduled\")].message}",
        20,
        |v| !v.is_empty(),
    );
    assert!(
        m.starts_with(
            "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."
        ),
        "{m}"
    );
    let events = s.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=toobig",
        "-o",
        "jsonpath={.items[*].reason}",
    ]);
    assert!(events.contains("FailedScheduling"), "{events}");
    // a matching node label: the pod is retried and placed
    s.ok(&["label", "node", "test-node", "disk=ssd"]);
    s.wait_for(&["pod", "nowhere"], "{.spec.nodeName}", 20, |v| {
        v == "test-node"
    });
    s.ok(&["delete", "pod", "--all", "--wait=true", "--timeout=60s"]);
    wait_node_empty(&s);
}

#[test]
fn kubectl_logs_exec_cp_and_port_forward_reach_the_pod() {
    let dir = tempfile::tempdir().unwrap();
    let Some(s) = node(dir.path()) else { return };
    s.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: talk}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: web
    image: busybox:stable
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "echo line1; echo line2; echo err >&2; mkdir -p /www; echo served > /www/index.html; exec httpd -f -p 8080 -h /www"]
  - name: side
    image: busybox:stable
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "echo from-side; sleep 3600"]
"#,
    );
    s.wait_for(&["pod", "talk"], "{.status.phase}", 30, |v| v == "Running");
    std::thread::sleep(Duration::from_millis(500));
    let logs = s.ok(&["logs", "talk", "-c", "web"]);
    assert_eq!(logs, "line1\nline2\nerr\n");
    assert_eq!(s.ok(&["logs", "talk", "-c", "web", "--tail", "1"]), "err\n");
    // kubectl names the first container itself; the API asks for one
    let out = s.kubectl(&["logs", "talk"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "line1\nline2\nerr\n");
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("Defaulted container \"web\" out of: web, side")
    );
    let err = s.fails(&["get", "--raw", "/api/v1/namespaces/default/pods/talk/log"]);
    assert!(
        err.contains("a container name must be specified for pod talk, choose one of: [web side]"),
        "{err}"
    );
    let all = s.ok(&["logs", "talk", "--all-containers", "--prefix"]);
    assert!(
        all.contains("[pod/talk/web] line1") && all.contains("[pod/talk/side] from-side"),
        "{all}"
    );
    let ts = s.ok(&["logs", "talk", "-c", "side", "--timestamps"]);
    assert!(ts.contains("Z from-side"), "{ts}");
    let err = s.fails(&["logs", "talk", "-c", "side", "-p"]);
    assert!(
        err.contains("previous terminated container \"side\" in pod \"talk\" not found"),
        "{err}"
    );
    // exec, with stdin
    assert_eq!(
        s.ok(&[
            "exec",
            "talk",
            "-c",
            "side",
            "--",
            "sh",
            "-c",
            "echo $((6*7))"
        ]),
        "42\n"
    );
    let out = s.kubectl_in(
        &["exec", "-i", "talk", "-c", "side", "--", "tr", "a-z", "A-Z"],
        "shout\n",
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "SHOUT\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = s.kubectl(&["exec", "talk", "-c", "side", "--", "sh", "-c", "exit 7"]);
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // the ServiceAccount's token, the cluster CA and the namespace are mounted
    let sa = s.ok(&["exec", "talk", "-c", "side", "--", "sh", "-c",
        "cat /var/run/secrets/kubernetes.io/serviceaccount/namespace; echo; head -1 /var/run/secrets/kubernetes.io/serviceaccount/ca.crt; wc -c < /var/run/secrets/kubernetes.io/serviceaccount/token; stat -L -c %a /var/run/secrets/kubernetes.io/serviceaccount/token"]);
    let mut lines = sa.lines();
    assert_eq!(lines.next(), Some("default"), "{sa}");
    assert_eq!(lines.next(), Some("-----BEGIN CERTIFICATE-----"), "{sa}");
    assert!(
        lines
            .next()
            .and_then(|n| n.trim().parse::<usize>().ok())
            .is_some_and(|n| n > 100),
        "{sa}"
    );
    // readable by a pod running as another user, as the kubelet writes it
    assert_eq!(lines.next(), Some("644"), "{sa}");
    // cp (tar through exec)
    let local = dir.path().join("up.txt");
    std::fs::write(&local, "copied in\n").unwrap();
    s.ok(&[
        "cp",
        &local.display().to_string(),
        "talk:/tmp/up.txt",
        "-c",
        "side",
    ]);
    assert_eq!(
        s.ok(&["exec", "talk", "-c", "side", "--", "cat", "/tmp/up.txt"]),
        "copied in\n"
    );
    // port-forward: a local port to the pod's 8080
    let port = berth_testutil::free_port();
    let mut pf = std::process::Command::new("kubectl")
        .args(["port-forward", "pod/talk", &format!("{port}:8080")])
        .envs(s.env())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let body = loop {
        let got = std::net::TcpStream::connect(("127.0.0.1", port))
            .ok()
            .and_then(|mut c| {
                use std::io::{Read, Write};
                c.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
                c.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
                let mut b = String::new();
                c.read_to_string(&mut b).ok()?;
                Some(b)
            });
        if let Some(b) = got.filter(|b| b.contains("served")) {
            break b;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "port-forward never answered"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(body.starts_with("HTTP/1.1 200 OK"), "{body}");
    let _ = pf.kill();
    let _ = pf.wait();
    s.ok(&["delete", "pod", "talk", "--wait=true", "--timeout=30s"]);
    wait_node_empty(&s);
}

const WEB: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  strategy: {rollingUpdate: {maxUnavailable: 1, maxSurge: 1}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: httpd
        image: busybox:stable
        imagePullPolicy: IfNotPresent
        command: ["sh", "-c", "mkdir -p /www && echo $VERSION > /www/index.html && exec httpd -f -p 8080 -h /www"]
        env: [{name: VERSION, value: v1}]
        readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 1}
"#;

#[test]
fn a_deployment_heals_rolls_out_and_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let Some(s) = node(dir.path()) else { return };
    s.apply(WEB);
    s.ok(&["rollout", "status", "deployment/web", "--timeout=60s"]);
    assert_eq!(
        s.ok(&[
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.status.readyReplicas}"
        ]),
        "3"
    );
    // delete a pod: its ReplicaSet replaces it
    let pods = s.ok(&[
        "get",
        "pods",
        "-l",
        "app=web",
        "-o",
        "jsonpath={.items[0].metadata.name}",
    ]);
    s.ok(&["delete", "pod", &pods, "--wait=false"]);
    s.wait_for(
        &["pods", "-l", "app=web"],
        "{range .items[*]}{.metadata.name}={.status.containerStatuses[0].ready} {end}",
        30,
        |v| v.matches("=true").count() == 3 && !v.contains(&format!("{pods}=")),
    );
    // a rolling update never has fewer than replicas − maxUnavailable ready
    let watcher = std::process::Command::new("kubectl")
        .args([
            "get",
            "deployment",
            "web",
            "--watch",
            "-o",
            "jsonpath={.status.readyReplicas}{\"\\n\"}",
        ])
        .envs(s.env())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    s.ok(&["set", "env", "deployment/web", "VERSION=v2"]);
    s.ok(&["rollout", "status", "deployment/web", "--timeout=90s"]);
    let mut watcher = watcher;
    let _ = watcher.kill();
    let out = watcher.wait_with_output().unwrap();
    let seen: Vec<i64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    assert!(!seen.is_empty());
    assert!(
        seen.iter().all(|r| *r >= 2),
        "ready replicas dipped below 2: {seen:?}"
    );
    let history = s.ok(&["rollout", "history", "deployment/web"]);
    assert!(
        history.contains("1 ") && history.contains("2 "),
        "{history}"
    );
    assert_eq!(
        s.ok(&[
            "get",
            "rs",
            "-l",
            "app=web",
            "-o",
            "jsonpath={range .items[*]}{.spec.replicas}{end}"
        ])
        .chars()
        .filter(|c| *c == '3')
        .count(),
        1
    );
    // undo: back to v1's template (the old ReplicaSet, revision 3)
    s.ok(&["rollout", "undo", "deployment/web"]);
    s.ok(&["rollout", "status", "deployment/web", "--timeout=90s"]);
    let env = s.ok(&["get", "deployment", "web", "-o", "jsonpath={.spec.template.spec.containers[0].env[0].value} {.metadata.annotations.deployment\\.kubernetes\\.io/revision}"]);
    assert_eq!(env, "v1 3");
    s.ok(&[
        "delete",
        "deployment",
        "web",
        "--wait=true",
        "--timeout=60s",
    ]);
    s.wait_for(&["pods", "-l", "app=web"], "{.items}", 60, |v| {
        v == "[]" || v.is_empty()
    });
    wait_node_empty(&s);
}

#[test]
fn a_failing_job_respects_its_backoff_limit() {
    let dir = tempfile::tempdir().unwrap();
    let Some(s) = node(dir.path()) else { return };
    s.apply(
        r#"
apiVersion: batch/v1
kind: Job
metadata: {name: fails}
spec:
  backoffLimit: 1
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox:stable, imagePullPolicy: IfNotPresent, command: ["sh", "-c", "exit 1"]}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: works}
spec:
  completions: 2
  parallelism: 2
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox:stable, imagePullPolicy: IfNotPresent, command: ["sh", "-c", "echo done"]}]
"#,
    );
    let reason = s.wait_for(
        &["job", "fails"],
        "{.status.conditions[?(@.type==\"Failed\")].reason}",
        90,
        |v| !v.is_empty(),
    );
    assert_eq!(reason, "BackoffLimitExceeded");
    assert_eq!(
        s.ok(&["get", "job", "fails", "-o", "jsonpath={.status.failed}"]),
        "2"
    );
    s.ok(&[
        "wait",
        "--for=condition=complete",
        "job/works",
        "--timeout=60s",
    ]);
    assert_eq!(
        s.ok(&["get", "job", "works", "-o", "jsonpath={.status.succeeded}"]),
        "2"
    );
    assert_eq!(s.ok(&["logs", "job/works"]), "done\n");
    s.ok(&[
        "delete",
        "job",
        "fails",
        "works",
        "--wait=true",
        "--timeout=60s",
    ]);
    s.wait_for(&["pods"], "{.items}", 60, |v| v == "[]" || v.is_empty());
    wait_node_empty(&s);
}

/// The README's cluster demo (examples/sparklingsoda.yaml): three members'
/// environments from one image, a shared project volume, a volume per
/// member that survives its pod, members reached by name (the cluster DNS,
/// the headless Service's stable names, the `results` Service).
#[test]
fn the_sparklingsoda_example_gives_each_member_an_environment() {
    let dir = tempfile::tempdir().unwrap();
    let Some(s) = node(dir.path()) else { return };
    s.berth(&["tag", "busybox:stable", "demo/busybox:latest"]);
    let manifest = berth_testutil::workspace_root().join("examples/sparklingsoda.yaml");
    s.ok(&["apply", "-f", &manifest.display().to_string()]);
    s.ok(&[
        "-n",
        "sparklingsoda",
        "rollout",
        "status",
        "statefulset/workspace",
        "--timeout=90s",
    ]);
    let pods = s.ok(&[
        "-n",
        "sparklingsoda",
        "get",
        "pods",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name}={.status.phase} {end}",
    ]);
    assert_eq!(
        pods.trim(),
        "workspace-0=Running workspace-1=Running workspace-2=Running"
    );
    let pvcs = s.ok(&[
        "-n",
        "sparklingsoda",
        "get",
        "pvc",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name}={.status.phase} {end}",
    ]);
    for want in [
        "project-data=Bound",
        "work-workspace-0=Bound",
        "work-workspace-1=Bound",
        "work-workspace-2=Bound",
    ] {
        assert!(pvcs.contains(want), "{pvcs}");
    }
    // the shared data, seen by every member
    for m in ["workspace-0", "workspace-2"] {
        let lines = s.ok(&[
            "-n",
            "sparklingsoda",
            "exec",
            m,
            "--",
            "wc",
            "-l",
            "/data/sales.csv",
        ]);
        assert!(lines.trim_start().starts_with("5 "), "{lines}");
    }
    // work in a member's own volume survives its pod
    s.ok(&[
        "-n",
        "sparklingsoda",
        "exec",
        "workspace-1",
        "--",
        "sh",
        "-c",
        "echo 'north grows' > /work/result.txt",
    ]);
    let uid = s.ok(&[
        "-n",
        "sparklingsoda",
        "get",
        "pod",
        "workspace-1",
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    s.ok(&[
        "-n",
        "sparklingsoda",
        "delete",
        "pod",
        "workspace-1",
        "--wait=true",
        "--timeout=30s",
    ]);
    s.wait_for(
        &["-n", "sparklingsoda", "pod", "workspace-1"],
        "{.metadata.uid} {.status.containerStatuses[0].ready}",
        60,
        |v| !v.starts_with(&uid) && v.ends_with(" true"),
    );
    assert_eq!(
        s.ok(&[
            "-n",
            "sparklingsoda",
            "exec",
            "workspace-1",
            "--",
            "cat",
            "/work/result.txt"
        ]),
        "north grows\n"
    );
    assert_eq!(
        s.ok(&[
            "-n",
            "sparklingsoda",
            "exec",
            "workspace-0",
            "--",
            "cat",
            "/work/index.html"
        ]),
        "workspace of workspace-0\n"
    );
    // by name, from a member: the Service's name is its ClusterIP, a
    // member's stable name follows its new pod, and both answer
    let cluster_ip = s.ok(&[
        "-n",
        "sparklingsoda",
        "get",
        "service",
        "results",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]);
    let member_ip = s.ok(&[
        "-n",
        "sparklingsoda",
        "get",
        "pod",
        "workspace-1",
        "-o",
        "jsonpath={.status.podIP}",
    ]);
    let from_member = |script: &str, want: &dyn Fn(&str) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = s.kubectl(&[
                "-n",
                "sparklingsoda",
                "exec",
                "workspace-0",
                "-c",
                "env",
                "--",
                "sh",
                "-c",
                script,
            ]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            if want(&text) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "{script}: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    };
    from_member("nslookup results.sparklingsoda.svc.cluster.local", &|t| {
        t.contains(&cluster_ip)
    });
    from_member(
        "nslookup workspace-1.workspace.sparklingsoda.svc.cluster.local",
        &|t| t.contains(&member_ip),
    );
    let get = "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 5";
    from_member(
        &format!("{get} workspace-1.workspace.sparklingsoda.svc.cluster.local 8080 | tail -n 1"),
        &|t| t == "workspace of workspace-1\n",
    );
    // the Service spreads over the members: a few requests meet more than one
    let many = from_member(
        &format!("for i in 1 2 3 4 5 6 7 8 9; do {get} results 80 | tail -n 1; done"),
        &|t| t.lines().count() == 9 && t.lines().all(|l| l.starts_with("workspace of workspace-")),
    );
    let members: std::collections::BTreeSet<&str> = many.lines().collect();
    assert!(members.len() > 1, "{many}");
    s.ok(&[
        "delete",
        "namespace",
        "sparklingsoda",
        "--wait=true",
        "--timeout=90s",
    ]);
    wait_node_empty(&s);
}

#[test]
fn an_indexed_job_gives_each_pod_its_index() {
    let dir = tempfile::tempdir().unwrap();
    let Some(s) = node(dir.path()) else { return };
    s.apply(
        r#"
apiVersion: batch/v1
kind: Job
metadata: {name: idx}
spec:
  completions: 3
  parallelism: 3
  completionMode: Indexed
  template:
    spec:
      restartPolicy: Never
      containers: [{name: c, image: busybox:stable, imagePullPolicy: IfNotPresent, command: ["sh", "-c", "echo index=$JOB_COMPLETION_INDEX"]}]
"#,
    );
    s.ok(&[
        "wait",
        "--for=condition=complete",
        "job/idx",
        "--timeout=60s",
    ]);
    assert_eq!(
        s.ok(&[
            "get",
            "job",
            "idx",
            "-o",
            "jsonpath={.status.completedIndexes}"
        ]),
        "0-2"
    );
    let mut logs: Vec<String> = (0..3)
        .map(|i| {
            let pod = s.ok(&[
                "get",
                "pods",
                "-l",
                &format!("batch.kubernetes.io/job-completion-index={i}"),
                "-o",
                "jsonpath={.items[0].metadata.name}",
            ]);
            s.ok(&["logs", &pod])
        })
        .collect();
    logs.sort();
    assert_eq!(logs, ["index=0\n", "index=1\n", "index=2\n"]);
    s.ok(&["delete", "job", "idx", "--wait=true", "--timeout=60s"]);
    s.wait_for(&["pods"], "{.items}", 60, |v| v == "[]" || v.is_empty());
    wait_node_empty(&s);
}

#[test]
fn the_python_client_runs_a_deployment_reads_logs_and_execs() {
    let dir = tempfile::tempdir().unwrap();
    let Some(s) = node(dir.path()) else { return };
    if !berth_testutil::have_kube_py() {
        return;
    }
    let program = r#"
import time
from kubernetes.stream import stream
apps = client.AppsV1Api()
v1 = client.CoreV1Api()
body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "py"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "py"}},
                 "template": {"metadata": {"labels": {"app": "py"}}, "spec": {"terminationGracePeriodSeconds": 0,
                   "containers": [{"name": "c", "image": "busybox:stable", "imagePullPolicy": "IfNotPresent",
                                   "command": ["sh", "-c", "echo hello from $HOSTNAME; sleep 3600"]}]}}}}
apps.create_namespaced_deployment("default", body)
for _ in range(300):
    d = apps.read_namespaced_deployment("py", "default")
    if (d.status.ready_replicas or 0) == 2:
        break
    time.sleep(0.1)
print("ready", d.status.ready_replicas)
pods = v1.list_namespaced_pod("default", label_selector="app=py").items
name = pods[0].metadata.name
print("phase", pods[0].status.phase, pods[0].spec.node_name)
print("log", v1.read_namespaced_pod_log(name, "default").strip() == "hello from " + name)
out = stream(v1.connect_get_namespaced_pod_exec, name, "default", command=["sh", "-c", "echo $((40+2))"],
             stderr=True, stdin=False, stdout=True, tty=False)
print("exec", out.strip())
v1.delete_namespaced_pod(name, "default")
for _ in range(300):
    names = [p.metadata.name for p in v1.list_namespaced_pod("default", label_selector="app=py").items
             if p.status.phase == "Running" and not p.metadata.deletion_timestamp]
    if len(names) == 2 and name not in names:
        break
    time.sleep(0.1)
print("replaced", len(names), name not in names)
apps.delete_namespaced_deployment("py", "default", propagation_policy="Foreground")
"#;
    let out = s.python(program);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "ready 2",
        "phase Running test-node",
        "log True",
        "exec 42",
        "replaced 2 True",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in:\n{stdout}");
    }
    s.wait_for(&["pods"], "{.items}", 60, |v| v == "[]" || v.is_empty());
    wait_node_empty(&s);
}

#[test]
fn image_pull_secrets_reach_a_private_registry() {
    let dir = tempfile::tempdir().unwrap();
    let Some(s) = node(dir.path()) else { return };
    let Ok(hash) = std::process::Command::new("htpasswd")
        .args(["-Bbn", "alice", "s3cret"])
        .output()
    else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "htpasswd is missing (apache2-utils)"
        );
        return;
    };
    let Some(reg) = berth_testutil::docker_registry(Some(&String::from_utf8_lossy(&hash.stdout)))
    else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "docker-registry is missing"
        );
        return;
    };
    let image = format!("{}/private/bb:1", reg.addr());
    let server = format!("--docker-server={}", reg.addr());
    s.ok(&[
        "create",
        "secret",
        "docker-registry",
        "regcred",
        &server,
        "--docker-username=alice",
        "--docker-password=s3cret",
    ]);
    // the same credentials, as a Docker config, push the image there
    let b64 = s.ok(&[
        "get",
        "secret",
        "regcred",
        "-o",
        "jsonpath={.data.\\.dockerconfigjson}",
    ]);
    let cfg_dir = dir.path().join("docker");
    std::fs::create_dir_all(&cfg_dir).unwrap();
    let decoded = std::process::Command::new("base64")
        .arg("-d")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b64.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    std::fs::write(cfg_dir.join("config.json"), &decoded.stdout).unwrap();
    s.berth(&["tag", "busybox:stable", &image]);
    let push = std::process::Command::new(bin())
        .args(["--root", &s.root.display().to_string(), "push", &image])
        .env("DOCKER_CONFIG", &cfg_dir)
        .output()
        .unwrap();
    assert!(
        push.status.success(),
        "{}",
        String::from_utf8_lossy(&push.stderr)
    );
    s.berth(&["rmi", &image]);
    let pod = |name: &str, secret: bool| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  nodeName: test-node\n  terminationGracePeriodSeconds: 0\n{}  containers: [{{name: c, image: \"{image}\", imagePullPolicy: Always, command: [sleep, \"3600\"]}}]\n",
            if secret {
                "  imagePullSecrets: [{name: regcred}]\n"
            } else {
                ""
            }
        )
    };
    s.apply(&pod("withsecret", true));
    s.apply(&pod("nosecret", false));
    s.wait_for(&["pod", "withsecret"], "{.status.phase}", 60, |v| {
        v == "Running"
    });
    let events = s.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=withsecret",
        "-o",
        "jsonpath={range .items[*]}{.reason} {end}",
    ]);
    assert!(
        events.contains("Pulling") && events.contains("Pulled"),
        "{events}"
    );
    let w = s.wait_for(
        &["pod", "nosecret"],
        "{.status.containerStatuses[0].state.waiting.reason}",
        30,
        |v| v == "ErrImagePull" || v == "ImagePullBackOff",
    );
    assert!(w == "ErrImagePull" || w == "ImagePullBackOff", "{w}");
    s.ok(&[
        "delete",
        "pod",
        "withsecret",
        "nosecret",
        "--wait=true",
        "--timeout=60s",
    ]);
    wait_node_empty(&s);
}

#[test]
fn kubectl_debug_adds_an_ephemeral_container() {
    let dir = tempfile::tempdir().unwrap();
    let Some(s) = node(dir.path()) else { return };
    s.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: dbg}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: app
    image: busybox:stable
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
"#,
    );
    s.wait_for(&["pod", "dbg"], "{.status.phase}", 30, |v| v == "Running");
    // non-interactive: the container runs once in the target's process namespace
    let out = s.ok(&[
        "debug",
        "dbg",
        "--image=busybox:stable",
        "--target=app",
        "-c",
        "look",
        "--",
        "sh",
        "-c",
        "ps -o pid,args; echo done",
    ]);
    assert!(out.contains("Targeting container \"app\""), "{out}");
    s.wait_for(
        &["pod", "dbg"],
        "{.status.ephemeralContainerStatuses[0].state.terminated.reason}",
        30,
        |v| v == "Completed",
    );
    let ps = s.ok(&["logs", "dbg", "-c", "look"]);
    assert!(ps.contains("sleep 3600") && ps.ends_with("done\n"), "{ps}");
    let first_pid = ps.lines().nth(1).unwrap_or("").trim().to_owned();
    assert!(
        first_pid.starts_with("1 ") && first_pid.ends_with("sleep 3600"),
        "{ps}"
    );
    // interactive: kubectl attaches to it, stdin reaches it
    let out = s.kubectl_in(
        &[
            "debug",
            "-i",
            "dbg",
            "--image=busybox:stable",
            "-c",
            "talk",
            "--",
            "sh",
        ],
        "echo $((6*7)); exit 0\n",
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("42"),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let names = s.ok(&[
        "get",
        "pod",
        "dbg",
        "-o",
        "jsonpath={.status.ephemeralContainerStatuses[*].name}",
    ]);
    assert_eq!(names, "look talk");
    // the app container was not touched; ephemeral ones are never restarted
    assert_eq!(
        s.ok(&["get", "pod", "dbg", "-o", "jsonpath={.status.containerStatuses[0].restartCount} {.status.ephemeralContainerStatuses[0].restartCount}"]),
        "0 0"
    );
    // what the API refuses, as kube says it
    let err = s.fails(&[
        "debug",
        "dbg",
        "--image=busybox:stable",
        "--target=nope",
        "-c",
        "bad",
        "--",
        "true",
    ]);
    assert!(
        err.contains("spec.ephemeralContainers[2].targetContainerName: Not found: \"nope\""),
        "{err}"
    );
    // only the subresource changes them: the pod's own update may not
    let err = s.fails(&[
        "patch",
        "pod",
        "dbg",
        "--type=json",
        "-p",
        r#"[{"op": "remove", "path": "/spec/ephemeralContainers"}]"#,
    ]);
    assert!(
        err.contains("spec: Forbidden: pod updates may not change fields other than"),
        "{err}"
    );
    let err = s.fails(&[
        "debug",
        "dbg",
        "--image=busybox:stable",
        "-c",
        "app",
        "--",
        "true",
    ]);
    assert!(err.contains("Duplicate value: \"app\""), "{err}");
    s.ok(&["delete", "pod", "dbg", "--wait=true"]);
    wait_node_empty(&s);
}

/// Unmounts a test's tmpfs when dropped (after the server that used it).
struct Tmpfs(std::path::PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn disk_pressure_evicts_the_pod_that_fills_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    if !root_or_skip("kube_workloads") || !have_kubectl() {
        return;
    }
    // the node's root on a filesystem of its own, small enough to fill
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let st = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=640m", "tmpfs"])
        .arg(&root)
        .status()
        .unwrap();
    assert!(st.success(), "mount a tmpfs");
    let _tmpfs = Tmpfs(root.clone());
    let s = KubeServer::start_node(
        bin(),
        dir.path(),
        &[
            "--eviction-hard",
            "nodefs.available<300Mi",
            "--eviction-pressure-transition-period",
            "0s",
        ],
    );
    s.wait_for(
        &["node", "test-node"],
        "{.status.conditions[?(@.type==\"DiskPressure\")].status}",
        30,
        |v| v == "False",
    );
    s.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: calm}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: calm
    image: busybox:stable
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
    resources: {requests: {ephemeral-storage: 50Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: hog}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: hog
    image: busybox:stable
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "dd if=/dev/zero of=/data/fill bs=1M count=400; sleep 3600"]
    volumeMounts: [{name: data, mountPath: /data}]
  volumes:
  - name: data
    emptyDir: {}
"#,
    );
    // the node reports the pressure, the controller taints it
    s.wait_for(
        &["node", "test-node"],
        "{.status.conditions[?(@.type==\"DiskPressure\")].reason}",
        60,
        |v| v == "KubeletHasDiskPressure",
    );
    // the pod using more than it asked for goes, as the kubelet words it
    s.wait_for(&["pod", "hog"], "{.status.phase}", 60, |v| v == "Failed");
    assert_eq!(
        s.ok(&["get", "pod", "hog", "-o", "jsonpath={.status.reason}"]),
        "Evicted"
    );
    let message = s.ok(&["get", "pod", "hog", "-o", "jsonpath={.status.message}"]);
    assert!(
        message.starts_with("The node was low on resource: ephemeral-storage. Threshold quantity: 300Mi, available: ")
            && message.contains("Container hog was using ")
            && message.contains(", request is 0, has larger consumption of ephemeral-storage. "),
        "{message}"
    );
    assert_eq!(
        s.ok(&[
            "get",
            "pod",
            "hog",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"DisruptionTarget\")].reason}"
        ]),
        "TerminationByKubelet"
    );
    let events = s.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=hog,reason=Evicted",
        "-o",
        "jsonpath={.items[*].type}",
    ]);
    assert_eq!(events, "Warning");
    // its emptyDir is gone, the pressure with it; the other pod never stopped
    s.wait_for(
        &["node", "test-node"],
        "{.status.conditions[?(@.type==\"DiskPressure\")].status}",
        60,
        |v| v == "False",
    );
    assert_eq!(
        s.ok(&[
            "get",
            "pod",
            "calm",
            "-o",
            "jsonpath={.status.phase} {.status.containerStatuses[0].restartCount}"
        ]),
        "Running 0"
    );
    s.ok(&["delete", "pod", "calm", "hog", "--wait=true"]);
    wait_node_empty(&s);
    drop(s);
}

#[test]
fn share_process_namespace_gives_the_pod_one_pid_namespace_under_a_pause_process() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut s) = node(dir.path()) else {
        return;
    };
    // the API server refuses it together with hostPID, as kube does
    let out = s.kubectl_in(
        &["apply", "-f", "-"],
        r#"
apiVersion: v1
kind: Pod
metadata: {name: both}
spec:
  nodeName: test-node
  shareProcessNamespace: true
  hostPID: true
  containers: [{name: c, image: busybox:stable}]
"#,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains(
                "spec.securityContext.shareProcessNamespace: Invalid value: true: \
                 ShareProcessNamespace and HostPID cannot both be enabled"
            ),
        "{err}"
    );
    s.apply(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: shared}
spec:
  nodeName: test-node
  terminationGracePeriodSeconds: 1
  shareProcessNamespace: true
  initContainers:
  - name: init
    image: busybox:stable
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline; echo"]
  containers:
  - name: first
    image: busybox:stable
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
  - name: second
    image: busybox:stable
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3601"]
"#,
    );
    s.wait_for(&["pod", "shared"], "{.status.phase}", 30, |v| {
        v == "Running"
    });
    let ps = s.ok(&["exec", "shared", "-c", "second", "--", "ps"]);
    assert!(ps.contains("sleep 3600"), "{ps}");
    let pid1 = ps
        .lines()
        .find(|l| l.split_whitespace().next() == Some("1"))
        .unwrap_or_default();
    assert!(
        !pid1.contains("sleep") && pid1.ends_with("/pause"),
        "PID 1 is the pause process: {ps}"
    );
    // the init container ran in the same namespace
    let init = s.ok(&["logs", "shared", "-c", "init"]);
    assert_eq!(init.trim(), "/pause", "{init:?}");
    let sandbox = s.berth(&["pod", "ls", "-q", "--no-trunc"]);
    let sandbox = sandbox.trim().to_owned();
    let pod: serde_json::Value =
        serde_json::from_str(&s.berth(&["pod", "inspect", &sandbox])).unwrap();
    let pause = pod[0]["pause_pid"].as_i64().unwrap_or(0);
    assert!(pause > 0, "{pod}");
    let cmdline = std::fs::read_to_string(format!("/proc/{pause}/cmdline")).unwrap_or_default();
    assert_eq!(cmdline, "/pause\0");
    let pause_start = || {
        std::fs::read_to_string(format!("/proc/{pause}/stat"))
            .ok()
            .and_then(|st| {
                Some(
                    st.rsplit_once(')')?
                        .1
                        .split_whitespace()
                        .nth(19)?
                        .to_owned(),
                )
            })
            .unwrap_or_default()
    };
    let started = pause_start();

    // the first container dies: a new attempt starts in the same namespace
    let first = s.berth(&[
        "ps",
        "-q",
        "--no-trunc",
        "--filter",
        "label=io.kubernetes.container.name=first",
    ]);
    let pid = s.berth(&["inspect", "-f", "{{.State.Pid}}", first.trim()]);
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid.trim().parse().expect("pid")).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    s.wait_for(
        &["pod", "shared"],
        "{.status.containerStatuses[0].restartCount} {.status.containerStatuses[0].state.running.startedAt}",
        20,
        |v| v.starts_with("1 ") && v.len() > 2,
    );
    assert_eq!(pause_start(), started, "the pause process lives on");
    let ps = s.ok(&["exec", "shared", "-c", "second", "--", "ps"]);
    assert!(ps.contains("sleep 3600"), "{ps}");

    // a killed server leaves the pause process, and the next adopts the pod
    s.kill();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        pause_start(),
        started,
        "the pause process outlives the server"
    );
    s.restart();
    std::thread::sleep(Duration::from_secs(3));
    s.wait_for(&["pod", "shared"], "{.status.phase}", 30, |v| {
        v == "Running"
    });
    let counts = s.ok(&[
        "get",
        "pod",
        "shared",
        "-o",
        "jsonpath={.status.containerStatuses[*].restartCount}",
    ]);
    assert_eq!(counts, "1 0", "adopted, not restarted");
    assert_eq!(pause_start(), started);
    let ps = s.ok(&["exec", "shared", "-c", "first", "--", "ps"]);
    assert!(ps.contains("sleep 3601"), "{ps}");

    s.ok(&["delete", "pod", "shared", "--wait=true", "--timeout=30s"]);
    wait_node_empty(&s);
    let left = std::fs::read_to_string(format!("/proc/{pause}/cmdline")).unwrap_or_default();
    assert_ne!(left, "/pause\0", "the pause process is gone");
    assert!(!s.root.join("sandboxes").join(&sandbox).exists());
}
