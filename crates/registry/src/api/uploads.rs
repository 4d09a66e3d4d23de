//! Blob uploads: `POST /v2/<name>/blobs/uploads/` (session, monolithic
//! `?digest=`, cross-repository `?mount=&from=`), and `PATCH`/`PUT`/`GET`/
//! `DELETE` on the session's location.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use berth_image::store::Hasher;
use berth_types::{Algorithm, Digest};

use super::blobs::parse_digest;
use super::{App, empty, query_get, query_pairs, set};
use crate::body::with_body_reader;
use crate::error::{ApiError, Code, Error};
use crate::names::valid_repository;
use crate::uploads::{Session, append, commit, digest_of};

fn location(name: &str, id: &str) -> String {
    format!("/v2/{name}/blobs/uploads/{id}")
}

/// `201 Created` for a blob now in `name`.
fn created(name: &str, d: &Digest) -> Response {
    let mut r = empty(StatusCode::CREATED);
    let h = r.headers_mut();
    set(h, "Location", &format!("/v2/{name}/blobs/{d}"));
    set(h, "Docker-Content-Digest", &d.to_string());
    r
}

/// A session's progress: `Location`, `Range`, `Docker-Upload-UUID`.
fn progress(status: StatusCode, name: &str, s: &Session) -> Response {
    let mut r = empty(status);
    let h = r.headers_mut();
    set(h, "Location", &location(name, &s.id));
    set(h, "Range", &s.range());
    set(h, "Docker-Upload-UUID", &s.id);
    r
}

pub(super) async fn start(
    app: &Arc<App>,
    name: String,
    req: Request,
) -> Result<Response, ApiError> {
    let q = query_pairs(req.uri().query());
    if let Some(mount) = query_get(&q, "mount") {
        let d = parse_digest(mount)?;
        let from = query_get(&q, "from")
            .filter(|f| !f.is_empty())
            .map(str::to_owned);
        if let Some(f) = &from
            && !valid_repository(f)
        {
            return Err(ApiError::name_invalid(f));
        }
        let (repo, dd) = (name.clone(), d.clone());
        let mounted = app
            .db(move |db, store| {
                let found = match &from {
                    Some(f) => db.blob_linked(f, &dd)?,
                    None => db.blob_linked_anywhere(&dd)?,
                };
                let Some(size) = store.size(&dd).filter(|_| found) else {
                    return Ok(false);
                };
                db.link_blob(&repo, &dd, size)?;
                Ok(true)
            })
            .await?;
        if mounted {
            return Ok(created(&name, &d));
        }
        // not mountable: an ordinary session instead (202), as the spec asks
    } else if let Some(digest) = query_get(&q, "digest") {
        let d = parse_digest(digest)?;
        return monolithic(app, name, d, req).await;
    }
    let algorithm = match query_get(&q, "digest-algorithm") {
        None | Some("") | Some("sha256") => Algorithm::Sha256,
        Some("sha512") => Algorithm::Sha512,
        Some(other) => {
            return Err(ApiError::digest_invalid(format!(
                "unsupported digest algorithm {other:?} (sha256 and sha512 are)"
            )));
        }
    };
    let (app2, repo) = (app.clone(), name.clone());
    let (id, path) = tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
        let (id, path) = app2
            .uploads
            .new_file()
            .map_err(|e| Error::io("create upload file", e))?;
        let db = app2.db.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = db.add_upload(&id, &repo, algorithm.as_str()) {
            let _ = std::fs::remove_file(&path);
            return Err(e.into());
        }
        Ok((id, path))
    })
    .await??;
    app.uploads.insert(id.clone(), &name, path, algorithm);
    let mut r = empty(StatusCode::ACCEPTED);
    let h = r.headers_mut();
    set(h, "Location", &location(&name, &id));
    set(h, "Range", "0-0");
    set(h, "Docker-Upload-UUID", &id);
    Ok(r)
}

