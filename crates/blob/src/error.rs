//! The blob crate's error type.

use std::sync::Arc;

/// Errors of every blob backend.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum BlobError {
    /// No blob with this id (never stored, or deleted).
    #[error("blob {0} not found")]
    NotFound(quicktok_core::Id),
    /// A blob with this id already exists (blobs are immutable; delete first).
    #[error("blob {0} already exists")]
    AlreadyExists(quicktok_core::Id),
    /// The requested range lies outside the blob.
    #[error("range {start}..{end} is outside a blob of {size} bytes")]
    RangeNotSatisfiable { start: u64, end: u64, size: u64 },
    /// Stored bytes failed their checksum: never returned to a reader.
    #[error("integrity error in {what}: {detail}")]
    Integrity { what: String, detail: String },
    /// The body supplied to `put` did not have the announced size.
    #[error("body was {actual} bytes, announced {announced}")]
    SizeMismatch { announced: u64, actual: u64 },
    /// The body stream failed while being stored; nothing was stored.
    #[error("body stream failed: {0}")]
    Body(String),
    /// Local IO failed.
    #[error("{context}: {source}")]
    Io { context: String, source: Arc<std::io::Error> },
    /// A remote backend (S3) failed or is unreachable.
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    /// Configuration is invalid.
    #[error("invalid blob configuration: {0}")]
    InvalidConfig(String),
    /// A request the backend cannot carry out as asked (a content type or blob larger than
    /// the backend stores, an unknown volume); retrying it unchanged will fail again.
    #[error("invalid request: {0}")]
    InvalidArgument(String),
    /// The store was closed.
    #[error("blob store is closed")]
    Closed,
}

impl BlobError {
    /// Wraps an IO error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        BlobError::Io { context: context.into(), source: Arc::new(source) }
    }
}

/// Result type of the blob crate.
pub type Result<T, E = BlobError> = std::result::Result<T, E>;
