//! The `videos` and `video_tags` tables: a video's metadata, lifecycle status, archive flag,
//! cover and view count, its tags, and the listings built on them (an author's videos, the
//! latest published videos, published videos with a tag).
//!
//! Listings are newest first with keyset pagination on the (time-ordered) id: pass the last
//! id of one page as `before` to get the next.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use quicktok_core::Id;
use serde::{Deserialize, Serialize};

use crate::error::{MetaError, Result, db, is_foreign_key_violation, unique_violation};
use crate::read_conns::{all, params_of, with_read};
use crate::store::{MetaStore, with_pool};

/// Where a video is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VideoStatus {
    /// Created; the file is still being uploaded.
    Uploading,
    /// Uploaded; transcoding and checks are running.
    Processing,
    /// Visible to everyone.
    Published,
    /// Failed processing or checks (see the reason).
    Rejected,
    /// Held for manual moderation.
    Review,
    /// Taken down after publication (see the reason).
    Removed,
}

impl VideoStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [VideoStatus; 6] = [
        VideoStatus::Uploading,
        VideoStatus::Processing,
        VideoStatus::Published,
        VideoStatus::Rejected,
        VideoStatus::Review,
        VideoStatus::Removed,
    ];

    /// The stored (and serialised) form.
    pub fn as_str(self) -> &'static str {
        match self {
            VideoStatus::Uploading => "uploading",
            VideoStatus::Processing => "processing",
            VideoStatus::Published => "published",
            VideoStatus::Rejected => "rejected",
            VideoStatus::Review => "review",
            VideoStatus::Removed => "removed",
        }
    }
}

impl fmt::Display for VideoStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not the stored form of any [`VideoStatus`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown video status {0:?}")]
pub struct ParseVideoStatusError(pub String);

impl FromStr for VideoStatus {
    type Err = ParseVideoStatusError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        VideoStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| ParseVideoStatusError(s.chars().take(32).collect()))
    }
}

/// What a video is: an ordinary video, or a story (at most a few seconds long, visible to
/// everyone but its author only until `expires_at_ms`; never in the public listings).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VideoKind {
    #[default]
    Video,
    Story,
}

impl VideoKind {
    /// The stored (and serialised) form.
    pub fn as_str(self) -> &'static str {
        match self {
            VideoKind::Video => "video",
            VideoKind::Story => "story",
        }
    }
}

impl fmt::Display for VideoKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not the stored form of any [`VideoKind`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown video kind {0:?}")]
pub struct ParseVideoKindError(pub String);

impl FromStr for VideoKind {
    type Err = ParseVideoKindError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [VideoKind::Video, VideoKind::Story]
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or_else(|| ParseVideoKindError(s.chars().take(32).collect()))
    }
}

/// A stored video.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Video {
    pub id: Id,
    pub author_id: Id,
    pub title: String,
    pub description: String,
    pub status: VideoStatus,
    /// Why the video was rejected or removed, when it was.
    pub reason: Option<String>,
    pub duration_ms: Option<i64>,
    pub width: Option<i32>,
    pub height: Option<i32>,
    /// Distinct tags, sorted (by bytes, the same on every backend).
    pub tags: Vec<String>,
    pub created_at_ms: i64,
    /// When the video was first published; kept if it is later removed or republished.
    pub published_at_ms: Option<i64>,
    pub updated_at_ms: i64,
    /// When the creator archived the video (its media goes to cold storage); `None` while
    /// it is not archived.
    pub archived_at_ms: Option<i64>,
    /// The latest play recorded by [`Plays::record`](crate::Plays::record), if any.
    pub last_play_ms: Option<i64>,
    /// The blob store's id of the chosen cover image, once there is one.
    pub cover_blob_id: Option<Id>,
    /// Only the author (and admins) may see or play it; public listings leave it out.
    pub private: bool,
    /// Every play recorded by [`Plays::record`](crate::Plays::record), all time (saturating
    /// at `i64::MAX`).
    pub view_count: i64,
    /// A video or a story.
    pub kind: VideoKind,
    /// A story's end: it is live while the clock is below this (set when it is first
    /// published); `None` for videos and unpublished stories.
    pub expires_at_ms: Option<i64>,
}

impl Video {
    /// A story whose time is over at `now_ms` (expiry is exact: live at `expires_at_ms - 1`,
    /// gone at `expires_at_ms`). Ordinary videos never expire.
    pub fn expired_at(&self, now_ms: i64) -> bool {
        self.kind == VideoKind::Story && self.expires_at_ms.is_some_and(|end| now_ms >= end)
    }

    /// Whether public lists, feeds, search and recommendations may show it: published,
    /// public, and a lasting video (stories have their own row).
    pub fn is_listable(&self) -> bool {
        self.status == VideoStatus::Published && !self.private && self.kind == VideoKind::Video
    }
}

