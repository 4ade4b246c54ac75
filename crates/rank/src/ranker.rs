//! [`Ranker`]: one shard's exact windows (`1h`, `1d`, `30d`, `all`, and `1d` per tag), kept
//! with the two-pointer method over event time.
//!
//! # Edges
//!
//! - **Leading edge**: applying a view adds 1 to every window whose rule it satisfies (see
//!   [`crate::window`]); a view with tags also adds 1 to each tag's `1d` list.
//! - **`1h` trailing edge**: recent views wait in a raw buffer sorted by time; when the
//!   watermark passes `at_ms + 1h` the view is subtracted from `1h` and folded into its
//!   minute's aggregate (compact per-minute counts, sealed into sorted arrays once complete).
//! - **`1d` / `30d` trailing edges**: when the window's first counted minute moves past
//!   minute `m`, `m`'s aggregate is subtracted (all its videos at once). The `1d` edge also
//!   subtracts and drops the minute's tag aggregate; the `30d` edge drops the minute.
//!
//! # Batching
//!
//! Edges record count changes in small per-window delta maps; `flush` applies
//! them to the [`TopK`]s (every public mutator ends with one). A batch thus costs one
//! reorder per distinct video rather than one per view, which matters for the hot head of
//! the distribution. Order inside a batch does not matter: additions and subtractions of a
//! count commute, and the final count is never negative.
//!
//! # Retention
//!
//! Raw views are kept for one hour only (32 bytes each: time, id, shared tag-set pointer).
//! After that a view costs nothing on its own: it is a count in a (video, minute) entry,
//! 12 bytes per distinct video per minute for 30 days, plus 28 bytes per distinct
//! (tag, video) per minute for one day. The log no longer has to keep 30 days of raw views:
//! snapshots carry the aggregates, so the log needs only what follows the oldest kept
//! snapshot.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use quicktok_core::Id;
use serde::Serialize;

use crate::aggregate::{Interner, MinuteAgg, TagSet};
use crate::shards::shard_of;
use crate::topk::{IdMap, MAX_K, TopK};
use crate::view::{QualifiedView, ViewRecord};
use crate::window::{DAY_MS, HOUR_MS, MINUTE_MS, MONTH_MS, Window, edge, minute};

/// How far the ranker has got: every record below `next_offset` is applied and the windows
/// are evaluated at `watermark_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct AsOf {
    /// The event-time watermark (largest `at_ms` applied), `None` before the first record.
    pub watermark_ms: Option<i64>,
    /// One past the last log offset applied: where to resume reading.
    pub next_offset: u64,
}

/// Counters of what a ranker applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct RankerStats {
    /// Views applied.
    pub views: u64,
    /// Ticks applied.
    pub ticks: u64,
    /// Records that failed to decode (skipped).
    pub malformed: u64,
    /// Views already outside `1h` when applied (folded straight into minute aggregates).
    pub late: u64,
    /// Views already outside `30d` when applied (counted in `all` only).
    pub too_old: u64,
}

/// Sizes of a ranker's state, for memory accounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Footprint {
    /// Views in the `1h` raw buffer.
    pub raw_views: usize,
    /// Minute aggregates kept (at most 30 days' worth).
    pub minutes: usize,
    /// (video, minute) entries across them.
    pub video_minutes: usize,
    /// (tag, video, minute) entries across them (last day only).
    pub tag_video_minutes: usize,
    /// Videos with a non-zero count, per window in [`Window::ALL`] order.
    pub videos: [usize; 4],
    /// Tags with a non-empty `1d` list.
    pub tags: usize,
}

/// A view waiting for the `1h` trailing edge.
#[derive(Debug, Clone)]
pub(crate) struct RawView {
    pub at_ms: i64,
    pub video: Id,
    pub tags: TagSet,
}

