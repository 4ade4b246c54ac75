//! Comments: `POST/GET /api/v1/videos/{id}/comments`, `GET /api/v1/comments/{id}/replies`
//! and `DELETE /api/v1/comments/{id}`.
//!
//! One level of replies: a reply to a reply is listed under the top-level comment and
//! remembers which comment it answers. Text is trimmed, 1 to [`MAX_COMMENT_CHARS`]
//! characters, and must pass the sensitive-word lists of `pipeline.compliance`: a comment
//! matching any word (block or review list) is refused with 422 `sensitive_content`. Videos
//! have a human review queue; comments have none yet, so what would be held for a person is
//! refused instead, and nothing is stored. A comment is deleted by its author or by the
//! video's creator (with its replies when it is a top-level one).

use axum::extract::{Path, State};
use http::StatusCode;
use quicktok_core::{ErrorCode, Event, Id};
use quicktok_meta::{Comment, NewComment};
use quicktok_pipeline::Field;
use quicktok_social::{CounterKey, Metric};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, AuthUser, MaybeAuthUser};
use crate::routes::interactions::{interactable_video, publish, refuse_if_blocked};
use crate::routes::playback::{AuthorView, ListQuery, page_of, visible_video};
use crate::state::AppState;

/// The longest comment accepted, in characters (after trimming).
pub const MAX_COMMENT_CHARS: usize = 500;

/// A new comment.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCommentRequest {
    /// 1 to 500 characters after trimming.
    pub text: String,
    /// The comment this one answers (a top-level comment or a reply) on the same video.
    pub reply_to: Option<String>,
}

/// A comment.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CommentView {
    pub id: String,
    pub video_id: String,
    pub author: AuthorView,
    pub text: String,
    /// The top-level comment a reply is listed under; `null` for a top-level comment.
    pub parent_id: Option<String>,
    /// The comment a reply answers (its parent or another reply).
    pub reply_to: Option<String>,
    /// Replies under a top-level comment.
    pub reply_count: i64,
    pub created_at_ms: i64,
}

impl From<Comment> for CommentView {
    fn from(c: Comment) -> CommentView {
        CommentView {
            id: c.id.to_string(),
            video_id: c.video_id.to_string(),
            author: AuthorView { id: c.author_id.to_string(), username: c.author_username },
            text: c.text,
            parent_id: c.parent_id.map(|p| p.to_string()),
            reply_to: c.reply_to_id.map(|r| r.to_string()),
            reply_count: c.reply_count,
            created_at_ms: c.created_at_ms,
        }
    }
}

/// A page of comments.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CommentPage {
    pub items: Vec<CommentView>,
    pub next_cursor: Option<String>,
}

fn no_such_comment() -> ApiError {
    ApiError::not_found("no such comment")
}

async fn existing_comment(state: &AppState, id: &str) -> ApiResult<Comment> {
    let id: Id = id.parse().map_err(|_| no_such_comment())?;
    state.meta().comments().by_id(id).await?.ok_or_else(no_such_comment)
}

/// The trimmed text, or why it is refused.
fn checked_text(state: &AppState, text: &str) -> ApiResult<String> {
    let text = text.trim();
    let chars = text.chars().count();
    if chars == 0 || chars > MAX_COMMENT_CHARS {
        return Err(ApiError::validation(format!(
            "text must be 1 to {MAX_COMMENT_CHARS} characters"
        )));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ApiError::validation("text must not contain control characters"));
    }
    if !state.comment_filter().find_matches(Field::Description, text).is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::SensitiveContent,
            "the comment contains words that are not allowed",
        ));
    }
    Ok(text.to_owned())
}

fn comment_page(comments: Vec<Comment>, limit: u32) -> CommentPage {
    let next_cursor = (comments.len() == limit as usize)
        .then(|| comments.last().map(|c| c.id.to_string()))
        .flatten();
    CommentPage { items: comments.into_iter().map(CommentView::from).collect(), next_cursor }
}

