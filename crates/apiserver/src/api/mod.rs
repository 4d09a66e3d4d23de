//! The HTTP face: one handler that routes every request (the paths are
//! data: resources come and go with CRDs), authentication and
//! authorization, then the verb handlers.

mod discovery;
mod ephemeral;
mod eviction;
pub mod node_proxy;
pub mod objects;
pub mod patch;
pub mod resource_metrics;
mod subresources;
pub mod watch;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::request::{self, Output, Query, Route, Target};
use crate::resources::{Registry, Resource};
use crate::storage::Objects;

/// The largest request body accepted (kube-apiserver's limit is 3 MiB).
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// The version the server reports: kubectl's dispatcher runs the kubectl
/// of this minor version.
pub const KUBE_MINOR: &str = "33";

/// The API server's state.
pub struct Api {
    /// The objects.
    pub objects: Objects,
    /// The served resources.
    pub registry: Registry,
    /// When the server started.
    pub started: Instant,
    /// Whether start-up (bootstrap objects) finished.
    pub ready: AtomicBool,
    /// Request and watch counters.
    pub metrics: Metrics,
    /// How long Events live.
    pub event_ttl: Duration,
    /// The served CustomResourceDefinitions.
    pub crds: crate::crd::Crds,
    /// Authentication and authorization; `None` serves everyone as an
    /// administrator (in-process use and tests only).
    pub security: Option<crate::security::Security>,
    /// The TLS client configuration kubelets are dialed with (the
    /// kube-apiserver-kubelet-client certificate); `None` until set.
    pub kubelet_tls: std::sync::RwLock<Option<Arc<rustls::ClientConfig>>>,
    /// The last kubelet readings of `metrics.k8s.io`.
    pub resource_metrics: resource_metrics::Readings,
    /// The Service IP and node port ranges.
    pub service_ranges: std::sync::RwLock<crate::alloc::Ranges>,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api").finish_non_exhaustive()
    }
}

/// The user a request runs as.
pub type User = crate::auth::authn::UserInfo;

/// One request's context.
#[derive(Debug)]
pub struct Ctx {
    /// The query.
    pub query: Query,
    /// The headers.
    pub headers: HeaderMap,
    /// The output form asked for.
    pub output: Output,
    /// Warnings for the `Warning` header.
    pub warnings: Mutex<Vec<String>>,
    /// The authenticated user.
    pub user: User,
}

impl Ctx {
    /// Adds warnings.
    pub fn add_warnings(&self, more: Vec<String>) {
        if more.is_empty() {
            return;
        }
        self.warnings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(more);
    }

    /// The field manager of a write (`fieldManager`, else from the
    /// user agent as kube derives it).
    pub fn field_manager(&self) -> String {
        if let Some(m) = self.query.get("fieldManager").filter(|m| !m.is_empty()) {
            return m.to_owned();
        }
        let agent = self
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("unknown");
        agent.split('/').next().unwrap_or("unknown").to_owned()
    }
}

/// A JSON answer with the request's warnings.
pub fn respond(code: u16, body: &Value, warnings: &Mutex<Vec<String>>) -> Response {
    respond_raw(code, serde_json::to_vec(body).unwrap_or_default(), warnings)
}

/// A JSON answer already encoded, with the request's warnings.
pub fn respond_raw(code: u16, body: Vec<u8>, warnings: &Mutex<Vec<String>>) -> Response {
    let mut response = (StatusCode::from_u16(code).unwrap_or(StatusCode::OK), body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    for warning in warnings.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        // RFC 7234 warning: code 299, agent "-", quoted text (quoted-pairs
        // for `"` and `\`, which client-go unescapes).
        let quoted = warning.replace('\\', "\\\\").replace('"', "\\\"");
        let text = format!("299 - \"{quoted}\"");
        if let Ok(value) = HeaderValue::from_str(&text) {
            headers.append("warning", value);
        }
    }
    response
}

/// A request body as JSON. A body without Content-Type is JSON (the
/// Python client sends none); YAML is refused unless it is JSON.
pub fn body_json(body: &[u8], headers: &HeaderMap) -> Result<Value, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let media = content_type.split(';').next().unwrap_or("").trim();
    match media {
        "application/json"
        | ""
        | "application/yaml"
        | "application/apply-patch+yaml"
        | "application/merge-patch+json"
        | "application/strategic-merge-patch+json"
        | "application/json-patch+json"
        | "*/*" => {}
        // kubectl's typed clients (generators, auth, create token) send
        // protobuf: it is read into the same JSON object.
        "application/vnd.kubernetes.protobuf" => return protobuf_body(body),
        other => {
            return Err(ApiError::unsupported_media_type(format!(
                "the body of the request was in an unknown format ({other}) - accepted media types include: application/json, application/yaml, application/apply-patch+yaml, application/merge-patch+json, application/json-patch+json, application/strategic-merge-patch+json"
            )));
        }
    }
    crate::decode::parse_body(body, media)
}

