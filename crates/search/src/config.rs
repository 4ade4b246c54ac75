//! [`SearchConfig`]: the `search` section of the configuration file.

use serde::{Deserialize, Serialize};

/// Settings of the search index and its indexer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchConfig {
    /// While changes are pending, the indexer commits (and readers reload) this often, so a
    /// published video is searchable within about this long plus the log's delivery.
    /// Default 250.
    pub commit_interval_ms: u64,
    /// Memory budget of the index writer, MiB. Default 64.
    pub writer_memory_mb: u32,
    /// Rebuild the suggestion list at most this often after commits. Default 5000.
    pub suggest_refresh_ms: u64,
    /// How many of the most popular documents feed suggestions. Default 50000.
    pub suggest_sources: u32,
    /// Re-read the counters (views, likes, followers) of every indexed video and
    /// re-index them this often, seconds; 0 disables. Default 900. The pass re-reads every
    /// published video (fine for thousands to a few hundred thousand; see ARCHITECTURE.md).
    pub popularity_refresh_secs: u64,
    /// The weights of the ranking formula (see the crate docs).
    pub ranking: RankingConfig,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            commit_interval_ms: 250,
            writer_memory_mb: 64,
            suggest_refresh_ms: 5000,
            suggest_sources: 50_000,
            popularity_refresh_secs: 900,
            ranking: RankingConfig::default(),
        }
    }
}

/// `score = bm25 * (1 + popularity * ln(1 + likes + views / 10)) * (1 + freshness *
/// 2^(-age / half_life))`; creators use `ln(1 + followers)` and no freshness.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RankingConfig {
    /// Weight of popularity. Default 0.1.
    pub popularity: f64,
    /// Weight of freshness. Default 0.5.
    pub freshness: f64,
    /// Half-life of freshness, hours. Default 72.
    pub half_life_hours: f64,
}

impl Default for RankingConfig {
    fn default() -> Self {
        RankingConfig { popularity: 0.1, freshness: 0.5, half_life_hours: 72.0 }
    }
}
