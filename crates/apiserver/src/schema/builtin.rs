//! The built-in kinds' OpenAPI v3 component schemas, generated from the
//! `k8s-openapi` types (their `schemars::JsonSchema` implementations carry
//! kube's names and descriptions), then annotated as kube-apiserver's
//! documents are: `x-kubernetes-group-version-kind` on every kind,
//! the patch metadata of [`crate::patch::meta`] and
//! `x-kubernetes-preserve-unknown-fields` on free-form objects.

use k8s_openapi::api as k8s;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiext;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1 as apireg;
use k8s_openapi::schemars::{JsonSchema, SchemaGenerator, generate::SchemaSettings};
use serde_json::{Map, Value, json};

use crate::patch::{FieldMeta, PatchMeta, builtin_meta};

/// Adds one kind's schema (and every schema it references) to a generator.
type Add = fn(&mut SchemaGenerator);

fn add<T: JsonSchema>(generator: &mut SchemaGenerator) {
    generator.subschema_for::<T>();
}

/// The kube schema name of a type (`io.k8s.api.apps.v1.Deployment`).
fn name_of<T: JsonSchema>() -> String {
    T::schema_name().into_owned()
}

/// One built-in kind: group, version, kind, its schema's name, its generator.
struct Kind {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    name: fn() -> String,
    add: Add,
}

macro_rules! kinds {
    ($(($group:literal, $version:literal, $kind:literal, $ty:ty)),* $(,)?) => {
        &[$(Kind { group: $group, version: $version, kind: $kind, name: name_of::<$ty>, add: add::<$ty> }),*]
    };
}

