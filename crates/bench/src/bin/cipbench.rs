//! cipbench: the cost of a ClusterIP. HTTP requests (a new TCP connection
//! each) from the node to three busybox `httpd` pods: straight to one pod's
//! address, to the three addresses in turn (the fair comparison: the same
//! spread without the service proxy), through the Service's ClusterIP and
//! through its NodePort; requests/s and latency at fixed concurrencies.
//!
//! Usage: cipbench --berth PATH --dir DIR [--secs 10] [--rounds 2]
//!        [--concurrency 16,64] [--only PREFIX,…]
//! `--only` keeps the targets whose names start with a prefix: one path on
//! pods no other path has used (mixing paths on the same pods meets their
//! TIME_WAIT entries with unrelated sequence numbers: 1 s SYN retries).
//! Run as root in a network namespace of its own (bench/network.sh). Each
//! round runs every target at every concurrency for `secs` seconds, in
//! turn, so a drift of the machine's speed hits every target alike.
#![forbid(unsafe_code)]
#![deny(clippy::string_slice)]

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use berth_bench::server::{BenchServer, NetRanges};
use berth_bench::tcpload::{self, HttpRun, Pick};
use berth_bench::{Flags, ms};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{Api, ListParams, PostParams};

fn objects() -> Result<(Deployment, Service)> {
    let d = serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
          "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "httpd", "image": "busybox:stable", "imagePullPolicy": "IfNotPresent",
              "command": ["sh", "-c", "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 8080 -h /www"],
              "ports": [{"containerPort": 8080}],
              "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}]}}}
    }))?;
    let s = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"type": "NodePort", "selector": {"app": "web"},
          "ports": [{"port": 80, "targetPort": 8080}]}
    }))?;
    Ok((d, s))
}

/// Waits until `addr` answers a request.
async fn answers(addr: SocketAddr, limit: Duration) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        let r = tcpload::run(&[addr], 1, Duration::from_millis(1)).await;
        if !r.latencies.is_empty() && r.errors == 0 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::main]