/// What [`Videos::create`] needs. The video starts out [`VideoStatus::Uploading`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVideo {
    pub id: Id,
    pub author_id: Id,
    pub title: String,
    pub description: String,
    /// Stored as given (normalising them is the caller's job); duplicates are dropped.
    pub tags: Vec<String>,
    pub created_at_ms: i64,
}

#[derive(sqlx::FromRow)]
pub(crate) struct VideoRow {
    pub(crate) id: i64,
    author_id: i64,
    title: String,
    description: String,
    status: String,
    reason: Option<String>,
    duration_ms: Option<i64>,
    width: Option<i32>,
    height: Option<i32>,
    created_at_ms: i64,
    published_at_ms: Option<i64>,
    updated_at_ms: i64,
    archived_at_ms: Option<i64>,
    last_play_ms: Option<i64>,
    cover_blob_id: Option<i64>,
    private: bool,
    view_count: i64,
    kind: String,
    expires_at_ms: Option<i64>,
}

impl VideoRow {
    /// A row of the hot-read connections, columns in the order every `SELECT` of videos
    /// here lists them.
    pub(crate) fn from_sqlite(r: &rusqlite::Row<'_>) -> rusqlite::Result<VideoRow> {
        Ok(VideoRow {
            id: r.get(0)?,
            author_id: r.get(1)?,
            title: r.get(2)?,
            description: r.get(3)?,
            status: r.get(4)?,
            reason: r.get(5)?,
            duration_ms: r.get(6)?,
            width: r.get(7)?,
            height: r.get(8)?,
            created_at_ms: r.get(9)?,
            published_at_ms: r.get(10)?,
            updated_at_ms: r.get(11)?,
            archived_at_ms: r.get(12)?,
            last_play_ms: r.get(13)?,
            cover_blob_id: r.get(14)?,
            view_count: r.get(15)?,
            private: r.get(16)?,
            kind: r.get(17)?,
            expires_at_ms: r.get(18)?,
        })
    }

    pub(crate) fn into_video(self, tags: Vec<String>) -> Result<Video> {
        let status =
            self.status.parse::<VideoStatus>().map_err(|e| db(sqlx::Error::Decode(Box::new(e))))?;
        let kind =
            self.kind.parse::<VideoKind>().map_err(|e| db(sqlx::Error::Decode(Box::new(e))))?;
        Ok(Video {
            id: Id::from_i64(self.id),
            author_id: Id::from_i64(self.author_id),
            title: self.title,
            description: self.description,
            status,
            reason: self.reason,
            duration_ms: self.duration_ms,
            width: self.width,
            height: self.height,
            tags,
            created_at_ms: self.created_at_ms,
            published_at_ms: self.published_at_ms,
            updated_at_ms: self.updated_at_ms,
            archived_at_ms: self.archived_at_ms,
            last_play_ms: self.last_play_ms,
            cover_blob_id: self.cover_blob_id.map(Id::from_i64),
            private: self.private,
            view_count: self.view_count,
            kind,
            expires_at_ms: self.expires_at_ms,
        })
    }
}

const VIDEO_BY_ID: &str = "SELECT id, author_id, title, description, status, reason, \
     duration_ms, width, height, created_at_ms, published_at_ms, updated_at_ms, \
     archived_at_ms, last_play_ms, cover_blob_id, view_count, private, kind, expires_at_ms \
     FROM videos WHERE id = $1";

const INSERT_VIDEO: &str = "INSERT INTO videos \
     (id, author_id, title, description, status, created_at_ms, updated_at_ms) \
     VALUES ($1, $2, $3, $4, $5, $6, $6)";
const INSERT_TAG: &str = "INSERT INTO video_tags (video_id, tag) VALUES ($1, $2)";
const DELETE_TAGS: &str = "DELETE FROM video_tags WHERE video_id = $1";
const TAGS_OF: &str = "SELECT tag FROM video_tags WHERE video_id = $1";

// `published_at_ms` is set on the first move to published only; `$1` is the new status.
const SET_STATUS: &str = "UPDATE videos SET status = $1, reason = $2, updated_at_ms = $3, \
     published_at_ms = COALESCE(published_at_ms, CASE WHEN $1 = 'published' THEN $3 END) \
     WHERE id = $4 \
     RETURNING id, author_id, title, description, status, reason, duration_ms, \
     width, height, created_at_ms, published_at_ms, updated_at_ms, archived_at_ms, \
     last_play_ms, cover_blob_id, view_count, private, kind, expires_at_ms";
const SET_MEDIA_INFO: &str = "UPDATE videos \
     SET duration_ms = $1, width = $2, height = $3, updated_at_ms = $4 WHERE id = $5";
