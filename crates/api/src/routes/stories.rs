//! Stories (F6.6): `GET /api/v1/stories` (the followed accounts with unseen live stories,
//! newest first), `GET /api/v1/users/{id}/stories` (an author's live stories in watch
//! order, with where the viewer resumes), `POST /api/v1/stories/{id}/seen` (the viewer's
//! progress) and `GET /api/v1/me/stories` (the author's own, expired ones included).
//!
//! A story is a video uploaded with `kind` = `story`; liking and commenting go through the
//! video endpoints, which refuse expired stories. Expiry is exact: every read compares the
//! stored `expires_at_ms` with the app clock, nothing waits for a background job. Progress
//! is per viewer and author, the newest story seen (ids are time-ordered), and never moves
//! backwards.

use axum::extract::{Path, State};
use quicktok_core::Id;
use quicktok_meta::{AuthorStories, Video, VideoKind};
use serde::Serialize;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, AuthUser, MaybeAuthUser};
use crate::routes::interactions::refuse_if_blocked;
use crate::routes::playback::{
    AuthorView, ListQuery, PlayUrls, VideoPage, VideoView, decode_renditions, page_of, play_urls,
    video_views,
};
use crate::state::AppState;

/// A followed account with stories the viewer has not seen.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StoryRowItem {
    pub author: AuthorView,
    /// Publication time of their newest live story, Unix ms (the row's order).
    pub latest_at_ms: i64,
    /// Live stories the viewer has not seen.
    pub unseen: u32,
    /// Live stories.
    pub total: u32,
    /// The first unseen story, in watch order: where to start.
    pub resume_from: String,
}

/// A page of the story row, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StoryRowPage {
    pub items: Vec<StoryRowItem>,
    pub next_cursor: Option<String>,
}

/// One live story.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StoryItem {
    pub id: String,
    pub published_at_ms: Option<i64>,
    /// Gone for everyone but its author from this time, Unix ms.
    pub expires_at_ms: Option<i64>,
    pub duration_ms: Option<i64>,
    /// The viewer has seen it (always `false` when anonymous).
    pub seen: bool,
    /// Signed play URLs, as `GET /videos/{id}/play` gives them.
    pub play: PlayUrls,
    /// The story as `GET /videos/{id}` shows it (renditions, counts, cover...).
    pub video: VideoView,
}

/// An author's live stories, oldest first (watch order). The list is bounded (a day's
/// stories), so it comes whole: `next_cursor` is always `null`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuthorStoriesPage {
    pub author: AuthorView,
    pub items: Vec<StoryItem>,
    /// The first story the viewer has not seen; `null` when they have seen them all.
    pub resume_from: Option<String>,
    pub next_cursor: Option<String>,
}

/// The viewer's progress through an author's stories after a `seen`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SeenState {
    /// The newest of the author's stories the viewer has seen.
    pub last_seen: String,
    /// The next live story to watch; `null` when none is left.
    pub resume_from: Option<String>,
}

fn no_such_story() -> ApiError {
    ApiError::not_found("no such story")
}

/// The row's keyset position: the last item's `latest_at_ms` and author id.
fn parse_row_cursor(cursor: Option<&str>) -> ApiResult<Option<(i64, Id)>> {
    let Some(cursor) = cursor.filter(|c| !c.is_empty()) else { return Ok(None) };
    let bad = || ApiError::bad_request("bad cursor");
    let (at, author) = cursor.split_once('.').ok_or_else(bad)?;
    Ok(Some((at.parse().map_err(|_| bad())?, author.parse().map_err(|_| bad())?)))
}

/// One page of the (already ordered) row after `after`.
fn row_page(
    row: Vec<AuthorStories>,
    after: Option<(i64, Id)>,
    limit: u32,
) -> (Vec<AuthorStories>, Option<String>) {
    let mut rest: Vec<AuthorStories> = row
        .into_iter()
        .filter(|a| after.is_none_or(|after| (a.latest_at_ms, a.author_id) < after))
        .collect();
    let more = rest.len() > limit as usize;
    rest.truncate(limit as usize);
    let next =
        more.then(|| rest.last().map(|a| format!("{}.{}", a.latest_at_ms, a.author_id))).flatten();
    (rest, next)
}

/// The accounts you follow that have live stories you have not seen, newest first (by
/// their latest story); each with how many are unseen and where to resume.
#[utoipa::path(get, path = "/stories", tag = "stories", security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "Newest first", body = StoryRowPage),
        (status = 400, description = "Bad cursor or limit", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
    ))]
pub async fn row(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<ApiJson<StoryRowPage>> {
    let after = parse_row_cursor(q.cursor.as_deref())?;
    let (_, limit) = page_of(&ListQuery { cursor: None, limit: q.limit })?;
    let now = state.clock().now_ms();
    let all = state.meta().stories().unseen_authors(user.id, now).await?;
    let (page, next_cursor) = row_page(all, after, limit);
    let items = page
        .into_iter()
        .map(|a| StoryRowItem {
            author: AuthorView { id: a.author_id.to_string(), username: a.username },
            latest_at_ms: a.latest_at_ms,
            unseen: a.unseen,
            total: a.total,
            resume_from: a.resume_from.to_string(),
        })
        .collect();
    Ok(ApiJson(StoryRowPage { items, next_cursor }))
}

/// An author's live stories, oldest first (watch order), with which ones you have seen and
/// where to resume. Anonymous viewers see them all as unseen.
#[utoipa::path(get, path = "/users/{id}/stories", tag = "stories",
    params(("id" = String, Path, description = "The author's user id")),
    responses(
        (status = 200, description = "Watch order", body = AuthorStoriesPage),
        (status = 403, description = "One of you has blocked the other (`blocked`)", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    ))]
