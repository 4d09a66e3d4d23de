//! Errors as docker's status codes and bodies: one mapping from the
//! engine's error kinds (`berth_types::ErrorKind`) to HTTP.

use berth_engine::Error as EngineError;
use berth_types::ErrorKind;
use hyper::{Response, StatusCode};

use crate::http::{Body, empty, error};

/// docker's status for an error kind.
pub(crate) fn status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Invalid | ErrorKind::LimitExceeded => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotSupported => StatusCode::NOT_IMPLEMENTED,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::NotModified => StatusCode::NOT_MODIFIED,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An engine error as docker's response (304 has no body).
pub(crate) fn engine_error(e: EngineError) -> Response<Body> {
    let status = status(e.kind());
    if status == StatusCode::NOT_MODIFIED {
        return empty(status);
    }
    error(status, e)
}

/// A request that does not parse: 400, or 501 for "not supported yet".
pub(crate) fn bad_request(msg: impl std::fmt::Display) -> Response<Body> {
    let msg = msg.to_string();
    let status = if msg.starts_with("not supported yet") {
        StatusCode::NOT_IMPLEMENTED
    } else {
        StatusCode::BAD_REQUEST
    };
    error(status, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_docker_statuses() {
        assert_eq!(
            status(ErrorKind::Internal),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(status(ErrorKind::Invalid), StatusCode::BAD_REQUEST);
        assert_eq!(status(ErrorKind::NotSupported), StatusCode::NOT_IMPLEMENTED);
        assert_eq!(status(ErrorKind::Forbidden), StatusCode::FORBIDDEN);
        let e = EngineError::Io("read x".into(), std::io::Error::other("boom"));
        assert_eq!(engine_error(e).status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            bad_request("not supported yet: x").status(),
            StatusCode::NOT_IMPLEMENTED
        );
    }
}
