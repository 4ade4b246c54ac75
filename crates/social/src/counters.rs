//! The counter service (F6.3): in-process sharded counters with write-behind batching.
//!
//! Request paths [`add`](CounterService::add) deltas, which only touch one shard's map, and
//! read with [`get_many`](CounterService::get_many): the persisted value (from the
//! [`CounterStore`], cached) plus this node's deltas not yet persisted. A
//! [`flush`](CounterService::flush), run on an interval and at shutdown, moves every pending
//! delta to the store in one all-or-nothing batch; a failed flush puts its deltas back, so
//! nothing is lost and the next flush retries them. After a flush the store is exact.
//!
//! Reads stay exact while a flush runs: the deltas being written are kept aside ("in
//! flight") and still counted, and store loads wait for a running flush (a read-write gate),
//! so a read never sees a delta both in the store and in memory. When a flush succeeds, the
//! cached values of its keys are raised by its deltas and the in-flight deltas dropped under
//! the same shard lock.
//!
//! Deltas are lost only when the process dies between two flushes; the repair command
//! rebuilds every counter from the tables the counts come from.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard};

use quicktok_core::Id;
use quicktok_core::clock::SharedClock;
use serde::{Deserialize, Serialize};

use crate::config::CountersConfig;
use crate::error::Result;

/// What a counter counts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    Video,
    User,
}

impl Subject {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Subject::Video => "video",
            Subject::User => "user",
        }
    }
}

/// What is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Plays,
    Likes,
    Comments,
    Shares,
    Followers,
    Following,
}

impl Metric {
    /// Every metric.
    pub const ALL: [Metric; 6] = [
        Metric::Plays,
        Metric::Likes,
        Metric::Comments,
        Metric::Shares,
        Metric::Followers,
        Metric::Following,
    ];

    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Plays => "plays",
            Metric::Likes => "likes",
            Metric::Comments => "comments",
            Metric::Shares => "shares",
            Metric::Followers => "followers",
            Metric::Following => "following",
        }
    }
}

/// One counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CounterKey {
    pub subject: Subject,
    pub id: Id,
    pub metric: Metric,
}

impl CounterKey {
    /// A video's counter.
    pub fn video(id: Id, metric: Metric) -> CounterKey {
        CounterKey { subject: Subject::Video, id, metric }
    }

    /// A user's counter.
    pub fn user(id: Id, metric: Metric) -> CounterKey {
        CounterKey { subject: Subject::User, id, metric }
    }
}

/// Where counters persist (the metadata store in production).
#[async_trait::async_trait]
pub trait CounterStore: Send + Sync + 'static {
    /// The persisted value of each key, in the order given (0 for one never written).
    async fn load(&self, keys: &[CounterKey]) -> Result<Vec<i64>>;
    /// Adds every delta to its counter, all or nothing.
    async fn apply(&self, deltas: &[(CounterKey, i64)]) -> Result<()>;
}

#[derive(Debug, Clone, Copy)]
struct Cached {
    value: i64,
    loaded_at_ms: i64,
}

#[derive(Debug, Default)]
struct Shard {
    /// Deltas not yet handed to a flush.
    pending: HashMap<CounterKey, i64>,
    /// Deltas a running flush is writing.
    in_flight: HashMap<CounterKey, i64>,
    cache: HashMap<CounterKey, Cached>,
}

impl Shard {
    /// This node's deltas for `key` the store has not got yet.
    fn unpersisted(&self, key: &CounterKey) -> i64 {
        let pending = self.pending.get(key).copied().unwrap_or(0);
        pending.saturating_add(self.in_flight.get(key).copied().unwrap_or(0))
    }
}

/// The counter service. Share it behind an `Arc`; every method takes `&self`.
pub struct CounterService {
    store: Arc<dyn CounterStore>,
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    /// Store loads take it shared, flushes exclusively (see the module docs).
    gate: tokio::sync::RwLock<()>,
    clock: SharedClock,
    config: CountersConfig,
}

impl std::fmt::Debug for CounterService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CounterService").field("config", &self.config).finish_non_exhaustive()
    }
}

