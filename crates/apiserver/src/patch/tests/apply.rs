//! Server-side apply and managedFields.

use serde_json::{Value, json};

use crate::patch::{ApplyError, PatchMeta, apply, builtin_meta, field_set, record_update};

fn meta() -> Box<dyn PatchMeta + Send + Sync> {
    builtin_meta("apps", "Deployment").expect("known")
}

const T1: &str = "2025-01-01T00:00:00Z";
const T2: &str = "2025-01-02T00:00:00Z";
const T3: &str = "2025-01-03T00:00:00Z";

fn config(replicas: u64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "demo", "namespace": "default", "labels": {"app": "demo"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "demo"}},
            "template": {
                "metadata": {"labels": {"app": "demo"}},
                "spec": {"containers": [{"name": "main", "image": image}]}
            }
        }
    })
}

/// The managedFields entry of `manager` with `operation`.
fn entry<'a>(obj: &'a Value, manager: &str, operation: &str) -> Option<&'a Value> {
    obj["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager && e["operation"] == operation)
}

fn without_managed_fields(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o["metadata"].as_object_mut() {
        m.remove("managedFields");
    }
    o
}

#[test]
fn field_set_of_an_applied_configuration() {
    let cfg = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "demo", "labels": {"app": "demo"}},
        "spec": {"template": {"spec": {"containers": [{"name": "main", "image": "nginx"}]}}}
    });
    assert_eq!(
        field_set(&cfg, &*meta()),
        json!({
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {"f:template": {"f:spec": {"f:containers": {
                "k:{\"name\":\"main\"}": {".": {}, "f:image": {}, "f:name": {}}
            }}}}
        })
    );
    // Atomic maps are leaves, sets are keyed by value, other lists are leaves.
    let cfg = json!({
        "metadata": {"finalizers": ["a", "b"]},
        "spec": {"selector": {"matchLabels": {"app": "demo"}}, "template": {"spec": {
            "tolerations": [{"key": "k"}],
            "containers": [{"name": "c", "ports": [{"containerPort": 80}]}]
        }}}
    });
    assert_eq!(
        field_set(&cfg, &*meta()),
        json!({
            "f:metadata": {"f:finalizers": {"v:\"a\"": {}, "v:\"b\"": {}}},
            "f:spec": {
                "f:selector": {},
                "f:template": {"f:spec": {
                    "f:tolerations": {},
                    "f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:name": {}, "f:ports": {
                        "k:{\"containerPort\":80}": {".": {}, "f:containerPort": {}}
                    }}}
                }}
            }
        })
    );
}

#[test]
fn apply_creates() {
    let out = apply(
        None,
        &config(2, "nginx:1"),
        "kubectl",
        "apps/v1",
        false,
        &*meta(),
        T1,
    )
    .expect("applies");
    assert_eq!(without_managed_fields(&out), config(2, "nginx:1"));
    let mf = out["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields");
    assert_eq!(mf.len(), 1);
    assert_eq!(
        mf[0],
        json!({
            "manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1", "time": T1,
            "fieldsType": "FieldsV1", "fieldsV1": field_set(&config(2, "nginx:1"), &*meta())
        })
    );
    assert_eq!(mf[0]["fieldsV1"]["f:spec"]["f:replicas"], json!({}));
    assert!(mf[0]["fieldsV1"]["f:metadata"].get("f:name").is_none());
}

#[test]
fn reapply_changes_and_keeps_other_fields() {
    let m = meta();
    let live = apply(
        None,
        &config(2, "nginx:1"),
        "kubectl",
        "apps/v1",
        false,
        &*m,
        T1,
    )
    .expect("applies");
    // The server added fields (defaults, status): an apply keeps them.
    let mut live = live;
    live["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = json!("IfNotPresent");
    live["status"] = json!({"replicas": 2});
    let out = apply(
        Some(&live),
        &config(5, "nginx:2"),
        "kubectl",
        "apps/v1",
        false,
        &*m,
        T2,
    )
    .expect("applies");
    assert_eq!(out["spec"]["replicas"], 5);
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"],
        json!([{"name": "main", "image": "nginx:2", "imagePullPolicy": "IfNotPresent"}])
    );
    assert_eq!(out["status"], json!({"replicas": 2}));
    assert_eq!(entry(&out, "kubectl", "Apply").expect("entry")["time"], T2);
    assert_eq!(
        out["metadata"]["managedFields"].as_array().map(Vec::len),
        Some(1)
    );
}

