//! Image endpoints: list, inspect, tag, remove, prune, pull/import, load,
//! push, save, commit and build.

use std::sync::Arc;

use berth_engine::{Engine, Error as EngineError};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{Shared, blocking, engine_for};
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
        ("POST", ["commit"]) => {
            let q = query(&req);
            let changes: Vec<String> = req
                .uri()
                .query()
                .unwrap_or("")
                .split('&')
                .filter_map(|p| p.strip_prefix("changes="))
                .map(decode)
                .filter(|c| !c.is_empty())
                .collect();
            let body = match read_json(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let container = q.get("container").cloned().unwrap_or_default();
            let repo = q.get("repo").cloned().unwrap_or_default();
            let tag = q.get("tag").cloned().unwrap_or_default();
            let comment = q.get("comment").cloned().filter(|c| !c.is_empty());
            let author = q.get("author").cloned().filter(|c| !c.is_empty());
            let pause = q.get("pause").is_none_or(|v| truthy(Some(v)));
            let r = blocking(&root, move |e| {
                let name = match (repo.is_empty(), tag.is_empty()) {
                    (true, _) => None,
                    (false, true) => Some(repo.clone()),
                    (false, false) => Some(format!("{repo}:{tag}")),
                };
                let name = name
                    .map(|n| {
                        berth_types::Reference::parse(&n).map_err(|x| {
                            EngineError::Invalid(format!("invalid reference format: {x}"))
                        })
                    })
                    .transpose()?;
                let mut ch = berth_engine::changes::parse_changes(&changes)?;
                // a Config in the body overrides like --change
                if let Some(cfg) = body.as_object().filter(|o| !o.is_empty()) {
                    let c: berth_types::image::ContainerConfig =
                        serde_json::from_value(Value::Object(cfg.clone())).map_err(|x| {
                            EngineError::Invalid(format!("invalid commit config: {x}"))
                        })?;
                    if c.cmd.is_some() {
                        ch.cmd = c.cmd;
                    }
                    if c.entrypoint.is_some() {
                        ch.entrypoint = c.entrypoint;
                    }
                    ch.env.extend(c.env);
                    ch.labels.extend(c.labels);
                }
                e.commit(
                    &container,
                    name.as_ref(),
                    comment.as_deref(),
                    author.as_deref(),
                    Some(ch),
                    pause,
                )
            })
            .await;
            match r {
                Ok(id) => json_resp(StatusCode::CREATED, &json!({"Id": id.to_string()})),
                Err(e) => engine_error(e),
            }
        }
        ("GET", ["images", "json"]) => images_list(&root).await,
        ("POST", ["images", "prune"]) => {
            let f = match filters(&query(&req)) {
                Ok(f) => f,
                Err(m) => return bad_request(m),
            };
            if let Err(e) = f.check(&["dangling", "label", "label!", "until"]) {
                return engine_error(e);
            }
            // docker: dangling=false means every unused image
            let all = match f.boolean("dangling") {
                Ok(d) => d == Some(false),
                Err(e) => return engine_error(e),
            };
            let r = blocking(&root, move |e| {
                let used = e.images_in_use();
                Ok(e.images().prune(all, &|d| used.contains(d))?)
            })
            .await;
            match r {
                Ok((removed, gc)) => {
                    let v = removed_json(&removed);
                    json_resp(
                        StatusCode::OK,
                        &json!({"ImagesDeleted": v, "SpaceReclaimed": gc.bytes}),
                    )
                }
                Err(e) => engine_error(e),
            }
        }
        ("POST", ["build", "prune"]) => json_resp(
            StatusCode::OK,
            &json!({"CachesDeleted": [], "SpaceReclaimed": 0}),
        ),
        ("GET", ["images", rest @ .., "json"]) if !rest.is_empty() => {
            let name = rest.join("/");
            let r = blocking(&root, move |e| {
                let rec = e.images().resolve(&name)?;
                Ok(shapes::image_inspect(e.images(), &rec.id)?)
            })
            .await;
            match r {
                Ok(v) => json_resp(StatusCode::OK, &v),
                Err(e) => engine_error(e),
            }
        }
        ("POST", ["images", rest @ .., "tag"]) if !rest.is_empty() => {
            let name = rest.join("/");
            let q = query(&req);
            let repo = q.get("repo").cloned().unwrap_or_default();
            let tag = q.get("tag").cloned().filter(|t| !t.is_empty());
            let target = match tag {
                Some(t) => format!("{repo}:{t}"),
                None => repo,
            };
            let r = blocking(&root, move |e| {
                let t = berth_types::Reference::parse(&target)
                    .map_err(|x| EngineError::Invalid(format!("invalid reference format: {x}")))?;
                Ok(e.images().tag(&name, &t)?)
            })
            .await;
            match r {
                Ok(()) => empty(StatusCode::CREATED),
                Err(e) => engine_error(e),
            }
        }
        ("DELETE", ["images", rest @ ..]) if !rest.is_empty() => {
            let name = rest.join("/");
            let force = truthy(query(&req).get("force"));
            let r = blocking(&root, move |e| {
                let in_use = e.images_in_use();
                Ok(e.images().remove(&name, force, &|d| in_use.contains(d))?)
            })
            .await;
            match r {
                Ok(removed) => {
                    let v = removed_json(&removed);
                    json_resp(StatusCode::OK, &Value::Array(v))
                }
                Err(e) => engine_error(e),
            }
        }
        ("POST", ["images", "create"]) => images_create(shared.clone(), req).await,
        ("POST", ["images", "load"]) => images_load(&root, req).await,
        ("POST", ["images", rest @ .., "push"]) if !rest.is_empty() => {
            let name = rest.join("/");
            let tag = query(&req).get("tag").cloned().unwrap_or_default();
            progress_stream(&shared, move |e, reg, p| {
                crate::images_api::push(e.images(), reg, &name, &tag, p)
            })
        }
        ("GET", ["images", "get"]) => {
            let names: Vec<String> = req
                .uri()
                .query()
                .unwrap_or("")
                .split('&')
                .filter_map(|p| p.strip_prefix("names="))
                .map(decode)
                .collect();
            images_save(&root, names)
        }
        ("GET", ["images", rest @ .., "get"]) if !rest.is_empty() => {
            images_save(&root, vec![rest.join("/")])
        }
        ("POST", ["build"]) => error(
            StatusCode::NOT_IMPLEMENTED,
            "not supported yet: docker build (the builder arrives with its own issue)",
        ),
        _ => not_found(),
    }
}

