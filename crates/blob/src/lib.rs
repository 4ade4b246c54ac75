//! QuickTok blob storage: videos, renditions, segments and covers. [`BlobStore`] is the
//! backend-neutral contract; the packed volume engine (the embedded default, Haystack style)
//! and the S3 backend implement it, and one test suite runs against both.

pub mod api;
pub mod error;

pub use api::{BlobBody, BlobMeta, BlobRead, BlobStore, ByteRange, StorageClass, Usage};
pub use error::{BlobError, Result};
