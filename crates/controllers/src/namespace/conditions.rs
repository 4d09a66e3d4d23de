//! The deletion conditions kube's namespace controller keeps on a
//! Terminating namespace (what `kubectl describe namespace` shows).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::NamespaceCondition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// What one pass over a namespace's content found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Totals {
    /// Groups whose discovery failed.
    pub discovery_failures: Vec<String>,
    /// Resources whose deletion failed, with the error.
    pub delete_failures: Vec<String>,
    /// Objects left per group-resource (`pods`, `deployments.apps`).
    pub remaining: BTreeMap<String, usize>,
    /// Objects left per finalizer.
    pub finalizers: BTreeMap<String, usize>,
}

fn cond(type_: &str, failed: bool, reason: &str, message: String) -> NamespaceCondition {
    NamespaceCondition {
        type_: type_.to_owned(),
        status: if failed { "True" } else { "False" }.to_owned(),
        reason: Some(reason.to_owned()),
        message: Some(message),
        last_transition_time: None,
    }
}

/// The five conditions, in kube's order.
pub fn conditions(t: &Totals) -> Vec<NamespaceCondition> {
    let discovery = if t.discovery_failures.is_empty() {
        cond(
            "NamespaceDeletionDiscoveryFailure",
            false,
            "ResourcesDiscovered",
            "All resources successfully discovered".to_owned(),
        )
    } else {
        cond(
            "NamespaceDeletionDiscoveryFailure",
            true,
            "DiscoveryFailed",
            format!(
                "Discovery failed for some groups, {} failing: {}",
                t.discovery_failures.len(),
                t.discovery_failures.join(", ")
            ),
        )
    };
    let parsing = cond(
        "NamespaceDeletionGroupVersionParsingFailure",
        false,
        "ParsedGroupVersions",
        "All legacy kube types successfully parsed".to_owned(),
    );
    let content = if t.delete_failures.is_empty() {
        cond(
            "NamespaceDeletionContentFailure",
            false,
            "ContentDeleted",
            "All content successfully deleted, may be waiting on finalization".to_owned(),
        )
    } else {
        cond(
            "NamespaceDeletionContentFailure",
            true,
            "ContentDeletionFailed",
            format!(
                "Failed to delete all resource types, {} remaining: {}",
                t.delete_failures.len(),
                t.delete_failures.join(", ")
            ),
        )
    };
    let remaining = if t.remaining.is_empty() {
        cond(
            "NamespaceContentRemaining",
            false,
            "ContentRemoved",
            "All content successfully removed".to_owned(),
        )
    } else {
        let parts: Vec<String> = t
            .remaining
            .iter()
            .map(|(gr, n)| format!("{gr} has {n} resource instances"))
            .collect();
        cond(
            "NamespaceContentRemaining",
            true,
            "SomeResourcesRemain",
            format!("Some resources are remaining: {}", parts.join(", ")),
        )
    };
    let finalizers = if t.finalizers.is_empty() {
        cond(
            "NamespaceFinalizersRemaining",
            false,
            "ContentHasNoFinalizers",
            "All content-preserving finalizers finished".to_owned(),
        )
    } else {
        let parts: Vec<String> = t
            .finalizers
            .iter()
            .map(|(f, n)| format!("{f} in {n} resource instances"))
            .collect();
        cond(
            "NamespaceFinalizersRemaining",
            true,
            "SomeFinalizersRemain",
            format!(
                "Some content in the namespace has finalizers remaining: {}",
                parts.join(", ")
            ),
        )
    };
    vec![discovery, parsing, content, remaining, finalizers]
}

/// Merges `new` into `current`: a condition unchanged in status, reason
/// and message keeps its time; others are stamped `now`. Conditions of
/// other types stay. Returns the list and whether it changed.
pub fn merge(
    current: &[NamespaceCondition],
    new: Vec<NamespaceCondition>,
    now: Timestamp,
) -> (Vec<NamespaceCondition>, bool) {
    let mut out: Vec<NamespaceCondition> = current.to_vec();
    let mut changed = false;
    for mut c in new {
        match out.iter_mut().find(|o| o.type_ == c.type_) {
            Some(o) if o.status == c.status && o.reason == c.reason && o.message == c.message => {}
            Some(o) => {
                c.last_transition_time = Some(Time(now));
                *o = c;
                changed = true;
            }
            None => {
                c.last_transition_time = Some(Time(now));
                out.push(c);
                changed = true;
            }
        }
    }
    (out, changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_like_kube() {
        let mut t = Totals::default();
        t.remaining.insert("pods".to_owned(), 2);
        t.remaining.insert("deployments.apps".to_owned(), 1);
        t.finalizers.insert("example.com/pin".to_owned(), 1);
        let c = conditions(&t);
        assert_eq!(c.len(), 5);
        assert_eq!(c[3].status, "True");
        assert_eq!(
            c[3].message.as_deref(),
            Some(
                "Some resources are remaining: deployments.apps has 1 resource instances, pods has 2 resource instances"
            )
        );
        assert_eq!(
            c[4].message.as_deref(),
            Some(
                "Some content in the namespace has finalizers remaining: example.com/pin in 1 resource instances"
            )
        );
        let done = conditions(&Totals::default());
        assert!(done.iter().all(|c| c.status == "False"));
        assert_eq!(done[3].reason.as_deref(), Some("ContentRemoved"));
    }

    #[test]
    fn merge_keeps_times_of_unchanged_conditions() {
        let t0 = Timestamp::from_second(1000).unwrap_or(Timestamp::UNIX_EPOCH);
        let t1 = Timestamp::from_second(2000).unwrap_or(Timestamp::UNIX_EPOCH);
        let (first, changed) = merge(&[], conditions(&Totals::default()), t0);
        assert!(changed);
        let (again, changed) = merge(&first, conditions(&Totals::default()), t1);
        assert!(!changed);
        assert_eq!(again, first);
        let mut t = Totals::default();
        t.remaining.insert("pods".to_owned(), 1);
        let (next, changed) = merge(&first, conditions(&t), t1);
        assert!(changed);
        assert_eq!(next[3].last_transition_time, Some(Time(t1)));
        assert_eq!(next[0].last_transition_time, Some(Time(t0)));
    }
}
