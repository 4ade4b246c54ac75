//! The platform's events: everything another component reacts to is one of these, appended to
//! the event log. The log itself stores opaque bytes; this module owns the encoding.

use serde::{Deserialize, Serialize};

use crate::error::CoreError;
use crate::id::Id;

/// The topic of social interactions (likes, comments, follows, shares), read by
/// notifications and feeds.
pub const SOCIAL_TOPIC: &str = "social";

/// The topic of per-user watch reports (what the recommender learns from).
pub const WATCHES_TOPIC: &str = "watches";

/// A platform event. Encoded as JSON with a `type` tag so consumers written later (and other
/// languages) can read old records; unknown fields are ignored on decode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A new account exists.
    UserRegistered { user_id: Id, username: String, at_ms: i64 },
    /// A user signed in with a password.
    UserLoggedIn { user_id: Id, at_ms: i64 },
    /// A refresh token was presented twice; its whole family was revoked.
    RefreshTokenReused { user_id: Id, family_id: Id, at_ms: i64 },
    /// The creator archived (or unarchived) a video: its media goes to cold storage (or
    /// back to warm).
    VideoArchived { video_id: Id, by: Id, archived: bool, at_ms: i64 },
    /// Every byte of a resumable upload has arrived: video `video_id` is now `processing`
    /// and its source awaits the pipeline.
    UploadCompleted { upload_id: Id, video_id: Id, owner: Id, size: u64, at_ms: i64 },
    /// Video `video_id` became playable (its lowest rung is ready; higher rungs follow):
    /// feeds, search and recommendation pick it up from here.
    VideoPublished { video_id: Id, author: Id, at_ms: i64 },
    /// Processing ended without publishing: refused by a check or a moderator, or failed
    /// for good (`reason` says which).
    VideoRejected { video_id: Id, author: Id, reason: String, at_ms: i64 },
    /// A published video was taken down by its creator or an admin (`by`): it is `removed`
    /// with `reason`; search and feeds drop it.
    VideoRemoved { video_id: Id, author: Id, by: Id, reason: String, at_ms: i64 },
    /// A video's title, description, tags or visibility changed: search re-reads it.
    VideoUpdated { video_id: Id, author: Id, at_ms: i64 },
    /// `user_id` liked (`liked = true`) or unliked video `video_id` of `author`. Only
    /// emitted when the like really changed (an idempotent repeat emits nothing).
    VideoLiked { video_id: Id, author: Id, user_id: Id, liked: bool, at_ms: i64 },
    /// `author` commented on video `video_id` of `video_author`. A reply has `parent_id`
    /// (the top-level comment it is listed under) and `reply_to` / `reply_to_author` (the
    /// comment and author it answers, which may be another reply).
    CommentPosted {
        comment_id: Id,
        video_id: Id,
        video_author: Id,
        author: Id,
        parent_id: Option<Id>,
        reply_to: Option<Id>,
        reply_to_author: Option<Id>,
        at_ms: i64,
    },
    /// `follower` followed (`following = true`) or unfollowed `followee`; only emitted when
    /// the relation really changed. A block's removal of follows emits `following = false`.
    UserFollowed { follower: Id, followee: Id, following: bool, at_ms: i64 },
    /// `user_id` shared video `video_id` of `author`, through `channel` when the client said.
    VideoShared { video_id: Id, author: Id, user_id: Id, channel: Option<String>, at_ms: i64 },
    /// Signed-in `user_id` reported watching `watched_ms` of video `video_id` (every report,
    /// counted as a view or not: a short watch is a skip, which the recommender learns from).
    VideoWatched {
        video_id: Id,
        user_id: Id,
        watched_ms: u64,
        duration_ms: Option<i64>,
        at_ms: i64,
    },
}

