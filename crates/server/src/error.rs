//! One error type for every answer that is not a success: a status and a message, as
//! `{"error": "…"}`, never internals.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// Every error answer's body.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"error": "no such finding"}))]
pub struct ErrorBody {
    /// What went wrong, for a person to read.
    pub error: String,
}

/// An error answer: a status and a message, as `{"error": "…"}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub(crate) fn unavailable() -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "the engine is not running")
    }
    pub(crate) fn internal(e: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.message,
        };
        let mut r = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"keyward\""),
            );
        }
        r
    }
}

pub(crate) fn json_rejection(e: axum::extract::rejection::JsonRejection) -> ApiError {
    ApiError::new(e.status(), e.body_text())
}
