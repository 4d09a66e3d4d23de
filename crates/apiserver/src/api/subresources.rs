//! Subresources other than `status`: `scale`, `pods/binding`,
//! `pods/eviction` (in [`super::eviction`]), `pods/ephemeralcontainers`,
//! `namespaces/finalize`, `serviceaccounts/token` (the streaming ones,
//! served by the node's kubelet, are in `node_proxy`).

use axum::response::Response;
use serde_json::{Value, json};

use super::objects::{render_one, stamp, update_object};
use super::{Api, Ctx, body_json, respond};
use crate::error::{ApiError, Cause};
use crate::meta;
use crate::request::{Output, Target};
use crate::selectors::LabelSelector;

/// Serves a subresource request.
pub async fn serve(
    api: &Api,
    target: &Target,
    ctx: &Ctx,
    verb: &str,
    body: &[u8],
) -> Result<Response, ApiError> {
    match target.subresource.as_str() {
        "scale" => scale(api, target, ctx, verb, body).await,
        "binding" => binding(api, target, ctx, body).await,
        "eviction" => super::eviction::evict(api, &main(target), ctx, body).await,
        "token" => token(api, target, ctx, body).await,
        "ephemeralcontainers" => ephemeral_containers(api, target, ctx, verb, body).await,
        "finalize" => {
            // Like status: the named part changes, nothing else.
            let new = body_json(body, &ctx.headers)?;
            let (stored, _) = update_object(api, &main(target), ctx, None, |current| {
                let mut next = current.clone();
                next["spec"]["finalizers"] = new
                    .pointer("/spec/finalizers")
                    .cloned()
                    .unwrap_or(json!([]));
                Ok(next)
            })
            .await?;
            finish_namespace(api, target, &stored).await?;
            render_one(api, target, ctx, stored, 200)
        }
        // Served by the node's kubelet through node_proxy before this.
        "log" | "exec" | "attach" | "portforward" | "proxy" => Err(ApiError::bad_request(format!(
            "{}/{} streams from the node's kubelet: it cannot be served here",
            target.resource.plural, target.subresource
        ))),
        other => Err(ApiError::no_route(other)),
    }
}

/// `pods/ephemeralcontainers`: read the pod, or change its ephemeral
/// containers (by a whole pod or a patch of one) and nothing else.
async fn ephemeral_containers(
    api: &Api,
    target: &Target,
    ctx: &Ctx,
    verb: &str,
    body: &[u8],
) -> Result<Response, ApiError> {
    if verb == "get" {
        return super::objects::get(api, &main(target), ctx).await;
    }
    let whole = if verb == "patch" {
        None
    } else {
        Some(body_json(body, &ctx.headers)?)
    };
    let (stored, _) = update_object(api, &main(target), ctx, None, |current| {
        let wanted = match &whole {
            Some(pod) => pod.clone(),
            None => super::patch::patched(target, ctx, current, body)?,
        };
        let list = wanted
            .pointer("/spec/ephemeralContainers")
            .cloned()
            .unwrap_or(Value::Null);
        super::ephemeral::next_pod(current, list)
    })
    .await?;
    render_one(api, target, ctx, stored, 200)
}

/// The target without its subresource.
fn main(target: &Target) -> Target {
    let mut t = target.clone();
    t.subresource.clear();
    t
}

/// A namespace whose finalizers are all gone is deleted.
async fn finish_namespace(api: &Api, target: &Target, ns: &Value) -> Result<(), ApiError> {
    let deleting = !meta::meta_str(ns, "deletionTimestamp").is_empty();
    let finalizers_left = ns
        .pointer("/spec/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty())
        || meta::metadata(ns)
            .get("finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
    if deleting && !finalizers_left {
        let _ = api
            .objects
            .update(&main(target), None, None, |_| {
                Ok(crate::storage::Change::Delete)
            })
            .await;
    }
    Ok(())
}

/// The Scale of a workload.
fn to_scale(target: &Target, obj: &Value) -> Value {
    let selector = match target.resource.kind.as_str() {
        "ReplicationController" => LabelSelector::from_object(
            &json!({"matchLabels": obj.pointer("/spec/selector").cloned().unwrap_or(json!({}))}),
        ),
        _ => obj
            .pointer("/spec/selector")
            .map(LabelSelector::from_object)
            .unwrap_or_else(|| Ok(LabelSelector::default())),
    };
    let md = meta::metadata(obj);
    let mut scale_meta = serde_json::Map::new();
    for f in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = md.get(f) {
            scale_meta.insert(f.to_owned(), v.clone());
        }
    }
    let spec_path = crate::crd::scale_paths(target).0;
    let status_path = crate::crd::scale_paths(target).1;
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": scale_meta,
        "spec": {"replicas": crate::crd::json_path(obj, &spec_path).and_then(Value::as_i64).unwrap_or(0)},
        "status": {
            "replicas": crate::crd::json_path(obj, &status_path).and_then(Value::as_i64).unwrap_or(0),
            "selector": selector.map(|s| s.to_text()).unwrap_or_default(),
        },
    })
}

