//! The pod-template-hash: a ReplicaSet's name suffix and the label that
//! keeps its pods apart from its siblings', and template equality that
//! ignores it.

use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::Value;

use crate::util::revisions;

/// The label a Deployment adds to its ReplicaSets' selector and template.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// The hash of a template as the Deployment stores it (the API server
/// defaulted it, so it is stable), salted with the collision count: an
/// FNV-32a of its canonical JSON, written as kube writes it (decimal,
/// then each digit mapped to a safe letter).
pub fn compute_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let canonical = serde_json::to_vec(&prune(
        serde_json::to_value(template).unwrap_or(Value::Null),
    ))
    .unwrap_or_default();
    let mut hash = revisions::fnv32a(&canonical);
    if let Some(count) = collision_count {
        let mut salt = [0u8; 8];
        salt[..4].copy_from_slice(&(count as u32).to_le_bytes());
        hash = revisions::fnv32a_extend(hash, &salt);
    }
    revisions::safe_encode(&hash.to_string())
}

/// Drops nulls, empty maps and empty lists (Go's semantic equality treats
/// nil and empty alike), recursively; object keys are sorted by serde_json.
pub fn prune(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, prune(v)))
                .filter(|(_, v)| !is_empty(v))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(prune).collect()),
        other => other,
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// kube's `EqualIgnoreHash`: the templates are equal once the
/// pod-template-hash label is left out of both.
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    let strip = |t: &PodTemplateSpec| {
        let mut t = t.clone();
        if let Some(labels) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            labels.remove(POD_TEMPLATE_HASH);
        }
        prune(serde_json::to_value(t).unwrap_or(Value::Null))
    };
    strip(a) == strip(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template(v: Value) -> PodTemplateSpec {
        serde_json::from_value(v).unwrap_or_default()
    }

    #[test]
    fn hash_is_stable_and_safe() {
        let t = template(
            json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}),
        );
        let h = compute_hash(&t, None);
        assert_eq!(h, compute_hash(&t.clone(), None));
        assert!(!h.is_empty() && h.len() <= 10);
        assert!(
            h.bytes()
                .all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b)),
            "{h}"
        );
        // Nil and empty collections hash alike.
        let same = template(
            json!({"metadata": {"labels": {"app": "web"}, "annotations": {}}, "spec": {"containers": [{"name": "c", "image": "nginx", "env": []}]}}),
        );
        assert_eq!(h, compute_hash(&same, None));
        // A change, or a collision count, changes it.
        let other = template(
            json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}),
        );
        assert_ne!(h, compute_hash(&other, None));
        assert_ne!(h, compute_hash(&t, Some(1)));
        assert_ne!(compute_hash(&t, Some(1)), compute_hash(&t, Some(2)));
    }

    #[test]
    fn equality_ignores_the_hash_label() {
        let a = template(
            json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}),
        );
        let b = template(
            json!({"metadata": {"labels": {"app": "web", "pod-template-hash": "abc"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}),
        );
        let c = template(
            json!({"metadata": {"labels": {"app": "web"}, "annotations": {"kubectl.kubernetes.io/restartedAt": "now"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}),
        );
        assert!(equal_ignore_hash(&a, &b));
        assert!(!equal_ignore_hash(&a, &c));
        let only_hash = template(json!({"metadata": {"labels": {"pod-template-hash": "x"}}}));
        assert!(equal_ignore_hash(&only_hash, &PodTemplateSpec::default()));
    }
}
