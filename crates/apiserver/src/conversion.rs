//! Versions of one stored kind: `events.k8s.io/v1` Events are stored as
//! core `v1` Events (as kube-apiserver stores them), so both APIs see the
//! same objects. Objects are converted at the edges of every read and
//! write.

use serde_json::{Map, Value, json};

use crate::resources::Resource;

/// (events.k8s.io/v1 field, core/v1 field).
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

/// The fields both forms share under the same name.
const EVENT_SHARED: &[&str] = &[
    "metadata",
    "eventTime",
    "series",
    "reportingInstance",
    "action",
    "reason",
    "type",
    "related",
];

fn is_events_v1(resource: &Resource) -> bool {
    resource.group == "events.k8s.io" && resource.kind == "Event"
}

fn rename(
    obj: &Value,
    pairs: impl Iterator<Item = (&'static str, &'static str)> + Clone,
    api_version: &str,
) -> Value {
    let Some(map) = obj.as_object() else {
        return obj.clone();
    };
    let mut out = Map::new();
    out.insert(
        "apiVersion".to_owned(),
        Value::String(api_version.to_owned()),
    );
    out.insert("kind".to_owned(), Value::String("Event".to_owned()));
    for field in EVENT_SHARED {
        if let Some(v) = map.get(*field) {
            out.insert((*field).to_owned(), v.clone());
        }
    }
    for (from, to) in pairs.clone() {
        if let Some(v) = map.get(from).filter(|v| !v.is_null()) {
            out.insert(to.to_owned(), v.clone());
        }
    }
    // Fields of neither form pass through, so that decoding reports them
    // as unknown (Strict refuses them) instead of their vanishing here.
    let known: Vec<&str> = pairs.flat_map(|(a, b)| [a, b]).collect();
    for (key, value) in map {
        if key != "apiVersion"
            && key != "kind"
            && !EVENT_SHARED.contains(&key.as_str())
            && !known.contains(&key.as_str())
        {
            out.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
    Value::Object(out)
}

fn is_hpa_v1(resource: &Resource) -> bool {
    resource.group == "autoscaling"
        && resource.version == "v1"
        && resource.kind == "HorizontalPodAutoscaler"
}

/// The stored form of an object written through `resource`.
pub fn to_storage(resource: &Resource, obj: Value) -> Value {
    if is_events_v1(resource) {
        return rename(&obj, EVENT_FIELDS.iter().copied(), "v1");
    }
    if is_hpa_v1(resource) {
        return hpa_v1_to_v2(obj);
    }
    obj
}

/// The form `resource` serves of a stored object.
pub fn from_storage(resource: &Resource, obj: Value) -> Value {
    if is_events_v1(resource) {
        return rename(
            &obj,
            EVENT_FIELDS.iter().map(|(a, b)| (*b, *a)),
            "events.k8s.io/v1",
        );
    }
    if is_hpa_v1(resource) {
        return hpa_v2_to_v1(obj);
    }
    obj
}

/// The annotation kube keeps a v2 HPA's other metrics in, on the v1 form.
const HPA_METRICS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/metrics";

fn is_cpu_utilization(metric: &Value) -> bool {
    metric["type"] == "Resource"
        && metric["resource"]["name"] == "cpu"
        && metric["resource"]["target"]["type"] == "Utilization"
}

/// autoscaling/v1 → v2: `targetCPUUtilizationPercentage` becomes a CPU
/// utilization metric; metrics kept in the annotation come back.
fn hpa_v1_to_v2(mut obj: Value) -> Value {
    obj["apiVersion"] = json!("autoscaling/v2");
    let mut metrics: Vec<Value> = Vec::new();
    if let Some(annotations) = obj
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
        && let Some(Value::String(kept)) = annotations.remove(HPA_METRICS_ANNOTATION)
        && let Ok(Value::Array(list)) = serde_json::from_str(&kept)
    {
        metrics.extend(list);
    }
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        if let Some(target) = spec
            .remove("targetCPUUtilizationPercentage")
            .filter(|v| !v.is_null())
        {
            metrics.insert(
                0,
                json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": target}}}),
            );
        }
        if !metrics.is_empty() {
            spec.insert("metrics".to_owned(), Value::Array(metrics));
        }
    }
    if let Some(status) = obj.get_mut("status").and_then(Value::as_object_mut)
        && let Some(current) = status
            .remove("currentCPUUtilizationPercentage")
            .filter(|v| !v.is_null())
    {
        status.insert(
            "currentMetrics".to_owned(),
            json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": current}}}]),
        );
    }
    if obj
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .is_some_and(Map::is_empty)
        && let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut)
    {
        meta.remove("annotations");
    }
    obj
}