// Archiving an archived video keeps the first archive time (a retried request does not
// reset it); unarchiving clears it.
const ARCHIVE: &str = "UPDATE videos \
     SET archived_at_ms = COALESCE(archived_at_ms, $1), updated_at_ms = $1 WHERE id = $2 \
     RETURNING id, author_id, title, description, status, reason, duration_ms, \
     width, height, created_at_ms, published_at_ms, updated_at_ms, archived_at_ms, \
     last_play_ms, cover_blob_id, view_count, private, kind, expires_at_ms";
const UNARCHIVE: &str = "UPDATE videos \
     SET archived_at_ms = NULL, updated_at_ms = $1 WHERE id = $2 \
     RETURNING id, author_id, title, description, status, reason, duration_ms, \
     width, height, created_at_ms, published_at_ms, updated_at_ms, archived_at_ms, \
     last_play_ms, cover_blob_id, view_count, private, kind, expires_at_ms";
const SET_KIND: &str = "UPDATE videos SET kind = $1, updated_at_ms = $2 WHERE id = $3";
// Publication as in SET_STATUS; a story's expiry is fixed from its first publication time
// (`$2` = its lifetime) and kept if it is removed and republished. SET reads the old row.
const PUBLISH: &str = "UPDATE videos SET status = 'published', reason = NULL, \
     updated_at_ms = $1, published_at_ms = COALESCE(published_at_ms, $1), \
     expires_at_ms = CASE WHEN kind = 'story' \
         THEN COALESCE(expires_at_ms, COALESCE(published_at_ms, $1) + $2) END \
     WHERE id = $3 \
     RETURNING id, author_id, title, description, status, reason, duration_ms, \
     width, height, created_at_ms, published_at_ms, updated_at_ms, archived_at_ms, \
     last_play_ms, cover_blob_id, view_count, private, kind, expires_at_ms";
const SET_PRIVATE: &str = "UPDATE videos SET private = $1, updated_at_ms = $2 WHERE id = $3";
const SET_COVER: &str = "UPDATE videos SET cover_blob_id = $1, updated_at_ms = $2 WHERE id = $3";
const TOUCH: &str = "UPDATE videos SET updated_at_ms = $1 WHERE id = $2";
const SET_TEXT: &str =
    "UPDATE videos SET title = $1, description = $2, updated_at_ms = $3 WHERE id = $4";

// Two variants per listing rather than `($2 IS NULL OR id < $2)`, which keeps PostgreSQL's
// generic plans on the index range scan.
const BY_AUTHOR: &str = "SELECT id, author_id, title, description, status, reason, \
     duration_ms, width, height, created_at_ms, published_at_ms, updated_at_ms, \
     archived_at_ms, last_play_ms, cover_blob_id, view_count, private, kind, expires_at_ms \
     FROM videos WHERE author_id = $1 ORDER BY id DESC LIMIT $2";
const BY_AUTHOR_BEFORE: &str = "SELECT id, author_id, title, description, status, reason, \
     duration_ms, width, height, created_at_ms, published_at_ms, updated_at_ms, \
     archived_at_ms, last_play_ms, cover_blob_id, view_count, private, kind, expires_at_ms \
     FROM videos WHERE author_id = $1 AND id < $3 ORDER BY id DESC LIMIT $2";
const STORIES_BY_AUTHOR: &str = "SELECT id, author_id, title, description, status, reason, \
     duration_ms, width, height, created_at_ms, published_at_ms, updated_at_ms, \
     archived_at_ms, last_play_ms, cover_blob_id, view_count, private, kind, expires_at_ms \
     FROM videos WHERE author_id = $1 AND kind = 'story' ORDER BY id DESC LIMIT $2";
const STORIES_BY_AUTHOR_BEFORE: &str = "SELECT id, author_id, title, description, status, \
     reason, duration_ms, width, height, created_at_ms, published_at_ms, updated_at_ms, \
     archived_at_ms, last_play_ms, cover_blob_id, view_count, private, kind, expires_at_ms \
     FROM videos WHERE author_id = $1 AND kind = 'story' AND id < $3 \
     ORDER BY id DESC LIMIT $2";
const PUBLISHED_BY_TAG: &str = "SELECT v.id, v.author_id, v.title, v.description, v.status, \
     v.reason, v.duration_ms, v.width, v.height, v.created_at_ms, v.published_at_ms, \
     v.updated_at_ms, v.archived_at_ms, v.last_play_ms, v.cover_blob_id, v.view_count, v.private, \
     v.kind, v.expires_at_ms \
     FROM video_tags t JOIN videos v ON v.id = t.video_id \
     WHERE t.tag = $1 AND v.status = 'published' AND NOT v.private AND v.kind = 'video' ORDER BY t.video_id DESC LIMIT $2";
