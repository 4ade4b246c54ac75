//! The `[social]` section: the counter service's batching and caching, and stories' limits.

use serde::{Deserialize, Serialize};

/// The `[social]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SocialConfig {
    pub counters: CountersConfig,
    pub stories: StoriesConfig,
}

/// `[social.stories]`: how long a story may be and how long it stays visible.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoriesConfig {
    /// The longest story accepted, by its probed duration; longer ones are rejected before
    /// transcoding.
    pub max_duration_ms: u64,
    /// How long a story is visible after its publication; at exactly this age it is gone for
    /// everyone but its author.
    pub lifetime_ms: u64,
}

impl Default for StoriesConfig {
    fn default() -> Self {
        StoriesConfig { max_duration_ms: 15_000, lifetime_ms: 24 * 60 * 60 * 1000 }
    }
}

impl StoriesConfig {
    /// The lifetime as stored times are (milliseconds, `i64`), capped at about 35 000 years
    /// so that adding it to a publication time cannot overflow.
    pub fn lifetime_ms_i64(&self) -> i64 {
        i64::try_from(self.lifetime_ms.min(1 << 50)).unwrap_or(1 << 50)
    }
}

/// `[social.counters]`: how the counter service batches writes and caches reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CountersConfig {
    /// Pending deltas are written to the metadata store this often (and on shutdown). A crash
    /// loses at most this much counting; `quicktok counters repair` rebuilds it.
    pub flush_interval_ms: u64,
    /// Persisted values are cached this long. Another node's flushes show up after it; this
    /// node's own flushes update the cache at once.
    pub cache_ttl_ms: u64,
    /// Independent locks the counters are spread over.
    pub shards: usize,
    /// Cached values per shard; a full shard drops its cache and reloads as needed.
    pub max_cached_per_shard: usize,
}

impl Default for CountersConfig {
    fn default() -> Self {
        CountersConfig {
            flush_interval_ms: 1_000,
            cache_ttl_ms: 5_000,
            shards: 16,
            max_cached_per_shard: 50_000,
        }
    }
}
