//! A Deployment's status and conditions, as kube's `calculateStatus` and
//! `syncRolloutStatus` compute them.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::rolling::{actual, available, max_unavailable, ready, replicas, spec_replicas};

/// Condition types.
pub const PROGRESSING: &str = "Progressing";
/// Condition type `Available`.
pub const AVAILABLE: &str = "Available";
/// Condition type `ReplicaFailure`.
pub const REPLICA_FAILURE: &str = "ReplicaFailure";

/// Progressing reasons.
pub const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
/// A new ReplicaSet was found.
pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
/// The new ReplicaSet was scaled or gained available pods.
pub const RS_UPDATED: &str = "ReplicaSetUpdated";
/// The rollout completed.
pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
/// progressDeadlineSeconds passed without progress.
pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
/// Creating the new ReplicaSet failed.
pub const FAILED_RS_CREATE: &str = "ReplicaSetCreateError";
/// The Deployment is paused.
pub const PAUSED: &str = "DeploymentPaused";
/// The Deployment was resumed.
pub const RESUMED: &str = "DeploymentResumed";
/// Available reasons.
pub const MIN_AVAILABLE: &str = "MinimumReplicasAvailable";
/// Fewer than replicas − maxUnavailable are available.
pub const MIN_UNAVAILABLE: &str = "MinimumReplicasUnavailable";

/// A condition stamped `now` (both times).
pub fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    now: Timestamp,
) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: Some(reason.to_owned()),
        message: Some(message),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// The condition of a type.
pub fn get_condition<'a>(
    status: &'a DeploymentStatus,
    type_: &str,
) -> Option<&'a DeploymentCondition> {
    status
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

/// Removes the condition of a type.
pub fn remove_condition(status: &mut DeploymentStatus, type_: &str) {
    if let Some(c) = status.conditions.as_mut() {
        c.retain(|c| c.type_ != type_);
    }
}

/// kube's `SetDeploymentCondition`: nothing if status and reason are the
/// same; keeps lastTransitionTime if only the reason changes; the
/// condition goes last.
pub fn set_condition(status: &mut DeploymentStatus, mut cond: DeploymentCondition) {
    if let Some(current) = get_condition(status, &cond.type_) {
        if current.status == cond.status && current.reason == cond.reason {
            return;
        }
        if current.status == cond.status {
            cond.last_transition_time = current.last_transition_time.clone();
        }
    }
    let mut conditions = status.conditions.take().unwrap_or_default();
    conditions.retain(|c| c.type_ != cond.type_);
    conditions.push(cond);
    status.conditions = Some(conditions);
}

/// Whether progressDeadlineSeconds is set (and not MaxInt32).
pub fn has_progress_deadline(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.progress_deadline_seconds)
        .is_some_and(|s| s != i32::MAX)
}

fn progress_deadline(d: &Deployment) -> i64 {
    i64::from(
        d.spec
            .as_ref()
            .and_then(|s| s.progress_deadline_seconds)
            .unwrap_or(600),
    )
}

/// kube's `calculateStatus`: counts over all ReplicaSets and the
/// Available condition.
pub fn calculate_status(
    d: &Deployment,
    all: &[&ReplicaSet],
    new: Option<&ReplicaSet>,
    now: Timestamp,
) -> DeploymentStatus {
    let avail: i32 = all.iter().map(|r| available(r)).sum();
    let total: i32 = all.iter().map(|r| spec_replicas(r)).sum();
    let current = d.status.clone().unwrap_or_default();
    let mut status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(all.iter().map(|r| actual(r)).sum()),
        updated_replicas: Some(new.map(actual).unwrap_or(0)),
        ready_replicas: Some(all.iter().map(|r| ready(r)).sum()),
        available_replicas: Some(avail),
        unavailable_replicas: Some((total - avail).max(0)),
        collision_count: current.collision_count,
        conditions: current.conditions.clone(),
        terminating_replicas: None,
    };
    if avail >= replicas(d) - max_unavailable(d) {
        let c = condition(
            AVAILABLE,
            "True",
            MIN_AVAILABLE,
            "Deployment has minimum availability.".to_owned(),
            now,
        );
        set_condition(&mut status, c);
    } else {
        let c = condition(
            AVAILABLE,
            "False",
            MIN_UNAVAILABLE,
            "Deployment does not have minimum availability.".to_owned(),
            now,
        );
        set_condition(&mut status, c);
    }
    status
}

/// kube's `DeploymentComplete`.
pub fn complete(d: &Deployment, s: &DeploymentStatus) -> bool {
    let want = replicas(d);
    s.updated_replicas.unwrap_or(0) == want
        && s.replicas.unwrap_or(0) == want
        && s.available_replicas.unwrap_or(0) == want
        && s.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
}

/// kube's `DeploymentProgressing`: more updated, fewer old, more ready or
/// more available replicas than the stored status.
pub fn progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let v = |x: Option<i32>| x.unwrap_or(0);
    let old_old = v(old.replicas) - v(old.updated_replicas);
    let new_old = v(new.replicas) - v(new.updated_replicas);
    v(new.updated_replicas) > v(old.updated_replicas)
        || new_old < old_old
        || v(new.ready_replicas) > v(old.ready_replicas)
        || v(new.available_replicas) > v(old.available_replicas)
}

/// kube's `DeploymentTimedOut`.
pub fn timed_out(d: &Deployment, s: &DeploymentStatus, now: Timestamp) -> bool {
    if !has_progress_deadline(d) {
        return false;
    }
    let Some(c) = get_condition(s, PROGRESSING) else {
        return false;
    };
    match c.reason.as_deref() {
        Some(NEW_RS_AVAILABLE) => false,
        Some(TIMED_OUT) => true,
        _ => {
            let from = c
                .last_update_time
                .as_ref()
                .map(|t| t.0)
                .unwrap_or(Timestamp::UNIX_EPOCH);
            from.checked_add(SignedDuration::from_secs(progress_deadline(d)))
                .is_ok_and(|at| at < now)
        }
    }
}

