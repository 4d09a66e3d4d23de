//! What a request asks for: the path parsed into a route, the query into
//! options, the Accept header into an output form.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::HeaderMap;

use crate::error::ApiError;
use crate::resources::{Registry, Resource};

/// Where a request goes.
#[derive(Debug, Clone)]
pub enum Route {
    /// `/version`
    Version,
    /// `/healthz`, `/livez`, `/readyz` (and their `/…/<check>` forms)
    Health(String),
    /// `/metrics`
    Metrics,
    /// `/api`
    CoreGroups,
    /// `/apis`
    Groups,
    /// `/api/v1`, `/apis/<group>/<version>`
    GroupVersion(String, String),
    /// `/apis/<group>`
    Group(String),
    /// `/openapi/v2`
    OpenApiV2,
    /// `/openapi/v3`
    OpenApiV3Index,
    /// `/openapi/v3/api/v1`, `/openapi/v3/apis/<g>/<v>`
    OpenApiV3(String, String),
    /// A resource request.
    Resource(Target),
}

/// A resource request's target.
#[derive(Debug, Clone)]
pub struct Target {
    /// The resource.
    pub resource: Arc<Resource>,
    /// The namespace ("" for cluster-scoped or all namespaces).
    pub namespace: String,
    /// The object name ("" for the collection).
    pub name: String,
    /// The subresource ("" for none).
    pub subresource: String,
}

impl Target {
    /// The object's store key.
    pub fn key(&self) -> String {
        self.resource.key(&self.namespace, &self.name)
    }
}

/// Parses a path; `None` when it names nothing the server serves.
pub fn route(path: &str, registry: &Registry) -> Result<Route, ApiError> {
    let trimmed = path.trim_end_matches('/');
    let parts: Vec<&str> = trimmed.split('/').skip(1).collect();
    let not_found = || ApiError::no_route(path);
    Ok(match parts.as_slice() {
        ["version"] => Route::Version,
        [health @ ("healthz" | "livez" | "readyz"), rest @ ..] => {
            let _ = rest;
            Route::Health((*health).to_owned())
        }
        ["metrics"] => Route::Metrics,
        ["api"] => Route::CoreGroups,
        ["apis"] => Route::Groups,
        ["api", "v1"] => Route::GroupVersion(String::new(), "v1".to_owned()),
        ["apis", group] => Route::Group((*group).to_owned()),
        ["apis", group, version] => Route::GroupVersion((*group).to_owned(), (*version).to_owned()),
        ["openapi", "v2"] => Route::OpenApiV2,
        ["openapi", "v3"] => Route::OpenApiV3Index,
        ["openapi", "v3", "api", "v1"] => Route::OpenApiV3(String::new(), "v1".to_owned()),
        ["openapi", "v3", "apis", group, version] => {
            Route::OpenApiV3((*group).to_owned(), (*version).to_owned())
        }
        ["api", "v1", rest @ ..] => {
            resource_route("", "v1", rest, registry).ok_or_else(not_found)?
        }
        ["apis", group, version, rest @ ..] => {
            resource_route(group, version, rest, registry).ok_or_else(not_found)?
        }
        _ => return Err(not_found()),
    })
}

fn resource_route(group: &str, version: &str, rest: &[&str], registry: &Registry) -> Option<Route> {
    let target = |plural: &str, namespace: &str, name: &str, sub: &str| {
        let resource = registry.get(group, version, plural)?;
        if !sub.is_empty() && resource.subresource(sub).is_none() {
            return None;
        }
        if !namespace.is_empty() && !resource.namespaced {
            return None;
        }
        Some(Route::Resource(Target {
            resource,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            subresource: sub.to_owned(),
        }))
    };
    let is_core = group.is_empty();
    match rest {
        // `/api/v1/namespaces/<name>[/<sub>]` is the namespace itself.
        ["namespaces", name] if is_core => target("namespaces", "", name, ""),
        ["namespaces", name, sub]
            if is_core
                && registry
                    .get("", "v1", "namespaces")?
                    .subresource(sub)
                    .is_some() =>
        {
            target("namespaces", "", name, sub)
        }
        ["namespaces", ns, plural] => target(plural, ns, "", ""),
        ["namespaces", ns, plural, name] => target(plural, ns, name, ""),
        ["namespaces", ns, plural, name, sub] => target(plural, ns, name, sub),
        // `…/proxy/<path>`: the rest of the path is the proxied one.
        ["namespaces", ns, plural, name, "proxy", _, ..] => target(plural, ns, name, "proxy"),
        [plural] => target(plural, "", "", ""),
        [plural, name] => target(plural, "", name, ""),
        [plural, name, sub] => target(plural, "", name, sub),
        [plural, name, "proxy", _, ..] => target(plural, "", name, "proxy"),
        _ => None,
    }
}

/// The query string as a multi-map (`command=a&command=b`).
#[derive(Debug, Clone, Default)]
pub struct Query {
    pairs: HashMap<String, Vec<String>>,
}

