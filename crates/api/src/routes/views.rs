//! `POST /api/v1/videos/{id}/views`: a client reports how long it watched a video. Whether
//! the view counts (watched long enough, not a repeat within the dedup window) is decided
//! here, before the event log, so the rankers only ever see qualified views.

use std::net::IpAddr;

use axum::extract::{Path, State};
use http::StatusCode;
use http::request::Parts;
use quicktok_core::{Event, Id};
use quicktok_meta::VideoStatus;
use quicktok_rank::{QualifiedView, VIEWS_TOPIC, Verdict};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, MaybeAuthUser};
use crate::ratelimit::client_ip;
use crate::routes::trending::normalize_tag;
use crate::state::AppState;

/// Longest watch time accepted in one report (a day): larger values are client bugs.
const MAX_WATCHED_MS: u64 = 86_400_000;

/// A view report.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ViewReport {
    /// Milliseconds of the clip the viewer watched.
    pub watched_ms: u64,
}

/// Whether the view counted.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ViewAccepted {
    pub counted: bool,
    /// Why not: `too_short` or `duplicate`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

/// Who is viewing: the user id when signed in, otherwise a hash of the client address in a
/// separate number space (top bit set), so anonymous repeats dedup per address.
fn viewer_key(user: Option<Id>, ip: Option<IpAddr>) -> u64 {
    match user {
        Some(id) => id.0 & !(1 << 63),
        None => {
            let text = ip.map(|i| i.to_string()).unwrap_or_default();
            let digest = Sha256::digest(text.as_bytes());
            let mut first = [0u8; 8];
            first.copy_from_slice(&digest[..8]);
            u64::from_be_bytes(first) | (1 << 63)
        }
    }
}

/// Report a view of a published video. Qualified views reach the trending lists within a
/// second.
#[utoipa::path(post, path = "/videos/{id}/views", tag = "trending", request_body = ViewReport,
    params(("id" = String, Path, description = "Video id")),
    responses(
        (status = 202, description = "Recorded (or not counted, with the reason)", body = ViewAccepted),
        (status = 404, description = "No such published video", body = ErrorBody),
        (status = 422, description = "Bad report", body = ErrorBody),
    ))]
pub async fn report_view(
    State(state): State<AppState>,
    Path(id): Path<String>,
    MaybeAuthUser(user): MaybeAuthUser,
    parts: Parts,
    ApiJson(report): ApiJson<ViewReport>,
) -> ApiResult<(StatusCode, ApiJson<ViewAccepted>)> {
    let id: Id = id.parse().map_err(|_| ApiError::not_found("no such video"))?;
    if report.watched_ms > MAX_WATCHED_MS {
        return Err(ApiError::validation("watched_ms is larger than a day"));
    }
    let video = state
        .meta()
        .videos()
        .by_id(id)
        .await?
        // Private videos and stories stay out of trending (their ids would show in public
        // lists).
        .filter(|v| {
            v.status == VideoStatus::Published
                && !v.private
                && v.kind == quicktok_meta::VideoKind::Video
        })
        .ok_or_else(|| ApiError::not_found("no such video"))?;
    let ip = client_ip(&parts.headers, &parts.extensions, state.api_config().trust_forwarded_for);
    let viewer = viewer_key(user.map(|u| u.id), ip);
    let clip_ms = video.duration_ms.and_then(|d| u64::try_from(d).ok());
    let verdict = state.view_qualifier().check(viewer, id, report.watched_ms, clip_ms);
    let reason = match verdict {
        Verdict::Qualified => None,
        Verdict::TooShort => Some("too_short"),
        Verdict::Duplicate => Some("duplicate"),
    };
    if reason.is_none() {
        let tags: Vec<String> = video.tags.iter().filter_map(|t| normalize_tag(t)).collect();
        let view = QualifiedView::new(id, tags, state.clock().now_ms());
        let record = view.to_record().map_err(ApiError::internal)?;
        state.log().append(VIEWS_TOPIC, vec![record]).await?;
    }
    // Every signed-in report, counted or not, is what the recommender learns from (a short
    // watch is a skip).
    if let Some(user) = user {
        let event = Event::VideoWatched {
            video_id: id,
            user_id: user.id,
            watched_ms: report.watched_ms,
            duration_ms: video.duration_ms,
            at_ms: state.clock().now_ms(),
        };
        crate::routes::interactions::publish(&state, event).await;
    }
    Ok((StatusCode::ACCEPTED, ApiJson(ViewAccepted { counted: reason.is_none(), reason })))
}
