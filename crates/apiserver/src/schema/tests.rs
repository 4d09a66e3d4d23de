use serde_json::{Value, json};

use super::*;

fn resolve<'a>(defs: &'a Map<String, Value>, node: &'a Value) -> &'a Value {
    let reference = node
        .get("$ref")
        .or_else(|| node.pointer("/allOf/0/$ref"))
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix(builtin::REF_PREFIX));
    match reference {
        Some(name) => &defs[name],
        None => node,
    }
}

#[test]
fn deployment_schema_has_descriptions_refs_and_int_or_string() {
    let defs = builtin_components("apps", "v1");
    let deployment = &defs["io.k8s.api.apps.v1.Deployment"];
    assert_eq!(
        deployment["x-kubernetes-group-version-kind"],
        json!([{"group": "apps", "kind": "Deployment", "version": "v1"}])
    );
    assert!(
        deployment["description"]
            .as_str()
            .unwrap()
            .contains("declarative updates")
    );
    assert!(deployment.get("required").is_none());
    let spec_prop = &deployment["properties"]["spec"];
    assert_eq!(
        spec_prop["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"
    );
    assert!(spec_prop["description"].is_string());
    let spec = resolve(&defs, spec_prop);
    let strategy = &spec["properties"]["strategy"];
    assert_eq!(strategy["x-kubernetes-patch-strategy"], "retainKeys");
    let strategy = resolve(&defs, strategy);
    let rolling = resolve(&defs, &strategy["properties"]["rollingUpdate"]);
    let surge = resolve(&defs, &rolling["properties"]["maxSurge"]);
    assert_eq!(surge["x-kubernetes-int-or-string"], true);
    assert!(
        rolling["properties"]["maxSurge"]["description"]
            .as_str()
            .unwrap()
            .contains("maximum number of pods")
    );
    // Patch metadata from the patch module's tables.
    let pod_spec = &defs["io.k8s.api.core.v1.PodSpec"];
    let containers = &pod_spec["properties"]["containers"];
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
    assert_eq!(containers["x-kubernetes-list-type"], "map");
    assert_eq!(containers["x-kubernetes-list-map-keys"], json!(["name"]));
    let meta = &defs[OBJECT_META];
    assert_eq!(
        meta["properties"]["finalizers"]["x-kubernetes-list-type"],
        "set"
    );
    assert_eq!(
        meta["properties"]["ownerReferences"]["x-kubernetes-patch-merge-key"],
        "uid"
    );
    // Free-form objects keep what they hold.
    assert_eq!(
        defs["io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1"]["x-kubernetes-preserve-unknown-fields"],
        true
    );
}

#[test]
fn core_group_has_pods_and_schemas_are_cached() {
    let a = builtin_components("", "v1");
    let b = builtin_components("", "v1");
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(
        a["io.k8s.api.core.v1.Pod"]["x-kubernetes-group-version-kind"][0]["kind"],
        "Pod"
    );
    assert!(a.contains_key("io.k8s.api.core.v1.Container"));
    assert!(builtin_components("nosuch.example.com", "v1").is_empty());
    assert_eq!(
        builtin::schema_name("batch", "v1", "Job").as_deref(),
        Some("io.k8s.api.batch.v1.Job")
    );
}

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web", "free-form": "yes"},
                     "annotations": {"a": "b"}, "managedFields": [{"manager": "x", "fieldsV1": {"f:spec": {"f:anything": {}}}}]},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{
                    "name": "c", "image": "nginx",
                    "resources": {"limits": {"cpu": "500m", "memory": 1024}},
                    "env": [{"name": "A", "value": "1"}],
                    "ports": [{"containerPort": 80}],
                }],
                "nodeSelector": {"disk": "ssd"}}
            }
        },
        "status": {"replicas": 1}
    })
}

#[test]
fn a_valid_deployment_has_no_unknown_fields() {
    assert_eq!(
        unknown_fields("apps", "v1", "Deployment", &deployment()),
        Vec::<String>::new()
    );
}

