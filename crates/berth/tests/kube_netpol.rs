//! NetworkPolicies on `berth server`'s node, in the real kernel: a
//! default-deny ingress with allow rules by pod label, by namespace label
//! and by port, reached by pod address and through a Service by its DNS
//! name; a default-deny egress that still resolves names and answers
//! allowed connections; the node's own traffic (readiness probes, the host)
//! untouched; kube's validation errors; nothing left in the kernel when the
//! policies go. Driven by kubectl 1.33 and the Python client; the busybox
//! image is imported offline.

use std::path::Path;
use std::time::{Duration, Instant};

use berth_testutil::{KubeServer, have_kube_py, have_kubectl, root_or_skip};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_berth"))
}

const PODS: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: np}
---
apiVersion: v1
kind: Namespace
metadata: {name: friends, labels: {team: friends}}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: np, labels: {app: web}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: web
    image: busybox:stable
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "mkdir -p /www && echo web > /www/index.html && (httpd -p 9090 -h /www) && exec httpd -f -p 8080 -h /www"]
    ports: [{name: http, containerPort: 8080}, {name: admin, containerPort: 9090}]
    readinessProbe: {httpGet: {path: /, port: http}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: np}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: np, labels: {role: client}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - {name: c, image: busybox:stable, imagePullPolicy: IfNotPresent, command: ["sleep", "3600"]}
---
apiVersion: v1
kind: Pod
metadata: {name: other, namespace: np}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - {name: c, image: busybox:stable, imagePullPolicy: IfNotPresent, command: ["sleep", "3600"]}
---
apiVersion: v1
kind: Pod
metadata: {name: friend, namespace: friends}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - {name: c, image: busybox:stable, imagePullPolicy: IfNotPresent, command: ["sleep", "3600"]}
"#;

const POLICIES: &str = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: np}
spec:
  podSelector: {}
  policyTypes: [Ingress]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-allow, namespace: np}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{podSelector: {matchLabels: {role: client}}}]
    ports: [{port: http}]
  - from: [{namespaceSelector: {matchLabels: {team: friends}}}]
"#;

/// Whether `pod` (in `ns`) gets an HTTP answer from `target` within 2 s.
fn reaches(s: &KubeServer, ns: &str, pod: &str, target: &str, port: u16) -> bool {
    let out = s.kubectl(&[
        "exec",
        "-n",
        ns,
        pod,
        "--",
        "sh",
        "-c",
        &format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {target} {port} | tail -n 1"),
    ]);
    String::from_utf8_lossy(&out.stdout).trim() == "web"
}

