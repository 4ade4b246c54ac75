//! `/api/v1/admin`: the moderators' review queue (approve or refuse videos the pipeline
//! held back, with the reviewer contact sheet) and the operators' view of pipeline jobs
//! (dead letters with their reasons). Only the usernames in `auth.admins` get in.

use axum::extract::{Path, State};
use http::StatusCode;
use quicktok_core::{ErrorCode, Event, Id};
use quicktok_log::NewRecord;
use quicktok_meta::VideoStatus;
use quicktok_pipeline::jobs::{Job, JobError, JobStatus};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, AuthUser};
use crate::routes::playback::{VideoView, video_view};
use crate::state::AppState;

/// Whether `user` is an admin.
pub(crate) async fn is_admin(state: &AppState, user: AuthUser) -> ApiResult<bool> {
    if !state.has_admins() {
        return Ok(false);
    }
    let found = state.meta().users().by_id(user.id).await?;
    Ok(found.is_some_and(|u| state.is_admin_name(&u.username)))
}

pub(crate) async fn require_admin(state: &AppState, user: AuthUser) -> ApiResult<()> {
    if is_admin(state, user).await? {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, "admins only"))
    }
}

/// Why an admin takes a video down.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Removal {
    /// Shown with the removed video; 1 to 500 characters.
    pub reason: String,
}

/// Take a video down (admins only): it becomes `removed` with the reason and leaves every
/// list and search.
#[utoipa::path(post, path = "/admin/videos/{id}/remove", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "Video id")),
    request_body = Removal,
    responses(
        (status = 200, description = "The video as now stored", body = VideoView),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such video", body = ErrorBody),
        (status = 422, description = "Missing or overlong reason", body = ErrorBody),
    ))]
pub async fn remove_video(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    ApiJson(removal): ApiJson<Removal>,
) -> ApiResult<ApiJson<VideoView>> {
    require_admin(&state, user).await?;
    let reason = removal.reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(ApiError::validation("reason must be 1 to 500 characters"));
    }
    let id: Id = id.parse().map_err(|_| ApiError::not_found("no such video"))?;
    let video = state
        .meta()
        .videos()
        .by_id(id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such video"))?;
    crate::routes::videos::remove(&state, &video, user.id, reason).await?;
    tracing::info!(video = %id, moderator = %user.id, "video removed");
    let stored = state
        .meta()
        .videos()
        .by_id(id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such video"))?;
    Ok(ApiJson(video_view(&state, stored).await?))
}

fn job_error(e: JobError) -> ApiError {
    match e {
        JobError::NotFound(_) => ApiError::not_found("no such job"),
        JobError::NotInReview(_) => {
            ApiError::conflict(ErrorCode::Conflict, "the video is not waiting for review")
        }
        JobError::NotDead(_) => {
            ApiError::conflict(ErrorCode::Conflict, "only dead-lettered jobs can be retried")
        }
        other => {
            tracing::error!(error = %other, "pipeline job store");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Internal,
                "the job store failed",
            )
        }
    }
}

/// A pipeline job as operators see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobView {
    pub video_id: String,
    pub owner_id: String,
    pub stage: String,
    pub status: String,
    pub attempts: u32,
    pub reason: Option<String>,
    pub priority: i64,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl From<&Job> for JobView {
    fn from(j: &Job) -> JobView {
        JobView {
            video_id: j.id.to_string(),
            owner_id: j.owner.to_string(),
            stage: j.stage.as_str().to_owned(),
            status: serde_json::to_value(j.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            attempts: j.attempts,
            reason: j.reason.clone(),
            priority: j.priority,
            created_at_ms: j.created_at_ms,
            updated_at_ms: j.updated_at_ms,
        }
    }
}

/// A video waiting for a moderator.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReviewItem {
    pub video: VideoView,
    pub job: JobView,
    /// A signed URL of a grid of frames from the whole clip.
    pub contact_sheet: Option<String>,
}

