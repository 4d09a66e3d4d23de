//! dnsbench: the node's cluster DNS under load. Queries over UDP from the
//! node with a fixed number in flight, to the DNS at the pods' gateway and
//! through the `kube-dns` Service (198.19.0.10); a mix of Service names
//! (ClusterIP A records), a headless Service's name (its endpoints) and
//! names that do not exist (NXDOMAIN). Queries/s and latency.
//!
//! Usage: dnsbench --berth PATH --dir DIR [--secs 10] [--rounds 2]
//!        [--in-flight 1,64] [--services 100]
//! Run as root in a network namespace of its own (bench/network.sh).
#![forbid(unsafe_code)]
#![deny(clippy::string_slice)]

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use berth_bench::dnsload::{self, DnsRun};
use berth_bench::server::{BenchServer, NetRanges};
use berth_bench::{Flags, ms};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, PostParams};

fn service(name: &str, headless: bool) -> Result<Service> {
    let mut spec = serde_json::json!({"ports": [{"name": "http", "port": 80}]});
    if headless {
        spec["clusterIP"] = "None".into();
    }
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec
    }))?)
}

fn slice(service: &str, addrs: &[Ipv4Addr]) -> Result<EndpointSlice> {
    let eps: Vec<serde_json::Value> = addrs
        .iter()
        .map(|a| serde_json::json!({"addresses": [a.to_string()], "conditions": {"ready": true}}))
        .collect();
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("{service}-1"), "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4", "endpoints": eps,
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
    }))?)
}

#[tokio::main]
async fn main() -> Result<()> {
    let flags = Flags::from_env();
    let berth = Path::new(flags.get("berth").ok_or_else(|| anyhow!("--berth PATH"))?).to_owned();
    let dir = Path::new(flags.get("dir").ok_or_else(|| anyhow!("--dir DIR"))?).to_owned();
    let secs: u64 = flags.num("secs", 10)?;
    let rounds: usize = flags.num("rounds", 2)?;
    let n_services: usize = flags.num("services", 100)?;
    let in_flight: Vec<usize> = flags
        .get("in-flight")
        .unwrap_or("1,64")
        .split(',')
        .map(|c| c.parse().map_err(|_| anyhow!("--in-flight {c:?}")))
        .collect::<Result<_>>()?;
    let server = BenchServer::start(
        &berth,
        &dir,
        &NetRanges {
            table: "berth_dns",
            bridge: "bdns0",
            subnet: "198.18.98.0/24",
            pool: "198.19.104.0/22",
        },
    )
    .await?;
    // a pod brings up the pods' bridge, where the node's DNS listens
    let pods: Api<Pod> = Api::namespaced(server.client.clone(), "default");
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "client"},
        "spec": {"terminationGracePeriodSeconds": 0, "containers": [{"name": "c",
          "image": "busybox:stable", "imagePullPolicy": "IfNotPresent", "command": ["sleep", "3600"]}]}
    }))?;
    pods.create(&PostParams::default(), &pod).await?;
    let t = Instant::now();
    while pods
        .get("client")
        .await?
        .status
        .and_then(|s| s.phase)
        .as_deref()
        != Some("Running")
    {
        if t.elapsed() > Duration::from_secs(60) {
            bail!("pod client not running after 60 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let services: Api<Service> = Api::namespaced(server.client.clone(), "default");
    let slices: Api<EndpointSlice> = Api::namespaced(server.client.clone(), "default");
    for i in 0..n_services {
        services
            .create(
                &PostParams::default(),
                &service(&format!("svc-{i}"), false)?,
            )
            .await?;
    }
    services
        .create(&PostParams::default(), &service("hl", true)?)
        .await?;
    let hl_addrs: Vec<Ipv4Addr> = (2..5).map(|i| Ipv4Addr::new(198, 18, 99, i)).collect();
    slices
        .create(&PostParams::default(), &slice("hl", &hl_addrs)?)
        .await?;
    // the mix: 6 Service names, 2 headless, 2 that do not exist
    let zone = "default.svc.cluster.local.";
    let mut names = Vec::new();
    for i in 0..n_services.max(1) {
        let k = i % 10;
        names.push(match k {
            0..=5 => format!("svc-{}.{zone}", (i * 7) % n_services.max(1)),
            6 | 7 => format!("hl.{zone}"),
            _ => format!("nope-{i}.{zone}"),
        });
    }
    let servers: [(&str, SocketAddr); 2] = [
        (
            "the pods' gateway",
            (Ipv4Addr::new(198, 18, 98, 1), 53).into(),
        ),
        (
            "kube-dns 198.19.0.10",
            (Ipv4Addr::new(198, 19, 0, 10), 53).into(),
        ),
    ];
    // until the zone has every name, through both paths
    let last = vec![
        format!("svc-{}.{zone}", n_services.saturating_sub(1)),
        format!("hl.{zone}"),
    ];
    for (what, addr) in &servers {
        let t = Instant::now();
        loop {
            let r = dnsload::run(*addr, &last, 1, Duration::from_millis(50)).await;
            if let Ok(r) = &r
                && r.answered > 0
                && r.other == 0
                && r.nxdomain == 0
                && r.timeouts == 0
            {
                break;
            }
            if t.elapsed() > Duration::from_secs(30) {
                bail!("{what} ({addr}) does not answer the zone after 30 s: {r:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    println!(
        "{n_services} Services, a headless Service of 3 endpoints; the mix: 60 % Service names, 20 % headless, 20 % NXDOMAIN; {rounds} rounds of {secs} s"
    );
    let mut all: BTreeMap<(usize, usize), DnsRun> = BTreeMap::new();
    let c0 = server.cpu_secs();
    for _ in 0..rounds {
        for &n in &in_flight {
            for (i, (_, addr)) in servers.iter().enumerate() {
                let r = dnsload::run(*addr, &names, n, Duration::from_secs(secs)).await?;
                let e = all.entry((n, i)).or_default();
                e.latencies.extend(r.latencies);
                e.answered += r.answered;
                e.nxdomain += r.nxdomain;
                e.other += r.other;
                e.timeouts += r.timeouts;
                e.elapsed += r.elapsed;
            }
        }
    }
    let busy = server.cpu_secs() - c0;
    println!("| in flight | server | queries/s | p50 | p99 | answers / NXDOMAIN / other / lost |");
    println!("|---|---|---:|---:|---:|---|");
    for &n in &in_flight {
        for (i, (what, _)) in servers.iter().enumerate() {
            let Some(r) = all.get(&(n, i)) else { continue };
            println!(
                "| {n} | {what} | {:.0} | {} | {} | {} / {} / {} / {} |",
                r.rate(),
                ms(r.latencies.quantile(0.5)),
                ms(r.latencies.quantile(0.99)),
                r.answered,
                r.nxdomain,
                r.other,
                r.timeouts
            );
        }
    }
    println!(
        "berth server's CPU during the runs: {:.0} % of a core",
        busy * 100.0 / (rounds * in_flight.len() * servers.len() * secs as usize) as f64
    );
    println!("rss after: {}", berth_bench::mib(server.rss_kb()));
    server.clear_pods().await?;
    Ok(())
}
