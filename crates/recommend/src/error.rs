//! The recommender's errors.

/// Why a recommendation request was not answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecommendError {
    /// Non-core requests (related videos) are shed while the service is overloaded.
    #[error("related videos are shed while the recommender is overloaded")]
    Shed,
}
