//! Label selectors (`app=web,tier in (a,b),!canary`) and field selectors
//! (`metadata.name=web,status.phase!=Running`), parsed from query strings
//! and matched against objects, as kube-apiserver does.

use serde_json::Value;

use crate::error::ApiError;

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector (empty = everything).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

/// Splits on commas outside parentheses.
fn split_top(s: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err("unbalanced ')'".to_owned());
                }
            }
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("unbalanced '('".to_owned());
    }
    parts.push(&s[start..]);
    Ok(parts)
}

fn check_key(key: &str) -> Result<String, String> {
    let key = key.trim();
    if key.is_empty() {
        return Err("a key is empty".to_owned());
    }
    if let Some(why) = crate::meta::qualified_name_error(key) {
        return Err(format!("invalid label key \"{key}\": {why}"));
    }
    Ok(key.to_owned())
}

fn check_value(value: &str) -> Result<String, String> {
    let value = value.trim();
    let b = value.as_bytes();
    let ok = b.is_empty()
        || (b.len() <= 63
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
            && b.first().is_some_and(u8::is_ascii_alphanumeric)
            && b.last().is_some_and(u8::is_ascii_alphanumeric));
    if ok {
        Ok(value.to_owned())
    } else {
        Err(format!("invalid label value: \"{value}\""))
    }
}

fn set_values(rest: &str) -> Result<Vec<String>, String> {
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| format!("expected a parenthesised set of values, found \"{rest}\""))?;
    inner.split(',').map(check_value).collect()
}

impl LabelSelector {
    /// Parses a selector string as kubectl sends it.
    pub fn parse(s: &str) -> Result<LabelSelector, ApiError> {
        Self::parse_inner(s)
            .map_err(|why| ApiError::bad_request(format!("unable to parse requirement: {why}")))
    }

    fn parse_inner(s: &str) -> Result<LabelSelector, String> {
        let mut requirements = Vec::new();
        if s.trim().is_empty() {
            return Ok(LabelSelector { requirements });
        }
        for part in split_top(s)? {
            let part = part.trim();
            if part.is_empty() {
                return Err("found an empty requirement".to_owned());
            }
            let requirement = if let Some(key) = part.strip_prefix('!') {
                Requirement::NotExists(check_key(key)?)
            } else if let Some((key, value)) = part.split_once("!=") {
                Requirement::NotEquals(check_key(key)?, check_value(value)?)
            } else if let Some((key, value)) = part.split_once("==") {
                Requirement::Equals(check_key(key)?, check_value(value)?)
            } else if let Some((key, value)) = part.split_once('=') {
                Requirement::Equals(check_key(key)?, check_value(value)?)
            } else if let Some((key, rest)) = split_word(part, "notin") {
                Requirement::NotIn(check_key(key)?, set_values(rest)?)
            } else if let Some((key, rest)) = split_word(part, "in") {
                Requirement::In(check_key(key)?, set_values(rest)?)
            } else {
                Requirement::Exists(check_key(part)?)
            };
            requirements.push(requirement);
        }
        Ok(LabelSelector { requirements })
    }

    /// A selector from a `metav1.LabelSelector` object (matchLabels and
    /// matchExpressions).
    pub fn from_object(selector: &Value) -> Result<LabelSelector, String> {
        let mut requirements = Vec::new();
        if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
            for (key, value) in labels {
                requirements.push(Requirement::Equals(
                    key.clone(),
                    value.as_str().unwrap_or("").to_owned(),
                ));
            }
        }
        for expr in selector
            .get("matchExpressions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let key = expr
                .get("key")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let values: Vec<String> = expr
                .get("values")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
            let requirement = match expr.get("operator").and_then(Value::as_str).unwrap_or("") {
                "In" => Requirement::In(key, values),
                "NotIn" => Requirement::NotIn(key, values),
                "Exists" => Requirement::Exists(key),
                "DoesNotExist" => Requirement::NotExists(key),
                other => {
                    return Err(format!(
                        "\"{other}\" is not a valid label selector operator"
                    ));
                }
            };
            requirements.push(requirement);
        }
        Ok(LabelSelector { requirements })
    }

    /// Whether it selects everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether an object's labels match.
    pub fn matches(&self, obj: &Value) -> bool {
        let labels = crate::meta::labels(obj);
        let get = |key: &str| labels.and_then(|l| l.get(key)).and_then(Value::as_str);
        self.requirements.iter().all(|r| match r {
            Requirement::Equals(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|x| !vs.iter().any(|v| v == x)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
        })
    }

    /// The selector as `key=value,...` text (`status.selector` of Scale).
    pub fn to_text(&self) -> String {
        let parts: Vec<String> = self
            .requirements
            .iter()
            .map(|r| match r {
                Requirement::Equals(k, v) => format!("{k}={v}"),
                Requirement::NotEquals(k, v) => format!("{k}!={v}"),
                Requirement::In(k, vs) => format!("{k} in ({})", vs.join(",")),
                Requirement::NotIn(k, vs) => format!("{k} notin ({})", vs.join(",")),
                Requirement::Exists(k) => k.clone(),
                Requirement::NotExists(k) => format!("!{k}"),
            })
            .collect();
        parts.join(",")
    }
}

