//! [`RankerService`]: the consumer task. It restores the shards from snapshots, replays the
//! `views` topic from there, keeps applying new records (woken by `wait_for`, so a view is
//! ranked within milliseconds of being appended), snapshots periodically, and publishes
//! precomputed top-1000 lists that [`RankerHandle`] serves without touching the shards.
//!
//! # Read path
//!
//! After a batch (at most every `publish_interval_ms` while busy, at once when idle) the
//! service merges the shards' top-1000 of each window into one `Arc<TopLists>` and swaps it
//! in under a lock held only for the pointer swap; a query clones the `Arc` and copies `k`
//! entries. Per-tag lists are republished only for the tags that changed since the last
//! publish.
//!
//! # Time
//!
//! Windows follow the watermark (largest event time applied). So that an idle platform's
//! `1h` list still empties out, the service appends a *tick* record carrying the wall
//! clock ([`quicktok_core::Clock`]) when the watermark lags it by `tick_interval_ms`. Ticks
//! go through the log like views, so a replay sees the same watermark sequence and rebuilds
//! the same state.
//!
//! # Recovery
//!
//! Each shard takes its newest snapshot that passes validation (see [`crate::snapshot`])
//! *and* agrees with the log: it covers no more records than the log holds, and the log's
//! record just before its offset has the payload CRC the snapshot recorded (after a power
//! loss the log may have lost a suffix and reused those offsets). The replay starts at the
//! smallest offset any shard needs; shards already past a record skip it.
//!
//! # Cost
//!
//! Batches run on the consumer task; a batch of at least 2048 views applies the shards on
//! scoped threads (blocking that runtime worker for the batch, a few milliseconds).
//! Snapshot encoding also runs on the task (ingestion pauses for about the time it takes to
//! serialise the state); the file writes run in `spawn_blocking`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use quicktok_core::Id;
use quicktok_core::clock::SharedClock;
use quicktok_core::worker::Shutdown;
use quicktok_log::{EventLog, LogError};
use serde::Serialize;
use tokio::time::Instant;

use crate::config::RankerConfig;
use crate::error::RankError;
use crate::ranker::{AsOf, Ranker};
use crate::shards::ShardedRanker;
use crate::snapshot::SnapshotStore;
use crate::topk::MAX_K;
use crate::view::{MAX_AT_MS, MIN_AT_MS, encode_tick};
use crate::window::Window;

/// A published list: `(video, views)`, highest first, ties by smaller id.
pub type RankedList = Arc<[(Id, u64)]>;

/// One window's ranked videos, as served to the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Trending {
    /// The window (`1d` for tag lists).
    pub window: Window,
    /// What the list reflects.
    pub as_of: AsOf,
    /// False while the service is still replaying the log after a start.
    pub caught_up: bool,
    /// `(video, views)`, highest first, ties by smaller id.
    pub videos: Vec<(Id, u64)>,
}

/// The lists published after a batch.
#[derive(Debug, Clone, Default)]
pub struct TopLists {
    /// What the lists reflect.
    pub as_of: AsOf,
    /// False while replaying after a start.
    pub caught_up: bool,
    /// Top 1000 per window, in [`Window::ALL`] order.
    pub lists: [RankedList; 4],
}

#[derive(Debug, Default)]
struct Published {
    lists: RwLock<Arc<TopLists>>,
    tags: RwLock<HashMap<Arc<str>, RankedList>>,
}

/// The cheap, cloneable query side of a [`RankerService`].
#[derive(Debug, Clone, Default)]
pub struct RankerHandle(Arc<Published>);

