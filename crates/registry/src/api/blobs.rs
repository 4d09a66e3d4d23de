//! `GET`/`HEAD`/`DELETE /v2/<name>/blobs/<digest>`, with `Range`.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use berth_types::Digest;

use super::{App, empty, set};
use crate::error::{ApiError, Error};

/// What a `Range` header asks of a `len`-byte blob.
#[derive(Debug, PartialEq, Eq)]
enum Want {
    /// No (usable) range: the whole blob.
    All,
    /// Bytes `start..=end`.
    Part(u64, u64),
    /// Nothing satisfiable.
    Unsatisfiable,
}

/// Parses one `bytes=` range (RFC 9110 §14). Other units, multiple ranges
/// and malformed values are ignored (the whole blob is sent); a range that
/// starts past the end, or ends before it starts, is unsatisfiable.
fn want(range: Option<&str>, len: u64) -> Want {
    let Some(spec) = range.and_then(|r| {
        let r = r.trim();
        r.get(..6)
            .filter(|u| u.eq_ignore_ascii_case("bytes="))
            .and_then(|_| r.get(6..))
            .map(str::trim)
    }) else {
        return Want::All;
    };
    if spec.contains(',') {
        return Want::All;
    }
    let Some((a, b)) = spec.split_once('-') else {
        return Want::All;
    };
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (a.trim(), b.trim()) {
        ("", suffix) => match num(suffix) {
            None => Want::All,
            Some(0) => Want::Unsatisfiable,
            Some(_) if len == 0 => Want::Unsatisfiable,
            Some(n) => Want::Part(len - n.min(len), len - 1),
        },
        (first, last) => {
            let Some(first) = num(first) else {
                return Want::All;
            };
            let last = if last.is_empty() {
                None
            } else {
                match num(last) {
                    Some(l) => Some(l),
                    None => return Want::All,
                }
            };
            if last.is_some_and(|l| l < first) || first >= len {
                return Want::Unsatisfiable;
            }
            Want::Part(first, last.map_or(len - 1, |l| l.min(len - 1)))
        }
    }
}

pub(crate) fn parse_digest(s: &str) -> Result<Digest, ApiError> {
    s.parse()
        .map_err(|_| ApiError::digest_invalid(format!("invalid or unsupported digest {s:?}")))
}

pub(super) async fn get(
    app: &Arc<App>,
    name: &str,
    digest: &str,
    head: bool,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let d = parse_digest(digest)?;
    let (repo, dd) = (name.to_owned(), d.clone());
    let opened = app
        .db(move |db, store| {
            if !db.blob_visible(&repo, &dd)? {
                return Ok(None);
            }
            match store.open_blob(&dd) {
                Ok(f) => {
                    let len = f
                        .metadata()
                        .map_err(|e| Error::io(format!("stat blob {dd}"), e))?
                        .len();
                    Ok(Some((f, len)))
                }
                Err(berth_image::Error::NotFound(_)) => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
        .await?;
    let Some((file, len)) = opened else {
        return Err(ApiError::blob_unknown(digest));
    };
    let range = if head {
        Want::All
    } else {
        want(
            headers.get(header::RANGE).and_then(|v| v.to_str().ok()),
            len,
        )
    };
    let (status, start, count) = match range {
        Want::All => (StatusCode::OK, 0, len),
        Want::Part(a, b) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
        Want::Unsatisfiable => {
            let mut r = empty(StatusCode::RANGE_NOT_SATISFIABLE);
            set(r.headers_mut(), "Content-Range", &format!("bytes */{len}"));
            return Ok(r);
        }
    };
    let body = if head {
        Body::empty()
    } else {
        crate::body::file_body(file, start, count)
            .await
            .map_err(|e| Error::io(format!("read blob {d}"), e))?
    };
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    set(h, "Content-Length", &count.to_string());
    set(h, "Content-Type", "application/octet-stream");
    set(h, "Docker-Content-Digest", &d.to_string());
    set(h, "Accept-Ranges", "bytes");
    set(h, "ETag", &format!("\"{d}\""));
    set(h, "Cache-Control", "max-age=31536000");
    if status == StatusCode::PARTIAL_CONTENT {
        set(
            h,
            "Content-Range",
            &format!("bytes {start}-{}/{len}", start + count - 1),
        );
    }
    Ok(r)
}

pub(super) async fn delete(app: &Arc<App>, name: &str, digest: &str) -> Result<Response, ApiError> {
    let d = parse_digest(digest)?;
    let (repo, dd) = (name.to_owned(), d.clone());
    let existed = app
        .db(move |db, store| {
            if !db.unlink_blob(&repo, &dd)? {
                return Ok(false);
            }
            if !db.digest_referenced(&dd)? {
                store.delete(&dd)?;
            }
            Ok(true)
        })
        .await?;
    if !existed {
        return Err(ApiError::blob_unknown(digest));
    }
    let mut r = empty(StatusCode::ACCEPTED);
    set(r.headers_mut(), "Docker-Content-Digest", &d.to_string());
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let w = |r: &str| want(Some(r), 2048);
        assert_eq!(w("bytes=500-1499"), Want::Part(500, 1499));
        assert_eq!(w("bytes=500-"), Want::Part(500, 2047));
        assert_eq!(w("bytes=-500"), Want::Part(1548, 2047));
        assert_eq!(w("bytes=-5000"), Want::Part(0, 2047));
        assert_eq!(w("bytes=2000-5000"), Want::Part(2000, 2047));
        assert_eq!(w("bytes=500-0"), Want::Unsatisfiable);
        assert_eq!(w("bytes=5000-10000"), Want::Unsatisfiable);
        assert_eq!(w("bytes=2048-"), Want::Unsatisfiable);
        assert_eq!(w("bytes=-0"), Want::Unsatisfiable);
        assert_eq!(w("bytes=0-1,5-6"), Want::All);
        assert_eq!(w("items=0-1"), Want::All);
        assert_eq!(w("bytes=x-1"), Want::All);
        assert_eq!(w("BYTES=0-0"), Want::Part(0, 0));
        assert_eq!(want(None, 10), Want::All);
        assert_eq!(want(Some("bytes=0-"), 0), Want::Unsatisfiable);
        assert_eq!(want(Some("bytes=-1"), 0), Want::Unsatisfiable);
    }
}
