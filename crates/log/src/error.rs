//! The crate's single error type, shared by every backend of [`crate::EventLog`].

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// Result alias used throughout the crate.
pub type Result<T, E = LogError> = std::result::Result<T, E>;

/// Everything that can go wrong in the event log.
///
/// `Clone` so the writer can hand the same failure to every appender of a batch (hence the
/// `Arc` around [`io::Error`]).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// An operating-system I/O call failed.
    #[error("I/O error while {context}: {source}")]
    Io {
        /// What the log was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: Arc<io::Error>,
    },
    /// Stored data failed validation where a torn write cannot explain it (a bad record in
    /// a sealed segment, a record in the readable region of the active segment, a gap between
    /// segments, an unreadable consumer-offset file). The log never silently drops such data.
    #[error("corrupt log data in {path} at byte {position}: {reason}")]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// Byte position of the damage inside that file.
        position: u64,
        /// What is wrong.
        reason: String,
    },
    /// A topic or consumer name outside the portable alphabet (see [`crate::validate_name`]).
    #[error("invalid {kind} name {name:?}: use 1 to 64 characters from A-Z a-z 0-9 _ -")]
    InvalidName {
        /// `"topic"` or `"consumer"`.
        kind: &'static str,
        /// The rejected name.
        name: String,
    },
    /// A consumer tried to commit an offset past the end of the topic.
    #[error("offset {offset} is past the end ({end}) of topic {topic:?}")]
    OffsetOutOfRange {
        /// The topic.
        topic: String,
        /// The offending offset.
        offset: u64,
        /// The topic's end offset at the time.
        end: u64,
    },
    /// A payload larger than the backend accepts.
    #[error("record payload of {size} bytes exceeds the maximum of {max} bytes")]
    RecordTooLarge {
        /// The payload's size.
        size: usize,
        /// The backend's limit.
        max: usize,
    },
    /// A [`crate::LogConfig`] value that cannot work.
    #[error("invalid log configuration: {0}")]
    InvalidConfig(String),
    /// The data directory is already open, in this process or another.
    #[error("log directory {0} is already open by another instance")]
    Locked(PathBuf),
    /// The log was closed with [`crate::EventLog::close`].
    #[error("the log is closed")]
    Closed,
    /// A write or fsync failed earlier. After a failed fsync the kernel's page cache can no
    /// longer be trusted, so the log refuses further writes until it is reopened (which
    /// re-validates the files).
    #[error("the log refuses writes after an earlier write failure (reopen to recover): {0}")]
    Poisoned(String),
    /// A failure specific to a remote backend (e.g. a broker being unreachable).
    #[error("log backend error: {0}")]
    Backend(String),
}

impl LogError {
    /// Wraps an I/O error with what was being done.
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        LogError::Io { context: context.into(), source: Arc::new(source) }
    }

    /// Builds a [`LogError::Corrupt`].
    pub(crate) fn corrupt(
        path: impl Into<PathBuf>,
        position: u64,
        reason: impl Into<String>,
    ) -> Self {
        LogError::Corrupt { path: path.into(), position, reason: reason.into() }
    }
}
