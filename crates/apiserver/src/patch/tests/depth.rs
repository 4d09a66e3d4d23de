//! Deep nesting: refused with an error, never a stack overflow.

use serde_json::{Map, Value, json};

use crate::patch::{
    MAX_DEPTH, NoMeta, PatchError, apply, field_set, json_patch, merge_patch, record_update,
    strategic_merge_patch,
};

/// `{"a":{"a":...{"a":1}}}`, `depth` objects deep, built without recursion.
fn nested(depth: usize) -> Value {
    let mut v = json!(1);
    for _ in 0..depth {
        let mut m = Map::new();
        m.insert("a".into(), v);
        v = Value::Object(m);
    }
    v
}

/// Drops a deep value without recursion (serde_json's drop recurses).
fn dismantle(v: Value) {
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(m) => stack.extend(m.into_iter().map(|(_, v)| v)),
            Value::Array(a) => stack.extend(a),
            _ => {}
        }
    }
}

#[test]
fn ten_thousand_levels_are_refused() {
    let deep = nested(10_000);
    let shallow = json!({"a": 1});
    let too_deep = Err(PatchError::TooDeep(MAX_DEPTH));
    assert_eq!(merge_patch(&deep, &shallow), too_deep);
    assert_eq!(merge_patch(&shallow, &deep), too_deep);
    assert_eq!(strategic_merge_patch(&deep, &shallow, &NoMeta), too_deep);
    assert_eq!(strategic_merge_patch(&shallow, &deep, &NoMeta), too_deep);
    assert_eq!(json_patch(&deep, &json!([])), too_deep);
    // Not `json!`: it would serialize the deep value recursively.
    let mut op = json!({"op": "add", "path": "/b"});
    op["value"] = nested(10_000);
    let patch = Value::Array(vec![op]);
    assert_eq!(
        json_patch(&shallow, &patch).map_err(|e| e.http_status()),
        Err(400)
    );
    dismantle(patch);
    assert!(apply(None, &deep, "m", "v1", false, &NoMeta, "t").is_err());
    assert!(apply(Some(&deep), &shallow, "m", "v1", false, &NoMeta, "t").is_err());
    assert_eq!(field_set(&deep, &NoMeta), json!({}));
    let mut new = nested(10_000);
    record_update(None, &mut new, "m", "v1", &NoMeta, "t");
    dismantle(new);
    dismantle(deep);
}

#[test]
fn just_under_the_limit_works() {
    let doc = nested(MAX_DEPTH - 1);
    let patch = nested(MAX_DEPTH - 1);
    let out = merge_patch(&doc, &patch).expect("applies");
    dismantle(out);
    let out = strategic_merge_patch(&doc, &patch, &NoMeta).expect("applies");
    dismantle(out);
    let out = apply(Some(&doc), &patch, "m", "v1", false, &NoMeta, "t").expect("applies");
    dismantle(out);
    dismantle(doc);
    dismantle(patch);
    let doc = nested(MAX_DEPTH - 3);
    let mut op = json!({"op": "test", "path": ""});
    op["value"] = nested(MAX_DEPTH - 3);
    let patch = Value::Array(vec![op]);
    dismantle(json_patch(&doc, &patch).expect("applies"));
    dismantle(doc);
    dismantle(patch);
}
