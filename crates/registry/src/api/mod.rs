//! The HTTP API: one handler that authenticates, parses the path itself
//! (repository names contain slashes, so the router cannot) and dispatches.

mod blobs;
mod listing;
mod manifests;
mod uploads;

pub(crate) use uploads::expire as expire_uploads;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_image::store::ContentStore;

use crate::auth::Checker;
use crate::db::Db;
use crate::error::{ApiError, Code};
use crate::names::valid_repository;
use crate::uploads::Uploads;

/// Everything the handlers share.
pub(crate) struct App {
    pub store: ContentStore,
    pub db: Arc<Mutex<Db>>,
    pub uploads: Uploads,
    pub auth: Option<Checker>,
    pub max_manifest_bytes: usize,
    pub max_catalog_n: usize,
}

impl App {
    /// Runs `f` with the (locked) database and the store on a blocking
    /// thread.
    pub(crate) async fn db<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db, &ContentStore) -> Result<T, ApiError> + Send + 'static,
    {
        let db = self.db.clone();
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let mut db = db.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut db, &store)
        })
        .await?
    }
}

/// The router: everything goes through [`handle`].
pub(crate) fn router(app: Arc<App>) -> Router {
    Router::new().fallback(handle).with_state(app)
}

/// What a path names.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Base,
    Catalog,
    Blob { name: String, digest: String },
    UploadStart { name: String },
    Upload { name: String, id: String },
    Manifest { name: String, reference: String },
    Tags { name: String },
    Referrers { name: String, digest: String },
}

impl Route {
    fn name(&self) -> Option<&str> {
        match self {
            Route::Base | Route::Catalog => None,
            Route::Blob { name, .. }
            | Route::UploadStart { name }
            | Route::Upload { name, .. }
            | Route::Manifest { name, .. }
            | Route::Tags { name }
            | Route::Referrers { name, .. } => Some(name),
        }
    }
}

/// Decodes `%XX` escapes.
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_owned());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The query string's pairs, decoded (`+` is a space).
pub(crate) fn query_pairs(q: Option<&str>) -> Vec<(String, String)> {
    q.unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Some((
                percent_decode(&k.replace('+', " "))?,
                percent_decode(&v.replace('+', " "))?,
            ))
        })
        .collect()
}

/// The first value of query parameter `key`.
pub(crate) fn query_get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Parses a request path.
fn route(path: &str) -> Option<Route> {
    let rest = path.strip_prefix("/v2")?;
    if rest.is_empty() || rest == "/" {
        return Some(Route::Base);
    }
    let rest = rest.strip_prefix('/')?;
    if rest == "_catalog" {
        return Some(Route::Catalog);
    }
    let segs: Vec<String> = rest.split('/').map(percent_decode).collect::<Option<_>>()?;
    let n = segs.len();
    let join = |k: usize| segs[..k].join("/");
    if n >= 3 && segs[n - 2] == "tags" && segs[n - 1] == "list" {
        return Some(Route::Tags { name: join(n - 2) });
    }
    if n >= 3 && segs[n - 2] == "manifests" {
        return Some(Route::Manifest {
            name: join(n - 2),
            reference: segs[n - 1].clone(),
        });
    }
    if n >= 3 && segs[n - 2] == "referrers" {
        return Some(Route::Referrers {
            name: join(n - 2),
            digest: segs[n - 1].clone(),
        });
    }
    if n >= 3 && segs[n - 2] == "blobs" {
        if segs[n - 1] == "uploads" {
            // POST /v2/<name>/blobs/uploads without the trailing slash
            return Some(Route::UploadStart { name: join(n - 2) });
        }
        return Some(Route::Blob {
            name: join(n - 2),
            digest: segs[n - 1].clone(),
        });
    }
    if n >= 4 && segs[n - 3] == "blobs" && segs[n - 2] == "uploads" {
        let name = join(n - 3);
        return Some(if segs[n - 1].is_empty() {
            Route::UploadStart { name }
        } else {
            Route::Upload {
                name,
                id: segs[n - 1].clone(),
            }
        });
    }
    None
}

/// An empty response with `Content-Length: 0`.
pub(crate) fn empty(status: StatusCode) -> Response {
    let mut r = (status, Body::empty()).into_response();
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    r
}

/// Sets a header from a string (ignored if it is not a valid value).
pub(crate) fn set(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

/// Appends a header (for repeated ones).
pub(crate) fn append(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.append(name, v);
    }
}

async fn handle(State(app): State<Arc<App>>, req: Request) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let mut resp = match dispatch(&app, req).await {
        Ok(r) => r,
        Err(e) => {
            if e.status().is_server_error() {
                tracing::warn!(%method, %path, status = %e.status(), code = e.code().as_str(), "request failed");
            }
            e.into_response()
        }
    };
    resp.headers_mut().insert(
        "Docker-Distribution-API-Version",
        HeaderValue::from_static("registry/2.0"),
    );
    tracing::debug!(%method, %path, status = resp.status().as_u16(), "request");
    resp
}

