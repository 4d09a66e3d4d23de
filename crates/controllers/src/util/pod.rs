//! Pod states as kube's controllers read them.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

/// Active: neither terminating (deletionTimestamp) nor finished
/// (phase Succeeded or Failed).
pub fn is_active(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    pod.metadata.deletion_timestamp.is_none() && !matches!(phase, Some("Succeeded" | "Failed"))
}

/// Whether the pod's `Ready` condition is `True`.
pub fn is_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// When the pod became Ready (the Ready condition's lastTransitionTime;
/// the epoch if it has none), or `None` if it is not Ready.
pub fn ready_since(pod: &Pod) -> Option<Timestamp> {
    let cond = pod
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?;
    if cond.status != "True" {
        return None;
    }
    Some(
        cond.last_transition_time
            .as_ref()
            .map(|t| t.0)
            .unwrap_or(Timestamp::UNIX_EPOCH),
    )
}

/// Available: Ready for at least `min_ready_seconds` at `now` (kube's
/// `IsPodAvailable`).
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    match ready_since(pod) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(since) => {
            let needed = k8s_openapi::jiff::SignedDuration::from_secs(i64::from(min_ready_seconds));
            since.checked_add(needed).is_ok_and(|at| at < now)
        }
    }
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
        .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(i64::from(
            min_ready_seconds,
        )))
        .ok()?;
    let left = at.duration_since(now);
    if left.is_negative() {
        return None;
    }
    std::time::Duration::try_from(left)
        .ok()
        .map(|d| d + std::time::Duration::from_millis(100))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn pod(phase: &str, ready: Option<Timestamp>) -> Pod {
        Pod {
            status: Some(PodStatus {
                phase: Some(phase.to_owned()),
                conditions: ready.map(|t| {
                    vec![PodCondition {
                        type_: "Ready".to_owned(),
                        status: "True".to_owned(),
                        last_transition_time: Some(Time(t)),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn active_ready_available() {
        let now = Timestamp::now();
        let ten_ago = now - k8s_openapi::jiff::SignedDuration::from_secs(10);
        assert!(is_active(&pod("Running", None)));
        assert!(!is_active(&pod("Failed", None)));
        assert!(!is_active(&pod("Succeeded", None)));
        let mut deleting = pod("Running", None);
        deleting.metadata.deletion_timestamp = Some(Time(now));
        assert!(!is_active(&deleting));
        assert!(!is_ready(&pod("Running", None)));
        let p = pod("Running", Some(ten_ago));
        assert!(is_ready(&p));
        assert!(is_available(&p, 0, now));
        assert!(is_available(&p, 5, now));
        assert!(!is_available(&p, 10, now));
        assert!(!is_available(&p, 30, now));
        assert!(until_available(&p, 30, now).is_some());
        assert!(until_available(&p, 5, now).is_none());
    }
}
