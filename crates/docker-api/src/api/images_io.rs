//! Endpoints that add or export images: `POST /commit`, the import form of
//! `POST /images/create` (`fromSrc=-`), `POST /images/load` and
//! `GET /images/get`. Bodies stream through a blocking reader or writer
//! bridged to the image store.

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::json;
use tokio::sync::mpsc;

use super::images::query_all;
use super::{blocking, engine_for};
use crate::error::{bad_request, engine_error};
use crate::http::*;
use crate::images_api::{BodyReader, ChannelWriter};
use crate::model::image::{CommitConfig, repo_tag};
use crate::syntax::apply_changes;
use berth_engine::{CommitOptions, Error as EngineError};

/// `POST /commit`: the container's changes as an image; a configuration
/// in the body and `changes` as dockerd applies them.
pub(super) async fn commit(root: &std::path::Path, req: Request<Incoming>) -> Response<Body> {
    let q = query(&req);
    let changes: Vec<String> = query_all(&req, "changes")
        .into_iter()
        .filter(|c| !c.is_empty())
        .collect();
    let body = match http_body_util::Limited::new(req.into_body(), MAX_JSON_BODY)
        .collect()
        .await
    {
        Ok(c) => c.to_bytes(),
        Err(e) => return bad_request(format!("request body too large or unreadable: {e}")),
    };
    let config = match CommitConfig::parse(&body) {
        Ok(c) => c,
        Err(m) => return bad_request(m),
    };
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    let name = match repo_tag(&get("repo"), &get("tag")) {
        Ok(n) => n,
        Err(m) => return bad_request(m),
    };
    let container = get("container");
    let comment = q.get("comment").cloned().filter(|c| !c.is_empty());
    let author = q.get("author").cloned().filter(|c| !c.is_empty());
    let pause = q.get("pause").is_none_or(|v| truthy(Some(v)));
    let r = blocking(root, move |e| {
        let opts = CommitOptions {
            name: name.as_ref(),
            comment: comment.as_deref(),
            author: author.as_deref(),
            pause,
        };
        e.commit(&container, &opts, |from| {
            // dockerd starts from the body's config, else the container's
            let start = config.map_or(from, CommitConfig::into_config);
            apply_changes(start, &changes).map_err(EngineError::Invalid)
        })
    })
    .await;
    match r {
        Ok(id) => json_resp(StatusCode::CREATED, &json!({"Id": id.to_string()})),
        Err(e) => engine_error(e),
    }
}

/// `POST /images/create?fromSrc=-`: the body as a root filesystem, with
/// `changes` applied to an empty configuration.
pub(super) async fn import(root: &std::path::Path, req: Request<Incoming>) -> Response<Body> {
    let q = query(&req);
    if q.get("fromSrc").map(String::as_str) != Some("-") {
        return error(
            StatusCode::NOT_IMPLEMENTED,
            "not supported yet: import from a URL (send the tarball as the body)",
        );
    }
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    let name = match repo_tag(&get("repo"), &get("tag")) {
        Ok(n) => n,
        Err(m) => return bad_request(m),
    };
    let changes: Vec<String> = query_all(&req, "changes")
        .into_iter()
        .filter(|c| !c.is_empty())
        .collect();
    let config = match apply_changes(Default::default(), &changes) {
        Ok(c) => c,
        Err(m) => return bad_request(m),
    };
    let message = q.get("message").cloned().filter(|m| !m.is_empty());
    let reader = BodyReader::new(req.into_body());
    let r = blocking(root, move |e| {
        e.import_image(reader, config, message.as_deref(), name.as_ref())
    })
    .await;
    match r {
        Ok(id) => full(
            StatusCode::OK,
            format!("{}\r\n", json!({"status": id.to_string()})),
            Some("application/json"),
        ),
        Err(e) => engine_error(e),
    }
}

/// `POST /images/load`: a docker-archive or oci-archive body. As dockerd,
/// a load that fails answers 200 with the error in the JSON stream (what
/// docker-py's `ImageLoadError` reads); nothing of it stays in the store.
pub(super) async fn load(root: &std::path::Path, req: Request<Incoming>) -> Response<Body> {
    // `quiet` only silences progress bars, which a load here has none of
    let reader = BodyReader::new(req.into_body());
    let r = blocking(root, move |e| e.load_images(reader)).await;
    let mut out = String::new();
    match r {
        Ok(loaded) => {
            for l in &loaded {
                if l.names.is_empty() {
                    let line = format!("Loaded image ID: {}\n", l.id);
                    out.push_str(&format!("{}\r\n", json!({ "stream": line })));
                }
                for n in &l.names {
                    let line = format!("Loaded image: {}\n", n.familiar());
                    out.push_str(&format!("{}\r\n", json!({ "stream": line })));
                }
            }
        }
        Err(e) => {
            let m = e.to_string();
            out.push_str(&format!(
                "{}\r\n",
                json!({"errorDetail": {"message": m}, "error": m})
            ));
        }
    }
    full(StatusCode::OK, out, Some("application/json"))
}

/// `GET /images/get`: a docker-archive of the named images, streamed.
pub(super) async fn save(root: &std::path::Path, names: Vec<String>) -> Response<Body> {
    if names.is_empty() {
        return error(StatusCode::BAD_REQUEST, "no image names given");
    }
    // resolve first, so a missing image is a 404 and not a broken stream
    let engine = match engine_for(root) {
        Ok(e) => e,
        Err(e) => return engine_error(e),
    };
    for n in &names {
        if let Err(e) = engine.images().resolve(n) {
            return engine_error(e.into());
        }
    }
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    tokio::task::spawn_blocking(move || {
        if let Err(e) = engine.save_images(&names, ChannelWriter(tx)) {
            tracing::warn!("save: {e}");
        }
    });
    streaming(Some("application/x-tar"), rx)
}
