//! `GET /api/v1/feed/for-you` (the personal feed; anonymous users get trending plus
//! exploration) and `GET /api/v1/videos/{id}/related` (what to autoplay next), answered by
//! this node's recommender. The handler gathers what the recommender cannot know (follows,
//! blocks, the trending list) and turns its ids into the usual video views.

use std::collections::{HashMap, HashSet};

use axum::extract::{Path, State};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::StatusCode;
use quicktok_core::{ErrorCode, Id};
use quicktok_meta::VideoStatus;
use quicktok_rank::Window;
use quicktok_recommend::{FeedRequest, RecommendError, Recommender, RelatedRequest};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, MaybeAuthUser};
use crate::routes::playback::{VideoView, listable_in_order, listable_views_in_order, video_views};
use crate::state::AppState;

/// Followed creators considered per request (the newest follows first).
const MAX_FOLLOWED: u32 = 500;
/// Trending videos handed to the recommender.
const TRENDING: usize = 1000;

/// A page of the For-You feed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ForYouPage {
    pub items: Vec<VideoView>,
    /// Opaque; pass it back for the next page (never `null`: the feed does not end).
    pub next_cursor: Option<String>,
    /// `null`, or why the answer is degraded: `realtime_stale`, `trending_fallback`,
    /// `overloaded`.
    pub degraded: Option<&'static str>,
}

/// Query of the For-You feed.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ForYouQuery {
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// What the cursor carries: the page number and the last clip's author (the next page does
/// not start with the same creator).
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Cursor {
    page: u32,
    last_author: Option<String>,
}

fn encode_cursor(c: &Cursor) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(c).unwrap_or_default())
}

fn decode_cursor(text: &str) -> ApiResult<Cursor> {
    let bad = || ApiError::bad_request("invalid cursor");
    let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?;
    serde_json::from_slice(&bytes).map_err(|_| bad())
}

fn recommender(state: &AppState) -> ApiResult<std::sync::Arc<Recommender>> {
    state.recommender().cloned().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            "this node does not serve recommendations",
        )
    })
}

/// The current trending list (empty when this node does not rank or is still replaying).
fn trending(state: &AppState) -> Vec<u64> {
    state
        .trending()
        .map(|h| h.top(Window::Day, TRENDING))
        .filter(|t| t.caught_up)
        .map(|t| t.videos.into_iter().map(|(id, _)| id.0).collect())
        .unwrap_or_default()
}

/// Records how long a stage of a For-You request took (`recommend_stage_seconds{stage}`:
/// `relations`, `rank`, `views`, `covers`), so an operator sees where the time goes.
fn stage_done(stage: &'static str, since: &mut std::time::Instant) {
    let now = std::time::Instant::now();
    metrics::histogram!("recommend_stage_seconds", "stage" => stage)
        .record(now.duration_since(*since).as_secs_f64());
    *since = now;
}

/// Follows and block partners of `user`; `None` when the store cannot answer (the feed
/// then degrades to the cached trending list instead of failing).
async fn relations(state: &AppState, user: Id) -> Option<(Vec<u64>, HashSet<u64>)> {
    let (feed, social) = (state.meta().feed(), state.meta().social());
    // Ids only, newest follow first as before (no profile rows to join and decode), and
    // both reads at once.
    let (followed, blocked) =
        tokio::join!(feed.followees(user, MAX_FOLLOWED), social.block_partners(user));
    Some((
        followed.ok()?.into_iter().map(|id| id.0).collect(),
        blocked.ok()?.into_iter().map(|id| id.0).collect(),
    ))
}

/// Video views of `ids` in that order, leaving out anything no longer public.
async fn views_in_order(state: &AppState, ids: &[u64]) -> ApiResult<Vec<VideoView>> {
    let wanted: Vec<Id> = ids.iter().map(|id| Id(*id)).collect();
    video_views(state, listable_in_order(state, &wanted).await?).await
}

/// Shows each clip under the cover the bandit picks for this viewer's segment (F7.4), out of
/// `candidates` (the stored covers of the page's videos).
async fn choose_covers(
    rec: std::sync::Arc<Recommender>,
    state: &AppState,
    user: Option<u64>,
    now: i64,
    items: &mut [VideoView],
    candidates: &HashMap<Id, Vec<Id>>,
) -> ApiResult<()> {
    let ids: Vec<Id> = items.iter().filter_map(|v| v.id.parse().ok()).collect();
    let asked: Vec<(u64, usize)> =
        ids.iter().map(|id| (id.0, candidates.get(id).map_or(0, Vec::len))).collect();
    let chosen = tokio::task::spawn_blocking(move || rec.choose_covers(user, now, &asked))
        .await
        .map_err(ApiError::internal)?;
    for ((view, id), choice) in items.iter_mut().zip(&ids).zip(chosen) {
        if let Some(blob) = choice.and_then(|c| candidates.get(id).and_then(|list| list.get(c))) {
            view.cover = Some(state.media_path(*blob));
        }
    }
    Ok(())
}

/// The For-You feed: clips picked for the viewer from trending, followed creators, their
/// long-term and last-hour interests, co-engagement and fresh uploads; never one already
/// seen or served, blocked, removed or their own, and never two of one creator in a row.
#[utoipa::path(get, path = "/feed/for-you", tag = "feed", params(ForYouQuery),
    responses(
        (status = 200, description = "A page (anonymous: trending plus exploration)", body = ForYouPage),
        (status = 400, description = "Bad cursor", body = ErrorBody),
        (status = 503, description = "This node serves no recommendations", body = ErrorBody),
    ))]