/// One shard's windows (see the module docs).
#[derive(Debug)]
pub struct Ranker {
    pub(crate) shard: u32,
    pub(crate) shards: u32,
    pub(crate) cap: usize,
    pub(crate) next_offset: u64,
    /// CRC-32C of the payload of record `next_offset - 1`, when known: lets a restart check
    /// that the log still holds the records a snapshot counted.
    pub(crate) tail_crc: Option<u32>,
    pub(crate) watermark: Option<i64>,
    /// First millisecond counted by `1d` / `30d` (valid once `watermark` is set).
    day_edge: i64,
    month_edge: i64,
    pub(crate) windows: [TopK; 4],
    pub(crate) tags: HashMap<Arc<str>, TopK>,
    /// Count changes not yet applied to `windows` / `tags` (see [`Ranker::flush`]).
    pending: [IdMap<i64>; 4],
    pending_tags: HashMap<Arc<str>, IdMap<i64>>,
    /// Sorted by `at_ms` (stable for equal times); holds exactly the views in `1h`.
    pub(crate) raw: VecDeque<RawView>,
    /// Minute -> aggregate, for minutes inside `30d` only.
    pub(crate) minutes: BTreeMap<i64, MinuteAgg>,
    /// Minutes still receiving views from the raw buffer (usually one or two).
    open: Vec<i64>,
    pub(crate) interner: Interner,
    track_dirty: bool,
    dirty_tags: HashSet<Arc<str>>,
    pub(crate) stats: RankerStats,
}

impl Default for Ranker {
    fn default() -> Self {
        Ranker::new()
    }
}

impl Ranker {
    /// A ranker owning every video (shard 0 of 1).
    pub fn new() -> Self {
        Ranker::for_shard(0, 1)
    }

    /// Shard `index` of `count` (`index < count`): owns the videos [`shard_of`] maps to it.
    pub fn for_shard(index: u32, count: u32) -> Self {
        let count = count.max(1);
        Ranker {
            shard: index.min(count - 1),
            shards: count,
            cap: MAX_K,
            next_offset: 0,
            tail_crc: None,
            watermark: None,
            day_edge: 0,
            month_edge: 0,
            windows: std::array::from_fn(|_| TopK::new(MAX_K)),
            tags: HashMap::new(),
            pending: Default::default(),
            pending_tags: HashMap::new(),
            raw: VecDeque::new(),
            minutes: BTreeMap::new(),
            open: Vec::new(),
            interner: Interner::default(),
            track_dirty: false,
            dirty_tags: HashSet::new(),
            stats: RankerStats::default(),
        }
    }

    /// The same ranker answering exactly for `k <= cap` instead of 1000 (tests use a small
    /// cap to exercise the top-K floor). Call before applying anything.
    pub fn with_top_capacity(mut self, cap: usize) -> Self {
        self.cap = cap.max(1);
        self.windows = std::array::from_fn(|_| TopK::new(self.cap));
        self
    }

    /// `(index, count)` of this shard.
    pub fn shard(&self) -> (u32, u32) {
        (self.shard, self.shards)
    }

    /// Whether `video` belongs to this shard.
    pub fn owns(&self, video: Id) -> bool {
        shard_of(video, self.shards) == self.shard
    }

    /// Applies record `offset` of the topic as a standalone ranker: the watermark becomes
    /// `max(watermark, record time)`. Records below [`AsOf::next_offset`] were applied
    /// already and are ignored (so replaying an overlap is harmless); returns whether the
    /// record was applied. Views of videos other shards own are not filtered here: use
    /// [`crate::ShardedRanker`] to route.
    pub fn apply(&mut self, offset: u64, record: &ViewRecord) -> bool {
        if offset < self.next_offset {
            return false;
        }
        let now = self.watermark.map_or(record.at_ms(), |w| w.max(record.at_ms()));
        match record {
            ViewRecord::View(view) => self.ingest(offset, view, now),
            ViewRecord::Tick { .. } => {
                self.stats.ticks += 1;
                self.advance(offset + 1, Some(now));
                true
            }
        }
    }

