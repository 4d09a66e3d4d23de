//! The API's errors as Kubernetes `Status` objects (`metav1.Status`), with
//! the reasons, codes and message texts kube-apiserver uses.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One cause of an invalid request (`details.causes[]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// `FieldValueRequired`, `FieldValueInvalid`, `FieldValueNotSupported`,
    /// `FieldValueDuplicate`, `FieldValueForbidden`, `FieldValueTooLong`…
    pub reason: String,
    /// The human message for this field.
    pub message: String,
    /// The field path (`spec.containers[0].name`).
    pub field: String,
}

impl Cause {
    /// A cause with kube's reason for the error type.
    pub fn new(reason: &str, field: impl Into<String>, message: impl Into<String>) -> Cause {
        Cause {
            reason: reason.to_owned(),
            field: field.into(),
            message: message.into(),
        }
    }
    /// `Required value`.
    pub fn required(field: impl Into<String>) -> Cause {
        Cause::new("FieldValueRequired", field, "Required value")
    }
    /// `Invalid value: "x": why`.
    pub fn invalid(field: impl Into<String>, value: &Value, detail: &str) -> Cause {
        Cause::new(
            "FieldValueInvalid",
            field,
            format!("Invalid value: {}: {detail}", show(value)),
        )
    }
    /// `Forbidden: why`.
    pub fn forbidden(field: impl Into<String>, detail: &str) -> Cause {
        Cause::new("FieldValueForbidden", field, format!("Forbidden: {detail}"))
    }
    /// `Unsupported value: "x": supported values: "a", "b"`.
    pub fn not_supported(field: impl Into<String>, value: &Value, supported: &[&str]) -> Cause {
        let list: Vec<String> = supported.iter().map(|s| format!("\"{s}\"")).collect();
        Cause::new(
            "FieldValueNotSupported",
            field,
            format!(
                "Unsupported value: {}: supported values: {}",
                show(value),
                list.join(", ")
            ),
        )
    }
    /// `Duplicate value: x`.
    pub fn duplicate(field: impl Into<String>, value: &Value) -> Cause {
        Cause::new(
            "FieldValueDuplicate",
            field,
            format!("Duplicate value: {}", show(value)),
        )
    }
}

/// How kube prints a value in a field error: strings quoted, numbers bare.
fn show(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        Value::Null => "null".to_owned(),
        other => other.to_string(),
    }
}

