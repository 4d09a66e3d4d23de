//! The DaemonSet controller's decisions, pure: from a DaemonSet, the
//! nodes, its pods and revisions, which pods to create and delete, the
//! revision bookkeeping and the status (kube's `syncDaemonSet`, `manage`
//! and `rollingUpdate`).

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::eligibility;
use crate::util::intstr::scaled;
use crate::util::{owner, pods, revisions as revision};

/// The legacy label with the DaemonSet's generation at pod creation.
pub const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";

/// What one sync decides.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// A revision to create for the current template.
    pub create_revision: Option<ControllerRevision>,
    /// An existing revision (name) renumbered to become the latest.
    pub renumber_revision: Option<(String, i64)>,
    /// Old revisions to delete beyond `revisionHistoryLimit`.
    pub delete_revisions: Vec<String>,
    /// Pods to create (each pinned to its node).
    pub create_pods: Vec<Pod>,
    /// Pods to delete.
    pub delete_pods: Vec<String>,
    /// The status to write.
    pub status: DaemonSetStatus,
    /// Events to record: (warning, reason, message).
    pub events: Vec<(bool, &'static str, String)>,
}

/// The pod for `node` from the DaemonSet's template.
pub fn new_pod(ds: &DaemonSet, node: &str, hash: &str) -> Pod {
    let spec = ds.spec.clone().unwrap_or_default();
    let tmeta = spec.template.metadata.clone().unwrap_or_default();
    let mut labels = tmeta.labels.unwrap_or_default();
    labels.insert(revision::HASH_LABEL.into(), hash.to_owned());
    if let Some(g) = ds.metadata.generation {
        labels.insert(TEMPLATE_GENERATION_LABEL.into(), g.to_string());
    }
    let mut pod_spec = spec.template.spec.clone().unwrap_or_default();
    eligibility::add_daemon_tolerations(&mut pod_spec);
    eligibility::pin_to_node(&mut pod_spec, node);
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", ds.metadata.name.as_deref().unwrap_or(""))),
            namespace: ds.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: tmeta.annotations,
            owner_references: Some(vec![owner::controller_ref_for(ds)]),
            ..Default::default()
        },
        spec: Some(pod_spec),
        status: None,
    }
}

fn hash_of(pod: &Pod) -> &str {
    pods::label(pod, revision::HASH_LABEL).unwrap_or("")
}

fn created_at(pod: &Pod) -> Option<Timestamp> {
    pod.metadata.creation_timestamp.as_ref().map(|t| t.0)
}

/// One sync of a DaemonSet.
pub fn plan(
    ds: &DaemonSet,
    nodes: &[Node],
    all_pods: &[Pod],
    revisions: &[ControllerRevision],
    now: Timestamp,
) -> Plan {
    let mut p = Plan::default();
    let ns = ds.metadata.namespace.clone().unwrap_or_default();
    let spec = ds.spec.clone().unwrap_or_default();
    let old = ds.status.clone().unwrap_or_default();
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let template_spec = spec.template.spec.clone().unwrap_or_default();

    // Revisions.
    let current = revision::current(
        owner::controller_ref_for(ds),
        &ns,
        &spec.template,
        revisions,
        old.collision_count,
    );
    let collision = current.collision_count;
    let cur = current.revision.clone();
    if current.create {
        p.create_revision = Some(cur.clone());
    }
    if current.renumber {
        p.renumber_revision = Some((cur.metadata.name.clone().unwrap_or_default(), cur.revision));
    }
    let hash = revision::hash_of(&cur).to_owned();

    // Pods by target node.
    let mut by_node: BTreeMap<String, Vec<&Pod>> = BTreeMap::new();
    for pod in all_pods.iter().filter(|p| !pods::is_deleting(p)) {
        match pod.spec.as_ref().and_then(eligibility::target_node) {
            Some(n) => by_node.entry(n).or_default().push(pod),
            None => p.delete_pods.push(pods::name(pod).to_owned()),
        }
    }
    for list in by_node.values_mut() {
        list.sort_by_key(|p| (created_at(p), pods::name(p).to_owned()));
    }
    let strategy = spec.update_strategy.clone().unwrap_or_default();
    let rolling = strategy.type_.as_deref().unwrap_or("RollingUpdate") == "RollingUpdate";
    let ru = strategy.rolling_update.clone().unwrap_or_default();

    let node_names: Vec<String> = nodes
        .iter()
        .filter_map(|n| n.metadata.name.clone())
        .collect();
    for (n, list) in &by_node {
        if !node_names.contains(n) {
            p.delete_pods
                .extend(list.iter().map(|pod| pods::name(pod).to_owned()));
        }
    }

    let mut desired = 0;
    let mut eligible: Vec<(&Node, Vec<&Pod>)> = Vec::new();
    let (mut scheduled, mut misscheduled, mut ready, mut available, mut updated) = (0, 0, 0, 0, 0);
    for node in nodes {
        let name = node.metadata.name.clone().unwrap_or_default();
        let (run, keep) = eligibility::should_run(&template_spec, node);
        let list: Vec<&Pod> = by_node.get(&name).cloned().unwrap_or_default();
        if run {
            desired += 1;
        }
        if !list.is_empty() {
            if run {
                scheduled += 1;
                let first = list[0];
                if pods::is_ready(first) {
                    ready += 1;
                    if pods::is_available(first, min_ready, now) {
                        available += 1;
                    }
                }
                if list.iter().any(|pod| hash_of(pod) == hash) {
                    updated += 1;
                }
            } else {
                misscheduled += 1;
            }
        }
        if run {
            // Failed pods are replaced; duplicates beyond one per revision
            // (when surging) or one in all are removed.
            let mut live: Vec<&Pod> = Vec::new();
            for pod in &list {
                if pods::phase(pod) == "Failed" {
                    let pn = pods::name(pod);
                    p.events.push((
                        true,
                        "FailedDaemonPod",
                        format!(
                            "Found failed daemon pod {ns}/{pn} on node {name}, will try to kill it"
                        ),
                    ));
                    p.delete_pods.push(pn.to_owned());
                } else {
                    live.push(pod);
                }
            }
            let surge = rolling && scaled(ru.max_surge.as_ref(), 1, 0, true) > 0;
            let mut kept: Vec<&Pod> = Vec::new();
            for pod in live {
                let dup = if surge {
                    kept.iter()
                        .any(|k| (hash_of(k) == hash) == (hash_of(pod) == hash))
                } else {
                    !kept.is_empty()
                };
                if dup {
                    p.delete_pods.push(pods::name(pod).to_owned());
                } else {
                    kept.push(pod);
                }
            }
            if kept.is_empty() {
                p.create_pods.push(new_pod(ds, &name, &hash));
            }
            eligible.push((node, kept));
        } else if !keep {
            p.delete_pods
                .extend(list.iter().map(|pod| pods::name(pod).to_owned()));
        }
    }

    if rolling {
        rolling_update(ds, &eligible, &hash, desired, now, &mut p);
    }

    p.status = DaemonSetStatus {
        collision_count: collision,
        current_number_scheduled: scheduled,
        desired_number_scheduled: desired,
        number_misscheduled: misscheduled,
        number_ready: ready,
        number_available: Some(available),
        number_unavailable: Some(desired - available).filter(|u| *u > 0),
        updated_number_scheduled: Some(updated),
        observed_generation: ds.metadata.generation,
        conditions: old.conditions.clone(),
    };

    // History.
    let live: Vec<String> = all_pods
        .iter()
        .map(|pod| hash_of(pod).to_owned())
        .chain([hash.clone()])
        .collect();
    p.delete_revisions =
        revision::to_prune(revisions, &live, spec.revision_history_limit.unwrap_or(10));
    p
}

