//! Volume endpoints.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use super::{Shared, blocking};
use crate::error::{bad_request, engine_error};
use crate::http::*;
use crate::shapes;

pub(super) async fn route(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    method: &Method,
    parts: &[&str],
) -> Response<Body> {
    let root = shared.root.clone();
    match (method.as_str(), parts) {
        ("GET", ["volumes"]) => {
            let f = match filters(&query(&req)) {
                Ok(f) => f,
                Err(m) => return bad_request(m),
            };
            match blocking(&root, move |e| e.volumes_filtered(&f)).await {
                Ok(v) => {
                    let v: Vec<Value> = v.iter().map(shapes::volume).collect();
                    json_resp(StatusCode::OK, &json!({"Volumes": v, "Warnings": null}))
                }
                Err(e) => engine_error(e),
            }
        }
        ("GET", ["volumes", name]) => {
            let name = name.to_string();
            match blocking(&root, move |e| e.volume(&name)).await {
                Ok(v) => json_resp(StatusCode::OK, &shapes::volume(&v)),
                Err(e) => engine_error(e),
            }
        }
        ("POST", ["volumes", "create"]) => {
            let body: VolumeCreateBody = match read_body(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let driver = body.driver.unwrap_or_else(|| "local".into());
            let (opts, labels) = (
                body.driver_opts.unwrap_or_default(),
                body.labels.unwrap_or_default(),
            );
            let name = body.name.filter(|n| !n.is_empty());
            match blocking(&root, move |e| {
                e.create_volume(name.as_deref(), &driver, &opts, &labels)
            })
            .await
            {
                Ok(v) => json_resp(StatusCode::CREATED, &shapes::volume(&v)),
                Err(e) => engine_error(e),
            }
        }
        ("POST", ["volumes", "prune"]) => {
            let minor = api_minor(&req);
            let f = match filters(&query(&req)) {
                Ok(f) => f,
                Err(m) => return bad_request(m),
            };
            // before API 1.42 a prune removed every unused volume, and
            // there was no `all` filter
            let all = if minor < 42 {
                if f.has("all") {
                    return bad_request("Invalid filter 'all'");
                }
                true
            } else {
                match f.boolean("all") {
                    Ok(a) => a.unwrap_or(false),
                    Err(e) => return engine_error(e),
                }
            };
            match blocking(&root, move |e| e.prune_volumes(&f, all)).await {
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

/// `POST /volumes/create`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct VolumeCreateBody {
    name: Option<String>,
    driver: Option<String>,
    driver_opts: Option<std::collections::BTreeMap<String, String>>,
    labels: Option<std::collections::BTreeMap<String, String>>,
}