/// Splits `key in (a,b)` at the operator word.
fn split_word<'a>(part: &'a str, word: &str) -> Option<(&'a str, &'a str)> {
    let pattern = format!(" {word} ");
    if let Some(at) = part.find(&pattern) {
        return Some((&part[..at], &part[at + pattern.len()..]));
    }
    let pattern = format!(" {word}(");
    part.find(&pattern)
        .map(|at| (&part[..at], &part[at + pattern.len() - 1..]))
}

/// One requirement of a field selector.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldRequirement {
    field: String,
    value: String,
    equal: bool,
}

/// A parsed field selector.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

/// The field labels a resource supports beyond `metadata.name` and
/// `metadata.namespace`.
fn supported_fields(group: &str, plural: &str) -> &'static [&'static str] {
    match (group, plural) {
        ("", "pods") => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        ("", "events") | ("events.k8s.io", "events") => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        ("", "secrets") => &["type"],
        ("", "namespaces") => &["status.phase"],
        ("", "nodes") => &["spec.unschedulable"],
        ("", "replicationcontrollers") => &["status.replicas"],
        ("apps", "replicasets") => &["status.replicas"],
        ("batch", "jobs") => &["status.successful"],
        ("certificates.k8s.io", _) => &["spec.signerName"],
        _ => &[],
    }
}

impl FieldSelector {
    /// Parses a field selector for a resource; unknown fields are refused
    /// with kube's message.
    pub fn parse(s: &str, group: &str, plural: &str) -> Result<FieldSelector, ApiError> {
        let mut requirements = Vec::new();
        if s.trim().is_empty() {
            return Ok(FieldSelector { requirements });
        }
        for part in s.split(',') {
            let (field, value, equal) = if let Some((f, v)) = part.split_once("!=") {
                (f, v, false)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, v, true)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, v, true)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                )));
            };
            let field = field.trim();
            let custom = group.contains('.') && !group.ends_with(".k8s.io");
            if !matches!(field, "metadata.name" | "metadata.namespace")
                && !supported_fields(group, plural).contains(&field)
                && !custom
            {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {field}"
                )));
            }
            requirements.push(FieldRequirement {
                field: field.to_owned(),
                value: value.trim().to_owned(),
                equal,
            });
        }
        Ok(FieldSelector { requirements })
    }

    /// Whether it selects everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The value a `metadata.name=` requirement pins, if any (a list then
    /// reads one key).
    pub fn pinned_name(&self) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.equal && r.field == "metadata.name")
            .map(|r| r.value.as_str())
    }

    /// Whether an object matches.
    pub fn matches(&self, obj: &Value) -> bool {
        self.requirements.iter().all(|r| {
            let actual = field_value(obj, &r.field);
            (actual == r.value) == r.equal
        })
    }
}

/// A field's value as a selector compares it: strings as they are, other
/// scalars as text, a missing field as "".
fn field_value(obj: &Value, path: &str) -> String {
    let mut at = obj;
    for part in path.split('.') {
        match at.get(part) {
            Some(next) => at = next,
            None => {
                // `source` of an Event is `source.component`.
                return String::new();
            }
        }
    }
    match at {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Object(map) => map
            .get("component")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"name": "web", "namespace": "default", "labels": labels}, "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}})
    }

    #[test]
    fn label_selectors() {
        let o = obj(json!({"app": "web", "tier": "front"}));
        for (sel, want) in [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app=web,tier=back", false),
            ("tier in (front,back)", true),
            ("tier notin (front)", false),
            ("missing notin (x)", true),
            ("app", true),
            ("!app", false),
            ("!canary", true),
            ("app in (web),!canary", true),
        ] {
            assert_eq!(
                LabelSelector::parse(sel).unwrap().matches(&o),
                want,
                "{sel}"
            );
        }
        assert!(LabelSelector::parse("app=(").is_err());
        assert!(LabelSelector::parse("a b").is_err());
        assert!(LabelSelector::parse("é=x").is_err());
        let from = LabelSelector::from_object(&json!({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}]})).unwrap();
        assert!(from.matches(&o));
        assert_eq!(from.to_text(), "app=web,tier in (front)");
    }

    #[test]
    fn field_selectors() {
        let o = obj(json!({}));
        let sel = FieldSelector::parse("metadata.name=web,spec.nodeName=n1", "", "pods").unwrap();
        assert!(sel.matches(&o));
        assert_eq!(sel.pinned_name(), Some("web"));
        assert!(
            !FieldSelector::parse("status.phase!=Running", "", "pods")
                .unwrap()
                .matches(&o)
        );
        let err = FieldSelector::parse("spec.foo=x", "", "pods").unwrap_err();
        assert_eq!(err.message, "field label not supported: spec.foo");
        assert!(FieldSelector::parse("novalue", "", "pods").is_err());
    }
}
