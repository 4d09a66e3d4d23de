//! JSON patch (RFC 6902) over JSON pointers (RFC 6901).
//!
//! Error messages follow the wording kube-apiserver's JSON patch library uses, naming the
//! operation and the path (`add operation does not apply: doc is missing path: "/a/b": missing
//! value`). Negative array indices (an extension of that library) are refused, as RFC 6902 says.

use serde_json::{Map, Value};

use super::{PatchError, check_depth, json_equal};

/// The most operations kube-apiserver accepts in one JSON patch (more is a 413).
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// Applies the RFC 6902 JSON patch `patch` (an array of operations) to `doc`.
///
/// Operations: `add`, `remove`, `replace`, `move`, `copy`, `test`. Pointers use the RFC 6901
/// escapes `~0` (`~`) and `~1` (`/`); `-` names the end of an array for `add`. The operations
/// apply in order to a copy of `doc`; the first failure aborts the whole patch.
pub fn json_patch(doc: &Value, patch: &Value) -> Result<Value, PatchError> {
    let ops = patch.as_array().ok_or_else(|| {
        PatchError::BadRequest(format!(
            "json: cannot unmarshal {} into Go value of type jsonpatch.Patch (a JSON patch is an array of operations)",
            kind_name(patch)
        ))
    })?;
    if let Some(bad) = ops.iter().find(|op| !op.is_object()) {
        return Err(PatchError::BadRequest(format!(
            "json: cannot unmarshal {} into Go value of type jsonpatch.Operation (each operation is an object)",
            kind_name(bad)
        )));
    }
    if ops.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(PatchError::TooManyOperations {
            max: MAX_JSON_PATCH_OPERATIONS,
            got: ops.len(),
        });
    }
    check_depth(doc)?;
    check_depth(patch)?;
    let mut doc = doc.clone();
    for op in ops {
        apply_op(&mut doc, op)?;
    }
    Ok(doc)
}

fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn invalid(msg: String) -> PatchError {
    PatchError::Invalid(msg)
}

fn apply_op(doc: &mut Value, op: &Value) -> Result<(), PatchError> {
    let kind = op.get("op").and_then(Value::as_str).unwrap_or("unknown");
    let field = |name: &str| -> Result<&str, PatchError> {
        match op.get(name) {
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(invalid(format!(
                "{kind} operation: the {name} field is not a string"
            ))),
            None if name == "from" => Err(invalid(format!(
                "{kind} operation, missing from field: missing value"
            ))),
            None => Err(invalid(format!(
                "{kind} operation missing path field: missing value"
            ))),
        }
    };
    let value = || -> Result<&Value, PatchError> {
        op.get("value").ok_or_else(|| {
            invalid(format!(
                "{kind} operation, missing value field: missing value"
            ))
        })
    };
    match kind {
        "add" => {
            let path = field("path")?;
            let ptr = parse_pointer(kind, path)?;
            add(doc, &ptr, value()?.clone()).map_err(|e| e.describe(kind, path))
        }
        "remove" => {
            let path = field("path")?;
            let ptr = parse_pointer(kind, path)?;
            remove(doc, &ptr)
                .map(drop)
                .map_err(|e| e.describe(kind, path))
        }
        "replace" => {
            let path = field("path")?;
            let ptr = parse_pointer(kind, path)?;
            let v = value()?.clone();
            match get_mut(doc, &ptr) {
                Some(slot) => {
                    *slot = v;
                    Ok(())
                }
                None => Err(invalid(format!(
                    "replace operation does not apply: doc is missing key: {path}: missing value"
                ))),
            }
        }
        "move" => {
            let from = field("from")?;
            let path = field("path")?;
            let from_ptr = parse_pointer(kind, from)?;
            let ptr = parse_pointer(kind, path)?;
            if from_ptr == ptr {
                return if get(doc, &from_ptr).is_some() {
                    Ok(())
                } else {
                    Err(invalid(format!(
                        "move operation does not apply: doc is missing from path: {from}: missing value"
                    )))
                };
            }
            if ptr.len() > from_ptr.len() && ptr.starts_with(&from_ptr) {
                return Err(invalid(format!(
                    "move operation does not apply: the from location {from} is a prefix of the path {path}"
                )));
            }
            let moved = remove(doc, &from_ptr).map_err(|_| {
                invalid(format!(
                    "move operation does not apply: doc is missing from path: {from}: missing value"
                ))
            })?;
            add(doc, &ptr, moved).map_err(|e| match e {
                PtrError::Missing => invalid(format!(
                    "move operation does not apply: doc is missing destination path: {path}: missing value"
                )),
                other => other.describe(kind, path),
            })
        }
        "copy" => {
            let from = field("from")?;
            let path = field("path")?;
            let from_ptr = parse_pointer(kind, from)?;
            let ptr = parse_pointer(kind, path)?;
            let copied = get(doc, &from_ptr).cloned().ok_or_else(|| {
                invalid(format!(
                    "copy operation does not apply: doc is missing from path: {from}: missing value"
                ))
            })?;
            add(doc, &ptr, copied).map_err(|e| match e {
                PtrError::Missing => invalid(format!(
                    "copy operation does not apply: doc is missing destination path: {path}: missing value"
                )),
                other => other.describe(kind, path),
            })
        }
        "test" => {
            let path = field("path")?;
            let ptr = parse_pointer(kind, path)?;
            let expected = value()?;
            match get(doc, &ptr) {
                Some(actual) if json_equal(actual, expected) => Ok(()),
                // A missing member tests equal to null, as kube's library does.
                None if expected.is_null() && ptr_parent_exists(doc, &ptr) => Ok(()),
                _ => Err(invalid(format!("testing value {path} failed: test failed"))),
            }
        }
        other => Err(invalid(format!("Unexpected kind: {other}"))),
    }
}

