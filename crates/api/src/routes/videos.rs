//! `/api/v1/videos/{id}/archive`: a creator moves a video's media to cold storage (and
//! back). The request is recorded and published as an event; the tiering worker moves the
//! bytes, and playback URLs keep working throughout.

use axum::extract::{Path, State};
use http::StatusCode;
use quicktok_core::{ErrorCode, Event, Id};
use quicktok_log::NewRecord;
use serde::Serialize;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, AuthUser};
use crate::state::AppState;

/// The archive state of a video.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ArchiveState {
    pub archived: bool,
}

/// The video `id` if `user` created it: 404 if there is none, 403 for anyone else.
async fn own_video(
    state: &AppState,
    user: AuthUser,
    id: &str,
    action: &str,
) -> ApiResult<quicktok_meta::Video> {
    let id: Id = id.parse().map_err(|_| ApiError::not_found("no such video"))?;
    let video = state
        .meta()
        .videos()
        .by_id(id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such video"))?;
    if video.author_id != user.id {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            format!("only the video's creator can {action} it"),
        ));
    }
    Ok(video)
}

async fn set_archived(
    state: &AppState,
    user: AuthUser,
    id: &str,
    archived: bool,
) -> ApiResult<ApiJson<ArchiveState>> {
    let id = own_video(state, user, id, "archive").await?.id;
    let now = state.clock().now_ms();
    state.meta().videos().set_archived(id, archived, now).await?;
    let event = Event::VideoArchived { video_id: id, by: user.id, archived, at_ms: now };
    state
        .log()
        .append(event.topic(), vec![NewRecord { timestamp_ms: now, payload: event.encode() }])
        .await?;
    Ok(ApiJson(ArchiveState { archived }))
}

/// Archive a video: its media moves to cold storage; it stays playable.
#[utoipa::path(post, path = "/videos/{id}/archive", tag = "videos", security(("bearer" = [])),
    params(("id" = String, Path, description = "Video id")),
    responses(
        (status = 200, description = "Archived", body = ArchiveState),
        (status = 403, description = "Not the creator", body = ErrorBody),
        (status = 404, description = "No such video", body = ErrorBody),
    ))]
pub async fn archive(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<ApiJson<ArchiveState>> {
    set_archived(&state, user, &id, true).await
}

/// Unarchive a video: its media returns to warm storage (and to hot if it gets played).
#[utoipa::path(delete, path = "/videos/{id}/archive", tag = "videos", security(("bearer" = [])),
    params(("id" = String, Path, description = "Video id")),
    responses(
        (status = 200, description = "Unarchived", body = ArchiveState),
        (status = 403, description = "Not the creator", body = ErrorBody),
        (status = 404, description = "No such video", body = ErrorBody),
    ))]
pub async fn unarchive(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<ApiJson<ArchiveState>> {
    set_archived(&state, user, &id, false).await
}

/// Who may see a video.
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Visibility {
    /// `true`: only the creator can see and play it, and no public list shows it.
    pub private: bool,
}

/// Make a video private or public again.
#[utoipa::path(put, path = "/videos/{id}/visibility", tag = "videos", security(("bearer" = [])),
    params(("id" = String, Path, description = "Video id")),
    request_body = Visibility,
    responses(
        (status = 200, description = "Changed", body = Visibility),
        (status = 403, description = "Not the creator", body = ErrorBody),
        (status = 404, description = "No such video", body = ErrorBody),
    ))]
pub async fn set_visibility(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    ApiJson(wanted): ApiJson<Visibility>,
) -> ApiResult<ApiJson<Visibility>> {
    let id = own_video(&state, user, &id, "change the visibility of").await?.id;
    state.meta().videos().set_private(id, wanted.private, state.clock().now_ms()).await?;
    Ok(ApiJson(wanted))
}
