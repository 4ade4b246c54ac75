//! Hot / warm / cold tiering (F4.4): the policy that decides each blob's storage class from
//! its play statistics, and the job that moves blobs accordingly. Moving never changes a
//! blob's id, so playback URLs keep working during and after a move.
//!
//! The policy (seed 000), evaluated at `now`:
//! - **cold** when the creator archived it, or nothing played it for 90 days (counting its
//!   upload as its first "play", so new uploads are never cold);
//! - **hot** when it is in the top 10% of blobs by plays over the last 7 days (among blobs
//!   played at all in that time), or played more than 1000 times in the last day;
//! - **warm** when played (or uploaded) within the last 30 days;
//! - otherwise (last play 30-90 days ago) it keeps its class, except that a hot blob drops to
//!   warm: the document leaves this band open, and leaving warm/cold blobs alone avoids
//!   moving bytes back and forth for nothing.

use std::collections::HashMap;
use std::sync::Arc;

use quicktok_core::Id;
use quicktok_core::clock::SharedClock;
use serde::{Deserialize, Serialize};

use crate::api::{BlobStore, StorageClass};
use crate::error::{BlobError, Result};

const DAY_MS: i64 = 86_400_000;

/// The `[blob.tiering]` thresholds; defaults are the design document's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TieringConfig {
    /// Run the daily job.
    pub enabled: bool,
    /// Share of played blobs (by 7-day plays) that is hot, percent.
    pub hot_top_percent: u32,
    /// Plays in the last day above which a blob is hot regardless of rank.
    pub hot_daily_plays: u64,
    /// A blob played within this many days is warm (if not hot).
    pub warm_within_days: u32,
    /// A blob not played for this many days is cold.
    pub cold_after_days: u32,
    /// Most moves per run, so a policy change cannot saturate the disks in one go.
    pub max_moves_per_run: u32,
    /// Hour of the day (UTC) the job runs.
    pub run_at_hour_utc: u32,
}

impl Default for TieringConfig {
    fn default() -> Self {
        TieringConfig {
            enabled: true,
            hot_top_percent: 10,
            hot_daily_plays: 1000,
            warm_within_days: 30,
            cold_after_days: 90,
            max_moves_per_run: 10_000,
            run_at_hour_utc: 3,
        }
    }
}

/// What the policy needs to know about one blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobActivity {
    pub id: Id,
    pub class: StorageClass,
    /// Plays over the last 7 days.
    pub plays_7d: u64,
    /// Plays over the last 24 hours.
    pub plays_1d: u64,
    /// Time of the last play, if any.
    pub last_play_ms: Option<i64>,
    /// When the blob was stored.
    pub created_at_ms: i64,
    /// The creator archived the video.
    pub archived: bool,
}

/// One decided move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Move {
    pub id: Id,
    pub from: StorageClass,
    pub to: StorageClass,
}

/// The class the policy wants for every blob, as moves for those not already there.
/// Deterministic: ties in the top-10% cut are broken by blob id (older first).
pub fn plan(cfg: &TieringConfig, blobs: &[BlobActivity], now_ms: i64) -> Vec<Move> {
    let mut played: Vec<(u64, Id)> = blobs
        .iter()
        .filter(|b| b.plays_7d > 0 && !b.archived)
        .map(|b| (b.plays_7d, b.id))
        .collect();
    played.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    // ceil(n * p / 100): with any played blob at all, at least one is hot.
    let hot_count = (played.len() as u64 * u64::from(cfg.hot_top_percent.min(100))).div_ceil(100);
    let top: std::collections::HashSet<Id> =
        played.iter().take(hot_count as usize).map(|(_, id)| *id).collect();

    let warm_ms = i64::from(cfg.warm_within_days) * DAY_MS;
    let cold_ms = i64::from(cfg.cold_after_days) * DAY_MS;
    blobs
        .iter()
        .filter_map(|b| {
            let last = b.last_play_ms.unwrap_or(b.created_at_ms).max(b.created_at_ms);
            let idle = now_ms.saturating_sub(last);
            let want = if b.archived || idle >= cold_ms {
                StorageClass::Cold
            } else if top.contains(&b.id) || b.plays_1d > cfg.hot_daily_plays {
                StorageClass::Hot
            } else if idle < warm_ms || b.class == StorageClass::Hot {
                StorageClass::Warm
            } else {
                b.class
            };
            (want != b.class).then_some(Move { id: b.id, from: b.class, to: want })
        })
        .collect()
}

/// Where the tiering job gets play statistics from (the metadata store's play counters in
/// the running platform; a fixed table in tests).
#[async_trait::async_trait]
pub trait ActivitySource: Send + Sync {
    /// Activity of every stored blob as of `now_ms`.
    async fn activity(&self, now_ms: i64) -> Result<Vec<BlobActivity>>;
}

/// What one run of the job did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TieringReport {
    pub considered: u64,
    pub moved: HashMap<(StorageClass, StorageClass), u64>,
    pub failed: u64,
    /// Moves the policy wanted but `max_moves_per_run` postponed to the next run.
    pub deferred: u64,
}

/// The daily tiering job.
pub struct TieringJob {
    cfg: TieringConfig,
    store: Arc<dyn BlobStore>,
    source: Arc<dyn ActivitySource>,
    clock: SharedClock,
}

impl std::fmt::Debug for TieringJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TieringJob").field("cfg", &self.cfg).finish_non_exhaustive()
    }
}

