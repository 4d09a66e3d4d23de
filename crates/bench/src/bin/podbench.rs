//! podbench: workloads on `berth server`'s own node — the pod startup
//! latency SLI (creation → every container running, observed through a
//! watch; image present) over pods created at a fixed rate, a Deployment
//! scaled 0 → N until all Ready, and the server's RSS and CPU idle and with
//! the pods running.
//!
//! Usage: podbench --berth PATH --dir DIR [--pods 100] [--rate 20]
//!        [--replicas 100] [--idle-secs 10]
//! The `berth server` it starts is its child (killed by PID at the end);
//! DIR holds its root (its own bridge and address range) and log.
#![forbid(unsafe_code)]
#![deny(clippy::string_slice)]

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use berth_bench::server::{BenchServer, NetRanges, cpu_secs};
use berth_bench::{Flags, Samples, mib, ms, status_kb};
use futures::TryStreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;

fn pod(name: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"bench": "startup"}},
        "spec": {"terminationGracePeriodSeconds": 0, "containers": [{
            "name": "c", "image": "busybox:stable", "imagePullPolicy": "IfNotPresent",
            "command": ["sleep", "3600"]}]}
    }))
    .expect("pod")
}

fn all_running(p: &Pod) -> bool {
    let Some(st) = &p.status else { return false };
    let n = p.spec.as_ref().map_or(0, |s| s.containers.len());
    let running = st
        .container_statuses
        .iter()
        .flatten()
        .filter(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()))
        .count();
    n > 0 && running == n
}

async fn wait_gone(pods: &Api<Pod>, selector: &str) -> Result<()> {
    let t = Instant::now();
    while !pods
        .list(&ListParams::default().labels(selector))
        .await?
        .items
        .is_empty()
    {
        if t.elapsed() > Duration::from_secs(180) {
            bail!("pods {selector} still there after 180 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let flags = Flags::from_env();
    let berth = Path::new(flags.get("berth").ok_or_else(|| anyhow!("--berth PATH"))?).to_owned();
    let dir = Path::new(flags.get("dir").ok_or_else(|| anyhow!("--dir DIR"))?).to_owned();
    let n_pods: usize = flags.num("pods", 100)?;
    let rate: f64 = flags.num("rate", 20.0)?;
    let replicas: i32 = flags.num("replicas", 100)?;
    let idle_secs: u64 = flags.num("idle-secs", 10)?;

    let server = BenchServer::start(
        &berth,
        &dir,
        &NetRanges {
            table: "berth_pb",
            bridge: "bpb0",
            subnet: "198.18.96.0/24",
            pool: "198.19.96.0/22",
        },
    )
    .await?;
    let pid = server.pid();
    let client = server.client.clone();
    println!("node Ready {} after start", ms(server.ready_after));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let c0 = cpu_secs(pid).unwrap_or(0.0);
    tokio::time::sleep(Duration::from_secs(idle_secs)).await;
    let c1 = cpu_secs(pid).unwrap_or(0.0);
    println!(
        "idle: rss={} cpu={:.2}% of a core over {idle_secs} s",
        mib(status_kb(pid, "VmRSS").unwrap_or(0)),
        (c1 - c0) * 100.0 / idle_secs as f64
    );

    // pod startup latency through a watch
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
    let watch = tokio::spawn({
        let pods = pods.clone();
        async move {
            let mut seen: HashMap<String, Instant> = HashMap::new();
            let stream = watcher(pods, watcher::Config::default().labels("bench=startup"));
            futures::pin_mut!(stream);
            while let Ok(Some(ev)) = stream.try_next().await {
                if let watcher::Event::Apply(p) | watcher::Event::InitApply(p) = ev
                    && all_running(&p)
                    && let Some(name) = p.metadata.name.clone()
                    && !seen.contains_key(&name)
                {
                    seen.insert(name.clone(), Instant::now());
                    if tx.send((name, Instant::now())).is_err() {
                        break;
                    }
                }
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut created: HashMap<String, Instant> = HashMap::new();
    let gap = Duration::from_secs_f64(1.0 / rate);
    let t0 = Instant::now();
    for i in 0..n_pods {
        let name = format!("start-{i}");
        let at = t0 + gap * i as u32;
        tokio::time::sleep_until(at.into()).await;
        created.insert(name.clone(), Instant::now());
        pods.create(&PostParams::default(), &pod(&name))
            .await
            .with_context(|| format!("create {name}"))?;
    }
    let mut lat = Samples::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    while lat.len() < n_pods {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some((name, at))) => {
                if let Some(c) = created.get(&name) {
                    lat.push(at.saturating_duration_since(*c));
                }
            }
            _ => bail!("only {} of {n_pods} pods running after 300 s", lat.len()),
        }
    }
    watch.abort();
    println!(
        "pod startup ({n_pods} pods at {rate}/s, creation → running via watch): {}",
        lat.summary()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let c0 = cpu_secs(pid).unwrap_or(0.0);
    tokio::time::sleep(Duration::from_secs(idle_secs)).await;
    let c1 = cpu_secs(pid).unwrap_or(0.0);
    println!(
        "with {n_pods} pods: rss={} cpu={:.2}% of a core over {idle_secs} s",
        mib(status_kb(pid, "VmRSS").unwrap_or(0)),
        (c1 - c0) * 100.0 / idle_secs as f64
    );
    let t = Instant::now();
    pods.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("bench=startup"),
    )
    .await?;
    wait_gone(&pods, "bench=startup").await?;
    println!("deleted {n_pods} pods in {}", ms(t.elapsed()));

    // a Deployment scaled 0 → N
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let d: Deployment = serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "scale"},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"bench": "scale"}},
          "template": {"metadata": {"labels": {"bench": "scale"}}, "spec": {"terminationGracePeriodSeconds": 0,
            "containers": [{"name": "c", "image": "busybox:stable", "imagePullPolicy": "IfNotPresent", "command": ["sleep", "3600"]}]}}}
    }))?;
    deployments.create(&PostParams::default(), &d).await?;
    let t = Instant::now();
    deployments
        .patch(
            "scale",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"replicas": replicas}})),
        )
        .await?;
    loop {
        let d = deployments.get("scale").await?;
        let ready = d.status.and_then(|s| s.ready_replicas).unwrap_or(0);
        if ready >= replicas {
            break;
        }
        if t.elapsed() > Duration::from_secs(300) {
            bail!("Deployment: {ready}/{replicas} Ready after 300 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "Deployment 0 → {replicas}: all Ready in {}",
        ms(t.elapsed())
    );
    println!(
        "with {replicas} Deployment pods: rss={}",
        mib(status_kb(pid, "VmRSS").unwrap_or(0))
    );
    deployments
        .delete("scale", &DeleteParams::default())
        .await?;
    wait_gone(&pods, "bench=scale").await?;
    drop(server);
    Ok(())
}
