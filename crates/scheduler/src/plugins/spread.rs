//! PodTopologySpread: `DoNotSchedule` constraints filter on the skew
//! between topology domains; `ScheduleAnyway` constraints score.

use std::collections::HashMap;

use crate::cache::Cache;
use crate::node_info::NodeInfo;
use crate::pod_info::{PodInfo, SpreadConstraint};
use crate::selectors::{Selector, tolerated};
use crate::status::Status;

/// kube's `ErrReasonConstraintsNotMatch`.
pub const REASON_SKEW: &str = "node(s) didn't match pod topology spread constraints";
/// kube's `ErrReasonNodeLabelNotMatch`.
pub const REASON_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";

/// Whether `node` counts for constraint `c` under its node inclusion
/// policies (node affinity honored by default, taints ignored by default).
fn included(c: &SpreadConstraint, pod: &PodInfo, node: &NodeInfo) -> bool {
    if c.honor_node_affinity && !pod.node_affinity.matches(&node.labels, &node.name) {
        return false;
    }
    if c.honor_taints
        && node.taints.iter().any(|t| {
            (t.effect == "NoSchedule" || t.effect == "NoExecute") && !tolerated(&pod.tolerations, t)
        })
    {
        return false;
    }
    true
}

fn has_keys<'a>(mut cs: impl Iterator<Item = &'a SpreadConstraint>, node: &NodeInfo) -> bool {
    cs.all(|c| node.labels.contains_key(&c.topology_key))
}

/// Pods on `node` in `pod`'s namespace, not terminating, that `c` selects.
fn matching(c: &SpreadConstraint, pod: &PodInfo, node: &NodeInfo) -> i64 {
    node.pods
        .iter()
        .filter(|p| !p.terminating && p.namespace == pod.namespace && c.selector.matches(&p.labels))
        .count() as i64
}

/// Matching pods per domain of each hard constraint.
#[derive(Debug, Clone, Default)]
pub struct State {
    counts: Vec<HashMap<String, i64>>,
    min: Vec<i64>,
}

fn hard(pod: &PodInfo) -> impl Iterator<Item = &SpreadConstraint> {
    pod.spread.iter().filter(|c| c.hard)
}

/// Counts matching pods per domain over the eligible nodes.
pub fn prefilter(pod: &PodInfo, cache: &Cache) -> State {
    let n = hard(pod).count();
    if n == 0 {
        return State::default();
    }
    let mut state = State {
        counts: vec![HashMap::new(); n],
        min: vec![0; n],
    };
    for node in cache.node_slots() {
        if node.present && has_keys(hard(pod), node) {
            for (i, c) in hard(pod).enumerate() {
                if included(c, pod, node)
                    && let Some(v) = node.labels.get(&c.topology_key)
                {
                    *state.counts[i].entry(v.clone()).or_insert(0) += matching(c, pod, node);
                }
            }
        }
    }
    state.refresh_min();
    state
}

impl State {
    fn refresh_min(&mut self) {
        for (i, counts) in self.counts.iter().enumerate() {
            self.min[i] = counts
                .values()
                .copied()
                .min()
                .unwrap_or(i64::from(i32::MAX));
        }
    }
}

/// Adds (`delta` 1) or removes (−1) one existing pod on `node`.
pub fn update(state: &mut State, pod: &PodInfo, existing: &PodInfo, node: &NodeInfo, delta: i64) {
    if state.counts.is_empty()
        || existing.terminating
        || existing.namespace != pod.namespace
        || !has_keys(hard(pod), node)
    {
        return;
    }
    for (i, c) in hard(pod).enumerate() {
        if included(c, pod, node)
            && c.selector.matches(&existing.labels)
            && let Some(v) = node.labels.get(&c.topology_key)
        {
            *state.counts[i].entry(v.clone()).or_insert(0) += delta;
        }
    }
    state.refresh_min();
}

/// Rejects a node lacking a constraint's topology label, or where placing
/// the pod would exceed a `maxSkew`.
pub fn filter(state: &State, pod: &PodInfo, node: &NodeInfo) -> Result<(), Status> {
    for (i, c) in hard(pod).enumerate() {
        let Some(value) = node.labels.get(&c.topology_key) else {
            return Err(Status::unresolvable(REASON_LABEL));
        };
        let domains = state.counts[i].len() as i64;
        let min = match c.min_domains {
            Some(m) if domains < m => 0,
            _ => state.min[i],
        };
        let own = i64::from(c.selector.matches(&pod.labels));
        let count = state.counts[i].get(value).copied().unwrap_or(0);
        if count + own - min > c.max_skew {
            return Err(Status::unschedulable(REASON_SKEW));
        }
    }
    Ok(())
}

