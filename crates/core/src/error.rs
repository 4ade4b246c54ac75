//! Error codes shared across the platform (the `error` field of the JSON error shape) and the
//! core crate's own error type.

use serde::Serialize;

/// Machine-readable error codes. Their `snake_case` spelling is part of the API contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    InvalidJson,
    UnsupportedMediaType,
    ValidationFailed,
    Unauthorized,
    InvalidCredentials,
    InvalidToken,
    TokenExpired,
    TokenReused,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    UsernameTaken,
    Gone,
    PayloadTooLarge,
    RangeNotSatisfiable,
    RateLimited,
    Internal,
    Unavailable,
    Timeout,
    /// One of the two users blocked the other: no follow, like or comment between them.
    Blocked,
    /// Text (a comment) contains words from the configured sensitive-word lists.
    SensitiveContent,
}

impl ErrorCode {
    /// The code as it appears in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::ValidationFailed => "validation_failed",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::InvalidCredentials => "invalid_credentials",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::TokenReused => "token_reused",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Conflict => "conflict",
            ErrorCode::UsernameTaken => "username_taken",
            ErrorCode::Gone => "gone",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::RangeNotSatisfiable => "range_not_satisfiable",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Internal => "internal",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Blocked => "blocked",
            ErrorCode::SensitiveContent => "sensitive_content",
        }
    }
}

/// Errors of the core crate.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CoreError {
    #[error("invalid id {0:?}: expected a decimal 64-bit integer")]
    InvalidId(String),
    #[error("node id {0} is out of range (0..=1023)")]
    InvalidNode(u16),
    #[error("event could not be decoded: {0}")]
    EventDecode(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_str_matches_serde() {
        for code in [ErrorCode::BadRequest, ErrorCode::UsernameTaken, ErrorCode::RateLimited] {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }
}
