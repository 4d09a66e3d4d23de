//! A PodDisruptionBudget's arithmetic, as kube's disruption controller
//! computes it: expected pods, desired healthy (minAvailable, or expected
//! minus maxUnavailable, percentages rounded up), current healthy (ready
//! pods not being deleted nor recently evicted), disruptions allowed, and
//! the DisruptionAllowed condition.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::{
    PodDisruptionBudget, PodDisruptionBudgetSpec, PodDisruptionBudgetStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::util::intstr::scaled_value;

/// The condition type.
pub const CONDITION: &str = "DisruptionAllowed";
/// Reason when disruptions are allowed.
pub const SUFFICIENT: &str = "SufficientPods";
/// Reason when they are not.
pub const INSUFFICIENT: &str = "InsufficientPods";
/// Reason when the status could not be computed.
pub const SYNC_FAILED: &str = "SyncFailed";
/// How long an evicted pod (in `disruptedPods`) is assumed on its way out
/// before the controller counts it again (kube's DeletionTimeout).
pub const DELETION_TIMEOUT: SignedDuration = SignedDuration::from_secs(120);

/// Whether the budget needs the controllers' scale (maxUnavailable, or
/// a percentage minAvailable).
pub fn needs_scale(spec: &PodDisruptionBudgetSpec) -> bool {
    spec.max_unavailable.is_some() || matches!(spec.min_available, Some(IntOrString::String(_)))
}

/// (expectedPods, desiredHealthy) from the spec, the number of matching
/// pods, and the summed scale of their controllers (when
/// [`needs_scale`]).
pub fn expected_and_desired(
    spec: &PodDisruptionBudgetSpec,
    pods: i32,
    scale: i32,
) -> Result<(i32, i32), String> {
    if let Some(max) = &spec.max_unavailable {
        let max = scaled_value(max, scale, true)?;
        return Ok((scale, (scale - max).max(0)));
    }
    match &spec.min_available {
        Some(min @ IntOrString::Int(_)) => Ok((pods, scaled_value(min, pods, true)?)),
        Some(min @ IntOrString::String(_)) => Ok((scale, scaled_value(min, scale, true)?)),
        None => Err("neither minAvailable nor maxUnavailable is set".to_owned()),
    }
}

/// Whether a pod's Ready condition is True.
pub fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True")
}

/// The `disruptedPods` entries still in effect: their pod exists, is not
/// yet being deleted, and was evicted less than [`DELETION_TIMEOUT`] ago.
/// Also returns when the earliest of them expires.
pub fn live_disruptions(
    recorded: Option<&BTreeMap<String, Time>>,
    pods: &[&Pod],
    now: Timestamp,
) -> (BTreeMap<String, Time>, Option<Timestamp>) {
    let (kept, recheck, _) = disruptions(recorded, pods, now);
    (kept, recheck)
}

/// [`live_disruptions`], and the pods whose eviction expired without
/// their deletion.
pub fn disruptions(
    recorded: Option<&BTreeMap<String, Time>>,
    pods: &[&Pod],
    now: Timestamp,
) -> (BTreeMap<String, Time>, Option<Timestamp>, Vec<String>) {
    let mut kept = BTreeMap::new();
    let mut expired = Vec::new();
    let mut recheck: Option<Timestamp> = None;
    for (name, at) in recorded.into_iter().flatten() {
        let Some(pod) = pods
            .iter()
            .find(|p| p.metadata.name.as_deref() == Some(name))
        else {
            continue;
        };
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let expires = at.0 + DELETION_TIMEOUT;
        if expires <= now {
            expired.push(name.clone());
            continue;
        }
        recheck = Some(recheck.map_or(expires, |r| r.min(expires)));
        kept.insert(name.clone(), at.clone());
    }
    (kept, recheck, expired)
}

/// How long a DisruptionTarget condition may stay True on a pod that is
/// not going away (kube's stalePodDisruptionTimeout).
pub const STALE_DISRUPTION: SignedDuration = SignedDuration::from_secs(120);

