//! A Job's `podFailurePolicy` applied to one failed pod, and the retry
//! backoff between failures.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::PodFailurePolicy;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

/// What a matching rule says to do with a failed pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Fail the whole Job, with kube's message.
    FailJob(String),
    /// Fail the pod's index (with `backoffLimitPerIndex`).
    FailIndex,
    /// Do not count the failure.
    Ignore,
    /// Count the failure (also when no rule matches).
    Count,
}

/// The first rule that matches the failed pod decides; none → `Count`.
pub fn evaluate(policy: Option<&PodFailurePolicy>, pod: &Pod) -> Action {
    let Some(policy) = policy else {
        return Action::Count;
    };
    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
    let name = pod.metadata.name.as_deref().unwrap_or("");
    let status = pod.status.as_ref();
    let statuses: Vec<&ContainerStatus> = status
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .chain(
            status
                .and_then(|s| s.init_container_statuses.as_ref())
                .into_iter()
                .flatten(),
        )
        .collect();
    for (i, rule) in policy.rules.iter().enumerate() {
        let mut found: Option<String> = None;
        if let Some(req) = &rule.on_exit_codes {
            for cs in &statuses {
                if req.container_name.as_ref().is_some_and(|n| *n != cs.name) {
                    continue;
                }
                let Some(code) = cs
                    .state
                    .as_ref()
                    .and_then(|s| s.terminated.as_ref())
                    .map(|t| t.exit_code)
                else {
                    continue;
                };
                if code == 0 {
                    continue;
                }
                let listed = req.values.contains(&code);
                let hit = match req.operator.as_str() {
                    "In" => listed,
                    "NotIn" => !listed,
                    _ => false,
                };
                if hit {
                    found = Some(format!(
                        "Container {} for pod {ns}/{name} failed with exit code {code} matching FailJob rule at index {i}",
                        cs.name
                    ));
                    break;
                }
            }
        }
        if found.is_none() {
            let conditions = status
                .and_then(|s| s.conditions.as_deref())
                .unwrap_or_default();
            for pattern in rule.on_pod_conditions.as_deref().unwrap_or_default() {
                let want = if pattern.status.is_empty() {
                    "True"
                } else {
                    pattern.status.as_str()
                };
                if conditions
                    .iter()
                    .any(|c| c.type_ == pattern.type_ && c.status == want)
                {
                    found = Some(format!(
                        "Pod {ns}/{name} has condition {} matching FailJob rule at index {i}",
                        pattern.type_
                    ));
                    break;
                }
            }
        }
        if let Some(message) = found {
            return match rule.action.as_str() {
                "FailJob" => Action::FailJob(message),
                "FailIndex" => Action::FailIndex,
                "Ignore" => Action::Ignore,
                _ => Action::Count,
            };
        }
    }
    Action::Count
}

/// The first delay between retries; it doubles per consecutive failure.
pub const BACKOFF_BASE: Duration = Duration::from_secs(10);
/// The longest delay between retries.
pub const BACKOFF_MAX: Duration = Duration::from_secs(360);

/// How long to wait before creating a replacement: `failures` consecutive
/// failures since the last success, the last at `last_failure`.
pub fn backoff_remaining(failures: u32, last_failure: Timestamp, now: Timestamp) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let mut delay = BACKOFF_BASE;
    for _ in 1..failures {
        delay = (delay * 2).min(BACKOFF_MAX);
    }
    let elapsed_ms = now.as_millisecond() - last_failure.as_millisecond();
    let elapsed = Duration::from_millis(u64::try_from(elapsed_ms).unwrap_or(0));
    delay.saturating_sub(elapsed)
}

/// The Job's retry memory (kube's backoff record): failures since the
/// last success and when the last one happened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackoffRecord {
    /// Consecutive failures since the last success.
    pub failures: u32,
    /// When the last of them finished.
    pub last_failure: Option<Timestamp>,
}

impl BackoffRecord {
    /// The record rebuilt from finished pods `(finish time, failed)`.
    pub fn from_history(mut finished: Vec<(Timestamp, bool)>) -> BackoffRecord {
        finished.sort();
        let failures = finished.iter().rev().take_while(|(_, f)| *f).count();
        BackoffRecord {
            failures: u32::try_from(failures).unwrap_or(u32::MAX),
            last_failure: finished.last().filter(|(_, f)| *f).map(|(t, _)| *t),
        }
    }

    /// The record after pods newly succeeded and failed (finish times).
    pub fn update(
        self,
        mut succeeded: Vec<Timestamp>,
        mut failed: Vec<Timestamp>,
    ) -> BackoffRecord {
        succeeded.sort();
        failed.sort();
        let Some(last_success) = succeeded.last().copied() else {
            let Some(last) = failed.last().copied() else {
                return self;
            };
            let n = u32::try_from(failed.len()).unwrap_or(u32::MAX);
            return BackoffRecord {
                failures: self.failures.saturating_add(n),
                last_failure: Some(last),
            };
        };
        let after: Vec<Timestamp> = failed.into_iter().filter(|t| *t > last_success).collect();
        BackoffRecord {
            failures: u32::try_from(after.len()).unwrap_or(u32::MAX),
            last_failure: after.last().copied(),
        }
    }

