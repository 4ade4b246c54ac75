//! QuickTok the For-You recommender. Today: the offline model ([`implicit`]: implicit-feedback
//! matrix factorisation whose item vectors give co-engagement similarity and whose user
//! vectors give long-term interests, with fold-in for users between trainings) and its
//! offline evaluation ([`evaluate`], run by `make eval`). Candidates, online ranking, the
//! seen filter and degradation are built under issue #8.

pub mod evaluate;
pub mod implicit;
pub mod itemitem;
pub mod seen;

pub use evaluate::{
    Blend, FoldMetrics, ItemPop, ModelSettings, RankingMetrics, TopN, cross_validate,
    evaluate as evaluate_model, k_fold, metrics_at,
};
pub use implicit::{AlsParams, Factors, Interactions};
pub use itemitem::{ItemItem, ItemItemParams};
pub use seen::{SeenFilter, SeenParams};
