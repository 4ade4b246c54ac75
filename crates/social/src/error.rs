//! The crate's one error type.

/// Shorthand for results of this crate.
pub type Result<T, E = SocialError> = std::result::Result<T, E>;

/// What can go wrong in the social services.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SocialError {
    /// The counter store could not load or persist counters; `unavailable` says whether it
    /// is worth retrying (the store was unreachable or overloaded).
    #[error("counter store failed: {source}")]
    Store {
        unavailable: bool,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

impl SocialError {
    /// Wraps a store's error.
    pub fn store(
        unavailable: bool,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> SocialError {
        SocialError::Store { unavailable, source: source.into() }
    }
}