    /// Applies a batch of records (see [`Ranker::apply`]), reordering the top-K sets once
    /// at the end instead of after every record; returns how many were applied.
    pub fn apply_batch<'a>(
        &mut self,
        records: impl IntoIterator<Item = (u64, &'a ViewRecord)>,
    ) -> usize {
        let mut applied = 0;
        for (offset, record) in records {
            if offset < self.next_offset {
                continue;
            }
            let now = self.watermark.map_or(record.at_ms(), |w| w.max(record.at_ms()));
            match record {
                ViewRecord::View(view) => {
                    self.ingest_deferred(offset, view, now);
                }
                ViewRecord::Tick { .. } => {
                    self.stats.ticks += 1;
                    self.advance_to(now);
                    self.next_offset = offset + 1;
                    self.tail_crc = None;
                }
            }
            applied += 1;
        }
        self.flush();
        applied
    }

    /// Decodes and applies a payload; a malformed one is counted and skipped (a poison
    /// record must not stop ranking), and its offset is still consumed.
    pub fn apply_payload(&mut self, offset: u64, payload: &[u8]) -> bool {
        let applied = match ViewRecord::decode(payload) {
            Ok(record) => self.apply(offset, &record),
            Err(e) => {
                if offset < self.next_offset {
                    return false;
                }
                tracing::debug!(offset, error = %e, "skipping malformed views record");
                self.stats.malformed += 1;
                self.next_offset = offset + 1;
                true
            }
        };
        if applied {
            self.tail_crc = Some(crc32c::crc32c(payload));
        }
        applied
    }

    /// Applies a view routed to this shard, with the watermark of the whole topic at this
    /// record (which may be ahead of anything this shard has seen). Ignored (returns false)
    /// when `offset` is below [`AsOf::next_offset`].
    pub fn ingest(&mut self, offset: u64, view: &QualifiedView, watermark_ms: i64) -> bool {
        let applied = self.ingest_deferred(offset, view, watermark_ms);
        self.flush();
        applied
    }

    /// [`Ranker::ingest`] without [`Ranker::flush`]: queries are stale until the next
    /// `advance` (which [`crate::ShardedRanker::finish_batch`] does once per batch).
    pub(crate) fn ingest_deferred(
        &mut self,
        offset: u64,
        view: &QualifiedView,
        watermark_ms: i64,
    ) -> bool {
        if offset < self.next_offset {
            return false;
        }
        self.advance_to(watermark_ms.max(view.at_ms));
        self.add_view(view);
        self.stats.views += 1;
        self.next_offset = offset + 1;
        self.tail_crc = None;
        true
    }

    /// Moves the watermark forward to `watermark_ms` (never back) and records that every
    /// record below `next_offset` is covered.
    pub fn advance(&mut self, next_offset: u64, watermark_ms: Option<i64>) {
        if let Some(w) = watermark_ms {
            self.advance_to(w);
        }
        if next_offset > self.next_offset {
            self.next_offset = next_offset;
            self.tail_crc = None;
        }
        self.flush();
    }

    /// CRC-32C of the payload of the last record covered (record `next_offset - 1`), when
    /// the ranker was fed payloads; snapshots carry it so a restart can check the log still
    /// holds that record.
    pub fn tail_crc(&self) -> Option<u32> {
        self.tail_crc
    }

    /// Applies the buffered count changes to the top-K sets. Changes are buffered so a
    /// video watched many times in a batch is reordered once, not once per view; every
    /// public mutator ends with a flush, so queries never see buffered state.
    pub(crate) fn flush(&mut self) {
        for (w, deltas) in self.pending.iter_mut().enumerate() {
            apply_deltas(&mut self.windows[w], deltas);
        }
        for (tag, mut deltas) in self.pending_tags.drain() {
            let top = self.tags.entry(Arc::clone(&tag)).or_insert_with(|| TopK::new(self.cap));
            apply_deltas(top, &mut deltas);
            if top.is_empty() {
                self.tags.remove(&tag);
            }
            if self.track_dirty {
                self.dirty_tags.insert(tag);
            }
        }
    }

