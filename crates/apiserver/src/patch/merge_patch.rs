//! JSON merge patch (RFC 7386).

use serde_json::{Map, Value};

use super::{PatchError, check_depth};

/// Applies the RFC 7386 merge patch `patch` to `doc`.
///
/// An object patch merges member by member (`null` removes a member, objects merge
/// recursively); any other patch value replaces the target. Arrays are replaced whole.
pub fn merge_patch(doc: &Value, patch: &Value) -> Result<Value, PatchError> {
    check_depth(doc)?;
    check_depth(patch)?;
    Ok(merge(Some(doc.clone()), patch))
}

/// RFC 7386 `MergePatch(Target, Patch)`; `target` is `None` when the member is absent.
/// Recursive: the inputs passed the depth check.
fn merge(target: Option<Value>, patch: &Value) -> Value {
    let Value::Object(patch) = patch else {
        return patch.clone();
    };
    let mut target = match target {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    for (name, value) in patch {
        if value.is_null() {
            target.remove(name);
        } else {
            let merged = merge(target.remove(name), value);
            target.insert(name.clone(), merged);
        }
    }
    Value::Object(target)
}
