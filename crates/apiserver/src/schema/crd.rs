//! Custom resources against their CRD's structural `openAPIV3Schema`:
//! pruning of undeclared fields (kept under
//! `x-kubernetes-preserve-unknown-fields`), and the basic value checks
//! (type, required, enum, minimum/maximum, length, pattern) with kube's
//! field error texts.

use serde_json::{Map, Value, json};

use super::walk::Walker;
use super::{OBJECT_META, builtin_components};
use crate::error::Cause;

/// The schema kube publishes (and prunes with) for a custom resource:
/// the CRD's, with `apiVersion`, `kind` and `metadata` (ObjectMeta) always
/// declared at the root.
pub fn published(schema: &Value) -> Value {
    let mut root = match schema {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    root.entry("type").or_insert_with(|| json!("object"));
    let props = root.entry("properties").or_insert_with(|| json!({}));
    if let Some(props) = props.as_object_mut() {
        props.entry("apiVersion").or_insert_with(|| json!({
            "description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values.",
            "type": "string",
        }));
        props.entry("kind").or_insert_with(|| json!({
            "description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase.",
            "type": "string",
        }));
        props.insert(
            "metadata".to_owned(),
            json!({
                "allOf": [{"$ref": format!("{}{OBJECT_META}", super::builtin::REF_PREFIX)}],
                "description": "Standard object's metadata.",
            }),
        );
    }
    Value::Object(root)
}

/// Removes the fields of a custom resource its schema does not declare;
/// answers their paths (`spec.foo`, `spec.items[0].bar`, `metadata.x`).
pub fn prune(schema: &Value, obj: &mut Value) -> Vec<String> {
    let root = published(schema);
    // ObjectMeta and what it references come from the core group's schemas.
    let defs = builtin_components("", "v1");
    Walker::new(&defs).prune(&root, obj, "")
}

/// The basic validation of a custom resource against its schema: types,
/// required fields, enums, numeric bounds, string lengths and patterns.
pub fn validate(schema: &Value, obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    if let Some(props) = obj.as_object() {
        // The root's apiVersion, kind and metadata are the server's to check.
        for (key, value) in props {
            if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
                continue;
            }
            if let Some(sub) = schema.get("properties").and_then(|p| p.get(key)) {
                check(sub, value, key, &mut causes, 0);
            }
        }
        required(schema, props, "", &mut causes);
    }
    causes
}

/// Sets the `default` of every absent property of `obj` that its schema
/// gives one, recursively through objects, arrays and maps. The metadata
/// of a custom resource is never defaulted (kube does not either).
pub fn apply_defaults(schema: &Value, obj: &mut Value, depth: usize) {
    if depth > 100 {
        return;
    }
    match obj {
        Value::Object(map) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (name, prop) in props {
                    if depth == 0 && name == "metadata" {
                        continue;
                    }
                    if !map.contains_key(name)
                        && let Some(default) = prop.get("default")
                    {
                        map.insert(name.clone(), default.clone());
                    }
                    if let Some(child) = map.get_mut(name) {
                        apply_defaults(prop, child, depth + 1);
                    }
                }
            }
            if let Some(extra) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                let props = schema.get("properties").and_then(Value::as_object);
                for (name, child) in map.iter_mut() {
                    if props.is_some_and(|p| p.contains_key(name)) {
                        continue;
                    }
                    apply_defaults(extra, child, depth + 1);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    apply_defaults(item_schema, item, depth + 1);
                }
            }
        }
        _ => {}
    }
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_matches(wanted: &str, value: &Value) -> bool {
    let actual = type_name(value);
    wanted == actual || (wanted == "number" && actual == "integer")
}

fn required(schema: &Value, props: &Map<String, Value>, path: &str, causes: &mut Vec<Cause>) {
    for name in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !props.contains_key(name) {
            causes.push(Cause::required(join(path, name)));
        }
    }
}

