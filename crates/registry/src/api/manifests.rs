//! `GET`/`HEAD`/`PUT`/`DELETE /v2/<name>/manifests/<reference>` and
//! `GET /v2/<name>/referrers/<digest>`.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_image::store::Hasher;
use berth_types::Digest;
use berth_types::image::media;

use super::blobs::parse_digest;
use super::{App, append, empty, query_get, query_pairs, set};
use crate::body::{read_limited, too_large};
use crate::db::ManifestRow;
use crate::error::{ApiError, Code};
use crate::manifest::inspect;
use crate::names::{BadReference, Reference, valid_tag};

/// Parses the `<reference>` of a request that reads or deletes.
fn lookup_reference(s: &str) -> Result<Reference, ApiError> {
    Reference::parse(s).map_err(|e| match e {
        BadReference::Digest => {
            ApiError::digest_invalid(format!("invalid or unsupported digest {s:?}"))
        }
        BadReference::Tag => ApiError::manifest_unknown(s),
    })
}

pub(super) async fn get(
    app: &Arc<App>,
    name: &str,
    reference: &str,
    head: bool,
) -> Result<Response, ApiError> {
    let r = lookup_reference(reference)?;
    let (repo, refstr) = (name.to_owned(), reference.to_owned());
    let (row, bytes) = app
        .db(move |db, store| {
            if db.repo_id(&repo)?.is_none() {
                return Err(ApiError::name_unknown(&repo));
            }
            let digest = match r {
                Reference::Digest(d) => d,
                Reference::Tag(t) => db
                    .tag(&repo, &t)?
                    .ok_or_else(|| ApiError::manifest_unknown(&refstr))?,
            };
            let row = db
                .manifest(&repo, &digest)?
                .ok_or_else(|| ApiError::manifest_unknown(&refstr))?;
            let bytes = if head {
                Vec::new()
            } else {
                match store.read(&digest, row.size as usize) {
                    Ok(b) => b,
                    Err(berth_image::Error::NotFound(_)) => {
                        tracing::error!("manifest {digest} of {repo} is missing from the store");
                        return Err(ApiError::manifest_unknown(&refstr));
                    }
                    Err(e) => return Err(e.into()),
                }
            };
            Ok((row, bytes))
        })
        .await?;
    let mut resp = (StatusCode::OK, bytes).into_response();
    let h = resp.headers_mut();
    set(h, "Content-Type", &row.media_type);
    set(h, "Content-Length", &row.size.to_string());
    set(h, "Docker-Content-Digest", &row.digest.to_string());
    set(h, "ETag", &format!("\"{}\"", row.digest));
    Ok(resp)
}