    /// Buffers `delta` for `video` in a window.
    fn bump(&mut self, window: Window, video: Id, delta: i64) {
        *self.pending[window.index()].entry(video).or_insert(0) += delta;
    }

    /// Buffers `delta` for `video` under a tag.
    fn bump_tag(&mut self, tag: &Arc<str>, video: Id, delta: i64) {
        let deltas = match self.pending_tags.get_mut(tag) {
            Some(d) => d,
            None => self.pending_tags.entry(Arc::clone(tag)).or_default(),
        };
        *deltas.entry(video).or_insert(0) += delta;
    }

    /// The top `k` (clamped to the cap, 1000 by default) of a window, in the crate's order
    /// (count desc, then id asc).
    pub fn top(&self, window: Window, k: usize) -> Vec<(Id, u64)> {
        debug_assert!(self.pending[window.index()].is_empty(), "query before flush");
        self.windows[window.index()].top(k)
    }

    /// The top `k` videos of a hashtag over `1d`.
    pub fn top_tag(&self, tag: &str, k: usize) -> Vec<(Id, u64)> {
        debug_assert!(self.pending_tags.is_empty(), "query before flush");
        self.tags.get(tag).map(|t| t.top(k)).unwrap_or_default()
    }

    /// A video's count in a window.
    pub fn count(&self, window: Window, video: Id) -> u64 {
        self.windows[window.index()].get(video)
    }

    /// A video's `1d` count under a tag.
    pub fn tag_count(&self, tag: &str, video: Id) -> u64 {
        self.tags.get(tag).map_or(0, |t| t.get(video))
    }

    /// Every non-zero count of a window, sorted by id (tests, audits).
    pub fn counts(&self, window: Window) -> Vec<(Id, u64)> {
        debug_assert!(self.pending[window.index()].is_empty(), "query before flush");
        let mut v: Vec<(Id, u64)> = self.windows[window.index()].iter().collect();
        v.sort_unstable();
        v
    }

    /// Every tag's non-zero `1d` counts, sorted (tests, audits).
    pub fn tag_counts(&self) -> Vec<(String, Id, u64)> {
        let mut v: Vec<(String, Id, u64)> = self
            .tags
            .iter()
            .flat_map(|(t, top)| top.iter().map(move |(id, c)| (t.to_string(), id, c)))
            .collect();
        v.sort_unstable();
        v
    }

    /// Tags with a non-empty `1d` list.
    pub fn tag_names(&self) -> impl Iterator<Item = &str> {
        self.tags.keys().map(|t| &**t)
    }

    /// The watermark and the offset covered.
    pub fn as_of(&self) -> AsOf {
        AsOf { watermark_ms: self.watermark, next_offset: self.next_offset }
    }

    /// What was applied.
    pub fn stats(&self) -> RankerStats {
        self.stats
    }

    /// Sizes of the state.
    pub fn footprint(&self) -> Footprint {
        let mut f = Footprint {
            raw_views: self.raw.len(),
            minutes: self.minutes.len(),
            videos: std::array::from_fn(|i| self.windows[i].len()),
            tags: self.tags.len(),
            ..Footprint::default()
        };
        for agg in self.minutes.values() {
            f.video_minutes += agg.videos.len();
            f.tag_video_minutes += agg.tags.len();
        }
        f
    }

    /// Starts or stops remembering which tags changed (for the service's published lists).
    pub(crate) fn set_track_dirty_tags(&mut self, on: bool) {
        self.track_dirty = on;
        if !on {
            self.dirty_tags.clear();
        }
    }

    /// Tags whose lists changed since the last call.
    pub(crate) fn take_dirty_tags(&mut self) -> HashSet<Arc<str>> {
        std::mem::take(&mut self.dirty_tags)
    }

