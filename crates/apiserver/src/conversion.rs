//! Versions of one stored kind: `events.k8s.io/v1` Events are stored as
//! core `v1` Events (as kube-apiserver stores them), so both APIs see the
//! same objects. Objects are converted at the edges of every read and
//! write.

use serde_json::{Map, Value};

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
    pairs: impl Iterator<Item = (&'static str, &'static str)>,
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
    for (from, to) in pairs {
        if let Some(v) = map.get(from).filter(|v| !v.is_null()) {
            out.insert(to.to_owned(), v.clone());
        }
    }
    Value::Object(out)
}

/// The stored form of an object written through `resource`.
pub fn to_storage(resource: &Resource, obj: Value) -> Value {
    if !is_events_v1(resource) {
        return obj;
    }
    rename(&obj, EVENT_FIELDS.iter().copied(), "v1")
}

/// The form `resource` serves of a stored object.
pub fn from_storage(resource: &Resource, obj: Value) -> Value {
    if !is_events_v1(resource) {
        return obj;
    }
    rename(
        &obj,
        EVENT_FIELDS.iter().map(|(a, b)| (*b, *a)),
        "events.k8s.io/v1",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
