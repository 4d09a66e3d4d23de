//! The service proxy's table in the real kernel: ClusterIPs and NodePorts
//! reach their endpoints (from the host, from a pod, from the endpoint
//! itself), spread over them, keep affinity, reject without endpoints,
//! and change by small transactions that leave the same table a full
//! write would.

mod common;

use std::collections::HashSet;
use std::net::Ipv4Addr;

use berth_net::Proto;
use berth_net::nft;
use berth_net::services::{self, ProxyConfig, ServicePort, Services};
use common::*;

fn port(name: &str, ip: Ipv4Addr, eps: &[Ipv4Addr]) -> ServicePort {
    ServicePort {
        name: name.into(),
        cluster_ip: Some(ip),
        proto: Proto::Tcp,
        port: 80,
        node_port: None,
        affinity_timeout: None,
        local_only: false,
        endpoints: eps.iter().map(|e| (*e, 8080)).collect(),
        local_endpoints: Vec::new(),
        external_ips: Vec::new(),
    }
}

/// Removes the table on drop.
struct Table(ProxyConfig);

impl Drop for Table {
    fn drop(&mut self) {
        let _ = nft::apply(&services::delete(&self.0));
    }
}

fn bodies(addr: &str, n: usize) -> HashSet<String> {
    (0..n)
        .map(|_| {
            let r = http_get(addr).unwrap_or_else(|e| panic!("GET {addr}: {e}"));
            r.split_once("\r\n\r\n")
                .map(|x| x.1.to_owned())
                .unwrap_or(r)
        })
        .collect()
}

#[test]
fn cluster_ips_and_node_ports_reach_ready_endpoints() {
    if !root_or_skip("services") {
        return;
    }
    let mut env = Env::new(238);
    let (a, b, c) = (env.netns("a"), env.netns("b"), env.netns("c"));
    let ea = env.attach("bridge", "aaaa", &a, vec![]);
    let eb = env.attach("bridge", "bbbb", &b, vec![]);
    let ec = env.attach("bridge", "cccc", &c, vec![]);
    env.http_server(&a, 8080, "a\n");
    env.http_server(&b, 8080, "b\n");
    let cfg = ProxyConfig {
        table: format!("tsvc{}", env.tag),
        cluster_cidr: Some("198.18.238.0/24".into()),
    };
    let _table = Table(cfg.clone());
    let vip = Ipv4Addr::new(198, 19, 0, 10);
    let empty_vip = Ipv4Addr::new(198, 19, 0, 11);
    let node_port = free_port().max(30000);
    let mut web = port("default/web:http", vip, &[ea.ip, eb.ip]);
    web.node_port = Some(node_port);
    let mut m = Services::new();
    m.insert("web".into(), web.clone());
    m.insert("empty".into(), port("default/empty:http", empty_vip, &[]));
    nft::apply(&services::full(&cfg, &m)).unwrap();
    // the service range must be routable from the host (a node has a
    // default route; this namespace has none): through the pods' bridge
    let bridge = env.net.config().default_bridge.clone();
    let st = std::process::Command::new("ip")
        .args(["route", "replace", "198.19.0.0/20", "dev", &bridge])
        .status()
        .unwrap();
    assert!(st.success());

    // from the host: both endpoints answer, over the ClusterIP and the NodePort
    assert_eq!(
        bodies(&format!("{vip}:80"), 24),
        HashSet::from(["a\n".to_owned(), "b\n".to_owned()])
    );
    let gw = "198.18.238.1";
    assert_eq!(bodies(&format!("{gw}:{node_port}"), 24).len(), 2);
    // 127.0.0.1 too (route_localnet on the bridge, the source masqueraded)
    assert!(!bodies(&format!("127.0.0.1:{node_port}"), 4).is_empty());
    // from a pod, and from an endpoint to itself (hairpin)
    let from_c = wget_in(&c, &vip.to_string(), 80);
    assert!(
        matches!(from_c.as_deref(), Some("a\n" | "b\n")),
        "{from_c:?}"
    );
    for _ in 0..6 {
        let own = wget_in(&a, &vip.to_string(), 80);
        assert!(
            matches!(own.as_deref(), Some("a\n" | "b\n")),
            "hairpin: {own:?}"
        );
    }
    // no endpoints: refused at once, not left to time out
    let e = std::net::TcpStream::connect_timeout(
        &format!("{empty_vip}:80").parse().unwrap(),
        std::time::Duration::from_secs(3),
    )
    .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");

    // a change is a small transaction; the result equals a full write
    let mut next = m.clone();
    next.get_mut("web").unwrap().endpoints = vec![(eb.ip, 8080)];
    next.get_mut("empty").unwrap().endpoints = vec![(ea.ip, 8080)];
    let d = services::diff(&cfg, &m, &next);
    assert!(!d.contains("table ip"), "{d}");
    // sent in-process as one netlink batch (no affinity in this change)
    assert!(services::apply_diff(&cfg, &m, &next).unwrap());
    assert_eq!(
        bodies(&format!("{vip}:80"), 8),
        HashSet::from(["b\n".to_owned()])
    );
    assert_eq!(
        bodies(&format!("{empty_vip}:80"), 4),
        HashSet::from(["a\n".to_owned()])
    );
    let after_diff = nft::list_table(&cfg.table).unwrap().unwrap();
    nft::apply(&services::full(&cfg, &next)).unwrap();
    let after_full = nft::list_table(&cfg.table).unwrap().unwrap();
    let norm = |s: &str| {
        let mut l: Vec<String> = s.lines().map(|l| l.trim().to_owned()).collect();
        l.sort();
        l
    };
    assert_eq!(norm(&after_diff), norm(&after_full));

    // session affinity: one client sticks to one endpoint
    let mut sticky = next.clone();
    let w = sticky.get_mut("web").unwrap();
    w.endpoints = vec![(ea.ip, 8080), (eb.ip, 8080)];
    w.affinity_timeout = Some(10800);
    // affinity's sets go through nft
    assert!(!services::apply_diff(&cfg, &next, &sticky).unwrap());
    assert_eq!(bodies(&format!("{vip}:80"), 12).len(), 1);

    // a removed Service leaves nothing of itself
    let mut gone = sticky.clone();
    gone.remove("web");
    assert!(!services::apply_diff(&cfg, &sticky, &gone).unwrap());
    let listing = nft::list_table(&cfg.table).unwrap().unwrap();
    assert!(
        !listing.contains("198.19.0.10") && !listing.contains("aff-"),
        "{listing}"
    );
    assert!(http_get(&format!("{vip}:80")).is_err());
    let _ = (ea, eb, ec);
}