#[test]
fn unknown_fields_are_found_at_every_depth() {
    let mut d = deployment();
    d["spec"]["replicsa"] = json!(3);
    d["metadata"]["labelz"] = json!({"a": "b"});
    d["spec"]["template"]["spec"]["containers"][0]["imagee"] = json!("x");
    d["spec"]["template"]["spec"]["containers"][0]["env"][0]["valueFrom"] =
        json!({"secretKeyRef": {"name": "s", "key": "k", "bogus": 1}});
    d["spec"]["strategy"]["rollingUpdate"]["maxSurgee"] = json!(1);
    let mut unknown = unknown_fields("apps", "v1", "Deployment", &d);
    unknown.sort();
    assert_eq!(
        unknown,
        vec![
            "metadata.labelz",
            "spec.replicsa",
            "spec.strategy.rollingUpdate.maxSurgee",
            "spec.template.spec.containers[0].env[0].valueFrom.secretKeyRef.bogus",
            "spec.template.spec.containers[0].imagee",
        ]
    );
    // Pruning drops exactly those.
    let pruned = prune_unknown_fields("apps", "v1", "Deployment", &mut d);
    assert_eq!(pruned.len(), 5);
    let mut expected = deployment();
    expected["spec"]["template"]["spec"]["containers"][0]["env"][0]["valueFrom"] =
        json!({"secretKeyRef": {"name": "s", "key": "k"}});
    assert_eq!(d, expected);
}

#[test]
fn other_kinds_and_free_form_fields() {
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "i", "livenessProbe": {"httpGet": {"port": "http", "path": "/"}}}],
                 "overhead": {"cpu": "1"}, "volumes": [{"name": "v", "emptyDir": {"sizeLimit": "1Gi"}}]},
    });
    assert!(unknown_fields("", "v1", "Pod", &pod).is_empty());
    let mut bad = pod.clone();
    bad["spec"]["volumes"][0]["emptyDir"]["medium2"] = json!("Memory");
    bad["spec"]["containers"][0]["livenessProbe"]["httpGet"]["prot"] = json!(1);
    assert_eq!(
        unknown_fields("", "v1", "Pod", &bad),
        vec![
            "spec.containers[0].livenessProbe.httpGet.prot",
            "spec.volumes[0].emptyDir.medium2",
        ]
    );
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"any": "x", "key": "y"}, "extra": 1});
    assert_eq!(unknown_fields("", "v1", "ConfigMap", &cm), vec!["extra"]);
    // RawExtension holds anything.
    let revision = json!({"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "r"},
                          "revision": 1, "data": {"spec": {"whatever": [1, 2]}}});
    assert!(unknown_fields("apps", "v1", "ControllerRevision", &revision).is_empty());
    let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
                     "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}], "restartPolicy": "Never"}},
                              "backoffLimitt": 1}});
    assert_eq!(
        unknown_fields("batch", "v1", "Job", &job),
        vec!["spec.backoffLimitt"]
    );
    // A CRD's own schema (recursive JSONSchemaProps, JSON defaults).
    let crd = crontab_crd();
    assert!(
        unknown_fields(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            &crd
        )
        .is_empty()
    );
    // Kinds without a schema report nothing.
    assert!(unknown_fields("example.com", "v1", "Thing", &json!({"x": 1})).is_empty());
}

fn crontab_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "spec": {"type": "object", "required": ["cronSpec"], "properties": {
                "cronSpec": {"type": "string", "pattern": "^(\\S+ ){4}\\S+$"},
                "replicas": {"type": "integer", "minimum": 1, "maximum": 10},
                "mode": {"type": "string", "enum": ["a", "b"]},
                "port": {"x-kubernetes-int-or-string": true},
                "config": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                           "properties": {"known": {"type": "object", "properties": {"x": {"type": "string"}}}}},
                "tags": {"type": "object", "additionalProperties": {"type": "string"}},
                "items": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
                "template": {"type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true},
            }},
            "status": {"type": "object", "properties": {"ok": {"type": "boolean"}}},
        }
    })
}

