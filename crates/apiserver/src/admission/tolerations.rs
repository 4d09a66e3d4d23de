//! DefaultTolerationSeconds: pods tolerate the `not-ready` and
//! `unreachable` NoExecute taints for 300 seconds unless they already
//! tolerate them.

use serde_json::{Value, json};

/// The taint of a node that is not ready.
pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
/// The taint of a node that cannot be reached.
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// How long the added tolerations last.
pub const DEFAULT_SECONDS: i64 = 300;

/// Whether a toleration covers the NoExecute taint `key` (an empty key
/// or effect matches everything).
fn covers(toleration: &Value, key: &str) -> bool {
    let t_key = toleration.get("key").and_then(Value::as_str).unwrap_or("");
    let effect = toleration
        .get("effect")
        .and_then(Value::as_str)
        .unwrap_or("");
    (t_key.is_empty() || t_key == key) && (effect.is_empty() || effect == "NoExecute")
}

/// Adds the default tolerations a pod lacks.
pub fn apply(pod: &mut Value) {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let entry = spec.entry("tolerations").or_insert_with(|| json!([]));
    if entry.is_null() {
        *entry = json!([]);
    }
    let Some(list) = entry.as_array_mut() else {
        return;
    };
    for key in [NOT_READY, UNREACHABLE] {
        if !list.iter().any(|t| covers(t, key)) {
            list.push(json!({
                "key": key,
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": DEFAULT_SECONDS,
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_both_tolerations() {
        let mut pod = json!({"spec": {"containers": []}});
        apply(&mut pod);
        assert_eq!(
            pod["spec"]["tolerations"],
            json!([
                {"key": NOT_READY, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            ])
        );
        // Idempotent.
        let before = pod.clone();
        apply(&mut pod);
        assert_eq!(pod, before);
    }

    #[test]
    fn keeps_existing_tolerations() {
        let mut pod = json!({"spec": {"tolerations": [
            {"key": NOT_READY, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10}]}});
        apply(&mut pod);
        let list = pod["spec"]["tolerations"].as_array().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0]["tolerationSeconds"], 10);
        assert_eq!(list[1]["key"], UNREACHABLE);
        // A toleration of everything covers both.
        let mut pod = json!({"spec": {"tolerations": [{"operator": "Exists"}]}});
        apply(&mut pod);
        assert_eq!(pod["spec"]["tolerations"].as_array().unwrap().len(), 1);
        // A NoSchedule toleration of the key does not.
        let mut pod = json!({"spec": {"tolerations": [
            {"key": UNREACHABLE, "operator": "Exists", "effect": "NoSchedule"}]}});
        apply(&mut pod);
        assert_eq!(pod["spec"]["tolerations"].as_array().unwrap().len(), 3);
    }
}