impl RankerHandle {
    /// The current lists.
    pub fn lists(&self) -> Arc<TopLists> {
        Arc::clone(&self.0.lists.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The top `k` (at most 1000) of a window.
    pub fn top(&self, window: Window, k: usize) -> Trending {
        let lists = self.lists();
        let list = &lists.lists[window.index()];
        Trending {
            window,
            as_of: lists.as_of,
            caught_up: lists.caught_up,
            videos: list[..k.min(list.len())].to_vec(),
        }
    }

    /// The top `k` (at most 1000) videos of a hashtag over `1d`.
    pub fn top_tag(&self, tag: &str, k: usize) -> Trending {
        let lists = self.lists();
        let list = self.0.tags.read().unwrap_or_else(|e| e.into_inner()).get(tag).cloned();
        Trending {
            window: Window::Day,
            as_of: lists.as_of,
            caught_up: lists.caught_up,
            videos: list.map(|l| l[..k.min(l.len())].to_vec()).unwrap_or_default(),
        }
    }

    /// What the lists reflect.
    pub fn as_of(&self) -> AsOf {
        self.lists().as_of
    }
}

/// How the service started.
#[derive(Debug, Clone, Default)]
pub struct Recovery {
    /// Snapshot each shard was restored from (`None`: started empty).
    pub restored_from: Vec<Option<PathBuf>>,
    /// Newer snapshots that failed validation and were skipped, with the reason.
    pub rejected: Vec<(PathBuf, String)>,
    /// The offset the replay starts at.
    pub resume_offset: u64,
    /// The topic's end when the service opened (replay target).
    pub end_offset: u64,
}

/// The ranker consumer (see the module docs).
pub struct RankerService {
    log: Arc<dyn EventLog>,
    config: RankerConfig,
    clock: SharedClock,
    store: SnapshotStore,
    ranker: ShardedRanker,
    published: RankerHandle,
    recovery: Recovery,
    caught_up: bool,
    unpublished: bool,
    since_snapshot: u64,
    last_snapshot: Instant,
    last_publish: Instant,
    last_tick_ms: Option<i64>,
}

impl std::fmt::Debug for RankerService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RankerService")
            .field("config", &self.config)
            .field("as_of", &self.ranker.as_of())
            .finish_non_exhaustive()
    }
}

impl RankerService {
    /// Restores the shards from the newest valid snapshots under `dir` (see
    /// [`crate::snapshot`]) and prepares to replay `log` from there. The replay itself happens
    /// in [`RankerService::run`] (or [`RankerService::catch_up`]); until it completes the
    /// published lists say `caught_up: false`.
    pub async fn open(
        dir: impl AsRef<Path>,
        log: Arc<dyn EventLog>,
        config: RankerConfig,
        clock: SharedClock,
    ) -> Result<RankerService, RankError> {
        config.validate()?;
        let store = SnapshotStore::new(dir, config.shards, config.snapshots_kept as usize);
        let start = log.start_offset(&config.topic).await?;
        let end = log.end_offset(&config.topic).await?;
        let shards = config.shards;
        let mut recovery = Recovery::default();
        let mut rankers = Vec::with_capacity(shards as usize);
        for shard in 0..shards {
            let (ranker, path) =
                load_shard(&store, shard, log.as_ref(), &config.topic, end, &mut recovery).await?;
            recovery.restored_from.push(path);
            rankers.push(ranker.unwrap_or_else(|| Ranker::for_shard(shard, shards)));
        }
        let mut ranker = ShardedRanker::from_shards(rankers)?;
        for r in ranker.shards_mut() {
            r.set_track_dirty_tags(true);
        }
        recovery.resume_offset = ranker.as_of().next_offset;
        recovery.end_offset = end;
        if recovery.resume_offset < start {
            tracing::warn!(
                resume = recovery.resume_offset,
                start,
                "views needed for an exact replay were deleted by log retention; counts will \
                 miss them"
            );
        }
        tracing::info!(
            shards,
            resume = recovery.resume_offset,
            end,
            restored = recovery.restored_from.iter().filter(|p| p.is_some()).count(),
            rejected = recovery.rejected.len(),
            "ranker opened"
        );
        let now = Instant::now();
        let mut service = RankerService {
            log,
            config,
            clock,
            store,
            ranker,
            published: RankerHandle::default(),
            recovery,
            caught_up: false,
            unpublished: true,
            since_snapshot: 0,
            last_snapshot: now,
            last_publish: now,
            last_tick_ms: None,
        };
        service.caught_up = service.ranker.as_of().next_offset >= end;
        service.publish_all_tags();
        service.publish();
        Ok(service)
    }

    /// The query side; clone freely.
    pub fn handle(&self) -> RankerHandle {
        self.published.clone()
    }

    /// How the service started.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// The shards (for inspection and tests).
    pub fn ranker(&self) -> &ShardedRanker {
        &self.ranker
    }

