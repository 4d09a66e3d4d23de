//! Volume endpoints.

use std::collections::HashMap;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use super::{Shared, blocking};
use crate::error::engine_error;
use crate::http::*;

pub(super) async fn route(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    method: &Method,
    parts: &[&str],
) -> Response<Body> {
    let root = shared.root.clone();
    match (method.as_str(), parts) {
        ("GET", ["volumes"]) => volumes_list(&root, &query(&req)).await,
        ("GET", ["volumes", name]) => {
            let name = name.to_string();
            match blocking(&root, move |e| e.volume(&name)).await {
                Ok(v) => json_resp(StatusCode::OK, &json!(v)),
                Err(e) => engine_error(e),
            }
        }
        ("POST", ["volumes", "create"]) => {
            let body = match read_json(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let map = |k: &str| string_map(body.get(k));
            let name = body.get("Name").and_then(Value::as_str).map(str::to_owned);
            let driver = body
                .get("Driver")
                .and_then(Value::as_str)
                .unwrap_or("local")
                .to_owned();
            let (opts, labels) = (map("DriverOpts"), map("Labels"));
            match blocking(&root, move |e| {
                e.create_volume(name.as_deref(), &driver, &opts, &labels)
            })
            .await
            {
                Ok(v) => json_resp(StatusCode::CREATED, &json!(v)),
                Err(e) => engine_error(e),
            }
        }
        ("POST", ["volumes", "prune"]) => {
            let filters = match filters(&query(&req)) {
                Ok(f) => f,
                Err(m) => return error(StatusCode::BAD_REQUEST, m),
            };
            let labels: Vec<String> = filters.get("label").cloned().unwrap_or_default();
            let all = filters
                .get("all")
                .is_some_and(|v| v.iter().any(|x| x == "true" || x == "1"));
            match blocking(&root, move |e| e.prune_volumes(all, &labels)).await {
                Ok((names, bytes)) => json_resp(
                    StatusCode::OK,
                    &json!({"VolumesDeleted": names, "SpaceReclaimed": bytes}),
                ),
                Err(e) => engine_error(e),
            }
        }
        ("DELETE", ["volumes", name]) => {
            let force = truthy(query(&req).get("force"));
            let name = name.to_string();
            match blocking(&root, move |e| e.remove_volume(&name, force)).await {
                Ok(()) => empty(StatusCode::NO_CONTENT),
                Err(e) => engine_error(e),
            }
        }
        _ => not_found(),
    }
}

async fn volumes_list(root: &std::path::Path, q: &HashMap<String, String>) -> Response<Body> {
    let f = match filters(q) {
        Ok(f) => f,
        Err(m) => return error(StatusCode::BAD_REQUEST, m),
    };
    for k in f.keys() {
        if !matches!(k.as_str(), "dangling" | "name" | "label" | "driver") {
            return error(StatusCode::BAD_REQUEST, format!("invalid filter '{k}'"));
        }
    }
    let r = blocking(root, move |e| {
        let used: std::collections::BTreeSet<String> = e
            .list()
            .iter()
            .flat_map(|c| c.record.mounts.iter().map(|m| m.name.clone()))
            .collect();
        let vols: Vec<Value> = e
            .volumes()
            .into_iter()
            .filter(|v| {
                f.iter().all(|(k, vals)| {
                    vals.iter().all(|x| match k.as_str() {
                        "dangling" => used.contains(&v.name) != matches!(x.as_str(), "true" | "1"),
                        "name" => v.name.contains(x.as_str()),
                        "label" => berth_engine::volumes::label_matches(&v.labels, x),
                        _ => v.driver == *x,
                    })
                })
            })
            .map(|v| json!(v))
            .collect();
        Ok(vols)
    })
    .await;
    match r {
        Ok(v) => json_resp(StatusCode::OK, &json!({"Volumes": v, "Warnings": null})),
        Err(e) => engine_error(e),
    }
}