/// When a pod's DisruptionTarget condition goes stale: None when it has
/// no such True condition to clear (set by the node agent, on a terminal
/// or terminating pod, or absent).
pub fn stale_disruption_at(pod: &Pod) -> Option<Timestamp> {
    if pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let status = pod.status.as_ref()?;
    if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
        return None;
    }
    let c = status
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "DisruptionTarget")?;
    if c.status != "True" || c.reason.as_deref() == Some("TerminationByKubelet") {
        return None;
    }
    Some(
        c.last_transition_time
            .as_ref()
            .map_or(Timestamp::UNIX_EPOCH, |t| t.0)
            + STALE_DISRUPTION,
    )
}

/// Ready pods, not being deleted, not recorded as disrupted.
pub fn current_healthy(pods: &[&Pod], disrupted: &BTreeMap<String, Time>) -> i32 {
    let n = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            !p.metadata
                .name
                .as_ref()
                .is_some_and(|n| disrupted.contains_key(n))
        })
        .filter(|p| pod_ready(p))
        .count();
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// kube's SetStatusCondition: the transition time moves only with the
/// status. Returns whether anything changed.
pub fn set_condition(conditions: &mut Vec<Condition>, mut new: Condition, now: Timestamp) -> bool {
    match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        Some(c) => {
            let before = c.clone();
            if c.status != new.status {
                c.status = new.status;
                c.last_transition_time = Time(now);
            }
            c.reason = new.reason;
            c.message = new.message;
            c.observed_generation = new.observed_generation;
            *c != before
        }
        None => {
            new.last_transition_time = Time(now);
            conditions.push(new);
            true
        }
    }
}

/// The DisruptionAllowed condition for a status (kube's
/// UpdateDisruptionAllowedCondition).
pub fn allowed_condition(status: &mut PodDisruptionBudgetStatus, now: Timestamp) {
    let allowed = status.disruptions_allowed > 0;
    let condition = Condition {
        type_: CONDITION.to_owned(),
        status: if allowed { "True" } else { "False" }.to_owned(),
        reason: if allowed { SUFFICIENT } else { INSUFFICIENT }.to_owned(),
        message: String::new(),
        observed_generation: status.observed_generation,
        last_transition_time: Time(now),
    };
    set_condition(status.conditions.get_or_insert_default(), condition, now);
}

/// The status a budget should have. `scale` is the summed scale of the
/// pods' controllers, or why it could not be found.
pub fn status(
    pdb: &PodDisruptionBudget,
    pods: &[&Pod],
    scale: Result<i32, String>,
    now: Timestamp,
) -> Result<(PodDisruptionBudgetStatus, Option<Timestamp>), String> {
    let spec = pdb.spec.clone().unwrap_or_default();
    let count = i32::try_from(pods.len()).unwrap_or(i32::MAX);
    let scale = if needs_scale(&spec) { scale? } else { 0 };
    let (expected, desired) = expected_and_desired(&spec, count, scale)?;
    let current = pdb.status.clone().unwrap_or_default();
    let (disrupted, recheck) = live_disruptions(current.disrupted_pods.as_ref(), pods, now);
    let healthy = current_healthy(pods, &disrupted);
    let mut allowed = healthy - desired;
    if expected <= 0 || allowed <= 0 {
        allowed = 0;
    }
    let mut next = PodDisruptionBudgetStatus {
        current_healthy: healthy,
        desired_healthy: desired,
        expected_pods: expected,
        disruptions_allowed: allowed,
        disrupted_pods: (!disrupted.is_empty()).then_some(disrupted),
        observed_generation: pdb.metadata.generation,
        conditions: current.conditions.clone(),
    };
    allowed_condition(&mut next, now);
    Ok((next, recheck))
}