const PUBLISHED_BY_TAG_BEFORE: &str = "SELECT v.id, v.author_id, v.title, v.description, \
     v.status, v.reason, v.duration_ms, v.width, v.height, v.created_at_ms, \
     v.published_at_ms, v.updated_at_ms, v.archived_at_ms, v.last_play_ms, v.cover_blob_id, \
     v.view_count, v.private, v.kind, v.expires_at_ms \
     FROM video_tags t JOIN videos v ON v.id = t.video_id \
     WHERE t.tag = $1 AND v.status = 'published' AND NOT v.private AND v.kind = 'video' AND t.video_id < $3 \
     ORDER BY t.video_id DESC LIMIT $2";
// `$1` is the status, so one pair of queries serves any status (only published is offered).
const BY_STATUS: &str = "SELECT id, author_id, title, description, status, reason, \
     duration_ms, width, height, created_at_ms, published_at_ms, updated_at_ms, \
     archived_at_ms, last_play_ms, cover_blob_id, view_count, private, kind, expires_at_ms \
     FROM videos WHERE status = $1 AND NOT private AND kind = 'video' ORDER BY id DESC LIMIT $2";
const BY_STATUS_BEFORE: &str = "SELECT id, author_id, title, description, status, reason, \
     duration_ms, width, height, created_at_ms, published_at_ms, updated_at_ms, \
     archived_at_ms, last_play_ms, cover_blob_id, view_count, private, kind, expires_at_ms \
     FROM videos WHERE status = $1 AND NOT private AND kind = 'video' AND id < $3 ORDER BY id DESC LIMIT $2";

/// How many ids one `IN (...)` tag lookup binds at most (well under both backends' limits
/// on bound parameters).
const TAG_LOOKUP_CHUNK: usize = 500;

/// `NotFound` when an update by id touched no row.
fn one_row(affected: std::result::Result<u64, sqlx::Error>) -> Result<()> {
    match affected.map_err(db)? {
        0 => Err(MetaError::NotFound),
        _ => Ok(()),
    }
}

/// Repository for videos; get one from [`MetaStore::videos`].
#[derive(Debug, Clone, Copy)]
pub struct Videos<'a> {
    store: &'a MetaStore,
}

impl<'a> Videos<'a> {
    pub(crate) fn new(store: &'a MetaStore) -> Self {
        Videos { store }
    }

    /// Creates a video in status [`VideoStatus::Uploading`], with its tags, in one
    /// transaction. [`MetaError::Conflict`] (`"id"`) if the id is taken,
    /// [`MetaError::NotFound`] if the author does not exist.
    pub async fn create(&self, new: NewVideo) -> Result<Video> {
        let tags = distinct_sorted(&new.tags);
        let id = new.id.as_i64();
        let status = VideoStatus::Uploading;
        let result = with_pool!(self.store, |pool| {
            async {
                let mut tx = pool.begin().await?;
                sqlx::query(INSERT_VIDEO)
                    .bind(id)
                    .bind(new.author_id.as_i64())
                    .bind(&new.title)
                    .bind(&new.description)
                    .bind(status.as_str())
                    .bind(new.created_at_ms)
                    .execute(&mut *tx)
                    .await?;
                for tag in &tags {
                    sqlx::query(INSERT_TAG).bind(id).bind(tag).execute(&mut *tx).await?;
                }
                tx.commit().await
            }
            .await
        });
        match result {
            Ok(()) => {}
            // Tags are distinct, so the video's primary key is the only unique that can clash.
            Err(e) if unique_violation(&e).is_some() => {
                return Err(MetaError::Conflict { what: "id" });
            }
            Err(e) if is_foreign_key_violation(&e) => return Err(MetaError::NotFound),
            Err(e) => return Err(db(e)),
        }
        Ok(Video {
            id: new.id,
            author_id: new.author_id,
            title: new.title,
            description: new.description,
            status,
            reason: None,
            duration_ms: None,
            width: None,
            height: None,
            tags,
            created_at_ms: new.created_at_ms,
            published_at_ms: None,
            updated_at_ms: new.created_at_ms,
            archived_at_ms: None,
            last_play_ms: None,
            cover_blob_id: None,
            view_count: 0,
            private: false,
            kind: VideoKind::Video,
            expires_at_ms: None,
        })
    }

