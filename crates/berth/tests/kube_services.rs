//! Service addresses through kubectl: `kubectl create service` gets a
//! cluster IP of the Service range, and the `kubernetes` Service has the
//! range's first address on 443/TCP.

use std::path::Path;

use berth_testutil::{KubeServer, have_kubectl};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_berth"))
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
