//! agentbench: `berth server` (its node agent in-process) with many
//! Services: S selector-less Services with an EndpointSlice of E endpoints
//! each (addresses in 198.18.128.0/17, nothing behind them). Memory and CPU
//! idle before and after, the time until every endpoint's rule is in the
//! kernel, and the CPU during a churn of endpoint changes.
//!
//! Usage: agentbench --berth PATH --dir DIR [--services 1000]
//!        [--endpoints 10] [--idle-secs 10] [--churn-rate 10]
//!        [--churn-secs 30]
//! Run as root in a network namespace of its own (bench/network.sh).
#![forbid(unsafe_code)]
#![deny(clippy::string_slice)]

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use berth_bench::server::{BenchServer, NetRanges};
use berth_bench::{Flags, mib, ms};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, Patch, PatchParams, PostParams};

/// The service proxy's table of this root (`<engine table>-svc`).
const TABLE: &str = "berth_ag-svc";

fn endpoint(n: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, (128 + n / 250) as u8, (n % 250 + 2) as u8)
}

fn service(i: usize) -> Result<Service> {
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": format!("svc-{i}")},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
    }))?)
}

/// The endpoints of Service `i`, endpoint `off` not ready.
fn endpoints(i: usize, per: usize, off: Option<usize>) -> serde_json::Value {
    (0..per)
        .map(|j| {
            serde_json::json!({"addresses": [endpoint(i * per + j).to_string()],
                "conditions": {"ready": Some(j) != off}})
        })
        .collect()
}

fn slice(i: usize, per: usize) -> Result<EndpointSlice> {
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("svc-{i}-1"), "labels": {"kubernetes.io/service-name": format!("svc-{i}")}},
        "addressType": "IPv4", "endpoints": endpoints(i, per, None),
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
    }))?)
}

/// How many DNAT rules of the proxy's table lead into 198.18.128.0/17
/// (the benchmark's endpoints), and how long `nft list` took.
fn rules_in_kernel() -> Result<(usize, Duration)> {
    let t = Instant::now();
    let out = Command::new("nft")
        .args(["list", "table", "ip", TABLE])
        .output()?;
    let took = t.elapsed();
    if !out.status.success() {
        // not written yet
        return Ok((0, took));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let n = text
        .lines()
        .filter_map(|l| l.split_once("dnat to ").map(|(_, r)| r))
        .filter_map(|r| r.split(':').next()?.trim().parse::<Ipv4Addr>().ok())
        .filter(|ip| ip.octets()[..2] == [198, 18] && ip.octets()[2] >= 128)
        .count();
    Ok((n, took))
}

/// Polls the kernel until `want` rules are there; the time it took from
/// `since`.
async fn wait_rules(want: usize, since: Instant, limit: Duration) -> Result<Duration> {
    loop {
        let (n, _) = rules_in_kernel()?;
        if n == want {
            return Ok(since.elapsed());
        }
        if since.elapsed() > limit {
            bail!("{n} of {want} endpoint rules in the kernel after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let flags = Flags::from_env();
    let berth = Path::new(flags.get("berth").ok_or_else(|| anyhow!("--berth PATH"))?).to_owned();
    let dir = Path::new(flags.get("dir").ok_or_else(|| anyhow!("--dir DIR"))?).to_owned();
    let n: usize = flags.num("services", 1000)?;
    let per: usize = flags.num("endpoints", 10)?;
    let idle: u64 = flags.num("idle-secs", 10)?;
    let churn_rate: f64 = flags.num("churn-rate", 10.0)?;
    let churn_secs: u64 = flags.num("churn-secs", 30)?;
    if n * per > 250 * 127 {
        bail!("at most {} endpoints", 250 * 127);
    }
    let server = BenchServer::start(
        &berth,
        &dir,
        &NetRanges {
            table: "berth_ag",
            bridge: "bag0",
            subnet: "198.18.100.0/24",
            pool: "198.19.108.0/22",
        },
    )
    .await?;
    println!("node Ready {} after start", ms(server.ready_after));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss0 = server.rss_kb();
    let cpu0 = server.cpu_over(idle).await;
    println!(
        "idle, no Services of ours: rss={} cpu={cpu0:.2} % of a core over {idle} s",
        mib(rss0)
    );

    let services: Api<Service> = Api::namespaced(server.client.clone(), "default");
    let slices: Api<EndpointSlice> = Api::namespaced(server.client.clone(), "default");
    let (own0, kids0) = (server.cpu_secs(), server.children_cpu_secs());
    let t = Instant::now();
    let results: Vec<Result<()>> = futures::stream::iter(0..n)
        .map(|i| {
            let (services, slices) = (services.clone(), slices.clone());
            async move {
                services
                    .create(&PostParams::default(), &service(i)?)
                    .await?;
                slices
                    .create(&PostParams::default(), &slice(i, per)?)
                    .await?;
                Ok(())
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for r in results {
        r?;
    }
    let created = t.elapsed();
    let in_kernel = wait_rules(n * per, t, Duration::from_secs(600)).await?;
    let (_, list_took) = rules_in_kernel()?;
    println!(
        "{n} Services x {per} endpoints: created through the API in {}, every rule in the kernel {} after the first create (nft list of the table: {})",
        ms(created),
        ms(in_kernel),
        ms(list_took)
    );
    println!(
        "CPU while loading: berth server {:.1} s, its nft runs {:.1} s",
        server.cpu_secs() - own0,
        server.children_cpu_secs() - kids0
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    let rss1 = server.rss_kb();
    let cpu1 = server.cpu_over(idle).await;
    println!(
        "idle with them: rss={} (+{}) cpu={cpu1:.2} % of a core over {idle} s",
        mib(rss1),
        mib(rss1.saturating_sub(rss0))
    );

    // churn: one endpoint of one Service turns not ready per change
    let changes = (churn_rate * churn_secs as f64).round() as usize;
    let gap = Duration::from_secs_f64(1.0 / churn_rate);
    let (own0, kids0) = (server.cpu_secs(), server.children_cpu_secs());
    let t0 = Instant::now();
    for k in 0..changes {
        tokio::time::sleep_until((t0 + gap * k as u32).into()).await;
        let i = (k * 7) % n;
        let patch = serde_json::json!({"endpoints": endpoints(i, per, Some(k % per))});
        slices
            .patch(
                &format!("svc-{i}-1"),
                &PatchParams::default(),
                &Patch::Merge(patch),
            )
            .await?;
    }
    let sent = t0.elapsed();
    let last = Instant::now();
    // every changed Service has one endpoint fewer (the same Service is
    // changed again only after n changes)
    let want = n * per - changes.min(n);
    let settled = wait_rules(want, last, Duration::from_secs(120)).await?;
    let wall = t0.elapsed().as_secs_f64();
    let (own, kids) = (server.cpu_secs() - own0, server.children_cpu_secs() - kids0);
    println!(
        "churn: {changes} changes at {churn_rate}/s over {}; rules settled {} after the last; CPU: berth server {:.1} % of a core, its nft runs {:.1} %",
        ms(sent),
        ms(settled),
        own * 100.0 / wall,
        kids * 100.0 / wall
    );
    println!("rss after the churn: {}", mib(server.rss_kb()));
    Ok(())
}