    /// Moves the watermark to `now` and runs every trailing edge.
    fn advance_to(&mut self, now: i64) {
        let Some(w) = self.watermark else {
            self.watermark = Some(now);
            self.day_edge = edge(now, DAY_MS);
            self.month_edge = edge(now, MONTH_MS);
            return;
        };
        if now <= w {
            return;
        }
        self.watermark = Some(now);
        // 1h: views at or before `cut` leave, into their minute's aggregate.
        let cut = now.saturating_sub(HOUR_MS);
        while self.raw.front().is_some_and(|r| r.at_ms <= cut) {
            let Some(r) = self.raw.pop_front() else { break };
            self.bump(Window::Hour, r.video, -1);
            let agg = self.minute_agg(minute(r.at_ms), cut);
            agg.videos.add(r.video, 1);
            if let Some(tags) = &r.tags {
                for t in tags.iter() {
                    agg.tags.add((Arc::clone(t), r.video), 1);
                }
            }
        }
        let minutes = &mut self.minutes;
        self.open.retain(|&m| {
            // Every view of minute m is at or before `cut`: nothing more comes from the buffer.
            let done = (m + 1) * MINUTE_MS - 1 <= cut;
            if done && let Some(agg) = minutes.get_mut(&m) {
                agg.seal();
            }
            !done
        });
        // 1d: whole minutes before the new edge leave, with their tag aggregates.
        let new_day = edge(now, DAY_MS);
        if new_day > self.day_edge {
            let Ranker { minutes, pending, pending_tags, .. } = self;
            let [_, day, _, _] = pending;
            for (_, agg) in minutes.range_mut(minute(self.day_edge)..minute(new_day)) {
                agg.videos.for_each(|&v, c| *day.entry(v).or_insert(0) -= i64::from(c));
                std::mem::take(&mut agg.tags).for_each(|(t, v), c| {
                    let deltas = match pending_tags.get_mut(t) {
                        Some(d) => d,
                        None => pending_tags.entry(Arc::clone(t)).or_default(),
                    };
                    *deltas.entry(*v).or_insert(0) -= i64::from(c);
                });
            }
            self.day_edge = new_day;
        }
        // 30d: whole minutes before the new edge leave and are forgotten.
        let new_month = edge(now, MONTH_MS);
        if new_month > self.month_edge {
            let last = minute(new_month);
            while let Some(entry) = self.minutes.first_entry() {
                if *entry.key() >= last {
                    break;
                }
                let agg = entry.remove();
                let month = &mut self.pending[Window::Month.index()];
                agg.videos.for_each(|&v, c| *month.entry(v).or_insert(0) -= i64::from(c));
            }
            self.month_edge = new_month;
        }
    }

    /// The aggregate of minute `m`, created open if the raw buffer may still feed it.
    fn minute_agg(&mut self, m: i64, cut: i64) -> &mut MinuteAgg {
        let open = &mut self.open;
        self.minutes.entry(m).or_insert_with(|| {
            let still_fed = (m + 1) * MINUTE_MS - 1 > cut;
            if still_fed {
                open.push(m);
            }
            MinuteAgg::new(still_fed)
        })
    }

    /// The leading edge for one view (the watermark is already at or past it).
    fn add_view(&mut self, view: &QualifiedView) {
        let w = self.watermark.unwrap_or(view.at_ms);
        let (ts, v) = (view.at_ms, view.video_id);
        self.bump(Window::All, v, 1);
        if ts < self.month_edge {
            self.stats.too_old += 1;
            return;
        }
        self.bump(Window::Month, v, 1);
        let in_day = ts >= self.day_edge;
        let tags = if in_day { self.interner.set(&view.tags) } else { None };
        if in_day {
            self.bump(Window::Day, v, 1);
        }
        if let Some(set) = &tags {
            for t in set.iter() {
                self.bump_tag(t, v, 1);
            }
        }
        let cut = w.saturating_sub(HOUR_MS);
        if ts > cut {
            self.bump(Window::Hour, v, 1);
            let raw = RawView { at_ms: ts, video: v, tags };
            if self.raw.back().is_none_or(|b| b.at_ms <= ts) {
                self.raw.push_back(raw);
            } else {
                // Late within the hour: keep the buffer sorted (near the back, so cheap).
                let i = self.raw.partition_point(|r| r.at_ms <= ts);
                self.raw.insert(i, raw);
            }
        } else {
            self.stats.late += 1;
            let agg = self.minute_agg(minute(ts), cut);
            agg.videos.add(v, 1);
            if let Some(set) = &tags {
                for t in set.iter() {
                    agg.tags.add((Arc::clone(t), v), 1);
                }
            }
        }
    }

