//! Reports: `POST /api/v1/reports` (a signed-in user reports a video, a comment or a user)
//! and `GET /api/v1/admin/reports` (the moderators' list, newest first, admins only).

use axum::extract::State;
use http::StatusCode;
use quicktok_core::Id;
use quicktok_meta::{Report, ReportTarget};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, AuthUser};
use crate::routes::admin::require_admin;
use crate::routes::playback::{ListQuery, page_of, visible_video};
use crate::state::AppState;

/// The longest reason accepted, in characters (after trimming).
pub const MAX_REASON_CHARS: usize = 500;

/// A report: exactly one of `video_id`, `comment_id`, `user_id`, and a reason.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReportRequest {
    pub video_id: Option<String>,
    pub comment_id: Option<String>,
    pub user_id: Option<String>,
    /// 1 to 500 characters after trimming.
    pub reason: String,
}

/// What a report points at.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReportTargetView {
    /// `video`, `comment` or `user`.
    pub kind: String,
    pub id: String,
}

/// A stored report.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReportView {
    pub id: String,
    pub reporter_id: String,
    pub target: ReportTargetView,
    pub reason: String,
    pub created_at_ms: i64,
}

impl From<Report> for ReportView {
    fn from(r: Report) -> ReportView {
        ReportView {
            id: r.id.to_string(),
            reporter_id: r.reporter_id.to_string(),
            target: ReportTargetView {
                kind: r.target.kind().to_owned(),
                id: r.target.id().to_string(),
            },
            reason: r.reason,
            created_at_ms: r.created_at_ms,
        }
    }
}

/// Reports, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReportPage {
    pub items: Vec<ReportView>,
    pub next_cursor: Option<String>,
}

/// The one target a request names, checked to exist (and, for videos, to be visible to the
/// reporter).
async fn target_of(
    state: &AppState,
    user: AuthUser,
    request: &NewReportRequest,
) -> ApiResult<ReportTarget> {
    let named = [&request.video_id, &request.comment_id, &request.user_id];
    if named.iter().filter(|t| t.is_some()).count() != 1 {
        return Err(ApiError::validation("name exactly one of video_id, comment_id, user_id"));
    }
    let parse = |id: &str, what: &str| {
        id.parse::<Id>().map_err(|_| ApiError::not_found(format!("no such {what}")))
    };
    if let Some(video) = &request.video_id {
        let video = visible_video(state, video, Some(user)).await?;
        return Ok(ReportTarget::Video(video.id));
    }
    if let Some(comment) = &request.comment_id {
        let id = parse(comment, "comment")?;
        let found = state.meta().comments().by_id(id).await?;
        let comment = found.ok_or_else(|| ApiError::not_found("no such comment"))?;
        return Ok(ReportTarget::Comment(comment.id));
    }
    let id = parse(request.user_id.as_deref().unwrap_or_default(), "user")?;
    let found = state.meta().users().by_id(id).await?;
    let user = found.ok_or_else(|| ApiError::not_found("no such user"))?;
    Ok(ReportTarget::User(user.id))
}

/// Report a video, a comment or a user to the moderators.
#[utoipa::path(post, path = "/reports", tag = "social", security(("bearer" = [])),
    request_body = NewReportRequest,
    responses(
        (status = 201, description = "Stored for the moderators", body = ReportView),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such video, comment or user", body = ErrorBody),
        (status = 422, description = "Not exactly one target, or a bad reason", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(request): ApiJson<NewReportRequest>,
) -> ApiResult<(StatusCode, ApiJson<ReportView>)> {
    let reason = request.reason.trim();
    let chars = reason.chars().count();
    if chars == 0 || chars > MAX_REASON_CHARS {
        return Err(ApiError::validation(format!(
            "reason must be 1 to {MAX_REASON_CHARS} characters"
        )));
    }
    let target = target_of(&state, user, &request).await?;
    let report = state
        .meta()
        .social()
        .report(Report {
            id: state.next_id(),
            reporter_id: user.id,
            target,
            reason: reason.to_owned(),
            created_at_ms: state.clock().now_ms(),
        })
        .await?;
    Ok((StatusCode::CREATED, ApiJson(report.into())))
}

/// Reports, newest first (admins only).
#[utoipa::path(get, path = "/admin/reports", tag = "admin", security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "Newest first", body = ReportPage),
        (status = 400, description = "Bad cursor or limit", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<ApiJson<ReportPage>> {
    require_admin(&state, user).await?;
    let (before, limit) = page_of(&q)?;
    let reports = state.meta().social().reports(before, limit).await?;
    let next_cursor = (reports.len() == limit as usize)
        .then(|| reports.last().map(|r| r.id.to_string()))
        .flatten();
    Ok(ApiJson(ReportPage {
        items: reports.into_iter().map(ReportView::from).collect(),
        next_cursor,
    }))
}
