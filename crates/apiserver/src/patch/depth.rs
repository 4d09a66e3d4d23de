//! Input guards shared by the patch algorithms: a non-recursive nesting check and JSON equality.

use serde_json::Value;

use super::{MAX_DEPTH, PatchError};

/// Refuses `v` if it nests deeper than [`MAX_DEPTH`]; walks the value without recursion.
pub(crate) fn check_depth(v: &Value) -> Result<(), PatchError> {
    let mut stack: Vec<(&Value, usize)> = vec![(v, 1)];
    while let Some((v, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Object(m) => Box::new(m.values()),
            Value::Array(a) => Box::new(a.iter()),
            _ => continue,
        };
        if depth > MAX_DEPTH {
            return Err(PatchError::TooDeep(MAX_DEPTH));
        }
        stack.extend(children.map(|c| (c, depth + 1)));
    }
    Ok(())
}

/// JSON equality: numbers compare by value (`1` equals `1.0`), objects ignore key order.
///
/// Recursive; callers only pass values that passed [`check_depth`].
pub(crate) fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if x == y {
                return true;
            }
            match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => x == y,
                _ => false,
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}