/// The review queue, oldest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReviewPage {
    pub items: Vec<ReviewItem>,
    pub next_cursor: Option<String>,
}

/// Jobs in one status.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobPage {
    pub items: Vec<JobView>,
    pub next_cursor: Option<String>,
}

/// How many to list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LimitQuery {
    /// 1..=200, default 50.
    pub limit: Option<u32>,
}

/// Which jobs to list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct JobsQuery {
    /// `queued`, `running`, `review`, `done`, `rejected` or `dead` (default `dead`).
    pub status: Option<String>,
    /// 1..=200, default 50.
    pub limit: Option<u32>,
}

fn limit_of(limit: Option<u32>) -> ApiResult<usize> {
    match limit.unwrap_or(50) {
        n @ 1..=200 => Ok(n as usize),
        _ => Err(ApiError::bad_request("limit must be between 1 and 200")),
    }
}

/// A moderator's decision.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewDecision {
    /// `true` continues processing (the video gets published), `false` refuses it.
    pub approve: bool,
    /// Shown to the uploader when refused.
    #[serde(default)]
    pub reason: Option<String>,
}

/// What the decision did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReviewOutcome {
    pub video_id: String,
    /// The video's status now: `processing` after approval, `rejected` after refusal.
    pub status: String,
    pub job: JobView,
}

/// The videos waiting for review, oldest first.
#[utoipa::path(get, path = "/admin/review", tag = "admin", security(("bearer" = [])),
    params(LimitQuery),
    responses(
        (status = 200, description = "The queue", body = ReviewPage),
        (status = 403, description = "Not an admin", body = ErrorBody),
    ))]
pub async fn review_queue(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(q): ApiQuery<LimitQuery>,
) -> ApiResult<ApiJson<ReviewPage>> {
    require_admin(&state, user).await?;
    let jobs = state.jobs().list(JobStatus::Review, limit_of(q.limit)?).await.map_err(job_error)?;
    let mut items = Vec::with_capacity(jobs.len());
    for job in &jobs {
        let Some(video) = state.meta().videos().by_id(job.id).await? else { continue };
        let sheet = state
            .meta()
            .video_blobs()
            .for_video(job.id)
            .await?
            .into_iter()
            .rfind(|b| b.kind == "contact_sheet")
            .map(|b| state.media_path(b.blob_id));
        items.push(ReviewItem {
            video: video_view(&state, video).await?,
            job: JobView::from(job),
            contact_sheet: sheet,
        });
    }
    Ok(ApiJson(ReviewPage { items, next_cursor: None }))
}

/// Approve or refuse a video held for review.
#[utoipa::path(post, path = "/admin/review/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "Video id")),
    request_body = ReviewDecision,
    responses(
        (status = 200, description = "Decided", body = ReviewOutcome),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such video", body = ErrorBody),
        (status = 409, description = "The video is not waiting for review", body = ErrorBody),
    ))]
pub async fn decide(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    ApiJson(decision): ApiJson<ReviewDecision>,
) -> ApiResult<ApiJson<ReviewOutcome>> {
    require_admin(&state, user).await?;
    let id: Id = id.parse().map_err(|_| ApiError::not_found("no such video"))?;
    let reason = decision.reason.unwrap_or_default();
    if reason.chars().count() > 500 {
        return Err(ApiError::bad_request("reason is longer than 500 characters"));
    }
    let reason = if decision.approve || !reason.trim().is_empty() {
        reason
    } else {
        "refused by a moderator".to_owned()
    };
    let now = state.clock().now_ms();
    let videos = state.meta().videos();
    let before = videos.by_id(id).await?;
    // The video says `processing` before the job can be claimed: set after it, a worker
    // could publish in between and be overwritten.
    let flip = decision.approve && before.as_ref().is_some_and(|v| v.status == VideoStatus::Review);
    if flip {
        videos.set_status(id, VideoStatus::Processing, None, now).await?;
    }
    let job = match state.jobs().resolve_review(id, decision.approve, &reason, now).await {
        Ok(job) => job,
        Err(e) => {
            if let (true, Some(v)) = (flip, &before) {
                restore_status(&state, v, now).await;
            }
            return Err(job_error(e));
        }
    };
    let video = if decision.approve {
        videos.by_id(id).await?.ok_or_else(|| ApiError::not_found("no such video"))?
    } else {
        let video = videos.set_status(id, VideoStatus::Rejected, Some(&reason), now).await?;
        // A fixed re-upload must not be called a duplicate of a refused video.
        state.meta().fingerprints().delete(id).await?;
        let event = Event::VideoRejected {
            video_id: id,
            author: video.author_id,
            reason: reason.clone(),
            at_ms: now,
        };
        state
            .log()
            .append(event.topic(), vec![NewRecord { timestamp_ms: now, payload: event.encode() }])
            .await?;
        video
    };
    tracing::info!(video = %id, approve = decision.approve, moderator = %user.id, "review decided");
    Ok(ApiJson(ReviewOutcome {
        video_id: id.to_string(),
        status: video.status.as_str().to_owned(),
        job: JobView::from(&job),
    }))
}

