//! The `video_plays_hourly` table and `videos.last_play_ms` / `videos.view_count`: play
//! counts per video and hour, the input of blob tiering (hot, warm and cold storage classes
//! decided from recent plays and the creator's archive flag), and each video's all-time count.
//!
//! An hour is `floor(unix ms / 3 600 000)`. A consumer of the views topic adds plays in
//! batches ([`Plays::record`]), rows older than the longest window are pruned
//! ([`Plays::prune`]), and the daily tiering job reads one report row per video blob
//! ([`Plays::tiering_activity`]). The table has no foreign key to `videos`: counting plays
//! never waits on, or fails because of, a video being deleted; such rows age out.

use std::collections::BTreeMap;

use quicktok_core::Id;

use crate::error::{Result, db};
use crate::store::{MetaStore, with_pool};

/// One hour, in milliseconds: the width of a play-count bucket.
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// Plays of one video at one time, for [`Plays::record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlayDelta {
    pub video_id: Id,
    /// When the plays happened (Unix ms); picks the hourly bucket.
    pub at_ms: i64,
    pub plays: u64,
}

/// What tiering needs to know about one blob of a video (see [`Plays::tiering_activity`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobActivityRow {
    pub blob_id: Id,
    pub video_id: Id,
    /// The video's plays over the last 7 days (hourly buckets starting after `now - 7 d`).
    pub plays_7d: u64,
    /// The video's plays over the last day (hourly buckets starting after `now - 1 d`).
    pub plays_1d: u64,
    /// The video's latest recorded play, if any.
    pub last_play_ms: Option<i64>,
    /// When the blob was stored.
    pub created_at_ms: i64,
    /// The creator has archived the video.
    pub archived: bool,
}

#[derive(sqlx::FromRow)]
struct ActivityRow {
    blob_id: i64,
    video_id: i64,
    plays_7d: i64,
    plays_1d: i64,
    last_play_ms: Option<i64>,
    created_at_ms: i64,
    archived_at_ms: Option<i64>,
}

impl ActivityRow {
    fn into_row(self) -> Result<BlobActivityRow> {
        // Sums of stored (non-negative) counts; a negative one means corrupted data.
        let count = |n: i64| u64::try_from(n).map_err(|e| db(sqlx::Error::Decode(Box::new(e))));
        Ok(BlobActivityRow {
            blob_id: Id::from_i64(self.blob_id),
            video_id: Id::from_i64(self.video_id),
            plays_7d: count(self.plays_7d)?,
            plays_1d: count(self.plays_1d)?,
            last_play_ms: self.last_play_ms,
            created_at_ms: self.created_at_ms,
            archived: self.archived_at_ms.is_some(),
        })
    }
}

const ADD_PLAYS: &str = "INSERT INTO video_plays_hourly (video_id, hour, plays) \
     VALUES ($1, $2, $3) \
     ON CONFLICT (video_id, hour) DO UPDATE SET plays = video_plays_hourly.plays + excluded.plays";
// Not an edit of the video: `updated_at_ms` stays. `$1` is the latest play of the batch,
// `$3` the batch's plays of the video (at least 1); the count saturates at i64::MAX.
const ADD_TO_VIDEO: &str = "UPDATE videos SET \
     last_play_ms = CASE WHEN last_play_ms IS NULL OR last_play_ms < $1 THEN $1 \
         ELSE last_play_ms END, \
     view_count = CASE WHEN view_count > 9223372036854775807 - $3 THEN 9223372036854775807 \
         ELSE view_count + $3 END \
     WHERE id = $2";
const PRUNE: &str = "DELETE FROM video_plays_hourly WHERE hour < $1";
// `$1` / `$2`: the hour before the first one counted in the 7-day / 1-day window. PostgreSQL
// sums BIGINT into NUMERIC, hence the casts (a no-op on SQLite).
const TIERING_ACTIVITY: &str = "SELECT b.blob_id, b.video_id, b.created_at_ms, \
     COALESCE(p.plays_7d, 0) AS plays_7d, COALESCE(p.plays_1d, 0) AS plays_1d, \
     v.last_play_ms, v.archived_at_ms \
     FROM video_blobs b \
     JOIN videos v ON v.id = b.video_id \
     LEFT JOIN (SELECT video_id, CAST(SUM(plays) AS BIGINT) AS plays_7d, \
         CAST(SUM(CASE WHEN hour > $2 THEN plays ELSE 0 END) AS BIGINT) AS plays_1d \
         FROM video_plays_hourly WHERE hour > $1 GROUP BY video_id) p \
     ON p.video_id = b.video_id \
     ORDER BY b.blob_id";

/// Repository for play statistics; get one from [`MetaStore::plays`].
#[derive(Debug, Clone, Copy)]
pub struct Plays<'a> {
    store: &'a MetaStore,
}

impl<'a> Plays<'a> {
    pub(crate) fn new(store: &'a MetaStore) -> Self {
        Plays { store }
    }