    /// The video with this id, with its tags, if any.
    pub async fn by_id(&self, id: Id) -> Result<Option<Video>> {
        let found = with_pool!(self.store, |pool| {
            async {
                let Some(row) = sqlx::query_as::<_, VideoRow>(VIDEO_BY_ID)
                    .bind(id.as_i64())
                    .fetch_optional(pool)
                    .await?
                else {
                    return Ok(None);
                };
                let tags: Vec<String> =
                    sqlx::query_scalar(TAGS_OF).bind(id.as_i64()).fetch_all(pool).await?;
                Ok::<_, sqlx::Error>(Some((row, tags)))
            }
            .await
        });
        match found.map_err(db)? {
            Some((row, tags)) => row.into_video(sorted(tags)).map(Some),
            None => Ok(None),
        }
    }

    /// The videos with these ids that exist, with their tags, keyed by id (one read per
    /// `IN_CHUNK` ids, for pages built from ids found elsewhere: feeds, recommendations).
    pub async fn by_ids(&self, ids: &[Id]) -> Result<HashMap<Id, Video>> {
        let mut wanted: Vec<i64> = ids.iter().map(|id| id.as_i64()).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let read_rows = async {
            let mut rows = Vec::with_capacity(wanted.len());
            for chunk in wanted.chunks(crate::store::IN_CHUNK) {
                let placeholders = crate::store::in_placeholders(chunk.len());
                let sql = format!(
                    "SELECT id, author_id, title, description, status, reason, duration_ms, \
                     width, height, created_at_ms, published_at_ms, updated_at_ms, \
                     archived_at_ms, last_play_ms, cover_blob_id, view_count, private, kind, \
                     expires_at_ms FROM videos WHERE id IN ({placeholders})"
                );
                let found = with_read!(
                    self.store,
                    |c| all(c, &sql, &params_of(chunk), VideoRow::from_sqlite),
                    |pool| {
                        let mut query = sqlx::query_as::<_, VideoRow>(&sql);
                        for id in chunk {
                            query = query.bind(*id);
                        }
                        query.fetch_all(pool).await
                    }
                )?;
                rows.extend(found);
            }
            Ok::<_, MetaError>(rows)
        };
        // The tags need only the ids: read alongside the rows, not after them.
        let (rows, mut tags) = tokio::try_join!(read_rows, self.tags_of(wanted.iter().copied()))?;
        rows.into_iter()
            .map(|row| {
                let own = tags.remove(&row.id).unwrap_or_default();
                row.into_video(sorted(own)).map(|v| (v.id, v))
            })
            .collect()
    }

    /// Moves a video to `status`, replacing its reason (`None` clears it), and returns it as
    /// now stored. The first move to [`VideoStatus::Published`] sets `published_at_ms`; later
    /// ones keep it. No transition is refused here: the lifecycle rules are the caller's.
    /// [`MetaError::NotFound`] if there is no such video.
    pub async fn set_status(
        &self,
        id: Id,
        status: VideoStatus,
        reason: Option<&str>,
        now_ms: i64,
    ) -> Result<Video> {
        let updated = with_pool!(self.store, |pool| {
            async {
                let mut tx = pool.begin().await?;
                let Some(row) = sqlx::query_as::<_, VideoRow>(SET_STATUS)
                    .bind(status.as_str())
                    .bind(reason)
                    .bind(now_ms)
                    .bind(id.as_i64())
                    .fetch_optional(&mut *tx)
                    .await?
                else {
                    return Ok(None);
                };
                let tags: Vec<String> =
                    sqlx::query_scalar(TAGS_OF).bind(id.as_i64()).fetch_all(&mut *tx).await?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>(Some((row, tags)))
            }
            .await
        });
        match updated.map_err(db)? {
            Some((row, tags)) => row.into_video(sorted(tags)),
            None => Err(MetaError::NotFound),
        }
    }

    /// Archives (`archived = true`) or unarchives a video and returns it as now stored.
    /// Archiving sets `archived_at_ms` to `now_ms`, unless the video is archived already
    /// (then the first archive time stays); unarchiving clears it. Either way
    /// `updated_at_ms` becomes `now_ms`. Moving the media between storage classes is the
    /// tiering worker's job. [`MetaError::NotFound`] if there is no such video.
    pub async fn set_archived(&self, id: Id, archived: bool, now_ms: i64) -> Result<Video> {
        let sql = if archived { ARCHIVE } else { UNARCHIVE };
        let changed = with_pool!(self.store, |pool| {
            sqlx::query(sql)
                .bind(now_ms)
                .bind(id.as_i64())
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })
        .map_err(db)?;
        if changed == 0 {
            return Err(MetaError::NotFound);
        }
        // A concurrent delete between the two statements reads as NotFound, as it should.
        self.by_id(id).await?.ok_or(MetaError::NotFound)
    }

