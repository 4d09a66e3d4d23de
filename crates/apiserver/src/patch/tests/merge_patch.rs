//! JSON merge patch (RFC 7386): the RFC's appendix A and more.

use serde_json::json;

use crate::patch::merge_patch;

#[test]
fn rfc7386_appendix_a() {
    let cases = [
        (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
        (
            json!({"a": "b"}),
            json!({"b": "c"}),
            json!({"a": "b", "b": "c"}),
        ),
        (json!({"a": "b"}), json!({"a": null}), json!({})),
        (
            json!({"a": "b", "b": "c"}),
            json!({"a": null}),
            json!({"b": "c"}),
        ),
        (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
        (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
        (
            json!({"a": {"b": "c"}}),
            json!({"a": {"b": "d", "c": null}}),
            json!({"a": {"b": "d"}}),
        ),
        (
            json!({"a": [{"b": "c"}]}),
            json!({"a": [1]}),
            json!({"a": [1]}),
        ),
        (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
        (json!({"a": "b"}), json!(["c"]), json!(["c"])),
        (json!({"a": "foo"}), json!(null), json!(null)),
        (json!({"a": "foo"}), json!("bar"), json!("bar")),
        (
            json!({"e": null}),
            json!({"a": 1}),
            json!({"e": null, "a": 1}),
        ),
        (
            json!([1, 2]),
            json!({"a": "b", "c": null}),
            json!({"a": "b"}),
        ),
        (
            json!({}),
            json!({"a": {"bb": {"ccc": null}}}),
            json!({"a": {"bb": {}}}),
        ),
    ];
    for (doc, patch, want) in cases {
        assert_eq!(
            merge_patch(&doc, &patch).expect("applies"),
            want,
            "{doc} + {patch}"
        );
    }
}

#[test]
fn kubectl_scale_patch() {
    let doc = json!({"spec": {"replicas": 1, "selector": "app=demo"}, "status": {"replicas": 1}});
    assert_eq!(
        merge_patch(&doc, &json!({"spec": {"replicas": 4}})).expect("applies"),
        json!({"spec": {"replicas": 4, "selector": "app=demo"}, "status": {"replicas": 1}})
    );
}

#[test]
fn lists_are_replaced_whole() {
    let doc = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b"}]}});
    assert_eq!(
        merge_patch(
            &doc,
            &json!({"spec": {"containers": [{"name": "a", "image": "y"}]}})
        )
        .expect("applies"),
        json!({"spec": {"containers": [{"name": "a", "image": "y"}]}})
    );
}

#[test]
fn multi_byte_strings() {
    let doc = json!({"metadata": {"annotations": {"note": "héllo", "日本語": "はい"}}});
    assert_eq!(
        merge_patch(
            &doc,
            &json!({"metadata": {"annotations": {"日本語": null, "note": "🚀 ok"}}})
        )
        .expect("applies"),
        json!({"metadata": {"annotations": {"note": "🚀 ok"}}})
    );
}
