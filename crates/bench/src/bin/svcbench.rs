//! svcbench: the service proxy's rule updates in the kernel (run as root,
//! in a network namespace of its own: bench/services.sh makes one).
//!
//! Writes a table of S Services × E endpoints whole (as at start), then
//! changes one endpoint of one Service N times, each as the small
//! transaction `berth_net::services::diff` makes, and for comparison as a
//! whole-table rewrite; prints the times (the `nft` binary's run included).

use std::net::Ipv4Addr;
use std::time::Instant;

use berth_net::Proto;
use berth_net::services::{self, ProxyConfig, ServicePort, Services};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn endpoint(n: usize) -> (Ipv4Addr, u16) {
    (
        Ipv4Addr::new(198, 18, (n / 250 % 250) as u8, (n % 250 + 2) as u8),
        8080,
    )
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() -> anyhow::Result<()> {
    let (svcs, eps, changes) = (
        arg("--services", 1000),
        arg("--endpoints", 10),
        arg("--changes", 50),
    );
    let cfg = ProxyConfig {
        table: "svcbench".into(),
        cluster_cidr: Some("198.18.0.0/16".into()),
    };
    let mut m = Services::new();
    for i in 0..svcs {
        m.insert(
            format!("s{i}"),
            ServicePort {
                name: format!("bench/s{i}:http"),
                cluster_ip: Some(Ipv4Addr::new(198, 19, (i / 250) as u8, (i % 250 + 1) as u8)),
                proto: Proto::Tcp,
                port: 80,
                node_port: None,
                affinity_timeout: None,
                local_only: false,
                endpoints: (0..eps).map(|e| endpoint(i * eps + e)).collect(),
                local_endpoints: Vec::new(),
                external_ips: Vec::new(),
            },
        );
    }
    let t = Instant::now();
    services::full_apply(&cfg, &m)?;
    println!(
        "full table: {svcs} Services x {eps} endpoints written in {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
    let mut small = Vec::new();
    let mut whole = Vec::new();
    let mut next_ep = svcs * eps;
    for c in 0..changes {
        let key = format!("s{}", (c * 7919) % svcs);
        let mut after = m.clone();
        if let Some(p) = after.get_mut(&key) {
            p.endpoints[c % eps] = endpoint(next_ep);
            next_ep += 1;
        }
        let script = services::diff(&cfg, &m, &after);
        let t = Instant::now();
        berth_net::nft::apply(&script)?;
        small.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        services::full_apply(&cfg, &after)?;
        whole.push(t.elapsed().as_secs_f64() * 1e3);
        m = after;
    }
    println!(
        "one endpoint changed ({changes} times): diff p50 {:.1} ms p99 {:.1} ms; whole-table rewrite p50 {:.1} ms p99 {:.1} ms",
        pct(&mut small, 0.5),
        pct(&mut small, 0.99),
        pct(&mut whole, 0.5),
        pct(&mut whole, 0.99)
    );
    berth_net::nft::apply(&services::delete(&cfg))?;
    Ok(())
}