    /// Rebuilds a ranker from snapshot contents: the `all` counts (which nothing else can
    /// reconstruct), the raw buffer and the minute aggregates; every other window follows
    /// from those by the window rule.
    pub(crate) fn restore(
        mut self,
        next_offset: u64,
        watermark: Option<i64>,
        stats: RankerStats,
        all: Vec<(Id, u64)>,
        raw: VecDeque<RawView>,
        mut minutes: BTreeMap<i64, MinuteAgg>,
    ) -> Ranker {
        self.next_offset = next_offset;
        self.stats = stats;
        self.windows[Window::All.index()] = TopK::from_counts(self.cap, all);
        let Some(w) = watermark else { return self };
        self.watermark = Some(w);
        self.day_edge = edge(w, DAY_MS);
        self.month_edge = edge(w, MONTH_MS);
        let cut = w.saturating_sub(HOUR_MS);
        // Sum first, then build each ordered set once (far cheaper than one add per entry).
        let mut sums: [IdMap<u64>; 3] = Default::default();
        let mut tag_sums: HashMap<Arc<str>, IdMap<u64>> = HashMap::new();
        for r in &raw {
            for s in &mut sums {
                *s.entry(r.video).or_insert(0) += 1;
            }
            for t in r.tags.iter().flat_map(|set| set.iter()) {
                *tag_sums.entry(Arc::clone(t)).or_default().entry(r.video).or_insert(0) += 1;
            }
        }
        self.raw = raw;
        let day_first = minute(self.day_edge);
        for (&m, agg) in minutes.iter_mut() {
            let [_, day, month] = &mut sums;
            agg.videos.for_each(|&v, c| {
                *month.entry(v).or_insert(0) += u64::from(c);
                if m >= day_first {
                    *day.entry(v).or_insert(0) += u64::from(c);
                }
            });
            // Tag aggregates exist only for minutes inside `1d`.
            if m >= day_first {
                agg.tags.for_each(|(t, v), c| {
                    *tag_sums.entry(Arc::clone(t)).or_default().entry(*v).or_insert(0) +=
                        u64::from(c);
                });
            } else {
                agg.tags = Default::default();
            }
            if (m + 1) * MINUTE_MS - 1 > cut {
                agg.reopen();
                self.open.push(m);
            }
        }
        let [hour, day, month] = sums;
        let cap = self.cap;
        self.windows[Window::Hour.index()] = TopK::from_counts(cap, hour);
        self.windows[Window::Day.index()] = TopK::from_counts(cap, day);
        self.windows[Window::Month.index()] = TopK::from_counts(cap, month);
        self.tags = tag_sums.into_iter().map(|(t, c)| (t, TopK::from_counts(cap, c))).collect();
        self.minutes = minutes;
        self
    }
}

/// Applies netted count changes (never negative overall: every subtraction matches an
/// earlier addition) and empties the buffer, dropping it when a big edge left it large.
fn apply_deltas(top: &mut TopK, deltas: &mut IdMap<i64>) {
    for (id, d) in deltas.drain() {
        match d.cmp(&0) {
            std::cmp::Ordering::Greater => top.add(id, d.unsigned_abs()),
            std::cmp::Ordering::Less => top.sub(id, d.unsigned_abs()),
            std::cmp::Ordering::Equal => {}
        }
    }
    // Draining visits every bucket, so a map grown by a day-edge burst would slow every
    // later flush.
    if deltas.capacity() > 1 << 14 {
        *deltas = IdMap::default();
    }
}