impl CounterService {
    /// A service over `store` (at least one shard whatever the config says).
    pub fn new(
        store: Arc<dyn CounterStore>,
        config: CountersConfig,
        clock: SharedClock,
    ) -> CounterService {
        let shards = (0..config.shards.max(1)).map(|_| Mutex::new(Shard::default())).collect();
        CounterService {
            store,
            shards,
            hasher: RandomState::new(),
            gate: tokio::sync::RwLock::new(()),
            clock,
            config,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &CountersConfig {
        &self.config
    }

    fn shard(&self, key: &CounterKey) -> MutexGuard<'_, Shard> {
        let n = self.shards.len() as u64;
        let index = (self.hasher.hash_one(key) % n) as usize;
        lock(&self.shards[index])
    }

    /// Adds `delta` to a counter (negative to take away). Never waits on the store.
    pub fn add(&self, key: CounterKey, delta: i64) {
        if delta == 0 {
            return;
        }
        let mut shard = self.shard(&key);
        let pending = shard.pending.entry(key).or_insert(0);
        *pending = pending.saturating_add(delta);
        if *pending == 0 {
            shard.pending.remove(&key);
        }
    }

    /// The current value of one counter.
    pub async fn get(&self, key: CounterKey) -> Result<i64> {
        Ok(self.get_many(&[key]).await?.first().copied().unwrap_or(0))
    }

    /// The current value of each counter, in the order given: persisted (cached) plus this
    /// node's deltas not yet persisted. Loads the persisted values it has no fresh cache of
    /// in one store call.
    pub async fn get_many(&self, keys: &[CounterKey]) -> Result<Vec<i64>> {
        let now = self.clock.now_ms();
        let ttl = i64::try_from(self.config.cache_ttl_ms).unwrap_or(i64::MAX);
        let mut values = vec![0; keys.len()];
        let mut missing: Vec<usize> = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let shard = self.shard(key);
            match shard.cache.get(key) {
                Some(c) if now.saturating_sub(c.loaded_at_ms) < ttl => {
                    values[i] = c.value.saturating_add(shard.unpersisted(key));
                }
                _ => missing.push(i),
            }
        }
        if missing.is_empty() {
            return Ok(values);
        }
        // No flush runs while the gate is held shared, so what the store returns and what is
        // in memory do not overlap.
        let _gate = self.gate.read().await;
        let wanted: Vec<CounterKey> = missing.iter().map(|&i| keys[i]).collect();
        let loaded = self.store.load(&wanted).await?;
        for (&i, (key, persisted)) in missing.iter().zip(wanted.iter().zip(loaded)) {
            let mut shard = self.shard(key);
            if shard.cache.len() >= self.config.max_cached_per_shard {
                shard.cache.clear();
            }
            shard.cache.insert(*key, Cached { value: persisted, loaded_at_ms: now });
            values[i] = persisted.saturating_add(shard.unpersisted(key));
        }
        Ok(values)
    }

    /// Writes every pending delta to the store in one batch and returns how many counters it
    /// wrote. On failure the deltas go back to pending (added to any that arrived since) and
    /// the error is returned; the next flush retries them.
    pub async fn flush(&self) -> Result<usize> {
        let _gate = self.gate.write().await;
        let mut batch: Vec<(CounterKey, i64)> = Vec::new();
        for shard in self.shards.iter() {
            let mut shard = lock(shard);
            // Deltas left in flight by a flush that was cancelled mid-way go again: losing
            // them for sure is worse than maybe counting them twice.
            let mut taken = std::mem::take(&mut shard.pending);
            for (key, delta) in shard.in_flight.drain() {
                let sum = taken.entry(key).or_insert(0);
                *sum = sum.saturating_add(delta);
            }
            taken.retain(|_, delta| *delta != 0);
            batch.extend(taken.iter().map(|(k, d)| (*k, *d)));
            shard.in_flight = taken;
        }
        if batch.is_empty() {
            return Ok(0);
        }
        batch.sort_unstable_by_key(|(k, _)| *k);
        let result = self.store.apply(&batch).await;
        for shard in self.shards.iter() {
            let mut shard = lock(shard);
            let in_flight = std::mem::take(&mut shard.in_flight);
            for (key, delta) in in_flight {
                if result.is_ok() {
                    if let Some(cached) = shard.cache.get_mut(&key) {
                        cached.value = cached.value.saturating_add(delta);
                    }
                } else {
                    let pending = shard.pending.entry(key).or_insert(0);
                    *pending = pending.saturating_add(delta);
                    if *pending == 0 {
                        shard.pending.remove(&key);
                    }
                }
            }
        }
        result.map(|()| batch.len())
    }

    /// How many counters have deltas not yet persisted.
    pub fn pending_len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).pending.len()).sum()
    }

    /// Forgets every cached persisted value (the next reads load from the store), e.g.
    /// after the store was rebuilt underneath.
    pub fn clear_cache(&self) {
        for shard in self.shards.iter() {
            lock(shard).cache.clear();
        }
    }

    /// Flushes every `flush_interval_ms` until `shutdown`, then once more. Failures are
    /// logged and retried on the next tick.
    pub async fn run_flusher(&self, shutdown: quicktok_core::Shutdown) {
        let every = std::time::Duration::from_millis(self.config.flush_interval_ms.max(10));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(every) => {}
            }
            if let Err(e) = self.flush().await {
                tracing::warn!(error = %e, pending = self.pending_len(), "counter flush failed; will retry");
            }
        }
        if let Err(e) = self.flush().await {
            tracing::error!(error = %e, pending = self.pending_len(), "final counter flush failed");
        }
    }
}

/// Locks a shard. A panic while holding a shard lock leaves plain maps behind, still
/// consistent enough to keep counting, so poisoning is ignored.
fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    shard.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
