//! Strategic merge patch: kubectl's patches, every directive, the ordering rules, errors.

use serde_json::{Value, json};

use crate::patch::{FieldMeta, NoMeta, PatchError, PatchMeta, builtin_meta, strategic_merge_patch};

fn smp(group: &str, kind: &str, doc: Value, patch: Value) -> Result<Value, PatchError> {
    let meta = builtin_meta(group, kind).expect("a built-in kind");
    strategic_merge_patch(&doc, &patch, &*meta)
}

fn deploy(doc: Value, patch: Value) -> Value {
    smp("apps", "Deployment", doc, patch).expect("patch applies")
}

fn pod(doc: Value, patch: Value) -> Value {
    smp("", "Pod", doc, patch).expect("patch applies")
}

/// Fails if any strategic-merge directive is left in `v`.
fn assert_no_directives(v: &Value) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                assert!(
                    !(k == "$patch"
                        || k == "$retainKeys"
                        || k.starts_with("$setElementOrder/")
                        || k.starts_with("$deleteFromPrimitiveList/")),
                    "directive {k} left in the result"
                );
                assert_no_directives(v);
            }
        }
        Value::Array(a) => a.iter().for_each(assert_no_directives),
        _ => {}
    }
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|e| e["name"].as_str().expect("a name").to_string())
        .collect()
}

fn demo_deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "demo",
            "namespace": "default",
            "labels": {"app": "demo"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"old\":true}\n"}
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "demo"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "demo"}},
                "spec": {
                    "containers": [{
                        "name": "main",
                        "image": "nginx:1.25",
                        "env": [{"name": "A", "value": "1"}],
                        "ports": [{"containerPort": 80, "protocol": "TCP"}]
                    }],
                    "restartPolicy": "Always"
                }
            }
        },
        "status": {"replicas": 1}
    })
}

#[test]
fn kubectl_apply_patch_from_the_spec() {
    // Exactly the body of api-surface.md B.4.3 (with the annotation's value filled in).
    let patch = json!({"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"new\":true}\n"}},
        "spec":{"replicas":3,"template":{"spec":{"$setElementOrder/containers":[{"name":"main"}],
          "containers":[{"$setElementOrder/env":[{"name":"A"}],"env":[{"name":"A","value":"2"}],"name":"main"}]}}}});
    let out = deploy(demo_deployment(), patch);
    let mut want = demo_deployment();
    want["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] =
        json!("{\"new\":true}\n");
    want["spec"]["replicas"] = json!(3);
    want["spec"]["template"]["spec"]["containers"][0]["env"] = json!([{"name": "A", "value": "2"}]);
    assert_eq!(out, want);
    assert_no_directives(&out);
}

#[test]
fn patch_delete_removes_a_container_by_name() {
    let mut doc = demo_deployment();
    doc["spec"]["template"]["spec"]["containers"] = json!([
        {"name": "main", "image": "a"}, {"name": "sidecar", "image": "b"}, {"name": "log", "image": "c"}
    ]);
    let out = deploy(
        doc,
        json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "main"}, {"name": "log"}],
            "containers": [{"$patch": "delete", "name": "sidecar"}]
        }}}}),
    );
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"],
        json!([{"name": "main", "image": "a"}, {"name": "log", "image": "c"}])
    );
    assert_no_directives(&out);
}

#[test]
fn patch_delete_removes_every_duplicate() {
    let out = pod(
        json!({"spec": {"containers": [{"name": "a"}, {"name": "a"}, {"name": "b", "image": "x"}]}}),
        json!({"spec": {"containers": [{"name": "a", "$patch": "delete"}]}}),
    );
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "b", "image": "x"}])
    );
}

#[test]
fn set_element_order_orders_patched_elements_and_keeps_server_only_ones_in_place() {
    // The server has a sidecar (x) the patch does not name.
    let out = pod(
        json!({"spec": {"containers": [{"name": "a"}, {"name": "x"}, {"name": "b"}]}}),
        json!({"spec": {
            "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
            "containers": [{"name": "b", "image": "B2"}]
        }}),
    );
    assert_eq!(names(&out["spec"]["containers"]), ["x", "b", "a"]);
    assert_eq!(
        out["spec"]["containers"][1],
        json!({"name": "b", "image": "B2"})
    );

    // A new element goes where the order says.
    let out = pod(
        json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}}),
        json!({"spec": {
            "$setElementOrder/containers": [{"name": "a"}, {"name": "c"}, {"name": "b"}],
            "containers": [{"name": "c", "image": "C"}]
        }}),
    );
    assert_eq!(names(&out["spec"]["containers"]), ["a", "c", "b"]);

    // The order alone reorders.
    let out = pod(
        json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}}),
        json!({"spec": {"$setElementOrder/containers": [{"name": "c"}, {"name": "a"}, {"name": "b"}]}}),
    );
    assert_eq!(names(&out["spec"]["containers"]), ["c", "a", "b"]);
}