/// The fail-safe status after an error: nothing may be disrupted.
pub fn failed_status(
    pdb: &PodDisruptionBudget,
    error: &str,
    now: Timestamp,
) -> PodDisruptionBudgetStatus {
    let mut next = pdb.status.clone().unwrap_or_default();
    next.disruptions_allowed = 0;
    let condition = Condition {
        type_: CONDITION.to_owned(),
        status: "False".to_owned(),
        reason: SYNC_FAILED.to_owned(),
        message: error.to_owned(),
        observed_generation: next.observed_generation,
        last_transition_time: Time(now),
    };
    set_condition(next.conditions.get_or_insert_default(), condition, now);
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    fn pct(s: &str) -> IntOrString {
        IntOrString::String(s.into())
    }

    #[test]
    fn percentages_round_up() {
        let cases = [
            (IntOrString::Int(3), 10, 3),
            (pct("50%"), 5, 3),
            (pct("50%"), 4, 2),
            (pct("33%"), 10, 4),
            (pct("1%"), 1, 1),
            (pct("0%"), 7, 0),
            (pct("100%"), 7, 7),
            (pct("10%"), 0, 0),
        ];
        for (v, total, expected) in cases {
            assert_eq!(
                scaled_value(&v, total, true),
                Ok(expected),
                "{v:?} of {total}"
            );
        }
        assert_eq!(scaled_value(&pct("50%"), 5, false), Ok(2));
        assert!(scaled_value(&pct("x%"), 5, true).is_err());
        assert!(scaled_value(&IntOrString::String("5".into()), 5, true).is_err());
    }

    fn spec(min: Option<IntOrString>, max: Option<IntOrString>) -> PodDisruptionBudgetSpec {
        PodDisruptionBudgetSpec {
            min_available: min,
            max_unavailable: max,
            ..Default::default()
        }
    }

    #[test]
    fn expected_and_desired_per_kind_of_budget() {
        // minAvailable int: expected = matching pods, no scale needed.
        assert_eq!(
            expected_and_desired(&spec(Some(IntOrString::Int(2)), None), 3, 99),
            Ok((3, 2))
        );
        // minAvailable percent: of the scale, rounded up.
        assert_eq!(
            expected_and_desired(&spec(Some(pct("50%")), None), 2, 5),
            Ok((5, 3))
        );
        // maxUnavailable: scale minus it (rounded up), never below zero.
        assert_eq!(
            expected_and_desired(&spec(None, Some(IntOrString::Int(1))), 3, 3),
            Ok((3, 2))
        );
        assert_eq!(
            expected_and_desired(&spec(None, Some(pct("30%"))), 3, 5),
            Ok((5, 3))
        );
        assert_eq!(
            expected_and_desired(&spec(None, Some(IntOrString::Int(9))), 3, 3),
            Ok((3, 0))
        );
        assert!(expected_and_desired(&spec(None, None), 3, 3).is_err());
        assert!(!needs_scale(&spec(Some(IntOrString::Int(2)), None)));
        assert!(needs_scale(&spec(Some(pct("2%")), None)));
        assert!(needs_scale(&spec(None, Some(IntOrString::Int(1)))));
    }

    fn pod(name: &str, ready: bool, deleting: bool) -> Pod {
        let mut p = Pod {
            status: Some(PodStatus {
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        p.metadata.name = Some(name.into());
        if deleting {
            p.metadata.deletion_timestamp = Some(Time(at(0)));
        }
        p
    }

    fn pdb(min: i32, generation: i64, disrupted: &[(&str, i64)]) -> PodDisruptionBudget {
        let mut b = PodDisruptionBudget {
            spec: Some(spec(Some(IntOrString::Int(min)), None)),
            status: Some(PodDisruptionBudgetStatus {
                disrupted_pods: Some(
                    disrupted
                        .iter()
                        .map(|(n, t)| ((*n).into(), Time(at(*t))))
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        };
        b.metadata.generation = Some(generation);
        b
    }

    #[test]
    fn status_counts_ready_pods_not_disrupted_nor_deleting() {
        let pods = [
            pod("a", true, false),
            pod("b", true, false),
            pod("c", false, false),
            pod("d", true, true),
            pod("e", true, false),
        ];
        let refs: Vec<&Pod> = pods.iter().collect();
        // e was evicted 10 s ago: not counted, still recorded; a record
        // of a gone pod or a deleting one is dropped.
        let budget = pdb(2, 3, &[("e", 90), ("gone", 95), ("d", 95)]);
        let (s, recheck) = status(&budget, &refs, Err("unused".into()), at(100)).unwrap();
        assert_eq!(
            (
                s.expected_pods,
                s.desired_healthy,
                s.current_healthy,
                s.disruptions_allowed
            ),
            (5, 2, 2, 0)
        );
        assert_eq!(s.observed_generation, Some(3));
        assert_eq!(
            s.disrupted_pods
                .as_ref()
                .map(|d| d.keys().cloned().collect::<Vec<_>>()),
            Some(vec!["e".to_owned()])
        );
        assert_eq!(recheck, Some(at(210)));
        let c = &s.conditions.as_ref().unwrap()[0];
        assert_eq!(
            (c.type_.as_str(), c.status.as_str(), c.reason.as_str()),
            ("DisruptionAllowed", "False", "InsufficientPods")
        );
        // Two minutes later e counts again.
        let (s, _) = status(&budget, &refs, Err("unused".into()), at(211)).unwrap();
        assert_eq!((s.current_healthy, s.disruptions_allowed), (3, 1));
        assert_eq!(s.disrupted_pods, None);
        let c = &s.conditions.as_ref().unwrap()[0];
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("True", "SufficientPods")
        );
    }

    #[test]
    fn no_disruptions_without_expected_pods_and_fail_safe_on_errors() {
        let mut budget = pdb(0, 1, &[]);
        let (s, _) = status(&budget, &[], Ok(0), at(0)).unwrap();
        assert_eq!((s.expected_pods, s.disruptions_allowed), (0, 0));
        budget.spec = Some(spec(None, Some(IntOrString::Int(1))));
        let p = pod("a", true, false);
        let err = status(
            &budget,
            &[&p],
            Err("found no controllers for pod \"a\"".into()),
            at(0),
        )
        .unwrap_err();
        let s = failed_status(&budget, &err, at(0));
        assert_eq!(s.disruptions_allowed, 0);
        let c = &s.conditions.as_ref().unwrap()[0];
        assert_eq!(
            (c.reason.as_str(), c.message.as_str()),
            ("SyncFailed", "found no controllers for pod \"a\"")
        );
    }

    #[test]
    fn stale_disruption_conditions() {
        use k8s_openapi::api::core::v1::PodCondition;
        let with = |status: &str, reason: &str, phase: &str| {
            let mut p = pod("a", true, false);
            let s = p.status.as_mut().unwrap();
            s.phase = Some(phase.into());
            s.conditions.get_or_insert_default().push(PodCondition {
                type_: "DisruptionTarget".into(),
                status: status.into(),
                reason: Some(reason.into()),
                last_transition_time: Some(Time(at(10))),
                ..Default::default()
            });
            p
        };
        assert_eq!(
            stale_disruption_at(&with("True", "EvictionByEvictionAPI", "Running")),
            Some(at(130))
        );
        assert_eq!(
            stale_disruption_at(&with("True", "TerminationByKubelet", "Running")),
            None
        );
        assert_eq!(
            stale_disruption_at(&with("False", "EvictionByEvictionAPI", "Running")),
            None
        );
        assert_eq!(
            stale_disruption_at(&with("True", "DeletionByTaintManager", "Failed")),
            None
        );
        assert_eq!(stale_disruption_at(&pod("b", true, false)), None);
    }

    #[test]
    fn condition_transition_time_moves_with_status_only() {
        let mut conditions = Vec::new();
        let c = |status: &str, reason: &str| Condition {
            type_: CONDITION.into(),
            status: status.into(),
            reason: reason.into(),
            message: String::new(),
            observed_generation: None,
            last_transition_time: Time(at(0)),
        };
        assert!(set_condition(&mut conditions, c("True", SUFFICIENT), at(1)));
        assert!(!set_condition(
            &mut conditions,
            c("True", SUFFICIENT),
            at(2)
        ));
        assert_eq!(conditions[0].last_transition_time, Time(at(1)));
        assert!(set_condition(
            &mut conditions,
            c("False", INSUFFICIENT),
            at(3)
        ));
        assert_eq!(conditions[0].last_transition_time, Time(at(3)));
    }
}
