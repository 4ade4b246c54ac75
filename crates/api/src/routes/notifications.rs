//! `/api/v1/notifications*`: the signed-in user's inbox (grouped), marking it read, and live
//! delivery over server-sent events. There is no user id in these paths: everyone reads
//! only their own inbox.
//!
//! Grouping rule ([`group`]): within one page (newest first), `like`, `comment` and `follow`
//! notifications with the same kind, the same video (none for follows) and the same read
//! state become one item, placed where its newest member is. Replies, published and
//! rejected notifications are never grouped. A group names its first three distinct actors
//! (newest first); `others` is how many distinct actors there are besides the first one,
//! as in the text ("ann and 12 others liked your video").

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::Stream;
use quicktok_core::Id;
use quicktok_meta::Notification;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, AuthUser};
use crate::routes::playback::{ListQuery, page_of};
use crate::state::AppState;

/// How many actors a group names.
const SHOWN_ACTORS: usize = 3;

/// Someone who acted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ActorView {
    pub id: String,
    /// Empty when the account no longer exists.
    pub username: String,
}

/// One inbox item: a single notification or a group of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct NotificationItem {
    /// `like`, `comment`, `reply`, `follow`, `published` or `rejected`.
    pub kind: String,
    pub video_id: Option<String>,
    /// The comment (or reply) for `comment` / `reply` items; the newest one of a group.
    pub comment_id: Option<String>,
    /// Up to three distinct actors, newest first.
    pub actors: Vec<ActorView>,
    /// Distinct actors besides the first one.
    pub others: u64,
    /// Human-readable summary.
    pub text: String,
    /// A rejection's reason.
    pub reason: Option<String>,
    pub latest_at_ms: i64,
    pub read: bool,
    /// The notification ids in the item, newest first (the first is the `up_to` to mark
    /// everything up to this item read).
    pub ids: Vec<String>,
}

/// A page of the inbox.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NotificationPage {
    pub items: Vec<NotificationItem>,
    /// Unread notifications in the whole inbox (not items).
    pub unread: u64,
    /// The `cursor` of the next page, when this one was full.
    pub next_cursor: Option<String>,
}

/// Body of `POST /notifications/read`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct MarkReadRequest {
    /// Marks this notification and every older one read.
    pub up_to: String,
}

/// Result of marking read.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MarkReadResponse {
    /// How many were unread before.
    pub marked: u64,
    pub unread: u64,
}

fn groupable(kind: &str) -> bool {
    matches!(kind, "like" | "comment" | "follow")
}

/// Groups a page of notifications (newest first) into items, by the rule in the module doc.
pub fn group(page: &[Notification]) -> Vec<NotificationItem> {
    let mut members: Vec<Vec<&Notification>> = Vec::new();
    for n in page {
        let existing = groupable(&n.kind)
            .then(|| {
                members.iter_mut().find(|g| {
                    let first = g[0];
                    first.kind == n.kind && first.video_id == n.video_id && first.read == n.read
                })
            })
            .flatten();
        match existing {
            Some(g) => g.push(n),
            None => members.push(vec![n]),
        }
    }
    members.into_iter().map(|g| item(&g)).collect()
}

fn item(members: &[&Notification]) -> NotificationItem {
    let newest = members[0];
    let mut distinct: Vec<ActorView> = Vec::new();
    for n in members {
        if let Some(actor) = n.actor {
            let id = actor.to_string();
            if !distinct.iter().any(|a| a.id == id) {
                distinct
                    .push(ActorView { id, username: n.actor_username.clone().unwrap_or_default() });
            }
        }
    }
    let others = distinct.len().saturating_sub(1) as u64;
    let who = match (distinct.first(), others) {
        (None, _) => String::new(),
        (Some(a), 0) => a.username.clone(),
        (Some(a), 1) => format!("{} and 1 other", a.username),
        (Some(a), n) => format!("{} and {n} others", a.username),
    };
    let text = match newest.kind.as_str() {
        "like" => format!("{who} liked your video"),
        "comment" => format!("{who} commented on your video"),
        "reply" => format!("{who} replied to your comment"),
        "follow" => format!("{who} started following you"),
        "published" => "Your video is published".to_owned(),
        "rejected" => "Your video was rejected".to_owned(),
        other => format!("{who} {other}"),
    };
    distinct.truncate(SHOWN_ACTORS);
    NotificationItem {
        kind: newest.kind.clone(),
        video_id: newest.video_id.map(|v| v.to_string()),
        comment_id: newest.comment_id.map(|c| c.to_string()),
        actors: distinct,
        others,
        text,
        reason: newest.text.clone(),
        latest_at_ms: newest.created_at_ms,
        read: newest.read,
        ids: members.iter().map(|n| n.id.to_string()).collect(),
    }
}

