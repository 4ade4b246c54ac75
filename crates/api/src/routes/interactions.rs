//! Likes and shares: `POST/DELETE /api/v1/videos/{id}/like` and `POST
//! /api/v1/videos/{id}/share`, plus the rules every interaction with a video shares (which
//! videos take interactions, blocks) and the publication of social events.
//!
//! A like is one row per user and video: liking twice, or twice at once, stores one row,
//! and the like counter moves only when a row was really inserted or deleted.

use axum::body::Bytes;
use axum::extract::{Path, State};
use http::StatusCode;
use quicktok_core::{ErrorCode, Event, Id};
use quicktok_log::NewRecord;
use quicktok_meta::{NewShare, Video, VideoStatus};
use quicktok_social::{CounterKey, Metric};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, AuthUser};
use crate::state::AppState;

/// The video `id` if `user` may interact with it (like, comment, share): published, and
/// public or their own, and not an expired story (refused for its author too). Anything
/// else is 404, as for reading it.
pub(crate) async fn interactable_video(
    state: &AppState,
    id: &str,
    user: AuthUser,
) -> ApiResult<Video> {
    let not_found = || ApiError::not_found("no such video");
    let id: Id = id.parse().map_err(|_| not_found())?;
    let video = state.meta().videos().by_id(id).await?.ok_or_else(not_found)?;
    if video.status != VideoStatus::Published
        || (video.private && video.author_id != user.id)
        || video.expired_at(state.clock().now_ms())
    {
        return Err(not_found());
    }
    Ok(video)
}

/// 403 `blocked` when either of the two users blocked the other.
pub(crate) async fn refuse_if_blocked(state: &AppState, a: Id, b: Id) -> ApiResult<()> {
    if a != b && state.meta().social().blocked_between(a, b).await? {
        return Err(blocked());
    }
    Ok(())
}

pub(crate) fn blocked() -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, ErrorCode::Blocked, "one of you has blocked the other")
}

/// Appends a social event for notifications and feeds. The action it reports is already
/// stored, so a failed append is logged rather than failing the request (a retry would
/// find nothing left to do and publish nothing either).
pub(crate) async fn publish(state: &AppState, event: Event) {
    let record = NewRecord { timestamp_ms: event.at_ms(), payload: event.encode() };
    if let Err(e) = state.log().append(event.topic(), vec![record]).await {
        tracing::error!(error = %e, ?event, "could not publish a social event");
    }
}

/// Whether the user likes the video now, and its like count.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LikeState {
    pub liked: bool,
    pub likes: i64,
}

async fn set_like(state: &AppState, user: AuthUser, id: &str, like: bool) -> ApiResult<LikeState> {
    let video = interactable_video(state, id, user).await?;
    let social = state.meta().social();
    let now = state.clock().now_ms();
    let changed = if like {
        refuse_if_blocked(state, user.id, video.author_id).await?;
        social.like(user.id, video.id, now).await?
    } else {
        social.unlike(user.id, video.id).await?
    };
    let key = CounterKey::video(video.id, Metric::Likes);
    if changed {
        state.counters().add(key, if like { 1 } else { -1 });
        let event = Event::VideoLiked {
            video_id: video.id,
            author: video.author_id,
            user_id: user.id,
            liked: like,
            at_ms: now,
        };
        publish(state, event).await;
    }
    Ok(LikeState { liked: like, likes: state.counters().get(key).await? })
}

/// Like a video (idempotent: liking again changes nothing).
#[utoipa::path(post, path = "/videos/{id}/like", tag = "social", security(("bearer" = [])),
    params(("id" = String, Path, description = "Video id")),
    responses(
        (status = 200, description = "Liked", body = LikeState),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "The creator blocked you, or you them (`blocked`)", body = ErrorBody),
        (status = 404, description = "No such published video visible to you", body = ErrorBody),
    ))]
pub async fn like(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<ApiJson<LikeState>> {
    Ok(ApiJson(set_like(&state, user, &id, true).await?))
}

/// Take a like back (idempotent).
#[utoipa::path(delete, path = "/videos/{id}/like", tag = "social", security(("bearer" = [])),
    params(("id" = String, Path, description = "Video id")),
    responses(
        (status = 200, description = "Not liked", body = LikeState),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such published video visible to you", body = ErrorBody),
    ))]
pub async fn unlike(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<ApiJson<LikeState>> {
    Ok(ApiJson(set_like(&state, user, &id, false).await?))
}

/// A share; the body may be empty.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShareRequest {
    /// Where to: 1 to 32 of `a-z 0-9 _ - .` (`wechat`, `link`, `weibo`...).
    pub channel: Option<String>,
}

/// The video's share count after this share.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ShareState {
    pub shares: i64,
}

fn valid_channel(channel: &str) -> bool {
    (1..=32).contains(&channel.len())
        && channel
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.".contains(&b))
}

/// Record a share of a video (every share counts, repeats included).
#[utoipa::path(post, path = "/videos/{id}/share", tag = "social", security(("bearer" = [])),
    params(("id" = String, Path, description = "Video id")),
    request_body(content = ShareRequest, description = "Optional; an empty body is fine"),
    responses(
        (status = 200, description = "Recorded", body = ShareState),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such published video visible to you", body = ErrorBody),
        (status = 422, description = "Bad channel", body = ErrorBody),
    ))]
pub async fn share(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<ApiJson<ShareState>> {
    let request: ShareRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ShareRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::validation(e.to_string()))?
    };
    if request.channel.as_deref().is_some_and(|c| !valid_channel(c)) {
        return Err(ApiError::validation("channel must be 1 to 32 of a-z, 0-9, _, - and ."));
    }
    let video = interactable_video(&state, &id, user).await?;
    let now = state.clock().now_ms();
    state
        .meta()
        .social()
        .share(NewShare {
            id: state.next_id(),
            video_id: video.id,
            user_id: user.id,
            channel: request.channel.clone(),
            created_at_ms: now,
        })
        .await?;
    let key = CounterKey::video(video.id, Metric::Shares);
    state.counters().add(key, 1);
    let event = Event::VideoShared {
        video_id: video.id,
        author: video.author_id,
        user_id: user.id,
        channel: request.channel,
        at_ms: now,
    };
    publish(&state, event).await;
    Ok(ApiJson(ShareState { shares: state.counters().get(key).await? }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels() {
        for good in ["wechat", "link", "x.com", "a_b-c", "0"] {
            assert!(valid_channel(good), "{good}");
        }
        for bad in ["", "WeChat", "we chat", "微信", &"a".repeat(33)] {
            assert!(!valid_channel(bad), "{bad}");
        }
    }
}
