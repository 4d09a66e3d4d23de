//! Schemas: the OpenAPI v3 component schemas of the built-in kinds
//! (generated once per group-version from `k8s-openapi`, see
//! [`builtin`]), the published documents' cache, and unknown-field
//! detection and pruning for built-in kinds and custom resources (with the
//! basic validation of a CRD's `openAPIV3Schema`, see [`crd`]).
//!
//! Unknown fields are dropped whatever `fieldValidation` says (kube's
//! decoder drops them); `Strict` turns them into a 400, `Warn` into
//! warnings.

pub mod builtin;
pub mod crd;
mod walk;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Map, Value, json};

use crate::api::Api;
use crate::error::ApiError;
use crate::kinds::FieldValidation;
use crate::resources::Resource;

pub use walk::Walker;

/// ObjectMeta's component name.
pub const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

type Components = Arc<Map<String, Value>>;

fn components_cache() -> &'static Mutex<HashMap<(String, String), Components>> {
    static CACHE: OnceLock<Mutex<HashMap<(String, String), Components>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// The component schemas of the built-in kinds of one group-version (and
/// every schema they reference), generated on first use and kept. Empty
/// for a group-version with no built-in kind.
pub fn builtin_components(group: &str, version: &str) -> Components {
    let key = (group.to_owned(), version.to_owned());
    let mut cache = components_cache().lock().unwrap_or_else(|p| p.into_inner());
    cache
        .entry(key)
        .or_insert_with(|| Arc::new(builtin::generate(group, version)))
        .clone()
}

/// The fields of a built-in object its kind does not declare, as kube's
/// decoder names them (`spec.replicsa`, `spec.template.spec.containers[0].imagee`,
/// `metadata.labelz`). Empty for kinds berth has no schema for.
pub fn unknown_fields(group: &str, version: &str, kind: &str, obj: &Value) -> Vec<String> {
    let mut copy = obj.clone();
    prune_unknown_fields(group, version, kind, &mut copy)
}

/// Removes the unknown fields of a built-in object (see [`unknown_fields`])
/// and answers their paths.
pub fn prune_unknown_fields(
    group: &str,
    version: &str,
    kind: &str,
    obj: &mut Value,
) -> Vec<String> {
    let Some(name) = builtin::schema_name(group, version, kind) else {
        return Vec::new();
    };
    let defs = builtin_components(group, version);
    let Some(root) = defs.get(&name) else {
        return Vec::new();
    };
    Walker::new(&defs).prune(root, obj, "")
}

/// The component name kube gives a custom resource's schema: the group's
/// domain reversed, the version, the kind (`com.example.stable.v1.CronTab`).
pub fn crd_schema_name(group: &str, version: &str, kind: &str) -> String {
    let reversed: Vec<&str> = group.split('.').rev().collect();
    format!("{}.{version}.{kind}", reversed.join("."))
}

/// What kube's decoder says of unknown fields under `Strict`: one message
/// for all of them.
pub fn strict_error(kind: &str, version: &str, unknown: &[String]) -> ApiError {
    let fields: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect();
    ApiError::bad_request(format!(
        "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}",
        fields.join(", ")
    ))
}

/// Decodes a written object as kube-apiserver does: drops the fields its
/// schema does not declare (built-in kinds and custom resources), then,
/// per `fieldValidation`, fails (`Strict`: 400 BadRequest) or answers
/// warnings (`Warn`: `unknown field "spec.x"`). For custom resources it
/// also checks the schema's types, required fields, enums, bounds and
/// patterns (422 Invalid with causes).
pub fn decode(
    api: &Api,
    resource: &Resource,
    obj: &mut Value,
    validation: FieldValidation,
) -> Result<Vec<String>, ApiError> {
    let custom = crate::crd::schema_for(api, resource);
    // The object may be in its stored form already (events.k8s.io Events
    // are stored as core Events): check it against the version it is in.
    let (group, version) = match obj.get("apiVersion").and_then(Value::as_str) {
        Some(v) if v != resource.api_version() => match v.split_once('/') {
            Some((g, ver)) => (g.to_owned(), ver.to_owned()),
            None => (String::new(), v.to_owned()),
        },
        _ => (resource.group.clone(), resource.version.clone()),
    };
    let unknown = match &custom {
        Some(schema) => crd::prune(schema, obj),
        None => prune_unknown_fields(&group, &version, &resource.kind, obj),
    };
    let mut warnings = Vec::new();
    if !unknown.is_empty() {
        match validation {
            FieldValidation::Strict => {
                return Err(strict_error(&resource.kind, &resource.version, &unknown));
            }
            FieldValidation::Warn => {
                warnings.extend(unknown.iter().map(|f| format!("unknown field \"{f}\"")));
            }
            FieldValidation::Ignore => {}
        }
    }
    if let Some(schema) = &custom {
        // Structural defaulting: absent fields with a `default` are set
        // (after pruning, before validation, as kube-apiserver orders it).
        crd::apply_defaults(schema, obj, 0);
        let causes = crd::validate(schema, obj);
        if !causes.is_empty() {
            return Err(ApiError::invalid(
                &resource.group,
                &resource.kind,
                crate::meta::meta_str(obj, "name"),
                causes,
            ));
        }
    }
    Ok(warnings)
}

