//! The arithmetic of a rollout, as kube's deployment util: maxSurge and
//! maxUnavailable resolved against replicas, how far the new ReplicaSet
//! may grow, how far the old ones may shrink, and proportional scaling.

use std::cmp::Ordering;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::revision::MAX_REPLICAS;

use crate::util::intstr::scaled_value;

/// A ReplicaSet's `spec.replicas` (default 1, as the API server defaults).
pub fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// A ReplicaSet's `status.availableReplicas`.
pub fn available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

/// A ReplicaSet's `status.replicas`.
pub fn actual(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().map(|s| s.replicas).unwrap_or(0)
}

/// A ReplicaSet's `status.readyReplicas`.
pub fn ready(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
}

/// The Deployment's `spec.replicas` (default 1).
pub fn replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// Whether the strategy is RollingUpdate (the default).
pub fn is_rolling(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        .is_none_or(|t| t == "RollingUpdate")
}

/// kube's `ResolveFenceposts`: (maxSurge rounded up, maxUnavailable
/// rounded down); both 0 makes maxUnavailable 1.
pub fn fenceposts(d: &Deployment) -> (i32, i32) {
    let ru = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    let desired = replicas(d);
    // The API server defaults both to 25%; kube reads a missing one as 0.
    let surge_v = ru
        .and_then(|r| r.max_surge.clone())
        .unwrap_or(IntOrString::Int(0));
    let unavail_v = ru
        .and_then(|r| r.max_unavailable.clone())
        .unwrap_or(IntOrString::Int(0));
    let surge = scaled_value(&surge_v, desired, true).unwrap_or(0);
    let mut unavailable = scaled_value(&unavail_v, desired, false).unwrap_or(0);
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    (surge, unavailable)
}

/// kube's `MaxSurge` (0 unless RollingUpdate).
pub fn max_surge(d: &Deployment) -> i32 {
    if !is_rolling(d) {
        return 0;
    }
    fenceposts(d).0
}

/// kube's `MaxUnavailable` (0 unless RollingUpdate or for 0 replicas;
/// never above replicas).
pub fn max_unavailable(d: &Deployment) -> i32 {
    if !is_rolling(d) || replicas(d) == 0 {
        return 0;
    }
    fenceposts(d).1.min(replicas(d))
}

/// Sum of `spec.replicas`.
pub fn sum_spec<'a>(sets: impl IntoIterator<Item = &'a ReplicaSet>) -> i32 {
    sets.into_iter().map(spec_replicas).sum()
}

/// Sum of `status.availableReplicas`.
pub fn sum_available<'a>(sets: impl IntoIterator<Item = &'a ReplicaSet>) -> i32 {
    sets.into_iter().map(available).sum()
}

/// kube's `NewRSNewReplicas`: the new ReplicaSet's size this step.
pub fn new_rs_new_replicas(d: &Deployment, all: &[&ReplicaSet], new: &ReplicaSet) -> i32 {
    if !is_rolling(d) {
        return replicas(d);
    }
    let surge = max_surge(d);
    let current = sum_spec(all.iter().copied());
    let max_total = replicas(d) + surge;
    if current >= max_total {
        return spec_replicas(new);
    }
    let up = (max_total - current).min(replicas(d) - spec_replicas(new));
    spec_replicas(new) + up
}

