//! Stories (F6.6): the live stories of the accounts a viewer follows, an author's live
//! stories in watch order, and per-viewer progress (`story_progress`).
//!
//! A story is a row of `videos` with `kind = 'story'`; it is live while it is published,
//! public and `now < expires_at_ms`. Every read takes `now` from the caller (the app clock),
//! so expiry is exact without a background job. Watch order is the story id (time-ordered):
//! a viewer's progress for an author is the newest story id seen, and a story is unseen when
//! its id is above it. Nothing here counts rows in SQL: the rows read are the bounded set
//! of live stories (at most a day's worth per followed author), grouped and counted here.

use std::collections::HashMap;

use quicktok_core::Id;

use crate::error::{Result, db};
use crate::store::{MetaStore, with_pool};
use crate::videos::{Video, VideoRow, sorted};

/// One followed author with unseen live stories, for the viewer's story row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorStories {
    pub author_id: Id,
    pub username: String,
    /// Publication time of the author's newest live story (the row's order, newest first).
    pub latest_at_ms: i64,
    /// Live stories the viewer has not seen.
    pub unseen: u32,
    /// Live stories.
    pub total: u32,
    /// The first unseen story in watch order: where the viewer resumes.
    pub resume_from: Id,
}

// Every live story of every account `$1` follows, with the viewer's progress for its author,
// skipping authors blocked either way. The partial index on (author_id, expires_at_ms)
// serves the join per followee.
const LIVE_OF_FOLLOWED: &str = "SELECT v.id, v.author_id, v.published_at_ms, u.username, \
     p.last_seen_story_id \
     FROM follows f \
     JOIN videos v ON v.author_id = f.followee_id AND v.kind = 'story' \
         AND v.expires_at_ms > $2 AND v.status = 'published' AND NOT v.private \
     JOIN users u ON u.id = f.followee_id \
     LEFT JOIN story_progress p ON p.viewer_id = f.follower_id AND p.author_id = f.followee_id \
     WHERE f.follower_id = $1 \
       AND NOT EXISTS (SELECT 1 FROM blocks b \
           WHERE (b.blocker_id = $1 AND b.blocked_id = f.followee_id) \
              OR (b.blocker_id = f.followee_id AND b.blocked_id = $1))";

const LIVE_OF_AUTHOR: &str = "SELECT id, author_id, title, description, status, reason, \
     duration_ms, width, height, created_at_ms, published_at_ms, updated_at_ms, \
     archived_at_ms, last_play_ms, cover_blob_id, view_count, private, kind, expires_at_ms \
     FROM videos WHERE author_id = $1 AND kind = 'story' AND expires_at_ms > $2 \
       AND status = 'published' AND NOT private \
     ORDER BY id";

const PROGRESS: &str =
    "SELECT last_seen_story_id FROM story_progress WHERE viewer_id = $1 AND author_id = $2";

// Monotonic: the update applies only when the story is newer than the progress stored.
const MARK_SEEN: &str = "INSERT INTO story_progress \
     (viewer_id, author_id, last_seen_story_id, updated_at_ms) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (viewer_id, author_id) DO UPDATE \
     SET last_seen_story_id = excluded.last_seen_story_id, updated_at_ms = excluded.updated_at_ms \
     WHERE story_progress.last_seen_story_id < excluded.last_seen_story_id";

#[derive(sqlx::FromRow)]
struct LiveRow {
    id: i64,
    author_id: i64,
    published_at_ms: Option<i64>,
    username: String,
    last_seen_story_id: Option<i64>,
}

/// Repository for stories; get one from [`MetaStore::stories`].
#[derive(Debug, Clone, Copy)]
pub struct Stories<'a> {
    store: &'a MetaStore,
}

impl<'a> Stories<'a> {
    pub(crate) fn new(store: &'a MetaStore) -> Self {
        Stories { store }
    }

    /// The accounts `viewer` follows (not blocked either way) that have a live story at
    /// `now_ms` the viewer has not seen, newest first by their latest live story's
    /// publication (then by author id, descending). One query; the counts are made here.
    pub async fn unseen_authors(&self, viewer: Id, now_ms: i64) -> Result<Vec<AuthorStories>> {
        let rows = with_pool!(self.store, |pool| {
            sqlx::query_as::<_, LiveRow>(LIVE_OF_FOLLOWED)
                .bind(viewer.as_i64())
                .bind(now_ms)
                .fetch_all(pool)
                .await
        })
        .map_err(db)?;
        Ok(group_unseen(rows))
    }