/// An error answered as a `Status`.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status code.
    pub code: u16,
    /// The machine reason (`NotFound`, `AlreadyExists`, `Conflict`,
    /// `Invalid`, `BadRequest`, `Forbidden`, `Unauthorized`, `Expired`,
    /// `MethodNotAllowed`, `NotAcceptable`, `UnsupportedMediaType`,
    /// `RequestEntityTooLarge`, `InternalError`, `Gone`, `NotImplemented`).
    pub reason: &'static str,
    /// The message.
    pub message: String,
    /// `details`: name, group, kind and causes.
    pub details: Option<Value>,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    fn with_details(mut self, group: &str, kind: &str, name: &str) -> ApiError {
        let mut details = json!({"name": name, "kind": kind});
        if !group.is_empty() {
            details["group"] = json!(group);
        }
        self.details = Some(details);
        self
    }

    /// `pods "web" not found`.
    pub fn not_found(group: &str, resource: &str, name: &str) -> ApiError {
        ApiError::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", qualified(group, resource)),
        )
        .with_details(group, resource, name)
    }
    /// `pods "web" already exists`.
    pub fn already_exists(group: &str, resource: &str, name: &str) -> ApiError {
        ApiError::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", qualified(group, resource)),
        )
        .with_details(group, resource, name)
    }
    /// The optimistic-concurrency conflict.
    pub fn conflict(group: &str, resource: &str, name: &str, why: &str) -> ApiError {
        ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                qualified(group, resource)
            ),
        )
        .with_details(group, resource, name)
    }
    /// A stale resourceVersion.
    pub fn stale(group: &str, resource: &str, name: &str) -> ApiError {
        ApiError::conflict(
            group,
            resource,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }
    /// 422 with causes: `Deployment.apps "x" is invalid: [cause, cause]`.
    pub fn invalid(group: &str, kind: &str, name: &str, causes: Vec<Cause>) -> ApiError {
        let gk = if group.is_empty() {
            kind.to_owned()
        } else {
            format!("{kind}.{group}")
        };
        // The message names each field; the causes carry it apart.
        let messages: Vec<String> = causes
            .iter()
            .map(|c| {
                if c.field.is_empty() {
                    c.message.clone()
                } else {
                    format!("{}: {}", c.field, c.message)
                }
            })
            .collect();
        let message = if messages.len() == 1 {
            format!("{gk} \"{name}\" is invalid: {}", messages[0])
        } else {
            format!("{gk} \"{name}\" is invalid: [{}]", messages.join(", "))
        };
        let mut error = ApiError::new(422, "Invalid", message).with_details(group, kind, name);
        if let Some(details) = error.details.as_mut() {
            details["causes"] = causes
                .iter()
                .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                .collect();
        }
        error
    }
    /// 400.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "BadRequest", message)
    }
    /// 401.
    pub fn unauthorized() -> ApiError {
        ApiError::new(401, "Unauthorized", "Unauthorized")
    }
    /// 403 with the authorizer's reason.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(403, "Forbidden", message)
    }
    /// 403 for a request refused by admission or a lifecycle rule.
    pub fn forbidden_on(group: &str, resource: &str, name: &str, why: &str) -> ApiError {
        ApiError::new(
            403,
            "Forbidden",
            format!(
                "{} \"{name}\" is forbidden: {why}",
                qualified(group, resource)
            ),
        )
        .with_details(group, resource, name)
    }
    /// 405.
    pub fn method_not_allowed(message: impl Into<String>) -> ApiError {
        ApiError::new(405, "MethodNotAllowed", message)
    }
    /// 410 for a watch or list from a compacted resourceVersion.
    pub fn expired(message: impl Into<String>) -> ApiError {
        ApiError::new(410, "Expired", message)
    }
    /// 413.
    pub fn too_large(message: impl Into<String>) -> ApiError {
        ApiError::new(413, "RequestEntityTooLarge", message)
    }
    /// 415.
    pub fn unsupported_media_type(message: impl Into<String>) -> ApiError {
        ApiError::new(415, "UnsupportedMediaType", message)
    }
    /// 429 (`TooManyRequests`), as the eviction API refuses.
    pub fn too_many_requests(message: impl Into<String>) -> ApiError {
        ApiError::new(429, "TooManyRequests", message)
    }
    /// 500.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(
            500,
            "InternalError",
            format!("Internal error occurred: {}", message.into()),
        )
    }
    /// 501 for what berth does not do yet.
    pub fn not_supported_yet(what: &str) -> ApiError {
        ApiError::new(501, "NotImplemented", format!("not supported yet: {what}"))
    }
    /// 404 for a path that names no resource.
    pub fn no_route(path: &str) -> ApiError {
        ApiError::new(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({path})"),
        )
    }
    /// 503 while the server starts or stops.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(503, "ServiceUnavailable", message)
    }
    /// 504 for a store that did not answer in time.
    pub fn timeout(message: impl Into<String>) -> ApiError {
        ApiError::new(504, "Timeout", message)
    }

    /// The `Status` object.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        // kube leaves the reason out for plain 404s of unknown paths and
        // 500s; it is always present here, which clients accept.
        status
    }
}

/// `deployments.apps` or `pods`.
pub fn qualified(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_owned()
    } else {
        format!("{resource}.{group}")
    }
}

impl From<berth_kv::Error> for ApiError {
    fn from(error: berth_kv::Error) -> ApiError {
        match error {
            berth_kv::Error::Compacted {
                requested,
                compacted,
            } => ApiError::expired(format!(
                "too old resource version: {requested} ({compacted})"
            )),
            berth_kv::Error::FutureRevision { requested, current } => ApiError::timeout(format!(
                "Too large resource version: {requested}, current: {current}"
            )),
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self.status()).unwrap_or_default();
        let mut response = (code, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}
