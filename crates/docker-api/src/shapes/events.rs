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
    // the deprecated fields dockerd still fills for containers and images,
    // left out when empty (`omitempty`)
    if e.kind == "container" || e.kind == "image" {
        v["status"] = json!(e.action);
        if !e.id.is_empty() {
            v["id"] = json!(e.id);
        }
    }
    if e.kind == "container"
        && let Some(from) = e.attributes.get("image").filter(|i| !i.is_empty())
    {
        v["from"] = json!(from);
    }
    v
}
