//! The review APIs: answered at once, never stored. `kubectl auth whoami`
//! (SelfSubjectReview), `kubectl auth can-i` (SelfSubjectAccessReview,
//! SelfSubjectRulesReview with `--list`), SubjectAccessReview and
//! TokenReview for other components.

use axum::response::Response;
use serde_json::{Value, json};

use crate::api::{Api, Ctx, body_json, respond};
use crate::auth::authn::UserInfo;
use crate::auth::rbac::Attributes;
use crate::error::ApiError;
use crate::request::Target;

fn user_json(user: &UserInfo) -> Value {
    serde_json::to_value(user).unwrap_or(json!({}))
}

fn attributes_from(spec: &Value, user: UserInfo, namespace_override: Option<&str>) -> Attributes {
    let s = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_owned();
    if let Some(r) = spec.get("resourceAttributes") {
        Attributes {
            user,
            verb: s(r.get("verb")),
            api_group: s(r.get("group")),
            resource: s(r.get("resource")),
            subresource: s(r.get("subresource")),
            namespace: namespace_override.map_or_else(|| s(r.get("namespace")), str::to_owned),
            name: s(r.get("name")),
            path: String::new(),
            resource_request: true,
        }
    } else {
        let r = spec.get("nonResourceAttributes");
        Attributes {
            user,
            verb: s(r.and_then(|r| r.get("verb"))),
            path: s(r.and_then(|r| r.get("path"))),
            resource_request: false,
            ..Attributes::default()
        }
    }
}

/// Serves a create of a review resource.
pub async fn create(
    api: &Api,
    target: &Target,
    ctx: &Ctx,
    body: &[u8],
) -> Result<Response, ApiError> {
    let mut review = body_json(body, &ctx.headers)?;
    let kind = target.resource.kind.as_str();
    review["apiVersion"] = json!(target.resource.api_version());
    review["kind"] = json!(kind);
    if review.get("metadata").is_none() {
        review["metadata"] = json!({});
    }
    review["metadata"]["creationTimestamp"] = Value::Null;
    let spec = review.get("spec").cloned().unwrap_or(json!({}));
    let decide = |attrs: Attributes| async move {
        match &api.security {
            Some(security) if !attrs.user.groups.iter().any(|g| g == "system:masters") => {
                security.decide(api, &attrs).await
            }
            _ => Ok((true, String::new())),
        }
    };
    let status = match kind {
        "SelfSubjectReview" => json!({"userInfo": user_json(&ctx.user)}),
        "SelfSubjectAccessReview" => {
            let (allowed, reason) = decide(attributes_from(&spec, ctx.user.clone(), None)).await?;
            if allowed {
                json!({"allowed": true, "reason": reason})
            } else {
                json!({"allowed": false})
            }
        }
        "SubjectAccessReview" | "LocalSubjectAccessReview" => {
            let user = UserInfo {
                username: spec
                    .get("user")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                uid: spec
                    .get("uid")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                groups: spec
                    .get("groups")
                    .and_then(Value::as_array)
                    .map(|g| {
                        g.iter()
                            .filter_map(|x| x.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
                ..UserInfo::default()
            };
            let ns = (kind == "LocalSubjectAccessReview").then_some(target.namespace.as_str());
            let (allowed, reason) = decide(attributes_from(&spec, user, ns)).await?;
            // RBAC has no opinion on what it does not allow: no reason.
            if allowed {
                json!({"allowed": true, "reason": reason})
            } else {
                json!({"allowed": false})
            }
        }
        "SelfSubjectRulesReview" => {
            let namespace = spec.get("namespace").and_then(Value::as_str).unwrap_or("");
            match &api.security {
                Some(security) => security.rules(api, &ctx.user, namespace).await?,
                None => {
                    json!({"resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}], "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}], "incomplete": false})
                }
            }
        }
        "TokenReview" => {
            let token = spec.get("token").and_then(Value::as_str).unwrap_or("");
            match api.security.as_ref().and_then(|s| s.review_token(token)) {
                Some(user) => {
                    json!({"authenticated": true, "user": user_json(&user), "audiences": spec.get("audiences").cloned().unwrap_or(json!([]))})
                }
                None => json!({"authenticated": false, "error": "invalid bearer token"}),
            }
        }
        other => return Err(ApiError::not_supported_yet(other)),
    };
    review["status"] = status;
    Ok(respond(201, &review, &ctx.warnings))
}
