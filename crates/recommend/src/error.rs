//! The recommender's errors.

/// Why a recommendation request was not answered, or stored state not restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecommendError {
    /// Non-core requests (related videos) are shed while the service is overloaded.
    #[error("related videos are shed while the recommender is overloaded")]
    Shed,
    /// Stored state (a seen filter, cover statistics) is not in a format this build reads,
    /// or was written under other settings; the caller starts that piece afresh.
    #[error("stored recommender state is unreadable: {0}")]
    BadState(&'static str),
}