    /// Adds a batch of plays in one transaction: each delta's plays go to its video's
    /// bucket for the hour of `at_ms` and to the video's `view_count`, and each video's
    /// `last_play_ms` is raised to the latest `at_ms` of the batch (never lowered). Deltas
    /// for the same video and hour are summed first; deltas with no plays are ignored.
    /// Plays of unknown videos are counted all the same (there is no foreign key) and age
    /// out with [`Plays::prune`]. Counts above `i64::MAX` saturate (in an hourly bucket the
    /// database then refuses the sum; `view_count` stays at `i64::MAX`).
    ///
    /// Rows are written in key order, so concurrent batches lock them in the same order and
    /// cannot deadlock one another on PostgreSQL.
    pub async fn record(&self, batch: &[PlayDelta]) -> Result<()> {
        let Aggregated { counts, per_video } = aggregate(batch);
        if counts.is_empty() {
            return Ok(());
        }
        with_pool!(self.store, |pool| {
            async {
                let mut tx = pool.begin().await?;
                for (&(video_id, hour), &plays) in &counts {
                    sqlx::query(ADD_PLAYS)
                        .bind(video_id)
                        .bind(hour)
                        .bind(plays)
                        .execute(&mut *tx)
                        .await?;
                }
                for (&video_id, &VideoPlays { last_play_ms, plays }) in &per_video {
                    sqlx::query(ADD_TO_VIDEO)
                        .bind(last_play_ms)
                        .bind(video_id)
                        .bind(plays)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await
            }
            .await
        })
        .map_err(db)
    }

    /// Deletes the hourly buckets that ended at or before `before_ms` (the bucket holding
    /// `before_ms` stays); returns how many. Tiering looks back 7 days, so keeping 8 is
    /// plenty. Scans the table: meant for a periodic job.
    pub async fn prune(&self, before_ms: i64) -> Result<u64> {
        with_pool!(self.store, |pool| {
            sqlx::query(PRUNE)
                .bind(hour_of(before_ms))
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })
        .map_err(db)
    }

    /// One row per blob in `video_blobs`, by blob id: its video's plays over the last 7 days
    /// and the last day, latest play and archive flag, and the blob's creation time. Blobs
    /// of videos without plays in the window report `0` plays.
    ///
    /// A window counts the hourly buckets that start after `now_ms` minus its length: the
    /// hours wholly inside it, the current (partial) hour, and any later ones. The bucket
    /// the window starts in is left out, so plays from up to an hour before the window
    /// never count.
    ///
    /// Scans all of `video_blobs` and the last 7 days of `video_plays_hourly` (nearly the
    /// whole table) and holds the result in memory: meant for the daily tiering job, not
    /// for request paths.
    pub async fn tiering_activity(&self, now_ms: i64) -> Result<Vec<BlobActivityRow>> {
        let after_hour_7d = hour_of(now_ms.saturating_sub(7 * DAY_MS));
        let after_hour_1d = hour_of(now_ms.saturating_sub(DAY_MS));
        let rows = with_pool!(self.store, |pool| {
            sqlx::query_as::<_, ActivityRow>(TIERING_ACTIVITY)
                .bind(after_hour_7d)
                .bind(after_hour_1d)
                .fetch_all(pool)
                .await
        })
        .map_err(db)?;
        rows.into_iter().map(ActivityRow::into_row).collect()
    }
}

/// The hourly bucket holding `at_ms` (floor, also before 1970).
fn hour_of(at_ms: i64) -> i64 {
    at_ms.div_euclid(HOUR_MS)
}

/// A batch summed up, keyed by stored ids, in key order.
#[derive(Debug, Default, PartialEq, Eq)]
struct Aggregated {
    /// Plays per (video id, hour).
    counts: BTreeMap<(i64, i64), i64>,
    /// Per video id: the latest play and the plays of the whole batch.
    per_video: BTreeMap<i64, VideoPlays>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct VideoPlays {
    last_play_ms: i64,
    plays: i64,
}

fn aggregate(batch: &[PlayDelta]) -> Aggregated {
    let mut agg = Aggregated::default();
    for delta in batch.iter().filter(|d| d.plays > 0) {
        let video_id = delta.video_id.as_i64();
        let plays = i64::try_from(delta.plays).unwrap_or(i64::MAX);
        let count = agg.counts.entry((video_id, hour_of(delta.at_ms))).or_insert(0);
        *count = count.saturating_add(plays);
        let video = agg
            .per_video
            .entry(video_id)
            .or_insert(VideoPlays { last_play_ms: delta.at_ms, plays: 0 });
        video.last_play_ms = video.last_play_ms.max(delta.at_ms);
        video.plays = video.plays.saturating_add(plays);
    }
    agg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(video_id: u64, at_ms: i64, plays: u64) -> PlayDelta {
        PlayDelta { video_id: Id(video_id), at_ms, plays }
    }

    #[test]
    fn hours_floor() {
        assert_eq!(hour_of(0), 0);
        assert_eq!(hour_of(HOUR_MS - 1), 0);
        assert_eq!(hour_of(HOUR_MS), 1);
        assert_eq!(hour_of(-1), -1);
        assert_eq!(hour_of(-HOUR_MS), -1);
        assert_eq!(hour_of(i64::MIN), i64::MIN / HOUR_MS - 1);
    }

    #[test]
    fn batches_aggregate_per_video_and_hour() {
        let h = 1_000 * HOUR_MS;
        let Aggregated { counts, per_video } = aggregate(&[
            delta(2, h + 5, 1),
            delta(1, h + 10, 2),
            delta(2, h + 1, 3),
            delta(2, h + HOUR_MS, 4),
            delta(3, h + 7 * HOUR_MS, 0), // no plays: ignored entirely
            delta(u64::MAX, h, u64::MAX),
            delta(u64::MAX, h + 1, 1),
        ]);
        let counts: Vec<_> = counts.into_iter().collect();
        assert_eq!(
            counts,
            [((-1, 1_000), i64::MAX), ((1, 1_000), 2), ((2, 1_000), 4), ((2, 1_001), 4)]
        );
        let per_video: Vec<_> =
            per_video.into_iter().map(|(v, p)| (v, p.last_play_ms, p.plays)).collect();
        assert_eq!(per_video, [(-1, h + 1, i64::MAX), (1, h + 10, 2), (2, h + HOUR_MS, 8)]);
        assert_eq!(aggregate(&[]), Aggregated::default());
    }
}
