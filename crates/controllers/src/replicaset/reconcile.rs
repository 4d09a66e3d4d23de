//! The pure part of the ReplicaSet/ReplicationController controller:
//! how many pods to create, which to delete (kube's deletion ranking),
//! create batches, and the status a set of pods gives.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::apps::v1::{ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

use crate::util::pods as pod;

/// At most this many creations or deletions per sync (kube's
/// `BurstReplicas`).
pub const BURST_REPLICAS: usize = 500;

/// The annotation ranking pods for deletion (lower cost goes first).
pub const POD_DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// What a sync does about the count of pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// As many pods as wanted.
    Keep,
    /// Create this many.
    Create(usize),
    /// Delete this many.
    Delete(usize),
}

/// The change `active` pods need to become `replicas` (capped at
/// [`BURST_REPLICAS`]).
pub fn scale(active: usize, replicas: i32) -> Scale {
    let want = usize::try_from(replicas.max(0)).unwrap_or(0);
    match active.cmp(&want) {
        Ordering::Equal => Scale::Keep,
        Ordering::Less => Scale::Create((want - active).min(BURST_REPLICAS)),
        Ordering::Greater => Scale::Delete((active - want).min(BURST_REPLICAS)),
    }
}

/// Batch sizes of kube's slow start: 1, 2, 4… until `count` is reached
/// (the caller stops at the first batch with a failure).
pub fn slow_start_batches(count: usize) -> Vec<usize> {
    let mut batches = Vec::new();
    let mut left = count;
    let mut size = 1usize;
    while left > 0 {
        let batch = size.min(left);
        batches.push(batch);
        left -= batch;
        size = size.saturating_mul(2);
    }
    batches
}

fn phase_ordinal(pod: &Pod) -> u8 {
    match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Unknown") => 1,
        Some("Running") => 2,
        _ => 0,
    }
}

fn deletion_cost(pod: &Pod) -> i32 {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(POD_DELETION_COST))
        .and_then(|v| v.parse::<i32>().ok())
        .unwrap_or(0)
}

fn max_restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().map(|c| c.restart_count).max().unwrap_or(0))
        .unwrap_or(0)
}

fn ready_time(pod: &Pod) -> Option<Timestamp> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")?
        .last_transition_time
        .as_ref()
        .map(|t| t.0)
}

/// kube's `afterOrZero`: a missing time sorts first, else the later one.
fn after_or_zero(a: Option<Timestamp>, b: Option<Timestamp>) -> bool {
    match (a, b) {
        (None, _) | (_, None) => a.is_none(),
        (Some(a), Some(b)) => a > b,
    }
}

/// kube's `logarithmicRankDiff`: the difference of log2(age in ns).
fn log_rank_diff(a: Timestamp, b: Timestamp, now: Timestamp) -> i64 {
    let rank = |t: Timestamp| {
        let d = now.duration_since(t).as_nanos();
        if d > 0 {
            // Truncation toward zero is kube's int64(math.Log2(...)).
            (d as f64).log2() as i64
        } else {
            -1
        }
    };
    rank(a) - rank(b)
}

/// Compares two timestamps as kube ranks ages: newer first, within the
/// same power-of-two age bucket by uid.
fn by_age(
    a: (&Pod, Option<Timestamp>),
    b: (&Pod, Option<Timestamp>),
    now: Timestamp,
) -> Option<bool> {
    if a.1 == b.1 {
        return None;
    }
    let (Some(ta), Some(tb)) = (a.1, b.1) else {
        return Some(after_or_zero(a.1, b.1));
    };
    let diff = log_rank_diff(ta, tb, now);
    if diff == 0 {
        return Some(a.0.metadata.uid < b.0.metadata.uid);
    }
    Some(diff < 0)
}

/// kube's `ActivePodsWithRanks.Less`: whether pod `a` (with co-location
/// rank `ra`) goes before pod `b` when scaling down.
pub fn deletes_first(a: &Pod, ra: usize, b: &Pod, rb: usize, now: Timestamp) -> bool {
    let node = |p: &Pod| {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default()
    };
    let (na, nb) = (node(a), node(b));
    // 1. Unassigned < assigned.
    if na != nb && (na.is_empty() || nb.is_empty()) {
        return na.is_empty();
    }
    // 2. Pending < Unknown < Running.
    if phase_ordinal(a) != phase_ordinal(b) {
        return phase_ordinal(a) < phase_ordinal(b);
    }
    // 3. Not ready < ready.
    if pod::is_ready(a) != pod::is_ready(b) {
        return !pod::is_ready(a);
    }
    // 4. Lower deletion cost < higher.
    if deletion_cost(a) != deletion_cost(b) {
        return deletion_cost(a) < deletion_cost(b);
    }
    // 5. Doubled up (more related pods on the node) < not.
    if ra != rb {
        return ra > rb;
    }
    // 6. Ready for less time < more time.
    if pod::is_ready(a)
        && pod::is_ready(b)
        && let Some(first) = by_age((a, ready_time(a)), (b, ready_time(b)), now)
    {
        return first;
    }
    // 7. More restarts < fewer.
    if max_restarts(a) != max_restarts(b) {
        return max_restarts(a) > max_restarts(b);
    }
    // 8. Newer < older.
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    by_age((a, created(a)), (b, created(b)), now).unwrap_or(false)
}