#[test]
fn set_element_order_may_name_elements_that_do_not_exist() {
    // kube's test: "$setElementOrder contains item that is not present in the list to be merged".
    let out = pod(
        json!({"spec": {"containers": [{"name": "1"}, {"name": "3"}]}}),
        json!({"spec": {
            "$setElementOrder/containers": [{"name": "3"}, {"name": "2"}, {"name": "1"}],
            "containers": [{"name": "3", "image": "3"}, {"name": "1", "image": "1"}]
        }}),
    );
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "3", "image": "3"}, {"name": "1", "image": "1"}])
    );
}

#[test]
fn set_element_order_of_primitives() {
    let out = pod(
        json!({"metadata": {"finalizers": ["1", "3"]}}),
        json!({"metadata": {"$setElementOrder/finalizers": ["3", "2", "1"]}}),
    );
    assert_eq!(out["metadata"]["finalizers"], json!(["3", "1"]));
}

#[test]
fn set_element_order_must_agree_with_the_patch_list() {
    let e = smp(
        "",
        "Pod",
        json!({"spec": {"containers": [{"name": "1"}, {"name": "3"}, {"name": "2"}]}}),
        json!({"spec": {
            "$setElementOrder/containers": [{"name": "1"}, {"name": "2"}, {"name": "3"}],
            "containers": [{"name": "3", "image": "3"}, {"name": "1", "image": "1"}]
        }}),
    )
    .expect_err("orders disagree");
    assert!(e.to_string().contains("doesn't match"), "{e}");
}

#[test]
fn without_set_element_order_the_patch_order_wins_then_server_order() {
    // kube's "preserve the order from the patch in a merging list" cases.
    let out = pod(
        json!({"spec": {"containers": [{"name": "1"}, {"name": "2", "image": "b"}, {"name": "3"}]}}),
        json!({"spec": {"containers": [{"name": "3", "image": "c"}, {"name": "1", "image": "a"}, {"name": "2", "tty": true}]}}),
    );
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "3", "image": "c"}, {"name": "1", "image": "a"}, {"name": "2", "image": "b", "tty": true}])
    );
    let out = pod(
        json!({"spec": {"containers": [{"name": "1"}, {"name": "2", "image": "b"}, {"name": "3"}]}}),
        json!({"spec": {"containers": [{"name": "3", "image": "c"}, {"name": "1", "image": "a"}]}}),
    );
    assert_eq!(names(&out["spec"]["containers"]), ["2", "3", "1"]);
    // A new element without an order goes before the server-only ones (kube's interleaving).
    let out = pod(
        json!({"spec": {"containers": [{"name": "a"}]}}),
        json!({"spec": {"containers": [{"name": "b"}]}}),
    );
    assert_eq!(names(&out["spec"]["containers"]), ["b", "a"]);
}

#[test]
fn retain_keys_on_volumes() {
    let out = pod(
        json!({"spec": {"volumes": [
            {"name": "data", "hostPath": {"path": "/srv", "type": ""}},
            {"name": "other", "emptyDir": {}}
        ]}}),
        json!({"spec": {
            "$setElementOrder/volumes": [{"name": "data"}, {"name": "other"}],
            "volumes": [{"$retainKeys": ["emptyDir", "name"], "emptyDir": {"medium": "Memory"}, "name": "data"}]
        }}),
    );
    assert_eq!(
        out["spec"]["volumes"],
        json!([{"name": "data", "emptyDir": {"medium": "Memory"}}, {"name": "other", "emptyDir": {}}])
    );
    assert_no_directives(&out);
}

#[test]
fn retain_keys_on_the_deployment_strategy() {
    let out = deploy(
        demo_deployment(),
        json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null}}}),
    );
    assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
}

