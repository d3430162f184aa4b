//! Errors as the gate reports them: an HTTP status, a stable machine-readable code and one line
//! for people. Every HTTP error body is `{"code": ..., "message": ...}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::db::DbError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct GateError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

pub use countersign_api::ErrorBody;

impl GateError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        GateError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 413: a request, batch or output over its limit.
    pub fn too_large(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, code, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.code.to_owned(),
            message: self.message.clone(),
        }
    }
}

impl From<DbError> for GateError {
    fn from(err: DbError) -> Self {
        tracing::error!(error = %err, "database error");
        GateError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_unavailable",
            "the gate's database could not complete the request; retry later",
        )
    }
}

impl From<sqlx::Error> for GateError {
    fn from(err: sqlx::Error) -> Self {
        GateError::from(DbError::from(err))
    }
}

impl IntoResponse for GateError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = self.code, message = %self.message, "request failed");
        }
        (self.status, Json(self.body())).into_response()
    }
}
