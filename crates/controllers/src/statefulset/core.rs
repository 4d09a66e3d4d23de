//! The StatefulSet controller's decisions, pure: from a StatefulSet, its
//! pods, revisions and claims, what to create, delete and update, and
//! the status (kube's `defaultStatefulSetControl.UpdateStatefulSet`).

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{
    ControllerRevision, StatefulSet, StatefulSetSpec, StatefulSetStatus,
};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::util::intstr::scaled;
use crate::util::{owner, pods, revisions as revision};

/// The label with the pod's name.
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// The label with the pod's ordinal.
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// What one sync decides.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// A revision to create for the current template.
    pub create_revision: Option<ControllerRevision>,
    /// An existing revision (name) renumbered to become the latest.
    pub renumber_revision: Option<(String, i64)>,
    /// Old revisions to delete beyond `revisionHistoryLimit`.
    pub delete_revisions: Vec<String>,
    /// Claims to create (before their pods).
    pub create_claims: Vec<PersistentVolumeClaim>,
    /// Claims whose owner references change (retention policy).
    pub update_claims: Vec<PersistentVolumeClaim>,
    /// Pods to create.
    pub create_pods: Vec<Pod>,
    /// Pods to delete.
    pub delete_pods: Vec<String>,
    /// The status to write.
    pub status: StatefulSetStatus,
    /// Events to record: (warning, reason, message).
    pub events: Vec<(bool, &'static str, String)>,
}

/// The ordinals the set's replicas take: `spec.ordinals.start` (0 when
/// unset) onwards, `replicas` (1 when unset) of them.
pub fn ordinal_range(spec: &StatefulSetSpec) -> std::ops::Range<i32> {
    let replicas = spec.replicas.unwrap_or(1).max(0);
    let start = spec
        .ordinals
        .as_ref()
        .and_then(|o| o.start)
        .unwrap_or(0)
        .max(0);
    start..start + replicas
}

/// The ordinal of a pod named `<set>-<n>`.
pub fn ordinal(set: &str, pod: &str) -> Option<i32> {
    let n = pod.strip_prefix(set)?.strip_prefix('-')?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) || (n.len() > 1 && n.starts_with('0'))
    {
        return None;
    }
    n.parse().ok()
}

/// `<template>-<set>-<ordinal>`.
pub fn claim_name(template: &str, set: &str, ordinal: i32) -> String {
    format!("{template}-{set}-{ordinal}")
}

fn is_running_ready(pod: &Pod) -> bool {
    pods::phase(pod) == "Running" && pods::is_ready(pod)
}

fn is_healthy(pod: &Pod) -> bool {
    is_running_ready(pod) && !pods::is_deleting(pod)
}

fn revision_of(pod: &Pod) -> &str {
    pods::label(pod, revision::HASH_LABEL).unwrap_or("")
}

/// The template stored in a revision's data.
fn template_of(rev: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut t = revision::data(rev).pointer("/spec/template")?.clone();
    if let Some(m) = t.as_object_mut() {
        m.remove("$patch");
    }
    serde_json::from_value(t).ok()
}

fn set_ref(set: &StatefulSet) -> OwnerReference {
    OwnerReference {
        controller: None,
        block_owner_deletion: None,
        ..owner::controller_ref_for(set)
    }
}

fn pod_ref(pod: &Pod) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "Pod".into(),
        name: pods::name(pod).to_owned(),
        uid: pods::uid(pod).to_owned(),
        controller: None,
        block_owner_deletion: None,
    }
}