/// The `count` pods to delete out of `pods`, ranked as kube does;
/// `related` are the active pods of the owner's sibling sets (and its
/// own), whose count per node ranks doubled-up pods first.
pub fn pods_to_delete<'a>(
    pods: &[&'a Pod],
    related: &[&Pod],
    count: usize,
    now: Timestamp,
) -> Vec<&'a Pod> {
    if count >= pods.len() {
        return pods.to_vec();
    }
    let mut on_node: HashMap<String, usize> = HashMap::new();
    for p in related.iter().filter(|p| pod::is_active(p)) {
        let node = p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        *on_node.entry(node).or_default() += 1;
    }
    let mut ranked: Vec<(&Pod, usize)> = pods
        .iter()
        .map(|p| {
            let node = p
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .unwrap_or_default();
            (*p, on_node.get(&node).copied().unwrap_or(0))
        })
        .collect();
    ranked.sort_by(|(a, ra), (b, rb)| {
        if deletes_first(a, *ra, b, *rb, now) {
            Ordering::Less
        } else if deletes_first(b, *rb, a, *ra, now) {
            Ordering::Greater
        } else {
            Ordering::Equal
        }
    });
    ranked.into_iter().take(count).map(|(p, _)| p).collect()
}

/// Why the last manage step failed: kube's ReplicaFailure condition
/// (`FailedCreate` or `FailedDelete`) with the error's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// `FailedCreate` or `FailedDelete`.
    pub reason: &'static str,
    /// The API's message.
    pub message: String,
}

/// The status `pods` (the set's active, owned pods) give: kube's
/// `calculateStatus`. `template_labels` counts fully labeled pods.
pub fn calculate_status(
    current: &ReplicaSetStatus,
    template_labels: &BTreeMap<String, String>,
    min_ready_seconds: i32,
    pods: &[&Pod],
    failure: Option<&Failure>,
    now: Timestamp,
) -> ReplicaSetStatus {
    let mut status = current.clone();
    let empty = BTreeMap::new();
    status.replicas = i32::try_from(pods.len()).unwrap_or(i32::MAX);
    let count = |f: &dyn Fn(&Pod) -> bool| {
        i32::try_from(pods.iter().filter(|p| f(p)).count()).unwrap_or(i32::MAX)
    };
    let fully = count(&|p| {
        crate::util::selector::map_matches(
            template_labels,
            p.metadata.labels.as_ref().unwrap_or(&empty),
        )
    });
    let ready = count(&|p| pod::is_ready(p));
    let available = count(&|p| pod::is_available(p, min_ready_seconds, now));
    status.fully_labeled_replicas = Some(fully);
    status.ready_replicas = Some(ready);
    status.available_replicas = Some(available);
    let mut conditions = current.conditions.clone().unwrap_or_default();
    let has_failure = conditions.iter().any(|c| c.type_ == "ReplicaFailure");
    match failure {
        Some(f) if !has_failure => conditions.push(ReplicaSetCondition {
            type_: "ReplicaFailure".to_owned(),
            status: "True".to_owned(),
            reason: Some(f.reason.to_owned()),
            message: Some(f.message.clone()),
            last_transition_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now)),
        }),
        None if has_failure => conditions.retain(|c| c.type_ != "ReplicaFailure"),
        _ => {}
    }
    status.conditions = if conditions.is_empty() {
        None
    } else {
        Some(conditions)
    };
    status
}

/// Whether `new` differs from `old` in what kube compares before writing
/// status (counts, conditions), or the generation was not observed yet.
pub fn status_changed(
    old: &ReplicaSetStatus,
    new: &ReplicaSetStatus,
    generation: Option<i64>,
) -> bool {
    old.replicas != new.replicas
        || old.fully_labeled_replicas.unwrap_or(0) != new.fully_labeled_replicas.unwrap_or(0)
        || old.ready_replicas.unwrap_or(0) != new.ready_replicas.unwrap_or(0)
        || old.available_replicas.unwrap_or(0) != new.available_replicas.unwrap_or(0)
        || old.observed_generation != generation
        || old.conditions.as_deref().unwrap_or_default()
            != new.conditions.as_deref().unwrap_or_default()
}

#[cfg(test)]
mod tests;
