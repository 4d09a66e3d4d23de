//! kube-scheduler's default plugins, in the default profile's order:
//! each filter is a pure function of the pod, the node and state
//! computed once per scheduling cycle.

pub mod affinity;
pub mod fit;
pub mod images;
pub mod node_affinity;
pub mod node_name;
pub mod ports;
pub mod spread;
pub mod taints;
pub mod unschedulable;
pub mod volumes;

use std::collections::HashSet;

use crate::cache::Cache;
use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;
use crate::status::Status;

/// The state of one scheduling cycle: the pod and what the pre-filters
/// computed over the cluster.
#[derive(Debug, Clone)]
pub struct Cycle<'a> {
    /// The pod being scheduled.
    pub pod: &'a PodInfo,
    /// The cluster.
    pub cache: &'a Cache,
    /// InterPodAffinity's counts.
    pub affinity: affinity::State,
    /// PodTopologySpread's counts.
    pub spread: spread::State,
    /// VolumeBinding's bound volumes.
    pub volumes: volumes::State,
    /// NodeAffinity's `metadata.name` restriction, if any.
    pub node_names: Option<HashSet<String>>,
}

impl<'a> Cycle<'a> {
    /// Runs the pre-filters; an error rejects the pod on every node.
    pub fn prefilter(pod: &'a PodInfo, cache: &'a Cache) -> Result<Cycle<'a>, Status> {
        let node_names = node_affinity::prefilter(pod);
        if node_names.as_ref().is_some_and(HashSet::is_empty) {
            return Err(Status::unresolvable(node_affinity::REASON_CONFLICT));
        }
        let volumes = volumes::prefilter(pod, cache)?;
        Ok(Cycle {
            pod,
            cache,
            affinity: affinity::prefilter(pod, cache),
            spread: spread::prefilter(pod, cache),
            volumes,
            node_names,
        })
    }

    /// Accounts for `existing` joining (`delta` 1) or leaving (−1) `node`
    /// (the pre-filter extensions preemption uses).
    pub fn update(&mut self, existing: &PodInfo, node: &NodeInfo, delta: i64) {
        affinity::update(
            &mut self.affinity,
            self.pod,
            self.cache,
            existing,
            node,
            delta,
        );
        spread::update(&mut self.spread, self.pod, existing, node, delta);
    }

    /// Runs every filter in kube's order; the first rejection wins.
    pub fn filter(&self, node: &NodeInfo) -> Result<(), Status> {
        let pod = self.pod;
        unschedulable::filter(pod, node)?;
        node_name::filter(pod, node)?;
        taints::filter(pod, node)?;
        node_affinity::filter(pod, node)?;
        ports::filter(pod, node)?;
        fit::filter(pod, node)?;
        volumes::filter(&self.volumes, node)?;
        spread::filter(&self.spread, pod, node)?;
        affinity::filter(&self.affinity, pod, self.cache, node)
    }

    /// Whether `node` is outside the pre-filter's node set.
    pub fn excluded(&self, node: &NodeInfo) -> bool {
        self.node_names
            .as_ref()
            .is_some_and(|n| !n.contains(&node.name))
    }
}

/// kube's `DefaultNormalizeScore`: scales to 0..=100 by the maximum,
/// reversed for "fewer is better" scores.
pub fn default_normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0);
    for s in scores.iter_mut() {
        if max == 0 {
            *s = if reverse { fit::MAX_SCORE } else { 0 };
        } else {
            *s = fit::MAX_SCORE * *s / max;
            if reverse {
                *s = fit::MAX_SCORE - *s;
            }
        }
    }
}

/// InterPodAffinity's normalization: min–max scaled to 0..=100.
pub fn min_max_normalize(scores: &mut [i64]) {
    let min = scores.iter().copied().min().unwrap_or(0);
    let max = scores.iter().copied().max().unwrap_or(0);
    let diff = max - min;
    for s in scores.iter_mut() {
        *s = if diff > 0 {
            (fit::MAX_SCORE as f64 * ((*s - min) as f64 / diff as f64)) as i64
        } else {
            0
        };
    }
}

/// The weighted, normalized total score of each feasible node under the
/// default profile's score plugins.
pub fn score(pod: &PodInfo, cache: &Cache, feasible: &[&NodeInfo]) -> Vec<i64> {
    let mut total = vec![0i64; feasible.len()];
    let mut add = |scores: &[i64], weight: i64| {
        for (t, s) in total.iter_mut().zip(scores) {
            *t += s * weight;
        }
    };
    let mut buf: Vec<i64>;
    // TaintToleration, weight 3.
    buf = feasible.iter().map(|n| taints::score(pod, n)).collect();
    default_normalize(&mut buf, true);
    add(&buf, 3);
    // NodeAffinity, weight 2.
    if !pod.preferred_node_affinity.is_empty() {
        buf = feasible
            .iter()
            .map(|n| node_affinity::score(pod, n))
            .collect();
        default_normalize(&mut buf, false);
        add(&buf, 2);
    }
    // NodeResourcesFit (LeastAllocated), weight 1.
    buf = feasible
        .iter()
        .map(|n| fit::least_allocated(pod, n))
        .collect();
    add(&buf, 1);
    // PodTopologySpread, weight 2.
    let spread_state = spread::prescore(pod, cache, feasible);
    if !spread_state.is_empty() {
        buf = feasible
            .iter()
            .map(|n| spread::score(&spread_state, pod, n))
            .collect();
        spread::normalize(&spread_state, &mut buf);
        add(&buf, 2);
    }
    // InterPodAffinity, weight 2.
    let affinity_state = affinity::prescore(pod, cache);
    if !affinity_state.is_empty() {
        buf = feasible
            .iter()
            .map(|n| affinity::score(&affinity_state, n))
            .collect();
        min_max_normalize(&mut buf);
        add(&buf, 2);
    }
    // NodeResourcesBalancedAllocation, weight 1.
    if !fit::balanced_skips(pod) {
        buf = feasible
            .iter()
            .map(|n| fit::balanced_allocation(pod, n))
            .collect();
        add(&buf, 1);
    }
    // ImageLocality, weight 1.
    // (No node holding any of the images scores 0 everywhere.)
    let spreads = images::spreads(pod, cache);
    if spreads.iter().any(|(_, s)| *s > 0.0) {
        buf = feasible
            .iter()
            .map(|n| images::score(&spreads, n))
            .collect();
        add(&buf, 1);
    }
    total
}
