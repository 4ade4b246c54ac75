//! `/api/v1/auth/*`: register, login, refresh, logout.

use axum::body::Bytes;
use axum::extract::State;
use http::StatusCode;
use quicktok_core::ErrorCode;
use serde::Deserialize;

use crate::auth::Session;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, AuthUser};
use crate::state::AppState;

/// Username and password.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// 3-32 characters: letters, digits, `_`, `.`; starts with a letter; case-insensitive.
    #[schema(example = "li.wei")]
    pub username: String,
    /// 8-128 characters.
    #[schema(example = "correct horse battery staple")]
    pub password: String,
}

/// A refresh token.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// What to end on logout.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogoutRequest {
    /// End only this session; without it every session of the user ends.
    pub refresh_token: Option<String>,
}

/// Create an account.
#[utoipa::path(post, path = "/auth/register", tag = "auth", request_body = Credentials,
    responses(
        (status = 201, description = "Account created and signed in", body = Session),
        (status = 409, description = "Username taken", body = ErrorBody),
        (status = 422, description = "Username or password breaks the rules", body = ErrorBody),
        (status = 429, description = "Too many attempts", body = ErrorBody),
    ))]
pub async fn register(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Credentials>,
) -> ApiResult<(StatusCode, ApiJson<Session>)> {
    let session = state.auth().register(&body.username, body.password).await?;
    Ok((StatusCode::CREATED, ApiJson(session)))
}

/// Sign in with a password.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = Credentials,
    responses(
        (status = 200, description = "Signed in", body = Session),
        (status = 401, description = "Wrong username or password", body = ErrorBody),
        (status = 429, description = "Too many attempts", body = ErrorBody),
    ))]
pub async fn login(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Credentials>,
) -> ApiResult<ApiJson<Session>> {
    Ok(ApiJson(state.auth().login(&body.username, body.password).await?))
}

/// Trade a refresh token for a new access and refresh token. A refresh token works once;
/// presenting it again revokes every token descended from the same login.
#[utoipa::path(post, path = "/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 200, description = "New token pair", body = Session),
        (status = 401, description = "Invalid, expired or reused refresh token", body = ErrorBody),
    ))]
pub async fn refresh(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> ApiResult<ApiJson<Session>> {
    Ok(ApiJson(state.auth().refresh(&body.refresh_token).await?))
}

/// End the session of the given refresh token, or all of the user's sessions.
#[utoipa::path(post, path = "/auth/logout", tag = "auth", request_body(content = LogoutRequest, content_type = "application/json", description = "Optional"),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "Not signed in", body = ErrorBody),
    ))]
pub async fn logout(
    State(state): State<AppState>,
    user: AuthUser,
    body: Bytes,
) -> ApiResult<StatusCode> {
    // The body is optional, so it is parsed here rather than by the JSON extractor (which
    // would insist on a Content-Type even for an empty body).
    let request: LogoutRequest = if body.iter().all(u8::is_ascii_whitespace) {
        LogoutRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => ApiError::validation(e.to_string()),
            _ => ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidJson, e.to_string()),
        })?
    };
    let refresh_token = request.refresh_token;
    state.auth().logout(user.id, refresh_token.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}