/// Every built-in kind berth knows a schema for (served or not yet).
const KINDS: &[Kind] = kinds![
    ("", "v1", "Namespace", k8s::core::v1::Namespace),
    ("", "v1", "Pod", k8s::core::v1::Pod),
    ("", "v1", "Service", k8s::core::v1::Service),
    ("", "v1", "Endpoints", k8s::core::v1::Endpoints),
    ("", "v1", "ConfigMap", k8s::core::v1::ConfigMap),
    ("", "v1", "Secret", k8s::core::v1::Secret),
    ("", "v1", "ServiceAccount", k8s::core::v1::ServiceAccount),
    ("", "v1", "Node", k8s::core::v1::Node),
    ("", "v1", "Event", k8s::core::v1::Event),
    (
        "",
        "v1",
        "PersistentVolume",
        k8s::core::v1::PersistentVolume
    ),
    (
        "",
        "v1",
        "PersistentVolumeClaim",
        k8s::core::v1::PersistentVolumeClaim
    ),
    ("", "v1", "ResourceQuota", k8s::core::v1::ResourceQuota),
    ("", "v1", "LimitRange", k8s::core::v1::LimitRange),
    ("", "v1", "PodTemplate", k8s::core::v1::PodTemplate),
    (
        "",
        "v1",
        "ReplicationController",
        k8s::core::v1::ReplicationController
    ),
    ("", "v1", "Binding", k8s::core::v1::Binding),
    ("", "v1", "ComponentStatus", k8s::core::v1::ComponentStatus),
    ("apps", "v1", "Deployment", k8s::apps::v1::Deployment),
    ("apps", "v1", "ReplicaSet", k8s::apps::v1::ReplicaSet),
    ("apps", "v1", "StatefulSet", k8s::apps::v1::StatefulSet),
    ("apps", "v1", "DaemonSet", k8s::apps::v1::DaemonSet),
    (
        "apps",
        "v1",
        "ControllerRevision",
        k8s::apps::v1::ControllerRevision
    ),
    ("batch", "v1", "Job", k8s::batch::v1::Job),
    ("batch", "v1", "CronJob", k8s::batch::v1::CronJob),
    (
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        k8s::autoscaling::v2::HorizontalPodAutoscaler
    ),
    (
        "autoscaling",
        "v1",
        "HorizontalPodAutoscaler",
        k8s::autoscaling::v1::HorizontalPodAutoscaler
    ),
    ("autoscaling", "v1", "Scale", k8s::autoscaling::v1::Scale),
    (
        "policy",
        "v1",
        "PodDisruptionBudget",
        k8s::policy::v1::PodDisruptionBudget
    ),
    ("policy", "v1", "Eviction", k8s::policy::v1::Eviction),
    (
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        k8s::networking::v1::NetworkPolicy
    ),
    (
        "networking.k8s.io",
        "v1",
        "Ingress",
        k8s::networking::v1::Ingress
    ),
    (
        "networking.k8s.io",
        "v1",
        "IngressClass",
        k8s::networking::v1::IngressClass
    ),
    (
        "networking.k8s.io",
        "v1",
        "IPAddress",
        k8s::networking::v1::IPAddress
    ),
    (
        "networking.k8s.io",
        "v1",
        "ServiceCIDR",
        k8s::networking::v1::ServiceCIDR
    ),
    (
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        k8s::discovery::v1::EndpointSlice
    ),
    (
        "coordination.k8s.io",
        "v1",
        "Lease",
        k8s::coordination::v1::Lease
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "Role",
        k8s::rbac::v1::Role
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        k8s::rbac::v1::RoleBinding
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        k8s::rbac::v1::ClusterRole
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        k8s::rbac::v1::ClusterRoleBinding
    ),
    (
        "storage.k8s.io",
        "v1",
        "StorageClass",
        k8s::storage::v1::StorageClass
    ),
    (
        "storage.k8s.io",
        "v1",
        "CSIDriver",
        k8s::storage::v1::CSIDriver
    ),
    ("storage.k8s.io", "v1", "CSINode", k8s::storage::v1::CSINode),
    (
        "storage.k8s.io",
        "v1",
        "VolumeAttachment",
        k8s::storage::v1::VolumeAttachment
    ),
    (
        "scheduling.k8s.io",
        "v1",
        "PriorityClass",
        k8s::scheduling::v1::PriorityClass
    ),
    ("events.k8s.io", "v1", "Event", k8s::events::v1::Event),
    (
        "node.k8s.io",
        "v1",
        "RuntimeClass",
        k8s::node::v1::RuntimeClass
    ),
    (
        "certificates.k8s.io",
        "v1",
        "CertificateSigningRequest",
        k8s::certificates::v1::CertificateSigningRequest
    ),
    (
        "flowcontrol.apiserver.k8s.io",
        "v1",
        "FlowSchema",
        k8s::flowcontrol::v1::FlowSchema
    ),
    (
        "flowcontrol.apiserver.k8s.io",
        "v1",
        "PriorityLevelConfiguration",
        k8s::flowcontrol::v1::PriorityLevelConfiguration
    ),
    (
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingWebhookConfiguration",
        k8s::admissionregistration::v1::ValidatingWebhookConfiguration
    ),
    (
        "admissionregistration.k8s.io",
        "v1",
        "MutatingWebhookConfiguration",
        k8s::admissionregistration::v1::MutatingWebhookConfiguration
    ),
    (
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingAdmissionPolicy",
        k8s::admissionregistration::v1::ValidatingAdmissionPolicy
    ),
    (
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingAdmissionPolicyBinding",
        k8s::admissionregistration::v1::ValidatingAdmissionPolicyBinding
    ),
    (
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        apiext::CustomResourceDefinition
    ),
    (
        "apiregistration.k8s.io",
        "v1",
        "APIService",
        apireg::APIService
    ),
    (
        "authentication.k8s.io",
        "v1",
        "TokenReview",
        k8s::authentication::v1::TokenReview
    ),
    (
        "authentication.k8s.io",
        "v1",
        "SelfSubjectReview",
        k8s::authentication::v1::SelfSubjectReview
    ),
    (
        "authentication.k8s.io",
        "v1",
        "TokenRequest",
        k8s::authentication::v1::TokenRequest
    ),
    (
        "authorization.k8s.io",
        "v1",
        "SubjectAccessReview",
        k8s::authorization::v1::SubjectAccessReview
    ),
    (
        "authorization.k8s.io",
        "v1",
        "SelfSubjectAccessReview",
        k8s::authorization::v1::SelfSubjectAccessReview
    ),
    (
        "authorization.k8s.io",
        "v1",
        "SelfSubjectRulesReview",
        k8s::authorization::v1::SelfSubjectRulesReview
    ),
    (
        "authorization.k8s.io",
        "v1",
        "LocalSubjectAccessReview",
        k8s::authorization::v1::LocalSubjectAccessReview
    ),
];

fn find(group: &str, version: &str, kind: &str) -> Option<&'static Kind> {
    KINDS
        .iter()
        .find(|k| k.group == group && k.version == version && k.kind == kind)
}

/// The component schema name of a built-in kind
/// (`io.k8s.api.apps.v1.Deployment`), or `None` for a kind berth has no
/// schema for.
pub fn schema_name(group: &str, version: &str, kind: &str) -> Option<String> {
    find(group, version, kind).map(|k| (k.name)())
}

/// The `$ref` prefix of every schema reference.
pub const REF_PREFIX: &str = "#/components/schemas/";

