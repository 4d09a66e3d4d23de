//! A pod's state as kube's controllers read it: phase, active,
//! terminating, ready, available (kube's `podutil`), and its name, UID,
//! labels and annotations.

use k8s_openapi::api::core::v1::{Pod, PodCondition};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// The pod's phase (`Pending` when unset).
pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

/// Finished: phase `Succeeded` or `Failed`.
pub fn is_terminal(pod: &Pod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

/// Marked for deletion (`deletionTimestamp` set).
pub fn is_deleting(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// Active: neither being deleted nor finished.
pub fn is_active(pod: &Pod) -> bool {
    !is_terminal(pod) && !is_deleting(pod)
}

/// Being deleted but not yet finished (kube's "terminating").
pub fn is_terminating(pod: &Pod) -> bool {
    is_deleting(pod) && !is_terminal(pod)
}

/// The pod's `Ready` condition when it is `True`.
fn ready_condition(pod: &Pod) -> Option<&PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .filter(|c| c.status == "True")
}

/// Whether the pod's `Ready` condition is `True`.
pub fn is_ready(pod: &Pod) -> bool {
    ready_condition(pod).is_some()
}

/// When the pod became Ready (the Ready condition's lastTransitionTime;
/// the epoch if it has none), or `None` if it is not Ready.
pub fn ready_since(pod: &Pod) -> Option<Timestamp> {
    ready_condition(pod).map(|c| {
        c.last_transition_time
            .as_ref()
            .map_or(Timestamp::UNIX_EPOCH, |t| t.0)
    })
}

/// Available: Ready, and for longer than `min_ready_seconds` at `now`
/// (kube's `IsPodAvailable`: a Ready condition without a transition time
/// is available only when `min_ready_seconds` is 0).
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    let Some(ready) = ready_condition(pod) else {
        return false;
    };
    if min_ready_seconds <= 0 {
        return true;
    }
    let Some(since) = ready.last_transition_time.as_ref() else {
        return false;
    };
    let needed = SignedDuration::from_secs(i64::from(min_ready_seconds));
    since.0.checked_add(needed).is_ok_and(|at| at < now)
}

/// How long until a Ready pod becomes available (`None` if it is not Ready
/// or already available): when to look again.
pub fn until_available(
    pod: &Pod,
    min_ready_seconds: i32,
    now: Timestamp,
) -> Option<std::time::Duration> {
    let since = ready_since(pod)?;
    if min_ready_seconds <= 0 {
        return None;
    }
    let at = since
        .checked_add(SignedDuration::from_secs(i64::from(min_ready_seconds)))
        .ok()?;
    let left = at.duration_since(now);
    if left.is_negative() {
        return None;
    }
    std::time::Duration::try_from(left)
        .ok()
        .map(|d| d + std::time::Duration::from_millis(100))
}

/// The pod's name (empty when unset).
pub fn name(pod: &Pod) -> &str {
    pod.metadata.name.as_deref().unwrap_or("")
}

/// The pod's UID (empty when unset).
pub fn uid(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or("")
}

/// A label's value.
pub fn label<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata.labels.as_ref()?.get(key).map(String::as_str)
}

/// An annotation's value.
pub fn annotation<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn pod(phase: &str, ready: Option<Option<Timestamp>>) -> Pod {
        Pod {
            status: Some(PodStatus {
                phase: Some(phase.to_owned()),
                conditions: ready.map(|t| {
                    vec![PodCondition {
                        type_: "Ready".to_owned(),
                        status: "True".to_owned(),
                        last_transition_time: t.map(Time),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn active_terminal_terminating() {
        let now = Timestamp::now();
        let cases = [
            ("Running", false, true, false, false),
            ("Pending", false, true, false, false),
            ("Failed", false, false, true, false),
            ("Succeeded", false, false, true, false),
            ("Running", true, false, false, true),
            ("Succeeded", true, false, true, false),
        ];
        for (phase, deleting, active, terminal, terminating) in cases {
            let mut p = pod(phase, None);
            if deleting {
                p.metadata.deletion_timestamp = Some(Time(now));
            }
            assert_eq!(is_active(&p), active, "{phase} {deleting}");
            assert_eq!(is_terminal(&p), terminal, "{phase} {deleting}");
            assert_eq!(is_terminating(&p), terminating, "{phase} {deleting}");
        }
        assert_eq!(phase(&Pod::default()), "Pending");
    }

    #[test]
    fn ready_and_available() {
        let now = Timestamp::now();
        let ten_ago = now - SignedDuration::from_secs(10);
        assert!(!is_ready(&pod("Running", None)));
        let p = pod("Running", Some(Some(ten_ago)));
        assert!(is_ready(&p));
        let cases = [(0, true), (5, true), (10, false), (30, false)];
        for (min, want) in cases {
            assert_eq!(is_available(&p, min, now), want, "{min}");
        }
        assert!(until_available(&p, 30, now).is_some());
        assert!(until_available(&p, 5, now).is_none());
        // Ready without a transition time: available only without a
        // minReadySeconds, as kube's IsPodAvailable.
        let untimed = pod("Running", Some(None));
        assert!(is_available(&untimed, 0, now));
        assert!(!is_available(&untimed, 5, now));
    }
}
