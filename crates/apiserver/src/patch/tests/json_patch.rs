//! JSON patch (RFC 6902): the RFC's appendix A, pointers, errors.

use serde_json::{Value, json};

use crate::patch::{PatchError, json_patch};

fn ok(doc: Value, patch: Value) -> Value {
    json_patch(&doc, &patch).expect("patch applies")
}

fn err(doc: Value, patch: Value) -> PatchError {
    json_patch(&doc, &patch).expect_err("patch fails")
}

#[test]
fn a1_adding_an_object_member() {
    assert_eq!(
        ok(
            json!({"foo": "bar"}),
            json!([{"op": "add", "path": "/baz", "value": "qux"}])
        ),
        json!({"baz": "qux", "foo": "bar"})
    );
}

#[test]
fn a2_adding_an_array_element() {
    assert_eq!(
        ok(
            json!({"foo": ["bar", "baz"]}),
            json!([{"op": "add", "path": "/foo/1", "value": "qux"}])
        ),
        json!({"foo": ["bar", "qux", "baz"]})
    );
}

#[test]
fn a3_removing_an_object_member() {
    assert_eq!(
        ok(
            json!({"baz": "qux", "foo": "bar"}),
            json!([{"op": "remove", "path": "/baz"}])
        ),
        json!({"foo": "bar"})
    );
}

#[test]
fn a4_removing_an_array_element() {
    assert_eq!(
        ok(
            json!({"foo": ["bar", "qux", "baz"]}),
            json!([{"op": "remove", "path": "/foo/1"}])
        ),
        json!({"foo": ["bar", "baz"]})
    );
}

#[test]
fn a5_replacing_a_value() {
    assert_eq!(
        ok(
            json!({"baz": "qux", "foo": "bar"}),
            json!([{"op": "replace", "path": "/baz", "value": "boo"}])
        ),
        json!({"baz": "boo", "foo": "bar"})
    );
}