/// Pipeline jobs in one status (dead letters by default), oldest first.
#[utoipa::path(get, path = "/admin/jobs", tag = "admin", security(("bearer" = [])),
    params(JobsQuery),
    responses(
        (status = 200, description = "Jobs", body = JobPage),
        (status = 400, description = "Unknown status", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    ))]
pub async fn jobs(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(q): ApiQuery<JobsQuery>,
) -> ApiResult<ApiJson<JobPage>> {
    require_admin(&state, user).await?;
    let status: JobStatus =
        serde_json::from_value(serde_json::Value::String(q.status.unwrap_or("dead".into())))
            .map_err(|_| {
                ApiError::bad_request(
                    "status must be queued, running, review, done, rejected or dead",
                )
            })?;
    let jobs = state.jobs().list(status, limit_of(q.limit)?).await.map_err(job_error)?;
    Ok(ApiJson(JobPage { items: jobs.iter().map(JobView::from).collect(), next_cursor: None }))
}

/// Retry a dead-lettered job: it runs its failed stage again with fresh attempts, and the
/// video is `processing` again.
#[utoipa::path(post, path = "/admin/jobs/{id}/retry", tag = "admin", security(("bearer" = [])),
    params(("id" = String, Path, description = "Video id (one job per video)")),
    responses(
        (status = 200, description = "Queued again", body = JobView),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "The job is not dead-lettered", body = ErrorBody),
    ))]
pub async fn retry(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<ApiJson<JobView>> {
    require_admin(&state, user).await?;
    let id: Id = id.parse().map_err(|_| ApiError::not_found("no such job"))?;
    let now = state.clock().now_ms();
    // The failure had refused the video, unless it came after publication (the ladder):
    // then the video is still published and stays so. The video says `processing` before
    // the job can be claimed again: set after it, a worker could publish in between and be
    // overwritten.
    let videos = state.meta().videos();
    let before = videos.by_id(id).await?;
    let flip = before.as_ref().is_some_and(|v| v.status == VideoStatus::Rejected);
    if flip {
        videos.set_status(id, VideoStatus::Processing, None, now).await?;
    }
    let job = match state.jobs().retry_dead(id, now).await {
        Ok(job) => job,
        Err(e) => {
            if let (true, Some(v)) = (flip, &before) {
                restore_status(&state, v, now).await;
            }
            return Err(job_error(e));
        }
    };
    tracing::info!(video = %id, operator = %user.id, stage = job.stage.as_str(), "dead letter retried");
    Ok(ApiJson(JobView::from(&job)))
}

/// Puts back a video's status after the job change it was set for was refused.
async fn restore_status(state: &AppState, video: &quicktok_meta::Video, now: i64) {
    let videos = state.meta().videos();
    if let Err(e) = videos.set_status(video.id, video.status, video.reason.as_deref(), now).await {
        tracing::warn!(video = %video.id, error = %e, "video status not restored");
    }
}
