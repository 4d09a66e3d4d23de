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
        // docker's older fields, left out when empty (`omitempty`)
        v["status"] = json!(e.action);
        if !e.id.is_empty() {
            v["id"] = json!(e.id);
        }
        if let Some(from) = e.attributes.get("image").filter(|i| !i.is_empty()) {
            v["from"] = json!(from);
        }
    }
    v
}