    /// Reads and applies one batch without waiting; returns the number of records applied.
    /// Publishes and snapshots when due.
    pub async fn poll(&mut self) -> Result<usize, RankError> {
        let next = self.ranker.as_of().next_offset;
        let records = self
            .log
            .read(
                &self.config.topic,
                next,
                self.config.batch_max_records as usize,
                self.config.batch_max_bytes as usize,
            )
            .await?;
        let Some(first) = records.first() else { return Ok(0) };
        if first.offset > next {
            tracing::warn!(
                from = next,
                to = first.offset,
                "views deleted by log retention before the ranker read them; counts miss them"
            );
        }
        self.ranker.apply_log_records(&records);
        self.since_snapshot += records.len() as u64;
        self.unpublished = true;
        if !self.caught_up && self.ranker.as_of().next_offset >= self.recovery.end_offset {
            self.caught_up = true;
            tracing::info!(as_of = ?self.ranker.as_of(), "ranker caught up with the log");
            self.publish();
        }
        if self.last_publish.elapsed() >= Duration::from_millis(self.config.publish_interval_ms) {
            self.publish();
        }
        if self.snapshot_due() {
            self.snapshot_logged().await;
        }
        Ok(records.len())
    }

    /// Applies everything up to the topic's current end, then publishes.
    pub async fn catch_up(&mut self) -> Result<(), RankError> {
        let end = self.log.end_offset(&self.config.topic).await?;
        while self.ranker.as_of().next_offset < end {
            if self.poll().await? == 0 {
                break;
            }
        }
        self.publish();
        Ok(())
    }

