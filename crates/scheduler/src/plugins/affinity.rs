//! InterPodAffinity: required pod affinity/anti-affinity (the incoming
//! pod's and existing pods' anti-affinity) filter; preferred terms (and
//! existing pods' terms toward the incoming pod) score.

use std::collections::HashMap;

use crate::cache::Cache;
use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;
use crate::status::Status;

/// kube's `ErrReasonExistingAntiAffinityRulesNotMatch`.
pub const REASON_EXISTING_ANTI: &str = "node(s) didn't satisfy existing pods anti-affinity rules";
/// kube's `ErrReasonAntiAffinityRulesNotMatch`.
pub const REASON_ANTI: &str = "node(s) didn't match pod anti-affinity rules";
/// kube's `ErrReasonAffinityRulesNotMatch`.
pub const REASON_AFFINITY: &str = "node(s) didn't match pod affinity rules";

/// Weight of an existing pod's required affinity toward the incoming pod
/// (kube's `hardPodAffinityWeight`).
const HARD_POD_AFFINITY_WEIGHT: i64 = 1;

type Counts = HashMap<(String, String), i64>;

/// Matching pods per topology domain, computed before filtering.
#[derive(Debug, Clone, Default)]
pub struct State {
    existing_anti: Counts,
    affinity: Counts,
    anti: Counts,
}

fn bump(counts: &mut Counts, node: &NodeInfo, key: &str, delta: i64) {
    if let Some(v) = node.labels.get(key) {
        let e = counts.entry((key.to_owned(), v.clone())).or_insert(0);
        *e += delta;
        if *e == 0 {
            counts.remove(&(key.to_owned(), v.clone()));
        }
    }
}

/// Counts, over all pods, what the incoming pod's filter needs.
pub fn prefilter(pod: &PodInfo, cache: &Cache) -> State {
    let mut state = State::default();
    let wants_all = !pod.required_affinity.is_empty() || !pod.required_anti_affinity.is_empty();
    if !wants_all && cache.pods_with_required_anti_affinity() == 0 {
        return state;
    }
    for node in cache.node_slots() {
        if !node.present || (!wants_all && node.with_required_anti_affinity == 0) {
            continue;
        }
        for existing in &node.pods {
            update(&mut state, pod, cache, existing, node, 1);
        }
    }
    state
}

/// Adds (`delta` 1) or removes (−1) one existing pod's contribution.
pub fn update(
    state: &mut State,
    pod: &PodInfo,
    cache: &Cache,
    existing: &PodInfo,
    node: &NodeInfo,
    delta: i64,
) {
    if existing.key == pod.key {
        return;
    }
    let pod_ns = cache.namespace_labels(&pod.namespace);
    for t in &existing.required_anti_affinity {
        if t.matches(&pod.namespace, &pod.labels, pod_ns) {
            bump(&mut state.existing_anti, node, &t.topology_key, delta);
        }
    }
    if pod.required_affinity.is_empty() && pod.required_anti_affinity.is_empty() {
        return;
    }
    let ex_ns = cache.namespace_labels(&existing.namespace);
    if !pod.required_affinity.is_empty()
        && pod
            .required_affinity
            .iter()
            .all(|t| t.matches(&existing.namespace, &existing.labels, ex_ns))
    {
        for t in &pod.required_affinity {
            bump(&mut state.affinity, node, &t.topology_key, delta);
        }
    }
    for t in &pod.required_anti_affinity {
        if t.matches(&existing.namespace, &existing.labels, ex_ns) {
            bump(&mut state.anti, node, &t.topology_key, delta);
        }
    }
}

