//! Sharding by video id: [`shard_of`] routes, [`ShardedRanker`] runs N [`Ranker`]s in one
//! process over one topic and merges their lists exactly.
//!
//! Every view of a video goes to the same shard, so a video's counts live on exactly one
//! shard and the global top k is contained in the union of the shards' top k: merging those
//! lists ([`merge_top`]) is exact.
//!
//! All shards share one event-time watermark: the topic's, computed in offset order over
//! every record, whichever shard it goes to. A shard applies each of its views with the
//! watermark at that record, and [`ShardedRanker::finish_batch`] brings every shard to the
//! topic's watermark. Window contents depend only on which views were applied and on the
//! watermark (the trailing edges give the same result whether time moves in one jump or
//! many), so N shards hold exactly what one ranker would, and a shard process that later
//! reads the whole topic but keeps only its own videos will too.

use std::sync::Mutex;

use quicktok_core::Id;

use crate::error::RankError;
use crate::ranker::{AsOf, Ranker, RankerStats};
use crate::topk::merge_top;
use crate::view::{QualifiedView, ViewRecord};
use crate::window::Window;

/// Most shards in one process.
pub const MAX_SHARDS: u32 = 1024;

/// The shard (`0..shards`) owning `video`: jump consistent hashing (Lamping & Veach) over a
/// mixed id, so going from N to N+1 shards moves only about 1/(N+1) of the videos, and every
/// process computes the same answer.
pub fn shard_of(video: Id, shards: u32) -> u32 {
    let mut key = crate::topk::mix64(video.0);
    let (mut b, mut j): (i64, i64) = (-1, 0);
    while j < i64::from(shards.max(1)) {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    b.max(0) as u32
}

/// N shards fed from one topic (see the module docs).
#[derive(Debug)]
pub struct ShardedRanker {
    shards: Vec<Ranker>,
    watermark: Option<i64>,
    next_offset: u64,
    tail_crc: Option<u32>,
    parallel_min: usize,
}

/// Batches with at least this many views apply shards on parallel threads by default.
pub const PARALLEL_MIN_VIEWS: usize = 2048;

impl ShardedRanker {
    /// `count` empty shards (clamped to `1..=MAX_SHARDS`).
    pub fn new(count: u32) -> Self {
        let count = count.clamp(1, MAX_SHARDS);
        ShardedRanker {
            shards: (0..count).map(|i| Ranker::for_shard(i, count)).collect(),
            watermark: None,
            next_offset: 0,
            tail_crc: None,
            parallel_min: PARALLEL_MIN_VIEWS,
        }
    }

    /// Like [`ShardedRanker::new`] with every shard answering exactly for `k <= cap`.
    pub fn with_top_capacity(count: u32, cap: usize) -> Self {
        let mut s = ShardedRanker::new(count);
        for r in &mut s.shards {
            *r = std::mem::take(r).with_top_capacity(cap);
        }
        s
    }

    /// Resumes from shards restored separately (e.g. from snapshots of different ages): the
    /// topic is re-read from the smallest offset any shard needs, with the watermark that
    /// shard recorded there; each shard skips records it already covers.
    pub fn from_shards(mut shards: Vec<Ranker>) -> Result<Self, RankError> {
        let count = u32::try_from(shards.len())
            .ok()
            .filter(|&n| (1..=MAX_SHARDS).contains(&n))
            .ok_or_else(|| RankError::Config(format!("{} shards", shards.len())))?;
        shards.sort_by_key(|r| r.shard);
        for (i, r) in shards.iter().enumerate() {
            if r.shards != count || r.shard as usize != i {
                return Err(RankError::Config(format!(
                    "shard {} of {} where shard {i} of {count} was expected",
                    r.shard, r.shards
                )));
            }
        }
        let next_offset = shards.iter().map(|r| r.next_offset).min().unwrap_or(0);
        let oldest = || shards.iter().filter(|r| r.next_offset == next_offset);
        let watermark = oldest().filter_map(|r| r.watermark).max();
        let tail_crc = oldest().find_map(|r| r.tail_crc);
        Ok(ShardedRanker {
            shards,
            watermark,
            next_offset,
            tail_crc,
            parallel_min: PARALLEL_MIN_VIEWS,
        })
    }

    /// Batches of [`ShardedRanker::apply_batch`] with at least `views` views run each shard
    /// on its own scoped thread (`usize::MAX`: never).
    pub fn set_parallel_threshold(&mut self, views: usize) {
        self.parallel_min = views.max(1);
    }

    /// Applies a batch of records and finishes it (queries are exact afterwards). The
    /// watermark is computed in offset order first, then each shard applies its own views,
    /// on parallel threads when the batch is large: shards share nothing but the
    /// watermark, so this is the same as applying record by record. Returns how many
    /// records were applied (those below [`AsOf::next_offset`] are skipped).
    pub fn apply_batch<'a>(
        &mut self,
        records: impl IntoIterator<Item = (u64, &'a ViewRecord)>,
    ) -> usize {
        self.apply_items(records.into_iter().map(|(o, r)| (o, Some(r))))
    }

    /// [`ShardedRanker::apply_batch`] over records read from the log: payloads are decoded
    /// first; malformed ones are counted and skipped (their offsets are still consumed).
    pub fn apply_log_records(&mut self, records: &[quicktok_log::Record]) -> usize {
        let tail = records
            .last()
            .filter(|r| r.offset >= self.next_offset)
            .map(|r| crc32c::crc32c(&r.payload));
        let decoded: Vec<(u64, Option<ViewRecord>)> = records
            .iter()
            .map(|r| match ViewRecord::decode(&r.payload) {
                Ok(v) => (r.offset, Some(v)),
                Err(e) => {
                    tracing::debug!(offset = r.offset, error = %e, "skipping malformed views record");
                    (r.offset, None)
                }
            })
            .collect();
        let applied = self.apply_items(decoded.iter().map(|(o, r)| (*o, r.as_ref())));
        if tail.is_some() {
            self.set_tail(tail);
        }
        applied
    }

    /// Records the fingerprint of record `next_offset - 1` on every shard.
    fn set_tail(&mut self, tail: Option<u32>) {
        self.tail_crc = tail;
        for r in &mut self.shards {
            r.tail_crc = tail;
        }
    }

    fn apply_items<'a>(
        &mut self,
        records: impl IntoIterator<Item = (u64, Option<&'a ViewRecord>)>,
    ) -> usize {
        let n = self.shards.len();
        let mut routed: Vec<Vec<(u64, &QualifiedView, i64)>> = vec![Vec::new(); n];
        let mut applied = 0;
        for (offset, record) in records {
            if offset < self.next_offset {
                continue;
            }
            let Some(record) = record else {
                if offset >= self.shards[0].next_offset {
                    self.shards[0].stats.malformed += 1;
                }
                self.next_offset = offset + 1;
                applied += 1;
                continue;
            };
            let at = record.at_ms();
            let w = self.watermark.map_or(at, |w| w.max(at));
            self.watermark = Some(w);
            self.next_offset = offset + 1;
            applied += 1;
            match record {
                ViewRecord::View(view) => {
                    routed[shard_of(view.video_id, n as u32) as usize].push((offset, view, w));
                }
                ViewRecord::Tick { .. } => {
                    if offset >= self.shards[0].next_offset {
                        self.shards[0].stats.ticks += 1;
                    }
                }
            }
        }
        let (next, w) = (self.next_offset, self.watermark);
        let run = |shard: &mut Ranker, views: Vec<(u64, &QualifiedView, i64)>| {
            for (offset, view, wm) in views {
                shard.ingest_deferred(offset, view, wm);
            }
            shard.advance(next, w);
        };
        let views: usize = routed.iter().map(Vec::len).sum();
        if n > 1 && views >= self.parallel_min {
            type Job<'r, 'v> = Mutex<Option<(&'r mut Ranker, Vec<(u64, &'v QualifiedView, i64)>)>>;
            let jobs: Vec<Job<'_, '_>> =
                self.shards.iter_mut().zip(routed).map(|j| Mutex::new(Some(j))).collect();
            let run = &run;
            std::thread::scope(|scope| {
                for job in &jobs {
                    let work = move || {
                        let taken = job.lock().unwrap_or_else(|e| e.into_inner()).take();
                        if let Some((shard, views)) = taken {
                            run(shard, views);
                        }
                    };
                    let builder = std::thread::Builder::new().name("quicktok-rank-shard".into());
                    // If no thread can be started, the work is done here instead.
                    if builder.spawn_scoped(scope, work).is_err() {
                        work();
                    }
                }
            });
        } else {
            for (shard, views) in self.shards.iter_mut().zip(routed) {
                run(shard, views);
            }
        }
        if applied > 0 {
            self.set_tail(None);
        }
        applied
    }

    /// Applies record `offset` (ignored below [`AsOf::next_offset`]). Call
    /// [`ShardedRanker::finish_batch`] before querying.
    pub fn apply(&mut self, offset: u64, record: &ViewRecord) -> bool {
        if offset < self.next_offset {
            return false;
        }
        let at = record.at_ms();
        let w = self.watermark.map_or(at, |w| w.max(at));
        self.watermark = Some(w);
        self.next_offset = offset + 1;
        self.tail_crc = None;
        match record {
            ViewRecord::View(view) => {
                let s = shard_of(view.video_id, self.shards.len() as u32) as usize;
                self.shards[s].ingest_deferred(offset, view, w);
            }
            // Topic-wide counters live on shard 0 so its snapshot carries them.
            ViewRecord::Tick { .. } => {
                if offset >= self.shards[0].next_offset {
                    self.shards[0].stats.ticks += 1;
                }
            }
        }
        true
    }

    /// Decodes and applies a payload; malformed ones are counted and skipped.
    pub fn apply_payload(&mut self, offset: u64, payload: &[u8]) -> bool {
        let applied = self.apply_payload_inner(offset, payload);
        if applied {
            self.tail_crc = Some(crc32c::crc32c(payload));
        }
        applied
    }

    fn apply_payload_inner(&mut self, offset: u64, payload: &[u8]) -> bool {
        match ViewRecord::decode(payload) {
            Ok(record) => self.apply(offset, &record),
            Err(e) => {
                if offset < self.next_offset {
                    return false;
                }
                tracing::debug!(offset, error = %e, "skipping malformed views record");
                if offset >= self.shards[0].next_offset {
                    self.shards[0].stats.malformed += 1;
                }
                self.next_offset = offset + 1;
                true
            }
        }
    }

    /// Brings every shard to the topic's watermark and offset; queries are exact after it.
    pub fn finish_batch(&mut self) {
        for r in &mut self.shards {
            r.advance(self.next_offset, self.watermark);
            r.tail_crc = self.tail_crc;
        }
    }

    /// The exact global top `k` of a window (merged from every shard's top `k`).
    pub fn top(&self, window: Window, k: usize) -> Vec<(Id, u64)> {
        let lists: Vec<Vec<(Id, u64)>> = self.shards.iter().map(|r| r.top(window, k)).collect();
        merge_top(&lists, k)
    }

    /// The exact global top `k` videos of a tag over `1d`.
    pub fn top_tag(&self, tag: &str, k: usize) -> Vec<(Id, u64)> {
        let lists: Vec<Vec<(Id, u64)>> = self.shards.iter().map(|r| r.top_tag(tag, k)).collect();
        merge_top(&lists, k)
    }

    /// A video's count in a window.
    pub fn count(&self, window: Window, video: Id) -> u64 {
        self.shard(video).count(window, video)
    }

    /// The shard owning `video`.
    pub fn shard(&self, video: Id) -> &Ranker {
        &self.shards[shard_of(video, self.shards.len() as u32) as usize]
    }

    /// The topic watermark and the offset covered.
    pub fn as_of(&self) -> AsOf {
        AsOf { watermark_ms: self.watermark, next_offset: self.next_offset }
    }

    /// Totals over the shards.
    pub fn stats(&self) -> RankerStats {
        let mut s = RankerStats::default();
        for r in &self.shards {
            s.views += r.stats.views;
            s.late += r.stats.late;
            s.too_old += r.stats.too_old;
            s.ticks += r.stats.ticks;
            s.malformed += r.stats.malformed;
        }
        s
    }

    /// The shards.
    pub fn shards(&self) -> &[Ranker] {
        &self.shards
    }

    pub(crate) fn shards_mut(&mut self) -> &mut [Ranker] {
        &mut self.shards
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_is_stable_balanced_and_consistent() {
        let n = 20_000u64;
        let mut per = [0u32; 8];
        let mut moved = 0;
        for i in 0..n {
            let id = Id(i << 22 | (i % 7) << 12); // Snowflake-like: time and node bits
            let s = shard_of(id, 8);
            per[s as usize] += 1;
            assert_eq!(s, shard_of(id, 8));
            if shard_of(id, 9) != s {
                moved += 1;
                assert_eq!(shard_of(id, 9), 8, "growing only moves videos to the new shard");
            }
        }
        for c in per {
            assert!((2000..3000).contains(&c), "{per:?}");
        }
        assert!((1500..3000).contains(&moved), "{moved} moved");
        assert_eq!(shard_of(Id(5), 1), 0);
        assert_eq!(shard_of(Id(5), 0), 0);
    }
}
