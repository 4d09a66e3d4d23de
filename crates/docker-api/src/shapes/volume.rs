//! Volumes as `GET /volumes` shows them.

use serde_json::{Value, json};

/// A volume in docker's JSON (`UsageData` only where it was measured).
pub fn volume(v: &berth_engine::volumes::Volume) -> Value {
    json!({
        "CreatedAt": seconds(&v.created_at),
        "Driver": v.driver,
        "Labels": if v.labels.is_empty() { Value::Null } else { json!(v.labels) },
        "Mountpoint": v.mountpoint,
        "Name": v.name,
        "Options": if v.options.is_empty() { Value::Null } else { json!(v.options) },
        "Scope": v.scope,
    })
}

/// An RFC 3339 time to the second, as docker shows a volume's creation
/// (`2026-12-02T17:51:42Z`); kept as it is when it does not parse.
fn seconds(t: &str) -> String {
    match berth_types::time::parse_rfc3339(t) {
        Ok((secs, _)) => {
            let full = berth_types::time::format_rfc3339(secs, 0);
            match full.split_once('.') {
                Some((s, _)) => format!("{s}Z"),
                None => full,
            }
        }
        Err(_) => t.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creation_times_are_shown_to_the_second() {
        assert_eq!(
            seconds("2026-12-02T17:51:42.887613242Z"),
            "2026-12-02T17:51:42Z"
        );
        assert_eq!(seconds("2026-12-02T17:51:42Z"), "2026-12-02T17:51:42Z");
        // an offset is turned into UTC
        assert_eq!(
            seconds("2026-12-02T18:51:42.5+01:00"),
            "2026-12-02T17:51:42Z"
        );
        for junk in ["", "yesterday", "2026-13-45T99:99:99Z", "\u{0}"] {
            assert_eq!(seconds(junk), junk);
        }
    }
}