#[test]
fn a6_moving_a_value() {
    assert_eq!(
        ok(
            json!({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}}),
            json!([{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}])
        ),
        json!({"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}})
    );
}

#[test]
fn a7_moving_an_array_element() {
    assert_eq!(
        ok(
            json!({"foo": ["all", "grass", "cows", "eat"]}),
            json!([{"op": "move", "from": "/foo/1", "path": "/foo/3"}])
        ),
        json!({"foo": ["all", "cows", "eat", "grass"]})
    );
}

#[test]
fn a8_testing_a_value_success() {
    let doc = json!({"baz": "qux", "foo": ["a", 2, "c"]});
    assert_eq!(
        ok(
            doc.clone(),
            json!([
                {"op": "test", "path": "/baz", "value": "qux"},
                {"op": "test", "path": "/foo/1", "value": 2}
            ])
        ),
        doc
    );
}

#[test]
fn a9_testing_a_value_error() {
    let e = err(
        json!({"baz": "qux"}),
        json!([{"op": "test", "path": "/baz", "value": "bar"}]),
    );
    assert_eq!(e.to_string(), "testing value /baz failed: test failed");
    assert!(e.is_invalid());
    assert_eq!(e.http_status(), 422);
}

#[test]
fn a10_adding_a_nested_member_object() {
    assert_eq!(
        ok(
            json!({"foo": "bar"}),
            json!([{"op": "add", "path": "/child", "value": {"grandchild": {}}}])
        ),
        json!({"foo": "bar", "child": {"grandchild": {}}})
    );
}

#[test]
fn a11_ignoring_unrecognized_elements() {
    assert_eq!(
        ok(
            json!({"foo": "bar"}),
            json!([{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}])
        ),
        json!({"foo": "bar", "baz": "qux"})
    );
}

#[test]
fn a12_adding_to_a_nonexistent_target() {
    let e = err(
        json!({"foo": "bar"}),
        json!([{"op": "add", "path": "/baz/bat", "value": "qux"}]),
    );
    assert_eq!(
        e.to_string(),
        "add operation does not apply: doc is missing path: \"/baz/bat\": missing value"
    );
}

#[test]
fn a14_escape_ordering() {
    let doc = json!({"/": 9, "~1": 10});
    assert_eq!(
        ok(
            doc.clone(),
            json!([{"op": "test", "path": "/~01", "value": 10}])
        ),
        doc
    );
}

#[test]
fn a15_comparing_strings_and_numbers() {
    let e = err(
        json!({"/": 9, "~1": 10}),
        json!([{"op": "test", "path": "/~01", "value": "10"}]),
    );
    assert!(e.to_string().contains("/~01"));
}

#[test]
fn a16_adding_an_array_value() {
    assert_eq!(
        ok(
            json!({"foo": ["bar"]}),
            json!([{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}])
        ),
        json!({"foo": ["bar", ["abc", "def"]]})
    );
}

#[test]
fn rfc6901_escapes_name_slash_and_tilde_keys() {
    let doc = json!({"a/b": 1, "m~n": 2});
    assert_eq!(
        ok(
            doc,
            json!([
                {"op": "replace", "path": "/a~1b", "value": 10},
                {"op": "replace", "path": "/m~0n", "value": 20}
            ])
        ),
        json!({"a/b": 10, "m~n": 20})
    );
    let e = err(
        json!({}),
        json!([{"op": "add", "path": "/a~2", "value": 1}]),
    );
    assert!(e.to_string().contains("invalid escape"), "{e}");
    let e = err(json!({}), json!([{"op": "add", "path": "a", "value": 1}]));
    assert!(e.to_string().contains("JSON pointer"), "{e}");
}

#[test]
fn kubernetes_label_keys_with_slashes() {
    let doc = json!({"metadata": {"labels": {"app.kubernetes.io/name": "x"}}});
    assert_eq!(
        ok(
            doc,
            json!([{"op": "remove", "path": "/metadata/labels/app.kubernetes.io~1name"}])
        ),
        json!({"metadata": {"labels": {}}})
    );
}

#[test]
fn whole_document_add_replace_and_test() {
    assert_eq!(
        ok(
            json!({"a": 1}),
            json!([{"op": "add", "path": "", "value": {"b": 2}}])
        ),
        json!({"b": 2})
    );
    assert_eq!(
        ok(
            json!({"a": 1}),
            json!([{"op": "replace", "path": "", "value": [1]}])
        ),
        json!([1])
    );
    assert_eq!(
        ok(
            json!({"a": 1}),
            json!([{"op": "test", "path": "", "value": {"a": 1.0}}])
        ),
        json!({"a": 1})
    );
}

#[test]
fn array_indices_are_checked() {
    // Appending at index == len is allowed.
    assert_eq!(
        ok(
            json!([1, 2]),
            json!([{"op": "add", "path": "/2", "value": 3}])
        ),
        json!([1, 2, 3])
    );
    for (patch, what) in [
        (
            json!([{"op": "add", "path": "/3", "value": 3}]),
            "invalid index",
        ),
        (
            json!([{"op": "add", "path": "/01", "value": 3}]),
            "array index",
        ),
        (
            json!([{"op": "add", "path": "/-1", "value": 3}]),
            "array index",
        ),
        (json!([{"op": "remove", "path": "/2"}]), "invalid index"),
        (json!([{"op": "remove", "path": "/-"}]), "array index"),
    ] {
        let e = err(json!([1, 2]), patch.clone());
        assert!(e.to_string().contains(what), "{patch}: {e}");
        assert!(e.is_invalid());
    }
}

#[test]
fn errors_name_the_operation_and_path() {
    let cases = [
        (
            json!({"op": "remove", "path": "/nope"}),
            "remove operation does not apply: doc is missing path: \"/nope\": missing value",
        ),
        (
            json!({"op": "replace", "path": "/nope", "value": 1}),
            "replace operation does not apply: doc is missing key: /nope: missing value",
        ),
        (
            json!({"op": "move", "from": "/nope", "path": "/x"}),
            "move operation does not apply: doc is missing from path: /nope: missing value",
        ),
        (
            json!({"op": "copy", "from": "/nope", "path": "/x"}),
            "copy operation does not apply: doc is missing from path: /nope: missing value",
        ),
        (
            json!({"op": "copy", "from": "/a", "path": "/x/y"}),
            "copy operation does not apply: doc is missing destination path: /x/y: missing value",
        ),
        (
            json!({"op": "frobnicate", "path": "/a"}),
            "Unexpected kind: frobnicate",
        ),
        (json!({"path": "/a"}), "Unexpected kind: unknown"),
        (
            json!({"op": "add", "value": 1}),
            "add operation missing path field: missing value",
        ),
        (
            json!({"op": "add", "path": "/b"}),
            "add operation, missing value field: missing value",
        ),
        (
            json!({"op": "move", "path": "/b"}),
            "move operation, missing from field: missing value",
        ),
    ];
    for (op, want) in cases {
        let e = err(json!({"a": 1}), json!([op]));
        assert_eq!(e.to_string(), want);
        assert_eq!(e.http_status(), 422);
    }
}

#[test]
fn move_into_own_child_is_refused_and_move_to_itself_is_a_noop() {
    let e = err(
        json!({"a": {"b": 1}}),
        json!([{"op": "move", "from": "/a", "path": "/a/b/c"}]),
    );
    assert!(e.to_string().contains("prefix"), "{e}");
    assert_eq!(
        ok(
            json!({"a": {"b": 1}}),
            json!([{"op": "move", "from": "/a", "path": "/a"}])
        ),
        json!({"a": {"b": 1}})
    );
}

#[test]
fn copy_duplicates_values() {
    assert_eq!(
        ok(
            json!({"a": {"b": [1]}}),
            json!([{"op": "copy", "from": "/a", "path": "/c"}])
        ),
        json!({"a": {"b": [1]}, "c": {"b": [1]}})
    );
}

#[test]
fn operations_apply_in_order_and_failure_changes_nothing() {
    let doc = json!({"a": 1});
    let patch = json!([
        {"op": "add", "path": "/b", "value": 2},
        {"op": "test", "path": "/b", "value": 2},
        {"op": "test", "path": "/a", "value": 5}
    ]);
    assert!(json_patch(&doc, &patch).is_err());
    assert_eq!(doc, json!({"a": 1}));
}

#[test]
fn kubectl_rollout_undo_style_replace_of_the_template() {
    let doc =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "v2"}]}}}});
    let patch = json!([
        {"op": "replace", "path": "/spec/template", "value": {"spec": {"containers": [{"name": "main", "image": "v1"}]}}},
        {"op": "replace", "path": "/metadata", "value": {"annotations": {}}}
    ]);
    // The second replace fails: /metadata does not exist.
    assert!(json_patch(&doc, &patch).is_err());
    let patch = json!([
        {"op": "replace", "path": "/spec/template", "value": {"spec": {"containers": [{"name": "main", "image": "v1"}]}}}
    ]);
    assert_eq!(
        ok(doc, patch)["spec"]["template"]["spec"]["containers"][0]["image"],
        "v1"
    );
}

