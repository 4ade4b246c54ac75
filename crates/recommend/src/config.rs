//! The `[recommend]` section: the For-You feed's page sizes, exploration share, training
//! schedule, long-term profiles, seen filter, state persistence and degradation thresholds.

use serde::{Deserialize, Serialize};

use crate::degrade::DegradeParams;
use crate::profiles::ProfileParams;
use crate::seen::SeenParams;
use crate::service::RecommenderParams;

/// The `[recommend]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecommendConfig {
    /// Clips per For-You page.
    pub page_size: usize,
    /// Clips per page while overloaded.
    pub overloaded_page_size: usize,
    /// Requests in flight above which the recommender counts as overloaded (shorter pages,
    /// related videos shed).
    pub max_in_flight: usize,
    /// Real-time interests further behind the log than this are stale (the answer says
    /// `realtime_stale` and cached interests are used).
    pub max_realtime_lag_ms: i64,
    /// Share of each page given to fresh uploads (exploration; anonymous feeds get at least
    /// 20%).
    pub explore_share: f64,
    /// Uploads younger than this are candidates for exploration.
    pub fresh_window_ms: i64,
    /// How often the offline models and the ranker are retrained (daily by default).
    pub train_interval_ms: u64,
    /// How much engagement history is replayed from the log at start (to train at once).
    pub replay_ms: i64,
    /// The cached trending list (the fallback) is refreshed after this long.
    pub trending_cache_ms: i64,
    /// Views a user's seen filter remembers for sure (it rotates past twice this many).
    pub seen_capacity: u32,
    /// Bound on the seen filter's false-positive rate. Changing it or `seen_capacity`
    /// makes stored filters unreadable: users start with empty ones.
    pub seen_false_positive_rate: f64,
    /// Long-term profiles: an engagement's weight halves every this many ms of age.
    pub profile_half_life_ms: i64,
    /// Tags kept in each user's long-term profile (its candidate source's breadth).
    pub profile_top_tags: usize,
    /// Creators kept in each user's long-term profile.
    pub profile_top_creators: usize,
    /// How often changed seen filters and cover statistics are written to the metadata
    /// store (and once more at shutdown); 0 keeps them in memory only (a restart forgets
    /// them).
    pub persist_interval_ms: u64,
    /// Stored seen filters and cover statistics untouched this long are not loaded at start
    /// and are deleted then.
    pub state_retention_ms: i64,
    /// A watch of at least this share of the clip is a completion; under `skip_share` a skip.
    pub completion_share: f64,
    pub skip_share: f64,
}

impl Default for RecommendConfig {
    fn default() -> Self {
        let p = RecommenderParams::default();
        RecommendConfig {
            page_size: p.degrade.page_size,
            overloaded_page_size: p.degrade.overloaded_page_size,
            max_in_flight: p.degrade.max_in_flight,
            max_realtime_lag_ms: p.degrade.max_realtime_lag_ms,
            explore_share: p.explore_share,
            fresh_window_ms: p.fresh_window_ms,
            train_interval_ms: 24 * 3_600_000,
            replay_ms: 7 * 24 * 3_600_000,
            trending_cache_ms: p.trending_cache_ms,
            seen_capacity: p.seen.capacity,
            seen_false_positive_rate: p.seen.false_positive_rate,
            profile_half_life_ms: p.profiles.half_life_ms,
            profile_top_tags: p.profiles.top_tags,
            profile_top_creators: p.profiles.top_creators,
            persist_interval_ms: 5_000,
            state_retention_ms: 30 * 24 * 3_600_000,
            completion_share: 0.9,
            skip_share: 0.2,
        }
    }
}

impl RecommendConfig {
    /// The service's parameters under this configuration.
    pub fn params(&self) -> RecommenderParams {
        let base = RecommenderParams::default();
        RecommenderParams {
            explore_share: self.explore_share.clamp(0.0, 1.0),
            fresh_window_ms: self.fresh_window_ms.max(0),
            trending_cache_ms: self.trending_cache_ms.max(0),
            seen: SeenParams {
                capacity: self.seen_capacity.max(1),
                false_positive_rate: self.seen_false_positive_rate.clamp(1e-6, 0.5),
            },
            profiles: ProfileParams {
                half_life_ms: self.profile_half_life_ms.max(1),
                top_tags: self.profile_top_tags.min(1000),
                top_creators: self.profile_top_creators.min(1000),
            },
            degrade: DegradeParams {
                max_realtime_lag_ms: self.max_realtime_lag_ms,
                max_in_flight: self.max_in_flight,
                page_size: self.page_size.clamp(1, 200),
                overloaded_page_size: self.overloaded_page_size.clamp(1, 200),
            },
            ..base
        }
    }
}
