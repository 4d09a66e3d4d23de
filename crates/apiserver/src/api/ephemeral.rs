//! `pods/ephemeralcontainers`: the only way to add a debug container to a
//! running pod (`kubectl debug`). The request (an update, or a patch of
//! any kind) yields a new list; existing entries may not change or go,
//! new ones are checked as kube checks an EphemeralContainer.

use serde_json::{Value, json};

use crate::error::{ApiError, Cause};
use crate::meta;

/// A pod's own update (PUT or PATCH of the pod, not of this subresource)
/// may not change its ephemeral containers, as kube refuses.
pub fn update_keeps_them(
    target: &crate::request::Target,
    current: &Value,
    new: &Value,
) -> Result<(), ApiError> {
    if target.resource.group.is_empty()
        && target.resource.plural == "pods"
        && target.subresource.is_empty()
        && list(current, "ephemeralContainers") != list(new, "ephemeralContainers")
    {
        return Err(ApiError::invalid(
            "",
            "Pod",
            &target.name,
            vec![Cause::forbidden("spec", crate::kinds::POD_UPDATE_FORBIDDEN)],
        ));
    }
    Ok(())
}

/// Fields a Container has that an ephemeral container may not set.
const FORBIDDEN: &[&str] = &[
    "ports",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle",
    "resources",
    "resizePolicy",
    "restartPolicy",
];

fn list<'a>(pod: &'a Value, field: &str) -> &'a [Value] {
    pod.pointer(&format!("/spec/{field}"))
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn name_of(c: &Value) -> &str {
    c.get("name").and_then(Value::as_str).unwrap_or("")
}

/// The pod `current` with `new` as its ephemeral containers, or kube's
/// 422 naming what is wrong.
pub fn next_pod(current: &Value, new: Value) -> Result<Value, ApiError> {
    let new_list = match new {
        Value::Null => Vec::new(),
        Value::Array(a) => a,
        other => {
            return Err(ApiError::bad_request(format!(
                "spec.ephemeralContainers must be a list, not {other}"
            )));
        }
    };
    let causes = check(current, &new_list);
    if !causes.is_empty() {
        return Err(ApiError::invalid(
            "",
            "Pod",
            meta::meta_str(current, "name"),
            causes,
        ));
    }
    let mut next = current.clone();
    next["spec"]["ephemeralContainers"] = Value::Array(new_list);
    Ok(next)
}

fn check(current: &Value, new: &[Value]) -> Vec<Cause> {
    let mut causes = Vec::new();
    let old = list(current, "ephemeralContainers");
    for o in old {
        let name = name_of(o);
        match new.iter().find(|n| name_of(n) == name) {
            None => causes.push(Cause::forbidden(
                "spec.ephemeralContainers",
                &format!("existing ephemeral containers \"{name}\" may not be removed"),
            )),
            Some(n) if !same_container(o, n) => causes.push(Cause::forbidden(
                "spec.ephemeralContainers",
                &format!("existing ephemeral containers \"{name}\" may not be changed"),
            )),
            Some(_) => {}
        }
    }
    let mut seen: std::collections::HashSet<String> = ["containers", "initContainers"]
        .iter()
        .flat_map(|l| list(current, l))
        .map(|c| name_of(c).to_owned())
        .collect();
    let targets: Vec<&str> = ["containers", "initContainers"]
        .iter()
        .flat_map(|l| list(current, l))
        .map(name_of)
        .collect();
    for (i, c) in new.iter().enumerate() {
        let at = format!("spec.ephemeralContainers[{i}]");
        if !c.is_object() {
            causes.push(Cause::invalid(at, c, "must be an object"));
            continue;
        }
        let name = name_of(c);
        if name.is_empty() {
            causes.push(Cause::required(format!("{at}.name")));
        } else if !meta::is_dns1123_label(name) {
            causes.push(Cause::invalid(
                format!("{at}.name"),
                &json!(name),
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
            ));
        } else if !seen.insert(name.to_owned()) {
            causes.push(Cause::duplicate(format!("{at}.name"), &json!(name)));
        }
        if c.get("image")
            .and_then(Value::as_str)
            .is_none_or(|s| s.trim().is_empty())
        {
            causes.push(Cause::required(format!("{at}.image")));
        }
        for f in FORBIDDEN {
            let set = match c.get(*f) {
                None | Some(Value::Null) => false,
                Some(Value::Object(m)) => !m.is_empty(),
                Some(Value::Array(a)) => !a.is_empty(),
                Some(_) => true,
            };
            if set {
                causes.push(Cause::forbidden(
                    format!("{at}.{f}"),
                    "cannot be set for an Ephemeral Container",
                ));
            }
        }
        if let Some(t) = c.get("targetContainerName").and_then(Value::as_str)
            && !t.is_empty()
            && !targets.contains(&t)
        {
            causes.push(Cause::new(
                "FieldValueNotFound",
                format!("{at}.targetContainerName"),
                format!("Not found: \"{t}\""),
            ));
        }
    }
    causes
}

/// Equal but for the defaults a server fills in.
fn same_container(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            for f in [
                "terminationMessagePath",
                "terminationMessagePolicy",
                "imagePullPolicy",
            ] {
                if m.get(f).is_some_and(|x| x.as_str().is_some()) {
                    m.remove(f);
                }
            }
        }
        v
    };
    strip(a) == strip(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Value {
        json!({"metadata": {"name": "web"}, "spec": {
            "containers": [{"name": "app", "image": "busybox"}],
            "ephemeralContainers": [{"name": "dbg", "image": "busybox"}]
        }})
    }

    fn message(e: ApiError) -> String {
        e.message
    }

    #[test]
    fn adds_a_new_container() {
        let next = next_pod(
            &pod(),
            json!([{"name": "dbg", "image": "busybox"}, {"name": "dbg2", "image": "busybox", "targetContainerName": "app"}]),
        )
        .unwrap();
        assert_eq!(list(&next, "ephemeralContainers").len(), 2);
    }

    #[test]
    fn refuses_removal_change_and_duplicates() {
        let e = next_pod(&pod(), json!([])).unwrap_err();
        assert_eq!(e.code, 422);
        assert!(message(e).contains("existing ephemeral containers \"dbg\" may not be removed"));
        let e = next_pod(&pod(), json!([{"name": "dbg", "image": "other"}])).unwrap_err();
        assert!(message(e).contains("may not be changed"));
        let e = next_pod(
            &pod(),
            json!([{"name": "dbg", "image": "busybox"}, {"name": "app", "image": "busybox"}]),
        )
        .unwrap_err();
        assert!(message(e).contains("spec.ephemeralContainers[1].name: Duplicate value: \"app\""),);
    }

    #[test]
    fn refuses_forbidden_fields_and_unknown_targets() {
        let e = next_pod(
            &pod(),
            json!([{"name": "dbg", "image": "busybox"},
                   {"name": "x", "image": "busybox", "ports": [{"containerPort": 80}],
                    "targetContainerName": "nope"}]),
        )
        .unwrap_err();
        let m = message(e);
        assert!(m.contains("Pod \"web\" is invalid"), "{m}");
        assert!(
            m.contains("spec.ephemeralContainers[1].ports: Forbidden: cannot be set for an Ephemeral Container"),
            "{m}"
        );
        assert!(
            m.contains("spec.ephemeralContainers[1].targetContainerName: Not found: \"nope\""),
            "{m}"
        );
        let e = next_pod(
            &pod(),
            json!([{"name": "dbg", "image": "busybox"}, {"name": "y"}]),
        )
        .unwrap_err();
        assert!(message(e).contains("spec.ephemeralContainers[1].image: Required value"));
    }
}
