//! OpenAPI v3 documents per group-version: the operations of every served
//! kind, with the `x-kubernetes-group-version-kind` tags and the
//! `fieldValidation` parameter kubectl looks for before it uses
//! server-side validation.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::api::Api;

fn param(name: &str) -> Value {
    json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}})
}

/// The document of one group-version.
pub fn document(api: &Api, group: &str, version: &str) -> Value {
    let mut paths = Map::new();
    let mut served = Vec::new();
    let root = if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    };
    for resource in api.registry.all() {
        if resource.group != group || resource.version != version {
            continue;
        }
        let gvk = json!({"group": group, "version": version, "kind": resource.kind});
        let item = if resource.namespaced {
            format!(
                "{root}/namespaces/{{namespace}}/{}/{{name}}",
                resource.plural
            )
        } else {
            format!("{root}/{}/{{name}}", resource.plural)
        };
        let collection = if resource.namespaced {
            format!("{root}/namespaces/{{namespace}}/{}", resource.plural)
        } else {
            format!("{root}/{}", resource.plural)
        };
        let schema_name = crate::schema::schema_name_for(&resource);
        let reference = json!({"$ref": format!("#/components/schemas/{schema_name}")});
        let write_params = json!([
            param("dryRun"),
            param("fieldManager"),
            param("fieldValidation")
        ]);
        let ok = json!({"200": {"description": "OK", "content": {"application/json": {"schema": reference}}}});
        if resource.virtual_only {
            paths.insert(
                collection,
                json!({"post": {"x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": "post", "parameters": write_params, "responses": ok}}),
            );
        } else {
            paths.insert(
                item.clone(),
                json!({
                    "get": {"x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": "get", "responses": ok},
                    "put": {"x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": "put", "parameters": write_params, "responses": ok},
                    "patch": {"x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": "patch",
                              "parameters": [param("dryRun"), param("fieldManager"), param("fieldValidation"), param("force")],
                              "responses": ok},
                    "delete": {"x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": "delete", "responses": ok},
                }),
            );
            paths.insert(
                collection,
                json!({
                    "get": {"x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": "list", "responses": {"200": {"description": "OK"}}},
                    "post": {"x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": "post", "parameters": write_params, "responses": ok},
                }),
            );
        }
        served.push(resource);
    }
    let schemas = crate::schema::components(api, group, version, &served);
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": format!("v1.{}.0", crate::api::KUBE_MINOR)},
        "paths": paths,
        "components": {"schemas": schemas},
    })
}

/// The document of one group-version, built once and kept until its kinds
/// or custom schemas change (see [`crate::schema::cached_document`]).
pub fn cached(api: &Api, group: &str, version: &str) -> std::sync::Arc<crate::schema::Document> {
    let served: Vec<_> = api
        .registry
        .all()
        .into_iter()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    let fingerprint = crate::schema::fingerprint(api, &served);
    crate::schema::cached_document(
        group,
        version,
        fingerprint,
        || document(api, group, version),
        hash,
    )
}

/// The hash kubectl caches a document under.
pub fn hash(doc: &Value) -> String {
    let digest = Sha256::digest(doc.to_string().as_bytes());
    hex::encode(&digest[..16]).to_uppercase()
}