#[test]
fn retain_keys_errors() {
    // A key in the patch that the list does not name.
    let e = smp(
        "",
        "Pod",
        json!({"spec": {"volumes": [{"name": "v", "emptyDir": {}}]}}),
        json!({"spec": {"volumes": [{"$retainKeys": ["name"], "name": "v", "hostPath": {"path": "/"}}]}}),
    )
    .expect_err("refused");
    assert_eq!(
        e,
        PatchError::BadRequest("invalid patch format of retainKeys".into())
    );
    // Not a list.
    let e = smp(
        "",
        "Pod",
        json!({"spec": {}}),
        json!({"spec": {"$retainKeys": "name"}}),
    )
    .expect_err("refused");
    assert_eq!(e.http_status(), 400);
}

#[test]
fn delete_from_primitive_list_and_primitive_merge_lists() {
    let doc = json!({"metadata": {"finalizers": ["a", "b", "c"]}});
    let out = pod(
        doc.clone(),
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "zzz"]}}),
    );
    assert_eq!(out["metadata"]["finalizers"], json!(["a", "c"]));
    // Adding merges as a set, the patch's elements first (kube's interleaving).
    let out = pod(doc.clone(), json!({"metadata": {"finalizers": ["d", "a"]}}));
    assert_eq!(out["metadata"]["finalizers"], json!(["d", "a", "b", "c"]));
    // Both at once, with an order.
    let out = pod(
        doc,
        json!({"metadata": {
            "$setElementOrder/finalizers": ["a", "c", "d"],
            "$deleteFromPrimitiveList/finalizers": ["b"],
            "finalizers": ["d"]
        }}),
    );
    assert_eq!(out["metadata"]["finalizers"], json!(["a", "c", "d"]));
    // Nothing to delete from: the list is not created.
    let out = pod(
        json!({"metadata": {}}),
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}}),
    );
    assert_eq!(out, json!({"metadata": {}}));
    // A list without the merge strategy is still deleted from.
    let out = pod(
        json!({"spec": {"containers": [{"name": "a", "args": ["1", "2", "3"]}]}}),
        json!({"spec": {"containers": [{"name": "a", "$deleteFromPrimitiveList/args": ["2"]}]}}),
    );
    assert_eq!(out["spec"]["containers"][0]["args"], json!(["1", "3"]));
}

#[test]
fn malformed_directives_are_bad_requests() {
    let cases = [
        json!({"metadata": {"$deleteFromPrimitiveListfinalizers": ["a"]}}),
        json!({"spec": {"$setElementOrderX/containers": []}}),
        json!({"spec": {"$setElementOrder/containers": "main"}}),
    ];
    for patch in cases {
        let e = smp(
            "",
            "Pod",
            json!({"metadata": {}, "spec": {}}),
            patch.clone(),
        )
        .expect_err("refused");
        assert_eq!(e.http_status(), 400, "{patch}: {e}");
    }
    let e = smp(
        "",
        "Pod",
        json!({"spec": {}}),
        json!({"spec": {"$patch": "frobnicate"}}),
    )
    .expect_err("refused");
    assert!(
        e.to_string()
            .starts_with("unknown patch type: \"frobnicate\""),
        "{e}"
    );
    let e = smp(
        "",
        "Pod",
        json!({"spec": {"containers": [{"name": "a"}]}}),
        json!({"spec": {"containers": [{"$patch": "nope", "name": "a"}]}}),
    )
    .expect_err("refused");
    assert!(e.to_string().contains("unknown patch type"), "{e}");
}

#[test]
fn a_missing_merge_key_is_refused() {
    let e = smp(
        "",
        "Pod",
        json!({"spec": {"containers": [{"name": "a", "image": "x"}]}}),
        json!({"spec": {"containers": [{"image": "y"}]}}),
    )
    .expect_err("refused");
    assert!(
        e.to_string()
            .contains("does not contain declared merge key: name"),
        "{e}"
    );
    assert!(e.is_invalid());
    let e = smp(
        "",
        "Pod",
        json!({"spec": {"containers": [{"name": "a"}]}}),
        json!({"spec": {"containers": [{"$patch": "delete"}]}}),
    )
    .expect_err("refused");
    assert!(
        e.to_string()
            .contains("does not contain declared merge key"),
        "{e}"
    );
}

