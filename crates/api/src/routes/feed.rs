//! `GET /api/v1/feed/following`: the signed-in user's following feed (F6.5), newest first,
//! merged from their pushed inbox and the outboxes of the celebrities they follow (see
//! `crate::feed`), with an opaque cursor.

use axum::extract::State;
use quicktok_social::FeedCursor;
use serde::Deserialize;

use super::playback::{VideoPage, listable_views_in_order};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, AuthUser};
use crate::state::AppState;

/// Reads per request at most, topping up a page whose videos were removed meanwhile.
const MAX_READS: usize = 4;

/// Paging through the following feed.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct FeedQuery {
    /// The `next_cursor` of the previous page (opaque).
    pub cursor: Option<String>,
    /// Page size, 1..=`social.feed.page_size_max` (default `social.feed.page_size_default`).
    pub limit: Option<u32>,
}

/// Videos of the creators the signed-in user follows, newest published first, without
/// duplicates; removed, private and blocked authors' videos are left out. A user back after
/// `social.feed.active_days` away gets their feed rebuilt before the first page.
#[utoipa::path(get, path = "/feed/following", tag = "feed", security(("bearer" = [])),
    params(FeedQuery),
    responses(
        (status = 200, description = "Newest first", body = VideoPage),
        (status = 400, description = "Bad cursor or limit", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
    ))]
pub async fn following(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(q): ApiQuery<FeedQuery>,
) -> ApiResult<ApiJson<VideoPage>> {
    let cfg = state.feed_config();
    let limit = q.limit.unwrap_or(cfg.page_size_default);
    if limit == 0 || limit > cfg.page_size_max {
        return Err(ApiError::bad_request(format!(
            "limit must be between 1 and {}",
            cfg.page_size_max
        )));
    }
    let after = match q.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => Some(FeedCursor::decode(c).map_err(|_| ApiError::bad_request("bad cursor"))?),
    };
    let meta = state.meta();
    let now = state.clock().now_ms();
    let mut items = Vec::new();
    let mut cursor = after;
    // Checked again on the rows themselves: a video removed since the page was read (or
    // still in a cached outbox head) goes, and the page is topped up from where it ended.
    for _ in 0..MAX_READS {
        let want = limit - items.len() as u32;
        let page =
            crate::feed::read_page(meta, cfg, state.feed_cache(), now, user.id, cursor, want)
                .await?;
        let ids: Vec<_> = page.items.iter().map(|e| e.video_id).collect();
        let authors: Vec<_> = page.items.iter().map(|e| e.author_id).collect();
        items.extend(listable_views_in_order(&state, &ids, &authors).await?);
        cursor = page.next;
        if items.len() == limit as usize || cursor.is_none() {
            break;
        }
    }
    Ok(ApiJson(VideoPage { items, next_cursor: cursor.map(|c| c.encode()) }))
}
