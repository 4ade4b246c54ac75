//! Trending: `GET /api/v1/trending`, the design document's `GET /views/top`, and per-hashtag
//! lists. Answers come from the ranker's precomputed top-1000 lists, so a query copies at most
//! `k` entries and never touches storage.

use axum::extract::{Path, State};
use quicktok_core::{ErrorCode, Id};
use quicktok_rank::{Trending, Window};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};
use crate::state::AppState;

/// Query of a trending list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TrendingQuery {
    /// `1h`, `1d`, `30d` or `all`.
    #[param(value_type = String, example = "1d")]
    pub window: Option<String>,
    /// How many videos, 1..=1000 (default 100).
    pub k: Option<u32>,
}

/// Query of a hashtag's list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TagQuery {
    /// How many videos, 1..=1000 (default 100).
    pub k: Option<u32>,
}

/// One ranked video.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RankedVideo {
    pub video_id: Id,
    /// Qualified views inside the window.
    pub views: u64,
}

/// A trending list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TrendingResponse {
    pub window: String,
    /// The event time (Unix ms) the counts are exact at: every qualified view up to this
    /// moment is counted. `null` before the first view.
    pub as_of: Option<i64>,
    /// One past the last event-log offset applied.
    pub log_offset: u64,
    /// False while the ranker is still replaying the log after a restart.
    pub caught_up: bool,
    /// The hashtag, for tag lists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Highest first; equal counts by smaller video id.
    pub videos: Vec<RankedVideo>,
}

fn k_of(k: Option<u32>) -> ApiResult<usize> {
    match k.unwrap_or(100) {
        k @ 1..=1000 => Ok(k as usize),
        _ => Err(ApiError::validation("k must be between 1 and 1000")),
    }
}

fn window_of(w: Option<&str>) -> ApiResult<Window> {
    w.unwrap_or("1d")
        .parse()
        .map_err(|_| ApiError::validation("window must be one of 1h, 1d, 30d, all"))
}

fn handle(state: &AppState) -> ApiResult<&quicktok_rank::RankerHandle> {
    state.trending().ok_or_else(|| {
        ApiError::new(
            http::StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            "this node does not run the ranker role",
        )
    })
}

fn respond(t: Trending, tag: Option<String>) -> TrendingResponse {
    TrendingResponse {
        window: t.window.as_str().to_owned(),
        as_of: t.as_of.watermark_ms,
        log_offset: t.as_of.next_offset,
        caught_up: t.caught_up,
        tag,
        videos: t
            .videos
            .into_iter()
            .map(|(video_id, views)| RankedVideo { video_id, views })
            .collect(),
    }
}

/// The most viewed videos in a sliding window, exact.
#[utoipa::path(get, path = "/trending", tag = "trending", params(TrendingQuery),
    responses(
        (status = 200, description = "The list", body = TrendingResponse),
        (status = 422, description = "Bad window or k", body = ErrorBody),
        (status = 503, description = "No ranker on this node", body = ErrorBody),
    ))]
pub async fn trending(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<TrendingQuery>,
) -> ApiResult<ApiJson<TrendingResponse>> {
    let window = window_of(q.window.as_deref())?;
    let k = k_of(q.k)?;
    Ok(ApiJson(respond(handle(&state)?.top(window, k), None)))
}

/// The design document's path for the same lists (`/views/top?window=&k=`).
pub async fn views_top(
    state: State<AppState>,
    query: ApiQuery<TrendingQuery>,
) -> ApiResult<ApiJson<TrendingResponse>> {
    trending(state, query).await
}

/// The most viewed videos carrying a hashtag over the last day.
#[utoipa::path(get, path = "/trending/tags/{tag}", tag = "trending", params(("tag" = String, Path, description = "Hashtag without '#'"), TagQuery),
    responses(
        (status = 200, description = "The list", body = TrendingResponse),
        (status = 422, description = "Bad k", body = ErrorBody),
    ))]
pub async fn trending_tag(
    State(state): State<AppState>,
    Path(tag): Path<String>,
    ApiQuery(q): ApiQuery<TagQuery>,
) -> ApiResult<ApiJson<TrendingResponse>> {
    let k = k_of(q.k)?;
    let tag = normalize_tag(&tag).ok_or_else(|| ApiError::validation("invalid hashtag"))?;
    let t = handle(&state)?.top_tag(&tag, k);
    Ok(ApiJson(respond(t, Some(tag))))
}

/// Hashtags are compared in the one normal form every crate uses (no `#`, case and width
/// folded).
pub fn normalize_tag(raw: &str) -> Option<String> {
    quicktok_core::text::normalize_tag(raw, quicktok_core::text::MAX_TAG_CHARS)
}
