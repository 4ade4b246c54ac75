//! The search crate's one error type.

/// What can go wrong searching or indexing.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The index files could not be opened, read or written.
    #[error("search index: {0}")]
    Index(#[from] tantivy::TantivyError),
    /// The index directory could not be created or cleared.
    #[error("search index directory: {0}")]
    Io(#[from] std::io::Error),
    /// The client's query, cursor or filter is unusable (a message for the client).
    #[error("{0}")]
    BadQuery(String),
}

pub type Result<T, E = SearchError> = std::result::Result<T, E>;