/// Every kind of change the netlink batch encodes leaves the table a full
/// write through `nft` leaves (read back with `nft list`, so nft also
/// parses what the batch made), and a failed batch changes nothing.
#[test]
fn netlink_changes_equal_what_nft_writes() {
    if !root_or_skip("services netlink") {
        return;
    }
    let cfg = ProxyConfig {
        table: format!("tsvcnl{}", std::process::id()),
        // not a whole number of bytes: the rule masks the address
        cluster_cidr: Some("198.18.0.0/20".into()),
    };
    let _table = Table(cfg.clone());
    let ep = |i: u8| Ipv4Addr::new(198, 18, 1, i);
    let mut a = port(
        "default/a:http",
        Ipv4Addr::new(198, 19, 0, 20),
        &[ep(1), ep(2)],
    );
    a.node_port = Some(30020);
    let mut b = port("default/b:dns", Ipv4Addr::new(198, 19, 0, 21), &[ep(3)]);
    b.proto = Proto::Udp;
    b.port = 53;
    let mut lb = port(
        "web/lb:https",
        Ipv4Addr::new(198, 19, 0, 22),
        &[ep(4), ep(5), ep(6)],
    );
    lb.node_port = Some(30443);
    lb.local_only = true;
    lb.local_endpoints = vec![(ep(4), 8080)];
    lb.external_ips = vec![Ipv4Addr::new(198, 18, 255, 1)];
    let empty = port("default/empty:http", Ipv4Addr::new(198, 19, 0, 23), &[]);
    let mut s0 = Services::new();
    for p in [&a, &b, &lb, &empty] {
        s0.insert(p.name.clone(), p.clone());
    }
    // each step: endpoints change, ports come and go, a Service loses every
    // endpoint and another gains its first, local endpoints move, a
    // comment needs cleaning
    let mut steps = vec![s0.clone()];
    let mut s = s0.clone();
    s.get_mut("default/a:http")
        .unwrap()
        .endpoints
        .push((ep(7), 8080));
    s.get_mut("default/empty:http").unwrap().endpoints = vec![(ep(8), 8080)];
    steps.push(s.clone());
    s.get_mut("web/lb:https").unwrap().local_endpoints = Vec::new();
    s.get_mut("default/b:dns").unwrap().endpoints = Vec::new();
    let mut odd = port("x/\"quoted\":p", Ipv4Addr::new(198, 19, 0, 24), &[ep(9)]);
    odd.node_port = Some(30024);
    s.insert(odd.name.clone(), odd);
    steps.push(s.clone());
    s.remove("default/a:http");
    s.get_mut("web/lb:https").unwrap().external_ips = Vec::new();
    steps.push(s.clone());
    steps.push(Services::new());
    steps.push(s0);
    let listing = || nft::list_table(&cfg.table).unwrap().unwrap();
    let norm = |s: &str| {
        let mut l: Vec<String> = s.lines().map(|l| l.trim().to_owned()).collect();
        l.sort();
        l
    };
    nft::apply(&services::full(&cfg, &steps[0])).unwrap();
    for w in steps.windows(2) {
        assert!(services::apply_diff(&cfg, &w[0], &w[1]).unwrap());
        let by_batch = listing();
        nft::apply(&services::full(&cfg, &w[1])).unwrap();
        assert_eq!(norm(&by_batch), norm(&listing()), "{by_batch}");
    }
    assert!(listing().contains("numgen random mod 3 vmap { 0 : goto sep-"));
    // a batch the kernel refuses (a chain that does not exist) changes
    // nothing: the transaction is all or nothing
    let before = listing();
    let mut claimed = steps[steps.len() - 1].clone();
    claimed
        .get_mut("default/a:http")
        .unwrap()
        .endpoints
        .push((ep(11), 8080));
    // `claimed` says a chain exists that was never written
    let e = services::apply_diff(&cfg, &claimed, &steps[0]).unwrap_err();
    assert!(e.to_string().contains("service rules"), "{e}");
    assert_eq!(norm(&before), norm(&listing()));
}
