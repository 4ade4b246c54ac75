//! QuickTok the For-You recommender (issue #8). The parts, each pure (no IO; times and
//! randomness come from the caller):
//! - [`implicit`] and [`itemitem`]: the offline models (iALS user/item vectors for long-term
//!   interests, EASE item-item weights for co-engagement), evaluated by [`evaluate`]
//!   (`make eval`);
//! - [`interests`]: short-term interests from the last hour of engagement;
//! - [`profiles`]: long-term interest profiles (tags and creators, time-decayed), computed
//!   by the daily training;
//! - [`ranker`]: the learned logistic ranking model and its hand-tuned fallback;
//! - [`seen`]: the per-user seen filter (Bloom, bounded false-positive rate);
//! - [`assemble`]: a page from scored candidates (exploration share, creator diversity);
//! - [`degrade`]: the degradation plan per request; [`covers`]: the cover bandit.
//!
//! Seen filters and cover statistics encode to versioned bytes, and the service lists what
//! changed since the last flush ([`Recommender::take_changes`]), so the binary can keep them
//! across restarts.
//!
//! - [`service`]: the in-process [`Recommender`] combining them (catalogue, engagement,
//!   training, `for_you`, `related`).
//!
//! Feeding it from the event log, storing its state and serving it over HTTP is the
//! binary's and `api`'s job.

pub mod assemble;
mod codec;
pub mod config;
pub mod covers;
pub mod degrade;
pub mod error;
pub mod evaluate;
pub mod implicit;
pub mod interests;
pub mod itemitem;
pub mod profiles;
pub mod ranker;
pub mod seen;
pub mod service;

pub use config::RecommendConfig;
pub use error::RecommendError;
pub use evaluate::{
    Blend, FoldMetrics, ItemPop, ModelSettings, RankingMetrics, TopN, cross_validate,
    evaluate as evaluate_model, k_fold, metrics_at,
};
pub use implicit::{AlsParams, Factors, Interactions};
pub use itemitem::{ItemItem, ItemItemParams};
pub use profiles::{Profile, ProfileParams};
pub use seen::{SeenFilter, SeenParams};
pub use service::{
    FeedPage, FeedRequest, Recommended, Recommender, RecommenderParams, RelatedRequest,
    StateChanges, TrainingSummary, UserEvent, VideoInfo,
};