#[test]
fn fields_dropped_from_the_configuration_are_removed() {
    let m = meta();
    let mut first = config(2, "nginx:1");
    first["metadata"]["labels"]["tier"] = json!("web");
    first["spec"]["template"]["spec"]["containers"] = json!([
        {"name": "main", "image": "nginx:1", "args": ["-v"]},
        {"name": "sidecar", "image": "envoy"}
    ]);
    first["spec"]["minReadySeconds"] = json!(5);
    let live = apply(None, &first, "kubectl", "apps/v1", false, &*m, T1).expect("applies");
    let out = apply(
        Some(&live),
        &config(2, "nginx:1"),
        "kubectl",
        "apps/v1",
        false,
        &*m,
        T2,
    )
    .expect("applies");
    assert_eq!(without_managed_fields(&out), config(2, "nginx:1"));
    // Dropping everything but the name removes the spec and the labels.
    let bare = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "demo", "namespace": "default"}});
    let out = apply(Some(&out), &bare, "kubectl", "apps/v1", false, &*m, T3).expect("applies");
    assert_eq!(out, bare);
}

#[test]
fn fields_another_manager_owns_survive_their_removal_from_the_configuration() {
    let m = meta();
    let mut first = config(2, "nginx:1");
    first["metadata"]["labels"]["tier"] = json!("web");
    let live = apply(None, &first, "kubectl", "apps/v1", false, &*m, T1).expect("applies");
    // Another applier applies the same label value: shared ownership, no conflict.
    let other = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "demo", "labels": {"tier": "web"}}});
    let live =
        apply(Some(&live), &other, "ops", "apps/v1", false, &*m, T2).expect("shared, no conflict");
    // kubectl stops applying the label: ops still owns it, so it stays.
    let out = apply(
        Some(&live),
        &config(2, "nginx:1"),
        "kubectl",
        "apps/v1",
        false,
        &*m,
        T3,
    )
    .expect("applies");
    assert_eq!(out["metadata"]["labels"]["tier"], "web");
    // Without ops it would have gone.
    let out = apply(
        Some(&apply(None, &first, "kubectl", "apps/v1", false, &*m, T1).expect("applies")),
        &config(2, "nginx:1"),
        "kubectl",
        "apps/v1",
        false,
        &*m,
        T2,
    )
    .expect("applies");
    assert!(out["metadata"]["labels"].get("tier").is_none());
}

