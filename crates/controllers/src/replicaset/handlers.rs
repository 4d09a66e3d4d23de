//! Which sets a pod change concerns (kube's addPod/updatePod/deletePod),
//! and the expectations it fulfils.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};

use super::ReplicaKind;
use crate::util::expectations::Expectations;
use crate::util::owner;
use crate::util::queue::WorkQueue;
use crate::util::{key_of, pods as podutil, selector};

/// The set (in `sets`) a controller reference names, if it is there with
/// that uid.
pub(super) fn resolve<K: ReplicaKind>(
    sets: &Store<K>,
    namespace: &str,
    r: &k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
) -> Option<Arc<K>> {
    if r.kind != K::kind(&()) {
        return None;
    }
    let set = sets.get(&ObjectRef::new(&r.name).within(namespace))?;
    (set.meta().uid.as_deref() == Some(r.uid.as_str())).then_some(set)
}

/// Sets whose selector matches an orphan pod's labels.
pub(super) fn matching_sets<K: ReplicaKind>(sets: &Store<K>, pod: &Pod) -> Vec<Arc<K>> {
    let ns = pod.namespace().unwrap_or_default();
    let empty = Default::default();
    let labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
    sets.state()
        .into_iter()
        .filter(|s| s.namespace().unwrap_or_default() == ns)
        .filter(|s| {
            let sel = s.spec_view().selector;
            !selector::is_empty(&sel) && selector::matches(&sel, labels)
        })
        .collect()
}

pub(super) fn set_key<K: ReplicaKind>(set: &K) -> String {
    key_of(set.meta().namespace.as_deref(), &set.name_any())
}

/// Queues the sets a pod change concerns, and counts what the pod's
/// owner expected (kube's addPod/updatePod/deletePod).
pub(super) fn on_pod<K: ReplicaKind>(
    sets: &Store<K>,
    queue: &WorkQueue<String>,
    expectations: &Expectations,
    old: Option<&Pod>,
    new: Option<&Pod>,
) {
    let ns_of = |p: &Pod| p.namespace().unwrap_or_default();
    let pod_key = |p: &Pod| key_of(p.namespace().as_deref(), &p.name_any());
    let deleted = |p: &Pod| {
        if let Some(r) = owner::controller_of(&p.metadata)
            && let Some(set) = resolve(sets, &ns_of(p), r)
        {
            let key = set_key(set.as_ref());
            expectations.deletion_observed(&key, &pod_key(p));
            queue.add(key);
        }
    };
    match (old, new) {
        (None, Some(pod)) => {
            if pod.metadata.deletion_timestamp.is_some() {
                deleted(pod);
                return;
            }
            if let Some(r) = owner::controller_of(&pod.metadata) {
                if let Some(set) = resolve(sets, &ns_of(pod), r) {
                    let key = set_key(set.as_ref());
                    expectations.creation_observed(&key);
                    queue.add(key);
                }
                return;
            }
            for set in matching_sets(sets, pod) {
                queue.add(set_key(set.as_ref()));
            }
        }
        (Some(old), Some(cur)) => {
            if old.metadata.resource_version == cur.metadata.resource_version {
                return;
            }
            let labels_changed = old.metadata.labels != cur.metadata.labels;
            if cur.metadata.deletion_timestamp.is_some() {
                deleted(cur);
                if labels_changed {
                    deleted(old);
                }
                return;
            }
            let old_ref = owner::controller_of(&old.metadata);
            let cur_ref = owner::controller_of(&cur.metadata);
            let ref_changed = old_ref != cur_ref;
            if ref_changed
                && let Some(r) = old_ref
                && let Some(set) = resolve(sets, &ns_of(old), r)
            {
                queue.add(set_key(set.as_ref()));
            }
            if let Some(r) = cur_ref {
                if let Some(set) = resolve(sets, &ns_of(cur), r) {
                    let key = set_key(set.as_ref());
                    let min_ready = set.spec_view().min_ready_seconds;
                    if !podutil::is_ready(old) && podutil::is_ready(cur) && min_ready > 0 {
                        let secs = u64::try_from(min_ready).unwrap_or(0) + 1;
                        queue.add_after(key.clone(), Duration::from_secs(secs));
                    }
                    queue.add(key);
                }
                return;
            }
            if labels_changed || ref_changed {
                for set in matching_sets(sets, cur) {
                    queue.add(set_key(set.as_ref()));
                }
            }
        }
        (Some(old), None) => deleted(old),
        (None, None) => {}
    }
}
