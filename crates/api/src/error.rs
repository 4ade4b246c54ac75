//! The one JSON error shape of the API (`{"error": "snake_case_code", "message": "..."}`) and
//! the mapping from every crate's errors to it.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue, StatusCode};
use quicktok_core::ErrorCode;
use serde::Serialize;

/// The body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Machine-readable code, stable across versions.
    #[schema(example = "validation_failed")]
    pub error: &'static str,
    /// Human-readable explanation.
    #[schema(example = "username must be 3 to 32 characters")]
    pub message: String,
}

/// An error answered to a client.
#[derive(Debug, thiserror::Error)]
#[error("{status} {code:?}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    /// Extra headers (`WWW-Authenticate`, `Retry-After`); a list because it is usually empty
    /// and keeps the error small on the `Result` path.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), headers: Vec::new() }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, message)
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::ValidationFailed, message)
    }

    pub fn unauthorized(code: ErrorCode, message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::UNAUTHORIZED, code, message);
        e.headers.push((http::header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        e
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, message)
    }

    pub fn conflict(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// A server-side failure: the detail goes to the log, the client gets a generic text so
    /// internals (SQL, paths) never leak.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, "internal server error")
    }

    pub fn unavailable(detail: impl std::fmt::Display) -> Self {
        tracing::warn!(error = %detail, "dependency unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            "a dependency is unavailable, try again shortly",
        )
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: self.code.as_str(), message: self.message };
        let mut response = (self.status, Json(body)).into_response();
        for (name, value) in self.headers {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
                "expected Content-Type: application/json",
            ),
            JsonRejection::JsonSyntaxError(e) => {
                ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidJson, e.body_text())
            }
            JsonRejection::JsonDataError(e) => ApiError::validation(e.body_text()),
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::PayloadTooLarge,
                "request body is too large",
            ),
            other => ApiError::new(other.status(), ErrorCode::BadRequest, other.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::validation(rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, rejection.body_text())
    }
}

impl From<quicktok_meta::MetaError> for ApiError {
    fn from(e: quicktok_meta::MetaError) -> Self {
        use quicktok_meta::MetaError;
        match e {
            MetaError::NotFound => ApiError::not_found("not found"),
            MetaError::Conflict { what } => {
                ApiError::conflict(ErrorCode::Conflict, format!("{what} already exists"))
            }
            MetaError::Unavailable(_) => ApiError::unavailable(e),
            other => ApiError::internal(other),
        }
    }
}

impl From<quicktok_social::SocialError> for ApiError {
    fn from(e: quicktok_social::SocialError) -> Self {
        match &e {
            quicktok_social::SocialError::Store { unavailable: true, .. } => {
                ApiError::unavailable(e)
            }
            _ => ApiError::internal(e),
        }
    }
}

impl From<quicktok_log::LogError> for ApiError {
    fn from(e: quicktok_log::LogError) -> Self {
        ApiError::internal(e)
    }
}

/// Gives error responses that left a layer without a body (405 from routing, 413 from the
/// body limit, 408 from the timeout) the JSON error shape, so clients parse one format.
pub async fn json_error_bodies(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if is_json {
        return response;
    }
    let (code, message) = match status {
        StatusCode::METHOD_NOT_ALLOWED => (ErrorCode::MethodNotAllowed, "method not allowed"),
        StatusCode::PAYLOAD_TOO_LARGE => (ErrorCode::PayloadTooLarge, "request body is too large"),
        StatusCode::REQUEST_TIMEOUT => (ErrorCode::Timeout, "request timed out"),
        StatusCode::NOT_FOUND => (ErrorCode::NotFound, "no such resource"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            (ErrorCode::UnsupportedMediaType, "unsupported media type")
        }
        s if s.is_server_error() => (ErrorCode::Internal, "internal server error"),
        _ => (ErrorCode::BadRequest, "bad request"),
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(http::header::CONTENT_LENGTH);
    let mut fixed = ApiError::new(status, code, message).into_response();
    // Keep headers such as Allow, Retry-After and request ids.
    for (name, value) in parts.headers.iter() {
        if name != http::header::CONTENT_TYPE {
            fixed.headers_mut().insert(name.clone(), value.clone());
        }
    }
    fixed
}

/// Result type of handlers.
pub type ApiResult<T> = Result<T, ApiError>;

impl From<quicktok_search::SearchError> for ApiError {
    fn from(e: quicktok_search::SearchError) -> Self {
        match e {
            quicktok_search::SearchError::BadQuery(m) => ApiError::bad_request(m),
            other => ApiError::internal(other),
        }
    }
}
