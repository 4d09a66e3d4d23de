//! The NetworkPolicy table in the real kernel: pods of one bridge, an
//! ingress allow-list by address and port, a default-deny egress that still
//! lets replies of allowed connections out and DNS to the node through,
//! ipBlock exceptions, the rules applying after a Service's DNAT, and the
//! table gone when nothing is isolated.

mod common;

use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;

use berth_net::Proto;
use berth_net::nft;
use berth_net::policy::{self, PodRules, Policies, PolicyConfig, PortMatch, Protocol, Rule};
use berth_net::services::{self, ProxyConfig, ServicePort, Services};
use common::*;

/// Removes the tables on drop.
struct Tables(PolicyConfig, ProxyConfig);

impl Drop for Tables {
    fn drop(&mut self) {
        let _ = nft::apply(&policy::delete(&self.0));
        let _ = nft::apply(&services::delete(&self.1));
    }
}

/// Whether an HTTP GET from `ns` to `ip:port` answers within a second.
fn reaches(ns: &Path, ip: Ipv4Addr, port: u16) -> bool {
    wget_in_within(ns, &ip.to_string(), port, 1).is_some()
}

fn one(ip: Ipv4Addr) -> Vec<policy::AddrRange> {
    vec![(ip, ip)]
}

fn tcp(port: u16) -> Option<Vec<PortMatch>> {
    Some(vec![PortMatch {
        protocol: Protocol::Tcp,
        ports: Some((port, port)),
    }])
}

#[test]
fn policies_filter_pod_traffic_in_the_kernel() {
    if !root_or_skip("policy") {
        return;
    }
    berth_net::sysctl::enable_bridge_netfilter().unwrap();
    let mut env = Env::new(237);
    let (a, b, c) = (env.netns("a"), env.netns("b"), env.netns("c"));
    let ea = env.attach("bridge", "aaaa", &a, vec![]);
    let eb = env.attach("bridge", "bbbb", &b, vec![]);
    let ec = env.attach("bridge", "cccc", &c, vec![]);
    env.http_server(&a, 8080, "a\n");
    env.http_server(&a, 9090, "a9\n");
    env.http_server(&b, 8080, "b\n");
    let gw = env.net.config().default_gateway();
    let pcfg = PolicyConfig {
        table: format!("tpol{}", env.tag),
        dns: vec![gw],
    };
    let scfg = ProxyConfig {
        table: format!("tsvc{}", env.tag),
        cluster_cidr: Some("198.18.237.0/24".into()),
    };
    let _tables = Tables(pcfg.clone(), scfg.clone());
    assert!(reaches(&c, ea.ip, 8080) && reaches(&c, ea.ip, 9090));

    // a: ingress only from b on 8080; c: nothing out but what a rule allows
    let mut p = Policies::new();
    p.insert(
        ea.ip,
        PodRules {
            name: "default/a".into(),
            ingress: Some(vec![Rule {
                peers: Some(one(eb.ip)),
                ports: tcp(8080),
            }]),
            egress: None,
        },
    );
    p.insert(
        ec.ip,
        PodRules {
            name: "default/c".into(),
            ingress: None,
            egress: Some(vec![Rule {
                peers: Some(policy::block("198.18.237.0/24", &[format!("{}/32", ea.ip)]).unwrap()),
                ports: None,
            }]),
        },
    );
    nft::apply(&policy::full(&pcfg, &p)).unwrap();
    let listed = nft::list_table(&pcfg.table).unwrap().unwrap();
    assert!(listed.contains("ip saddr vmap @egress"), "{listed}");
    assert!(reaches(&b, ea.ip, 8080), "b → a:8080 is allowed");
    assert!(!reaches(&b, ea.ip, 9090), "b → a:9090 is not");
    assert!(
        !reaches(&c, ea.ip, 8080),
        "c may not reach a (ipBlock except)"
    );
    assert!(reaches(&c, eb.ip, 8080), "c → b is inside the ipBlock");
    // the host always reaches its pods
    assert!(http_get(&format!("{}:9090", ea.ip)).is_ok());

    // a Service in front of a: the rules see the endpoint after DNAT
    let vip = Ipv4Addr::new(198, 19, 0, 30);
    let mut m = Services::new();
    m.insert(
        "a".into(),
        ServicePort {
            name: "default/a:http".into(),
            cluster_ip: Some(vip),
            proto: Proto::Tcp,
            port: 80,
            node_port: None,
            affinity_timeout: None,
            local_only: false,
            endpoints: vec![(ea.ip, 8080)],
            local_endpoints: Vec::new(),
            external_ips: Vec::new(),
        },
    );
    nft::apply(&services::full(&scfg, &m)).unwrap();
    assert!(reaches(&b, vip, 80), "b → Service → a:8080");
    assert!(!reaches(&c, vip, 80), "c → Service → a is still refused");

    // a default-deny egress on a: its replies still leave (the connection
    // was allowed in), new connections out do not, DNS to the node does
    let host_port = greeter(TcpListener::bind((gw, 0)).unwrap());
    greeter(TcpListener::bind((gw, 53)).unwrap());
    p.get_mut(&ea.ip).unwrap().egress = Some(vec![]);
    nft::apply(&policy::full(&pcfg, &p)).unwrap();
    assert!(
        reaches(&b, ea.ip, 8080),
        "replies pass a default-deny egress"
    );
    assert!(!reaches(&a, eb.ip, 8080), "a may not open connections");
    let connect = |port: u16| {
        let out = in_ns(
            &a,
            &[BUSYBOX, "nc", "-w", "1", &gw.to_string(), &port.to_string()],
        );
        String::from_utf8_lossy(&out.stdout) == "ok\n"
    };
    assert!(!connect(host_port), "a → the node is egress too");
    assert!(connect(53), "DNS to the node passes");
    // an ipBlock for the node opens it
    p.get_mut(&ea.ip).unwrap().egress = Some(vec![Rule {
        peers: Some(one(gw)),
        ports: tcp(host_port),
    }]);
    nft::apply(&policy::full(&pcfg, &p)).unwrap();
    assert!(connect(host_port));

    // nothing isolated: the table goes, everything passes again
    let none: Policies = p
        .iter()
        .map(|(ip, r)| {
            (
                *ip,
                PodRules {
                    name: r.name.clone(),
                    ..Default::default()
                },
            )
        })
        .collect();
    nft::apply(&policy::full(&pcfg, &none)).unwrap();
    assert!(nft::list_table(&pcfg.table).unwrap().is_none());
    assert!(reaches(&c, ea.ip, 9090));
}

/// Answers every connection to `l` with "ok\n" (in a thread); its port.
fn greeter(l: TcpListener) -> u16 {
    use std::io::Write;
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut c in l.incoming().flatten() {
            let _ = c.write_all(b"ok\n");
        }
    });
    port
}