    /// Records what processing found out about the media. [`MetaError::NotFound`] if there
    /// is no such video.
    pub async fn set_media_info(
        &self,
        id: Id,
        duration_ms: i64,
        width: i32,
        height: i32,
        now_ms: i64,
    ) -> Result<()> {
        let done = with_pool!(self.store, |pool| {
            sqlx::query(SET_MEDIA_INFO)
                .bind(duration_ms)
                .bind(width)
                .bind(height)
                .bind(now_ms)
                .bind(id.as_i64())
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        });
        one_row(done)
    }

    /// Makes a video a story or an ordinary video (set at upload, before processing).
    /// [`MetaError::NotFound`] if there is no such video.
    pub async fn set_kind(&self, id: Id, kind: VideoKind, now_ms: i64) -> Result<()> {
        let done = with_pool!(self.store, |pool| {
            sqlx::query(SET_KIND)
                .bind(kind.as_str())
                .bind(now_ms)
                .bind(id.as_i64())
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        });
        one_row(done)
    }

    /// Publishes a video (as [`Videos::set_status`] to [`VideoStatus::Published`]) and, for a
    /// story, fixes its expiry at its first publication time plus `story_lifetime_ms` in the
    /// same statement, so a story is never published without one. Returns it as now stored;
    /// [`MetaError::NotFound`] if there is no such video.
    pub async fn publish(&self, id: Id, now_ms: i64, story_lifetime_ms: i64) -> Result<Video> {
        let updated = with_pool!(self.store, |pool| {
            async {
                let mut tx = pool.begin().await?;
                let Some(row) = sqlx::query_as::<_, VideoRow>(PUBLISH)
                    .bind(now_ms)
                    .bind(story_lifetime_ms)
                    .bind(id.as_i64())
                    .fetch_optional(&mut *tx)
                    .await?
                else {
                    return Ok(None);
                };
                let tags: Vec<String> =
                    sqlx::query_scalar(TAGS_OF).bind(id.as_i64()).fetch_all(&mut *tx).await?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>(Some((row, tags)))
            }
            .await
        });
        match updated.map_err(db)? {
            Some((row, tags)) => row.into_video(sorted(tags)),
            None => Err(MetaError::NotFound),
        }
    }

    /// Makes a video private (only its author may see or play it) or public again.
    /// [`MetaError::NotFound`] if there is no such video.
    pub async fn set_private(&self, id: Id, private: bool, now_ms: i64) -> Result<()> {
        let done = with_pool!(self.store, |pool| {
            sqlx::query(SET_PRIVATE)
                .bind(private)
                .bind(now_ms)
                .bind(id.as_i64())
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        });
        one_row(done)
    }

    /// Sets (or, with `None`, clears) a video's cover image, the blob store's id of it, and
    /// sets `updated_at_ms` to `now_ms`. [`MetaError::NotFound`] if there is no such video.
    pub async fn set_cover(&self, id: Id, blob_id: Option<Id>, now_ms: i64) -> Result<()> {
        let done = with_pool!(self.store, |pool| {
            sqlx::query(SET_COVER)
                .bind(blob_id.map(Id::as_i64))
                .bind(now_ms)
                .bind(id.as_i64())
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        });
        one_row(done)
    }