#[test]
fn lists_of_lists_and_mixed_lists_are_refused() {
    let e = smp(
        "",
        "Pod",
        json!({"metadata": {"finalizers": [["a"]]}}),
        json!({"metadata": {"finalizers": [["b"]]}}),
    )
    .expect_err("refused");
    assert_eq!(
        e,
        PatchError::Invalid("lists of lists are not supported".into())
    );
    let e = smp(
        "",
        "Pod",
        json!({"metadata": {"finalizers": ["a"]}}),
        json!({"metadata": {"finalizers": [1]}}),
    )
    .expect_err("refused");
    assert!(e.to_string().contains("not identical"), "{e}");
}

#[test]
fn patch_replace_on_maps_and_lists() {
    let out = deploy(
        demo_deployment(),
        json!({"spec": {"template": {"metadata": {"labels": {"$patch": "replace", "tier": "web"}}}}}),
    );
    assert_eq!(
        out["spec"]["template"]["metadata"]["labels"],
        json!({"tier": "web"})
    );
    let out = pod(
        json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}}),
        json!({"spec": {"containers": [{"$patch": "replace"}, {"name": "z", "image": "z"}]}}),
    );
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "z", "image": "z"}])
    );
    let out = pod(
        json!({"spec": {"containers": [{"name": "a"}]}}),
        json!({"spec": {"containers": [{"$patch": "replace"}]}}),
    );
    assert_eq!(out["spec"]["containers"], json!([]));
    // The whole object.
    let out = pod(
        json!({"a": 1, "b": 2}),
        json!({"$patch": "replace", "c": 3}),
    );
    assert_eq!(out, json!({"c": 3}));
    // A map the object lacks.
    let out = pod(
        json!({"spec": {}}),
        json!({"spec": {"nodeSelector": {"$patch": "replace", "disk": "ssd"}}}),
    );
    assert_eq!(out["spec"]["nodeSelector"], json!({"disk": "ssd"}));
}

#[test]
fn patch_delete_and_merge_on_maps() {
    let out = pod(
        json!({"metadata": {"labels": {"a": "1", "b": "2"}, "name": "p"}}),
        json!({"metadata": {"labels": {"$patch": "delete"}}}),
    );
    assert_eq!(out["metadata"], json!({"labels": {}, "name": "p"}));
    let out = pod(
        json!({"metadata": {"labels": {"a": "1"}}}),
        json!({"metadata": {"labels": {"$patch": "merge", "b": "2"}}}),
    );
    assert_eq!(out["metadata"]["labels"], json!({"a": "1", "b": "2"}));
    // A deletion of a map the object lacks leaves it absent.
    let out = pod(
        json!({"metadata": {}}),
        json!({"metadata": {"labels": {"$patch": "delete"}}}),
    );
    assert_eq!(out["metadata"], json!({}));
}

#[test]
fn null_deletes_and_missing_fields_stay() {
    let out = deploy(
        demo_deployment(),
        json!({"metadata": {"annotations": null, "labels": {"new": "x"}}, "spec": {"strategy": {"rollingUpdate": null}}}),
    );
    assert!(out["metadata"].get("annotations").is_none());
    assert_eq!(
        out["metadata"]["labels"],
        json!({"app": "demo", "new": "x"})
    );
    assert_eq!(out["spec"]["strategy"], json!({"type": "RollingUpdate"}));
    assert_eq!(out["spec"]["replicas"], json!(1));
    // Nulls inside new values are dropped.
    let out = pod(
        json!({}),
        json!({"spec": {"nodeSelector": {"a": "b", "c": null}}}),
    );
    assert_eq!(out, json!({"spec": {"nodeSelector": {"a": "b"}}}));
}

#[test]
fn lists_without_a_merge_key_are_replaced() {
    let out = pod(
        json!({"spec": {
            "tolerations": [{"key": "a", "operator": "Exists"}],
            "containers": [{"name": "c", "args": ["1", "2"], "command": ["sh"]}]
        }}),
        json!({"spec": {
            "tolerations": [{"key": "b", "operator": "Exists"}],
            "containers": [{"name": "c", "args": ["3"]}]
        }}),
    );
    assert_eq!(
        out["spec"]["tolerations"],
        json!([{"key": "b", "operator": "Exists"}])
    );
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "c", "args": ["3"], "command": ["sh"]}])
    );
}

