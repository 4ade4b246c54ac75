//! [`RankerConfig`]: the `rank` section of the configuration file.

use serde::{Deserialize, Serialize};

use crate::error::RankError;
use crate::qualifier::QualifierConfig;
use crate::shards::MAX_SHARDS;
use crate::view::VIEWS_TOPIC;

/// Settings of the ranker service (and of the API's view qualifier). Every field is
/// optional; the defaults in TOML:
///
/// ```toml
/// shards = 4
/// topic = "views"
/// consumer = "ranker"
/// snapshot_interval_secs = 60
/// snapshot_every_events = 5000000
/// snapshots_kept = 2
/// batch_max_records = 8192
/// batch_max_bytes = 4194304
/// publish_interval_ms = 100
/// tick_interval_ms = 1000
///
/// [qualifier]
/// min_watch_ms = 3000
/// dedup_window_ms = 600000
/// max_entries = 1000000
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RankerConfig {
    /// Shards (rankers partitioned by video id) in this process. Changing it discards the
    /// snapshots (they are per shard count) and replays the topic. Default 4.
    pub shards: u32,
    /// The topic of qualified views. Default `"views"`.
    pub topic: String,
    /// Consumer name under which the snapshot-covered offset is committed to the log (for
    /// lag monitoring and retention decisions). Default `"ranker"`.
    pub consumer: String,
    /// Snapshot at least this often while views arrive; 0 = only by event count and on
    /// shutdown. Default 60.
    pub snapshot_interval_secs: u64,
    /// Snapshot after this many records; 0 = only by time and on shutdown. Default 5000000.
    pub snapshot_every_events: u64,
    /// Snapshots kept per shard (older ones are the fallback when the newest is damaged).
    /// Default 2.
    pub snapshots_kept: u32,
    /// Most records read from the log per batch. Default 8192.
    pub batch_max_records: u32,
    /// Most payload bytes read per batch. Default 4 MiB.
    pub batch_max_bytes: u32,
    /// While catching up or under load, refresh the query lists at most this often; an idle
    /// consumer refreshes at once. Default 100.
    pub publish_interval_ms: u64,
    /// When the watermark lags the wall clock by this much (nobody is watching), append a
    /// tick record so windows keep sliding; 0 disables. Default 1000.
    pub tick_interval_ms: u64,
    /// The API's view qualification rules.
    pub qualifier: QualifierConfig,
}

impl Default for RankerConfig {
    fn default() -> Self {
        RankerConfig {
            shards: 4,
            topic: VIEWS_TOPIC.to_owned(),
            consumer: "ranker".to_owned(),
            snapshot_interval_secs: 60,
            snapshot_every_events: 5_000_000,
            snapshots_kept: 2,
            batch_max_records: 8192,
            batch_max_bytes: 4 * 1024 * 1024,
            publish_interval_ms: 100,
            tick_interval_ms: 1000,
            qualifier: QualifierConfig::default(),
        }
    }
}

impl RankerConfig {
    /// Rejects settings that cannot work.
    pub fn validate(&self) -> Result<(), RankError> {
        let bad = |m: String| Err(RankError::Config(m));
        if !(1..=MAX_SHARDS).contains(&self.shards) {
            return bad(format!("rank.shards must be 1..={MAX_SHARDS}"));
        }
        quicktok_log::validate_name("topic", &self.topic)
            .map_err(|e| RankError::Config(e.to_string()))?;
        quicktok_log::validate_name("consumer", &self.consumer)
            .map_err(|e| RankError::Config(e.to_string()))?;
        if self.snapshots_kept == 0 {
            return bad("rank.snapshots_kept must be at least 1".into());
        }
        if self.batch_max_records == 0 || self.batch_max_bytes == 0 {
            return bad("rank.batch_max_records and batch_max_bytes must be positive".into());
        }
        if i64::try_from(self.tick_interval_ms).is_err() {
            return bad("rank.tick_interval_ms is too large".into());
        }
        self.qualifier.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_round_trips_through_toml() {
        let c = RankerConfig::default();
        c.validate().unwrap();
        let text = toml::to_string(&c).unwrap();
        assert!(text.contains("shards = 4"), "{text}");
        assert_eq!(toml::from_str::<RankerConfig>(&text).unwrap(), c);
        let partial: RankerConfig =
            toml::from_str("shards = 2\n[qualifier]\nmin_watch_ms = 1\n").unwrap();
        assert_eq!(partial.shards, 2);
        assert_eq!(partial.qualifier.min_watch_ms, 1);
        assert_eq!(partial.topic, "views");
        assert!(toml::from_str::<RankerConfig>("shard = 2").is_err());
    }

    #[test]
    fn validate_rejects_nonsense() {
        let d = RankerConfig::default();
        assert!(RankerConfig { shards: 0, ..d.clone() }.validate().is_err());
        assert!(RankerConfig { topic: "a b".into(), ..d.clone() }.validate().is_err());
        assert!(RankerConfig { snapshots_kept: 0, ..d.clone() }.validate().is_err());
        assert!(RankerConfig { batch_max_records: 0, ..d }.validate().is_err());
    }
}