/// autoscaling/v2 → v1: the CPU utilization target, other metrics into
/// the annotation (as kube-apiserver converts).
fn hpa_v2_to_v1(mut obj: Value) -> Value {
    obj["apiVersion"] = json!("autoscaling/v1");
    let metrics = obj
        .get_mut("spec")
        .and_then(Value::as_object_mut)
        .and_then(|s| s.remove("metrics"));
    let metrics: Vec<Value> = metrics
        .and_then(|m| m.as_array().cloned())
        .unwrap_or_default();
    let (cpu, others): (Vec<Value>, Vec<Value>) = metrics.into_iter().partition(is_cpu_utilization);
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        spec.remove("behavior");
        if let Some(first) = cpu.first() {
            spec.insert(
                "targetCPUUtilizationPercentage".to_owned(),
                first["resource"]["target"]["averageUtilization"].clone(),
            );
        }
    }
    if !others.is_empty() {
        let text = Value::Array(others).to_string();
        if let Some(meta) = obj.as_object_mut().and_then(|m| {
            m.entry("metadata")
                .or_insert_with(|| json!({}))
                .as_object_mut()
        }) {
            let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
            if let Some(a) = annotations.as_object_mut() {
                a.insert(HPA_METRICS_ANNOTATION.to_owned(), json!(text));
            }
        }
    }
    if let Some(status) = obj.get_mut("status").and_then(Value::as_object_mut) {
        let current = status.remove("currentMetrics");
        status.remove("conditions");
        if let Some(value) = current
            .as_ref()
            .and_then(Value::as_array)
            .and_then(|list| {
                list.iter()
                    .find(|m| m["type"] == "Resource" && m["resource"]["name"] == "cpu")
            })
            .and_then(|cpu| cpu.pointer("/resource/current/averageUtilization"))
        {
            status.insert("currentCPUUtilizationPercentage".to_owned(), value.clone());
        }
    }
    obj
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hpa_v1_and_v2_are_one_object() {
        let registry = crate::resources::Registry::with_builtins();
        let v1 = registry
            .get("autoscaling", "v1", "horizontalpodautoscalers")
            .unwrap();
        let obj = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"}, "minReplicas": 1, "maxReplicas": 5, "targetCPUUtilizationPercentage": 70}});
        let stored = to_storage(&v1, obj.clone());
        assert_eq!(
            stored["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            70
        );
        assert_eq!(stored["apiVersion"], "autoscaling/v2");
        assert_eq!(from_storage(&v1, stored.clone()), obj);
        // A v2 memory metric survives a trip through v1 in the annotation.
        let mut two = stored;
        two["spec"]["metrics"].as_array_mut().unwrap().push(json!({"type": "Resource", "resource": {"name": "memory", "target": {"type": "Utilization", "averageUtilization": 80}}}));
        let back = to_storage(&v1, from_storage(&v1, two.clone()));
        assert_eq!(back["spec"]["metrics"], two["spec"]["metrics"]);
    }

    #[test]
    fn events_round_trip_between_the_two_apis() {
        let resource = crate::resources::Registry::with_builtins()
            .get("events.k8s.io", "v1", "events")
            .unwrap();
        let v1 = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
            "regarding": {"kind": "Pod", "name": "web"}, "note": "pulled", "reason": "Pulled", "type": "Normal",
            "reportingController": "kubelet", "reportingInstance": "n1", "eventTime": "2026-12-03T00:00:00.000000Z", "action": "Pull"});
        let core = to_storage(&resource, v1.clone());
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(core["involvedObject"]["name"], "web");
        assert_eq!(core["message"], "pulled");
        assert_eq!(core["reportingComponent"], "kubelet");
        assert_eq!(from_storage(&resource, core), v1);
    }
}