#[test]
fn container_sublists_merge_by_their_keys() {
    let out = pod(
        json!({"spec": {"containers": [{
            "name": "c",
            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
            "ports": [{"containerPort": 80, "name": "http"}],
            "volumeMounts": [{"mountPath": "/data", "name": "d"}]
        }]}}),
        json!({"spec": {"containers": [{
            "name": "c",
            "env": [{"name": "B", "value": "3"}],
            "ports": [{"containerPort": 443, "name": "https"}, {"containerPort": 80.0, "protocol": "TCP"}],
            "volumeMounts": [{"mountPath": "/data", "readOnly": true}]
        }]}}),
    );
    let c = &out["spec"]["containers"][0];
    assert_eq!(
        c["env"],
        json!([{"name": "A", "value": "1"}, {"name": "B", "value": "3"}])
    );
    assert_eq!(c["ports"].as_array().map(Vec::len), Some(2));
    let http = c["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .find(|p| p["name"] == "http")
        .expect("http port");
    assert_eq!(http["protocol"], "TCP");
    assert_eq!(http["containerPort"].as_f64(), Some(80.0));
    assert_eq!(
        c["volumeMounts"],
        json!([{"mountPath": "/data", "name": "d", "readOnly": true}])
    );
}

#[test]
fn pod_spec_metadata_applies_in_every_template() {
    // CronJob: spec.jobTemplate.spec.template.spec.
    let doc = json!({"spec": {"jobTemplate": {"spec": {"template": {
        "metadata": {"finalizers": ["x"]},
        "spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "2"}]}
    }}}}});
    let out = smp(
        "batch",
        "CronJob",
        doc,
        json!({"spec": {"jobTemplate": {"spec": {"template": {
            "metadata": {"finalizers": ["y"]},
            "spec": {"containers": [{"name": "b", "image": "3"}]}
        }}}}}),
    )
    .expect("applies");
    let t = &out["spec"]["jobTemplate"]["spec"]["template"];
    assert_eq!(
        t["spec"]["containers"],
        json!([{"name": "a", "image": "1"}, {"name": "b", "image": "3"}])
    );
    assert_eq!(t["metadata"]["finalizers"], json!(["y", "x"]));
    // Job, StatefulSet, DaemonSet, ReplicaSet: spec.template.spec.
    for (group, kind) in [
        ("batch", "Job"),
        ("apps", "StatefulSet"),
        ("apps", "DaemonSet"),
        ("apps", "ReplicaSet"),
        ("", "ReplicationController"),
    ] {
        let out = smp(
            group,
            kind,
            json!({"spec": {"template": {"spec": {"initContainers": [{"name": "i", "image": "1"}], "volumes": [{"name": "v", "emptyDir": {}}]}}}}),
            json!({"spec": {"template": {"spec": {"initContainers": [{"name": "j"}], "volumes": [{"name": "w", "emptyDir": {}}]}}}}),
        )
        .expect("applies");
        assert_eq!(
            names(&out["spec"]["template"]["spec"]["initContainers"]),
            ["j", "i"],
            "{kind}"
        );
        assert_eq!(
            names(&out["spec"]["template"]["spec"]["volumes"]),
            ["w", "v"],
            "{kind}"
        );
    }
    // PodTemplate: template.spec.
    let out = smp(
        "",
        "PodTemplate",
        json!({"template": {"spec": {"containers": [{"name": "a"}]}}}),
        json!({"template": {"spec": {"containers": [{"name": "b"}]}}}),
    )
    .expect("applies");
    assert_eq!(names(&out["template"]["spec"]["containers"]), ["b", "a"]);
}

#[test]
fn kind_specific_lists() {
    // Service ports by port.
    let out = smp(
        "",
        "Service",
        json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}], "selector": {"app": "a"}}}),
        json!({"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443}]}}),
    )
    .expect("applies");
    assert_eq!(
        out["spec"]["ports"],
        json!([{"port": 80, "targetPort": 8080, "name": "http"}, {"port": 443}])
    );
    // Pod status conditions by type (a kubelet status patch).
    let out = pod(
        json!({"status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "PodScheduled", "status": "True"}]}}),
        json!({"status": {"$setElementOrder/conditions": [{"type": "Ready"}, {"type": "PodScheduled"}], "conditions": [{"type": "Ready", "status": "True"}]}}),
    );
    assert_eq!(
        out["status"]["conditions"],
        json!([{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}])
    );
    // Node addresses by type.
    let out = smp(
        "",
        "Node",
        json!({"status": {"addresses": [{"type": "InternalIP", "address": "198.18.0.7"}]}}),
        json!({"status": {"addresses": [{"type": "Hostname", "address": "n1"}]}}),
    )
    .expect("applies");
    assert_eq!(out["status"]["addresses"].as_array().map(Vec::len), Some(2));
    // ownerReferences by uid.
    let out = smp(
        "apps",
        "ReplicaSet",
        json!({"metadata": {"ownerReferences": [{"uid": "u1", "name": "d1"}]}}),
        json!({"metadata": {"ownerReferences": [{"uid": "u1", "controller": true}, {"uid": "u2", "name": "d2"}]}}),
    )
    .expect("applies");
    assert_eq!(
        out["metadata"]["ownerReferences"],
        json!([{"uid": "u1", "name": "d1", "controller": true}, {"uid": "u2", "name": "d2"}])
    );
    // Deployment status conditions by type.
    let out = deploy(
        json!({"status": {"conditions": [{"type": "Available", "status": "True"}]}}),
        json!({"status": {"conditions": [{"type": "Progressing", "status": "True"}]}}),
    );
    assert_eq!(
        out["status"]["conditions"].as_array().map(Vec::len),
        Some(2)
    );
}

#[test]
fn custom_resources_have_no_metadata() {
    assert!(builtin_meta("example.com", "Widget").is_none());
    assert!(builtin_meta("apps", "Widget").is_none());
    assert!(builtin_meta("apiextensions.k8s.io", "CustomResourceDefinition").is_some());
    assert_eq!(PatchError::StrategicMergeUnsupported.http_status(), 415);
    assert!(
        PatchError::StrategicMergeUnsupported
            .to_string()
            .contains("application/merge-patch+json")
    );
}

#[test]
fn builtin_meta_answers_the_tags() {
    let meta = builtin_meta("apps", "Deployment").expect("known");
    let p = |s: &str| s.split('.').map(str::to_string).collect::<Vec<_>>();
    let keyed = |k: &str| FieldMeta {
        merge: true,
        merge_key: Some(k.into()),
        ..FieldMeta::default()
    };
    assert_eq!(
        meta.field(&p("spec.template.spec.containers")),
        keyed("name")
    );
    assert_eq!(
        meta.field(&p("spec.template.spec.containers.env")),
        keyed("name")
    );
    assert_eq!(
        meta.field(&p("spec.template.spec.initContainers.ports")),
        keyed("containerPort")
    );
    assert_eq!(
        meta.field(&p("spec.template.spec.ephemeralContainers.volumeDevices")),
        keyed("devicePath")
    );
    assert_eq!(
        meta.field(&p("spec.template.spec.containers.volumeMounts")),
        keyed("mountPath")
    );
    assert_eq!(
        meta.field(&p("spec.template.spec.imagePullSecrets")),
        keyed("name")
    );
    assert_eq!(
        meta.field(&p("spec.template.spec.hostAliases")),
        keyed("ip")
    );
    assert_eq!(
        meta.field(&p("spec.template.spec.volumes")),
        FieldMeta {
            retain_keys: true,
            ..keyed("name")
        }
    );
    assert_eq!(meta.field(&p("metadata.ownerReferences")), keyed("uid"));
    assert_eq!(
        meta.field(&p("metadata.finalizers")),
        FieldMeta {
            merge: true,
            ..FieldMeta::default()
        }
    );
    assert_eq!(
        meta.field(&p("spec.template.metadata.finalizers")),
        FieldMeta {
            merge: true,
            ..FieldMeta::default()
        }
    );
    assert_eq!(meta.field(&p("status.conditions")), keyed("type"));
    assert_eq!(
        meta.field(&p("spec.template.spec.tolerations")),
        FieldMeta::default()
    );
    assert_eq!(
        meta.field(&p("spec.template.spec.containers.resizePolicy")),
        FieldMeta::default()
    );
    assert_eq!(meta.field(&p("spec.containers")), FieldMeta::default());
    assert!(meta.field(&p("spec.selector")).atomic);
    // Containers' lists are not PodSpec lists.
    assert_eq!(
        meta.field(&p("spec.template.spec.env")),
        FieldMeta::default()
    );
}

#[test]
fn scalars_and_kind_changes_replace() {
    let out = pod(
        json!({"a": {"b": 1}, "c": [1], "d": "x", "e": null}),
        json!({"a": "flat", "c": {"now": "map"}, "d": 2, "e": {"f": 1}}),
    );
    assert_eq!(
        out,
        json!({"a": "flat", "c": {"now": "map"}, "d": 2, "e": {"f": 1}})
    );
}

#[test]
fn directives_inside_new_elements_are_applied_and_stripped() {
    let out = pod(
        json!({"spec": {"containers": [{"name": "a"}]}}),
        json!({"spec": {
            "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
            "containers": [{"name": "b", "$setElementOrder/env": [{"name": "Y"}, {"name": "X"}],
                            "env": [{"name": "Y", "value": "y"}, {"name": "X", "value": "x"}], "image": null}]
        }}),
    );
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "a"}, {"name": "b", "env": [{"name": "Y", "value": "y"}, {"name": "X", "value": "x"}]}])
    );
    assert_no_directives(&out);
    // A new list with deletion elements.
    let out = pod(
        json!({"spec": {}}),
        json!({"spec": {"containers": [{"name": "x", "$patch": "delete"}, {"name": "y"}]}}),
    );
    assert_eq!(out["spec"]["containers"], json!([{"name": "y"}]));
}

