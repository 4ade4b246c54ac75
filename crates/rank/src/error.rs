//! The crate's single error type.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in the rankers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RankError {
    /// A `views` record that is not a valid encoding (see [`crate::view`]).
    #[error("invalid view record: {0}")]
    Decode(String),
    /// A view that cannot be encoded (too many or too long tags, time out of range).
    #[error("view cannot be encoded: {0}")]
    Encode(String),
    /// A configuration value that cannot work.
    #[error("invalid rank configuration: {0}")]
    Config(String),
    /// A window name other than `1h`, `1d`, `30d`, `all`.
    #[error("unknown window {0:?}: expected 1h, 1d, 30d or all")]
    UnknownWindow(String),
    /// A snapshot file failed validation (bad magic, length, checksum or contents).
    #[error("snapshot {path}: {reason}")]
    SnapshotCorrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A file operation failed.
    #[error("I/O error while {context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The event log failed.
    #[error(transparent)]
    Log(#[from] quicktok_log::LogError),
    /// A blocking task panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(String),
}

impl RankError {
    /// Wraps an I/O error with what was being done.
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        RankError::Io { context: context.into(), source }
    }
}
