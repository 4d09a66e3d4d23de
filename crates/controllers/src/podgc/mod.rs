//! The pod garbage collector (kube's `pod-garbage-collector`), acting as
//! `kube-system/pod-garbage-collector`: see [`plan`] for what it deletes.

pub mod plan;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DeleteParams};
use tokio::sync::Notify;

use crate::Clients;
use crate::node_lifecycle::pods;
use crate::util::cache;

/// The ServiceAccount the collector acts as.
pub const ACCOUNT: &str = "pod-garbage-collector";

/// Settings of the pod garbage collector (kube's flags and constants).
#[derive(Clone, Debug)]
pub struct PodGcConfig {
    /// `--terminated-pod-gc-threshold` (12500; 0 disables).
    pub threshold: usize,
    /// How long a node must be missing before its pods go (40 s).
    pub quarantine: Duration,
    /// How often it runs (20 s).
    pub period: Duration,
}

impl Default for PodGcConfig {
    fn default() -> Self {
        PodGcConfig {
            threshold: 12500,
            quarantine: Duration::from_secs(40),
            period: Duration::from_secs(20),
        }
    }
}

/// Starts the collector; it runs until the process ends.
pub fn spawn(clients: &Clients, config: PodGcConfig) {
    let client = clients(ACCOUNT);
    tokio::spawn(async move { run(client, config).await });
}

async fn run(client: kube::Client, config: PodGcConfig) {
    // Changes do not wake it: it runs on its period, as kube's does.
    let wake = Arc::new(Notify::new());
    let pods_cache = cache::cache(Api::<Pod>::all(client.clone()), wake.clone());
    let nodes_cache = cache::cache(Api::<Node>::all(client.clone()), wake);
    cache::ready(&[&pods_cache], Duration::from_secs(10)).await;
    cache::ready(&[&nodes_cache], Duration::from_secs(10)).await;
    let quarantine = SignedDuration::try_from(config.quarantine).unwrap_or(SignedDuration::MAX);
    let nodes_api = Api::<Node>::all(client.clone());
    let mut missing = BTreeMap::new();
    loop {
        let now = Timestamp::now();
        let all_pods = cache::all(&pods_cache);
        let all_nodes = cache::all(&nodes_cache);
        missing = plan::missing_nodes(&all_pods, &all_nodes, &missing, now);
        let plan = plan::plan(
            &all_pods,
            &all_nodes,
            &missing,
            now,
            quarantine,
            config.threshold,
        );
        for (ns, name) in plan.terminated {
            let api = Api::<Pod>::namespaced(client.clone(), &ns);
            if let Err(e) = pods::delete(&api, &name, &DeleteParams::default()).await {
                tracing::warn!(pod = %name, error = %e, "deleting a terminated pod");
            }
        }
        for (ns, name) in plan.orphaned {
            // The cache may lag: ask the API server that the node is gone.
            let node = all_pods
                .iter()
                .find(|p| {
                    p.metadata.namespace.as_deref() == Some(&ns)
                        && p.metadata.name.as_deref() == Some(&name)
                })
                .and_then(|p| p.spec.as_ref()?.node_name.clone())
                .unwrap_or_default();
            if !matches!(nodes_api.get_opt(&node).await, Ok(None)) {
                continue;
            }
            fail_and_delete(&client, &ns, &name, true, now).await;
        }
        for (ns, name) in plan.terminating {
            fail_and_delete(&client, &ns, &name, false, now).await;
        }
        tokio::time::sleep(config.period).await;
    }
}

/// Marks a pod Failed (unless terminal), with the orphan's
/// DisruptionTarget condition if asked, and deletes it at once.
async fn fail_and_delete(
    client: &kube::Client,
    ns: &str,
    name: &str,
    orphan: bool,
    now: Timestamp,
) {
    let api = Api::<Pod>::namespaced(client.clone(), ns);
    let marked = pods::update_status(&api, name, |p| {
        if plan::terminal(p) {
            return false;
        }
        if orphan {
            pods::set_condition(
                p,
                "DisruptionTarget",
                "True",
                plan::ORPHAN_REASON,
                plan::ORPHAN_MESSAGE,
                now,
            );
        }
        p.status.get_or_insert_default().phase = Some("Failed".to_owned());
        true
    })
    .await;
    if let Err(e) = marked {
        tracing::warn!(pod = %name, error = %e, "marking a pod Failed");
    }
    match pods::delete(&api, name, &DeleteParams::default().grace_period(0)).await {
        Ok(()) => tracing::info!(pod = %name, namespace = %ns, orphan, "pod garbage collected"),
        Err(e) => tracing::warn!(pod = %name, error = %e, "force deleting a pod"),
    }
}
