//! Ephemeral (debug) containers, as `kubectl debug` adds them through
//! `pods/ephemeralcontainers`: each runs once, is never restarted and has
//! no probes, ports or resources of its own; with `targetContainerName` it
//! joins that container's process namespace.

use k8s_openapi::api::core::v1::{Container, EphemeralContainer};

/// The container an ephemeral container runs as (the same fields but the
/// target).
pub fn as_container(e: &EphemeralContainer) -> Container {
    let mut v = serde_json::to_value(e).unwrap_or_default();
    if let Some(m) = v.as_object_mut() {
        m.remove("targetContainerName");
    }
    serde_json::from_value(v).unwrap_or_else(|_| Container {
        name: e.name.clone(),
        image: e.image.clone(),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_every_field_but_the_target() {
        let e: EphemeralContainer = serde_json::from_value(serde_json::json!({
            "name": "debugger-x", "image": "busybox:stable", "command": ["sh"],
            "stdin": true, "tty": true, "targetContainerName": "app",
            "env": [{"name": "A", "value": "1"}]
        }))
        .unwrap();
        let c = as_container(&e);
        assert_eq!(c.name, "debugger-x");
        assert_eq!(c.image.as_deref(), Some("busybox:stable"));
        assert_eq!(c.command, Some(vec!["sh".to_owned()]));
        assert_eq!(c.stdin, Some(true));
        assert_eq!(c.tty, Some(true));
        assert_eq!(c.env.unwrap()[0].value.as_deref(), Some("1"));
    }
}