/// Parses an RFC 6901 pointer into its unescaped reference tokens.
fn parse_pointer(kind: &str, path: &str) -> Result<Vec<String>, PatchError> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(invalid(format!(
            "{kind} operation failed to decode path: {path:?} is not a JSON pointer (it must start with \"/\")"
        )));
    };
    rest.split('/')
        .map(|token| unescape(token).ok_or_else(|| {
            invalid(format!(
                "{kind} operation failed to decode path: {path:?} has an invalid escape (only ~0 and ~1 are allowed)"
            ))
        }))
        .collect()
}

fn unescape(token: &str) -> Option<String> {
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// Why a pointer did not resolve.
enum PtrError {
    /// The parent (or, for remove, the target) does not exist.
    Missing,
    /// An array index that is not a number, or out of range.
    BadIndex(String),
}

impl PtrError {
    fn describe(self, kind: &str, path: &str) -> PatchError {
        match self {
            PtrError::Missing => invalid(format!(
                "{kind} operation does not apply: doc is missing path: \"{path}\": missing value"
            )),
            PtrError::BadIndex(why) => {
                invalid(format!("error in {kind} for path: '{path}': {why}"))
            }
        }
    }
}

/// An array index per RFC 6901: decimal digits without leading zeros.
fn array_index(token: &str) -> Option<usize> {
    if token.is_empty()
        || !token.bytes().all(|b| b.is_ascii_digit())
        || (token.len() > 1 && token.starts_with('0'))
    {
        return None;
    }
    token.parse().ok()
}

fn get<'a>(doc: &'a Value, ptr: &[String]) -> Option<&'a Value> {
    let mut cur = doc;
    for token in ptr {
        cur = match cur {
            Value::Object(m) => m.get(token)?,
            Value::Array(a) => a.get(array_index(token)?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn get_mut<'a>(doc: &'a mut Value, ptr: &[String]) -> Option<&'a mut Value> {
    let mut cur = doc;
    for token in ptr {
        cur = match cur {
            Value::Object(m) => m.get_mut(token)?,
            Value::Array(a) => a.get_mut(array_index(token)?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn ptr_parent_exists(doc: &Value, ptr: &[String]) -> bool {
    match ptr.split_last() {
        Some((_, parent)) => get(doc, parent).is_some_and(Value::is_object),
        None => false,
    }
}

fn add(doc: &mut Value, ptr: &[String], value: Value) -> Result<(), PtrError> {
    let Some((last, parent)) = ptr.split_last() else {
        *doc = value;
        return Ok(());
    };
    match get_mut(doc, parent) {
        Some(Value::Object(m)) => {
            m.insert(last.clone(), value);
            Ok(())
        }
        Some(Value::Array(a)) => {
            if last == "-" {
                a.push(value);
                return Ok(());
            }
            let idx = array_index(last).ok_or_else(|| {
                PtrError::BadIndex(format!("value was not a proper array index: '{last}'"))
            })?;
            if idx > a.len() {
                return Err(PtrError::BadIndex(format!(
                    "Unable to access invalid index: {idx}: invalid index referenced"
                )));
            }
            a.insert(idx, value);
            Ok(())
        }
        _ => Err(PtrError::Missing),
    }
}

fn remove(doc: &mut Value, ptr: &[String]) -> Result<Value, PtrError> {
    let Some((last, parent)) = ptr.split_last() else {
        // Removing the whole document leaves nothing to store.
        return Err(PtrError::Missing);
    };
    match get_mut(doc, parent) {
        Some(Value::Object(m)) => remove_key(m, last),
        Some(Value::Array(a)) => {
            let idx = array_index(last).ok_or_else(|| {
                PtrError::BadIndex(format!("value was not a proper array index: '{last}'"))
            })?;
            if idx >= a.len() {
                return Err(PtrError::BadIndex(format!(
                    "Unable to access invalid index: {idx}: invalid index referenced"
                )));
            }
            Ok(a.remove(idx))
        }
        _ => Err(PtrError::Missing),
    }
}

fn remove_key(m: &mut Map<String, Value>, key: &str) -> Result<Value, PtrError> {
    m.remove(key).ok_or(PtrError::Missing)
}