/// `POST /images/create`: a pull (`fromImage`) with docker's JSON
/// progress, or an import of the body (`fromSrc=-`).
async fn images_create(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let q = query(&req);
    let root = shared.root.clone();
    if let Some(src) = q.get("fromSrc").filter(|s| !s.is_empty()) {
        if src != "-" {
            return error(
                StatusCode::NOT_IMPLEMENTED,
                "not supported yet: import from a URL (send the tarball as the body)",
            );
        }
        let repo = q.get("repo").cloned().unwrap_or_default();
        let tag = q.get("tag").cloned().unwrap_or_default();
        let message = q.get("message").cloned().filter(|m| !m.is_empty());
        let name = if repo.is_empty() {
            None
        } else if tag.is_empty() {
            Some(repo)
        } else {
            Some(format!("{repo}:{tag}"))
        };
        let reader = crate::images_api::BodyReader::new(req.into_body());
        let r = blocking(&root, move |e| {
            let name =
                match &name {
                    Some(n) => Some(berth_types::Reference::parse(n).map_err(|x| {
                        EngineError::Invalid(format!("invalid reference format: {x}"))
                    })?),
                    None => None,
                };
            Ok(e.images().import(
                reader,
                Default::default(),
                message.as_deref(),
                name.as_ref(),
            )?)
        })
        .await;
        return match r {
            Ok(id) => full(
                StatusCode::OK,
                format!("{}\r\n", json!({"status": id.to_string()})),
                Some("application/json"),
            ),
            Err(e) => engine_error(e),
        };
    }
    let Some(from) = q.get("fromImage").filter(|s| !s.is_empty()).cloned() else {
        return error(
            StatusCode::BAD_REQUEST,
            "fromImage or fromSrc must be given",
        );
    };
    let tag = q.get("tag").cloned().unwrap_or_default();
    progress_stream(&shared, move |e, reg, p| {
        crate::images_api::pull(e.images(), reg, &from, &tag, p)
    })
}

