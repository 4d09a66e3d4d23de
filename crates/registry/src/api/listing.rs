//! `GET /v2/<name>/tags/list` and `GET /v2/_catalog`, paginated with `n`
//! and `last` and an RFC 5988 `Link: <…>; rel="next"` when more remain.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::{App, query_get, query_pairs, set};
use crate::error::{ApiError, Code};

/// The `n` parameter.
fn parse_n(v: Option<&str>) -> Result<Option<usize>, ApiError> {
    match v {
        None | Some("") => Ok(None),
        Some(s) => s.parse::<usize>().map(Some).map_err(|_| {
            ApiError::bad_request(
                Code::Unsupported,
                format!("n must be a non-negative integer, not {s:?}"),
            )
        }),
    }
}

/// A JSON 200 with an optional `Link` to the next page.
fn page(body: serde_json::Value, next: Option<String>) -> Response {
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let mut r = (StatusCode::OK, bytes).into_response();
    let h = r.headers_mut();
    set(h, "Content-Type", "application/json");
    if let Some(next) = next {
        set(h, "Link", &format!("<{next}>; rel=\"next\""));
    }
    r
}

/// Trims a `limit + 1` query result to `limit`, saying whether more remain.
fn split_page(mut rows: Vec<String>, limit: usize) -> (Vec<String>, bool) {
    let more = rows.len() > limit;
    rows.truncate(limit);
    (rows, more)
}

/// Tags, without `n` all of them; `n` is capped at `max_catalog_n` (with a
/// `Link` to the rest).
pub(super) async fn tags(app: &Arc<App>, name: String, req: Request) -> Result<Response, ApiError> {
    let q = query_pairs(req.uri().query());
    let n = parse_n(query_get(&q, "n"))?;
    let last = query_get(&q, "last").map(str::to_owned);
    let limit = n.map_or(usize::MAX, |n| n.min(app.max_catalog_n));
    let (repo, l) = (name.clone(), last.clone());
    let rows = app
        .db(move |db, _| Ok(db.tags(&repo, l.as_deref(), limit.saturating_add(1))?))
        .await?
        .ok_or_else(|| ApiError::name_unknown(&name))?;
    let (tags, more) = split_page(rows, limit);
    let next = (more && limit > 0)
        .then(|| {
            tags.last()
                .map(|t| format!("/v2/{name}/tags/list?n={limit}&last={t}"))
        })
        .flatten();
    Ok(page(
        serde_json::json!({ "name": name, "tags": tags }),
        next,
    ))
}

/// Repositories; `n` defaults to, and is capped at, `max_catalog_n`.
pub(super) async fn catalog(app: &Arc<App>, req: Request) -> Result<Response, ApiError> {
    let q = query_pairs(req.uri().query());
    let n = parse_n(query_get(&q, "n"))?;
    let last = query_get(&q, "last").map(str::to_owned);
    let limit = n.unwrap_or(app.max_catalog_n).min(app.max_catalog_n);
    let rows = app
        .db(move |db, _| Ok(db.repositories(last.as_deref(), limit.saturating_add(1))?))
        .await?;
    let (repos, more) = split_page(rows, limit);
    let next = (more && limit > 0)
        .then(|| {
            repos
                .last()
                .map(|r| format!("/v2/_catalog?n={limit}&last={r}"))
        })
        .flatten();
    Ok(page(serde_json::json!({ "repositories": repos }), next))
}
