//! Image endpoints: list, inspect, history, tag, remove and prune here;
//! the routes of those that move images (`images_io`: commit, import,
//! load, save) and talk to registries (`images_remote`: pull, push, login,
//! distribution).

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use super::{Shared, blocking, images_io, images_remote};
use crate::error::{bad_request, engine_error};
use crate::http::*;
use crate::model::image::repo_tag;
use crate::shapes;

pub(super) async fn route(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    method: &Method,
    parts: &[&str],
) -> Response<Body> {
    let root = shared.root.clone();
    let minor = api_minor(&req);
    match (method.as_str(), parts) {
        ("POST", ["commit"]) => images_io::commit(&root, req).await,
        ("GET", ["images", "json"]) => {
            let q = query(&req);
            let f = match filters(&q) {
                Ok(f) => f,
                Err(m) => return bad_request(m),
            };
            let all = truthy(q.get("all"));
            let r = blocking(&root, move |e| {
                Ok(shapes::image_summaries(
                    &e.list_images(&f, all)?,
                    None,
                    minor,
                ))
            })
            .await;
            match r {
                Ok(v) => json_resp(StatusCode::OK, &Value::Array(v)),
                Err(e) => engine_error(e),
            }
        }
        ("GET", ["images", "search"]) => error(
            StatusCode::NOT_IMPLEMENTED,
            "not supported yet: image search (berth has no index to search)",
        ),
        ("POST", ["images", "prune"]) => {
            let f = match filters(&query(&req)) {
                Ok(f) => f,
                Err(m) => return bad_request(m),
            };
            let until = match until_filter(&f) {
                Ok(u) => u,
                Err(m) => return bad_request(m),
            };
            let r = blocking(&root, move |e| e.prune_images(&f, until)).await;
            match r {
                Ok((removed, gc)) => {
                    let v = removed_json(&removed);
                    let deleted = if v.is_empty() {
                        Value::Null
                    } else {
                        Value::Array(v)
                    };
                    json_resp(
                        StatusCode::OK,
                        &json!({"ImagesDeleted": deleted, "SpaceReclaimed": gc.bytes}),
                    )
                }
                Err(e) => engine_error(e),
            }
        }
        ("POST", ["build", "prune"]) => super::build::prune(shared.clone()).await,
        ("GET", ["images", rest @ .., "json"]) if !rest.is_empty() => {
            let name = rest.join("/");
            let r = blocking(&root, move |e| {
                let rec = e.images().resolve(&name)?;
                Ok(shapes::image_inspect(e.images(), &rec.id, minor)?)
            })
            .await;
            match r {
                Ok(v) => json_resp(StatusCode::OK, &v),
                Err(e) => engine_error(e),
            }
        }
        ("GET", ["images", rest @ .., "history"]) if !rest.is_empty() => {
            let name = rest.join("/");
            let r = blocking(&root, move |e| e.image_history(&name)).await;
            match r {
                Ok(h) => json_resp(StatusCode::OK, &shapes::image_history(&h)),
                Err(e) => engine_error(e),
            }
        }
        ("POST", ["images", rest @ .., "tag"]) if !rest.is_empty() => {
            let name = rest.join("/");
            let q = query(&req);
            let repo = q.get("repo").cloned().unwrap_or_default();
            let tag = q.get("tag").cloned().unwrap_or_default();
            let target = match repo_tag(&repo, &tag) {
                Ok(Some(t)) => t,
                Ok(None) => return bad_request("invalid reference format: no repository given"),
                Err(m) => return bad_request(m),
            };
            let r = blocking(&root, move |e| e.tag_image(&name, &target)).await;
            match r {
                Ok(()) => empty(StatusCode::CREATED),
                Err(e) => engine_error(e),
            }
        }
        ("DELETE", ["images", rest @ ..]) if !rest.is_empty() => {
            let name = rest.join("/");
            let force = truthy(query(&req).get("force"));
            let r = blocking(&root, move |e| e.remove_image(&name, force)).await;
            match r {
                Ok(removed) => {
                    let v = removed_json(&removed);
                    json_resp(StatusCode::OK, &Value::Array(v))
                }
                Err(e) => engine_error(e),
            }
        }
        ("POST", ["images", "create"]) => {
            if query(&req).get("fromSrc").is_some_and(|s| !s.is_empty()) {
                images_io::import(&root, req).await
            } else {
                images_remote::pull(shared.clone(), req).await
            }
        }
        ("POST", ["images", "load"]) => images_io::load(&root, req).await,
        ("POST", ["images", rest @ .., "push"]) if !rest.is_empty() => {
            images_remote::push(shared.clone(), req, rest.join("/")).await
        }
        ("GET", ["images", "get"]) => {
            let names = query_all(&req, "names");
            images_io::save(&root, names).await
        }
        ("GET", ["images", rest @ .., "get"]) if !rest.is_empty() => {
            images_io::save(&root, vec![rest.join("/")]).await
        }
        ("POST", ["auth"]) => images_remote::login(shared.clone(), req).await,
        ("GET", ["distribution", rest @ .., "json"]) if !rest.is_empty() => {
            images_remote::distribution(shared.clone(), req, rest.join("/")).await
        }
        ("POST", ["build"]) => super::build::build(shared.clone(), req).await,
        _ => not_found(),
    }
}

/// Every value of a repeated query parameter (`changes=…&changes=…`).
pub(super) fn query_all(req: &Request<Incoming>, key: &str) -> Vec<String> {
    let prefix = format!("{key}=");
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|p| p.strip_prefix(prefix.as_str()))
        .map(decode)
        .collect()
}

/// Docker's list of what an image removal untagged and deleted.
pub(super) fn removed_json(removed: &[berth_image::Removed]) -> Vec<Value> {
    removed
        .iter()
        .map(|r| match r {
            berth_image::Removed::Untagged(n) => json!({"Untagged": n}),
            berth_image::Removed::Deleted(d) => json!({"Deleted": d.to_string()}),
        })
        .collect()
}