    /// `author`'s live stories at `now_ms`, oldest first (watch order), with their tags.
    pub async fn live_of(&self, author: Id, now_ms: i64) -> Result<Vec<Video>> {
        let rows = with_pool!(self.store, |pool| {
            sqlx::query_as::<_, VideoRow>(LIVE_OF_AUTHOR)
                .bind(author.as_i64())
                .bind(now_ms)
                .fetch_all(pool)
                .await
        })
        .map_err(db)?;
        // Stories seldom carry tags; one lookup per story would still be bounded, but the
        // videos repository's batch lookup is one query.
        let ids: Vec<Id> = rows.iter().map(|r| Id::from_i64(r.id)).collect();
        let mut tags = self.store.videos().tags_of_ids(&ids).await?;
        rows.into_iter()
            .map(|row| {
                let own = tags.remove(&row.id).unwrap_or_default();
                row.into_video(sorted(own))
            })
            .collect()
    }

    /// The newest story of `author` that `viewer` has seen, if any.
    pub async fn progress(&self, viewer: Id, author: Id) -> Result<Option<Id>> {
        let found: Option<i64> = with_pool!(self.store, |pool| {
            sqlx::query_scalar(PROGRESS)
                .bind(viewer.as_i64())
                .bind(author.as_i64())
                .fetch_optional(pool)
                .await
        })
        .map_err(db)?;
        Ok(found.map(Id::from_i64))
    }

    /// Records that `viewer` has seen `author`'s story `story` (and so every earlier one).
    /// Progress never moves backwards: an older story, or the same one again, changes
    /// nothing. Returns whether the progress moved.
    pub async fn mark_seen(&self, viewer: Id, author: Id, story: Id, now_ms: i64) -> Result<bool> {
        let moved = with_pool!(self.store, |pool| {
            sqlx::query(MARK_SEEN)
                .bind(viewer.as_i64())
                .bind(author.as_i64())
                .bind(story.as_i64())
                .bind(now_ms)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })
        .map_err(db)?;
        Ok(moved > 0)
    }
}

/// Groups live story rows by author into the story row: only authors with an unseen story,
/// newest first.
fn group_unseen(rows: Vec<LiveRow>) -> Vec<AuthorStories> {
    let mut by_author: HashMap<i64, AuthorStories> = HashMap::new();
    for row in rows {
        let seen_up_to = row.last_seen_story_id.unwrap_or(i64::MIN);
        let unseen = row.id > seen_up_to;
        let published = row.published_at_ms.unwrap_or_default();
        let entry = by_author.entry(row.author_id).or_insert_with(|| AuthorStories {
            author_id: Id::from_i64(row.author_id),
            username: row.username,
            latest_at_ms: published,
            unseen: 0,
            total: 0,
            // Replaced by the first unseen story below; authors without one are dropped.
            resume_from: Id::from_i64(i64::MAX),
        });
        entry.total += 1;
        entry.latest_at_ms = entry.latest_at_ms.max(published);
        if unseen {
            entry.unseen += 1;
            entry.resume_from = entry.resume_from.min(Id::from_i64(row.id));
        }
    }
    let mut out: Vec<AuthorStories> = by_author.into_values().filter(|a| a.unseen > 0).collect();
    out.sort_by_key(|a| std::cmp::Reverse((a.latest_at_ms, a.author_id)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, author: i64, at: i64, seen: Option<i64>) -> LiveRow {
        LiveRow {
            id,
            author_id: author,
            published_at_ms: Some(at),
            username: format!("u{author}"),
            last_seen_story_id: seen,
        }
    }

    #[test]
    fn groups_counts_and_orders() {
        let rows = vec![
            row(12, 1, 120, Some(11)),
            row(11, 1, 110, Some(11)),
            row(13, 1, 130, Some(11)),
            row(20, 2, 125, None),
            row(30, 3, 300, Some(30)),
        ];
        let got = group_unseen(rows);
        let summary: Vec<_> = got
            .iter()
            .map(|a| (a.author_id.as_i64(), a.latest_at_ms, a.unseen, a.total, a.resume_from))
            .collect();
        assert_eq!(
            summary,
            [(1, 130, 2, 3, Id::from_i64(12)), (2, 125, 1, 1, Id::from_i64(20))],
            "author 3 has seen everything; author 1's latest is newest"
        );
    }
}
