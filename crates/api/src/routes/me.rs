//! `/api/v1/me*`: the signed-in user and their gray-release flags.

use std::collections::BTreeMap;

use axum::extract::State;
use http::HeaderMap;
use serde::Serialize;

use crate::auth::service::PublicUser;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, AuthUser};
use crate::state::AppState;

/// The signed-in user.
#[utoipa::path(get, path = "/me", tag = "me", security(("bearer" = [])),
    responses(
        (status = 200, description = "The user", body = PublicUser),
        (status = 401, description = "Not signed in", body = ErrorBody),
    ))]
pub async fn me(State(state): State<AppState>, user: AuthUser) -> ApiResult<ApiJson<PublicUser>> {
    let found = state
        .meta()
        .users()
        .by_id(user.id)
        .await?
        .ok_or_else(|| ApiError::not_found("user not found"))?;
    Ok(ApiJson(PublicUser { id: found.id, username: found.username }))
}

/// Feature flags as they apply to the signed-in user.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FlagsResponse {
    /// Every configured flag and whether it is on for this user.
    pub flags: BTreeMap<String, bool>,
    /// The region the flags were evaluated for (`X-QuickTok-Region`), if any.
    pub region: Option<String>,
}

/// Gray-release flags for the signed-in user: each flag is on for a stable percentage of users
/// (a hash bucket of the flag and user id), optionally limited to regions.
#[utoipa::path(get, path = "/me/flags", tag = "me", security(("bearer" = [])),
    params(("X-QuickTok-Region" = Option<String>, Header, description = "Client region, set by the edge")),
    responses(
        (status = 200, description = "Flag states", body = FlagsResponse),
        (status = 401, description = "Not signed in", body = ErrorBody),
    ))]
pub async fn flags(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
) -> ApiResult<ApiJson<FlagsResponse>> {
    let region = headers
        .get("x-quicktok-region")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|r| !r.is_empty() && r.len() <= 64)
        .map(str::to_owned);
    let flags = state.flags().evaluate(user.id, region.as_deref());
    Ok(ApiJson(FlagsResponse { flags, region }))
}
