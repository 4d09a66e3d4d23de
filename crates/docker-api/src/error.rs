//! Engine and image-store errors as docker's status codes and bodies.

use berth_engine::Error as EngineError;
use hyper::{Response, StatusCode};

use crate::http::{Body, empty, error};

pub(crate) fn engine_status(e: &EngineError) -> StatusCode {
    match e {
        EngineError::NotFound(_) => StatusCode::NOT_FOUND,
        EngineError::Conflict(_) => StatusCode::CONFLICT,
        EngineError::NotModified(_) => StatusCode::NOT_MODIFIED,
        EngineError::Invalid(_) | EngineError::Start(_) => StatusCode::BAD_REQUEST,
        EngineError::Image(i) => image_status(i),
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

pub(crate) fn image_status(e: &berth_image::Error) -> StatusCode {
    match e {
        berth_image::Error::NotFound(_) => StatusCode::NOT_FOUND,
        berth_image::Error::Conflict(_) => StatusCode::CONFLICT,
        berth_image::Error::Invalid(_) | berth_image::Error::Limit(_) => StatusCode::BAD_REQUEST,
        berth_image::Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

pub(crate) fn engine_error(e: EngineError) -> Response<Body> {
    let status = engine_status(&e);
    if status == StatusCode::NOT_MODIFIED {
        return empty(status);
    }
    error(status, e)
}