/// What scoring the soft constraints needs, computed over feasible nodes.
#[derive(Debug, Default)]
pub struct ScoreState {
    soft: Vec<SpreadConstraint>,
    counts: Vec<HashMap<String, i64>>,
    weights: Vec<f64>,
    ignored: Vec<bool>,
}

impl ScoreState {
    /// Whether the pod has no soft constraint (the plugin is skipped).
    pub fn is_empty(&self) -> bool {
        self.soft.is_empty()
    }

    /// Whether the feasible node at `i` lacks a topology label.
    pub fn ignored(&self, i: usize) -> bool {
        self.ignored.get(i).copied().unwrap_or(false)
    }
}

/// kube's system default constraints (used when the pod has none and a
/// Service or its controller selects it): hostnames with skew 3, zones
/// with skew 5, both `ScheduleAnyway`.
pub fn default_constraints(selector: Selector) -> Vec<SpreadConstraint> {
    [
        ("kubernetes.io/hostname", 3),
        ("topology.kubernetes.io/zone", 5),
    ]
    .into_iter()
    .map(|(key, skew)| SpreadConstraint {
        max_skew: skew,
        topology_key: key.to_owned(),
        hard: false,
        selector: selector.clone(),
        min_domains: None,
        honor_node_affinity: true,
        honor_taints: false,
    })
    .collect()
}

/// Counts matching pods per domain of each soft constraint, over the
/// domains of the feasible nodes.
pub fn prescore(pod: &PodInfo, cache: &Cache, feasible: &[&NodeInfo]) -> ScoreState {
    let (soft, require_all) = if pod.spread.is_empty() {
        match cache.default_selector(pod) {
            Some(selector) => (default_constraints(selector), false),
            None => return ScoreState::default(),
        }
    } else {
        let soft: Vec<SpreadConstraint> = pod.spread.iter().filter(|c| !c.hard).cloned().collect();
        (soft, true)
    };
    if soft.is_empty() {
        return ScoreState::default();
    }
    let value = |node: &NodeInfo, key: &str| -> Option<String> {
        match node.labels.get(key) {
            Some(v) => Some(v.clone()),
            None if !require_all => Some(String::new()),
            None => None,
        }
    };
    let mut counts = vec![HashMap::new(); soft.len()];
    let mut ignored = vec![false; feasible.len()];
    for (fi, node) in feasible.iter().enumerate() {
        if require_all && !has_keys(soft.iter(), node) {
            ignored[fi] = true;
            continue;
        }
        for (i, c) in soft.iter().enumerate() {
            if c.topology_key != "kubernetes.io/hostname"
                && let Some(v) = value(node, &c.topology_key)
            {
                counts[i].entry(v).or_insert(0i64);
            }
        }
    }
    let considered = ignored.iter().filter(|i| !**i).count();
    let weights = soft
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let size = if c.topology_key == "kubernetes.io/hostname" {
                considered
            } else {
                counts[i].len()
            };
            ((size + 2) as f64).ln()
        })
        .collect();
    for node in cache.node_slots() {
        if !node.present || (require_all && !has_keys(soft.iter(), node)) {
            continue;
        }
        for (i, c) in soft.iter().enumerate() {
            if c.topology_key == "kubernetes.io/hostname" || !included(c, pod, node) {
                continue;
            }
            if let Some(v) = value(node, &c.topology_key)
                && let Some(n) = counts[i].get_mut(&v)
            {
                *n += matching(c, pod, node);
            }
        }
    }
    ScoreState {
        soft,
        counts,
        weights,
        ignored,
    }
}

/// The raw score of a feasible node: more matching pods in its domains
/// score higher (inverted when normalized).
pub fn score(state: &ScoreState, pod: &PodInfo, node: &NodeInfo) -> i64 {
    let mut score = 0.0;
    for (i, c) in state.soft.iter().enumerate() {
        let Some(v) = node.labels.get(&c.topology_key) else {
            continue;
        };
        let count = if c.topology_key == "kubernetes.io/hostname" {
            matching(c, pod, node)
        } else {
            state.counts[i].get(v).copied().unwrap_or(0)
        };
        score += count as f64 * state.weights[i] + (c.max_skew - 1) as f64;
    }
    score.round() as i64
}

/// kube's NormalizeScore of PodTopologySpread.
pub fn normalize(state: &ScoreState, scores: &mut [i64]) {
    let mut min = i64::MAX;
    let mut max = 0;
    for (i, s) in scores.iter().enumerate() {
        if state.ignored(i) {
            continue;
        }
        min = min.min(*s);
        max = max.max(*s);
    }
    for (i, s) in scores.iter_mut().enumerate() {
        if state.ignored(i) {
            *s = 0;
        } else if max == 0 {
            *s = super::fit::MAX_SCORE;
        } else {
            *s = super::fit::MAX_SCORE * (max + min - *s) / max;
        }
    }
}