fn rs_name(rs: Option<&ReplicaSet>) -> Option<String> {
    rs.and_then(|r| r.metadata.name.clone())
}

/// kube's `syncRolloutStatus` computation: counts, Available, Progressing
/// (complete / progressing / timed out) and ReplicaFailure.
pub fn rollout_status(
    d: &Deployment,
    all: &[&ReplicaSet],
    new: Option<&ReplicaSet>,
    now: Timestamp,
) -> DeploymentStatus {
    let mut status = calculate_status(d, all, new, now);
    if !has_progress_deadline(d) {
        remove_condition(&mut status, PROGRESSING);
    }
    let current = d.status.clone().unwrap_or_default();
    let current_cond = get_condition(&current, PROGRESSING).cloned();
    let is_complete = status.replicas == status.updated_replicas
        && current_cond.as_ref().and_then(|c| c.reason.as_deref()) == Some(NEW_RS_AVAILABLE);
    let name = d.metadata.name.clone().unwrap_or_default();
    if has_progress_deadline(d) && !is_complete {
        if complete(d, &status) {
            let msg = match rs_name(new) {
                Some(rs) => format!("ReplicaSet {rs:?} has successfully progressed."),
                None => format!("Deployment {name:?} has successfully progressed."),
            };
            set_condition(
                &mut status,
                condition(PROGRESSING, "True", NEW_RS_AVAILABLE, msg, now),
            );
        } else if progressing(d, &status) {
            let msg = match rs_name(new) {
                Some(rs) => format!("ReplicaSet {rs:?} is progressing."),
                None => format!("Deployment {name:?} is progressing."),
            };
            let mut c = condition(PROGRESSING, "True", RS_UPDATED, msg, now);
            if let Some(cur) = &current_cond {
                if cur.status == "True" {
                    c.last_transition_time = cur.last_transition_time.clone();
                }
                remove_condition(&mut status, PROGRESSING);
            }
            set_condition(&mut status, c);
        } else if timed_out(d, &status, now) {
            let msg = match rs_name(new) {
                Some(rs) => format!("ReplicaSet {rs:?} has timed out progressing."),
                None => format!("Deployment {name:?} has timed out progressing."),
            };
            set_condition(
                &mut status,
                condition(PROGRESSING, "False", TIMED_OUT, msg, now),
            );
        }
    }
    let failures = replica_failures(all, new);
    match failures.into_iter().next() {
        Some(f) => set_condition(&mut status, f),
        None => remove_condition(&mut status, REPLICA_FAILURE),
    }
    if status.conditions.as_ref().is_some_and(Vec::is_empty) {
        status.conditions = None;
    }
    status
}

/// The ReplicaFailure conditions of the new ReplicaSet, else of any.
fn replica_failures(all: &[&ReplicaSet], new: Option<&ReplicaSet>) -> Vec<DeploymentCondition> {
    let of = |rs: &ReplicaSet| -> Vec<DeploymentCondition> {
        rs.status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default()
            .into_iter()
            .filter(|c| c.type_ == REPLICA_FAILURE)
            .map(|c| DeploymentCondition {
                type_: c.type_,
                status: c.status,
                reason: c.reason,
                message: c.message,
                last_update_time: c.last_transition_time.clone(),
                last_transition_time: c.last_transition_time,
            })
            .collect()
    };
    if let Some(n) = new {
        let found = of(n);
        if !found.is_empty() {
            return found;
        }
    }
    all.iter().flat_map(|r| of(r)).collect()
}

/// kube's `requeueStuckDeployment`: when to look again so a stalled
/// rollout is marked ProgressDeadlineExceeded in time.
pub fn requeue_stuck(d: &Deployment, new: &DeploymentStatus, now: Timestamp) -> Option<Duration> {
    let current = d.status.clone().unwrap_or_default();
    let cond = get_condition(&current, PROGRESSING)?;
    if !has_progress_deadline(d) || complete(d, new) || cond.reason.as_deref() == Some(TIMED_OUT) {
        return None;
    }
    let from = cond.last_update_time.as_ref().map(|t| t.0)?;
    let at = from
        .checked_add(SignedDuration::from_secs(progress_deadline(d)))
        .ok()?;
    let after = at.duration_since(now);
    if after < SignedDuration::from_secs(1) {
        return Some(Duration::from_millis(100));
    }
    Duration::try_from(after)
        .ok()
        .map(|d| d + Duration::from_secs(1))
}

/// kube's `checkPausedConditions`: the Progressing condition a pause or
/// resume sets, if it changes.
pub fn paused_condition(d: &Deployment, now: Timestamp) -> Option<DeploymentCondition> {
    if !has_progress_deadline(d) {
        return None;
    }
    let status = d.status.clone().unwrap_or_default();
    let cond = get_condition(&status, PROGRESSING);
    let paused_exists = cond.is_some_and(|c| c.reason.as_deref() == Some(PAUSED));
    let paused = d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
    if paused && !paused_exists {
        Some(condition(
            PROGRESSING,
            "Unknown",
            PAUSED,
            "Deployment is paused".to_owned(),
            now,
        ))
    } else if !paused && paused_exists {
        Some(condition(
            PROGRESSING,
            "Unknown",
            RESUMED,
            "Deployment is resumed".to_owned(),
            now,
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests;