/// A protobuf request body as the JSON object it encodes.
pub fn protobuf_body(body: &[u8]) -> Result<Value, ApiError> {
    crate::protobuf::decode(body).map_err(|e| match e {
        crate::protobuf::ProtobufError::UnsupportedKind { .. }
        | crate::protobuf::ProtobufError::Unsupported(_) => {
            ApiError::unsupported_media_type(e.to_string())
        }
        other => ApiError::bad_request(other.to_string()),
    })
}

/// Whether a request's body is protobuf.
pub fn is_protobuf(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.split(';').next().unwrap_or("").trim() == crate::protobuf::CONTENT_TYPE)
}

/// The axum router: every path goes through [`handle`].
pub fn router(api: Arc<Api>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(api)
}

/// Reads a request body up to [`MAX_BODY`].
async fn read_body(body: Body) -> Result<Vec<u8>, ApiError> {
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| ApiError::too_large("Request entity too large: limit is 3145728"))?;
    Ok(bytes.to_vec())
}

async fn handle(State(api): State<Arc<Api>>, request: Request) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = match serve(&api, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    api.metrics.request(
        &method,
        &path,
        response.status().as_u16(),
        started.elapsed(),
    );
    tracing::debug!(%method, %path, status = response.status().as_u16(), "request");
    response
}

/// Routes and serves one request.
async fn serve(api: &Arc<Api>, request: Request) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let user = match &api.security {
        Some(security) => {
            let user = security.authenticate(api, &parts).await?;
            security.impersonate(api, user, &parts).await?
        }
        None => crate::security::Security::admin_user(),
    };
    let route = request::route(parts.uri.path(), &api.registry)?;
    let query = Query::parse(parts.uri.query());
    // Anonymous users reach only the public endpoints.
    let public = matches!(route, Route::Version | Route::Health(_));
    if user.username == "system:anonymous" && !public {
        return Err(ApiError::unauthorized());
    }
    match &route {
        Route::Version => return Ok(discovery::version()),
        Route::Health(which) => return Ok(discovery::health(api, which, &query)),
        Route::Metrics => {
            authorize_path(api, &user, &parts.method, parts.uri.path())?;
            let counts = api.object_counts().await?;
            return Ok(api.metrics.render(api, &counts));
        }
        _ => {}
    }
    let output = request::output(&parts.headers)?;
    let ctx = Ctx {
        query,
        headers: parts.headers.clone(),
        output,
        warnings: Mutex::new(Vec::new()),
        user,
    };
    match route {
        Route::Resource(target) => {
            let verb = verb(&parts.method, &target, &ctx)?;
            if let Some(security) = &api.security {
                security
                    .authorize_resource(api, &ctx.user, verb, &target)
                    .await?;
            }
            if node_proxy::handles(&target) {
                if !allowed(&target.resource, &target.subresource, verb) {
                    return Err(ApiError::method_not_allowed(
                        "the server does not allow this method on the requested resource",
                    ));
                }
                return node_proxy::serve(api, &target, &ctx, parts, body).await;
            }
            let body = read_body(body).await?;
            resource(api, &target, &ctx, verb, &body).await
        }
        other => {
            authorize_path(api, &ctx.user, &parts.method, parts.uri.path())?;
            if parts.method != Method::GET && parts.method != Method::HEAD {
                return Err(ApiError::method_not_allowed(format!(
                    "the server does not allow this method on the requested resource ({} {})",
                    parts.method,
                    parts.uri.path()
                )));
            }
            discovery::serve(api, other, &parts.headers)
        }
    }
}

fn authorize_path(api: &Api, user: &User, method: &Method, path: &str) -> Result<(), ApiError> {
    match &api.security {
        Some(security) => security.authorize_path(user, method, path),
        None => Ok(()),
    }
}

/// The RBAC verb of a request.
fn verb(method: &Method, target: &Target, ctx: &Ctx) -> Result<&'static str, ApiError> {
    let collection = target.name.is_empty();
    Ok(match *method {
        Method::GET | Method::HEAD if collection && ctx.query.flag("watch") => "watch",
        Method::GET | Method::HEAD if collection => "list",
        Method::GET | Method::HEAD if ctx.query.flag("watch") => "watch",
        Method::GET | Method::HEAD => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if collection => "deletecollection",
        Method::DELETE => "delete",
        _ => {
            return Err(ApiError::method_not_allowed(format!(
                "the server does not allow this method on the requested resource ({method})"
            )));
        }
    })
}

/// Whether `verb` is one the resource (or subresource) allows.
fn allowed(resource: &Resource, subresource: &str, verb: &str) -> bool {
    if subresource.is_empty() {
        resource.verbs.iter().any(|v| v == verb)
    } else {
        resource
            .subresource(subresource)
            .is_some_and(|s| s.verbs.iter().any(|v| v == verb))
    }
}

