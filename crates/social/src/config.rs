//! The `[social]` section: the counter service's batching and caching, stories' limits, and
//! the following feed's thresholds and bounds.

use serde::{Deserialize, Serialize};

/// The `[social]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SocialConfig {
    pub counters: CountersConfig,
    pub stories: StoriesConfig,
    pub feed: FeedConfig,
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

/// `[social.feed]`: the following feed's push/pull split and its bounds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FeedConfig {
    /// Creators with at least this many (stored) followers are celebrities: their videos are
    /// not pushed to inboxes but pulled from their outboxes when a follower reads the feed.
    pub celebrity_followers: u64,
    /// Followers seen within this many days get pushes; the others get their inbox rebuilt
    /// by pull when they come back.
    pub active_days: u32,
    /// Rows kept per inbox (older ones are trimmed now and then, see `trim_every`).
    pub inbox_max: u32,
    /// One push in this many trims the receiving inbox back to `inbox_max`.
    pub trim_every: u32,
    /// Newest videos of a creator copied into a follower's inbox when they follow, and per
    /// followee when an inbox is rebuilt.
    pub backfill_per_author: u32,
    /// Followees (most recently followed first) read when an inbox is rebuilt.
    pub rebuild_max_followees: u32,
    /// A user's last-seen time is written at most this often.
    pub activity_write_interval_ms: u64,
    /// How long a node serves the head of a celebrity's outbox (their newest
    /// `page_size_max + 1` videos) to every reader as it is. An older head is still served
    /// while the store is read again in the background, and is read on the request path only
    /// once twice this old: a new video of theirs appears in feeds up to about twice this
    /// much later. 0 reads the store every time.
    pub outbox_cache_ms: u64,
    /// How long a node keeps the list of celebrities (creators at or above
    /// `celebrity_followers`). A creator who just crossed it is no longer pushed but may be
    /// pulled only this much later, so their videos of that moment show up that much later.
    /// 0 reads the store every time.
    pub celebrity_cache_ms: u64,
    /// Follows a feed read loads to filter its inbox and find the celebrities it pulls;
    /// a reader following more creators is served by (slower) per-row checks in the store.
    pub reader_followees_max: u32,
    /// How long a node keeps a reader's follows (as the feed read them) for their next
    /// reads. A follow, unfollow or block drops them at once on the node that made it, and
    /// on every other API node when its consumer of the `social` topic sees the change; this
    /// bound covers a node that missed it. 0 reads the follows with every page.
    pub reader_graph_cache_ms: u64,
    /// Readers whose follows a node keeps at most (a reader following 200 creators takes
    /// about 2 KiB); past it the cache starts over.
    pub reader_graph_cache_readers: u32,
    /// Page size when the client gives none.
    pub page_size_default: u32,
    /// Largest page size a client may ask for.
    pub page_size_max: u32,
}

impl Default for FeedConfig {
    fn default() -> Self {
        FeedConfig {
            celebrity_followers: 10_000,
            active_days: 7,
            inbox_max: 1_000,
            trim_every: 32,
            backfill_per_author: 20,
            rebuild_max_followees: 2_000,
            activity_write_interval_ms: 300_000,
            outbox_cache_ms: 1_000,
            celebrity_cache_ms: 10_000,
            reader_followees_max: 10_000,
            reader_graph_cache_ms: 60_000,
            reader_graph_cache_readers: 20_000,
            page_size_default: 20,
            page_size_max: 50,
        }
    }
}

impl FeedConfig {
    /// Users last seen before this (for a check at `now_ms`) are inactive.
    pub fn active_since(&self, now_ms: i64) -> i64 {
        now_ms.saturating_sub(i64::from(self.active_days).saturating_mul(86_400_000))
    }
}
