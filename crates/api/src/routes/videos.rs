//! A creator's changes to their video: `/api/v1/videos/{id}/archive` moves its media to cold
//! storage (and back; the tiering worker moves the bytes, playback URLs keep working),
//! `PUT .../visibility`, `PATCH /api/v1/videos/{id}` (title, description, tags) and
//! `DELETE /api/v1/videos/{id}` (removed). Each change is published as an event on the
//! `videos` topic (search re-reads or drops the video).

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
    publish(state, Event::VideoArchived { video_id: id, by: user.id, archived, at_ms: now })
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
    let video = own_video(&state, user, &id, "change the visibility of").await?;
    let now = state.clock().now_ms();
    state.meta().videos().set_private(video.id, wanted.private, now).await?;
    publish(
        &state,
        Event::VideoUpdated { video_id: video.id, author: video.author_id, at_ms: now },
    )
    .await?;
    Ok(ApiJson(wanted))
}

pub(crate) async fn publish(state: &AppState, event: Event) -> ApiResult<()> {
    let now = event.at_ms();
    state
        .log()
        .append(event.topic(), vec![NewRecord { timestamp_ms: now, payload: event.encode() }])
        .await?;
    Ok(())
}

/// A creator's edit of a video's texts; absent fields stay as they are.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VideoEdit {
    /// 1 to 150 characters.
    pub title: Option<String>,
    /// At most 2200 characters; line breaks allowed.
    pub description: Option<String>,
    /// At most 20 tags of letters, digits and `_` (a leading `#` is dropped); they replace
    /// the current ones.
    pub tags: Option<Vec<String>>,
}

/// Checks an edit the way upload metadata is checked and applies it to `video`'s texts.
fn edited(
    video: &quicktok_meta::Video,
    edit: VideoEdit,
) -> ApiResult<(String, String, Vec<String>)> {
    use crate::upload::metadata::{MAX_DESCRIPTION_CHARS, MAX_TITLE_CHARS, parse_tags};
    let title = match edit.title {
        Some(t) => {
            let t = t.trim().to_owned();
            if t.is_empty()
                || t.chars().count() > MAX_TITLE_CHARS
                || t.chars().any(char::is_control)
            {
                return Err(ApiError::validation(format!(
                    "title must be 1 to {MAX_TITLE_CHARS} characters without control characters"
                )));
            }
            t
        }
        None => video.title.clone(),
    };
    let description = match edit.description {
        Some(d) => {
            let d = d.trim().to_owned();
            let bad = d.chars().any(|c| c.is_control() && c != '\n' && c != '\r');
            if bad || d.chars().count() > MAX_DESCRIPTION_CHARS {
                return Err(ApiError::validation(format!(
                    "description must be at most {MAX_DESCRIPTION_CHARS} characters without control characters"
                )));
            }
            d
        }
        None => video.description.clone(),
    };
    let tags = match edit.tags {
        Some(tags) => {
            if tags.iter().any(|t| {
                t.trim().is_empty() || t.trim().contains(|c: char| c == ',' || c.is_whitespace())
            }) {
                return Err(ApiError::validation("each tag must be one non-empty word"));
            }
            parse_tags(&tags.join(",")).map_err(ApiError::validation)?
        }
        None => video.tags.clone(),
    };
    Ok((title, description, tags))
}

/// Edit a video's title, description or tags (its creator only).
#[utoipa::path(patch, path = "/videos/{id}", tag = "videos", security(("bearer" = [])),
    params(("id" = String, Path, description = "Video id")),
    request_body = VideoEdit,
    responses(
        (status = 200, description = "The video as now stored", body = crate::routes::playback::VideoView),
        (status = 403, description = "Not the creator", body = ErrorBody),
        (status = 404, description = "No such video", body = ErrorBody),
        (status = 409, description = "The video was removed", body = ErrorBody),
        (status = 422, description = "Invalid title, description or tags", body = ErrorBody),
    ))]
pub async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    ApiJson(edit): ApiJson<VideoEdit>,
) -> ApiResult<ApiJson<crate::routes::playback::VideoView>> {
    let video = own_video(&state, user, &id, "edit").await?;
    if video.status == quicktok_meta::VideoStatus::Removed {
        return Err(ApiError::conflict(ErrorCode::Conflict, "the video was removed"));
    }
    let (title, description, tags) = edited(&video, edit)?;
    let now = state.clock().now_ms();
    state.meta().videos().set_details(video.id, &title, &description, &tags, now).await?;
    publish(
        &state,
        Event::VideoUpdated { video_id: video.id, author: video.author_id, at_ms: now },
    )
    .await?;
    let stored = state
        .meta()
        .videos()
        .by_id(video.id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such video"))?;
    Ok(ApiJson(crate::routes::playback::video_view(&state, stored).await?))
}

/// Takes a video down (`removed` with `reason`) and publishes `video_removed`; removing a
/// removed video changes nothing.
pub(crate) async fn remove(
    state: &AppState,
    video: &quicktok_meta::Video,
    by: Id,
    reason: &str,
) -> ApiResult<()> {
    if video.status == quicktok_meta::VideoStatus::Removed {
        return Ok(());
    }
    let now = state.clock().now_ms();
    state
        .meta()
        .videos()
        .set_status(video.id, quicktok_meta::VideoStatus::Removed, Some(reason), now)
        .await?;
    publish(
        state,
        Event::VideoRemoved {
            video_id: video.id,
            author: video.author_id,
            by,
            reason: reason.to_owned(),
            at_ms: now,
        },
    )
    .await
}

/// Delete a video (its creator only): it becomes `removed`, "deleted by creator", and leaves
/// every list and search.
#[utoipa::path(delete, path = "/videos/{id}", tag = "videos", security(("bearer" = [])),
    params(("id" = String, Path, description = "Video id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "Not the creator", body = ErrorBody),
        (status = 404, description = "No such video", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let video = own_video(&state, user, &id, "delete").await?;
    remove(&state, &video, user.id, "deleted by creator").await?;
    Ok(StatusCode::NO_CONTENT)
}