/// kube's `ReplicaSetsByCreationTimestamp` order (older first, then name).
pub fn by_creation(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    let t = |r: &ReplicaSet| r.metadata.creation_timestamp.as_ref().map(|t| t.0);
    t(a).cmp(&t(b))
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

/// How many old pods may go now (kube's `maxScaledDown` in
/// `reconcileOldReplicaSets`); 0 or less means none.
pub fn max_scaled_down(d: &Deployment, all: &[&ReplicaSet], new: Option<&ReplicaSet>) -> i32 {
    let min_available = replicas(d) - max_unavailable(d);
    let new_unavailable = new.map(|n| spec_replicas(n) - available(n)).unwrap_or(0);
    sum_spec(all.iter().copied()) - min_available - new_unavailable
}

/// kube's `cleanupUnhealthyReplicas`: (index into `old`, new size) for old
/// ReplicaSets with unavailable pods, oldest first, up to `max` pods.
pub fn cleanup_unhealthy(old: &[&ReplicaSet], max: i32) -> Vec<(usize, i32)> {
    let mut order: Vec<usize> = (0..old.len()).collect();
    order.sort_by(|a, b| by_creation(old[*a], old[*b]));
    let mut total = 0;
    let mut out = Vec::new();
    for i in order {
        if total >= max {
            break;
        }
        let rs = old[i];
        let size = spec_replicas(rs);
        if size == 0 || size == available(rs) {
            continue;
        }
        let down = (max - total).min(size - available(rs));
        out.push((i, size - down));
        total += down;
    }
    out
}

/// kube's `scaleDownOldReplicaSetsForRollingUpdate`: (index into `old`,
/// new size), oldest first, keeping replicas − maxUnavailable available.
pub fn scale_down_old(
    d: &Deployment,
    all: &[&ReplicaSet],
    old: &[&ReplicaSet],
) -> Vec<(usize, i32)> {
    let min_available = replicas(d) - max_unavailable(d);
    let available_now = sum_available(all.iter().copied());
    if available_now <= min_available {
        return Vec::new();
    }
    let mut order: Vec<usize> = (0..old.len()).collect();
    order.sort_by(|a, b| by_creation(old[*a], old[*b]));
    let want = available_now - min_available;
    let mut total = 0;
    let mut out = Vec::new();
    for i in order {
        if total >= want {
            break;
        }
        let size = spec_replicas(old[i]);
        if size == 0 {
            continue;
        }
        let down = size.min(want - total);
        out.push((i, size - down));
        total += down;
    }
    out
}

fn max_replicas_annotation(rs: &ReplicaSet) -> Option<i32> {
    rs.metadata
        .annotations
        .as_ref()?
        .get(MAX_REPLICAS)?
        .parse()
        .ok()
}

/// Go's `math.Round` to int32 (half away from zero).
fn round(v: f64) -> i32 {
    v.round() as i32
}

fn fraction(rs: &ReplicaSet, d: &Deployment) -> i32 {
    if replicas(d) == 0 {
        return -spec_replicas(rs);
    }
    let deployment_replicas = replicas(d) + max_surge(d);
    let annotated = max_replicas_annotation(rs)
        .unwrap_or_else(|| d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0));
    if annotated == 0 {
        return 0;
    }
    let size = f64::from(spec_replicas(rs)) * f64::from(deployment_replicas) / f64::from(annotated);
    round(size) - spec_replicas(rs)
}

fn proportion(rs: &ReplicaSet, d: &Deployment, to_add: i32, added: i32) -> i32 {
    if spec_replicas(rs) == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let f = fraction(rs, d);
    let allowed = to_add - added;
    if to_add > 0 {
        f.min(allowed)
    } else {
        f.max(allowed)
    }
}

/// kube's proportional scaling (a RollingUpdate Deployment resized in
/// mid-rollout): the new size of each active ReplicaSet, as (index into
/// `active`, size) in the order kube applies them, and "up"/"down".
pub fn proportional(d: &Deployment, active: &[&ReplicaSet]) -> (Vec<(usize, i32)>, &'static str) {
    let total = sum_spec(active.iter().copied());
    let allowed = if replicas(d) > 0 {
        replicas(d) + max_surge(d)
    } else {
        0
    };
    let to_add = allowed - total;
    let mut order: Vec<usize> = (0..active.len()).collect();
    let op = match to_add.cmp(&0) {
        Ordering::Greater => {
            // Bigger first; among equals, newer first.
            order.sort_by(|a, b| {
                spec_replicas(active[*b])
                    .cmp(&spec_replicas(active[*a]))
                    .then_with(|| by_creation(active[*b], active[*a]))
            });
            "up"
        }
        Ordering::Less => {
            // Bigger first; among equals, older first.
            order.sort_by(|a, b| {
                spec_replicas(active[*b])
                    .cmp(&spec_replicas(active[*a]))
                    .then_with(|| by_creation(active[*a], active[*b]))
            });
            "down"
        }
        Ordering::Equal => "",
    };
    let mut added = 0;
    let mut sizes: Vec<i32> = Vec::with_capacity(order.len());
    for &i in &order {
        let rs = active[i];
        if to_add != 0 {
            let p = proportion(rs, d, to_add, added);
            sizes.push(spec_replicas(rs) + p);
            added += p;
        } else {
            sizes.push(spec_replicas(rs));
        }
    }
    if to_add != 0
        && let Some(first) = sizes.first_mut()
    {
        *first = (*first + to_add - added).max(0);
    }
    (order.into_iter().zip(sizes).collect(), op)
}

#[cfg(test)]
pub(crate) mod tests;
