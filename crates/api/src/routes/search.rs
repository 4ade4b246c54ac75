//! `GET /api/v1/search` (videos or creators, ranked, with highlighted snippets, paged by an
//! opaque cursor) and `GET /api/v1/search/suggest` (prefix completion for the search box),
//! over the node's search index.

use std::sync::Arc;

use axum::extract::State;
use quicktok_core::Id;
use quicktok_search::{SearchIndex, VideoQuery};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};
use crate::routes::playback::{VideoView, listable_in_order, video_views};
use crate::state::AppState;

/// A search request.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    /// Free text, `#tag` (exact hashtag) and `@name` (that creator's videos), mixed freely.
    pub q: String,
    /// `videos` (default) or `users`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1..=50 (default 20).
    pub limit: Option<u32>,
    /// Videos at least this long.
    pub min_duration_ms: Option<u64>,
    /// Videos at most this long.
    pub max_duration_ms: Option<u64>,
    /// Videos published at or after this time (Unix ms).
    pub since: Option<i64>,
    /// Videos published at or before this time (Unix ms).
    pub until: Option<i64>,
}

/// Matched fragments, HTML: matches in `<b>`, the rest escaped. Absent when the field did
/// not match.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HighlightView {
    pub title: Option<String>,
    pub description: Option<String>,
}

/// A matching video: the video as `GET /api/v1/videos` shows it, and its highlights.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VideoHitView {
    #[serde(flatten)]
    pub video: VideoView,
    pub highlight: HighlightView,
}

/// A matching creator.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserHitView {
    pub id: String,
    pub username: String,
}

/// One result: a video (`type=videos`) or a creator (`type=users`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum SearchItem {
    Video(Box<VideoHitView>),
    User(UserHitView),
}

/// A page of results.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SearchPage {
    pub items: Vec<SearchItem>,
    pub next_cursor: Option<String>,
}

fn index_of(state: &AppState) -> ApiResult<Arc<SearchIndex>> {
    state.search().cloned().ok_or_else(|| ApiError::unavailable("this node has no search index"))
}

/// Runs blocking index work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, quicktok_search::SearchError> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(f).await.map_err(ApiError::internal)?.map_err(ApiError::from)
}

/// Search videos or creators.
#[utoipa::path(get, path = "/search", tag = "search", params(SearchParams),
    responses(
        (status = 200, description = "Best first", body = SearchPage),
        (status = 400, description = "Empty query, bad cursor, type or limit", body = ErrorBody),
        (status = 503, description = "No search index on this node", body = ErrorBody),
    ))]
pub async fn search(
    State(state): State<AppState>,
    ApiQuery(p): ApiQuery<SearchParams>,
) -> ApiResult<ApiJson<SearchPage>> {
    let limit = p.limit.unwrap_or(20) as usize;
    if !(1..=quicktok_search::MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 50"));
    }
    let index = index_of(&state)?;
    match p.kind.as_deref().unwrap_or("videos") {
        "videos" => {
            let query = VideoQuery {
                q: p.q,
                cursor: p.cursor,
                limit,
                min_duration_ms: p.min_duration_ms,
                max_duration_ms: p.max_duration_ms,
                since_ms: p.since,
                until_ms: p.until,
            };
            let now = state.clock().now_ms();
            let page = blocking(move || index.search_videos(&query, now)).await?;
            // The index may lag a removal by a commit interval: the store has the last word.
            let ids: Vec<Id> = page.items.iter().map(|hit| Id(hit.id)).collect();
            let videos = listable_in_order(&state, &ids).await?;
            let mut highlights: std::collections::HashMap<u64, _> =
                page.items.into_iter().map(|hit| (hit.id, hit.highlight)).collect();
            let highlights: Vec<_> =
                videos.iter().map(|v| highlights.remove(&v.id.0).unwrap_or_default()).collect();
            let items = video_views(&state, videos)
                .await?
                .into_iter()
                .zip(highlights)
                .map(|(video, h)| {
                    SearchItem::Video(Box::new(VideoHitView {
                        video,
                        highlight: HighlightView { title: h.title, description: h.description },
                    }))
                })
                .collect();
            Ok(ApiJson(SearchPage { items, next_cursor: page.next_cursor }))
        }
        "users" => {
            let (q, cursor) = (p.q, p.cursor);
            let page =
                blocking(move || index.search_creators(&q, cursor.as_deref(), limit)).await?;
            let items = page
                .items
                .into_iter()
                .map(|h| {
                    SearchItem::User(UserHitView { id: Id(h.id).to_string(), username: h.username })
                })
                .collect();
            Ok(ApiJson(SearchPage { items, next_cursor: page.next_cursor }))
        }
        _ => Err(ApiError::bad_request("type must be videos or users")),
    }
}

/// A suggestion request.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SuggestParams {
    /// What the user typed so far.
    pub q: String,
    /// At most this many, 1..=20 (default 10).
    pub limit: Option<u32>,
}

/// One completion.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SuggestionView {
    pub text: String,
    /// `title`, `tag` or `creator`.
    pub kind: String,
}

/// Completions, most popular first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Suggestions {
    pub items: Vec<SuggestionView>,
}

/// Complete a prefix from popular titles, tags and creator names.
#[utoipa::path(get, path = "/search/suggest", tag = "search", params(SuggestParams),
    responses(
        (status = 200, description = "Most popular first", body = Suggestions),
        (status = 400, description = "Empty prefix or bad limit", body = ErrorBody),
        (status = 503, description = "No search index on this node", body = ErrorBody),
    ))]
pub async fn suggest(
    State(state): State<AppState>,
    ApiQuery(p): ApiQuery<SuggestParams>,
) -> ApiResult<ApiJson<Suggestions>> {
    let limit = p.limit.unwrap_or(10) as usize;
    if !(1..=20).contains(&limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 20"));
    }
    if p.q.trim().is_empty() || p.q.chars().count() > 100 {
        return Err(ApiError::bad_request("q must be 1 to 100 characters"));
    }
    let index = index_of(&state)?;
    let found = index.suggest(&p.q, limit)?;
    let items = found
        .into_iter()
        .map(|s| SuggestionView {
            text: s.text,
            kind: serde_json::to_value(s.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
        })
        .collect();
    Ok(ApiJson(Suggestions { items }))
}
