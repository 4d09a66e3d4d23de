//! schedbench: the scheduler's pure core placing pods on in-memory
//! nodes — each pod compiled, filtered and scored (kube's adaptive share
//! of the nodes), then assumed on its node so the next pod sees it.
//!
//! Usage: schedbench [--nodes 5000] [--pods 20000] [--existing 0]
//!        [--spread-every 0] [--affinity-every 0]
//! `--existing` pods are bound round-robin before the measurement;
//! every `--spread-every`-th pod has a zone spread constraint
//! (ScheduleAnyway), every `--affinity-every`-th a preferred pod
//! anti-affinity over hostnames (0: none).
#![forbid(unsafe_code)]
#![deny(clippy::string_slice)]

use std::time::Instant;

use anyhow::{Context, Result};
use berth_bench::{Flags, Samples, ms};
use berth_scheduler::Scheduler;
use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::json;

fn node(i: usize) -> Result<Node> {
    let name = format!("node-{i:05}");
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name,
            "topology.kubernetes.io/zone": format!("zone-{}", i % 3),
            "pool": if i.is_multiple_of(2) { "a" } else { "b" },
        }},
        "status": {
            "allocatable": {"cpu": "32", "memory": "128Gi", "pods": "110", "ephemeral-storage": "500Gi"},
            "images": [{"names": [format!("registry.local/app-{}:v1", i % 10)], "sizeBytes": 200_000_000}]
        }
    }))
    .context("node object")
}

fn pod(i: usize, spread: bool, anti: bool) -> Result<Pod> {
    let app = format!("app-{}", i % 50);
    let mut spec = json!({
        "containers": [{
            "name": "c",
            "image": format!("registry.local/app-{}:v1", i % 10),
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}
        }]
    });
    if i.is_multiple_of(4) {
        spec["nodeSelector"] = json!({"pool": "a"});
    }
    if spread {
        spec["topologySpreadConstraints"] = json!([{
            "maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": {"app": app}}
        }]);
    }
    if anti {
        spec["affinity"] = json!({"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
            "weight": 10, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
            "labelSelector": {"matchLabels": {"app": app}}}}]}});
    }
    serde_json::from_value(json!({
        "metadata": {"name": format!("pod-{i}"), "namespace": "bench", "uid": format!("uid-{i}"), "labels": {"app": app}},
        "spec": spec
    }))
    .context("pod object")
}

fn every(i: usize, n: usize) -> bool {
    n != 0 && i.is_multiple_of(n)
}

fn main() -> Result<()> {
    let flags = Flags::from_env();
    let nodes: usize = flags.num("nodes", 5000)?;
    let pods: usize = flags.num("pods", 20_000)?;
    let existing: usize = flags.num("existing", 0)?;
    let spread_every: usize = flags.num("spread-every", 0)?;
    let affinity_every: usize = flags.num("affinity-every", 0)?;

    let mut s = Scheduler::new();
    for i in 0..nodes {
        s.cache.upsert_node(&node(i)?);
    }
    for i in 0..existing {
        let mut p = pod(1_000_000 + i, false, false)?;
        if let Some(spec) = p.spec.as_mut() {
            spec.node_selector = None;
            spec.node_name = Some(format!("node-{:05}", i % nodes.max(1)));
        }
        s.cache.upsert_pod(&p);
    }
    let batch: Vec<Pod> = (0..pods)
        .map(|i| pod(i, every(i, spread_every), every(i, affinity_every)))
        .collect::<Result<_>>()?;

    let mut latencies = Samples::new();
    let mut failed = 0usize;
    let start = Instant::now();
    for p in &batch {
        let t = Instant::now();
        let info = s.cache.pod_info(p);
        match s.schedule_info(&info) {
            Ok(d) => s.cache.assume(info, &d.node),
            Err(_) => failed += 1,
        }
        latencies.push(t.elapsed());
    }
    let elapsed = start.elapsed();
    let rate = pods as f64 / elapsed.as_secs_f64();
    println!(
        "schedbench: {nodes} nodes, {existing} existing pods, {pods} pods (spread every {spread_every}, anti-affinity every {affinity_every})"
    );
    println!(
        "  scheduled {} ({} failed) in {}: {rate:.0} pods/s; per pod {}",
        pods - failed,
        failed,
        ms(elapsed),
        latencies.summary()
    );
    Ok(())
}