async fn resource(
    api: &Arc<Api>,
    target: &Target,
    ctx: &Ctx,
    verb: &str,
    body: &[u8],
) -> Result<Response, ApiError> {
    let resource = target.resource.clone();
    if !allowed(&resource, &target.subresource, verb) && verb != "watch" && verb != "list" {
        return Err(ApiError::method_not_allowed(
            "the server does not allow this method on the requested resource",
        ));
    }
    if resource.virtual_only {
        if resource.group == resource_metrics::GROUP {
            return resource_metrics::serve(api, target, ctx, verb).await;
        }
        return crate::reviews::create(api, target, ctx, body).await;
    }
    if !target.subresource.is_empty() && target.subresource != "status" {
        return subresources::serve(api, target, ctx, verb, body).await;
    }
    match verb {
        "get" => objects::get(api, target, ctx).await,
        "list" => objects::list(api, target, ctx).await,
        "watch" => watch::serve(api.clone(), target, ctx).await,
        "create" if target.name.is_empty() => objects::create(api, target, ctx, body).await,
        "create" => Err(ApiError::method_not_allowed(
            "POST is for collections; use PUT or PATCH to change an object",
        )),
        "update" => objects::replace(api, target, ctx, body).await,
        "patch" => patch::serve(api, target, ctx, body).await,
        "delete" => objects::delete(api, target, ctx, body).await,
        "deletecollection" => objects::delete_collection(api, target, ctx, body).await,
        _ => Err(ApiError::method_not_allowed("unsupported verb")),
    }
}

impl Api {
    /// An API over a store.
    pub fn new(
        store: Arc<dyn berth_kv::Store>,
        security: Option<crate::security::Security>,
    ) -> Arc<Api> {
        Arc::new(Api {
            objects: Objects::new(store),
            registry: Registry::with_builtins(),
            started: Instant::now(),
            ready: AtomicBool::new(false),
            metrics: Metrics::default(),
            event_ttl: Duration::from_secs(3600),
            crds: crate::crd::Crds::default(),
            security,
            kubelet_tls: std::sync::RwLock::new(None),
            resource_metrics: resource_metrics::Readings::default(),
            service_ranges: std::sync::RwLock::new(crate::alloc::Ranges::default()),
        })
    }

    /// Sets the Service IP and node port ranges.
    pub fn set_service_ranges(&self, ranges: crate::alloc::Ranges) {
        *self
            .service_ranges
            .write()
            .unwrap_or_else(|p| p.into_inner()) = ranges;
    }

    /// The Service IP and node port ranges.
    pub fn service_ranges(&self) -> crate::alloc::Ranges {
        *self
            .service_ranges
            .read()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the TLS client configuration kubelets are dialed with.
    pub fn set_kubelet_client(&self, config: Arc<rustls::ClientConfig>) {
        *self.kubelet_tls.write().unwrap_or_else(|p| p.into_inner()) = Some(config);
    }

    /// The TLS client configuration kubelets are dialed with, if set.
    pub fn kubelet_client(&self) -> Option<Arc<rustls::ClientConfig>> {
        self.kubelet_tls
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// How many objects each stored resource has (`apiserver_storage_objects`).
    pub async fn object_counts(&self) -> Result<Vec<(String, i64)>, ApiError> {
        let mut seen = std::collections::HashSet::new();
        let mut counts = Vec::new();
        for resource in self.registry.all() {
            if resource.virtual_only
                || !resource.storage_version
                || !seen.insert(resource.key_prefix.clone())
            {
                continue;
            }
            let (_, count) = self
                .objects
                .store()
                .count(&format!("/registry/{}/", resource.key_prefix))
                .await?;
            counts.push((
                crate::error::qualified(&resource.group, &resource.plural),
                count,
            ));
        }
        counts.sort();
        Ok(counts)
    }

    /// Whether the server finished starting.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Hooks after an object was written (CRDs change the served
    /// resources; RBAC objects change the authorizer).
    pub async fn after_write(&self, resource: &Resource, obj: &Value) {
        crate::crd::after_write(self, resource, obj);
        crate::admission::after_write(self, resource, obj).await;
        if resource.group.is_empty()
            && resource.plural == "namespaces"
            && crate::meta::meta_str(obj, "deletionTimestamp").is_empty()
        {
            let namespace = crate::meta::meta_str(obj, "name").to_owned();
            if let Err(e) = crate::bootstrap::ensure_default_service_account(self, &namespace).await
            {
                tracing::warn!(namespace, error = %e.message, "default ServiceAccount");
            }
        }
        if let Some(security) = &self.security {
            security.after_write(resource);
            if resource.group == "rbac.authorization.k8s.io"
                && resource.plural == "clusterroles"
                && let Err(e) = security.aggregate(self).await
            {
                tracing::warn!(error = %e.message, "ClusterRole aggregation");
            }
        }
    }

    /// Hooks after an object was deleted.
    pub async fn after_delete(&self, resource: &Resource, obj: &Value) {
        if resource.group.is_empty() && resource.plural == "services" {
            crate::alloc::release_held(self, obj).await;
        }
        crate::crd::after_delete(self, resource, obj);
        crate::admission::after_delete(self, resource, obj).await;
        if let Some(security) = &self.security {
            security.after_write(resource);
            if resource.group == "rbac.authorization.k8s.io"
                && resource.plural == "clusterroles"
                && let Err(e) = security.aggregate(self).await
            {
                tracing::warn!(error = %e.message, "ClusterRole aggregation");
            }
        }
    }
}

/// A `Status` of success (deletes of some kinds, reviews).
pub fn success_status() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"})
}
