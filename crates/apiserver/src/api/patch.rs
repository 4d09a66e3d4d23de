//! PATCH: JSON patch, JSON merge patch, strategic merge patch and
//! server-side apply, each producing a new object that then takes the
//! update path (or, for an apply of a missing object, the create path).

use axum::http::header;
use axum::response::Response;
use serde_json::Value;

use super::objects::{create_object, render_one, update_object};
use super::{Api, Ctx};
use crate::error::ApiError;
use crate::patch as p;
use crate::request::Target;

/// Which patch a Content-Type names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Json,
    Merge,
    Strategic,
    Apply,
}

fn kind(ctx: &Ctx) -> Result<Kind, ApiError> {
    let content_type = ctx
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    Ok(match content_type.split(';').next().unwrap_or("").trim() {
        "application/json-patch+json" => Kind::Json,
        "application/merge-patch+json" => Kind::Merge,
        "application/strategic-merge-patch+json" => Kind::Strategic,
        "application/apply-patch+yaml" | "application/apply-patch+cbor" => Kind::Apply,
        other => {
            return Err(ApiError::unsupported_media_type(format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got \"{other}\")"
            )));
        }
    })
}

fn patch_error(error: p::PatchError) -> ApiError {
    let message = error.to_string();
    match error.http_status() {
        422 => ApiError {
            code: 422,
            reason: "Invalid",
            message,
            details: None,
        },
        413 => ApiError::too_large(message),
        415 => ApiError::unsupported_media_type(message),
        _ => ApiError::bad_request(message),
    }
}

/// The patch metadata of a resource (custom resources know none).
fn meta_for(target: &Target) -> Box<dyn p::PatchMeta + Send + Sync> {
    p::builtin_meta(&target.resource.group, &target.resource.kind)
        .unwrap_or_else(|| Box::new(p::NoMeta))
}

/// `current` with the PATCH request's body applied (JSON, merge or
/// strategic); for subresources that take part of the result.
pub(super) fn patched(
    target: &Target,
    ctx: &Ctx,
    current: &Value,
    body: &[u8],
) -> Result<Value, ApiError> {
    let kind = kind(ctx)?;
    let patch: Value = crate::decode::parse_body(body, "application/json")?;
    let name = match kind {
        Kind::Json => "json",
        Kind::Merge => "merge",
        Kind::Strategic => "strategic",
        Kind::Apply => {
            return Err(ApiError::not_supported_yet(&format!(
                "server-side apply to {}/{}",
                target.resource.plural, target.subresource
            )));
        }
    };
    if kind != Kind::Json && !patch.is_object() {
        return Err(ApiError::bad_request("the patch must be a JSON object"));
    }
    apply_patch(target, ctx, current, &patch, name)
}

/// Applies a patch of `kind` to `current`.
pub fn apply_patch(
    target: &Target,
    ctx: &Ctx,
    current: &Value,
    patch: &Value,
    kind_: &str,
) -> Result<Value, ApiError> {
    let _ = ctx;
    match kind_ {
        "json" => p::json_patch(current, patch).map_err(patch_error),
        "merge" => p::merge_patch(current, patch).map_err(patch_error),
        _ => {
            let meta = p::builtin_meta(&target.resource.group, &target.resource.kind)
                .ok_or_else(|| ApiError::unsupported_media_type(p::STRATEGIC_MERGE_UNSUPPORTED))?;
            p::strategic_merge_patch(current, patch, meta.as_ref()).map_err(patch_error)
        }
    }
}

/// Records a write's field manager in managedFields.
pub fn record_manager(
    target: &Target,
    old: Option<&Value>,
    new: &mut Value,
    ctx: &Ctx,
    operation: &str,
) {
    let _ = operation;
    let is_apply = ctx
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/apply-patch"));
    if is_apply {
        // The apply computed managedFields itself.
        return;
    }
    let meta = meta_for(target);
    p::record_update(
        old,
        new,
        &ctx.field_manager(),
        &target.resource.api_version(),
        meta.as_ref(),
        &crate::meta::now(),
    );
}

/// Serves PATCH.
pub async fn serve(
    api: &Api,
    target: &Target,
    ctx: &Ctx,
    body: &[u8],
) -> Result<Response, ApiError> {
    let kind = kind(ctx)?;
    let patch: Value = crate::decode::parse_body(body, "application/json")?;
    match kind {
        Kind::Apply => apply(api, target, ctx, patch).await,
        _ => {
            if kind != Kind::Json && !patch.is_object() {
                return Err(ApiError::bad_request("the patch must be a JSON object"));
            }
            let name = match kind {
                Kind::Json => "json",
                Kind::Merge => "merge",
                _ => "strategic",
            };
            let precondition = None;
            let (stored, _) = update_object(api, target, ctx, precondition, |current| {
                let new = apply_patch(target, ctx, current, &patch, name)?;
                super::ephemeral::update_keeps_them(target, current, &new)?;
                Ok(new)
            })
            .await?;
            render_one(api, target, ctx, stored, 200)
        }
    }
}

/// Server-side apply: creates a missing object, else merges the applied
/// configuration with field ownership.
async fn apply(
    api: &Api,
    target: &Target,
    ctx: &Ctx,
    applied: Value,
) -> Result<Response, ApiError> {
    let manager = ctx
        .query
        .get("fieldManager")
        .filter(|m| !m.is_empty())
        .ok_or_else(|| ApiError::bad_request("PATCH requests of type apply must have a fieldManager (fieldManager is required for apply requests)"))?
        .to_owned();
    let force = ctx.query.flag("force");
    let mut applied = applied;
    let kind = target.resource.kind.clone();
    super::objects::check_kind(target, &mut applied, &kind, &target.resource.api_version())?;
    let body_name = crate::meta::meta_str(&applied, "name");
    if body_name != target.name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({})",
            target.name
        )));
    }
    let meta = meta_for(target);
    let meta_ref = meta.as_ref();
    let api_version = target.resource.api_version();
    let now = crate::meta::now();
    if target.subresource.is_empty() && api.objects.get_key(&target.key()).await?.is_none() {
        let created = p::apply(
            None,
            &applied,
            &manager,
            &api_version,
            force,
            meta_ref,
            &now,
        )
        .map_err(apply_error)?;
        let (obj, _) = create_object(api, target, ctx, created).await?;
        return render_one(api, target, ctx, obj, 201);
    }
    let (stored, _) = update_object(api, target, ctx, None, |current| {
        p::apply(
            Some(current),
            &applied,
            &manager,
            &api_version,
            force,
            meta_ref,
            &now,
        )
        .map_err(apply_error)
    })
    .await?;
    render_one(api, target, ctx, stored, 200)
}

fn apply_error(error: p::ApplyError) -> ApiError {
    match &error {
        p::ApplyError::Conflict(conflicts) => {
            let causes: Vec<Value> = conflicts
                .iter()
                .map(|c| serde_json::json!({"reason": "FieldManagerConflict", "message": c.cause_message(), "field": c.field}))
                .collect();
            ApiError {
                code: 409,
                reason: "Conflict",
                message: error.to_string(),
                details: Some(serde_json::json!({"causes": causes})),
            }
        }
        p::ApplyError::BadRequest(_) => ApiError::bad_request(error.to_string()),
    }
}