async fn authorize(app: &Arc<App>, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(checker) = &app.auth else {
        return Ok(());
    };
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let ok = if checker.needs_blocking(value.as_deref()) {
        // a bcrypt round: keep it off the async workers
        let app = app.clone();
        tokio::task::spawn_blocking(move || {
            app.auth.as_ref().is_some_and(|c| c.check(value.as_deref()))
        })
        .await?
    } else {
        checker.check(value.as_deref())
    };
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            Code::Unauthorized,
            "authentication required",
        )
        .header(header::WWW_AUTHENTICATE, "Basic realm=\"berth\""))
    }
}

async fn dispatch(app: &Arc<App>, req: Request) -> Result<Response, ApiError> {
    authorize(app, req.headers()).await?;
    let Some(route) = route(req.uri().path()) else {
        return Err(ApiError::not_found(
            Code::Unsupported,
            format!("no such endpoint: {}", req.uri().path()),
        ));
    };
    if let Some(name) = route.name()
        && !valid_repository(name)
    {
        return Err(ApiError::name_invalid(name));
    }
    let method = req.method().clone();
    let head = method == Method::HEAD;
    match (route, method) {
        (Route::Base, Method::GET | Method::HEAD) => {
            let mut r = (StatusCode::OK, "{}").into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            Ok(r)
        }
        (Route::Catalog, Method::GET) => listing::catalog(app, req).await,
        (Route::Blob { name, digest }, Method::GET | Method::HEAD) => {
            blobs::get(app, &name, &digest, head, req.headers()).await
        }
        (Route::Blob { name, digest }, Method::DELETE) => blobs::delete(app, &name, &digest).await,
        (Route::UploadStart { name }, Method::POST) => uploads::start(app, name, req).await,
        (Route::Upload { name, id }, Method::PATCH) => uploads::patch(app, &name, &id, req).await,
        (Route::Upload { name, id }, Method::PUT) => uploads::put(app, &name, &id, req).await,
        (Route::Upload { name, id }, Method::GET) => uploads::status(app, &name, &id).await,
        (Route::Upload { name, id }, Method::DELETE) => uploads::cancel(app, &name, &id).await,
        (Route::Manifest { name, reference }, Method::GET | Method::HEAD) => {
            manifests::get(app, &name, &reference, head).await
        }
        (Route::Manifest { name, reference }, Method::PUT) => {
            manifests::put(app, name, &reference, req).await
        }
        (Route::Manifest { name, reference }, Method::DELETE) => {
            manifests::delete(app, &name, &reference).await
        }
        (Route::Tags { name }, Method::GET) => listing::tags(app, name, req).await,
        (Route::Referrers { name, digest }, Method::GET) => {
            manifests::referrers(app, name, &digest, req).await
        }
        (_, method) => Err(ApiError::unsupported(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not allowed here"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> String {
        x.to_owned()
    }

    #[test]
    fn routes() {
        assert_eq!(route("/v2/"), Some(Route::Base));
        assert_eq!(route("/v2"), Some(Route::Base));
        assert_eq!(route("/v2/_catalog"), Some(Route::Catalog));
        assert_eq!(
            route("/v2/a/b/tags/list"),
            Some(Route::Tags { name: s("a/b") })
        );
        assert_eq!(
            route("/v2/a/manifests/latest"),
            Some(Route::Manifest {
                name: s("a"),
                reference: s("latest")
            })
        );
        assert_eq!(
            route("/v2/a/blobs/b/blobs/sha256:x"),
            Some(Route::Blob {
                name: s("a/blobs/b"),
                digest: s("sha256:x")
            })
        );
        assert_eq!(
            route("/v2/x/y/blobs/uploads/"),
            Some(Route::UploadStart { name: s("x/y") })
        );
        assert_eq!(
            route("/v2/x/y/blobs/uploads"),
            Some(Route::UploadStart { name: s("x/y") })
        );
        assert_eq!(
            route("/v2/x/blobs/uploads/abc"),
            Some(Route::Upload {
                name: s("x"),
                id: s("abc")
            })
        );
        assert_eq!(
            route("/v2/x/referrers/sha256%3Aab"),
            Some(Route::Referrers {
                name: s("x"),
                digest: s("sha256:ab")
            })
        );
        assert_eq!(route("/v3/x"), None);
        assert_eq!(route("/v2/x"), None);
        assert_eq!(route("/v2/manifests/x"), None);
    }

    #[test]
    fn queries() {
        let q = query_pairs(Some("n=2&last=a%2Fb&tag=x&tag=y&flag&sp=a+b"));
        assert_eq!(query_get(&q, "n"), Some("2"));
        assert_eq!(query_get(&q, "last"), Some("a/b"));
        assert_eq!(query_get(&q, "flag"), Some(""));
        assert_eq!(query_get(&q, "sp"), Some("a b"));
        assert_eq!(q.iter().filter(|(k, _)| k == "tag").count(), 2);
        assert_eq!(percent_decode("%zz"), None);
    }
}