/// A whole blob in the `POST`.
async fn monolithic(
    app: &Arc<App>,
    name: String,
    d: Digest,
    req: Request,
) -> Result<Response, ApiError> {
    let (app2, repo, dd) = (app.clone(), name.clone(), d.clone());
    with_body_reader(req.into_body(), move |reader| {
        let (_, path) = app2
            .uploads
            .new_file()
            .map_err(|e| Error::io("create upload file", e))?;
        let result = (|| {
            let (hasher, n) = append(&path, 0, &Hasher::new(dd.algorithm()), reader, None)?;
            let got = hasher.finish();
            if got != dd {
                return Err(digest_mismatch(&dd, &got));
            }
            commit(&app2.db, &app2.store, &path, &dd, n, &repo)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&path);
        }
        result
    })
    .await?;
    Ok(created(&name, &d))
}

fn digest_mismatch(want: &Digest, got: &Digest) -> ApiError {
    ApiError::digest_invalid("provided digest did not match uploaded content")
        .detail(serde_json::json!({ "expected": want.to_string(), "computed": got.to_string() }))
}

/// The `Content-Range` of a chunk: `<first>-<last>` (a leading `bytes`
/// and a trailing `/<total>` are tolerated).
fn content_range(headers: &HeaderMap) -> Result<Option<(u64, u64)>, ApiError> {
    let Some(v) = headers.get(header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let bad = || {
        ApiError::bad_request(
            Code::BlobUploadInvalid,
            "Content-Range must be <first byte>-<last byte>",
        )
    };
    let s = v.to_str().map_err(|_| bad())?.trim();
    let s = s
        .strip_prefix("bytes")
        .map(|r| r.trim_start_matches([' ', '=']))
        .unwrap_or(s);
    let s = s.split('/').next().unwrap_or(s);
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let a: u64 = a.trim().parse().map_err(|_| bad())?;
    let b: u64 = b.trim().parse().map_err(|_| bad())?;
    if b < a {
        return Err(bad());
    }
    Ok(Some((a, b)))
}

/// Locks session `id` of repository `name`.
async fn session(
    app: &App,
    name: &str,
    id: &str,
) -> Result<tokio::sync::OwnedMutexGuard<Session>, ApiError> {
    let shared = app.uploads.get(id).ok_or_else(ApiError::upload_unknown)?;
    let s = shared.lock_owned().await;
    if s.closed || s.repo != name {
        return Err(ApiError::upload_unknown());
    }
    Ok(s)
}

/// Closes a session for good: forgets it, removes its file and row.
async fn discard(app: &Arc<App>, s: &mut Session) {
    s.closed = true;
    app.uploads.forget(&s.id);
    let (app2, id, path) = (app.clone(), s.id.clone(), s.path.clone());
    let done = tokio::task::spawn_blocking(move || {
        let _ = std::fs::remove_file(&path);
        let db = app2.db.lock().unwrap_or_else(|e| e.into_inner());
        db.remove_upload(&id)
    })
    .await;
    if let Ok(Err(e)) = done {
        tracing::warn!("forget upload {}: {e}", s.id);
    }
}

/// Expires sessions idle longer than `ttl`.
pub(crate) async fn expire(app: &Arc<App>, ttl: std::time::Duration) {
    for shared in app.uploads.all() {
        let Ok(mut s) = shared.try_lock() else {
            continue; // in use
        };
        if !s.closed && s.touched.elapsed() > ttl {
            tracing::info!("upload {} to {} expired", s.id, s.repo);
            discard(app, &mut s).await;
        }
    }
}

/// Appends the request body to the session (checking `Content-Range`).
async fn receive(name: &str, s: &mut Session, req: Request) -> Result<(), ApiError> {
    let range = content_range(req.headers())?;
    if let Some((first, _)) = range
        && first != s.size
    {
        let mut e = ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            Code::BlobUploadInvalid,
            format!(
                "chunk starts at byte {first}, but the upload has {} bytes",
                s.size
            ),
        );
        for (k, v) in [
            (header::LOCATION, location(name, &s.id)),
            (header::RANGE, s.range()),
        ] {
            e = e.header(k, &v);
        }
        return Err(e.header(
            axum::http::HeaderName::from_static("docker-upload-uuid"),
            &s.id,
        ));
    }
    let expect = range.map(|(a, b)| b - a + 1);
    let (path, size, hasher) = (s.path.clone(), s.size, s.hasher.clone());
    let (hasher, n) = with_body_reader(req.into_body(), move |r| {
        append(&path, size, &hasher, r, expect).map_err(ApiError::from)
    })
    .await?;
    s.hasher = hasher;
    s.size += n;
    s.touched = Instant::now();
    Ok(())
}