async fn scale(
    api: &Api,
    target: &Target,
    ctx: &Ctx,
    verb: &str,
    body: &[u8],
) -> Result<Response, ApiError> {
    let whole = main(target);
    if verb == "get" {
        let (mut obj, _) = api.objects.get(&whole).await?;
        stamp(&whole, &mut obj);
        return Ok(respond(200, &to_scale(target, &obj), &ctx.warnings));
    }
    let input = crate::decode::parse_body(body, "application/json")?;
    let spec_path = crate::crd::scale_paths(target).0;
    let is_patch = verb == "patch";
    let (stored, _) = update_object(api, &whole, ctx, None, |current| {
        let scale = if is_patch {
            let base = to_scale(target, current);
            super::patch::apply_patch(target, ctx, &base, &input, patch_kind(ctx))?
        } else {
            let rv = input
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .unwrap_or("");
            if !rv.is_empty() && rv != meta::meta_str(current, "resourceVersion") {
                return Err(ApiError::stale(
                    &target.resource.group,
                    &target.resource.plural,
                    &target.name,
                ));
            }
            input.clone()
        };
        let replicas = scale
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if replicas < 0 {
            return Err(ApiError::invalid(
                "autoscaling",
                "Scale",
                &target.name,
                vec![Cause::invalid(
                    "spec.replicas",
                    &json!(replicas),
                    "must be greater than or equal to 0",
                )],
            ));
        }
        let mut next = current.clone();
        set_path(&mut next, &spec_path, json!(replicas));
        Ok(next)
    })
    .await?;
    Ok(respond(200, &to_scale(target, &stored), &ctx.warnings))
}

fn patch_kind(ctx: &Ctx) -> &'static str {
    match ctx
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
    {
        t if t.starts_with("application/json-patch+json") => "json",
        t if t.starts_with("application/strategic-merge-patch+json") => "merge",
        _ => "merge",
    }
}

/// Sets a `.a.b` path, making maps on the way.
fn set_path(obj: &mut Value, path: &str, value: Value) {
    let mut at = obj;
    let parts: Vec<&str> = path
        .trim_start_matches('.')
        .split('.')
        .filter(|p| !p.is_empty())
        .collect();
    for (i, part) in parts.iter().enumerate() {
        if !at.is_object() {
            *at = json!({});
        }
        let map = at.as_object_mut().expect("made an object");
        if i + 1 == parts.len() {
            map.insert((*part).to_owned(), value);
            return;
        }
        at = map.entry(*part).or_insert_with(|| json!({}));
    }
}

/// `pods/binding`: sets spec.nodeName once.
async fn binding(api: &Api, target: &Target, ctx: &Ctx, body: &[u8]) -> Result<Response, ApiError> {
    let binding = body_json(body, &ctx.headers)?;
    let node = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if node.is_empty() {
        return Err(ApiError::invalid(
            "",
            "Binding",
            &target.name,
            vec![Cause::required("target.name")],
        ));
    }
    let whole = main(target);
    api.objects
        .update(&whole, None, None, |current| {
            if !current.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or("").is_empty() {
                return Err(ApiError::conflict("", "pods", &target.name, &format!(
                    "pod {} is already assigned to node {:?}",
                    target.name,
                    current.pointer("/spec/nodeName").and_then(Value::as_str).unwrap_or("")
                )));
            }
            if !meta::meta_str(&current, "deletionTimestamp").is_empty() {
                return Err(ApiError::conflict("", "pods", &target.name, "pod is being deleted, cannot be assigned to a host"));
            }
            let mut next = current;
            next["spec"]["nodeName"] = json!(node);
            let conditions = next["status"]["conditions"].as_array().cloned().unwrap_or_default();
            let mut conditions: Vec<Value> = conditions.into_iter().filter(|c| c["type"] != "PodScheduled").collect();
            conditions.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": meta::now()}));
            next["status"]["conditions"] = json!(conditions);
            Ok(crate::storage::Change::Put(next))
        })
        .await?;
    let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201});
    Ok(respond(201, &status, &ctx.warnings))
}

/// `serviceaccounts/token`: a TokenRequest answered with a signed token.
async fn token(api: &Api, target: &Target, ctx: &Ctx, body: &[u8]) -> Result<Response, ApiError> {
    let request = body_json(body, &ctx.headers)?;
    let (sa, _) = api.objects.get(&main(target)).await?;
    let security = api.security.as_ref().ok_or_else(|| {
        ApiError::not_supported_yet("ServiceAccount tokens on a server without its PKI")
    })?;
    let audiences: Vec<String> = request
        .pointer("/spec/audiences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let seconds = request
        .pointer("/spec/expirationSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(3600);
    if seconds < 600 {
        return Err(ApiError::invalid(
            "authentication.k8s.io",
            "TokenRequest",
            &target.name,
            vec![Cause::invalid(
                "spec.expirationSeconds",
                &json!(seconds),
                "may not specify a duration less than 10 minutes",
            )],
        ));
    }
    let bound = request.pointer("/spec/boundObjectRef").map(|r| {
        (
            r.get("kind")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            r.get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            r.get("uid")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
        )
    });
    let (token, expires) = security.issue_token(
        &target.namespace,
        &target.name,
        meta::meta_str(&sa, "uid"),
        &audiences,
        seconds,
        bound,
    )?;
    let mut answer = request.clone();
    stamp(target, &mut answer);
    answer["apiVersion"] = json!("authentication.k8s.io/v1");
    answer["kind"] = json!("TokenRequest");
    answer["metadata"] =
        json!({"name": target.name, "namespace": target.namespace, "creationTimestamp": null});
    answer["spec"]["expirationSeconds"] = json!(seconds);
    answer["spec"]["audiences"] = json!(if audiences.is_empty() {
        vec!["https://kubernetes.default.svc.cluster.local".to_owned()]
    } else {
        audiences
    });
    answer["status"] = json!({"token": token, "expirationTimestamp": expires});
    let _ = Output::Json;
    Ok(respond(201, &answer, &ctx.warnings))
}