fn rolling_update(
    ds: &DaemonSet,
    eligible: &[(&Node, Vec<&Pod>)],
    hash: &str,
    desired: i32,
    now: Timestamp,
    p: &mut Plan,
) {
    let spec = ds.spec.clone().unwrap_or_default();
    let ru = spec
        .update_strategy
        .and_then(|s| s.rolling_update)
        .unwrap_or_default();
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let max_surge = scaled(ru.max_surge.as_ref(), desired, 0, true);
    let max_unavailable = scaled(ru.max_unavailable.as_ref(), desired, 1, true);
    let avail = |pod: &Pod| pods::is_available(pod, min_ready, now);
    if max_surge == 0 {
        // Delete old pods: unavailable ones freely, available ones while
        // the number of unavailable nodes stays within maxUnavailable.
        let mut unavailable = eligible
            .iter()
            .filter(|(_, kept)| !kept.iter().any(|pod| avail(pod)))
            .count();
        let budget = usize::try_from(max_unavailable.max(0)).unwrap_or(0);
        let mut candidates = Vec::new();
        for (_, kept) in eligible {
            for pod in kept.iter().filter(|pod| hash_of(pod) != hash) {
                if !avail(pod) {
                    p.delete_pods.push(pods::name(pod).to_owned());
                } else {
                    candidates.push(pods::name(pod).to_owned());
                }
            }
        }
        for name in candidates {
            if unavailable >= budget {
                break;
            }
            p.delete_pods.push(name);
            unavailable += 1;
        }
        return;
    }
    // Surge: start a new pod beside an available old one (up to maxSurge
    // nodes at a time); drop the old one once the new one is available.
    let mut surging = eligible
        .iter()
        .filter(|(_, kept)| {
            kept.iter().any(|pod| hash_of(pod) == hash && !avail(pod))
                && kept.iter().any(|pod| hash_of(pod) != hash)
        })
        .count();
    let budget = usize::try_from(max_surge.max(0)).unwrap_or(0);
    for (node, kept) in eligible {
        let new = kept.iter().find(|pod| hash_of(pod) == hash);
        let old = kept.iter().find(|pod| hash_of(pod) != hash);
        match (old, new) {
            (Some(o), None) if !avail(o) => p.delete_pods.push(pods::name(o).to_owned()),
            (Some(_), None) if surging < budget => {
                let name = node.metadata.name.clone().unwrap_or_default();
                p.create_pods.push(new_pod(ds, &name, hash));
                surging += 1;
            }
            (Some(o), Some(n)) if avail(n) => p.delete_pods.push(pods::name(o).to_owned()),
            _ => {}
        }
    }
}
