//! Users and their relations: `GET /api/v1/users/{id}` (a profile with follower and
//! following counts), `POST/DELETE /api/v1/users/{id}/follow`, `GET
//! /api/v1/users/{id}/followers` and `/following`, and `POST/DELETE
//! /api/v1/users/{id}/block`.
//!
//! Every change acts on the signed-in user's own relations: the path names the other user,
//! so nobody can follow, unfollow or block on someone else's behalf. Counts come from the
//! counter service and move only when a relation really changed.

use axum::extract::{Path, State};
use quicktok_core::{Event, Id};
use quicktok_meta::{User, UserLink};
use quicktok_social::{CounterKey, Metric};
use serde::Serialize;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, AuthUser, MaybeAuthUser};
use crate::routes::interactions::{blocked, publish};
use crate::routes::playback::{ListQuery, page_of};
use crate::state::AppState;

/// Follower and following counts.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserCounts {
    pub followers: i64,
    pub following: i64,
}

/// A user's public profile.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserProfile {
    pub id: String,
    pub username: String,
    pub display_name: Option<String>,
    pub counts: UserCounts,
    /// Whether the signed-in user follows them (`null` when anonymous or yourself).
    pub following: Option<bool>,
    /// Whether the signed-in user blocked them (`null` when anonymous or yourself).
    pub blocked: Option<bool>,
    pub created_at_ms: i64,
}

/// A user in a follower or following list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserLinkView {
    pub id: String,
    pub username: String,
    pub display_name: Option<String>,
    /// When the follow was made.
    pub followed_at_ms: i64,
}

/// A page of users, newest follow first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserLinkPage {
    pub items: Vec<UserLinkView>,
    pub next_cursor: Option<String>,
}

/// Whether the signed-in user follows the other one now.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FollowState {
    pub following: bool,
}

/// Whether the signed-in user blocks the other one now.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BlockState {
    pub blocked: bool,
}

/// The user `id`, or 404.
async fn existing_user(state: &AppState, id: &str) -> ApiResult<User> {
    let not_found = || ApiError::not_found("no such user");
    let id: Id = id.parse().map_err(|_| not_found())?;
    state.meta().users().by_id(id).await?.ok_or_else(not_found)
}

/// The other user of a relation change: it exists and is not the signed-in user.
async fn other_user(state: &AppState, user: AuthUser, id: &str, action: &str) -> ApiResult<User> {
    let other = existing_user(state, id).await?;
    if other.id == user.id {
        return Err(ApiError::bad_request(format!("you cannot {action} yourself")));
    }
    Ok(other)
}

/// Moves the counts of one follow that was made (`+1`) or removed (`-1`).
fn count_follow(state: &AppState, follower: Id, followee: Id, delta: i64) {
    state.counters().add(CounterKey::user(followee, Metric::Followers), delta);
    state.counters().add(CounterKey::user(follower, Metric::Following), delta);
}

async fn followed(state: &AppState, follower: Id, followee: Id, following: bool, at_ms: i64) {
    // This node's next feed read of the follower sees the change; other nodes drop their
    // copy when their `social` consumer sees the event.
    state.feed_cache().graphs().forget(follower);
    count_follow(state, follower, followee, if following { 1 } else { -1 });
    publish(state, Event::UserFollowed { follower, followee, following, at_ms }).await;
}

/// Drops both users' cached feed follows: a block between them hides each from the other's
/// feed (the follows it removes reach other nodes as unfollow events).
fn forget_pair(state: &AppState, a: Id, b: Id) {
    state.feed_cache().graphs().forget(a);
    state.feed_cache().graphs().forget(b);
}

/// A user's profile with follower and following counts.
#[utoipa::path(get, path = "/users/{id}", tag = "social",
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "The user", body = UserProfile),
        (status = 404, description = "No such user", body = ErrorBody),
    ))]
pub async fn profile(
    State(state): State<AppState>,
    MaybeAuthUser(viewer): MaybeAuthUser,
    Path(id): Path<String>,
) -> ApiResult<ApiJson<UserProfile>> {
    let user = existing_user(&state, &id).await?;
    let keys = [
        CounterKey::user(user.id, Metric::Followers),
        CounterKey::user(user.id, Metric::Following),
    ];
    let counts = state.counters().get_many(&keys).await?;
    let (mut following, mut blocked) = (None, None);
    if let Some(viewer) = viewer.filter(|v| v.id != user.id) {
        let social = state.meta().social();
        following = Some(social.is_following(viewer.id, user.id).await?);
        blocked = Some(social.is_blocked(viewer.id, user.id).await?);
    }
    Ok(ApiJson(UserProfile {
        id: user.id.to_string(),
        username: user.username,
        display_name: user.display_name,
        counts: UserCounts {
            followers: counts.first().copied().unwrap_or(0),
            following: counts.get(1).copied().unwrap_or(0),
        },
        following,
        blocked,
        created_at_ms: user.created_at_ms,
    }))
}

