//! Endpoints that talk to registries: the pull form of
//! `POST /images/create`, `POST /images/{name}/push`, `POST /auth` (docker
//! login) and `GET /distribution/{name}/json`. Credentials come from the
//! request's `X-Registry-Auth` header (or `/auth`'s body) and are used for
//! that request's registry only.

use std::sync::Arc;

use berth_engine::{Engine, Error as EngineError};
use berth_image::registry::{AuthConfig, Client, RegistryOptions};
use berth_types::Reference;
use berth_types::image::Platform;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::json;
use tokio::sync::mpsc;

use super::{Shared, blocking, engine_for};
use crate::error::{bad_request, engine_error};
use crate::http::*;
use crate::images_api::JsonProgress;
use crate::model::image::{AuthBody, registry_auth_header};

/// The request's `X-Registry-Auth` credentials.
fn header_auth(req: &Request<Incoming>) -> Result<AuthConfig, String> {
    match req.headers().get("x-registry-auth") {
        None => Ok(AuthConfig::default()),
        Some(v) => registry_auth_header(
            v.to_str()
                .map_err(|_| "invalid X-Registry-Auth header: not text".to_owned())?,
        ),
    }
}

/// A registry failure before anything was streamed: dockerd answers 500
/// for a registry it cannot reach.
fn registry_error(e: EngineError) -> Response<Body> {
    if e.kind() == berth_types::ErrorKind::Unavailable {
        return error(StatusCode::INTERNAL_SERVER_ERROR, e);
    }
    engine_error(e)
}

fn parse_reference(name: &str) -> Result<Reference, String> {
    Reference::parse(name).map_err(|e| format!("invalid reference format: {}", e.reason))
}

/// `POST /images/create?fromImage=…`: a pull with docker's JSON progress.
/// A pull that fails before its first progress line (registry unreachable,
/// no such repository) answers with an HTTP error, as dockerd's does.
pub(super) async fn pull(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let q = query(&req);
    let auth = match header_auth(&req) {
        Ok(a) => a,
        Err(m) => return bad_request(m),
    };
    let Some(from) = q.get("fromImage").filter(|s| !s.is_empty()).cloned() else {
        return bad_request("fromImage or fromSrc must be given");
    };
    let tag = q.get("tag").cloned().unwrap_or_default();
    let name = if tag.is_empty() || from.contains('@') {
        from
    } else if tag.contains(':') {
        format!("{from}@{tag}")
    } else {
        format!("{from}:{tag}")
    };
    let r = match parse_reference(&name) {
        Ok(r) => r,
        Err(m) => return bad_request(m),
    };
    let platform = match q.get("platform").filter(|p| !p.is_empty()) {
        None => Platform::host(),
        Some(p) => match Platform::parse(p) {
            Some(p) => p,
            None => return bad_request(format!("invalid platform {p:?}")),
        },
    };
    progress_stream(&shared, move |e, reg, p| {
        let what = r
            .tag()
            .map(str::to_owned)
            .or_else(|| r.digest().map(|d| d.to_string()))
            .unwrap_or_default();
        p.head(json!({"status": format!("Pulling from {}", r.path()), "id": what}));
        let client = Client::new(reg.clone()).with_auth(r.domain(), auth);
        let pulled = e.pull_image(&client, &r, &platform, p.clone())?;
        p.send(json!({"status": format!("Digest: {}", pulled.digest)}));
        let fam = r.familiar();
        p.send(json!({"status": if pulled.up_to_date {
            format!("Status: Image is up to date for {fam}")
        } else {
            format!("Status: Downloaded newer image for {fam}")
        }}));
        Ok(())
    })
    .await
}

/// `POST /images/{name}/push`.
pub(super) async fn push(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    name: String,
) -> Response<Body> {
    let auth = match header_auth(&req) {
        Ok(a) => a,
        Err(m) => return bad_request(m),
    };
    let tag = query(&req).get("tag").cloned().unwrap_or_default();
    let full = if tag.is_empty() {
        name
    } else {
        format!("{name}:{tag}")
    };
    let r = match parse_reference(&full) {
        Ok(r) => r,
        Err(m) => return bad_request(m),
    };
    progress_stream(&shared, move |e, reg, p| {
        if e.images().resolve(&full).is_err() {
            return Err(EngineError::NotFound(format!(
                "An image does not exist locally with the tag: {}",
                r.familiar_repository()
            )));
        }
        p.send(json!({"status": format!("The push refers to repository [{}]", r.repository())}));
        let client = Client::new(reg.clone()).with_auth(r.domain(), auth);
        let pushed = e.push_image(&client, &full, &r, p.clone())?;
        let t = r.tag().unwrap_or("latest");
        p.send(json!({"status": format!("{t}: digest: {} size: {}", pushed.digest, pushed.size)}));
        p.send(json!({"progressDetail": {}, "aux": {"Tag": t,
            "Digest": pushed.digest.to_string(), "Size": pushed.size}}));
        Ok(())
    })
    .await
}