fn crontab_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "crontabs.stable.example.com"},
        "spec": {"group": "stable.example.com", "scope": "Namespaced",
                 "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab", "shortNames": ["ct"]},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": crontab_schema()},
                               "subresources": {"status": {}},
                               "additionalPrinterColumns": [{"name": "Spec", "type": "string", "jsonPath": ".spec.cronSpec"}]}]}
    })
}

#[test]
fn custom_resources_are_pruned_against_their_schema() {
    let schema = crontab_schema();
    let mut cr = json!({
        "apiVersion": "stable.example.com/v1", "kind": "CronTab",
        "metadata": {"name": "c", "labels": {"a": "b"}, "bogus": 1},
        "spec": {"cronSpec": "* * * * *", "replicas": 2, "port": "http", "typo": true,
                 "config": {"anything": {"goes": 1}, "known": {"x": "y", "z": 1}},
                 "tags": {"a": "b"},
                 "items": [{"name": "n", "extra": 1}],
                 "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": {}}},
        "extraRoot": 1,
    });
    let mut unknown = crd::prune(&schema, &mut cr);
    unknown.sort();
    assert_eq!(
        unknown,
        vec![
            "extraRoot",
            "metadata.bogus",
            "spec.config.known.z",
            "spec.items[0].extra",
            "spec.typo"
        ]
    );
    assert_eq!(cr["spec"]["config"]["anything"], json!({"goes": 1}));
    assert!(cr["spec"].get("typo").is_none());
    assert!(crd::validate(&schema, &cr).is_empty());
}

#[test]
fn custom_resources_are_validated() {
    let schema = crontab_schema();
    let cr = json!({
        "apiVersion": "stable.example.com/v1", "kind": "CronTab", "metadata": {"name": "c"},
        "spec": {"cronSpec": "bad", "replicas": 11, "mode": "c", "tags": {"a": 1}},
    });
    let causes = crd::validate(&schema, &cr);
    let texts: Vec<String> = causes
        .iter()
        .map(|c| format!("{}: {}", c.field, c.message))
        .collect();
    assert_eq!(
        texts,
        vec![
            "spec.cronSpec: Invalid value: \"bad\": spec.cronSpec in body should match '^(\\S+ ){4}\\S+$'",
            "spec.mode: Unsupported value: \"c\": supported values: \"a\", \"b\"",
            "spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10",
            "spec.tags.a: Invalid value: \"integer\": spec.tags.a in body must be of type string: \"integer\"",
        ]
    );
    let missing = json!({"spec": {"replicas": "x"}});
    let texts: Vec<String> = crd::validate(&schema, &missing)
        .iter()
        .map(|c| format!("{}: {}", c.field, c.message))
        .collect();
    assert_eq!(
        texts,
        vec![
            "spec.replicas: Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\"",
            "spec.cronSpec: Required value",
        ]
    );
}

#[test]
fn strict_error_text_is_kubes() {
    let e = strict_error(
        "Deployment",
        "v1",
        &["spec.replicsa".to_owned(), "spec.foo".to_owned()],
    );
    assert_eq!(e.code, 400);
    assert_eq!(
        e.status()["message"],
        "Deployment in version \"v1\" cannot be handled as a Deployment: strict decoding error: unknown field \"spec.replicsa\", unknown field \"spec.foo\""
    );
    assert_eq!(
        crd_schema_name("stable.example.com", "v1", "CronTab"),
        "com.example.stable.v1.CronTab"
    );
}

#[test]
fn published_crd_schema_declares_metadata() {
    let published = crd::published(&crontab_schema());
    assert_eq!(
        published["properties"]["metadata"]["allOf"][0]["$ref"],
        format!("#/components/schemas/{OBJECT_META}")
    );
    assert_eq!(published["properties"]["kind"]["type"], "string");
}