    /// Writes every shard's snapshot now and commits the covered offset to the log.
    pub async fn snapshot(&mut self) -> Result<(), RankError> {
        self.ranker.finish_batch();
        let files: Vec<(u32, u64, Vec<u8>)> = self
            .ranker
            .shards()
            .iter()
            .map(|r| (r.shard().0, r.as_of().next_offset, r.to_snapshot()))
            .collect();
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            for (shard, offset, bytes) in files {
                store.write_bytes(shard, offset, &bytes)?;
            }
            Ok::<_, RankError>(())
        })
        .await
        .map_err(|e| RankError::Task(e.to_string()))??;
        self.since_snapshot = 0;
        self.last_snapshot = Instant::now();
        let offset = self.ranker.as_of().next_offset;
        self.log.commit(&self.config.topic, &self.config.consumer, offset).await?;
        tracing::debug!(offset, "ranker snapshot written");
        Ok(())
    }

    /// Runs until `shutdown` fires (then writes a final snapshot) or the log closes.
    pub async fn run(mut self, shutdown: Shutdown) -> Result<(), RankError> {
        let idle_wait = Duration::from_millis(match self.config.tick_interval_ms {
            0 => 1000,
            t => t.min(1000),
        });
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            match self.poll().await {
                Ok(0) => {}
                Ok(_) => {
                    // Let other tasks in; a replay can run for a long time.
                    tokio::task::yield_now().await;
                    continue;
                }
                Err(RankError::Log(LogError::Closed)) => return Ok(()),
                Err(e) => {
                    tracing::warn!(error = %e, "ranker could not read the log; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            }
            // Idle: everything appended so far is applied.
            if !self.caught_up {
                self.caught_up = true;
                self.unpublished = true;
            }
            if self.unpublished {
                self.publish();
            }
            if self.snapshot_due() {
                self.snapshot_logged().await;
            }
            self.maybe_tick().await;
            let next = self.ranker.as_of().next_offset;
            tokio::select! {
                _ = shutdown.cancelled() => break,
                r = tokio::time::timeout(idle_wait, self.log.wait_for(&self.config.topic, next)) => {
                    if let Ok(Err(LogError::Closed)) = r {
                        return Ok(());
                    }
                }
            }
        }
        if self.since_snapshot > 0 {
            self.snapshot().await?;
        }
        Ok(())
    }

    fn snapshot_due(&self) -> bool {
        let c = &self.config;
        self.since_snapshot > 0
            && ((c.snapshot_every_events > 0 && self.since_snapshot >= c.snapshot_every_events)
                || (c.snapshot_interval_secs > 0
                    && self.last_snapshot.elapsed()
                        >= Duration::from_secs(c.snapshot_interval_secs)))
    }

    async fn snapshot_logged(&mut self) {
        if let Err(e) = self.snapshot().await {
            // Not fatal: the next attempt or a longer replay covers it.
            tracing::warn!(error = %e, "ranker snapshot failed");
            self.last_snapshot = Instant::now();
        }
    }

    /// Appends a tick when the watermark lags the wall clock (see the module docs).
    async fn maybe_tick(&mut self) {
        let interval = self.config.tick_interval_ms as i64;
        if interval == 0 {
            return;
        }
        let now = self.clock.now_ms();
        // Before the first view there is nothing to slide.
        let lagging = self.ranker.as_of().watermark_ms.is_some_and(|w| now - w >= interval);
        let recent = self.last_tick_ms.is_some_and(|t| now - t < interval);
        if !lagging || recent || !(MIN_AT_MS..=MAX_AT_MS).contains(&now) {
            return;
        }
        self.last_tick_ms = Some(now);
        let payload = match encode_tick(now) {
            Ok(p) => p,
            Err(_) => return,
        };
        if let Err(e) = self.log.append_one(&self.config.topic, now, payload).await {
            tracing::warn!(error = %e, "ranker could not append a watermark tick");
        }
    }

    /// Swaps in fresh window lists and the lists of tags that changed.
    fn publish(&mut self) {
        let mut dirty: HashSet<Arc<str>> = HashSet::new();
        for r in self.ranker.shards_mut() {
            dirty.extend(r.take_dirty_tags());
        }
        self.publish_tags(dirty);
        let lists = TopLists {
            as_of: self.ranker.as_of(),
            caught_up: self.caught_up,
            lists: Window::ALL.map(|w| Arc::from(self.ranker.top(w, MAX_K))),
        };
        *self.published.0.lists.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(lists);
        self.unpublished = false;
        self.last_publish = Instant::now();
    }

    fn publish_all_tags(&mut self) {
        let all: HashSet<Arc<str>> =
            self.ranker.shards().iter().flat_map(|r| r.tag_names().map(Arc::from)).collect();
        self.publish_tags(all);
    }

    fn publish_tags(&self, tags: HashSet<Arc<str>>) {
        if tags.is_empty() {
            return;
        }
        let fresh: Vec<(Arc<str>, RankedList)> = tags
            .into_iter()
            .map(|t| {
                let l: RankedList = Arc::from(self.ranker.top_tag(&t, MAX_K));
                (t, l)
            })
            .collect();
        let mut map = self.published.0.tags.write().unwrap_or_else(|e| e.into_inner());
        for (tag, list) in fresh {
            if list.is_empty() {
                map.remove(&tag);
            } else {
                map.insert(tag, list);
            }
        }
    }
}

/// The newest snapshot of `shard` that is valid and agrees with the log: it covers no more
/// than the log holds, and the log's record just before its offset has the payload CRC the
/// snapshot recorded (after a power loss the log can lose a suffix and reuse its offsets
/// for new views; a snapshot that counted the lost ones must not be used).
async fn load_shard(
    store: &SnapshotStore,
    shard: u32,
    log: &dyn EventLog,
    topic: &str,
    end: u64,
    recovery: &mut Recovery,
) -> Result<(Option<Ranker>, Option<PathBuf>), RankError> {
    let lister = store.clone();
    let candidates = tokio::task::spawn_blocking(move || {
        lister.remove_temp_files(shard);
        lister.list(shard)
    })
    .await
    .map_err(|e| RankError::Task(e.to_string()))??;
    for (offset, path) in candidates {
        let verdict = if offset > end {
            Err(format!("covers offset {offset}, past the log's end {end}"))
        } else {
            let (reader, p) = (store.clone(), path.clone());
            match tokio::task::spawn_blocking(move || reader.read(shard, offset, &p))
                .await
                .map_err(|e| RankError::Task(e.to_string()))?
            {
                Ok(r) => check_tail(log, topic, &r).await?.map(|()| r),
                Err(reason) => Err(reason),
            }
        };
        match verdict {
            Ok(r) => return Ok((Some(r), Some(path))),
            Err(reason) => {
                tracing::warn!(path = %path.display(), %reason, "skipping snapshot");
                recovery.rejected.push((path, reason));
            }
        }
    }
    Ok((None, None))
}

/// `Ok(Err(reason))` when the log's record before the snapshot's offset is not the one the
/// snapshot counted last. Unverifiable cases (no fingerprint, record deleted by retention)
/// pass.
async fn check_tail(
    log: &dyn EventLog,
    topic: &str,
    ranker: &Ranker,
) -> Result<Result<(), String>, RankError> {
    let (Some(crc), Some(last)) = (ranker.tail_crc(), ranker.as_of().next_offset.checked_sub(1))
    else {
        return Ok(Ok(()));
    };
    let records = log.read(topic, last, 1, usize::MAX).await?;
    Ok(match records.first() {
        Some(r) if r.offset == last && crc32c::crc32c(&r.payload) != crc => {
            Err(format!("the log's record {last} differs from the one the snapshot counted"))
        }
        _ => Ok(()),
    })
}