/// A pull or push on a blocking thread, its docker JSON progress streamed
/// as the response. Until its first line the response waits: a failure
/// before that is an HTTP error; after it, an error line in the stream.
async fn progress_stream(
    shared: &Shared,
    work: impl FnOnce(&Engine, &RegistryOptions, Arc<JsonProgress>) -> Result<(), EngineError>
    + Send
    + 'static,
) -> Response<Body> {
    // progress arrives from the registry client's own runtime: an unbounded
    // (never blocking) channel, drained into the bounded response body
    let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
    let progress = Arc::new(JsonProgress::new(tx));
    let (root, registry) = (shared.root.clone(), shared.registry.clone());
    let p = progress.clone();
    let mut job = tokio::task::spawn_blocking(move || {
        let r = engine_for(&root).and_then(|e| work(&e, &registry, p.clone()));
        if let Err(e) = &r
            && p.started()
        {
            p.error(&e.to_string());
        }
        r
    });
    drop(progress);
    let internal = |e| error(StatusCode::INTERNAL_SERVER_ERROR, format!("internal: {e}"));
    let first = tokio::select! {
        biased;
        b = rx.recv() => Ok(b),
        j = &mut job => Err(j),
    };
    let first = match first {
        Ok(Some(b)) => Some(b),
        // nothing was sent and the job is over (the channel closes with it)
        Ok(None) => match job.await {
            Ok(Err(e)) => return registry_error(e),
            Ok(Ok(())) => None,
            Err(e) => return internal(e),
        },
        Err(Ok(Err(e))) if !rx.is_empty() => {
            tracing::debug!("pull/push failed after progress: {e}");
            rx.try_recv().ok()
        }
        Err(Ok(Err(e))) => return registry_error(e),
        Err(Ok(Ok(()))) => rx.try_recv().ok(),
        Err(Err(e)) => return internal(e),
    };
    let (out_tx, out_rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let mut next = first;
        while let Some(b) = next {
            if out_tx.send(b).await.is_err() {
                return;
            }
            next = rx.recv().await;
        }
    });
    streaming(Some("application/json"), out_rx)
}

/// `POST /auth`: checks the credentials against the registry, as `docker
/// login` asks dockerd to.
pub(super) async fn login(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let body: Option<AuthBody> = match read_body::<Option<AuthBody>>(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(body) = body else {
        return bad_request("no credentials given (an AuthConfig body is required)");
    };
    let (server, auth) = match body.into_auth() {
        Ok(x) => x,
        Err(m) => return bad_request(m),
    };
    let server = if server.is_empty() {
        "https://index.docker.io/v1/".to_owned()
    } else {
        server
    };
    let registry = shared.registry.clone();
    let r = blocking(&shared.root, move |_| {
        let client = Client::new(registry).with_auth(&server, auth);
        Ok(client.login_blocking(&server)?)
    })
    .await;
    match r {
        Ok(token) => json_resp(
            StatusCode::OK,
            &json!({"Status": "Login Succeeded", "IdentityToken": token}),
        ),
        Err(e) => registry_error(e),
    }
}

/// `GET /distribution/{name}/json`: what the name is in its registry.
pub(super) async fn distribution(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    name: String,
) -> Response<Body> {
    let auth = match header_auth(&req) {
        Ok(a) => a,
        Err(m) => return bad_request(m),
    };
    let r = match parse_reference(&name) {
        Ok(r) => r,
        Err(m) => return bad_request(m),
    };
    let registry = shared.registry.clone();
    let d = blocking(&shared.root, move |_| {
        let client = Client::new(registry).with_auth(r.domain(), auth);
        Ok(client.distribution_blocking(&r)?)
    })
    .await;
    match d {
        Ok(d) => json_resp(
            StatusCode::OK,
            &json!({"Descriptor": d.descriptor, "Platforms": d.platforms}),
        ),
        Err(e) => registry_error(e),
    }
}