pub async fn for_you(
    State(state): State<AppState>,
    MaybeAuthUser(user): MaybeAuthUser,
    ApiQuery(q): ApiQuery<ForYouQuery>,
) -> ApiResult<ApiJson<ForYouPage>> {
    let rec = recommender(&state)?;
    let cursor = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let previous_author = match cursor.as_ref().and_then(|c| c.last_author.as_deref()) {
        Some(a) => Some(a.parse::<Id>().map_err(|_| ApiError::bad_request("invalid cursor"))?.0),
        None => None,
    };
    let now = state.clock().now_ms();
    let mut since = std::time::Instant::now();
    let (relations, healthy) = match user {
        Some(u) => match relations(&state, u.id).await {
            Some(r) => (r, true),
            None => (Default::default(), false),
        },
        None => (Default::default(), true),
    };
    stage_done("relations", &mut since);
    let req = FeedRequest {
        user: user.map(|u| u.id.0),
        now_ms: now,
        followed: relations.0,
        blocked: relations.1,
        trending: trending(&state),
        previous_author,
        candidates_healthy: healthy,
        // The consumers report themselves caught up with the log as of "now".
        log_head_ms: now,
    };
    let page = {
        let rec = rec.clone();
        tokio::task::spawn_blocking(move || rec.for_you(&req)).await.map_err(ApiError::internal)?
    };
    stage_done("rank", &mut since);
    for reason in &page.plan.reasons {
        metrics::counter!("recommend_degraded_total", "reason" => reason.as_str()).increment(1);
    }
    // Which candidate source each served clip won from (the share each source earns).
    for item in &page.items {
        metrics::counter!("recommend_served_total", "source" => item.source.as_str()).increment(1);
    }
    let ids: Vec<Id> = page.items.iter().map(|i| Id(i.video)).collect();
    let authors: Vec<Id> = page.items.iter().map(|i| Id(i.author)).collect();
    // The cover candidates need only the ids: read alongside the views, not after them.
    let (mut items, candidates) =
        tokio::try_join!(listable_views_in_order(&state, &ids, &authors), async {
            Ok::<_, ApiError>(state.meta().videos().cover_candidates(&ids).await?)
        },)?;
    stage_done("views", &mut since);
    choose_covers(rec, &state, user.map(|u| u.id.0), now, &mut items, &candidates).await?;
    stage_done("covers", &mut since);
    let next = Cursor {
        page: cursor.map_or(1, |c| c.page.saturating_add(1)),
        last_author: page.items.last().map(|i| i.author.to_string()),
    };
    Ok(ApiJson(ForYouPage {
        items,
        next_cursor: Some(encode_cursor(&next)),
        degraded: page.degraded,
    }))
}

/// Query of the related videos.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RelatedQuery {
    /// How many, 1..=50 (default 10).
    pub limit: Option<usize>,
}

/// Related videos.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RelatedPage {
    pub items: Vec<VideoView>,
}

/// What to play after this video: clips co-engaged with it, then clips sharing its tags,
/// then its creator's. Shed first under overload (503 + `Retry-After`).
#[utoipa::path(get, path = "/videos/{id}/related", tag = "feed",
    params(("id" = String, Path, description = "Video id"), RelatedQuery),
    responses(
        (status = 200, description = "Related videos, best first", body = RelatedPage),
        (status = 404, description = "No such published video", body = ErrorBody),
        (status = 422, description = "Bad limit", body = ErrorBody),
        (status = 503, description = "Shed under overload; retry", body = ErrorBody),
    ))]
pub async fn related(
    State(state): State<AppState>,
    MaybeAuthUser(user): MaybeAuthUser,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<RelatedQuery>,
) -> ApiResult<ApiJson<RelatedPage>> {
    let rec = recommender(&state)?;
    let limit = q.limit.unwrap_or(10);
    if !(1..=50).contains(&limit) {
        return Err(ApiError::validation("limit must be 1..=50"));
    }
    let id: Id = id.parse().map_err(|_| ApiError::not_found("no such video"))?;
    let video = state.meta().videos().by_id(id).await?;
    let visible = video.as_ref().is_some_and(|v| {
        v.status == VideoStatus::Published
            && (!v.private || user.is_some_and(|u| u.id == v.author_id))
    });
    if !visible {
        return Err(ApiError::not_found("no such video"));
    }
    let blocked = match user {
        Some(u) => {
            state.meta().social().block_partners(u.id).await?.into_iter().map(|i| i.0).collect()
        }
        None => HashSet::new(),
    };
    let now = state.clock().now_ms();
    let req = RelatedRequest {
        video: id.0,
        user: user.map(|u| u.id.0),
        blocked,
        limit,
        log_head_ms: now,
        candidates_healthy: true,
    };
    let ids = match tokio::task::spawn_blocking(move || rec.related(&req))
        .await
        .map_err(ApiError::internal)?
    {
        Ok(ids) => ids,
        Err(RecommendError::Shed) => {
            metrics::counter!("recommend_shed_total", "request" => "related").increment(1);
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Unavailable,
                "related videos are shed while the service is overloaded",
            )
            .with_header(http::header::RETRY_AFTER, http::HeaderValue::from_static("1")));
        }
        // Only state restoration reports this; a request never does.
        Err(e @ RecommendError::BadState(_)) => return Err(ApiError::internal(e)),
    };
    Ok(ApiJson(RelatedPage { items: views_in_order(&state, &ids).await? }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_garbage_is_refused() {
        let c = Cursor { page: 3, last_author: Some("42".into()) };
        assert_eq!(decode_cursor(&encode_cursor(&c)).ok(), Some(c));
        assert!(decode_cursor("not base64!").is_err());
        assert!(decode_cursor(&URL_SAFE_NO_PAD.encode(b"{}")).is_err());
    }
}