impl Query {
    /// Parses a raw query string.
    pub fn parse(raw: Option<&str>) -> Query {
        let mut pairs: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            pairs
                .entry(k.into_owned())
                .or_default()
                .push(v.into_owned());
        }
        Query { pairs }
    }

    /// The first value of a parameter.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .get(key)
            .and_then(|v| v.first())
            .map(String::as_str)
    }

    /// Every value of a parameter.
    pub fn all(&self, key: &str) -> &[String] {
        self.pairs.get(key).map_or(&[], Vec::as_slice)
    }

    /// A boolean parameter (`true`, `1`).
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1" | "True"))
    }

    /// An integer parameter; a malformed one is a 400.
    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!("invalid value for {key}: \"{v}\": not an integer"))
            }),
        }
    }

    /// Whether `dryRun=All` was asked for (any other value is a 400).
    pub fn dry_run(&self) -> Result<bool, ApiError> {
        let values = self.all("dryRun");
        for v in values {
            if v != "All" {
                return Err(ApiError::bad_request(format!(
                    "Invalid dry run value: \"{v}\": supported values: \"All\""
                )));
            }
        }
        Ok(!values.is_empty())
    }
}

/// The form of an answer the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// The object or list as JSON.
    Json,
    /// A `meta.k8s.io/v1` Table.
    Table,
    /// `PartialObjectMetadata(List)`.
    Metadata,
}

/// Reads the Accept header: the first `as=Table` or
/// `as=PartialObjectMetadata` entry with JSON wins, else JSON. Protobuf
/// entries are skipped (JSON is always answered).
pub fn output(headers: &HeaderMap) -> Result<Output, ApiError> {
    let accept = headers
        .get_all(axum::http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    if accept.trim().is_empty() {
        return Ok(Output::Json);
    }
    let mut json_ok = false;
    for entry in accept.split(',') {
        let mut parts = entry.split(';').map(str::trim);
        let media = parts.next().unwrap_or("");
        let params: Vec<&str> = parts.collect();
        let as_ = params.iter().find_map(|p| p.strip_prefix("as="));
        let is_json = matches!(
            media,
            "application/json" | "application/*" | "*/*" | "application/yaml"
        );
        if !is_json {
            continue;
        }
        match as_ {
            Some("Table") => return Ok(Output::Table),
            Some("PartialObjectMetadata" | "PartialObjectMetadataList") => {
                return Ok(Output::Metadata);
            }
            Some("APIGroupDiscoveryList") => json_ok = true,
            Some(_) => {}
            None => return Ok(Output::Json),
        }
    }
    if json_ok || accept.contains("protobuf") {
        return Ok(Output::Json);
    }
    Err(ApiError {
        code: 406,
        reason: "NotAcceptable",
        message: format!(
            "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf (asked for {accept})"
        ),
        details: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let registry = Registry::with_builtins();
        let r = |p: &str| route(p, &registry);
        assert!(matches!(r("/version").unwrap(), Route::Version));
        match r("/api/v1/namespaces/default/pods/web/status").unwrap() {
            Route::Resource(t) => {
                assert_eq!(
                    (
                        t.resource.plural.as_str(),
                        t.namespace.as_str(),
                        t.name.as_str(),
                        t.subresource.as_str()
                    ),
                    ("pods", "default", "web", "status")
                );
            }
            other => panic!("{other:?}"),
        }
        match r("/api/v1/namespaces/kube-system").unwrap() {
            Route::Resource(t) => assert_eq!(
                (t.resource.plural.as_str(), t.name.as_str()),
                ("namespaces", "kube-system")
            ),
            other => panic!("{other:?}"),
        }
        match r("/api/v1/namespaces/kube-system/finalize").unwrap() {
            Route::Resource(t) => assert_eq!(t.subresource, "finalize"),
            other => panic!("{other:?}"),
        }
        match r("/apis/apps/v1/deployments").unwrap() {
            Route::Resource(t) => assert_eq!((t.namespace.as_str(), t.name.as_str()), ("", "")),
            other => panic!("{other:?}"),
        }
        assert!(r("/apis/apps/v1/namespaces/x/nosuch").is_err());
        assert!(
            r("/api/v1/namespaces/x/nodes").is_err(),
            "nodes are cluster-scoped"
        );
        assert!(r("/api/v1/namespaces/x/pods/y/nosub").is_err());
    }

    #[test]
    fn accept() {
        let mut h = HeaderMap::new();
        assert_eq!(output(&h).unwrap(), Output::Json);
        h.insert("accept", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json".parse().unwrap());
        assert_eq!(output(&h).unwrap(), Output::Table);
        h.insert(
            "accept",
            "application/vnd.kubernetes.protobuf,application/json"
                .parse()
                .unwrap(),
        );
        assert_eq!(output(&h).unwrap(), Output::Json);
        h.insert(
            "accept",
            "application/vnd.kubernetes.protobuf, */*".parse().unwrap(),
        );
        assert_eq!(output(&h).unwrap(), Output::Json);
        h.insert("accept", "text/html".parse().unwrap());
        assert!(output(&h).is_err());
    }
}
