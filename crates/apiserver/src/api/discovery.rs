//! `/version`, health checks, discovery (aggregated `apidiscovery.k8s.io/v2`
//! and the legacy lists) and OpenAPI v3.

use std::collections::BTreeMap;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Api, KUBE_MINOR};
use crate::error::ApiError;
use crate::request::{Query, Route};
use crate::resources::Resource;

const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

fn json_response(body: &Value, content_type: &'static str) -> Response {
    let mut response =
        (StatusCode::OK, serde_json::to_vec(body).unwrap_or_default()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// `/version`.
pub fn version() -> Response {
    json_response(
        &json!({
            "major": "1",
            "minor": KUBE_MINOR,
            "gitVersion": format!("v1.{KUBE_MINOR}.0-berth.{}", env!("CARGO_PKG_VERSION")),
            "gitCommit": "berth",
            "gitTreeState": "clean",
            "buildDate": "2026-12-01T00:00:00Z",
            "goVersion": "rust",
            "compiler": "rustc",
            "platform": format!("linux/{}", if cfg!(target_arch = "aarch64") { "arm64" } else { "amd64" }),
        }),
        "application/json",
    )
}

/// `/healthz`, `/livez`, `/readyz` (`?verbose` lists the checks).
pub fn health(api: &Api, which: &str, query: &Query) -> Response {
    let ready = api.is_ready();
    let checks: Vec<(&str, bool)> = match which {
        "readyz" => vec![
            ("ping", true),
            ("log", true),
            ("etcd", true),
            ("poststarthook/bootstrap", ready),
        ],
        _ => vec![("ping", true), ("log", true), ("etcd", true)],
    };
    let ok = checks.iter().all(|(_, ok)| *ok);
    let body = if query.get("verbose").is_some() {
        let mut text = String::new();
        for (name, good) in &checks {
            text.push_str(&format!(
                "[{}]{name} {}\n",
                if *good { "+" } else { "-" },
                if *good { "ok" } else { "failed: not finished" }
            ));
        }
        text.push_str(&format!(
            "{which} check {}\n",
            if ok { "passed" } else { "failed" }
        ));
        text
    } else if ok {
        "ok".to_owned()
    } else {
        format!("[-]poststarthook/bootstrap failed: not finished\n{which} check failed\n")
    };
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    let mut response = (code, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// The resources grouped: group → version → resources (storage versions
/// first so the preferred version leads).
fn groups(api: &Api) -> BTreeMap<String, BTreeMap<String, Vec<std::sync::Arc<Resource>>>> {
    let mut groups: BTreeMap<String, BTreeMap<String, Vec<_>>> = BTreeMap::new();
    for resource in api.registry.all() {
        groups
            .entry(resource.group.clone())
            .or_default()
            .entry(resource.version.clone())
            .or_default()
            .push(resource);
    }
    groups
}

/// The group order discovery lists (kube's priority: core-ish groups
/// first, then the rest by name).
fn group_order(
    groups: &BTreeMap<String, BTreeMap<String, Vec<std::sync::Arc<Resource>>>>,
) -> Vec<String> {
    const FIRST: &[&str] = &[
        "apiregistration.k8s.io",
        "apps",
        "events.k8s.io",
        "authentication.k8s.io",
        "authorization.k8s.io",
        "autoscaling",
        "batch",
        "certificates.k8s.io",
        "networking.k8s.io",
        "policy",
        "rbac.authorization.k8s.io",
        "storage.k8s.io",
        "admissionregistration.k8s.io",
        "apiextensions.k8s.io",
        "scheduling.k8s.io",
        "coordination.k8s.io",
        "node.k8s.io",
        "discovery.k8s.io",
        "flowcontrol.apiserver.k8s.io",
    ];
    let mut order: Vec<String> = FIRST
        .iter()
        .filter(|g| groups.contains_key(**g))
        .map(|g| (*g).to_owned())
        .collect();
    for g in groups.keys() {
        if !g.is_empty() && !order.contains(g) {
            order.push(g.clone());
        }
    }
    order
}

/// Versions of a group, preferred first (`v2` before `v1` before
/// `v1beta1`, as kube sorts them).
fn version_order(versions: &BTreeMap<String, Vec<std::sync::Arc<Resource>>>) -> Vec<String> {
    let mut list: Vec<String> = versions.keys().cloned().collect();
    list.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
    list
}

fn version_priority(v: &str) -> (i32, i64, i64) {
    let rest = v.strip_prefix('v').unwrap_or(v);
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let major = digits.parse::<i64>().unwrap_or(0);
    let tail = &rest[digits.len()..];
    if tail.is_empty() {
        (3, major, 0)
    } else if let Some(n) = tail.strip_prefix("beta") {
        (2, major, n.parse().unwrap_or(0))
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (1, major, n.parse().unwrap_or(0))
    } else {
        (0, 0, 0)
    }
}

fn discovery_resource(r: &Resource) -> Value {
    let mut entry = json!({
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": r.verbs,
    });
    if !r.short_names.is_empty() {
        entry["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        entry["categories"] = json!(r.categories);
    }
    if !r.subresources.is_empty() {
        entry["subresources"] = r
            .subresources
            .iter()
            .map(|s| json!({"subresource": s.name, "responseKind": {"group": s.group, "version": s.version, "kind": s.kind}, "verbs": s.verbs}))
            .collect();
    }
    entry
}

fn aggregated_group(
    name: &str,
    versions: &BTreeMap<String, Vec<std::sync::Arc<Resource>>>,
) -> Value {
    let versions: Vec<Value> = version_order(versions)
        .iter()
        .map(|v| {
            let mut resources: Vec<&std::sync::Arc<Resource>> = versions[v].iter().collect();
            resources.sort_by(|a, b| a.plural.cmp(&b.plural));
            json!({
                "version": v,
                "freshness": "Current",
                "resources": resources.iter().map(|r| discovery_resource(r)).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({"metadata": {"name": name, "creationTimestamp": null}, "versions": versions})
}

fn wants_aggregated(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|a| a.contains("as=APIGroupDiscoveryList") && a.contains("v=v2"))
}

fn group_version_entry(group: &str, version: &str) -> Value {
    json!({"groupVersion": format!("{group}/{version}"), "version": version})
}

/// Discovery and OpenAPI routes.
pub fn serve(api: &Api, route: Route, headers: &HeaderMap) -> Result<Response, ApiError> {
    let all = groups(api);
    match route {
        Route::CoreGroups => {
            if wants_aggregated(headers) {
                let items: Vec<Value> = all
                    .get("")
                    .map(|v| aggregated_group("", v))
                    .into_iter()
                    .collect();
                let body = json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items});
                return Ok(json_response(&body, AGGREGATED));
            }
            Ok(json_response(
                &json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}]}),
                "application/json",
            ))
        }
        Route::Groups => {
            if wants_aggregated(headers) {
                let items: Vec<Value> = group_order(&all)
                    .iter()
                    .map(|g| aggregated_group(g, &all[g]))
                    .collect();
                let body = json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items});
                return Ok(json_response(&body, AGGREGATED));
            }
            let groups: Vec<Value> = group_order(&all)
                .iter()
                .map(|g| api_group(g, &all[g]))
                .collect();
            Ok(json_response(
                &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
                "application/json",
            ))
        }
        Route::Group(group) => {
            let versions = all
                .get(&group)
                .ok_or_else(|| ApiError::no_route(&format!("/apis/{group}")))?;
            let mut body = api_group(&group, versions);
            body["kind"] = json!("APIGroup");
            body["apiVersion"] = json!("v1");
            Ok(json_response(&body, "application/json"))
        }
        Route::GroupVersion(group, version) => {
            let resources = all
                .get(&group)
                .and_then(|v| v.get(&version))
                .ok_or_else(|| ApiError::no_route(&format!("/apis/{group}/{version}")))?;
            let group_version = if group.is_empty() {
                version.clone()
            } else {
                format!("{group}/{version}")
            };
            let mut list = Vec::new();
            for r in resources {
                let mut entry = json!({
                    "name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                    "kind": r.kind, "verbs": r.verbs,
                });
                if !r.short_names.is_empty() {
                    entry["shortNames"] = json!(r.short_names);
                }
                if !r.categories.is_empty() {
                    entry["categories"] = json!(r.categories);
                }
                list.push(entry);
                for s in &r.subresources {
                    list.push(json!({
                        "name": format!("{}/{}", r.plural, s.name), "singularName": "", "namespaced": r.namespaced,
                        "group": s.group, "version": s.version, "kind": s.kind, "verbs": s.verbs,
                    }));
                }
            }
            Ok(json_response(
                &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": list}),
                "application/json",
            ))
        }
        Route::OpenApiV2 => Err(ApiError::no_route("/openapi/v2 (berth serves /openapi/v3)")),
        Route::OpenApiV3Index => {
            let mut paths = serde_json::Map::new();
            for (group, versions) in &all {
                for version in versions.keys() {
                    let path = if group.is_empty() {
                        format!("api/{version}")
                    } else {
                        format!("apis/{group}/{version}")
                    };
                    let hash = crate::openapi::cached(api, group, version).hash.clone();
                    paths.insert(
                        path.clone(),
                        json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={hash}")}),
                    );
                }
            }
            Ok(json_response(&json!({"paths": paths}), "application/json"))
        }
        Route::OpenApiV3(group, version) => {
            if all.get(&group).and_then(|v| v.get(&version)).is_none() {
                return Err(ApiError::no_route(&format!(
                    "/openapi/v3/apis/{group}/{version}"
                )));
            }
            Ok(json_response(
                &crate::openapi::cached(api, &group, &version).doc,
                "application/json",
            ))
        }
        _ => Err(ApiError::no_route("unknown")),
    }
}

fn api_group(group: &str, versions: &BTreeMap<String, Vec<std::sync::Arc<Resource>>>) -> Value {
    let order = version_order(versions);
    let list: Vec<Value> = order
        .iter()
        .map(|v| group_version_entry(group, v))
        .collect();
    let preferred = order
        .first()
        .map(|v| group_version_entry(group, v))
        .unwrap_or(Value::Null);
    json!({"name": group, "versions": list, "preferredVersion": preferred})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_as_kube_sorts_them() {
        let mut v = vec!["v1beta1", "v1", "v2", "v1alpha1", "v2beta2"];
        v.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
        assert_eq!(v, ["v2", "v1", "v2beta2", "v1beta1", "v1alpha1"]);
    }
}
