//! Cluster DNS on `berth server`'s node: the `kube-dns` Service and its
//! slice, pods' resolv.conf, Services, headless Services and StatefulSet
//! pods answered (from a pod with busybox's nslookup, and from the test
//! process at the node's DNS address and through the Service's address),
//! a new Service answered within a second. Driven by kubectl 1.33; the
//! busybox image is imported offline. (Forwarding to upstream resolvers is
//! tested at the net level, against a fake upstream: crates/net/tests.)

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use berth_testutil::{KubeServer, have_kubectl, root_or_skip};
use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, RecordType};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_berth"))
}

/// One A query to `server`:53 over UDP: the code and the addresses.
fn lookup(server: Ipv4Addr, name: &str) -> Option<(ResponseCode, BTreeSet<Ipv4Addr>)> {
    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).ok()?, RecordType::A));
    let s = UdpSocket::bind("0.0.0.0:0").ok()?;
    s.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
    s.send_to(&m.to_vec().ok()?, (server, 53)).ok()?;
    let mut buf = [0u8; 4096];
    let n = s.recv(&mut buf).ok()?;
    let r = Message::from_vec(&buf[..n]).ok()?;
    let ips = r
        .answers
        .iter()
        .filter_map(|a| match a.data {
            RData::A(A(ip)) => Some(ip),
            _ => None,
        })
        .collect();
    Some((r.metadata.response_code, ips))
}

/// Polls `lookup` until `ok` holds (up to `secs`); the last answer.
fn wait_lookup(
    server: Ipv4Addr,
    name: &str,
    secs: u64,
    ok: impl Fn(&(ResponseCode, BTreeSet<Ipv4Addr>)) -> bool,
) -> (ResponseCode, BTreeSet<Ipv4Addr>) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let r = lookup(server, name);
        if let Some(r) = &r
            && ok(r)
        {
            return r.clone();
        }
        assert!(Instant::now() < deadline, "{name} at {server}: {r:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn ips(list: &[&str]) -> BTreeSet<Ipv4Addr> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

#[test]
fn pods_resolve_services_headless_services_and_statefulset_pods() {
    if !root_or_skip("kube_dns") || !have_kubectl() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = KubeServer::start_node(bin(), dir.path(), &[]);
    let node_dns = berth_net::NetConfig::load(&s.root)
        .unwrap()
        .default_gateway();

    // the kube-dns Service and its slice, at the node's DNS
    s.wait_for(
        &["service", "-n", "kube-system", "kube-dns"],
        "{.spec.clusterIP} {.spec.ports[*].name} {.metadata.labels.k8s-app}",
        30,
        |v| v == "198.19.0.10 dns dns-tcp kube-dns",
    );
    s.wait_for(
        &[
            "endpointslices",
            "-n",
            "kube-system",
            "-l",
            "kubernetes.io/service-name=kube-dns",
        ],
        "{.items[*].endpoints[*].addresses[0]}",
        30,
        |v| v == node_dns.to_string(),
    );

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
        command: ["sleep", "3600"]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  clusterIP: 198.19.0.21
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{name: pg, port: 5432}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 2
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: db
        image: busybox:stable
        imagePullPolicy: IfNotPresent
        command: ["sleep", "3600"]
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
    s.wait_for(&["pod", "client"], "{.status.phase}", 60, |v| {
        v == "Running"
    });
    s.wait_for(&["statefulset", "db"], "{.status.readyReplicas}", 60, |v| {
        v == "2"
    });

    // the pod's resolv.conf, as the kubelet writes it for ClusterFirst
    let resolv = s.ok(&["exec", "client", "--", "cat", "/etc/resolv.conf"]);
    assert!(resolv.contains("nameserver 198.19.0.10\n"), "{resolv}");
    assert!(
        resolv.contains("search default.svc.cluster.local svc.cluster.local cluster.local"),
        "{resolv}"
    );
    assert!(resolv.contains("options ndots:5"), "{resolv}");
    assert_eq!(resolv.matches("nameserver").count(), 1, "{resolv}");
    // StatefulSet pods: their hostname and FQDN
    let db0_ip = s.ok(&["get", "pod", "db-0", "-o", "jsonpath={.status.podIP}"]);
    let hosts = s.ok(&["exec", "db-0", "--", "cat", "/etc/hosts"]);
    assert!(
        hosts.contains(&format!(
            "{db0_ip}\tdb-0.db.default.svc.cluster.local\tdb-0"
        )),
        "{hosts}"
    );
    let db1_ip = s.ok(&["get", "pod", "db-1", "-o", "jsonpath={.status.podIP}"]);

    // at the node's DNS address, from the host
    let web = ips(&["198.19.0.21"]);
    wait_lookup(node_dns, "web.default.svc.cluster.local.", 10, |r| {
        r.1 == web
    });
    wait_lookup(node_dns, "db.default.svc.cluster.local.", 20, |r| {
        r.1 == ips(&[&db0_ip, &db1_ip])
    });
    wait_lookup(node_dns, "db-0.db.default.svc.cluster.local.", 10, |r| {
        r.1 == ips(&[&db0_ip])
    });
    let pod_name = format!("{}.default.pod.cluster.local.", db1_ip.replace('.', "-"));
    wait_lookup(node_dns, &pod_name, 10, |r| r.1 == ips(&[&db1_ip]));
    let (code, _) = wait_lookup(node_dns, "nope.default.svc.cluster.local.", 5, |_| true);
    assert_eq!(code, ResponseCode::NXDomain);
    // through the Service's address (the service proxy)
    wait_lookup(
        "198.19.0.10".parse().unwrap(),
        "web.default.svc.cluster.local.",
        10,
        |r| r.1 == web,
    );

    // from the pod, busybox's nslookup (through 198.19.0.10)
    let ns = |name: &str| {
        let out = s.kubectl(&["exec", "client", "--", "nslookup", name]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let out = ns("web.default.svc.cluster.local");
    assert!(out.contains("198.19.0.21"), "{out}");
    // the search list
    let out = ns("web");
    assert!(out.contains("198.19.0.21"), "{out}");
    let out = ns("db.default.svc.cluster.local");
    assert!(out.contains(&db0_ip) && out.contains(&db1_ip), "{out}");
    // (a name with dots goes out as asked first: with no upstream
    // reachable here that is SERVFAIL, which ends busybox's search)
    let out = ns("db-0.db.default.svc.cluster.local");
    assert!(out.contains(&db0_ip) && !out.contains(&db1_ip), "{out}");

    // a new Service answers within a second of its creation
    s.apply(
        r#"
apiVersion: v1
kind: Service
metadata: {name: late}
spec:
  clusterIP: 198.19.0.22
  selector: {app: late}
  ports: [{port: 80}]
"#,
    );
    let t0 = Instant::now();
    wait_lookup(node_dns, "late.default.svc.cluster.local.", 5, |r| {
        r.1 == ips(&["198.19.0.22"])
    });
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "took {:?}",
        t0.elapsed()
    );
    // and goes with it
    s.ok(&["delete", "service", "late"]);
    wait_lookup(node_dns, "late.default.svc.cluster.local.", 5, |r| {
        r.0 == ResponseCode::NXDomain
    });

    s.ok(&["delete", "statefulset", "db"]);
    s.ok(&["delete", "deployment", "web"]);
    s.ok(&["delete", "pod", "client", "--wait=true"]);
}