/// Follow a user (idempotent).
#[utoipa::path(post, path = "/users/{id}/follow", tag = "social", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "Following", body = FollowState),
        (status = 400, description = "That is you", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "One of you blocked the other (`blocked`)", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    ))]
pub async fn follow(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<ApiJson<FollowState>> {
    let other = other_user(&state, user, &id, "follow").await?;
    let social = state.meta().social();
    let now = state.clock().now_ms();
    if social.follow(user.id, other.id, state.next_id(), now).await? {
        followed(&state, user.id, other.id, true, now).await;
    } else if !social.is_following(user.id, other.id).await? {
        // Nothing inserted and no follow there: a block forbade it.
        return Err(blocked());
    }
    Ok(ApiJson(FollowState { following: true }))
}

/// Stop following a user (idempotent).
#[utoipa::path(delete, path = "/users/{id}/follow", tag = "social", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "Not following", body = FollowState),
        (status = 400, description = "That is you", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    ))]
pub async fn unfollow(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<ApiJson<FollowState>> {
    let other = other_user(&state, user, &id, "unfollow").await?;
    if state.meta().social().unfollow(user.id, other.id).await? {
        followed(&state, user.id, other.id, false, state.clock().now_ms()).await;
    }
    Ok(ApiJson(FollowState { following: false }))
}

fn link_page(links: Vec<UserLink>, limit: u32) -> UserLinkPage {
    let next_cursor = (links.len() == limit as usize)
        .then(|| links.last().map(|l| l.link_id.to_string()))
        .flatten();
    let items = links
        .into_iter()
        .map(|l| UserLinkView {
            id: l.user_id.to_string(),
            username: l.username,
            display_name: l.display_name,
            followed_at_ms: l.created_at_ms,
        })
        .collect();
    UserLinkPage { items, next_cursor }
}

/// Who follows a user, newest first.
#[utoipa::path(get, path = "/users/{id}/followers", tag = "social",
    params(("id" = String, Path, description = "User id"), ListQuery),
    responses(
        (status = 200, description = "Newest follow first", body = UserLinkPage),
        (status = 400, description = "Bad cursor or limit", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    ))]
pub async fn followers(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<ApiJson<UserLinkPage>> {
    let (before, limit) = page_of(&q)?;
    let user = existing_user(&state, &id).await?;
    let links = state.meta().social().followers(user.id, before, limit).await?;
    Ok(ApiJson(link_page(links, limit)))
}

/// Whom a user follows, newest first.
#[utoipa::path(get, path = "/users/{id}/following", tag = "social",
    params(("id" = String, Path, description = "User id"), ListQuery),
    responses(
        (status = 200, description = "Newest follow first", body = UserLinkPage),
        (status = 400, description = "Bad cursor or limit", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    ))]
pub async fn following(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<ApiJson<UserLinkPage>> {
    let (before, limit) = page_of(&q)?;
    let user = existing_user(&state, &id).await?;
    let links = state.meta().social().following(user.id, before, limit).await?;
    Ok(ApiJson(link_page(links, limit)))
}

/// Block a user: removes the follows between you both ways; neither of you can then follow,
/// like or comment on the other, and their comments are hidden from you.
#[utoipa::path(post, path = "/users/{id}/block", tag = "social", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "Blocked", body = BlockState),
        (status = 400, description = "That is you", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    ))]
pub async fn block(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<ApiJson<BlockState>> {
    let other = other_user(&state, user, &id, "block").await?;
    let now = state.clock().now_ms();
    let outcome = state.meta().social().block(user.id, other.id, now).await?;
    forget_pair(&state, user.id, other.id);
    for (follower, followee) in outcome.removed_follows {
        followed(&state, follower, followee, false, now).await;
    }
    Ok(ApiJson(BlockState { blocked: true }))
}

/// Lift a block (follows it removed stay removed).
#[utoipa::path(delete, path = "/users/{id}/block", tag = "social", security(("bearer" = [])),
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "Not blocked", body = BlockState),
        (status = 400, description = "That is you", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    ))]
pub async fn unblock(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<ApiJson<BlockState>> {
    let other = other_user(&state, user, &id, "unblock").await?;
    state.meta().social().unblock(user.id, other.id).await?;
    forget_pair(&state, user.id, other.id);
    Ok(ApiJson(BlockState { blocked: false }))
}