#[test]
fn dollar_fields_that_are_not_directives_are_kept() {
    let meta = builtin_meta("apiextensions.k8s.io", "CustomResourceDefinition").expect("known");
    let doc = json!({"spec": {"versions": [{"schema": {"openAPIV3Schema": {"$ref": "a"}}}]}});
    let out =
        strategic_merge_patch(&doc, &json!({"spec": {"group": "g"}}), &*meta).expect("applies");
    assert_eq!(
        out["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["$ref"],
        "a"
    );
}

#[test]
fn multi_byte_strings_and_merge_keys() {
    let out = pod(
        json!({"metadata": {"labels": {"ü": "ö"}, "finalizers": ["日本/語"]}, "spec": {"containers": [{"name": "コンテナ", "env": [{"name": "ÄÖ", "value": "🚀"}]}]}}),
        json!({"metadata": {"labels": {"ü": "ß"}, "$deleteFromPrimitiveList/finalizers": ["日本/語"]},
               "spec": {"containers": [{"name": "コンテナ", "env": [{"name": "ÄÖ", "value": "✓ done"}]}]}}),
    );
    assert_eq!(
        out["metadata"],
        json!({"labels": {"ü": "ß"}, "finalizers": []})
    );
    assert_eq!(
        out["spec"]["containers"][0]["env"],
        json!([{"name": "ÄÖ", "value": "✓ done"}])
    );
}

#[test]
fn no_meta_behaves_like_a_merge_patch_with_directives() {
    let out = strategic_merge_patch(
        &json!({"a": {"b": 1, "c": 2}, "l": [1, 2]}),
        &json!({"a": {"b": null, "d": 3}, "l": [3]}),
        &NoMeta,
    )
    .expect("applies");
    assert_eq!(out, json!({"a": {"c": 2, "d": 3}, "l": [3]}));
}

#[test]
fn a_custom_meta_works() {
    struct Meta;
    impl PatchMeta for Meta {
        fn field(&self, path: &[String]) -> FieldMeta {
            if path == ["items"] {
                FieldMeta {
                    merge: true,
                    merge_key: Some("id".into()),
                    ..FieldMeta::default()
                }
            } else {
                FieldMeta::default()
            }
        }
    }
    let out = strategic_merge_patch(
        &json!({"items": [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}]}),
        &json!({"items": [{"id": 2, "v": "c"}]}),
        &Meta,
    )
    .expect("applies");
    assert_eq!(
        out,
        json!({"items": [{"id": 1, "v": "a"}, {"id": 2, "v": "c"}]})
    );
}

#[test]
fn documents_must_be_objects() {
    assert_eq!(
        strategic_merge_patch(&json!([1]), &json!({}), &NoMeta),
        Err(PatchError::BadRequest("invalid JSON document".into()))
    );
    assert!(strategic_merge_patch(&json!({}), &json!([1]), &NoMeta).is_err());
}