/// The component name of a served resource's schema: kube's name for a
/// built-in kind, the reversed-group name for others.
pub fn schema_name_for(resource: &Resource) -> String {
    builtin::schema_name(&resource.group, &resource.version, &resource.kind).unwrap_or_else(|| {
        let group = if resource.group.is_empty() {
            "core"
        } else {
            resource.group.as_str()
        };
        crd_schema_name(group, &resource.version, &resource.kind)
    })
}

/// Copies `name` and every schema it references from `from` into `to`.
fn copy_closure(from: &Map<String, Value>, name: &str, to: &mut Map<String, Value>) {
    if to.contains_key(name) {
        return;
    }
    let Some(schema) = from.get(name) else {
        return;
    };
    to.insert(name.to_owned(), schema.clone());
    let mut refs = Vec::new();
    collect_refs(schema, &mut refs);
    for r in refs {
        copy_closure(from, &r, to);
    }
}

fn collect_refs(node: &Value, out: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "$ref"
                    && let Some(name) = v.as_str().and_then(|r| r.strip_prefix(builtin::REF_PREFIX))
                {
                    out.push(name.to_owned());
                }
                collect_refs(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// The `components.schemas` of one group-version's document: the built-in
/// kinds' schemas, each custom resource's `openAPIV3Schema` (with
/// `apiVersion`, `kind` and `metadata` as kube publishes them), and a bare
/// object for any other kind; every served kind tagged with
/// `x-kubernetes-group-version-kind`.
pub fn components(
    api: &Api,
    group: &str,
    version: &str,
    served: &[Arc<Resource>],
) -> Map<String, Value> {
    let mut schemas = (*builtin_components(group, version)).clone();
    for resource in served {
        let name = schema_name_for(resource);
        let gvk = json!([{"group": group, "kind": resource.kind, "version": version}]);
        if let Some(schema) = crate::crd::schema_for(api, resource) {
            let mut schema = crd::published(&schema);
            if let Some(map) = schema.as_object_mut() {
                map.insert("x-kubernetes-group-version-kind".to_owned(), gvk);
            }
            schemas.insert(name, schema);
            copy_closure(&builtin_components("", "v1"), OBJECT_META, &mut schemas);
        } else if !schemas.contains_key(&name) {
            schemas.insert(
                name,
                json!({"type": "object", "x-kubernetes-group-version-kind": gvk}),
            );
        }
    }
    schemas
}

/// A published group-version document with its hash.
#[derive(Debug)]
pub struct Document {
    /// The OpenAPI v3 document.
    pub doc: Value,
    /// The hash kubectl caches it under.
    pub hash: String,
}

type DocCache = HashMap<(String, String), (String, Arc<Document>)>;

/// The document of a group-version from the cache, built by `build` when
/// `fingerprint` (everything the document depends on) changed.
pub fn cached_document(
    group: &str,
    version: &str,
    fingerprint: String,
    build: impl FnOnce() -> Value,
    hash: impl FnOnce(&Value) -> String,
) -> Arc<Document> {
    static CACHE: OnceLock<Mutex<DocCache>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = (group.to_owned(), version.to_owned());
    if let Some((fp, doc)) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key)
        && *fp == fingerprint
    {
        return doc.clone();
    }
    let doc = build();
    let hash = hash(&doc);
    let made = Arc::new(Document { doc, hash });
    cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, (fingerprint, made.clone()));
    made
}

/// Everything a group-version's document depends on: its served kinds and
/// their custom schemas.
pub fn fingerprint(api: &Api, served: &[Arc<Resource>]) -> String {
    let mut out = String::new();
    for r in served {
        out.push_str(&format!(
            "{}|{}|{}|{}|{}|{};",
            r.kind,
            r.plural,
            r.namespaced,
            r.virtual_only,
            r.storage_version,
            r.verbs.join(",")
        ));
        if let Some(schema) = crate::crd::schema_for(api, r) {
            out.push_str(&schema.to_string());
        }
    }
    out
}