#[test]
fn conflict_after_client_side_apply() {
    let m = meta();
    // kubectl apply (client-side) created the object: an Update by kubectl-client-side-apply.
    let mut live = config(1, "nginx:1");
    record_update(
        None,
        &mut live,
        "kubectl-client-side-apply",
        "apps/v1",
        &*m,
        T1,
    );
    let csa = entry(&live, "kubectl-client-side-apply", "Update").expect("entry");
    assert_eq!(csa["fieldsV1"]["f:spec"]["f:replicas"], json!({}));
    assert_eq!(csa["time"], T1);

    // The same values: no conflict, both own them.
    let out = apply(
        Some(&live),
        &config(1, "nginx:1"),
        "kubectl",
        "apps/v1",
        false,
        &*m,
        T2,
    )
    .expect("no change, no conflict");
    assert!(entry(&out, "kubectl-client-side-apply", "Update").is_some());
    assert!(entry(&out, "kubectl", "Apply").is_some());

    // A changed field: a conflict, worded as kube words it.
    let err = apply(
        Some(&live),
        &config(3, "nginx:1"),
        "kubectl",
        "apps/v1",
        false,
        &*m,
        T2,
    )
    .expect_err("conflict");
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas"
    );
    assert_eq!(err.http_status(), 409);
    let ApplyError::Conflict(conflicts) = &err else {
        panic!("not a conflict: {err}")
    };
    assert_eq!(conflicts[0].field, ".spec.replicas");
    assert_eq!(
        conflicts[0].cause_message(),
        "conflict with \"kubectl-client-side-apply\" using apps/v1"
    );

    // Two fields.
    let err = apply(
        Some(&live),
        &config(3, "nginx:2"),
        "kubectl",
        "apps/v1",
        false,
        &*m,
        T2,
    )
    .expect_err("conflict");
    assert_eq!(
        err.to_string(),
        "Apply failed with 2 conflicts: conflicts with \"kubectl-client-side-apply\" using apps/v1:\n- .spec.replicas\n- .spec.template.spec.containers[name=\"main\"].image"
    );

    // --force-conflicts: the fields move to the applier.
    let out = apply(
        Some(&live),
        &config(3, "nginx:2"),
        "kubectl",
        "apps/v1",
        true,
        &*m,
        T2,
    )
    .expect("forced");
    assert_eq!(out["spec"]["replicas"], 3);
    let csa = entry(&out, "kubectl-client-side-apply", "Update").expect("entry");
    assert!(csa["fieldsV1"]["f:spec"].get("f:replicas").is_none());
    assert!(
        csa["fieldsV1"]["f:metadata"]["f:labels"]
            .get("f:app")
            .is_some()
    );
    let ssa = entry(&out, "kubectl", "Apply").expect("entry");
    assert_eq!(ssa["fieldsV1"]["f:spec"]["f:replicas"], json!({}));
    // Apply entries sort before Update entries.
    assert_eq!(out["metadata"]["managedFields"][0]["operation"], "Apply");
}

#[test]
fn conflicts_with_another_applier_name_no_version() {
    let m = meta();
    let live = apply(None, &config(1, "a"), "ops", "apps/v1", false, &*m, T1).expect("applies");
    let err = apply(
        Some(&live),
        &config(1, "b"),
        "kubectl",
        "apps/v1",
        false,
        &*m,
        T2,
    )
    .expect_err("conflict");
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"ops\": .spec.template.spec.containers[name=\"main\"].image"
    );
}

#[test]
fn updates_take_ownership_from_appliers() {
    let m = meta();
    let live = apply(
        None,
        &config(2, "nginx:1"),
        "kubectl",
        "apps/v1",
        false,
        &*m,
        T1,
    )
    .expect("applies");
    // kubectl scale: an Update of spec.replicas.
    let mut scaled = live.clone();
    scaled["spec"]["replicas"] = json!(4);
    record_update(
        Some(&live),
        &mut scaled,
        "kubectl-scale",
        "apps/v1",
        &*m,
        T2,
    );
    let scale = entry(&scaled, "kubectl-scale", "Update").expect("entry");
    assert_eq!(scale["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));
    let ssa = entry(&scaled, "kubectl", "Apply").expect("entry");
    assert!(ssa["fieldsV1"]["f:spec"].get("f:replicas").is_none());
    // Re-applying replicas 2 now conflicts with the scaler.
    let err = apply(
        Some(&scaled),
        &config(2, "nginx:1"),
        "kubectl",
        "apps/v1",
        false,
        &*m,
        T3,
    )
    .expect_err("conflict");
    assert!(
        err.to_string()
            .contains("conflict with \"kubectl-scale\" using apps/v1: .spec.replicas"),
        "{err}"
    );
    // Re-applying without replicas leaves the scaler's value.
    let mut cfg = config(0, "nginx:1");
    cfg["spec"]
        .as_object_mut()
        .expect("spec")
        .remove("replicas");
    let out = apply(Some(&scaled), &cfg, "kubectl", "apps/v1", false, &*m, T3).expect("applies");
    assert_eq!(out["spec"]["replicas"], 4);
}

#[test]
fn record_update_tracks_changes() {
    let m = meta();
    let mut created = config(1, "a");
    record_update(None, &mut created, "kubectl-create", "apps/v1", &*m, T1);
    let e = entry(&created, "kubectl-create", "Update").expect("entry");
    assert_eq!(e["fieldsV1"], field_set(&config(1, "a"), &*m));
    assert_eq!(e["apiVersion"], "apps/v1");

    // A no-op update by another manager records nothing.
    let mut same = created.clone();
    record_update(Some(&created), &mut same, "controller", "apps/v1", &*m, T2);
    assert_eq!(same, created);

    // A change moves the field; removing a field removes it from every set.
    let mut edited = created.clone();
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = json!("b");
    edited["metadata"]["labels"]
        .as_object_mut()
        .expect("labels")
        .remove("app");
    record_update(
        Some(&created),
        &mut edited,
        "kubectl-edit",
        "apps/v1",
        &*m,
        T2,
    );
    let edit = entry(&edited, "kubectl-edit", "Update").expect("entry");
    assert_eq!(
        edit["fieldsV1"],
        json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"main\"}": {"f:image": {}}}}}}})
    );
    let create = entry(&edited, "kubectl-create", "Update").expect("entry");
    assert!(create["fieldsV1"]["f:metadata"].get("f:labels").is_none());
    assert!(create["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"main\"}"].get("f:image").is_none());
    assert_eq!(create["time"], T1);

    // managedFields: [] resets them.
    let mut reset = edited.clone();
    reset["metadata"]["managedFields"] = json!([]);
    record_update(Some(&edited), &mut reset, "x", "apps/v1", &*m, T3);
    assert!(reset["metadata"].get("managedFields").is_none());
}

