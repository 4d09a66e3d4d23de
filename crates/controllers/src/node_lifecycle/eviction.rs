//! Taint-based eviction (kube's taint-eviction controller): a pod on a
//! node with NoExecute taints is deleted at once if it does not tolerate
//! one of them, after the shortest `tolerationSeconds` of the tolerations
//! used if they all are tolerated, and never if none of those sets
//! `tolerationSeconds`.

use k8s_openapi::api::core::v1::{Pod, Taint, Toleration};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// The reason of the DisruptionTarget condition set before deleting.
pub const CONDITION_REASON: &str = "DeletionByTaintManager";
/// Its message.
pub const CONDITION_MESSAGE: &str = "Taint manager: deleting due to NoExecute taint";
/// The reason of the events about it.
pub const EVENT_REASON: &str = "TaintManagerEviction";

/// What to do with a pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It stays.
    Keep,
    /// It is deleted now.
    Now,
    /// It is deleted at this time.
    At(Timestamp),
}

/// Whether `toleration` tolerates `taint` (kube's ToleratesTaint).
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    let effect = toleration.effect.as_deref().unwrap_or("");
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or("") {
        "" | "Equal" => {
            toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        "Exists" => true,
        _ => false,
    }
}

/// The NoExecute taints of a node's taint list.
pub fn no_execute(taints: &[Taint]) -> Vec<Taint> {
    taints
        .iter()
        .filter(|t| t.effect == "NoExecute")
        .cloned()
        .collect()
}

/// The verdict for `pod` on a node with these NoExecute `taints`, the
/// clock starting at `since` (when the pod was first seen under them).
pub fn verdict(pod: &Pod, taints: &[Taint], since: Timestamp) -> Verdict {
    if taints.is_empty() {
        return Verdict::Keep;
    }
    let tolerations = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or(&[]);
    let mut shortest: Option<i64> = None;
    for taint in taints {
        // The first toleration that tolerates the taint is the one used.
        let Some(used) = tolerations.iter().find(|t| tolerates(t, taint)) else {
            return Verdict::Now;
        };
        if let Some(seconds) = used.toleration_seconds {
            shortest = Some(shortest.map_or(seconds, |s| s.min(seconds)));
        }
    }
    match shortest {
        None => Verdict::Keep,
        Some(s) if s <= 0 => Verdict::Now,
        Some(s) => Verdict::At(since + SignedDuration::from_secs(s)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodSpec;

    fn taint(key: &str, value: Option<&str>) -> Taint {
        Taint {
            key: key.into(),
            value: value.map(Into::into),
            effect: "NoExecute".into(),
            time_added: None,
        }
    }

    fn tol(
        key: Option<&str>,
        op: &str,
        value: Option<&str>,
        effect: Option<&str>,
        secs: Option<i64>,
    ) -> Toleration {
        Toleration {
            key: key.map(Into::into),
            operator: Some(op.into()),
            value: value.map(Into::into),
            effect: effect.map(Into::into),
            toleration_seconds: secs,
        }
    }

    fn pod(tolerations: Vec<Toleration>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                tolerations: Some(tolerations),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    #[test]
    fn toleration_matching_follows_kube() {
        let t = taint("k", Some("v"));
        let cases = [
            (
                tol(Some("k"), "Equal", Some("v"), Some("NoExecute"), None),
                true,
            ),
            (tol(Some("k"), "Equal", Some("w"), None, None), false),
            (tol(Some("k"), "Exists", None, None, None), true),
            (tol(None, "Exists", None, None, None), true),
            (tol(None, "Exists", None, Some("NoSchedule"), None), false),
            (tol(Some("other"), "Exists", None, None, None), false),
            (tol(Some("k"), "", Some("v"), None, None), true),
            (tol(Some("k"), "Lt", Some("v"), None, None), false),
        ];
        for (toleration, expected) in cases {
            assert_eq!(tolerates(&toleration, &t), expected, "{toleration:?}");
        }
        // An empty value matches a taint without one.
        assert!(tolerates(
            &tol(Some("k"), "Equal", None, None, None),
            &taint("k", None)
        ));
    }

    #[test]
    fn verdicts_follow_the_shortest_used_toleration() {
        let unreachable = taint("node.kubernetes.io/unreachable", None);
        let other = taint("maintenance", None);
        let default_tolerations = vec![
            tol(
                Some("node.kubernetes.io/not-ready"),
                "Exists",
                None,
                Some("NoExecute"),
                Some(300),
            ),
            tol(
                Some("node.kubernetes.io/unreachable"),
                "Exists",
                None,
                Some("NoExecute"),
                Some(300),
            ),
        ];
        let p = pod(default_tolerations.clone());
        assert_eq!(verdict(&p, &[], at(0)), Verdict::Keep);
        assert_eq!(
            verdict(&p, std::slice::from_ref(&unreachable), at(10)),
            Verdict::At(at(310))
        );
        // A taint it does not tolerate: now.
        assert_eq!(
            verdict(&p, &[unreachable.clone(), other.clone()], at(10)),
            Verdict::Now
        );
        assert_eq!(
            verdict(&pod(vec![]), std::slice::from_ref(&unreachable), at(10)),
            Verdict::Now
        );
        // Forever without tolerationSeconds.
        let forever = pod(vec![tol(None, "Exists", None, None, None)]);
        assert_eq!(
            verdict(&forever, &[unreachable.clone(), other.clone()], at(10)),
            Verdict::Keep
        );
        // The shortest of the used ones.
        let mixed = pod(vec![
            tol(Some("maintenance"), "Exists", None, None, Some(5)),
            tol(
                Some("node.kubernetes.io/unreachable"),
                "Exists",
                None,
                None,
                Some(60),
            ),
        ]);
        assert_eq!(
            verdict(&mixed, &[unreachable.clone(), other], at(10)),
            Verdict::At(at(15))
        );
        // Zero or negative: now.
        let zero = pod(vec![tol(None, "Exists", None, None, Some(0))]);
        assert_eq!(
            verdict(&zero, std::slice::from_ref(&unreachable), at(10)),
            Verdict::Now
        );
        // The first matching toleration is the one used, even if a later
        // one would keep the pod forever.
        let first = pod(vec![
            tol(
                Some("node.kubernetes.io/unreachable"),
                "Exists",
                None,
                None,
                Some(30),
            ),
            tol(None, "Exists", None, None, None),
        ]);
        assert_eq!(verdict(&first, &[unreachable], at(0)), Verdict::At(at(30)));
    }

    #[test]
    fn only_no_execute_taints_count() {
        let mut soft = taint("a", None);
        soft.effect = "NoSchedule".into();
        let hard = taint("b", None);
        assert_eq!(no_execute(&[soft, hard.clone()]), vec![hard]);
    }
}
