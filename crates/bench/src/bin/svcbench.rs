//! svcbench: the service proxy's rule updates in the kernel (run as root,
//! in a network namespace of its own: bench/services.sh makes one).
//!
//! Writes a table of S Services × E endpoints whole (as at start), then
//! changes one endpoint of one Service N times, each as the proxy does it
//! (the small transaction of `berth_net::services::diff_ops`, one netlink
//! batch sent in-process), and for comparison the same transaction as an
//! `nft` script and as a whole-table rewrite (`nft` binary's run included);
//! prints the times and the CPU each way used.

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
    let mut batch = Vec::new();
    let mut small = Vec::new();
    let mut whole = Vec::new();
    let (mut cpu_batch, mut cpu_small) = (0.0, 0.0);
    let mut next_ep = svcs * eps;
    for c in 0..changes {
        let key = format!("s{}", (c * 7919) % svcs);
        let mut after = m.clone();
        if let Some(p) = after.get_mut(&key) {
            p.endpoints[c % eps] = endpoint(next_ep);
            next_ep += 1;
        }
        // the change, then back, then the change again: each way applies
        // the same transaction to the same table
        let ops = services::diff_ops(&cfg, &m, &after);
        let c0 = cpu_ms();
        let t = Instant::now();
        anyhow::ensure!(
            services::apply_ops(&cfg.table, &ops)?,
            "netlink batch not used"
        );
        batch.push(t.elapsed().as_secs_f64() * 1e3);
        cpu_batch += cpu_ms() - c0;
        services::apply_ops(&cfg.table, &services::diff_ops(&cfg, &after, &m))?;
        let script = services::diff(&cfg, &m, &after);
        let c0 = cpu_ms();
        let t = Instant::now();
        berth_net::nft::apply(&script)?;
        small.push(t.elapsed().as_secs_f64() * 1e3);
        cpu_small += cpu_ms() - c0;
        let t = Instant::now();
        services::full_apply(&cfg, &after)?;
        whole.push(t.elapsed().as_secs_f64() * 1e3);
        m = after;
    }
    println!(
        "one endpoint changed ({changes} times): netlink batch p50 {:.2} ms p99 {:.2} ms, CPU {:.2} ms a change",
        pct(&mut batch, 0.5),
        pct(&mut batch, 0.99),
        cpu_batch / changes as f64
    );
    println!(
        "  the same through nft: p50 {:.1} ms p99 {:.1} ms, CPU {:.1} ms a change",
        pct(&mut small, 0.5),
        pct(&mut small, 0.99),
        cpu_small / changes as f64
    );
    println!(
        "  whole-table rewrite p50 {:.1} ms p99 {:.1} ms",
        pct(&mut whole, 0.5),
        pct(&mut whole, 0.99)
    );
    berth_net::nft::apply(&services::delete(&cfg))?;
    Ok(())
}

/// CPU time of this process and its finished children (the `nft` runs), in
/// milliseconds (`/proc/self/stat`'s utime, stime, cutime, cstime, at the
/// kernel's 100 ticks a second).
fn cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // the fields after the command's closing parenthesis; utime is the 14th
    // field of the line, the 12th after it
    let rest = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(4)
        .filter_map(|v| v.parse().ok())
        .collect();
    f.iter().sum::<f64>() * 10.0
}