#[test]
fn multi_byte_keys_and_values() {
    let doc = json!({"日本": {"ключ": "значение"}, "emoji🚀": [1]});
    assert_eq!(
        ok(
            doc,
            json!([
                {"op": "replace", "path": "/日本/ключ", "value": "新しい値 ✓"},
                {"op": "add", "path": "/emoji🚀/-", "value": "ü"}
            ])
        ),
        json!({"日本": {"ключ": "新しい値 ✓"}, "emoji🚀": [1, "ü"]})
    );
}

#[test]
fn malformed_patches_are_bad_requests() {
    for patch in [json!({"op": "add"}), json!("x"), json!([1])] {
        let e = err(json!({}), patch);
        assert_eq!(e.http_status(), 400, "{e}");
    }
}

#[test]
fn too_many_operations() {
    let ops: Vec<Value> = (0..10_001)
        .map(|_| json!({"op": "test", "path": "", "value": {}}))
        .collect();
    let e = err(json!({}), Value::Array(ops));
    assert_eq!(
        e,
        PatchError::TooManyOperations {
            max: 10_000,
            got: 10_001
        }
    );
    assert_eq!(e.http_status(), 413);
    assert_eq!(
        e.to_string(),
        "The allowed maximum operations in a JSON patch is 10000, got 10001"
    );
}

#[test]
fn numbers_compare_by_value_in_test() {
    assert!(
        json_patch(
            &json!({"a": 1}),
            &json!([{"op": "test", "path": "/a", "value": 1.0}])
        )
        .is_ok()
    );
    assert!(
        json_patch(
            &json!({"a": 1}),
            &json!([{"op": "test", "path": "/a", "value": 2}])
        )
        .is_err()
    );
}