    /// How long to wait before creating replacements at `now`.
    pub fn remaining(&self, now: Timestamp) -> Duration {
        match self.last_failure {
            Some(last) => backoff_remaining(self.failures, last, now),
            None => Duration::ZERO,
        }
    }
}

/// When the pod finished: its containers' latest termination, else its
/// Ready condition's last change, else its deletion or creation time.
pub fn finish_time(pod: &Pod) -> Option<Timestamp> {
    let status = pod.status.as_ref();
    let containers = status
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref())
        .map(|t| t.0)
        .max();
    containers
        .or_else(|| {
            status
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten()
                .find(|c| c.type_ == "Ready" && c.status == "False")
                .and_then(|c| c.last_transition_time.as_ref())
                .map(|t| t.0)
        })
        .or_else(|| pod.metadata.deletion_timestamp.as_ref().map(|t| t.0))
        .or_else(|| pod.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn failed_pod(exit: i32, container: &str, conditions: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "status": {
                "phase": "Failed",
                "conditions": conditions,
                "containerStatuses": [{
                    "name": container, "image": "i", "imageID": "", "ready": false,
                    "restartCount": 0,
                    "state": {"terminated": {"exitCode": exit}}
                }]
            }
        }))
        .expect("pod")
    }

    fn policy(rules: serde_json::Value) -> PodFailurePolicy {
        serde_json::from_value(json!({"rules": rules})).expect("policy")
    }

    #[test]
    fn failure_policy_decisions() {
        let p = policy(json!([
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
            {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
            {"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [7]}},
            {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [1, 2]}},
            {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [2]}},
        ]));
        let disrupted = json!([{"type": "DisruptionTarget", "status": "True"}]);
        let cases = [
            (failed_pod(42, "main", json!([])), Action::FailJob(
                "Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 1".into())),
            (failed_pod(42, "side", json!([])), Action::Count),
            (failed_pod(7, "side", json!([])), Action::FailIndex),
            (failed_pod(42, "main", disrupted), Action::Ignore),
            (failed_pod(1, "main", json!([])), Action::Count),
            (failed_pod(2, "main", json!([])), Action::FailJob(
                "Container main for pod ns/p failed with exit code 2 matching FailJob rule at index 4".into())),
            // Exit code 0 never matches.
            (failed_pod(0, "main", json!([])), Action::Count),
        ];
        for (pod, want) in cases {
            assert_eq!(evaluate(Some(&p), &pod), want);
        }
        let by_condition = policy(json!([
            {"action": "FailJob", "onPodConditions": [{"type": "ConfigIssue", "status": "True"}]},
        ]));
        assert_eq!(
            evaluate(
                Some(&by_condition),
                &failed_pod(
                    1,
                    "main",
                    json!([{"type": "ConfigIssue", "status": "True"}])
                )
            ),
            Action::FailJob(
                "Pod ns/p has condition ConfigIssue matching FailJob rule at index 0".into()
            )
        );
        assert_eq!(
            evaluate(None, &failed_pod(42, "main", json!([]))),
            Action::Count
        );
    }

    #[test]
    fn backoff_record_follows_kube() {
        let t = |s: i64| Timestamp::from_second(1_700_000_000 + s).expect("ts");
        let none = BackoffRecord::default();
        let cases = [
            (none, vec![], vec![], 0, None),
            (none, vec![], vec![t(1), t(2)], 2, Some(t(2))),
            (
                BackoffRecord {
                    failures: 3,
                    last_failure: Some(t(0)),
                },
                vec![],
                vec![t(5)],
                4,
                Some(t(5)),
            ),
            (
                BackoffRecord {
                    failures: 3,
                    last_failure: Some(t(0)),
                },
                vec![t(5)],
                vec![],
                0,
                None,
            ),
            (
                BackoffRecord {
                    failures: 3,
                    last_failure: Some(t(0)),
                },
                vec![t(5)],
                vec![t(4), t(6), t(7)],
                2,
                Some(t(7)),
            ),
        ];
        for (prior, ok, failed, want_n, want_last) in cases {
            let r = prior.update(ok, failed);
            assert_eq!((r.failures, r.last_failure), (want_n, want_last));
        }
        let h = BackoffRecord::from_history(vec![(t(3), true), (t(1), false), (t(2), true)]);
        assert_eq!((h.failures, h.last_failure), (2, Some(t(3))));
    }

    #[test]
    fn backoff_doubles_from_ten_seconds_up_to_six_minutes() {
        let t0: Timestamp = "2024-01-01T00:00:00Z".parse().expect("ts");
        let at = |s: i64| Timestamp::from_second(t0.as_second() + s).expect("ts");
        let cases = [
            (0, 0, 0),
            (1, 0, 10),
            (1, 4, 6),
            (1, 10, 0),
            (2, 0, 20),
            (3, 0, 40),
            (4, 0, 80),
            (5, 0, 160),
            (6, 0, 320),
            (7, 0, 360),
            (20, 0, 360),
            (20, 100, 260),
        ];
        for (failures, elapsed, want) in cases {
            assert_eq!(
                backoff_remaining(failures, t0, at(elapsed)),
                Duration::from_secs(want),
                "{failures} failures, {elapsed}s later"
            );
        }
    }
}
