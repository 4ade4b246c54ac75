//! QuickTok blob storage: videos, renditions, segments and covers. [`BlobStore`] is the
//! backend-neutral contract; the packed volume engine (the embedded default, Haystack style)
//! and the S3 backend implement it, and one test suite runs against both.

pub mod api;
pub mod config;
pub mod error;
pub mod s3;
pub mod testsuite;
pub mod tiering;
pub mod volume;

pub use api::{BlobBody, BlobMeta, BlobRead, BlobStore, ByteRange, StorageClass, Usage};
pub use config::{BlobBackend, BlobConfig};
pub use error::{BlobError, Result};
pub use s3::{S3Config, S3Store};
pub use volume::{VolumeConfig, VolumeStore};
