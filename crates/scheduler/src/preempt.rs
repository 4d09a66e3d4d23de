//! DefaultPreemption: when no node fits, find the node where evicting
//! the fewest, least important lower-priority pods makes the pod fit.

use std::cmp::Ordering;
use std::sync::Arc;

use k8s_openapi::api::policy::v1::PodDisruptionBudget;

use crate::node_info::NodeInfo;
use crate::plugins::Cycle;
use crate::pod_info::PodInfo;
use crate::schedule::{Scheduler, filter_with_nominated};
use crate::selectors::Selector;
use crate::status::{Code, Diagnosis, FitError, Status};

/// The least share of the potential nodes tried, in percent.
const MIN_CANDIDATE_NODES_PERCENTAGE: usize = 10;
/// The least number of potential nodes tried.
const MIN_CANDIDATE_NODES_ABSOLUTE: usize = 100;

/// kube's reason for a node where preemption cannot help.
pub const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
/// kube's reason for a node without lower-priority pods.
pub const NO_VICTIMS: &str = "No preemption victims found for incoming pod";

/// A PodDisruptionBudget as preemption weighs it.
#[derive(Debug, Clone)]
pub struct Pdb {
    /// Its namespace.
    pub namespace: String,
    /// The pods it covers (an empty selector covers none here).
    pub selector: Selector,
    /// `status.disruptionsAllowed`.
    pub disruptions_allowed: i32,
    /// `status.disruptedPods` names, already accounted for.
    pub disrupted: Vec<String>,
}

impl Pdb {
    /// Reads a PodDisruptionBudget.
    pub fn new(pdb: &PodDisruptionBudget) -> Pdb {
        let spec_selector = pdb.spec.as_ref().and_then(|s| s.selector.as_ref());
        let selector = Selector::new(spec_selector);
        let status = pdb.status.as_ref();
        Pdb {
            namespace: pdb.metadata.namespace.clone().unwrap_or_default(),
            selector: if selector.is_everything() {
                Selector::nothing()
            } else {
                selector
            },
            disruptions_allowed: status.map(|s| s.disruptions_allowed).unwrap_or(0),
            disrupted: status
                .and_then(|s| s.disrupted_pods.as_ref())
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default(),
        }
    }
}

/// Where the pod will go once the victims are gone.
#[derive(Debug, Clone)]
pub struct Preemption {
    /// The node to nominate.
    pub node: String,
    /// The pods to evict, most important first.
    pub victims: Vec<Arc<PodInfo>>,
    /// Lower-priority pods nominated to that node, whose nomination is
    /// cleared.
    pub lower_nominated: Vec<Arc<PodInfo>>,
}

struct Candidate {
    node: String,
    victims: Vec<Arc<PodInfo>>,
    violations: usize,
}

/// kube's `MoreImportantPod`: higher priority, then earlier start.
fn more_important(a: &PodInfo, b: &PodInfo) -> Ordering {
    b.priority.cmp(&a.priority).then_with(|| {
        let at = a.start_time.unwrap_or(i64::MAX);
        let bt = b.start_time.unwrap_or(i64::MAX);
        at.cmp(&bt)
    })
}

/// Splits pods into those whose eviction would break a budget and the rest.
fn split_by_pdb(pods: Vec<Arc<PodInfo>>, pdbs: &[Pdb]) -> (Vec<Arc<PodInfo>>, Vec<Arc<PodInfo>>) {
    let mut allowed: Vec<i32> = pdbs.iter().map(|p| p.disruptions_allowed).collect();
    let (mut violating, mut fine) = (Vec::new(), Vec::new());
    for p in pods {
        let mut violated = false;
        if !p.labels.is_empty() {
            for (i, pdb) in pdbs.iter().enumerate() {
                if pdb.namespace != p.namespace
                    || !pdb.selector.matches(&p.labels)
                    || pdb.disrupted.contains(&p.name)
                {
                    continue;
                }
                allowed[i] -= 1;
                if allowed[i] < 0 {
                    violated = true;
                }
            }
        }
        if violated {
            violating.push(p);
        } else {
            fine.push(p);
        }
    }
    (violating, fine)
}