/// Comment on a published video, or reply to a comment.
#[utoipa::path(post, path = "/videos/{id}/comments", tag = "social", security(("bearer" = [])),
    params(("id" = String, Path, description = "Video id")),
    request_body = NewCommentRequest,
    responses(
        (status = 201, description = "Stored", body = CommentView),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "The creator or the comment's author blocked you, or you them (`blocked`)", body = ErrorBody),
        (status = 404, description = "No such published video visible to you, or no such comment on it", body = ErrorBody),
        (status = 422, description = "Empty or too long (`validation_failed`), or sensitive words (`sensitive_content`)", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<NewCommentRequest>,
) -> ApiResult<(StatusCode, ApiJson<CommentView>)> {
    let text = checked_text(&state, &request.text)?;
    let video = interactable_video(&state, &id, user).await?;
    refuse_if_blocked(&state, user.id, video.author_id).await?;
    let answered = match request.reply_to.as_deref() {
        None => None,
        Some(reply_to) => {
            let target = existing_comment(&state, reply_to).await?;
            if target.video_id != video.id {
                return Err(no_such_comment());
            }
            refuse_if_blocked(&state, user.id, target.author_id).await?;
            Some(target)
        }
    };
    let now = state.clock().now_ms();
    let comment = state
        .meta()
        .comments()
        .create(NewComment {
            id: state.next_id(),
            video_id: video.id,
            author_id: user.id,
            // A reply to a reply goes under the same top-level comment.
            parent_id: answered.as_ref().map(|c| c.parent_id.unwrap_or(c.id)),
            reply_to_id: answered.as_ref().map(|c| c.id),
            text,
            created_at_ms: now,
        })
        .await
        .map_err(|e| match e {
            // The comment answered went away meanwhile.
            quicktok_meta::MetaError::NotFound => no_such_comment(),
            other => other.into(),
        })?;
    state.counters().add(CounterKey::video(video.id, Metric::Comments), 1);
    let event = Event::CommentPosted {
        comment_id: comment.id,
        video_id: video.id,
        video_author: video.author_id,
        author: user.id,
        parent_id: comment.parent_id,
        reply_to: comment.reply_to_id,
        reply_to_author: answered.map(|c| c.author_id),
        at_ms: now,
    };
    publish(&state, event).await;
    Ok((StatusCode::CREATED, ApiJson(comment.into())))
}

/// A video's top-level comments, newest first, with their reply counts. Comments by users
/// you blocked are left out.
#[utoipa::path(get, path = "/videos/{id}/comments", tag = "social",
    params(("id" = String, Path, description = "Video id"), ListQuery),
    responses(
        (status = 200, description = "Newest first", body = CommentPage),
        (status = 400, description = "Bad cursor or limit", body = ErrorBody),
        (status = 404, description = "No such video visible to you", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    MaybeAuthUser(viewer): MaybeAuthUser,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<ApiJson<CommentPage>> {
    let (before, limit) = page_of(&q)?;
    let video = visible_video(&state, &id, viewer).await?;
    let viewer = viewer.map(|v| v.id);
    let comments = state.meta().comments().top_level(video.id, viewer, before, limit).await?;
    Ok(ApiJson(comment_page(comments, limit)))
}

/// The replies under a top-level comment, oldest first (the cursor pages forward). Replies by
/// users you blocked are left out.
#[utoipa::path(get, path = "/comments/{id}/replies", tag = "social",
    params(("id" = String, Path, description = "Comment id"), ListQuery),
    responses(
        (status = 200, description = "Oldest first", body = CommentPage),
        (status = 400, description = "Bad cursor or limit", body = ErrorBody),
        (status = 404, description = "No such comment visible to you", body = ErrorBody),
    ))]
pub async fn replies(
    State(state): State<AppState>,
    MaybeAuthUser(viewer): MaybeAuthUser,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<ApiJson<CommentPage>> {
    let (after, limit) = page_of(&q)?;
    let comment = existing_comment(&state, &id).await?;
    // The comment is only as visible as its video.
    visible_video(&state, &comment.video_id.to_string(), viewer)
        .await
        .map_err(|_| no_such_comment())?;
    let viewer = viewer.map(|v| v.id);
    let replies = state.meta().comments().replies(comment.id, viewer, after, limit).await?;
    Ok(ApiJson(comment_page(replies, limit)))
}

/// Delete a comment (with its replies when it is a top-level one): its author or the
/// video's creator may.
#[utoipa::path(delete, path = "/comments/{id}", tag = "social", security(("bearer" = [])),
    params(("id" = String, Path, description = "Comment id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Neither its author nor the video's creator", body = ErrorBody),
        (status = 404, description = "No such comment", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let comment = existing_comment(&state, &id).await?;
    let video_author = state.meta().videos().by_id(comment.video_id).await?.map(|v| v.author_id);
    if comment.author_id != user.id && video_author != Some(user.id) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            "only the comment's author or the video's creator can delete it",
        ));
    }
    let removed = state.meta().comments().delete(comment.id).await?;
    if removed == 0 {
        return Err(no_such_comment());
    }
    let removed = i64::try_from(removed).unwrap_or(i64::MAX);
    state.counters().add(CounterKey::video(comment.video_id, Metric::Comments), -removed);
    Ok(StatusCode::NO_CONTENT)
}