/// The pod for `ordinal` from a revision's template.
pub fn new_pod(set: &StatefulSet, template: &PodTemplateSpec, rev_name: &str, ordinal: i32) -> Pod {
    let set_name = set.metadata.name.clone().unwrap_or_default();
    let name = format!("{set_name}-{ordinal}");
    let tmeta = template.metadata.clone().unwrap_or_default();
    let mut labels = tmeta.labels.unwrap_or_default();
    labels.insert(POD_NAME_LABEL.into(), name.clone());
    labels.insert(POD_INDEX_LABEL.into(), ordinal.to_string());
    labels.insert(revision::HASH_LABEL.into(), rev_name.to_owned());
    let mut spec = template.spec.clone().unwrap_or_default();
    spec.hostname = Some(name.clone());
    let service = set
        .spec
        .as_ref()
        .and_then(|s| s.service_name.clone())
        .unwrap_or_default();
    if !service.is_empty() {
        spec.subdomain = Some(service);
    }
    let claims = set
        .spec
        .as_ref()
        .and_then(|s| s.volume_claim_templates.clone())
        .unwrap_or_default();
    let mut volumes = spec.volumes.take().unwrap_or_default();
    for t in &claims {
        let tname = t.metadata.name.clone().unwrap_or_default();
        volumes.retain(|v| v.name != tname);
        volumes.push(Volume {
            name: tname.clone(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim_name(&tname, &set_name, ordinal),
                read_only: None,
            }),
            ..Default::default()
        });
    }
    if !volumes.is_empty() {
        spec.volumes = Some(volumes);
    }
    Pod {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: set.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: tmeta.annotations,
            owner_references: Some(vec![owner::controller_ref_for(set)]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

/// The claims of `ordinal`, as the templates make them.
pub fn new_claims(set: &StatefulSet, ordinal: i32) -> Vec<PersistentVolumeClaim> {
    let set_name = set.metadata.name.clone().unwrap_or_default();
    let spec = set.spec.clone().unwrap_or_default();
    let selector_labels = spec.selector.match_labels.clone().unwrap_or_default();
    spec.volume_claim_templates
        .unwrap_or_default()
        .into_iter()
        .map(|t| {
            let tname = t.metadata.name.clone().unwrap_or_default();
            let mut labels = t.metadata.labels.clone().unwrap_or_default();
            labels.extend(selector_labels.clone());
            PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some(claim_name(&tname, &set_name, ordinal)),
                    namespace: set.metadata.namespace.clone(),
                    labels: Some(labels),
                    annotations: t.metadata.annotations.clone(),
                    ..Default::default()
                },
                spec: t.spec.clone(),
                status: None,
            }
        })
        .collect()
}

/// The owner references a claim should have under the retention policy.
fn wanted_claim_owners(
    set: &StatefulSet,
    pod: Option<&Pod>,
    condemned: bool,
) -> Vec<OwnerReference> {
    let policy = set
        .spec
        .as_ref()
        .and_then(|s| s.persistent_volume_claim_retention_policy.clone())
        .unwrap_or_default();
    let when_deleted = policy.when_deleted.as_deref().unwrap_or("Retain");
    let when_scaled = policy.when_scaled.as_deref().unwrap_or("Retain");
    let mut refs = Vec::new();
    if condemned && when_scaled == "Delete" {
        if let Some(p) = pod {
            refs.push(pod_ref(p));
        }
    } else if when_deleted == "Delete" {
        refs.push(set_ref(set));
    }
    refs
}

/// Sets the claim's owner references to the wanted set/pod ones, keeping
/// others; returns the claim when it changed.
fn retarget_claim(
    set: &StatefulSet,
    claim: &PersistentVolumeClaim,
    pod: Option<&Pod>,
    condemned: bool,
) -> Option<PersistentVolumeClaim> {
    let set_uid = set.metadata.uid.clone().unwrap_or_default();
    let mut refs: Vec<OwnerReference> = claim.metadata.owner_references.clone().unwrap_or_default();
    let before = refs.clone();
    refs.retain(|r| {
        let ours_set = r.uid == set_uid && r.kind == "StatefulSet";
        let ours_pod = r.kind == "Pod" && pod.is_some_and(|p| pods::uid(p) == r.uid);
        !(ours_set || ours_pod)
    });
    refs.extend(wanted_claim_owners(set, pod, condemned));
    let key = |v: &[OwnerReference]| {
        let mut k: Vec<String> = v.iter().map(|r| r.uid.clone()).collect();
        k.sort();
        k
    };
    if key(&refs) == key(&before) {
        return None;
    }
    let mut c = claim.clone();
    c.metadata.owner_references = if refs.is_empty() { None } else { Some(refs) };
    Some(c)
}

