//! The platform's events: everything another component reacts to is one of these, appended to
//! the event log. The log itself stores opaque bytes; this module owns the encoding.

use serde::{Deserialize, Serialize};

use crate::error::CoreError;
use crate::id::Id;

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
            | Event::VideoRejected { .. } => "videos",
            Event::UploadCompleted { .. } => "uploads",
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
            | Event::UploadCompleted { at_ms, .. } => *at_ms,
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
}
