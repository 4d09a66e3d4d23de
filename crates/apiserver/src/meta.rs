//! Object metadata: the fields the server owns (uid, creationTimestamp,
//! generation, resourceVersion), names and their validation, generateName.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::error::Cause;

/// Now as `metav1.Time`.
pub fn now() -> String {
    berth_types::time::format_rfc3339_seconds(unix_now().0)
}

/// Now as `metav1.MicroTime`.
pub fn now_micro() -> String {
    let (secs, nanos) = unix_now();
    berth_types::time::format_rfc3339_micros(secs, nanos)
}

/// Unix time now.
pub fn unix_now() -> (i64, u32) {
    let elapsed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (
        i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX),
        elapsed.subsec_nanos(),
    )
}

/// A new object uid.
pub fn new_uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The suffix `generateName` gets: 5 characters from kube's alphabet
/// (no vowels, no digits that look like letters).
pub fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    bytes
        .iter()
        .take(5)
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

/// `metadata` of an object (an empty map when absent or not a map).
pub fn metadata(obj: &Value) -> &Map<String, Value> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    obj.get("metadata")
        .and_then(Value::as_object)
        .unwrap_or_else(|| EMPTY.get_or_init(Map::new))
}

/// `metadata`, made a map if it is not one.
pub fn metadata_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = json!({});
    }
    let map = obj.as_object_mut().expect("made an object above");
    let entry = map.entry("metadata").or_insert_with(|| json!({}));
    if !entry.is_object() {
        *entry = json!({});
    }
    entry.as_object_mut().expect("made an object above")
}

/// A string field of `metadata`.
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    metadata(obj)
        .get(field)
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The object's labels.
pub fn labels(obj: &Value) -> Option<&Map<String, Value>> {
    metadata(obj).get("labels").and_then(Value::as_object)
}

/// Whether `name` is a DNS-1123 subdomain (most object names).
pub fn is_dns1123_subdomain(name: &str) -> bool {
    !name.is_empty() && name.len() <= 253 && name.split('.').all(is_dns1123_label_lax)
}

fn is_dns1123_label_lax(part: &str) -> bool {
    let bytes = part.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

/// Whether `name` is a DNS-1123 label (namespaces, services).
pub fn is_dns1123_label(name: &str) -> bool {
    is_dns1123_label_lax(name)
}

/// The name rule a resource's names follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// DNS-1123 subdomain (the default).
    Subdomain,
    /// DNS-1123 label (namespaces, services).
    Label,
    /// RBAC names: anything but "", ".", "..", or with `/` or `%`.
    Path,
}

/// The name rule for a resource.
pub fn name_rule(group: &str, plural: &str) -> NameRule {
    match (group, plural) {
        ("", "namespaces") | ("", "services") => NameRule::Label,
        ("rbac.authorization.k8s.io", _) => NameRule::Path,
        _ => NameRule::Subdomain,
    }
}

/// Validates an object name; the causes are kube's texts.
pub fn validate_name(name: &str, rule: NameRule, field: &str) -> Option<Cause> {
    let value = json!(name);
    match rule {
        NameRule::Subdomain if !is_dns1123_subdomain(name) => Some(Cause::invalid(
            field,
            &value,
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        )),
        NameRule::Label if !is_dns1123_label(name) => Some(Cause::invalid(
            field,
            &value,
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        )),
        NameRule::Path
            if matches!(name, "." | "..") || name.contains('/') || name.contains('%') =>
        {
            Some(Cause::invalid(
                field,
                &value,
                "may not be '.' or '..' and may not contain '/' or '%'",
            ))
        }
        _ => None,
    }
}

/// Validates a label key (`prefix/name`) and value.
pub fn validate_labels(labels: &Map<String, Value>, field: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    for (key, value) in labels {
        if let Some(why) = qualified_name_error(key) {
            causes.push(Cause::invalid(field, &json!(key), &why));
        }
        match value.as_str() {
            Some(v) if is_label_value(v) => {}
            Some(v) => causes.push(Cause::invalid(
                field,
                &json!(v),
                "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
            )),
            None => causes.push(Cause::invalid(format!("{field}.{key}"), value, "label values must be strings")),
        }
    }
    causes
}

fn is_label_value(v: &str) -> bool {
    let b = v.as_bytes();
    b.is_empty()
        || (b.len() <= 63
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
            && b.first().is_some_and(u8::is_ascii_alphanumeric)
            && b.last().is_some_and(u8::is_ascii_alphanumeric))
}

/// Why a qualified name (`example.com/my-key`) is invalid.
pub fn qualified_name_error(key: &str) -> Option<String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && !is_dns1123_subdomain(prefix)
    {
        return Some("prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character".to_owned());
    }
    let b = name.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric);
    (!ok).then(|| "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')".to_owned())
}

/// The metadata fields a client may not set on create, cleared.
pub fn clear_server_fields(meta: &mut Map<String, Value>) {
    for field in [
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    ] {
        meta.remove(field);
    }
}

/// The spec-like part of an object whose change bumps `generation`:
/// everything but metadata and status.
pub fn spec_part(obj: &Value) -> Map<String, Value> {
    obj.as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| {
                    !matches!(k.as_str(), "metadata" | "status" | "apiVersion" | "kind")
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_dns1123_subdomain("web-1.example"));
        assert!(!is_dns1123_subdomain("Web"));
        assert!(!is_dns1123_subdomain("-a"));
        assert!(!is_dns1123_subdomain("ä"));
        assert!(is_dns1123_label("default"));
        assert!(!is_dns1123_label("a.b"));
        assert!(validate_name("system:admin", NameRule::Path, "metadata.name").is_none());
        assert!(validate_name("a/b", NameRule::Path, "metadata.name").is_some());
        let cause = validate_name("Bad_Name", NameRule::Subdomain, "metadata.name").unwrap();
        assert!(
            cause
                .message
                .starts_with("Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain")
        );
        assert_eq!(random_suffix().len(), 5);
    }

    #[test]
    fn labels_are_checked() {
        let labels = json!({"app": "web", "example.com/tier": "front", "bad key": "x", "v": "-x"});
        let causes = validate_labels(labels.as_object().unwrap(), "metadata.labels");
        assert_eq!(causes.len(), 2, "{causes:?}");
    }
}