impl TieringJob {
    pub fn new(
        cfg: TieringConfig,
        store: Arc<dyn BlobStore>,
        source: Arc<dyn ActivitySource>,
        clock: SharedClock,
    ) -> Self {
        TieringJob { cfg, store, source, clock }
    }

    /// Evaluates the policy and performs the moves. A failed move is logged and counted, and
    /// retried by the next run; it never affects readers (the blob stays where it was).
    pub async fn run_once(&self) -> Result<TieringReport> {
        let now = self.clock.now_ms();
        let blobs = self.source.activity(now).await?;
        let moves = plan(&self.cfg, &blobs, now);
        let mut report = TieringReport { considered: blobs.len() as u64, ..Default::default() };
        let limit = self.cfg.max_moves_per_run as usize;
        report.deferred = moves.len().saturating_sub(limit) as u64;
        for m in moves.into_iter().take(limit) {
            match self.store.set_class(m.id, m.to).await {
                Ok(_) => *report.moved.entry((m.from, m.to)).or_default() += 1,
                // Deleted since the statistics were read: nothing to move.
                Err(BlobError::NotFound(_)) => {}
                Err(e) => {
                    tracing::warn!(id = %m.id, from = m.from.as_str(), to = m.to.as_str(), error = %e, "tiering move failed");
                    report.failed += 1;
                }
            }
        }
        Ok(report)
    }

    /// Milliseconds from `now_ms` to the next scheduled run.
    pub fn until_next_run(&self, now_ms: i64) -> i64 {
        until_next_run(&self.cfg, now_ms)
    }
}

/// Milliseconds from `now_ms` to the next `run_at_hour_utc`.
pub fn until_next_run(cfg: &TieringConfig, now_ms: i64) -> i64 {
    let hour = i64::from(cfg.run_at_hour_utc.min(23));
    let today_run = now_ms.div_euclid(DAY_MS) * DAY_MS + hour * 3_600_000;
    let next = if today_run > now_ms { today_run } else { today_run + DAY_MS };
    next - now_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn blob(
        id: u64,
        class: StorageClass,
        plays_7d: u64,
        plays_1d: u64,
        idle_days: Option<i64>,
    ) -> BlobActivity {
        BlobActivity {
            id: Id(id),
            class,
            plays_7d,
            plays_1d,
            last_play_ms: idle_days.map(|d| NOW - d * DAY_MS),
            created_at_ms: NOW - 400 * DAY_MS,
            archived: false,
        }
    }

    fn target(moves: &[Move], id: u64) -> Option<StorageClass> {
        moves.iter().find(|m| m.id == Id(id)).map(|m| m.to)
    }

    #[test]
    fn top_ten_percent_is_hot() {
        use StorageClass::*;
        // 20 played blobs: the two most played are hot, the rest warm.
        let blobs: Vec<_> = (1..=20).map(|i| blob(i, Warm, i * 10, 1, Some(0))).collect();
        let moves = plan(&TieringConfig::default(), &blobs, NOW);
        assert_eq!(moves.len(), 2);
        assert_eq!(target(&moves, 20), Some(Hot));
        assert_eq!(target(&moves, 19), Some(Hot));
    }

    #[test]
    fn daily_burst_is_hot_and_idle_blobs_cool_down() {
        use StorageClass::*;
        let mut blobs = vec![
            blob(1, Warm, 5000, 5000, Some(0)), // top: hot
            blob(2, Cold, 1001, 1001, Some(0)), // > 1000 plays/day: hot though not top
            blob(3, Hot, 0, 0, Some(45)),       // idle 45 days: hot drops to warm
            blob(4, Warm, 0, 0, Some(45)),      // idle 45 days: stays warm
            blob(5, Warm, 0, 0, Some(91)),      // idle 91 days: cold
            blob(6, Cold, 3, 3, Some(1)),       // played yesterday: warm
        ];
        for i in 10..30 {
            blobs.push(blob(i, Warm, 2000, 10, Some(0)));
        }
        let moves = plan(&TieringConfig::default(), &blobs, NOW);
        assert_eq!(target(&moves, 1), Some(Hot));
        assert_eq!(target(&moves, 2), Some(Hot));
        assert_eq!(target(&moves, 3), Some(Warm));
        assert_eq!(target(&moves, 4), None);
        assert_eq!(target(&moves, 5), Some(Cold));
        assert_eq!(target(&moves, 6), Some(Warm));
    }

    #[test]
    fn archived_is_cold_and_new_uploads_are_not() {
        use StorageClass::*;
        let mut archived = blob(1, Hot, 9999, 9999, Some(0));
        archived.archived = true;
        let mut fresh = blob(2, Hot, 0, 0, None);
        fresh.created_at_ms = NOW - DAY_MS;
        let moves = plan(&TieringConfig::default(), &[archived, fresh], NOW);
        assert_eq!(target(&moves, 1), Some(Cold));
        assert_eq!(target(&moves, 2), Some(Warm));
    }

    #[test]
    fn next_run_is_at_the_configured_hour() {
        let cfg = TieringConfig { run_at_hour_utc: 3, ..Default::default() };
        let midnight = NOW.div_euclid(DAY_MS) * DAY_MS;
        assert_eq!(until_next_run(&cfg, midnight), 3 * 3_600_000);
        assert_eq!(until_next_run(&cfg, midnight + 3 * 3_600_000), DAY_MS);
        assert_eq!(until_next_run(&cfg, midnight + 4 * 3_600_000), 23 * 3_600_000);
    }
}