fn check(schema: &Value, value: &Value, path: &str, causes: &mut Vec<Cause>, depth: usize) {
    if depth > 128 {
        return;
    }
    let nullable = schema.get("nullable").and_then(Value::as_bool) == Some(true);
    if value.is_null() && nullable {
        return;
    }
    let int_or_string = schema
        .get("x-kubernetes-int-or-string")
        .and_then(Value::as_bool)
        == Some(true);
    if int_or_string {
        if !matches!(type_name(value), "integer" | "string") {
            causes.push(Cause::new(
                "FieldValueTypeInvalid",
                path,
                format!(
                    "Invalid value: \"{}\": {path} in body must be of type integer-or-string: \"{}\"",
                    type_name(value),
                    type_name(value)
                ),
            ));
        }
        return;
    }
    if let Some(wanted) = schema.get("type").and_then(Value::as_str)
        && !type_matches(wanted, value)
    {
        let actual = type_name(value);
        causes.push(Cause::new(
            "FieldValueTypeInvalid",
            path,
            format!(
                "Invalid value: \"{actual}\": {path} in body must be of type {wanted}: \"{actual}\""
            ),
        ));
        return;
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
        causes.push(Cause::new(
            "FieldValueNotSupported",
            path,
            format!(
                "Unsupported value: {}: supported values: {}",
                value,
                list.join(", ")
            ),
        ));
    }
    match value {
        Value::Number(n) => bounds(schema, value, n.as_f64().unwrap_or(0.0), path, causes),
        Value::String(s) => string_rules(schema, value, s, path, causes),
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (key, child) in map {
                let child_path = join(path, key);
                if let Some(sub) = props.and_then(|p| p.get(key)) {
                    check(sub, child, &child_path, causes, depth + 1);
                } else if let Some(sub) = additional {
                    check(sub, child, &child_path, causes, depth + 1);
                }
            }
            required(schema, map, path, causes);
        }
        Value::Array(items) => {
            if let Some(sub) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check(sub, item, &format!("{path}[{i}]"), causes, depth + 1);
                }
            }
        }
        _ => {}
    }
}

fn bounds(schema: &Value, value: &Value, n: f64, path: &str, causes: &mut Vec<Cause>) {
    let exclusive = |key: &str| schema.get(key).and_then(Value::as_bool) == Some(true);
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
        let (bad, words) = if exclusive("exclusiveMinimum") {
            (n <= min, "greater than")
        } else {
            (n < min, "greater than or equal to")
        };
        if bad {
            causes.push(Cause::invalid(
                path,
                value,
                &format!(
                    "{path} in body should be {words} {}",
                    number(&schema["minimum"])
                ),
            ));
        }
    }
    if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
        let (bad, words) = if exclusive("exclusiveMaximum") {
            (n >= max, "less than")
        } else {
            (n > max, "less than or equal to")
        };
        if bad {
            causes.push(Cause::invalid(
                path,
                value,
                &format!(
                    "{path} in body should be {words} {}",
                    number(&schema["maximum"])
                ),
            ));
        }
    }
}

fn number(v: &Value) -> String {
    v.to_string()
}

fn string_rules(schema: &Value, value: &Value, s: &str, path: &str, causes: &mut Vec<Cause>) {
    let chars = s.chars().count() as u64;
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
        && chars < min
    {
        causes.push(Cause::invalid(
            path,
            value,
            &format!("{path} in body should be at least {min} chars long"),
        ));
    }
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
        && chars > max
    {
        causes.push(Cause::new(
            "FieldValueTooLong",
            path,
            format!("Too long: may not be more than {max} bytes"),
        ));
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
        match regex::Regex::new(pattern) {
            Ok(re) if !re.is_match(s) => causes.push(Cause::invalid(
                path,
                value,
                &format!("{path} in body should match '{pattern}'"),
            )),
            Ok(_) => {}
            Err(_) => causes.push(Cause::invalid(
                path,
                value,
                &format!("the schema's pattern '{pattern}' is not a valid regular expression"),
            )),
        }
    }
}

#[cfg(test)]
mod defaults_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_fill_absent_fields_at_every_level() {
        let schema = json!({"type": "object", "properties": {
            "metadata": {"type": "object", "properties": {"name": {"type": "string", "default": "x"}}},
            "spec": {"type": "object", "default": {}, "properties": {
                "replicas": {"type": "integer", "default": 1},
                "mode": {"type": "string", "default": "fast"},
                "ports": {"type": "array", "items": {"type": "object", "properties": {"protocol": {"type": "string", "default": "TCP"}}}},
                "labels": {"type": "object", "additionalProperties": {"type": "object", "properties": {"on": {"type": "boolean", "default": true}}}}
            }}
        }});
        let mut obj = json!({"metadata": {}, "spec": {"mode": "slow", "ports": [{"port": 80}, {"protocol": "UDP"}], "labels": {"a": {}}}});
        apply_defaults(&schema, &mut obj, 0);
        assert_eq!(obj["spec"]["replicas"], 1);
        assert_eq!(obj["spec"]["mode"], "slow", "a given value stays");
        assert_eq!(obj["spec"]["ports"][0]["protocol"], "TCP");
        assert_eq!(obj["spec"]["ports"][1]["protocol"], "UDP");
        assert_eq!(obj["spec"]["labels"]["a"]["on"], true);
        assert_eq!(obj["metadata"], json!({}), "metadata is never defaulted");
        let mut bare = json!({});
        apply_defaults(&schema, &mut bare, 0);
        assert_eq!(
            bare["spec"],
            json!({"replicas": 1, "mode": "fast"}),
            "a defaulted object gets its own defaults"
        );
    }
}