pub(super) async fn patch(
    app: &Arc<App>,
    name: &str,
    id: &str,
    req: Request,
) -> Result<Response, ApiError> {
    let mut s = session(app, name, id).await?;
    receive(name, &mut s, req).await?;
    Ok(progress(StatusCode::ACCEPTED, name, &s))
}

pub(super) async fn put(
    app: &Arc<App>,
    name: &str,
    id: &str,
    req: Request,
) -> Result<Response, ApiError> {
    let q = query_pairs(req.uri().query());
    let mut s = session(app, name, id).await?;
    let Some(digest) = query_get(&q, "digest") else {
        return Err(ApiError::digest_invalid(
            "closing an upload needs the blob's digest as ?digest=",
        ));
    };
    let d = parse_digest(digest)?;
    receive(name, &mut s, req).await?;
    let (app2, repo, dd) = (app.clone(), name.to_owned(), d.clone());
    let (path, size, hasher, algorithm) = (s.path.clone(), s.size, s.hasher.clone(), s.algorithm);
    let verified =
        tokio::task::spawn_blocking(move || -> Result<Result<(), ApiError>, ApiError> {
            let got = digest_of(&path, hasher, algorithm, dd.algorithm())
                .map_err(|e| Error::io("hash upload", e))?;
            if got != dd {
                return Ok(Err(digest_mismatch(&dd, &got)));
            }
            commit(&app2.db, &app2.store, &path, &dd, size, &repo)?;
            Ok(Ok(()))
        })
        .await??;
    // the session is over whether the digest matched or not (the data
    // cannot become right); IO failures above leave it for a retry
    discard(app, &mut s).await;
    verified?;
    Ok(created(name, &d))
}

pub(super) async fn status(app: &Arc<App>, name: &str, id: &str) -> Result<Response, ApiError> {
    let s = session(app, name, id).await?;
    Ok(progress(StatusCode::NO_CONTENT, name, &s))
}

pub(super) async fn cancel(app: &Arc<App>, name: &str, id: &str) -> Result<Response, ApiError> {
    let mut s = session(app, name, id).await?;
    discard(app, &mut s).await;
    Ok(empty(StatusCode::NO_CONTENT))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cr(v: &str) -> Result<Option<(u64, u64)>, ApiError> {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_RANGE, v.parse().unwrap());
        content_range(&h)
    }

    #[tokio::test]
    async fn idle_sessions_expire() {
        let t = tempfile::tempdir().unwrap();
        let app = Arc::new(App {
            store: berth_image::store::ContentStore::open(&t.path().join("content")).unwrap(),
            db: Arc::new(std::sync::Mutex::new(
                crate::db::Db::open(&t.path().join("r.db")).unwrap(),
            )),
            uploads: crate::uploads::Uploads::open(&t.path().join("uploads")).unwrap(),
            auth: None,
            max_manifest_bytes: 1024,
            max_catalog_n: 10,
        });
        let (id, path) = app.uploads.new_file().unwrap();
        app.db
            .lock()
            .unwrap()
            .add_upload(&id, "r", "sha256")
            .unwrap();
        app.uploads
            .insert(id.clone(), "r", path.clone(), Algorithm::Sha256);
        expire(&app, std::time::Duration::from_secs(3600)).await;
        assert!(app.uploads.get(&id).is_some(), "fresh sessions stay");
        expire(&app, std::time::Duration::ZERO).await;
        assert!(app.uploads.get(&id).is_none());
        assert!(!path.exists());
        assert!(app.db.lock().unwrap().clear_uploads().unwrap().is_empty());
    }

    #[test]
    fn content_ranges() {
        assert_eq!(cr("0-99").unwrap(), Some((0, 99)));
        assert_eq!(cr("bytes 5-9/*").unwrap(), Some((5, 9)));
        assert_eq!(cr("bytes=5-9").unwrap(), Some((5, 9)));
        assert!(cr("9-5").is_err());
        assert!(cr("x").is_err());
        assert!(cr("-5").is_err());
        assert_eq!(content_range(&HeaderMap::new()).unwrap(), None);
    }
}
