//! The disruption controller (kube's `disruption-controller`), acting as
//! `kube-system/disruption-controller`: keeps each PodDisruptionBudget's
//! status (see [`budget`]) so that the eviction API can tell whether a
//! pod may go.

pub mod budget;
pub mod scale;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use tokio::sync::Notify;

use crate::Clients;
use crate::node_lifecycle::pods;
use crate::util::selector;
use crate::util::{cache, events};
use kube::Resource;

/// The ServiceAccount the controller acts as.
pub const ACCOUNT: &str = "disruption-controller";

/// How often every budget is recomputed even without changes (the
/// controllers' scales are not watched).
const RESYNC: Duration = Duration::from_secs(30);

/// Starts the controller; it runs until the process ends.
pub fn spawn(clients: &Clients) {
    let client = clients(ACCOUNT);
    tokio::spawn(async move { run(client, RESYNC).await });
}

/// Starts the controller with a shorter resync period (tests).
pub fn spawn_with_resync(clients: &Clients, resync: Duration) {
    let client = clients(ACCOUNT);
    tokio::spawn(async move { run(client, resync).await });
}

async fn run(client: kube::Client, resync: Duration) {
    let wake = Arc::new(Notify::new());
    let pdbs = cache::cache(
        Api::<PodDisruptionBudget>::all(client.clone()),
        wake.clone(),
    );
    let pods = cache::cache(Api::<Pod>::all(client.clone()), wake.clone());
    cache::ready(&[&pdbs], Duration::from_secs(10)).await;
    cache::ready(&[&pods], Duration::from_secs(10)).await;
    let recorder = events::reporter(client.clone(), ACCOUNT);
    loop {
        let now = Timestamp::now();
        let all_pods = cache::all(&pods);
        let mut next = resync;
        if let Some(at) = clear_stale_disruptions(&client, &all_pods, now).await {
            let until = Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO);
            next = next.min(until + Duration::from_millis(10));
        }
        for pdb in cache::all(&pdbs) {
            if let Some(recheck) = sync(&client, &recorder, &pdb, &all_pods, now).await {
                let until =
                    Duration::try_from(recheck.duration_since(now)).unwrap_or(Duration::ZERO);
                next = next.min(until + Duration::from_millis(10));
            }
        }
        cache::wait(&wake, next).await;
    }
}

/// Turns False the DisruptionTarget conditions of pods that were not
/// deleted in time (an eviction that did not happen); returns when the
/// next one goes stale.
async fn clear_stale_disruptions(
    client: &kube::Client,
    pods: &[Pod],
    now: Timestamp,
) -> Option<Timestamp> {
    let mut next: Option<Timestamp> = None;
    for pod in pods {
        let Some(at) = budget::stale_disruption_at(pod) else {
            continue;
        };
        if at > now {
            next = Some(next.map_or(at, |n| n.min(at)));
            continue;
        }
        let (Some(ns), Some(name)) = (
            pod.metadata.namespace.as_deref(),
            pod.metadata.name.as_deref(),
        ) else {
            continue;
        };
        let api = Api::<Pod>::namespaced(client.clone(), ns);
        let result = pods::update_status(&api, name, |p| {
            budget::stale_disruption_at(p).is_some_and(|at| at <= now)
                && pods::set_condition(p, "DisruptionTarget", "False", "", "", now)
        })
        .await;
        if let Err(e) = result {
            tracing::debug!(pod = %name, error = %e, "clearing a stale DisruptionTarget condition");
        }
    }
    next
}

/// Recomputes one budget's status and writes it if it changed; returns
/// when a recorded disruption expires.
async fn sync(
    client: &kube::Client,
    recorder: &kube::runtime::events::Recorder,
    pdb: &PodDisruptionBudget,
    pods: &[Pod],
    now: Timestamp,
) -> Option<Timestamp> {
    let (Some(ns), Some(name)) = (pdb.metadata.namespace.clone(), pdb.metadata.name.clone()) else {
        return None;
    };
    // A nil selector matches nothing, an empty one every pod (policy/v1).
    let matching: Vec<&Pod> = match pdb.spec.as_ref().and_then(|s| s.selector.as_ref()) {
        None => Vec::new(),
        Some(selector) => pods
            .iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some(&ns))
            .filter(|p| {
                selector::matches(
                    selector,
                    p.metadata.labels.as_ref().unwrap_or(&Default::default()),
                )
            })
            .collect(),
    };
    let spec = pdb.spec.clone().unwrap_or_default();
    let scale = if budget::needs_scale(&spec) {
        scale::expected_scale(client, &ns, &matching).await
    } else {
        Ok((0, Vec::new()))
    };
    let mut events = Vec::new();
    if matching.is_empty() {
        events.push((false, "NoPods", "No matching pods found".to_owned()));
    }
    if let Ok((_, unmanaged)) = &scale
        && !unmanaged.is_empty()
    {
        events.push((
            true,
            "UnmanagedPods",
            format!(
                "Pods selected by this PodDisruptionBudget (selector: {:?}) were found to be unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may result in undefined behavior. To account for these pods please set \".spec.minAvailable\" field of the PDB to an integer value.",
                spec.selector
            ),
        ));
    }
    let recorded = pdb.status.as_ref().and_then(|s| s.disrupted_pods.as_ref());
    let (_, _, expired) = budget::disruptions(recorded, &matching, now);
    for pod in matching.iter().filter(|p| {
        p.metadata
            .name
            .as_ref()
            .is_some_and(|n| expired.contains(n))
    }) {
        // kube names the budget's namespace twice here; so does berth.
        let note = format!("Pod was expected by PDB {ns}/{ns} to be deleted but it wasn't");
        events::publish(
            recorder,
            &pod.object_ref(&()),
            true,
            "NotDeleted",
            "Sync",
            note,
        )
        .await;
    }
    let (status, recheck) = match budget::status(pdb, &matching, scale.map(|(n, _)| n), now) {
        Ok(done) => done,
        Err(e) => {
            events.push((
                true,
                "CalculateExpectedPodCountFailed",
                format!("Failed to calculate the number of expected pods: {e}"),
            ));
            (budget::failed_status(pdb, &e, now), None)
        }
    };
    if pdb.status.as_ref() == Some(&status) {
        return recheck;
    }
    for (warning, reason, note) in events {
        events::publish(
            recorder,
            &pdb.object_ref(&()),
            warning,
            reason,
            "Sync",
            note,
        )
        .await;
    }
    let mut next = pdb.clone();
    next.status = Some(status);
    let api = Api::<PodDisruptionBudget>::namespaced(client.clone(), &ns);
    if let Err(e) = api
        .replace_status(&name, &PostParams::default(), &next)
        .await
    {
        tracing::debug!(pdb = %name, error = %e, "PodDisruptionBudget status");
    }
    recheck
}
