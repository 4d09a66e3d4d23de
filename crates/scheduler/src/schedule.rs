//! One scheduling attempt: pre-filter, filter (a share of the nodes, as
//! kube's `percentageOfNodesToScore`), score, pick the best node.

use k8s_openapi::api::core::v1::Pod;

use crate::cache::Cache;
use crate::node_info::NodeInfo;
use crate::plugins::{self, Cycle};
use crate::pod_info::PodInfo;
use crate::status::{Diagnosis, FitError, ScheduleError, Status};

/// Below this many nodes, every node is considered.
const MIN_FEASIBLE_NODES: usize = 100;
/// The least share of the nodes considered, in percent.
const MIN_FEASIBLE_PERCENTAGE: usize = 5;

/// Where a pod goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The chosen node.
    pub node: String,
    /// How many nodes were filtered.
    pub evaluated: usize,
    /// How many of them fit.
    pub feasible: usize,
}

/// The scheduler's pure core: the cache and the round-robin start of the
/// node search.
#[derive(Debug, Default)]
pub struct Scheduler {
    /// The cluster as the scheduler sees it.
    pub cache: Cache,
    /// `percentageOfNodesToScore`; 0 is kube's adaptive default.
    pub percentage_of_nodes_to_score: usize,
    next_start: usize,
}

impl Scheduler {
    /// A scheduler over an empty cache.
    pub fn new() -> Scheduler {
        Scheduler::default()
    }

    /// How many feasible nodes to look for among `all` (kube's
    /// `numFeasibleNodesToFind`).
    pub fn feasible_nodes_to_find(&self, all: usize) -> usize {
        if all < MIN_FEASIBLE_NODES {
            return all;
        }
        let mut percentage = self.percentage_of_nodes_to_score;
        if percentage == 0 {
            percentage = 50usize
                .saturating_sub(all / 125)
                .max(MIN_FEASIBLE_PERCENTAGE);
        }
        (all * percentage.min(100) / 100).max(MIN_FEASIBLE_NODES)
    }

    /// Picks a node for `pod`.
    pub fn schedule(&mut self, pod: &Pod) -> Result<Decision, ScheduleError> {
        let info = self.cache.pod_info(pod);
        self.schedule_info(&info)
    }

    /// Picks a node for a compiled pod.
    pub fn schedule_info(&mut self, pod: &PodInfo) -> Result<Decision, ScheduleError> {
        let all = self.cache.node_count();
        if all == 0 {
            return Err(ScheduleError::NoNodes);
        }
        let cycle = match Cycle::prefilter(pod, &self.cache) {
            Ok(c) => c,
            Err(status) => {
                return Err(ScheduleError::Fit(FitError {
                    num_all_nodes: all,
                    diagnosis: Diagnosis {
                        prefilter_msg: Some(status.message()),
                        absent: Some(status),
                        ..Diagnosis::default()
                    },
                }));
            }
        };
        // A nominated node that still fits is taken without scoring.
        if !pod.nominated_node.is_empty()
            && let Some(node) = self.cache.node(&pod.nominated_node)
            && !cycle.excluded(node)
            && filter_with_nominated(&cycle, node).is_ok()
        {
            return Ok(Decision {
                node: node.name.clone(),
                evaluated: 1,
                feasible: 1,
            });
        }
        let want = self.feasible_nodes_to_find(all);
        let slots = self.cache.node_slots();
        let n = slots.len();
        let mut feasible: Vec<&NodeInfo> = Vec::with_capacity(want.min(n));
        let mut diagnosis = Diagnosis::default();
        let mut processed = 0;
        let mut excluded = 0;
        let start = if n == 0 { 0 } else { self.next_start % n };
        for i in 0..n {
            if feasible.len() >= want {
                break;
            }
            let node = &slots[(start + i) % n];
            processed += 1;
            if !node.present {
                continue;
            }
            if cycle.excluded(node) {
                excluded += 1;
                continue;
            }
            match filter_with_nominated(&cycle, node) {
                Ok(()) => feasible.push(node),
                Err(status) => diagnosis.statuses.push((node.name.clone(), status)),
            }
        }
        if excluded > 0 {
            diagnosis.absent = Some(Status::unresolvable(
                "node(s) didn't satisfy plugin(s) [NodeAffinity]",
            ));
        }
        let next = if n == 0 { 0 } else { (start + processed) % n };
        if feasible.is_empty() {
            self.next_start = next;
            return Err(ScheduleError::Fit(FitError {
                num_all_nodes: all,
                diagnosis,
            }));
        }
        let evaluated = feasible.len() + diagnosis.statuses.len();
        let count = feasible.len();
        let chosen = if count == 1 {
            feasible[0].name.clone()
        } else {
            let scores = plugins::score(pod, &self.cache, &feasible);
            let mut best = 0;
            for i in 1..count {
                if scores[i] > scores[best]
                    || (scores[i] == scores[best] && feasible[i].name < feasible[best].name)
                {
                    best = i;
                }
            }
            feasible[best].name.clone()
        };
        self.next_start = next;
        Ok(Decision {
            node: chosen,
            evaluated,
            feasible: count,
        })
    }
}

/// Runs the filters with the pods nominated to `node` (of at least the
/// pod's priority) counted as if they ran there, then without them, as
/// kube's `RunFilterPluginsWithNominatedPods` does.
pub fn filter_with_nominated(cycle: &Cycle<'_>, node: &NodeInfo) -> Result<(), Status> {
    let pod = cycle.pod;
    if cycle.cache.has_nominations() {
        let nominated: Vec<_> = cycle
            .cache
            .nominated_on(&node.name)
            .filter(|p| p.key != pod.key && p.priority >= pod.priority)
            .cloned()
            .collect();
        if !nominated.is_empty() {
            let mut with = node.clone();
            let mut state = cycle.clone();
            for p in nominated {
                state.update(&p, &with, 1);
                with.add_pod(p);
            }
            state.filter(&with)?;
        }
    }
    cycle.filter(node)
}