/// Your notifications, newest first, grouped; with your unread count.
#[utoipa::path(get, path = "/notifications", tag = "notifications", security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "A page of your inbox", body = NotificationPage),
        (status = 400, description = "Bad cursor or limit", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<ApiJson<NotificationPage>> {
    let (before, limit) = page_of(&q)?;
    // One snapshot: a notification stored meanwhile is both listed and counted, or neither.
    let (rows, unread) = state.meta().notifications().inbox(user.id, before, limit).await?;
    let next_cursor =
        (rows.len() == limit as usize).then(|| rows.last().map(|n| n.id.to_string())).flatten();
    Ok(ApiJson(NotificationPage { items: group(&rows), unread, next_cursor }))
}

/// Marks your notifications up to and including `up_to` read.
#[utoipa::path(post, path = "/notifications/read", tag = "notifications", security(("bearer" = [])),
    request_body = MarkReadRequest,
    responses(
        (status = 200, description = "Marked", body = MarkReadResponse),
        (status = 400, description = "Bad id", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
    ))]
pub async fn mark_read(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(request): ApiJson<MarkReadRequest>,
) -> ApiResult<ApiJson<MarkReadResponse>> {
    let up_to: Id =
        request.up_to.parse().map_err(|_| ApiError::bad_request("up_to is not an id"))?;
    let now = state.clock().now_ms();
    let marked = state.meta().notifications().mark_read(user.id, up_to, now).await?;
    let unread = state.meta().notifications().unread(user.id).await?;
    Ok(ApiJson(MarkReadResponse { marked, unread }))
}

/// Your new notifications as they are stored, as server-sent events (`event: notification`,
/// `id` = the notification id, data = a one-notification item), with keep-alive comments.
/// Authenticated with the `Authorization: Bearer` header like every other endpoint.
#[utoipa::path(get, path = "/notifications/stream", tag = "notifications", security(("bearer" = [])),
    responses(
        (status = 200, description = "text/event-stream of notification items", content_type = "text/event-stream", body = NotificationItem),
        (status = 401, description = "Not signed in", body = ErrorBody),
    ))]
pub async fn stream(
    State(state): State<AppState>,
    user: AuthUser,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let rx = state.notification_hub().subscribe();
    let events = futures::stream::unfold(rx, move |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(n) if n.recipient == user.id => {
                    let data = serde_json::to_string(&item(&[&n])).unwrap_or_default();
                    let event =
                        SseEvent::default().event("notification").id(n.id.to_string()).data(data);
                    return Some((Ok(event), rx));
                }
                Ok(_) => {}
                // A slow client skips what it missed; the inbox still has it.
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(id: u64, kind: &str, actor: u64, video: Option<u64>, read: bool) -> Notification {
        Notification {
            id: Id(id),
            recipient: Id(1),
            kind: kind.into(),
            actor: Some(Id(actor)),
            actor_username: Some(format!("u{actor}")),
            video_id: video.map(Id),
            comment_id: None,
            text: None,
            created_at_ms: id as i64,
            read,
        }
    }

    #[test]
    fn likes_on_one_video_group_with_distinct_actors() {
        let page: Vec<_> =
            (0..14).rev().map(|i| n(100 + i, "like", 10 + i, Some(7), false)).collect();
        let items = group(&page);
        assert_eq!(items.len(), 1);
        let item = &items[0];
        assert_eq!(item.actors.len(), 3);
        assert_eq!(item.actors[0].username, "u23");
        assert_eq!(item.others, 13);
        assert_eq!(item.text, "u23 and 13 others liked your video");
        assert_eq!(item.ids.len(), 14);
        assert_eq!(item.ids[0], "113");
        assert_eq!(item.latest_at_ms, 113);
    }

    #[test]
    fn groups_split_by_video_kind_and_read_state() {
        let page = vec![
            n(6, "like", 2, Some(7), false),
            n(5, "like", 3, Some(8), false),
            n(4, "follow", 3, None, false),
            n(3, "like", 3, Some(7), false),
            n(2, "follow", 4, None, false),
            n(1, "like", 4, Some(7), true),
        ];
        let items = group(&page);
        let summary: Vec<_> =
            items.iter().map(|i| (i.kind.as_str(), i.ids.len(), i.read)).collect();
        assert_eq!(
            summary,
            [("like", 2, false), ("like", 1, false), ("follow", 2, false), ("like", 1, true)]
        );
        assert_eq!(items[0].text, "u2 and 1 other liked your video");
        assert_eq!(items[2].text, "u3 and 1 other started following you");
    }

    #[test]
    fn replies_and_publications_stay_single_and_repeat_actors_count_once() {
        let page = vec![
            n(4, "reply", 2, Some(7), false),
            n(3, "reply", 2, Some(7), false),
            n(2, "comment", 2, Some(7), false),
            n(1, "comment", 2, Some(7), false),
        ];
        let items = group(&page);
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].text, "u2 replied to your comment");
        assert_eq!(items[2].text, "u2 commented on your video");
        assert_eq!(items[2].others, 0);
        let published =
            Notification { actor: None, kind: "published".into(), ..n(9, "x", 0, Some(7), false) };
        assert_eq!(group(&[published])[0].text, "Your video is published");
    }
}
