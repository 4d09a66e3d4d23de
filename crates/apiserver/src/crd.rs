//! CustomResourceDefinitions: a stored CRD makes its resource served (at
//! every served version), with its printer columns and schema.

use std::collections::HashMap;
use std::sync::RwLock;

use serde_json::{Value, json};

use crate::api::Api;
use crate::resources::{Resource, Subresource};

/// The CRDs the server serves, by (group, plural).
#[derive(Debug, Default)]
pub struct Crds {
    by_resource: RwLock<HashMap<(String, String), Value>>,
}

fn is_crd(resource: &Resource) -> bool {
    resource.group == "apiextensions.k8s.io" && resource.plural == "customresourcedefinitions"
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The resources a CRD object defines (one per served version).
pub fn resources_of(crd: &Value) -> Vec<Resource> {
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or("").to_owned();
    let names = &spec["names"];
    let plural = names["plural"].as_str().unwrap_or("").to_owned();
    let kind = names["kind"].as_str().unwrap_or("").to_owned();
    let singular = names["singular"]
        .as_str()
        .map_or_else(|| kind.to_ascii_lowercase(), str::to_owned);
    let namespaced = spec["scope"].as_str() != Some("Cluster");
    let mut out = Vec::new();
    for version in spec["versions"].as_array().into_iter().flatten() {
        if version["served"].as_bool() == Some(false) {
            continue;
        }
        let name = version["name"].as_str().unwrap_or("").to_owned();
        let mut subresources = Vec::new();
        if version.pointer("/subresources/status").is_some() {
            subresources.push(Subresource {
                name: "status".into(),
                group: group.clone(),
                version: name.clone(),
                kind: kind.clone(),
                verbs: vec!["get".into(), "patch".into(), "update".into()],
            });
        }
        if version.pointer("/subresources/scale").is_some() {
            subresources.push(Subresource {
                name: "scale".into(),
                group: "autoscaling".into(),
                version: "v1".into(),
                kind: "Scale".into(),
                verbs: vec!["get".into(), "patch".into(), "update".into()],
            });
        }
        out.push(Resource {
            group: group.clone(),
            version: name.clone(),
            kind: kind.clone(),
            plural: plural.clone(),
            singular: singular.clone(),
            namespaced,
            short_names: strings(names.get("shortNames")),
            categories: strings(names.get("categories")),
            verbs: [
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ]
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
            subresources,
            key_prefix: format!("{group}/{plural}"),
            storage_version: version["storage"].as_bool().unwrap_or(false),
            virtual_only: false,
        });
    }
    out
}

/// Registers the resources of a CRD that was written.
pub fn after_write(api: &Api, resource: &Resource, obj: &Value) {
    if !is_crd(resource) {
        return;
    }
    let deleting = !crate::meta::meta_str(obj, "deletionTimestamp").is_empty();
    let group = obj
        .pointer("/spec/group")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let plural = obj
        .pointer("/spec/names/plural")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    api.registry.remove(&group, &plural);
    if deleting {
        api.crds
            .by_resource
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(group, plural));
        return;
    }
    for r in resources_of(obj) {
        api.registry.add(r);
    }
    api.crds
        .by_resource
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .insert((group, plural), obj.clone());
}

/// Unregisters the resources of a deleted CRD.
pub fn after_delete(api: &Api, resource: &Resource, obj: &Value) {
    if !is_crd(resource) {
        return;
    }
    let group = obj
        .pointer("/spec/group")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let plural = obj
        .pointer("/spec/names/plural")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    api.registry.remove(&group, &plural);
    api.crds
        .by_resource
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&(group, plural));
}

/// The CRD of a custom resource's version entry.
fn version_of(api: &Api, resource: &Resource) -> Option<Value> {
    let crds = api
        .crds
        .by_resource
        .read()
        .unwrap_or_else(|p| p.into_inner());
    let crd = crds.get(&(resource.group.clone(), resource.plural.clone()))?;
    crd.pointer("/spec/versions")?
        .as_array()?
        .iter()
        .find(|v| v["name"].as_str() == Some(resource.version.as_str()))
        .cloned()
}

/// Evaluates a simple JSONPath (`.spec.replicas`, `.status.conditions[0].type`).
pub fn json_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let mut at = obj;
    for part in path.trim_start_matches('.').split('.') {
        if part.is_empty() {
            continue;
        }
        let (field, index) = match part.split_once('[') {
            Some((f, rest)) => (f, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        if !field.is_empty() {
            at = at.get(field)?;
        }
        if let Some(i) = index {
            at = at.get(i)?;
        }
    }
    Some(at)
}

/// Column definitions and a cell function for a custom resource.
pub type Printer = (Vec<Value>, Box<dyn Fn(&Value) -> Vec<Value> + Send + Sync>);

/// The printer columns of a custom resource (Name and Age when the CRD
/// names none).
pub fn printer_columns(api: &Api, resource: &Resource) -> Option<Printer> {
    let version = version_of(api, resource)?;
    let custom: Vec<Value> = version
        .get("additionalPrinterColumns")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut defs = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "", "priority": 0}),
    ];
    let columns: Vec<(String, String)> = if custom.is_empty() {
        defs.push(
            json!({"name": "Age", "type": "date", "format": "", "description": "", "priority": 0}),
        );
        vec![(".metadata.creationTimestamp".to_owned(), "date".to_owned())]
    } else {
        custom
            .iter()
            .map(|c| {
                defs.push(json!({
                    "name": c["name"], "type": c["type"], "format": c.get("format").cloned().unwrap_or(json!("")),
                    "description": c.get("description").cloned().unwrap_or(json!("")),
                    "priority": c.get("priority").cloned().unwrap_or(json!(0)),
                }));
                (c["jsonPath"].as_str().unwrap_or("").to_owned(), c["type"].as_str().unwrap_or("string").to_owned())
            })
            .collect()
    };
    let cells = move |obj: &Value| {
        let mut row = vec![json!(crate::meta::meta_str(obj, "name"))];
        for (path, kind) in &columns {
            let v = json_path(obj, path).cloned().unwrap_or(Value::Null);
            row.push(match (kind.as_str(), &v) {
                ("date", Value::String(s)) => match berth_types::time::parse_rfc3339(s) {
                    Ok((secs, _)) => json!(crate::table::human_duration(
                        crate::meta::unix_now().0 - secs
                    )),
                    Err(_) => v,
                },
                _ => v,
            });
        }
        row
    };
    Some((defs, Box::new(cells)))
}

/// The OpenAPI schema of a custom resource version.
pub fn schema_for(api: &Api, resource: &Resource) -> Option<Value> {
    version_of(api, resource)?
        .pointer("/schema/openAPIV3Schema")
        .cloned()
}

/// Loads the stored CRDs at start.
pub async fn load(api: &Api) -> Result<(), crate::error::ApiError> {
    let (items, _) = api
        .objects
        .list_all(
            "/registry/apiextensions.k8s.io/customresourcedefinitions/",
            0,
        )
        .await?;
    let Some(resource) =
        api.registry
            .get("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    else {
        return Ok(());
    };
    for crd in items {
        after_write(api, &resource, &crd);
    }
    Ok(())
}

/// The replicas paths of a scalable resource: (spec, status).
pub fn scale_paths(target: &crate::request::Target) -> (String, String) {
    let _ = target;
    (".spec.replicas".to_owned(), ".status.replicas".to_owned())
}