impl Scheduler {
    /// Tries preemption for `pod` after `fit` rejected every node. `Ok`
    /// names the node and the victims; `Err` is kube's PostFilter message
    /// ("preemption: ..."), to set as the FitError's `postfilter_msg`.
    pub fn preempt(
        &self,
        pod: &PodInfo,
        fit: &FitError,
        pdbs: &[Pdb],
    ) -> Result<Preemption, String> {
        let msg = |m: String| format!("preemption: {m}");
        if pod.never_preempts {
            return Err(msg("not eligible due to preemptionPolicy=Never.".to_owned()));
        }
        let cache = &self.cache;
        if !pod.nominated_node.is_empty()
            && fit.diagnosis.status_of(&pod.nominated_node).map(|s| s.code)
                != Some(Code::UnschedulableAndUnresolvable)
            && let Some(node) = cache.node(&pod.nominated_node)
            && node
                .pods
                .iter()
                .any(|p| p.priority < pod.priority && p.terminating)
        {
            return Err(msg(
                "not eligible due to a terminating pod on the nominated node.".to_owned(),
            ));
        }
        let mut statuses: Vec<(String, Status)> = Vec::new();
        let mut potential: Vec<&NodeInfo> = Vec::new();
        for node in cache.node_slots().iter().filter(|n| n.present) {
            match fit.diagnosis.status_of(&node.name) {
                Some(s) if s.code == Code::UnschedulableAndUnresolvable => {
                    statuses.push((node.name.clone(), Status::unresolvable(NOT_HELPFUL)));
                }
                _ => potential.push(node),
            }
        }
        let failed = |statuses: Vec<(String, Status)>| {
            let e = FitError {
                num_all_nodes: cache.node_count(),
                diagnosis: Diagnosis {
                    statuses,
                    absent: Some(Status::unresolvable(NOT_HELPFUL)),
                    ..Diagnosis::default()
                },
            };
            msg(e.to_string())
        };
        let cycle = match Cycle::prefilter(pod, cache) {
            Ok(c) => c,
            Err(_) => return Err(failed(statuses)),
        };
        let want = (potential.len() * MIN_CANDIDATE_NODES_PERCENTAGE / 100)
            .max(MIN_CANDIDATE_NODES_ABSOLUTE)
            .min(potential.len());
        let mut candidates: Vec<Candidate> = Vec::new();
        for node in potential {
            let fine = candidates.iter().filter(|c| c.violations == 0).count();
            if fine > 0 && candidates.len() >= want {
                break;
            }
            match select_victims(&cycle, node, pdbs) {
                Ok(c) => candidates.push(c),
                Err(s) => statuses.push((node.name.clone(), s)),
            }
        }
        let Some(best) = pick(candidates) else {
            return Err(failed(statuses));
        };
        let lower_nominated = cache
            .nominated_on(&best.node)
            .filter(|p| p.priority < pod.priority && p.key != pod.key)
            .cloned()
            .collect();
        Ok(Preemption {
            node: best.node,
            victims: best.victims,
            lower_nominated,
        })
    }
}

/// The fewest victims on `node` that make the pod fit: all lower-priority
/// pods out, then each reprieved (PDB-protected first, most important
/// first) if the pod still fits without evicting it.
fn select_victims(cycle: &Cycle<'_>, node: &NodeInfo, pdbs: &[Pdb]) -> Result<Candidate, Status> {
    let pod = cycle.pod;
    let mut state = cycle.clone();
    let mut info = node.clone();
    let mut potential: Vec<Arc<PodInfo>> = Vec::new();
    for p in node.pods.iter().filter(|p| p.priority < pod.priority) {
        if let Some(removed) = info.remove_pod(&p.key) {
            state.update(&removed, &info, -1);
            potential.push(removed);
        }
    }
    if potential.is_empty() {
        return Err(Status::unresolvable(NO_VICTIMS));
    }
    filter_with_nominated(&state, &info)?;
    potential.sort_by(|a, b| more_important(a, b));
    let (violating, fine) = split_by_pdb(potential, pdbs);
    let both = !violating.is_empty() && !fine.is_empty();
    let mut victims = Vec::new();
    let mut violations = 0;
    for (protected, group) in [(true, violating), (false, fine)] {
        for p in group {
            state.update(&p, &info, 1);
            info.add_pod(p.clone());
            if filter_with_nominated(&state, &info).is_err() {
                info.remove_pod(&p.key);
                state.update(&p, &info, -1);
                if protected {
                    violations += 1;
                }
                victims.push(p);
            }
        }
    }
    if both {
        victims.sort_by(|a, b| more_important(a, b));
    }
    if victims.is_empty() {
        return Err(Status {
            code: Code::UnschedulableAndUnresolvable,
            reasons: vec![
                format!("expected at least one victim pod on node {:?}", node.name).into(),
            ],
        });
    }
    Ok(Candidate {
        node: node.name.clone(),
        victims,
        violations,
    })
}

/// kube's `pickOneNodeForPreemption`: fewest PDB violations, then the
/// lowest highest-priority victim, the lowest priority sum, the fewest
/// victims, the latest start among the most important victims, then the
/// first candidate.
fn pick(candidates: Vec<Candidate>) -> Option<Candidate> {
    let key = |c: &Candidate| {
        let highest = c.victims.first().map(|v| v.priority).unwrap_or(i32::MIN);
        let sum: i64 = c
            .victims
            .iter()
            .map(|v| i64::from(v.priority) + i64::from(i32::MAX) + 1)
            .sum();
        let earliest_top = c
            .victims
            .iter()
            .filter(|v| v.priority == highest)
            .map(|v| v.start_time.unwrap_or(i64::MAX))
            .min()
            .unwrap_or(i64::MAX);
        (
            c.violations,
            highest,
            sum,
            c.victims.len(),
            std::cmp::Reverse(earliest_top),
        )
    };
    let mut best: Option<(Candidate, _)> = None;
    for c in candidates {
        let k = key(&c);
        if best.as_ref().is_none_or(|(_, bk)| k < *bk) {
            best = Some((c, k));
        }
    }
    best.map(|(c, _)| c)
}