impl Event {
    /// The topic (stream) the event belongs to.
    pub fn topic(&self) -> &'static str {
        match self {
            Event::UserRegistered { .. }
            | Event::UserLoggedIn { .. }
            | Event::RefreshTokenReused { .. } => "users",
            Event::VideoArchived { .. }
            | Event::VideoPublished { .. }
            | Event::VideoRejected { .. }
            | Event::VideoRemoved { .. }
            | Event::VideoUpdated { .. } => "videos",
            Event::UploadCompleted { .. } => "uploads",
            Event::VideoLiked { .. }
            | Event::CommentPosted { .. }
            | Event::UserFollowed { .. }
            | Event::VideoShared { .. } => SOCIAL_TOPIC,
            Event::VideoWatched { .. } => WATCHES_TOPIC,
        }
    }

    /// When the event happened, in Unix milliseconds.
    pub fn at_ms(&self) -> i64 {
        match self {
            Event::UserRegistered { at_ms, .. }
            | Event::UserLoggedIn { at_ms, .. }
            | Event::RefreshTokenReused { at_ms, .. }
            | Event::VideoArchived { at_ms, .. }
            | Event::VideoPublished { at_ms, .. }
            | Event::VideoRejected { at_ms, .. }
            | Event::VideoRemoved { at_ms, .. }
            | Event::VideoUpdated { at_ms, .. }
            | Event::UploadCompleted { at_ms, .. }
            | Event::VideoLiked { at_ms, .. }
            | Event::CommentPosted { at_ms, .. }
            | Event::UserFollowed { at_ms, .. }
            | Event::VideoShared { at_ms, .. }
            | Event::VideoWatched { at_ms, .. } => *at_ms,
        }
    }

    /// Encodes the event for the log.
    pub fn encode(&self) -> Vec<u8> {
        // Serialising a plain enum of strings and integers to JSON cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes an event read from the log.
    pub fn decode(bytes: &[u8]) -> Result<Event, CoreError> {
        serde_json::from_slice(bytes).map_err(|e| CoreError::EventDecode(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let e = Event::UserRegistered { user_id: Id(42), username: "ana".into(), at_ms: 7 };
        let bytes = e.encode();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"type":"user_registered","user_id":"42","username":"ana","at_ms":7}"#
        );
        assert_eq!(Event::decode(&bytes).unwrap(), e);
        assert!(Event::decode(b"{\"type\":\"nope\"}").is_err());
    }

    #[test]
    fn social_events_round_trip_on_their_topic() {
        let comment = Event::CommentPosted {
            comment_id: Id(5),
            video_id: Id(4),
            video_author: Id(3),
            author: Id(2),
            parent_id: Some(Id(1)),
            reply_to: Some(Id(6)),
            reply_to_author: Some(Id(7)),
            at_ms: 9,
        };
        let share = Event::VideoShared {
            video_id: Id(4),
            author: Id(3),
            user_id: Id(2),
            channel: None,
            at_ms: 9,
        };
        let like = Event::VideoLiked {
            video_id: Id(4),
            author: Id(3),
            user_id: Id(2),
            liked: true,
            at_ms: 9,
        };
        let follow =
            Event::UserFollowed { follower: Id(2), followee: Id(3), following: true, at_ms: 9 };
        for e in [comment, share, like, follow] {
            assert_eq!(e.topic(), SOCIAL_TOPIC);
            assert_eq!(e.at_ms(), 9);
            assert_eq!(Event::decode(&e.encode()).unwrap(), e);
        }
        let removed = Event::VideoRemoved {
            video_id: Id(4),
            author: Id(3),
            by: Id(2),
            reason: "deleted by creator".into(),
            at_ms: 9,
        };
        let updated = Event::VideoUpdated { video_id: Id(4), author: Id(3), at_ms: 9 };
        for e in [removed, updated] {
            assert_eq!(e.topic(), "videos");
            assert_eq!(e.at_ms(), 9);
            assert_eq!(Event::decode(&e.encode()).unwrap(), e);
        }
    }
}
