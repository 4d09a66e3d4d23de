//! Revisions: `deployment.kubernetes.io/revision` on ReplicaSets and the
//! Deployment, the revision history of a reused ReplicaSet, the
//! desired/max replicas annotations, and which Deployment annotations a
//! ReplicaSet copies.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::ReplicaSet;

/// A ReplicaSet's (and the Deployment's) revision.
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// Earlier revisions of a reused ReplicaSet, comma-separated.
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
/// The Deployment's replicas when the ReplicaSet was last scaled.
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
/// The Deployment's replicas + maxSurge then.
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
/// The longest revision history kept, in characters.
pub const MAX_REVISION_HISTORY_CHARS: usize = 2000;

/// Deployment annotations a ReplicaSet does not copy.
const SKIP_COPY: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
];

/// A ReplicaSet's revision (0 when absent or not a number).
pub fn revision(rs: &ReplicaSet) -> i64 {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// The highest revision among `sets`.
pub fn max_revision<'a>(sets: impl IntoIterator<Item = &'a ReplicaSet>) -> i64 {
    sets.into_iter().map(revision).max().unwrap_or(0)
}

/// Copies the Deployment's annotations (but the skipped ones) onto a
/// ReplicaSet's; whether anything changed.
pub fn copy_deployment_annotations(
    from: &BTreeMap<String, String>,
    to: &mut BTreeMap<String, String>,
) -> bool {
    let mut changed = false;
    for (k, v) in from {
        if SKIP_COPY.contains(&k.as_str()) || to.get(k) == Some(v) {
            continue;
        }
        to.insert(k.clone(), v.clone());
        changed = true;
    }
    changed
}

/// Sets desired/max replicas annotations; whether they changed.
pub fn set_replicas_annotations(
    annotations: &mut BTreeMap<String, String>,
    desired: i32,
    max: i32,
) -> bool {
    let mut changed = false;
    for (k, v) in [(DESIRED_REPLICAS, desired), (MAX_REPLICAS, max)] {
        let v = v.to_string();
        if annotations.get(k) != Some(&v) {
            annotations.insert(k.to_owned(), v);
            changed = true;
        }
    }
    changed
}

/// Whether the desired/max replicas annotations differ from these.
pub fn replicas_annotations_need_update(
    annotations: Option<&BTreeMap<String, String>>,
    desired: i32,
    max: i32,
) -> bool {
    let get = |k: &str| annotations.and_then(|a| a.get(k)).cloned();
    get(DESIRED_REPLICAS) != Some(desired.to_string()) || get(MAX_REPLICAS) != Some(max.to_string())
}

/// kube's `SetNewReplicaSetAnnotations`: copies the Deployment's
/// annotations, raises the revision to `new_revision` (recording the old
/// one in the history, bounded to 2000 characters) and, for a ReplicaSet
/// about to be created (`exists` false), sets desired/max replicas.
/// Whether anything changed.
pub fn set_new_rs_annotations(
    deployment_annotations: &BTreeMap<String, String>,
    annotations: &mut BTreeMap<String, String>,
    new_revision: i64,
    exists: bool,
    replicas: (i32, i32),
) -> bool {
    let mut changed = copy_deployment_annotations(deployment_annotations, annotations);
    let old = annotations.get(REVISION).cloned();
    let old_int = match old.as_deref() {
        None | Some("") => 0,
        Some(s) => match s.parse::<i64>() {
            Ok(n) => n,
            Err(_) => return changed,
        },
    };
    if old_int < new_revision {
        annotations.insert(REVISION.to_owned(), new_revision.to_string());
        changed = true;
        if let Some(old) = old.filter(|o| !o.is_empty()) {
            let history = annotations
                .get(REVISION_HISTORY)
                .cloned()
                .unwrap_or_default();
            if history.is_empty() {
                annotations.insert(REVISION_HISTORY.to_owned(), old);
            } else {
                let mut entries: Vec<&str> = history.split(',').collect();
                let mut total = history.len() + old.len() + 1;
                let mut start = 0;
                while total > MAX_REVISION_HISTORY_CHARS && start < entries.len() {
                    total -= entries[start].len() + 1;
                    start += 1;
                }
                if total <= MAX_REVISION_HISTORY_CHARS {
                    entries.drain(..start);
                    entries.push(&old);
                    let joined = entries.join(",");
                    annotations.insert(REVISION_HISTORY.to_owned(), joined);
                }
            }
        }
    }
    if !exists && set_replicas_annotations(annotations, replicas.0, replicas.1) {
        changed = true;
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn new_rs_gets_revision_and_replicas() {
        let d = map(&[
            ("kubernetes.io/change-cause", "v2"),
            (REVISION, "7"),
            ("kubectl.kubernetes.io/last-applied-configuration", "{}"),
        ]);
        let mut a = BTreeMap::new();
        assert!(set_new_rs_annotations(&d, &mut a, 3, false, (4, 5)));
        assert_eq!(
            a,
            map(&[
                ("kubernetes.io/change-cause", "v2"),
                (REVISION, "3"),
                (DESIRED_REPLICAS, "4"),
                (MAX_REPLICAS, "5")
            ])
        );
        assert!(!set_new_rs_annotations(&d, &mut a, 3, true, (4, 5)));
    }

    #[test]
    fn reused_rs_bumps_revision_and_keeps_history() {
        let mut a = map(&[(REVISION, "1")]);
        assert!(set_new_rs_annotations(
            &BTreeMap::new(),
            &mut a,
            3,
            true,
            (1, 1)
        ));
        assert_eq!(a.get(REVISION).map(String::as_str), Some("3"));
        assert_eq!(a.get(REVISION_HISTORY).map(String::as_str), Some("1"));
        assert!(set_new_rs_annotations(
            &BTreeMap::new(),
            &mut a,
            5,
            true,
            (1, 1)
        ));
        assert_eq!(a.get(REVISION_HISTORY).map(String::as_str), Some("1,3"));
        // Never lowered.
        assert!(!set_new_rs_annotations(
            &BTreeMap::new(),
            &mut a,
            4,
            true,
            (1, 1)
        ));
        assert_eq!(a.get(REVISION).map(String::as_str), Some("5"));
        // An unparseable revision is left alone.
        let mut bad = map(&[(REVISION, "x")]);
        assert!(!set_new_rs_annotations(
            &BTreeMap::new(),
            &mut bad,
            2,
            true,
            (1, 1)
        ));
    }

    #[test]
    fn history_is_bounded() {
        let long = vec!["1234567890"; 190].join(",");
        let mut a = map(&[(REVISION, "99"), (REVISION_HISTORY, &long)]);
        set_new_rs_annotations(&BTreeMap::new(), &mut a, 100, true, (1, 1));
        let h = a.get(REVISION_HISTORY).cloned().unwrap_or_default();
        assert!(h.len() <= MAX_REVISION_HISTORY_CHARS, "{}", h.len());
        assert!(h.ends_with(",99"));
    }

    #[test]
    fn replicas_annotations() {
        let mut a = BTreeMap::new();
        assert!(replicas_annotations_need_update(Some(&a), 3, 4));
        assert!(set_replicas_annotations(&mut a, 3, 4));
        assert!(!replicas_annotations_need_update(Some(&a), 3, 4));
        assert!(!set_replicas_annotations(&mut a, 3, 4));
    }
}
