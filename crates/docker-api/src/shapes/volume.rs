//! Volumes as `GET /volumes` shows them.

use serde_json::{Value, json};

/// A volume in docker's JSON (`UsageData` only where it was measured).
pub fn volume(v: &berth_engine::volumes::Volume) -> Value {
    json!({
        "CreatedAt": v.created_at,
        "Driver": v.driver,
        "Labels": if v.labels.is_empty() { Value::Null } else { json!(v.labels) },
        "Mountpoint": v.mountpoint,
        "Name": v.name,
        "Options": if v.options.is_empty() { Value::Null } else { json!(v.options) },
        "Scope": v.scope,
    })
}