    /// Replaces a video's title, description and tags (stored as given, duplicates dropped)
    /// in one transaction, for a creator's edit. [`MetaError::NotFound`] if there is no such
    /// video.
    pub async fn set_details(
        &self,
        id: Id,
        title: &str,
        description: &str,
        tags: &[String],
        now_ms: i64,
    ) -> Result<()> {
        let tags = distinct_sorted(tags);
        let done = with_pool!(self.store, |pool| {
            async {
                let mut tx = pool.begin().await?;
                // Writing first takes the write lock up front and tells whether it exists.
                let touched = sqlx::query(SET_TEXT)
                    .bind(title)
                    .bind(description)
                    .bind(now_ms)
                    .bind(id.as_i64())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if touched == 0 {
                    return Ok(false);
                }
                sqlx::query(DELETE_TAGS).bind(id.as_i64()).execute(&mut *tx).await?;
                for tag in &tags {
                    sqlx::query(INSERT_TAG).bind(id.as_i64()).bind(tag).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok::<_, sqlx::Error>(true)
            }
            .await
        });
        match done.map_err(db)? {
            true => Ok(()),
            false => Err(MetaError::NotFound),
        }
    }

    /// Replaces a video's candidate covers (image blob ids, in the pipeline's order) in one
    /// transaction. [`MetaError::NotFound`] if there is no such video.
    pub async fn set_cover_candidates(&self, id: Id, blobs: &[Id], now_ms: i64) -> Result<()> {
        let done = with_pool!(self.store, |pool| {
            async {
                let mut tx = pool.begin().await?;
                // Write first (see `set_tags`): the lock, and whether the video exists.
                let touched = sqlx::query(TOUCH)
                    .bind(now_ms)
                    .bind(id.as_i64())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if touched == 0 {
                    return Ok(false);
                }
                sqlx::query("DELETE FROM video_covers WHERE video_id = $1")
                    .bind(id.as_i64())
                    .execute(&mut *tx)
                    .await?;
                for (idx, blob) in blobs.iter().enumerate() {
                    sqlx::query(
                        "INSERT INTO video_covers (video_id, idx, blob_id) VALUES ($1, $2, $3)",
                    )
                    .bind(id.as_i64())
                    .bind(idx as i32)
                    .bind(blob.as_i64())
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok::<_, sqlx::Error>(true)
            }
            .await
        });
        match done.map_err(db)? {
            true => Ok(()),
            false => Err(MetaError::NotFound),
        }
    }

    /// The candidate covers of several videos at once, each list in the pipeline's order
    /// (videos without candidates are absent).
    pub async fn cover_candidates(&self, ids: &[Id]) -> Result<HashMap<Id, Vec<Id>>> {
        let mut out: HashMap<Id, Vec<Id>> = HashMap::new();
        for chunk in ids.chunks(crate::store::IN_CHUNK) {
            let placeholders = crate::store::in_placeholders(chunk.len());
            let sql = format!(
                "SELECT video_id, blob_id FROM video_covers WHERE video_id IN ({placeholders}) \
                 ORDER BY video_id, idx"
            );
            let keys: Vec<i64> = chunk.iter().map(|id| id.as_i64()).collect();
            let rows: Vec<(i64, i64)> = with_read!(
                self.store,
                |c| all(c, &sql, &params_of(&keys), |r| Ok((r.get(0)?, r.get(1)?))),
                |pool| {
                    let mut query = sqlx::query_as::<_, (i64, i64)>(&sql);
                    for id in &keys {
                        query = query.bind(*id);
                    }
                    query.fetch_all(pool).await
                }
            )?;
            for (video, blob) in rows {
                out.entry(Id::from_i64(video)).or_default().push(Id::from_i64(blob));
            }
        }
        Ok(out)
    }

    /// Replaces a video's tags (stored as given, duplicates dropped) in one transaction.
    /// [`MetaError::NotFound`] if there is no such video.
    pub async fn set_tags(&self, id: Id, tags: &[String], now_ms: i64) -> Result<()> {
        let tags = distinct_sorted(tags);
        let done = with_pool!(self.store, |pool| {
            async {
                let mut tx = pool.begin().await?;
                // Writing first takes SQLite's write lock up front (a read-then-write
                // transaction could fail to upgrade without waiting) and finds out whether
                // the video exists; PostgreSQL also locks the row against concurrent edits.
                let touched = sqlx::query(TOUCH)
                    .bind(now_ms)
                    .bind(id.as_i64())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if touched == 0 {
                    return Ok(false);
                }
                sqlx::query(DELETE_TAGS).bind(id.as_i64()).execute(&mut *tx).await?;
                for tag in &tags {
                    sqlx::query(INSERT_TAG).bind(id.as_i64()).bind(tag).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok::<_, sqlx::Error>(true)
            }
            .await
        });
        match done.map_err(db)? {
            true => Ok(()),
            false => Err(MetaError::NotFound),
        }
    }

    /// An author's videos and stories in every status (the author's own list), newest first: at most `limit` of those with an
    /// id below `before` (all when `None`).
    pub async fn by_author(
        &self,
        author_id: Id,
        before: Option<Id>,
        limit: u32,
    ) -> Result<Vec<Video>> {
        let sql = if before.is_some() { BY_AUTHOR_BEFORE } else { BY_AUTHOR };
        self.list(sql, ListKey::Author(author_id.as_i64()), before, limit).await
    }

    /// An author's stories in every status, expired ones included (their archive), newest
    /// first: at most `limit` of those with an id below `before` (all when `None`).
    pub async fn stories_by_author(
        &self,
        author_id: Id,
        before: Option<Id>,
        limit: u32,
    ) -> Result<Vec<Video>> {
        let sql = if before.is_some() { STORIES_BY_AUTHOR_BEFORE } else { STORIES_BY_AUTHOR };
        self.list(sql, ListKey::Author(author_id.as_i64()), before, limit).await
    }

    /// Published public videos (not stories) carrying `tag` (compared exactly), newest first: at most `limit` of
    /// those with an id below `before` (all when `None`).
    pub async fn published_by_tag(
        &self,
        tag: &str,
        before: Option<Id>,
        limit: u32,
    ) -> Result<Vec<Video>> {
        let sql = if before.is_some() { PUBLISHED_BY_TAG_BEFORE } else { PUBLISHED_BY_TAG };
        self.list(sql, ListKey::Tag(tag), before, limit).await
    }

    /// Published public videos (not stories), newest first: at most `limit` of those with an id below `before`
    /// (all when `None`).
    pub async fn latest_published(&self, before: Option<Id>, limit: u32) -> Result<Vec<Video>> {
        let sql = if before.is_some() { BY_STATUS_BEFORE } else { BY_STATUS };
        self.list(sql, ListKey::Status(VideoStatus::Published), before, limit).await
    }

    /// Runs a listing query (`$1` = the key, `$2` = limit, `$3` = the `before` cursor when
    /// the query has one) and attaches each video's tags.
    async fn list(
        &self,
        sql: &str,
        key: ListKey<'_>,
        before: Option<Id>,
        limit: u32,
    ) -> Result<Vec<Video>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let rows = with_pool!(self.store, |pool| {
            let query = sqlx::query_as::<_, VideoRow>(sql);
            let query = match key {
                ListKey::Author(author_id) => query.bind(author_id),
                ListKey::Tag(tag) => query.bind(tag),
                ListKey::Status(status) => query.bind(status.as_str()),
            };
            let mut query = query.bind(i64::from(limit));
            if let Some(before) = before {
                query = query.bind(before.as_i64());
            }
            query.fetch_all(pool).await
        })
        .map_err(db)?;
        let mut tags = self.tags_of(rows.iter().map(|r| r.id)).await?;
        rows.into_iter()
            .map(|row| {
                let own = tags.remove(&row.id).unwrap_or_default();
                row.into_video(sorted(own))
            })
            .collect()
    }

    /// The tags of the videos `ids` at once, keyed by stored id.
    pub(crate) async fn tags_of_ids(&self, ids: &[Id]) -> Result<HashMap<i64, Vec<String>>> {
        self.tags_of(ids.iter().map(|id| id.as_i64())).await
    }

    /// The tags of several videos at once, keyed by stored id.
    async fn tags_of(&self, ids: impl Iterator<Item = i64>) -> Result<HashMap<i64, Vec<String>>> {
        let ids: Vec<i64> = ids.collect();
        let mut tags: HashMap<i64, Vec<String>> = HashMap::new();
        for chunk in ids.chunks(TAG_LOOKUP_CHUNK) {
            let placeholders = crate::store::in_placeholders(chunk.len());
            let sql =
                format!("SELECT video_id, tag FROM video_tags WHERE video_id IN ({placeholders})");
            let rows: Vec<(i64, String)> = with_read!(
                self.store,
                |c| all(c, &sql, &params_of(chunk), |r| Ok((r.get(0)?, r.get(1)?))),
                |pool| {
                    let mut query = sqlx::query_as::<_, (i64, String)>(&sql);
                    for id in chunk {
                        query = query.bind(*id);
                    }
                    query.fetch_all(pool).await
                }
            )?;
            for (video_id, tag) in rows {
                tags.entry(video_id).or_default().push(tag);
            }
        }
        Ok(tags)
    }
}

/// What a listing query's `$1` is bound to.
#[derive(Clone, Copy)]
enum ListKey<'k> {
    Author(i64),
    Tag(&'k str),
    Status(VideoStatus),
}

/// Byte-order sort, so both backends (whose collations differ) return the same order.
pub(crate) fn sorted(mut tags: Vec<String>) -> Vec<String> {
    tags.sort_unstable();
    tags
}

fn distinct_sorted(tags: &[String]) -> Vec<String> {
    let mut tags = sorted(tags.to_vec());
    tags.dedup();
    tags
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn status_text_forms_agree() {
        for status in VideoStatus::ALL {
            assert_eq!(status.as_str().parse::<VideoStatus>(), Ok(status));
            assert_eq!(status.to_string(), status.as_str());
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
            assert_eq!(serde_json::from_str::<VideoStatus>(&json).unwrap(), status);
        }
        for bad in ["Published", "deleted", ""] {
            assert_eq!(bad.parse::<VideoStatus>(), Err(ParseVideoStatusError(bad.into())));
        }
    }

    #[test]
    fn kind_text_forms_agree() {
        for kind in [VideoKind::Video, VideoKind::Story] {
            assert_eq!(kind.as_str().parse::<VideoKind>(), Ok(kind));
            assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{kind}\""));
        }
        assert_eq!("Story".parse::<VideoKind>(), Err(ParseVideoKindError("Story".into())));
        assert_eq!(VideoKind::default(), VideoKind::Video);
    }

    #[test]
    fn tags_are_deduplicated_in_byte_order() {
        let tags: Vec<String> = ["b", "B", "a", "b", "é", "e"].map(String::from).into();
        assert_eq!(distinct_sorted(&tags), ["B", "a", "b", "e", "é"]);
    }
}
