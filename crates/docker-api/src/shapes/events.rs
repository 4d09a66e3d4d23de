//! `GET /events` messages.

use serde_json::{Value, json};

/// One `GET /events` message.
pub fn event(e: &berth_engine::events::Event) -> Value {
    let mut v = json!({
        "Type": e.kind,
        "Action": e.action,
        "Actor": {"ID": e.id, "Attributes": e.attributes},
        "scope": "local",
        "time": e.time_nano / 1_000_000_000,
        "timeNano": e.time_nano,
    });
    if e.kind == "container" {
        v["status"] = json!(e.action);
        v["id"] = json!(e.id);
        v["from"] = json!(e.attributes.get("image").cloned().unwrap_or_default());
    }
    v
}
