//! The `[social]` section: the counter service's batching and caching.

use serde::{Deserialize, Serialize};

/// The `[social]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SocialConfig {
    pub counters: CountersConfig,
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