/// A pull or push on a blocking thread, its docker JSON progress streamed
/// as the response (errors go into the stream, as dockerd does).
fn progress_stream(
    shared: &Shared,
    work: impl FnOnce(
        &Engine,
        &berth_image::registry::RegistryOptions,
        Arc<crate::images_api::JsonProgress>,
    ) + Send
    + 'static,
) -> Response<Body> {
    // progress arrives from the registry client's own runtime: an unbounded
    // (never blocking) channel, drained into the bounded response body
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
    let (out_tx, out_rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            if out_tx.send(b).await.is_err() {
                return;
            }
        }
    });
    let (root, registry) = (shared.root.clone(), shared.registry.clone());
    tokio::task::spawn_blocking(move || {
        let progress = Arc::new(crate::images_api::JsonProgress(tx));
        match engine_for(&root) {
            Ok(e) => work(&e, &registry, progress),
            Err(e) => progress
                .send(json!({"errorDetail": {"message": e.to_string()}, "error": e.to_string()})),
        }
    });
    streaming(Some("application/json"), out_rx)
}

/// `POST /images/load`: the body is a docker-archive or oci-archive.
async fn images_load(root: &std::path::Path, req: Request<Incoming>) -> Response<Body> {
    // `quiet` only silences progress bars, which a load here has none of
    let reader = crate::images_api::BodyReader::new(req.into_body());
    let r = blocking(root, move |e| Ok(e.images().load(reader)?)).await;
    match r {
        Ok(loaded) => {
            let mut out = String::new();
            for l in &loaded {
                if l.names.is_empty() {
                    out.push_str(&format!(
                        "{}\r\n",
                        json!({"stream": format!("Loaded image ID: {}\n", l.id)})
                    ));
                }
                for n in &l.names {
                    out.push_str(&format!(
                        "{}\r\n",
                        json!({"stream": format!("Loaded image: {}\n", n.familiar())})
                    ));
                }
            }
            full(StatusCode::OK, out, Some("application/json"))
        }
        Err(e) => engine_error(e),
    }
}

/// `GET /images/get`: a docker-archive of the named images, streamed.
fn images_save(root: &std::path::Path, names: Vec<String>) -> Response<Body> {
    if names.is_empty() {
        return error(StatusCode::BAD_REQUEST, "no image names given");
    }
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let root = root.to_path_buf();
    // resolve first, so a missing image is a 404 and not a broken stream
    let engine = match engine_for(&root) {
        Ok(e) => e,
        Err(e) => return engine_error(e),
    };
    for n in &names {
        if let Err(e) = engine.images().resolve(n) {
            return engine_error(e.into());
        }
    }
    tokio::task::spawn_blocking(move || {
        let w = crate::images_api::ChannelWriter(tx);
        if let Err(e) = engine.images().save_docker(&names, w) {
            tracing::warn!("save: {e}");
        }
    });
    streaming(Some("application/x-tar"), rx)
}

/// `GET /images/json` entries.
pub(super) fn image_summaries(
    list: &[berth_image::images::ImageSummary],
    in_use: &std::collections::BTreeSet<berth_types::Digest>,
) -> Vec<Value> {
    let fam = |n: &String| {
        berth_types::Reference::parse(n)
            .map(|r| r.familiar())
            .unwrap_or_else(|_| n.clone())
    };
    list.iter()
        .map(|s| {
            let created = s
                .record
                .created
                .as_deref()
                .and_then(shapes::text::unix_secs)
                .unwrap_or(0);
            json!({
                "Id": s.record.id.to_string(),
                "ParentId": "",
                "RepoTags": s.tags.iter().map(fam).collect::<Vec<_>>(),
                "RepoDigests": s.digests.iter().map(fam).collect::<Vec<_>>(),
                "Created": created,
                "Size": s.record.size,
                "SharedSize": -1,
                "VirtualSize": s.record.size,
                "Labels": null,
                "Containers": if in_use.contains(&s.record.id) { 1 } else { 0 },
            })
        })
        .collect()
}

async fn images_list(root: &std::path::Path) -> Response<Body> {
    let r = blocking(root, |e| {
        let in_use = e.images_in_use();
        Ok(image_summaries(&e.images().list()?, &in_use))
    })
    .await;
    match r {
        Ok(v) => json_resp(StatusCode::OK, &Value::Array(v)),
        Err(e) => engine_error(e),
    }
}

/// Docker's list of what an image removal untagged and deleted.
fn removed_json(removed: &[berth_image::Removed]) -> Vec<Value> {
    removed
        .iter()
        .map(|r| match r {
            berth_image::Removed::Untagged(n) => json!({"Untagged": n}),
            berth_image::Removed::Deleted(d) => json!({"Deleted": d.to_string()}),
        })
        .collect()
}
