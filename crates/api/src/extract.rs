//! Request extractors that answer with the JSON error shape: JSON bodies, query strings and
//! the authenticated user.

use axum::extract::{FromRequest, FromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use quicktok_core::{ErrorCode, Id};

use crate::error::ApiError;
use crate::state::AppState;

/// A JSON body; malformed or mistyped bodies become 400/415/422 with the JSON error shape.
#[derive(Debug, Clone, Copy, Default, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

impl<T: serde::Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// A query string; bad values become 422 with the JSON error shape.
#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// The user behind a valid `Authorization: Bearer` access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthUser {
    pub id: Id,
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // The rate-limit middleware may already have verified the token.
        let user = match parts.extensions.get::<AuthUser>() {
            Some(user) => *user,
            None => {
                let token = bearer_token(parts).ok_or_else(|| {
                    ApiError::unauthorized(
                        ErrorCode::Unauthorized,
                        "missing Authorization: Bearer token",
                    )
                })?;
                let claims = state.auth().verify_access_token(token)?;
                let user = AuthUser { id: claims.user_id };
                parts.extensions.insert(user);
                user
            }
        };
        // Served to a signed-in user: they are active (the feed pushes to active users).
        if parts.extensions.get::<ActivityNoted>().is_none() {
            parts.extensions.insert(ActivityNoted);
            state.note_activity(user.id);
        }
        Ok(user)
    }
}

/// Marks a request whose user's activity was already noted.
#[derive(Debug, Clone, Copy)]
struct ActivityNoted;

/// The signed-in user if the request carries a token, `None` for anonymous requests; a
/// token that is present but invalid is still refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaybeAuthUser(pub Option<AuthUser>);

impl FromRequestParts<AppState> for MaybeAuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if parts.headers.contains_key(http::header::AUTHORIZATION) {
            AuthUser::from_request_parts(parts, state).await.map(|u| MaybeAuthUser(Some(u)))
        } else {
            Ok(MaybeAuthUser(None))
        }
    }
}

/// The bearer token of a request, if it carries one.
pub fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim()).filter(|t| !t.is_empty())
}