#[test]
fn associative_lists_merge_by_key() {
    let m = meta();
    let mut cfg = config(1, "a");
    cfg["spec"]["template"]["spec"]["containers"] = json!([{"name": "main", "image": "a"}]);
    let live = apply(None, &cfg, "kubectl", "apps/v1", false, &*m, T1).expect("applies");
    // Another manager adds a container.
    let mut with_sidecar = live.clone();
    with_sidecar["spec"]["template"]["spec"]["containers"] =
        json!([{"name": "main", "image": "a"}, {"name": "sidecar", "image": "s"}]);
    record_update(
        Some(&live),
        &mut with_sidecar,
        "injector",
        "apps/v1",
        &*m,
        T2,
    );
    // kubectl adds a container of its own: the injector's stays.
    cfg["spec"]["template"]["spec"]["containers"] =
        json!([{"name": "init", "image": "i"}, {"name": "main", "image": "a"}]);
    let out = apply(
        Some(&with_sidecar),
        &cfg,
        "kubectl",
        "apps/v1",
        false,
        &*m,
        T3,
    )
    .expect("applies");
    let names: Vec<&str> = out["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["init", "main", "sidecar"]);
}

#[test]
fn applied_managed_fields_are_refused() {
    let mut cfg = config(1, "a");
    cfg["metadata"]["managedFields"] = json!([]);
    let err = apply(None, &cfg, "kubectl", "apps/v1", false, &*meta(), T1).expect_err("refused");
    assert_eq!(err.http_status(), 400);
    assert!(apply(None, &json!([1]), "kubectl", "apps/v1", false, &*meta(), T1).is_err());
}

#[test]
fn multi_byte_values_in_keys_and_paths() {
    let m = meta();
    let mut cfg = config(1, "a");
    cfg["metadata"]["labels"]["ü"] = json!("日本");
    cfg["spec"]["template"]["spec"]["containers"] = json!([{"name": "コンテナ", "image": "x"}]);
    let live = apply(None, &cfg, "ops", "apps/v1", false, &*m, T1).expect("applies");
    cfg["spec"]["template"]["spec"]["containers"][0]["image"] = json!("y");
    let err = apply(Some(&live), &cfg, "kubectl", "apps/v1", false, &*m, T2).expect_err("conflict");
    assert!(
        err.to_string()
            .ends_with(".spec.template.spec.containers[name=\"コンテナ\"].image"),
        "{err}"
    );
}