pub async fn of_author(
    State(state): State<AppState>,
    MaybeAuthUser(viewer): MaybeAuthUser,
    Path(id): Path<String>,
) -> ApiResult<ApiJson<AuthorStoriesPage>> {
    let not_found = || ApiError::not_found("no such user");
    let author_id: Id = id.parse().map_err(|_| not_found())?;
    let author = state.meta().users().by_id(author_id).await?.ok_or_else(not_found)?;
    if let Some(viewer) = viewer {
        refuse_if_blocked(&state, viewer.id, author.id).await?;
    }
    let now = state.clock().now_ms();
    let stories = state.meta().stories().live_of(author.id, now).await?;
    let seen_up_to = match viewer {
        Some(viewer) => state.meta().stories().progress(viewer.id, author.id).await?,
        None => None,
    };
    let seen = |story: &Video| seen_up_to.is_some_and(|last| story.id <= last);
    let resume_from = stories.iter().find(|s| !seen(s)).map(|s| s.id.to_string());
    let ids: Vec<Id> = stories.iter().map(|s| s.id).collect();
    let mut rows = state.meta().renditions().for_videos(&ids).await?;
    let plays: Vec<PlayUrls> = stories
        .iter()
        .map(|s| {
            let renditions = decode_renditions(s.id, rows.remove(&s.id).unwrap_or_default());
            play_urls(&state, s, &renditions)
        })
        .collect();
    let seen: Vec<bool> = stories.iter().map(seen).collect();
    let views = video_views(&state, stories).await?;
    let items = views
        .into_iter()
        .zip(plays)
        .zip(seen)
        .map(|((video, play), seen)| StoryItem {
            id: video.id.clone(),
            published_at_ms: video.published_at_ms,
            expires_at_ms: video.expires_at_ms,
            duration_ms: video.duration_ms,
            seen,
            play,
            video,
        })
        .collect();
    Ok(ApiJson(AuthorStoriesPage {
        author: AuthorView { id: author.id.to_string(), username: author.username },
        items,
        resume_from,
        next_cursor: None,
    }))
}

/// Mark a live story as seen: your progress through its author's stories moves to it
/// (never backwards: an older story, or the same one again, changes nothing).
#[utoipa::path(post, path = "/stories/{id}/seen", tag = "stories", security(("bearer" = [])),
    params(("id" = String, Path, description = "Story id")),
    responses(
        (status = 200, description = "Your progress now", body = SeenState),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "One of you has blocked the other (`blocked`)", body = ErrorBody),
        (status = 404, description = "No such live story", body = ErrorBody),
    ))]
pub async fn seen(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<ApiJson<SeenState>> {
    let id: Id = id.parse().map_err(|_| no_such_story())?;
    let now = state.clock().now_ms();
    let story = state.meta().videos().by_id(id).await?.ok_or_else(no_such_story)?;
    let live = story.kind == VideoKind::Story
        && story.status == quicktok_meta::VideoStatus::Published
        && !story.private
        && story.expires_at_ms.is_some()
        && !story.expired_at(now);
    if !live {
        return Err(no_such_story());
    }
    refuse_if_blocked(&state, user.id, story.author_id).await?;
    let stories = state.meta().stories();
    stories.mark_seen(user.id, story.author_id, story.id, now).await?;
    let last_seen = stories.progress(user.id, story.author_id).await?.unwrap_or(story.id);
    let next = stories.live_of(story.author_id, now).await?.into_iter().find(|s| s.id > last_seen);
    Ok(ApiJson(SeenState {
        last_seen: last_seen.to_string(),
        resume_from: next.map(|s| s.id.to_string()),
    }))
}

/// Your own stories in every status, expired ones included (an archive), newest first.
#[utoipa::path(get, path = "/me/stories", tag = "stories", security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "Newest first", body = VideoPage),
        (status = 400, description = "Bad cursor or limit", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
    ))]
pub async fn mine(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<ApiJson<VideoPage>> {
    let (before, limit) = page_of(&q)?;
    let stories = state.meta().videos().stories_by_author(user.id, before, limit).await?;
    let next_cursor = (stories.len() == limit as usize)
        .then(|| stories.last().map(|v| v.id.to_string()))
        .flatten();
    let items = video_views(&state, stories).await?;
    Ok(ApiJson(VideoPage { items, next_cursor }))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn authors(page: &[AuthorStories]) -> HashSet<i64> {
        page.iter().map(|a| a.author_id.as_i64()).collect()
    }

    fn entry(author: i64, at: i64) -> AuthorStories {
        AuthorStories {
            author_id: Id::from_i64(author),
            username: format!("u{author}"),
            latest_at_ms: at,
            unseen: 1,
            total: 1,
            resume_from: Id::from_i64(author * 10),
        }
    }

    #[test]
    fn row_pages_follow_the_cursor() {
        // Ordered as the repository returns it: newest first, ties by author descending.
        let row = || vec![entry(5, 300), entry(4, 200), entry(3, 200), entry(2, 100)];
        let (first, next) = row_page(row(), None, 2);
        assert_eq!(authors(&first), HashSet::from([5, 4]));
        let next = next.unwrap();
        assert_eq!(next, "200.4");
        let (second, next) = row_page(row(), parse_row_cursor(Some(&next)).unwrap(), 2);
        assert_eq!(authors(&second), HashSet::from([3, 2]));
        assert_eq!(next, None, "no more");
        let (all, next) = row_page(row(), None, 4);
        assert_eq!((all.len(), next), (4, None));
        for bad in ["x", "1.", ".2", "1.2.3", "a.b"] {
            assert!(parse_row_cursor(Some(bad)).is_err(), "{bad}");
        }
        assert_eq!(parse_row_cursor(Some("")).unwrap(), None);
    }
}
