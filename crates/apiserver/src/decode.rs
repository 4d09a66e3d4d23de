//! Request bodies: JSON (with a nesting limit, so a hostile body cannot
//! exhaust the stack), YAML bodies refused clearly.

use serde_json::Value;

use crate::error::ApiError;

/// The deepest nesting accepted (kube-apiserver's decoder allows 10,000;
/// serde_json stops at 128 by default).
const MAX_DEPTH: usize = 128;

/// Parses a body as JSON.
pub fn parse_body(body: &[u8], media: &str) -> Result<Value, ApiError> {
    let text = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
    if text.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    let first = text.iter().find(|b| !b.is_ascii_whitespace()).copied();
    if !matches!(first, Some(b'{' | b'[')) {
        if media.contains("yaml") {
            return Err(ApiError::unsupported_media_type(
                "not supported yet: YAML request bodies (send JSON; kubectl and the Python client do)",
            ));
        }
        return Err(ApiError::bad_request(
            "the request body is not a JSON object",
        ));
    }
    let _ = MAX_DEPTH;
    serde_json::from_slice(text)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_bodies_are_refused_cleanly() {
        let deep = "[".repeat(100_000);
        assert_eq!(
            parse_body(deep.as_bytes(), "application/json")
                .unwrap_err()
                .code,
            400
        );
        assert_eq!(parse_body(b"", "application/json").unwrap_err().code, 400);
        assert_eq!(
            parse_body(b"a: b", "application/yaml").unwrap_err().code,
            415
        );
        assert!(parse_body("{\"a\":\"한국어\"}".as_bytes(), "application/json").is_ok());
    }
}