async fn main() -> Result<()> {
    let flags = Flags::from_env();
    let berth = Path::new(flags.get("berth").ok_or_else(|| anyhow!("--berth PATH"))?).to_owned();
    let dir = Path::new(flags.get("dir").ok_or_else(|| anyhow!("--dir DIR"))?).to_owned();
    let secs: u64 = flags.num("secs", 10)?;
    let rounds: usize = flags.num("rounds", 2)?;
    let concs: Vec<usize> = flags
        .get("concurrency")
        .unwrap_or("16,64")
        .split(',')
        .map(|c| c.parse().map_err(|_| anyhow!("--concurrency {c:?}")))
        .collect::<Result<_>>()?;
    let server = BenchServer::start(
        &berth,
        &dir,
        &NetRanges {
            table: "berth_cip",
            bridge: "bcip0",
            subnet: "198.18.97.0/24",
            pool: "198.19.100.0/22",
        },
    )
    .await?;
    let gateway = Ipv4Addr::new(198, 18, 97, 1);
    let (d, s) = objects()?;
    let deployments: Api<Deployment> = Api::namespaced(server.client.clone(), "default");
    let services: Api<Service> = Api::namespaced(server.client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(server.client.clone(), "default");
    deployments.create(&PostParams::default(), &d).await?;
    let svc = services.create(&PostParams::default(), &s).await?;
    let t = Instant::now();
    loop {
        let d = deployments.get("web").await?;
        if d.status.and_then(|s| s.ready_replicas).unwrap_or(0) >= 3 {
            break;
        }
        if t.elapsed() > Duration::from_secs(120) {
            bail!("web: not 3 Ready pods after 120 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut pod_ips: Vec<Ipv4Addr> = Vec::new();
    for p in pods.list(&ListParams::default().labels("app=web")).await? {
        let ip = p
            .status
            .and_then(|s| s.pod_ip)
            .context("a Ready pod without an address")?;
        pod_ips.push(ip.parse()?);
    }
    pod_ips.sort();
    let spec = svc.spec.context("Service without spec")?;
    let cluster_ip: Ipv4Addr = spec
        .cluster_ip
        .context("Service without a ClusterIP")?
        .parse()?;
    let node_port = spec
        .ports
        .and_then(|p| p.first().and_then(|p| p.node_port))
        .context("Service without a node port")?;
    let node_port = u16::try_from(node_port)?;
    let pod_addrs: Vec<SocketAddr> = pod_ips.iter().map(|ip| (*ip, 8080).into()).collect();
    let mut targets: Vec<(&str, Pick, Vec<SocketAddr>)> = vec![
        (
            "one pod IP",
            Pick::RoundRobin,
            pod_addrs.iter().take(1).copied().collect(),
        ),
        ("3 pod IPs round-robin", Pick::RoundRobin, pod_addrs.clone()),
        ("3 pod IPs at random", Pick::Random, pod_addrs.clone()),
        ("ClusterIP", Pick::RoundRobin, vec![(cluster_ip, 80).into()]),
    ];
    for (what, ip) in [
        ("NodePort on 127.0.0.1", Ipv4Addr::LOCALHOST),
        ("NodePort on the bridge address", gateway),
    ] {
        let addr = SocketAddr::from((ip, node_port));
        if answers(addr, Duration::from_secs(5)).await {
            targets.push((what, Pick::RoundRobin, vec![addr]));
        } else {
            println!("{what} ({addr}): no answer, not measured");
        }
    }
    // --only a,b: the targets whose names start with these (e.g. "3 pod
    // IPs round-robin" by "3", "ClusterIP" by "C"), to measure one path on
    // pods no other path has used
    if let Some(only) = flags.get("only") {
        let keep: Vec<&str> = only.split(',').collect();
        targets.retain(|(what, _, _)| keep.iter().any(|k| what.starts_with(k)));
    }
    if !answers((cluster_ip, 80).into(), Duration::from_secs(10)).await {
        bail!("the ClusterIP {cluster_ip}:80 does not answer");
    }
    println!(
        "pods {pod_ips:?}, ClusterIP {cluster_ip}:80, node port {node_port}; {rounds} rounds of {secs} s per target and concurrency"
    );
    // a short warm-up of every path
    for (_, _, addrs) in &targets {
        tcpload::run(addrs, 4, Duration::from_millis(500)).await;
    }
    let mut all: BTreeMap<(usize, usize), HttpRun> = BTreeMap::new();
    let busy0 = server.cpu_secs();
    for _ in 0..rounds {
        for &c in &concs {
            for (i, (_, pick, addrs)) in targets.iter().enumerate() {
                let r = tcpload::run_picking(addrs, *pick, c, Duration::from_secs(secs)).await;
                let e = all.entry((c, i)).or_default();
                e.latencies.extend(r.latencies);
                e.errors += r.errors;
                e.elapsed += r.elapsed;
            }
        }
    }
    let busy = server.cpu_secs() - busy0;
    println!("| concurrency | target | requests/s | p50 | p99 | errors | vs 3 pod IPs |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for &c in &concs {
        let base = all.get(&(c, 1)).map_or(0.0, HttpRun::rate);
        for (i, (what, _, _)) in targets.iter().enumerate() {
            let Some(r) = all.get(&(c, i)) else { continue };
            let vs = if base > 0.0 {
                format!("{:+.1} %", (r.rate() / base - 1.0) * 100.0)
            } else {
                "-".into()
            };
            println!(
                "| {c} | {what} | {:.0} | {} | {} | {} | {vs} |",
                r.rate(),
                ms(r.latencies.quantile(0.5)),
                ms(r.latencies.quantile(0.99)),
                r.errors
            );
        }
    }
    println!(
        "berth server's CPU during the runs: {busy:.1} s ({:.1} % of a core)",
        busy * 100.0 / (rounds * concs.len() * targets.len()) as f64 / secs as f64
    );
    server.clear_pods().await?;
    Ok(())
}