/// Polls until `reaches` gives `want` (rules follow the API within a
/// second; the first connection after a change may race it).
fn settles(s: &KubeServer, ns: &str, pod: &str, target: &str, port: u16, want: bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if reaches(s, ns, pod, target, port) == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{ns}/{pod} → {target}:{port} should be {}\n{}",
            if want { "allowed" } else { "refused" },
            s.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn network_policies_allow_and_deny_pod_traffic() {
    if !root_or_skip("kube_netpol") || !have_kubectl() || !have_kube_py() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = KubeServer::start_node(bin(), dir.path(), &[]);
    s.apply(PODS);
    for (ns, pod) in [
        ("np", "web"),
        ("np", "client"),
        ("np", "other"),
        ("friends", "friend"),
    ] {
        s.wait_for(&["pod", "-n", ns, pod], "{.status.phase}", 60, |v| {
            v == "Running"
        });
    }
    s.wait_for(
        &["pod", "-n", "np", "web"],
        "{.status.conditions[?(@.type==\"Ready\")].status}",
        30,
        |v| v == "True",
    );
    let web_ip = s.ok(&[
        "get",
        "pod",
        "-n",
        "np",
        "web",
        "-o",
        "jsonpath={.status.podIP}",
    ]);
    let web_ip = web_ip.trim();
    let table = berth_net::policy::table_for(&berth_net::NetConfig::load(&s.root).unwrap());

    // open before any policy
    assert!(reaches(&s, "np", "other", web_ip, 8080));
    assert!(berth_net::nft::list_table(&table).unwrap().is_none());

    s.apply(POLICIES);
    // defaulted as kube does
    assert_eq!(
        s.ok(&[
            "get",
            "networkpolicy",
            "-n",
            "np",
            "web-allow",
            "-o",
            "jsonpath={.spec.policyTypes}"
        ]),
        "[\"Ingress\"]"
    );
    settles(&s, "np", "other", web_ip, 8080, false);
    // the client by label, on the named port, by address and through the
    // Service by its DNS name; not on the other port
    assert!(reaches(&s, "np", "client", web_ip, 8080));
    assert!(reaches(&s, "np", "client", "web.np.svc.cluster.local", 80));
    assert!(!reaches(&s, "np", "client", web_ip, 9090));
    // a pod of a namespace the policy names, on any port
    assert!(reaches(&s, "friends", "friend", web_ip, 9090));
    // the node: the host reaches the pod, the readiness probe keeps passing
    assert_eq!(
        berth_testutil::http_body(&format!("{web_ip}:9090")).as_deref(),
        Ok("web")
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        s.ok(&[
            "get",
            "pod",
            "-n",
            "np",
            "web",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}"
        ]),
        "True"
    );
    let listed = berth_net::nft::list_table(&table).unwrap().unwrap();
    assert!(listed.contains(&format!("{web_ip} : jump in-")), "{listed}");

    let friend_ip = s.ok(&[
        "get",
        "pod",
        "-n",
        "friends",
        "friend",
        "-o",
        "jsonpath={.status.podIP}",
    ]);
    let ping = |s: &KubeServer| {
        s.kubectl(&[
            "exec",
            "-n",
            "np",
            "client",
            "--",
            "ping",
            "-c",
            "1",
            "-W",
            "1",
            friend_ip.trim(),
        ])
        .status
        .success()
    };
    assert!(
        ping(&s),
        "the client pings another pod before its egress policy"
    );

    // a default-deny egress for the client: DNS and the allowed web port
    // still work, everything else it opens does not
    s.apply(
        r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: client-egress, namespace: np}
spec:
  podSelector: {matchLabels: {role: client}}
  policyTypes: [Egress]
  egress:
  - to: [{podSelector: {matchLabels: {app: web}}}]
    ports: [{port: 8080}]
"#,
    );
    settles(&s, "np", "client", web_ip, 9090, false);
    assert!(reaches(&s, "np", "client", "web.np.svc.cluster.local", 80));
    assert!(!ping(&s), "egress to another pod must be dropped");
    // and the other pod, not selected by it, still may not reach web
    assert!(!reaches(&s, "np", "other", web_ip, 8080));

    // bad input: kube's validation errors, nothing stored
    let bad = s.kubectl_in(
        &["apply", "-f", "-"],
        r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: bad, namespace: np}
spec:
  podSelector: {}
  ingress:
  - from: [{ipBlock: {cidr: 198.18.0.0/33}}]
    ports: [{port: 70000}]
"#,
    );
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success());
    assert!(
        err.contains("The NetworkPolicy \"bad\" is invalid"),
        "{err}"
    );
    assert!(err.contains("spec.ingress[0].from[0].ipBlock.cidr: Invalid value: \"198.18.0.0/33\": must be a valid CIDR value"), "{err}");
    assert!(err.contains("spec.ingress[0].ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive"), "{err}");
    assert!(
        s.kubectl(&["get", "networkpolicy", "-n", "np", "bad"])
            .status
            .code()
            != Some(0)
    );

    // the Python client sees the policies, the Service and its slice, and
    // removing the rule for the friends namespace closes that path
    let out = s.python(
        r#"
net = client.NetworkingV1Api()
names = sorted(p.metadata.name for p in net.list_namespaced_network_policy("np").items)
print(" ".join(names))
allow = net.read_namespaced_network_policy("web-allow", "np")
print(allow.spec.policy_types, allow.spec.ingress[0].ports[0].port)
svc = client.CoreV1Api().read_namespaced_service("web", "np")
print(svc.spec.cluster_ip.startswith("198.19."))
sl = client.DiscoveryV1Api().list_namespaced_endpoint_slice("np", label_selector="kubernetes.io/service-name=web")
print(sl.items[0].endpoints[0].addresses[0])
net.delete_namespaced_network_policy("web-allow", "np")
"#,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        [
            "client-egress default-deny web-allow",
            "['Ingress'] http",
            "True",
            web_ip
        ]
    );
    settles(&s, "friends", "friend", web_ip, 9090, false);

    // the policies go: everything passes again and the table is gone
    s.ok(&["delete", "networkpolicy", "-n", "np", "--all"]);
    settles(&s, "np", "other", web_ip, 8080, true);
    let deadline = Instant::now() + Duration::from_secs(5);
    while berth_net::nft::list_table(&table).unwrap().is_some() {
        assert!(Instant::now() < deadline, "the policy table stays");
        std::thread::sleep(Duration::from_millis(100));
    }
}
