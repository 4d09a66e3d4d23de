//! The eviction loop: observe, set the pressure conditions, evict one pod
//! while a threshold stays crossed.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_engine::PodRuntime;
use berth_types::quantity::Quantity;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};

use super::thresholds::Signal;
use super::{ContainerUse, Crossed, PodUse, Tracker, crossed, eviction_message, is_critical, rank};
use crate::names::{Attempt, PodKey};
use crate::{Shared, blocking, translate, volumes};

/// How often the signals are read (the kubelet's housekeeping period).
const MONITOR: Duration = Duration::from_secs(10);

/// Runs for the agent's life.
pub(crate) async fn run(shared: Arc<Shared>) {
    let mut tracker = Tracker::default();
    // pods told to go: not chosen again while their worker stops them
    let mut told: HashSet<String> = HashSet::new();
    loop {
        let root = shared.cfg.root.clone();
        let obs = blocking(move || super::signals::observe(&root))
            .await
            .unwrap_or_default();
        let cfg = &shared.cfg.eviction;
        let crossed = crossed(&cfg.hard, &obs);
        let pressure = tracker.update(&crossed, Instant::now(), cfg.transition);
        let changed = {
            let mut p = shared.pressure.write().unwrap_or_else(|e| e.into_inner());
            let changed = *p != pressure;
            *p = pressure;
            changed
        };
        if changed {
            tracing::warn!(conditions = ?pressure.names(), "node pressure changed");
            if let Err(e) = shared.post_node_status().await {
                tracing::warn!(error = %e, "node status update failed");
            }
        }
        if let Some(first) = crossed.first() {
            evict_one(&shared, first, &mut told).await;
        }
        tokio::time::sleep(MONITOR).await;
    }
}

/// Chooses the pod to evict for `crossed` and tells its worker.
async fn evict_one(shared: &Arc<Shared>, crossed: &Crossed, told: &mut HashSet<String>) {
    let pods: Api<Pod> = Api::all(shared.client.clone());
    let lp = ListParams::default().fields(&format!("spec.nodeName={}", shared.cfg.node_name));
    let list = match pods.list(&lp).await {
        Ok(l) => l.items,
        Err(e) => {
            tracing::warn!(error = %e, "list the node's pods for eviction");
            return;
        }
    };
    let live: Vec<Pod> = list
        .into_iter()
        .filter(|p| {
            let phase = p
                .status
                .as_ref()
                .and_then(|s| s.phase.as_deref())
                .unwrap_or("");
            p.metadata.deletion_timestamp.is_none()
                && phase != "Succeeded"
                && phase != "Failed"
                && !is_critical(p)
                && p.metadata.uid.as_ref().is_some_and(|u| !told.contains(u))
        })
        .collect();
    if live.is_empty() {
        return;
    }
    let engine = shared.engine.clone();
    let root = shared.cfg.root.clone();
    let signal = crossed.threshold.signal;
    let mut uses = blocking(move || {
        live.iter()
            .map(|p| pod_use(&engine, &root, p, signal))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    rank(&mut uses);
    let Some(victim) = uses.first() else { return };
    let message = eviction_message(crossed, victim);
    tracing::warn!(pod = %victim.uid, %message, "evicting a pod");
    shared.metrics.eviction(signal.name());
    told.insert(victim.uid.clone());
    shared
        .evictions
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(victim.uid.clone(), message);
}

/// What `pod` uses of the resource `signal` measures, and requested.
fn pod_use(
    engine: &berth_engine::Engine,
    root: &std::path::Path,
    pod: &Pod,
    signal: Signal,
) -> PodUse {
    let key = translate::pod_key(pod);
    let spec = pod.spec.clone().unwrap_or_default();
    let resource = match signal {
        Signal::MemoryAvailable => "memory",
        Signal::NodefsAvailable | Signal::ImagefsAvailable => "ephemeral-storage",
        _ => "",
    };
    let request_of = |c: &k8s_openapi::api::core::v1::Container| -> i64 {
        c.resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get(resource))
            .and_then(|q| Quantity::parse(&q.0).ok())
            .map_or(0, |q| q.value())
    };
    let mut containers: Vec<ContainerUse> = spec
        .init_containers
        .iter()
        .flatten()
        .chain(&spec.containers)
        .map(|c| ContainerUse {
            name: c.name.clone(),
            usage: 0,
            request: request_of(c),
        })
        .collect();
    let mut pod_level = 0i64;
    if let Ok(sb) = engine.sandbox(&PodKey::sandbox_name(&key)) {
        for c in engine.sandbox_containers(&sb.id).unwrap_or_default() {
            let Some(a) = Attempt::from_labels(&c.record.labels) else {
                continue;
            };
            let used = match signal {
                Signal::MemoryAvailable => engine
                    .stats_sample(&c.record.id)
                    .map_or(0, |s| s.memory_used() as i64),
                // its directory: the written layer and the log (the
                // mounted root below it is another filesystem)
                Signal::NodefsAvailable | Signal::ImagefsAvailable => {
                    berth_engine::system::disk_usage(&engine.container_dir(&c.record.id)).0 as i64
                }
                Signal::NodefsInodesFree | Signal::ImagefsInodesFree => {
                    berth_engine::system::disk_usage(&engine.container_dir(&c.record.id)).1 as i64
                }
                Signal::PidAvailable => engine
                    .stats_sample(&c.record.id)
                    .map_or(0, |s| s.stats.pids.current as i64),
            };
            match containers.iter_mut().find(|x| x.name == a.container) {
                Some(x) => x.usage += used,
                None => pod_level += used,
            }
        }
    }
    // the pod's own volumes (emptyDirs on disk) count for disk signals
    let (vol_bytes, vol_inodes) =
        berth_engine::system::disk_usage(&volumes::pod_dir(root, &key.uid));
    match signal {
        Signal::NodefsAvailable | Signal::ImagefsAvailable => pod_level += vol_bytes as i64,
        Signal::NodefsInodesFree | Signal::ImagefsInodesFree => pod_level += vol_inodes as i64,
        _ => {}
    }
    PodUse {
        uid: key.uid.clone(),
        priority: spec.priority.unwrap_or(0),
        usage: pod_level + containers.iter().map(|c| c.usage).sum::<i64>(),
        request: containers.iter().map(|c| c.request).sum(),
        containers,
    }
}