/// Generates the component schemas of every built-in kind of one
/// group-version, with everything they reference. Empty for a
/// group-version with no built-in kind.
pub fn generate(group: &str, version: &str) -> Map<String, Value> {
    let kinds: Vec<&Kind> = KINDS
        .iter()
        .filter(|k| k.group == group && k.version == version)
        .collect();
    if kinds.is_empty() {
        return Map::new();
    }
    let mut generator = SchemaSettings::openapi3().into_generator();
    for k in &kinds {
        (k.add)(&mut generator);
    }
    let mut defs: Map<String, Value> = generator.take_definitions(true).into_iter().collect();
    mark_free_form(&mut defs);
    for k in &kinds {
        let name = (k.name)();
        if let Some(Value::Object(schema)) = defs.get_mut(&name) {
            // k8s-openapi's structs require `metadata`; kube's schemas don't.
            if let Some(Value::Array(required)) = schema.get_mut("required") {
                required.retain(|f| f != "metadata");
                if required.is_empty() {
                    schema.remove("required");
                }
            }
            schema.insert(
                "x-kubernetes-group-version-kind".to_owned(),
                json!([{"group": k.group, "kind": k.kind, "version": k.version}]),
            );
        }
        if let Some(meta) = builtin_meta(k.group, k.kind) {
            let mut seen = std::collections::HashSet::new();
            annotate(&mut defs, &name, &mut Vec::new(), meta.as_ref(), &mut seen);
        }
    }
    defs
}

/// Free-form objects (RawExtension, apiextensions JSON, FieldsV1: objects
/// declaring no field at all) keep whatever they hold: kube decodes them
/// as raw JSON.
fn mark_free_form(defs: &mut Map<String, Value>) {
    for schema in defs.values_mut() {
        let Some(map) = schema.as_object_mut() else {
            continue;
        };
        let typed_object = map.get("type").and_then(Value::as_str) == Some("object");
        let shaped = [
            "properties",
            "additionalProperties",
            "allOf",
            "oneOf",
            "anyOf",
        ]
        .iter()
        .any(|k| map.contains_key(*k));
        if typed_object && !shaped {
            map.insert(
                "x-kubernetes-preserve-unknown-fields".to_owned(),
                Value::Bool(true),
            );
        }
    }
}

/// The definition name a schema node refers to (directly or through a
/// one-element `allOf`), if any.
fn referenced(node: &Value) -> Option<String> {
    if let Some(r) = node.get("$ref").and_then(Value::as_str) {
        return r.strip_prefix(REF_PREFIX).map(str::to_owned);
    }
    node.get("allOf")
        .and_then(Value::as_array)
        .and_then(|all| all.iter().find_map(referenced))
}

/// Walks the definition `name` reached at `path`, writing the patch
/// metadata of each of its fields onto the field's schema. A definition is
/// walked once per kind (kube's rules are the same wherever a shared type
/// appears).
fn annotate(
    defs: &mut Map<String, Value>,
    name: &str,
    path: &mut Vec<String>,
    meta: &(dyn PatchMeta + Send + Sync),
    seen: &mut std::collections::HashSet<String>,
) {
    if !seen.insert(name.to_owned()) || path.len() > 32 {
        return;
    }
    let fields: Vec<String> = defs
        .get(name)
        .and_then(|d| d.get("properties"))
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    for field in fields {
        path.push(field.clone());
        let field_meta = meta.field(path);
        let mut next = None;
        if let Some(Value::Object(prop)) = defs
            .get_mut(name)
            .and_then(|d| d.get_mut("properties"))
            .and_then(|p| p.get_mut(&field))
        {
            write_meta(prop, &field_meta);
            // Lists are transparent in patch paths: follow their items.
            let target = match prop.get("items") {
                Some(items) => referenced(items),
                None => referenced(&Value::Object(prop.clone())),
            };
            next = target;
        }
        if let Some(next) = next {
            annotate(defs, &next, path, meta, seen);
        }
        path.pop();
    }
}

/// Writes kube's patch extensions for one field's metadata.
fn write_meta(prop: &mut Map<String, Value>, meta: &FieldMeta) {
    if *meta == FieldMeta::default() {
        return;
    }
    let is_list = prop.get("type").and_then(Value::as_str) == Some("array");
    let mut strategy = Vec::new();
    if meta.merge {
        strategy.push("merge");
    }
    if meta.retain_keys {
        strategy.push("retainKeys");
    }
    if meta.replace {
        strategy.push("replace");
    }
    if !strategy.is_empty() {
        prop.insert(
            "x-kubernetes-patch-strategy".to_owned(),
            json!(strategy.join(",")),
        );
    }
    if let Some(key) = &meta.merge_key {
        prop.insert("x-kubernetes-patch-merge-key".to_owned(), json!(key));
    }
    if is_list {
        match (&meta.merge_key, meta.merge, meta.atomic) {
            (Some(key), true, _) => {
                prop.insert("x-kubernetes-list-type".to_owned(), json!("map"));
                prop.insert("x-kubernetes-list-map-keys".to_owned(), json!([key]));
            }
            (None, true, _) => {
                prop.insert("x-kubernetes-list-type".to_owned(), json!("set"));
            }
            (_, false, true) => {
                prop.insert("x-kubernetes-list-type".to_owned(), json!("atomic"));
            }
            _ => {}
        }
    } else if meta.atomic {
        // kube writes `structType=atomic` the same way as `mapType=atomic`.
        prop.insert("x-kubernetes-map-type".to_owned(), json!("atomic"));
    }
}