pub(super) async fn put(
    app: &Arc<App>,
    name: String,
    reference: &str,
    req: Request,
) -> Result<Response, ApiError> {
    let reference = Reference::parse(reference).map_err(|e| match e {
        BadReference::Digest => {
            ApiError::digest_invalid(format!("invalid or unsupported digest {reference:?}"))
        }
        BadReference::Tag => {
            ApiError::bad_request(Code::ManifestInvalid, format!("invalid tag {reference:?}"))
        }
    })?;
    let q = query_pairs(req.uri().query());
    let tag_params: Vec<String> = q
        .iter()
        .filter(|(k, _)| k == "tag")
        .map(|(_, v)| v.clone())
        .collect();
    if let Some(bad) = tag_params.iter().find(|t| !valid_tag(t)) {
        return Err(ApiError::bad_request(
            Code::ManifestInvalid,
            format!("invalid tag {bad:?}"),
        ));
    }
    let max = app.max_manifest_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large(max));
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = read_limited(req.into_body(), max).await?;
    let info = inspect(&bytes, content_type.as_deref())
        .map_err(|m| ApiError::bad_request(Code::ManifestInvalid, m))?;
    let mut tags = tag_params.clone();
    if let Reference::Tag(t) = &reference {
        tags.insert(0, t.clone());
    }
    let repo = name.clone();
    let subject = info.subject.clone();
    let digest = app
        .db(move |db, store| {
            let algorithm = match &reference {
                Reference::Digest(d) => d.algorithm(),
                Reference::Tag(_) => berth_types::Algorithm::Sha256,
            };
            let mut h = Hasher::new(algorithm);
            h.update(&bytes);
            let digest = h.finish();
            if let Reference::Digest(want) = &reference
                && *want != digest
            {
                return Err(ApiError::digest_invalid(
                    "provided digest did not match uploaded content",
                )
                .detail(serde_json::json!({
                    "expected": want.to_string(),
                    "computed": digest.to_string()
                })));
            }
            let mut missing: Vec<&Digest> = Vec::new();
            for b in &info.blobs {
                if !db.blob_linked(&repo, b)? && !missing.contains(&b) {
                    missing.push(b);
                }
            }
            for m in &info.manifests {
                if !db.has_manifest(&repo, m)?
                    && !db.blob_linked(&repo, m)?
                    && !missing.contains(&m)
                {
                    missing.push(m);
                }
            }
            if let Some((first, rest)) = missing.split_first() {
                let unknown = |d: &Digest| format!("manifest references unknown blob {d}");
                let mut e = ApiError::bad_request(Code::ManifestBlobUnknown, unknown(first))
                    .detail(serde_json::json!({ "digest": first.to_string() }));
                for d in rest {
                    e = e
                        .and(Code::ManifestBlobUnknown, unknown(d))
                        .detail(serde_json::json!({ "digest": d.to_string() }));
                }
                return Err(e);
            }
            if !store.has(&digest) {
                store.put(&bytes, Some(&digest))?;
            }
            let row = ManifestRow {
                digest: digest.clone(),
                media_type: info.media_type,
                size: bytes.len() as u64,
                artifact_type: info.artifact_type,
                subject: info.subject,
                annotations: info.annotations,
            };
            db.put_manifest(&repo, &row, &tags)?;
            Ok(digest)
        })
        .await?;
    let mut r = empty(StatusCode::CREATED);
    let h = r.headers_mut();
    set(h, "Location", &format!("/v2/{name}/manifests/{digest}"));
    set(h, "Docker-Content-Digest", &digest.to_string());
    if let Some(s) = subject {
        set(h, "OCI-Subject", &s.to_string());
    }
    for t in &tag_params {
        append(h, "OCI-Tag", t);
    }
    Ok(r)
}

pub(super) async fn delete(
    app: &Arc<App>,
    name: &str,
    reference: &str,
) -> Result<Response, ApiError> {
    let r = lookup_reference(reference)?;
    let (repo, refstr) = (name.to_owned(), reference.to_owned());
    app.db(move |db, store| {
        let existed = match &r {
            Reference::Tag(t) => db.delete_tag(&repo, t)?,
            Reference::Digest(d) => {
                let existed = db.delete_manifest(&repo, d)?;
                if existed && !db.digest_referenced(d)? {
                    store.delete(d)?;
                }
                existed
            }
        };
        if existed {
            Ok(())
        } else {
            Err(ApiError::manifest_unknown(&refstr))
        }
    })
    .await?;
    Ok(empty(StatusCode::ACCEPTED))
}

pub(super) async fn referrers(
    app: &Arc<App>,
    name: String,
    digest: &str,
    req: Request,
) -> Result<Response, ApiError> {
    let subject = parse_digest(digest)?;
    let q = query_pairs(req.uri().query());
    let filter = query_get(&q, "artifactType")
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let f = filter.clone();
    let rows = app
        .db(move |db, _| Ok(db.referrers(&name, &subject, f.as_deref())?))
        .await?;
    let manifests: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|row| {
            let mut d = serde_json::json!({
                "mediaType": row.media_type,
                "digest": row.digest.to_string(),
                "size": row.size,
            });
            if let Some(at) = row.artifact_type {
                d["artifactType"] = at.into();
            }
            if let Some(a) = row
                .annotations
                .and_then(|a| serde_json::from_str::<serde_json::Value>(&a).ok())
            {
                d["annotations"] = a;
            }
            d
        })
        .collect();
    let body = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": manifests,
    });
    let bytes = serde_json::to_vec(&body).map_err(|e| ApiError::internal(e.to_string()))?;
    let mut r = (StatusCode::OK, bytes).into_response();
    let h = r.headers_mut();
    set(h, "Content-Type", media::OCI_INDEX);
    if filter.is_some() {
        set(h, "OCI-Filters-Applied", "artifactType");
    }
    Ok(r)
}
