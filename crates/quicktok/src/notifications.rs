//! Notifications (F6.4): a durable consumer of the `social` and `videos` topics that turns
//! likes, comments, replies, follows and publication outcomes into rows of their recipients'
//! inboxes, then hands the stored rows to the node's live-delivery hub.
//!
//! It runs with the API role, one consumer per topic and node (`notifications-{node}`), so
//! every API node's hub sees what its own consumer stores; for the same reason it drops the
//! node's cached feed follows of whoever followed or unfollowed someone on another node.
//! Inserts are idempotent (each row's source is `{topic}:{offset}:{recipient}`): a replayed
//! batch, or a second node storing the same event, adds nothing; only the node whose insert
//! stored a row delivers it live.

use std::sync::Arc;
use std::time::Duration;

use quicktok_api::feed::ReaderGraphs;
use quicktok_api::notify::NotificationHub;
use quicktok_core::{Event, Id, Shutdown};
use quicktok_log::EventLog;
use quicktok_meta::{MetaStore, NewNotification};

/// The topic of video lifecycle events.
pub const VIDEOS_TOPIC: &str = "videos";
const BATCH_RECORDS: usize = 1024;
const BATCH_BYTES: usize = 1 << 20;

/// The notifications one event produces, for the record at `topic:offset`. Users are never
/// notified of their own actions, and unlikes / unfollows notify nobody.
pub fn notifications_for(event: &Event, topic: &str, offset: u64) -> Vec<NewNotification> {
    let make = |recipient: Id,
                kind: &str,
                actor: Option<Id>,
                video_id: Option<Id>,
                comment_id: Option<Id>,
                text: Option<String>,
                at_ms: i64| NewNotification {
        recipient,
        kind: kind.to_owned(),
        actor,
        video_id,
        comment_id,
        text,
        source: format!("{topic}:{offset}:{recipient}"),
        created_at_ms: at_ms,
    };
    match event {
        Event::VideoLiked { video_id, author, user_id, liked: true, at_ms }
            if author != user_id =>
        {
            vec![make(*author, "like", Some(*user_id), Some(*video_id), None, None, *at_ms)]
        }
        Event::CommentPosted {
            comment_id,
            video_id,
            video_author,
            author,
            reply_to_author,
            at_ms,
            ..
        } => {
            let mut out = Vec::new();
            if let Some(answered) = reply_to_author.filter(|a| a != author) {
                out.push(make(
                    answered,
                    "reply",
                    Some(*author),
                    Some(*video_id),
                    Some(*comment_id),
                    None,
                    *at_ms,
                ));
            }
            // The creator hears of every comment once: a reply to them is already a reply.
            if video_author != author && Some(*video_author) != *reply_to_author {
                out.push(make(
                    *video_author,
                    "comment",
                    Some(*author),
                    Some(*video_id),
                    Some(*comment_id),
                    None,
                    *at_ms,
                ));
            }
            out
        }
        Event::UserFollowed { follower, followee, following: true, at_ms }
            if follower != followee =>
        {
            vec![make(*followee, "follow", Some(*follower), None, None, None, *at_ms)]
        }
        Event::VideoPublished { video_id, author, at_ms } => {
            vec![make(*author, "published", None, Some(*video_id), None, None, *at_ms)]
        }
        Event::VideoRejected { video_id, author, reason, at_ms } => vec![make(
            *author,
            "rejected",
            None,
            Some(*video_id),
            None,
            Some(reason.clone()),
            *at_ms,
        )],
        _ => Vec::new(),
    }
}

/// Reads `topic` and stores (then delivers live) its notifications until `shutdown`; a
/// follow or unfollow also drops the follower's follows from `graphs`.
pub async fn run(
    log: Arc<dyn EventLog>,
    meta: MetaStore,
    hub: NotificationHub,
    graphs: ReaderGraphs,
    topic: &'static str,
    node: u16,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let consumer = format!("notifications-{node}");
    let mut next = log.committed(topic, &consumer).await?.unwrap_or(0);
    while let Some(records) = crate::consumer::next_batch(
        log.as_ref(),
        topic,
        next,
        BATCH_RECORDS,
        BATCH_BYTES,
        &shutdown,
    )
    .await?
    {
        let after = crate::consumer::after(&records, next);
        let mut batch = Vec::new();
        for record in &records {
            match Event::decode(&record.payload) {
                Ok(event) => {
                    if let Event::UserFollowed { follower, .. } = event {
                        graphs.forget(follower);
                    }
                    batch.extend(notifications_for(&event, topic, record.offset));
                }
                Err(e) => {
                    tracing::warn!(topic, offset = record.offset, error = %e, "skipping undecodable event")
                }
            }
        }
        match meta.notifications().insert(&batch).await {
            Ok(stored) => hub.publish(stored),
            Err(e) => {
                // Retry the same batch: the offset is not committed.
                tracing::warn!(error = %e, "storing notifications failed; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                continue;
            }
        }
        log.commit(topic, &consumer, after).await?;
        next = after;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(e: &Event) -> Vec<(u64, String)> {
        notifications_for(e, "social", 3).into_iter().map(|n| (n.recipient.0, n.kind)).collect()
    }

    #[test]
    fn own_actions_and_undos_notify_nobody() {
        let own = Event::VideoLiked {
            video_id: Id(9),
            author: Id(1),
            user_id: Id(1),
            liked: true,
            at_ms: 0,
        };
        let unlike = Event::VideoLiked {
            video_id: Id(9),
            author: Id(1),
            user_id: Id(2),
            liked: false,
            at_ms: 0,
        };
        let unfollow =
            Event::UserFollowed { follower: Id(2), followee: Id(1), following: false, at_ms: 0 };
        assert!(kinds(&own).is_empty());
        assert!(kinds(&unlike).is_empty());
        assert!(kinds(&unfollow).is_empty());
        let like = Event::VideoLiked {
            video_id: Id(9),
            author: Id(1),
            user_id: Id(2),
            liked: true,
            at_ms: 0,
        };
        assert_eq!(kinds(&like), [(1, "like".to_owned())]);
        assert_eq!(notifications_for(&like, "social", 3)[0].source, "social:3:1");
    }

    #[test]
    fn replies_notify_the_answered_author_and_the_creator_once() {
        let reply = |reply_to_author: Option<Id>, author: Id| Event::CommentPosted {
            comment_id: Id(5),
            video_id: Id(9),
            video_author: Id(1),
            author,
            parent_id: reply_to_author.map(|_| Id(4)),
            reply_to: reply_to_author.map(|_| Id(4)),
            reply_to_author,
            at_ms: 0,
        };
        assert_eq!(kinds(&reply(None, Id(2))), [(1, "comment".to_owned())]);
        assert_eq!(
            kinds(&reply(Some(Id(3)), Id(2))),
            [(3, "reply".to_owned()), (1, "comment".to_owned())]
        );
        assert_eq!(kinds(&reply(Some(Id(1)), Id(2))), [(1, "reply".to_owned())]);
        assert!(kinds(&reply(Some(Id(1)), Id(1))).is_empty());
    }
}