/// One sync. `claims` maps each claim name of the set's ordinals (as
/// [`claim_name`] gives) to the claim, when it exists.
pub fn plan(
    set: &StatefulSet,
    all_pods: &[Pod],
    revisions: &[ControllerRevision],
    claims: &BTreeMap<String, PersistentVolumeClaim>,
    now: Timestamp,
) -> Plan {
    let mut p = Plan::default();
    let name = set.metadata.name.clone().unwrap_or_default();
    let ns = set.metadata.namespace.clone().unwrap_or_default();
    let spec = set.spec.clone().unwrap_or_default();
    let old = set.status.clone().unwrap_or_default();
    let replicas = spec.replicas.unwrap_or(1).max(0);
    let start = ordinal_range(&spec).start;
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let parallel = spec.pod_management_policy.as_deref() == Some("Parallel");
    let strategy = spec.update_strategy.clone().unwrap_or_default();
    let rolling = strategy.type_.as_deref().unwrap_or("RollingUpdate") == "RollingUpdate";
    let rolling_cfg = strategy.rolling_update.clone().unwrap_or_default();
    let partition = rolling_cfg.partition.unwrap_or(0).max(0);
    let max_unavailable = scaled(rolling_cfg.max_unavailable.as_ref(), replicas, 1, false).max(1);

    // Revisions: find or make the one for the current template.
    let cur = revision::current(
        owner::controller_ref_for(set),
        &ns,
        &spec.template,
        revisions,
        old.collision_count,
    );
    let collision = cur.collision_count;
    let update_rev = cur.revision.clone();
    if cur.create {
        p.create_revision = Some(update_rev.clone());
    }
    if cur.renumber {
        p.renumber_revision = Some((
            update_rev.metadata.name.clone().unwrap_or_default(),
            update_rev.revision,
        ));
    }
    let update_name = update_rev.metadata.name.clone().unwrap_or_default();
    let current_rev = old
        .current_revision
        .as_ref()
        .and_then(|c| {
            revisions
                .iter()
                .find(|r| r.metadata.name.as_ref() == Some(c))
        })
        .cloned()
        .unwrap_or_else(|| update_rev.clone());
    let current_name = current_rev.metadata.name.clone().unwrap_or_default();
    let current_template = template_of(&current_rev).unwrap_or_else(|| spec.template.clone());

    // Pods by ordinal.
    let mut by_ord: BTreeMap<i32, &Pod> = BTreeMap::new();
    for pod in all_pods {
        if let Some(o) = ordinal(&name, pods::name(pod)) {
            by_ord.insert(o, pod);
        }
    }
    let in_range = |o: i32| o >= start && o < start + replicas;
    let template_for = |o: i32| -> (&PodTemplateSpec, &str) {
        if rolling && o < partition && current_name != update_name {
            (&current_template, current_name.as_str())
        } else {
            (&spec.template, update_name.as_str())
        }
    };
    let claim_templates = spec.volume_claim_templates.clone().unwrap_or_default();
    let mut created: Vec<(i32, String)> = Vec::new();
    let mut blocked = false;

    // Scale up / repair, ascending.
    for o in start..start + replicas {
        match by_ord.get(&o) {
            None => {
                for c in new_claims(set, o) {
                    let cname = c.metadata.name.clone().unwrap_or_default();
                    if !claims.contains_key(&cname) {
                        let mut c = c;
                        let owners = wanted_claim_owners(set, None, false);
                        if !owners.is_empty() {
                            c.metadata.owner_references = Some(owners);
                        }
                        p.create_claims.push(c);
                    }
                }
                let (t, rev) = template_for(o);
                p.create_pods.push(new_pod(set, t, rev, o));
                created.push((o, rev.to_owned()));
                if !parallel {
                    blocked = true;
                    break;
                }
            }
            Some(pod) => {
                // Claims of an existing pod: recreate missing ones, fix owners.
                for t in &claim_templates {
                    let cname = claim_name(t.metadata.name.as_deref().unwrap_or(""), &name, o);
                    match claims.get(&cname) {
                        None => {
                            if let Some(c) = new_claims(set, o)
                                .into_iter()
                                .find(|c| c.metadata.name.as_deref() == Some(cname.as_str()))
                            {
                                p.create_claims.push(c);
                            }
                        }
                        Some(c) => {
                            if let Some(c) = retarget_claim(set, c, Some(pod), false) {
                                p.update_claims.push(c);
                            }
                        }
                    }
                }
                if pods::is_terminal(pod) && !pods::is_deleting(pod) {
                    let pn = pods::name(pod);
                    p.events.push(if pods::phase(pod) == "Failed" {
                        (
                            true,
                            "RecreatingFailedPod",
                            format!("StatefulSet {ns}/{name} is recreating failed Pod {pn}"),
                        )
                    } else {
                        (
                            false,
                            "RecreatingTerminatedPod",
                            format!("StatefulSet {ns}/{name} is recreating terminated Pod {pn}"),
                        )
                    });
                    p.delete_pods.push(pn.to_owned());
                    if !parallel {
                        blocked = true;
                        break;
                    }
                    continue;
                }
                if !parallel && (pods::is_deleting(pod) || !is_running_ready(pod)) {
                    blocked = true;
                    break;
                }
                if !parallel && min_ready > 0 && !pods::is_available(pod, min_ready, now) {
                    blocked = true;
                    break;
                }
            }
        }
    }

    // Scale down, descending.
    let condemned: Vec<(i32, &Pod)> = by_ord
        .iter()
        .rev()
        .filter(|(o, _)| !in_range(**o))
        .map(|(o, p)| (*o, *p))
        .collect();
    for (o, pod) in &condemned {
        for t in &claim_templates {
            let cname = claim_name(t.metadata.name.as_deref().unwrap_or(""), &name, *o);
            if let Some(c) = claims
                .get(&cname)
                .and_then(|c| retarget_claim(set, c, Some(pod), true))
            {
                p.update_claims.push(c);
            }
        }
    }
    if !blocked {
        let first_unhealthy = (start..start + replicas)
            .filter_map(|o| by_ord.get(&o))
            .chain(condemned.iter().rev().map(|(_, p)| p))
            .find(|pod| !is_healthy(pod))
            .map(|pod| pods::name(pod).to_owned());
        for (_, pod) in &condemned {
            if pods::is_deleting(pod) {
                if !parallel {
                    blocked = true;
                    break;
                }
                continue;
            }
            if !parallel
                && first_unhealthy
                    .as_deref()
                    .is_some_and(|u| u != pods::name(pod))
            {
                blocked = true;
                break;
            }
            p.delete_pods.push(pods::name(pod).to_owned());
            if !parallel {
                blocked = true;
                break;
            }
        }
    }

    // Rolling update, from the highest ordinal down to the partition.
    if !blocked && rolling && p.create_pods.is_empty() {
        let mut unavailable = (start..start + replicas)
            .filter_map(|o| by_ord.get(&o))
            .filter(|pod| {
                !is_healthy(pod) || (min_ready > 0 && !pods::is_available(pod, min_ready, now))
            })
            .count();
        let budget = usize::try_from(max_unavailable).unwrap_or(1);
        for o in (start.max(partition)..start + replicas).rev() {
            let Some(pod) = by_ord.get(&o) else { continue };
            if revision_of(pod) != update_name && !pods::is_deleting(pod) {
                if !is_healthy(pod) || unavailable < budget {
                    p.delete_pods.push(pods::name(pod).to_owned());
                    if is_healthy(pod) {
                        unavailable += 1;
                    }
                    continue;
                }
                break;
            }
            if unavailable >= budget {
                break;
            }
        }
    }

    // Status.
    let mut st = StatefulSetStatus {
        observed_generation: set.metadata.generation,
        collision_count: collision,
        current_revision: Some(current_name.clone()),
        update_revision: Some(update_name.clone()),
        ..old.clone()
    };
    let (mut count, mut ready, mut available, mut current, mut updated) = (0, 0, 0, 0, 0);
    for pod in all_pods
        .iter()
        .filter(|pod| !pods::is_deleting(pod) && ordinal(&name, pods::name(pod)).is_some())
    {
        if p.delete_pods.iter().any(|d| d == pods::name(pod)) {
            continue;
        }
        count += 1;
        if is_running_ready(pod) {
            ready += 1;
            if pods::is_available(pod, min_ready, now) {
                available += 1;
            }
        }
        if revision_of(pod) == current_name {
            current += 1;
        }
        if revision_of(pod) == update_name {
            updated += 1;
        }
    }
    for (_, rev) in &created {
        count += 1;
        if *rev == current_name {
            current += 1;
        }
        if *rev == update_name {
            updated += 1;
        }
    }
    st.replicas = count;
    st.ready_replicas = Some(ready);
    st.available_replicas = Some(available);
    st.current_replicas = Some(current);
    st.updated_replicas = Some(updated);
    if updated == replicas && count == replicas && ready == replicas {
        st.current_revision = Some(update_name.clone());
        st.current_replicas = Some(updated);
    }
    p.status = st;

    // History: keep `revisionHistoryLimit` revisions besides the live ones.
    let live: Vec<String> = all_pods
        .iter()
        .map(|pod| revision_of(pod).to_owned())
        .chain([current_name, update_name])
        .collect();
    p.delete_revisions =
        revision::to_prune(revisions, &live, spec.revision_history_limit.unwrap_or(10));
    p
}