/// Rejects a node in a domain that breaks an anti-affinity rule (existing
/// pods' first, then the pod's), or outside the pod's affinity domains.
pub fn filter(state: &State, pod: &PodInfo, cache: &Cache, node: &NodeInfo) -> Result<(), Status> {
    let in_domain = |counts: &Counts, key: &str| {
        node.labels.get(key).is_some_and(|v| {
            counts
                .get(&(key.to_owned(), v.clone()))
                .copied()
                .unwrap_or(0)
                > 0
        })
    };
    if state
        .existing_anti
        .iter()
        .any(|((k, v), n)| *n > 0 && node.labels.get(k) == Some(v))
    {
        return Err(Status::unschedulable(REASON_EXISTING_ANTI));
    }
    if pod
        .required_anti_affinity
        .iter()
        .any(|t| in_domain(&state.anti, &t.topology_key))
    {
        return Err(Status::unschedulable(REASON_ANTI));
    }
    if pod.required_affinity.is_empty() {
        return Ok(());
    }
    let mut pods_exist = true;
    for t in &pod.required_affinity {
        if !node.labels.contains_key(&t.topology_key) {
            return Err(Status::unresolvable(REASON_AFFINITY));
        }
        if !in_domain(&state.affinity, &t.topology_key) {
            pods_exist = false;
        }
    }
    if pods_exist {
        return Ok(());
    }
    // The first pod of a group with affinity to itself may go anywhere.
    let own_ns = cache.namespace_labels(&pod.namespace);
    if state.affinity.is_empty()
        && pod
            .required_affinity
            .iter()
            .all(|t| t.matches(&pod.namespace, &pod.labels, own_ns))
    {
        return Ok(());
    }
    Err(Status::unresolvable(REASON_AFFINITY))
}

/// Preferred-affinity weights per topology domain, computed once per pod.
#[derive(Debug, Default)]
pub struct ScoreState {
    weights: Counts,
}

impl ScoreState {
    /// Whether no domain has a weight (the plugin is skipped).
    pub fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }
}

/// Sums, per topology domain, the weights of the incoming pod's preferred
/// terms over existing pods and existing pods' terms over the incoming pod.
pub fn prescore(pod: &PodInfo, cache: &Cache) -> ScoreState {
    let mut s = ScoreState::default();
    let has_own = !pod.preferred_affinity.is_empty() || !pod.preferred_anti_affinity.is_empty();
    if !has_own && cache.pods_with_affinity() == 0 {
        return s;
    }
    let pod_ns = cache.namespace_labels(&pod.namespace);
    for node in cache.node_slots() {
        if !node.present || (!has_own && node.with_affinity == 0) {
            continue;
        }
        for ex in &node.pods {
            if !has_own && !ex.has_affinity() {
                continue;
            }
            let ex_ns = cache.namespace_labels(&ex.namespace);
            for w in &pod.preferred_affinity {
                if w.term.matches(&ex.namespace, &ex.labels, ex_ns) {
                    bump(&mut s.weights, node, &w.term.topology_key, w.weight);
                }
            }
            for w in &pod.preferred_anti_affinity {
                if w.term.matches(&ex.namespace, &ex.labels, ex_ns) {
                    bump(&mut s.weights, node, &w.term.topology_key, -w.weight);
                }
            }
            for t in &ex.required_affinity {
                if t.matches(&pod.namespace, &pod.labels, pod_ns) {
                    bump(
                        &mut s.weights,
                        node,
                        &t.topology_key,
                        HARD_POD_AFFINITY_WEIGHT,
                    );
                }
            }
            for w in &ex.preferred_affinity {
                if w.term.matches(&pod.namespace, &pod.labels, pod_ns) {
                    bump(&mut s.weights, node, &w.term.topology_key, w.weight);
                }
            }
            for w in &ex.preferred_anti_affinity {
                if w.term.matches(&pod.namespace, &pod.labels, pod_ns) {
                    bump(&mut s.weights, node, &w.term.topology_key, -w.weight);
                }
            }
        }
    }
    s
}

/// The node's raw score: the weights of the domains it is in.
pub fn score(state: &ScoreState, node: &NodeInfo) -> i64 {
    state
        .weights
        .iter()
        .filter(|((k, v), _)| node.labels.get(k) == Some(v))
        .map(|(_, w)| *w)
        .sum()
}
