//! Unknown fields: walks an object against an OpenAPI v3 schema (with
//! `$ref`s into a set of component schemas), removing and reporting every
//! field the schema does not declare, as kube's decoder drops them.
//!
//! Paths are the decoder's: `spec.replicsa`,
//! `spec.template.spec.containers[0].imagee`, map values by key
//! (`spec.selector.foo`).

use serde_json::{Map, Value};

use super::builtin::REF_PREFIX;

/// The deepest nesting walked (objects past it are kept as they are).
const MAX_DEPTH: usize = 128;

/// A schema set to walk objects against.
pub struct Walker<'a> {
    defs: &'a Map<String, Value>,
}

/// The facets of one schema node: itself, what its `$ref`s and `allOf`s
/// resolve to, and the `oneOf`/`anyOf` alternative matching the value.
struct Facets<'a> {
    list: Vec<&'a Value>,
}

impl<'a> Facets<'a> {
    fn flag(&self, key: &str) -> bool {
        self.list
            .iter()
            .any(|f| f.get(key).and_then(Value::as_bool) == Some(true))
    }

    fn types(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.list
            .iter()
            .filter_map(|f| f.get("type").and_then(Value::as_str))
    }

    fn property(&self, name: &str) -> Option<&'a Value> {
        self.list
            .iter()
            .find_map(|f| f.get("properties").and_then(|p| p.get(name)))
    }

    fn has_properties(&self) -> bool {
        self.list.iter().any(|f| f.get("properties").is_some())
    }

    /// `additionalProperties`: `Some(Some(schema))`, `Some(None)` for `true`.
    fn additional(&self) -> Option<Option<&'a Value>> {
        self.list
            .iter()
            .find_map(|f| match f.get("additionalProperties") {
                Some(Value::Bool(true)) => Some(None),
                Some(schema @ Value::Object(_)) => Some(Some(schema)),
                _ => None,
            })
    }

    fn items(&self) -> Option<&'a Value> {
        self.list.iter().find_map(|f| f.get("items"))
    }
}

fn json_type(value: &Value) -> &'static str {
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

fn push_field(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

impl<'a> Walker<'a> {
    /// A walker resolving `$ref`s in `defs` (the `components.schemas`).
    pub fn new(defs: &'a Map<String, Value>) -> Walker<'a> {
        Walker { defs }
    }

    fn resolve(&self, node: &'a Value, value: &Value, out: &mut Vec<&'a Value>, depth: usize) {
        if depth > 16 {
            return;
        }
        out.push(node);
        if let Some(target) = node
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix(REF_PREFIX))
            .and_then(|name| self.defs.get(name))
        {
            self.resolve(target, value, out, depth + 1);
        }
        for sub in node
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.resolve(sub, value, out, depth + 1);
        }
        for key in ["oneOf", "anyOf"] {
            let Some(alternatives) = node.get(key).and_then(Value::as_array) else {
                continue;
            };
            // The alternative whose type fits the value.
            let wanted = json_type(value);
            let chosen = alternatives.iter().find(|alt| {
                let mut facets = Vec::new();
                self.resolve(alt, value, &mut facets, depth + 1);
                let facets = Facets { list: facets };
                let mut types = facets.types().peekable();
                match types.peek() {
                    None => wanted == "object" && facets.has_properties(),
                    Some(_) => types.any(|t| t == wanted || (t == "number" && wanted == "integer")),
                }
            });
            if let Some(alt) = chosen {
                self.resolve(alt, value, out, depth + 1);
            }
        }
    }

    fn facets(&self, node: &'a Value, value: &Value) -> Facets<'a> {
        let mut list = Vec::new();
        self.resolve(node, value, &mut list, 0);
        Facets { list }
    }

    /// Removes from `value` every field `schema` does not declare; answers
    /// their paths (below `path`).
    pub fn prune(&self, schema: &'a Value, value: &mut Value, path: &str) -> Vec<String> {
        let mut out = Vec::new();
        self.walk(schema, value, path, &mut out, 0);
        out
    }

    fn walk(
        &self,
        schema: &'a Value,
        value: &mut Value,
        path: &str,
        out: &mut Vec<String>,
        depth: usize,
    ) {
        if depth > MAX_DEPTH {
            return;
        }
        let facets = self.facets(schema, value);
        if facets.flag("x-kubernetes-int-or-string") {
            return;
        }
        match value {
            Value::Object(map) => {
                let is_object = facets.types().any(|t| t == "object") || facets.has_properties();
                if !is_object {
                    return; // untyped (anything goes) or a type mismatch (not ours to report)
                }
                let preserve = facets.flag("x-kubernetes-preserve-unknown-fields");
                let embedded = facets.flag("x-kubernetes-embedded-resource");
                let additional = facets.additional();
                let mut unknown = Vec::new();
                for (key, child) in map.iter_mut() {
                    let child_path = push_field(path, key);
                    if let Some(prop) = facets.property(key) {
                        self.walk(prop, child, &child_path, out, depth + 1);
                    } else if embedded && matches!(key.as_str(), "apiVersion" | "kind") {
                    } else if embedded && key == "metadata" {
                        self.walk_metadata(child, &child_path, out, depth + 1);
                    } else if let Some(additional) = additional {
                        if let Some(schema) = additional {
                            self.walk(schema, child, &child_path, out, depth + 1);
                        }
                    } else if !preserve {
                        unknown.push(key.clone());
                        out.push(child_path);
                    }
                }
                for key in unknown {
                    map.remove(&key);
                }
            }
            Value::Array(items) => {
                let Some(item_schema) = facets.items() else {
                    return;
                };
                for (i, item) in items.iter_mut().enumerate() {
                    let item_path = format!("{path}[{i}]");
                    self.walk(item_schema, item, &item_path, out, depth + 1);
                }
            }
            _ => {}
        }
    }

    /// The metadata of an embedded resource, against ObjectMeta when the
    /// schema set has it.
    fn walk_metadata(&self, value: &mut Value, path: &str, out: &mut Vec<String>, depth: usize) {
        if let Some(meta) = self.defs.get(super::OBJECT_META) {
            self.walk(meta, value, path, out, depth);
        }
    }
}
