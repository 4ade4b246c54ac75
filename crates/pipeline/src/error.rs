//! The pipeline crate's single error type.

use std::path::PathBuf;

/// Everything the stage logic of this crate can fail with.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A configured word-list file could not be read.
    #[error("reading word list {path}: {source}")]
    WordList {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The sensitive-word automaton could not be built (e.g. the lists are too large).
    #[error("building the sensitive-word matcher: {0}")]
    Matcher(String),
    /// A pluggable frame classifier failed; the orchestrator decides whether to retry.
    #[error("frame classifier failed: {0}")]
    Classifier(String),
    /// A content hash that is not 64 hexadecimal digits (SHA-256).
    #[error("invalid content hash {0:?}: expected 64 hexadecimal digits (SHA-256)")]
    InvalidContentHash(String),
    /// A configuration value out of its allowed range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
}

/// `Result` with [`PipelineError`] as the default error.
pub type Result<T, E = PipelineError> = std::result::Result<T, E>;
