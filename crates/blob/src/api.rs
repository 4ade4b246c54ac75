//! The [`BlobStore`] contract shared by every backend.

use bytes::Bytes;
use futures::stream::BoxStream;
use quicktok_core::Id;
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// Storage tiers (F4.4). Hot blobs sit on the fastest media, cold ones on the cheapest;
/// moving a blob between classes never changes its id, so playback URLs keep working.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StorageClass {
    Hot,
    Warm,
    Cold,
}

impl StorageClass {
    pub const ALL: [StorageClass; 3] = [StorageClass::Hot, StorageClass::Warm, StorageClass::Cold];

    pub fn as_str(self) -> &'static str {
        match self {
            StorageClass::Hot => "hot",
            StorageClass::Warm => "warm",
            StorageClass::Cold => "cold",
        }
    }
}

/// A half-open byte range `start..end` of a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What is known about a stored blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobMeta {
    pub id: Id,
    /// Size in bytes.
    pub size: u64,
    pub class: StorageClass,
    /// When it was stored (Unix ms); blobs are immutable, so this is also `Last-Modified`.
    pub created_at_ms: i64,
    /// A strong validator for HTTP `ETag`: changes whenever the content could differ.
    pub etag: String,
    /// MIME type given at `put`.
    pub content_type: String,
}

/// The bytes of a `put`: a stream of chunks whose total must equal the announced size.
pub type BlobBody = BoxStream<'static, std::io::Result<Bytes>>;

/// The answer to a ranged `get`: the blob's metadata, the range served, and its bytes.
/// Every chunk is verified before it is yielded; a checksum failure ends the stream with
/// [`crate::BlobError::Integrity`].
pub struct BlobRead {
    pub meta: BlobMeta,
    pub range: ByteRange,
    pub body: BoxStream<'static, Result<Bytes>>,
}

impl std::fmt::Debug for BlobRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobRead").field("meta", &self.meta).field("range", &self.range).finish()
    }
}

/// Space used, per class, for operators and the tiering job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// (class, live blobs, live bytes, bytes on disk including garbage)
    pub classes: Vec<(StorageClass, u64, u64, u64)>,
}

/// A blob store. Blobs are immutable, identified by a 64-bit [`Id`] chosen by the caller
/// (a time-ordered id from `quicktok-core`).
#[async_trait::async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stores `size` bytes from `body` under `id` in `class`. Returns once the blob is durable
    /// (see the backend's promise). A body of the wrong length or a failing stream stores
    /// nothing. [`crate::BlobError::AlreadyExists`] if `id` is live.
    async fn put(
        &self,
        id: Id,
        class: StorageClass,
        size: u64,
        content_type: &str,
        body: BlobBody,
    ) -> Result<BlobMeta>;

    /// Reads `range` of blob `id` (`None`: the whole blob). A range past the end is
    /// [`crate::BlobError::RangeNotSatisfiable`].
    async fn get(&self, id: Id, range: Option<ByteRange>) -> Result<BlobRead>;

    /// Metadata of blob `id`, `None` if absent.
    async fn stat(&self, id: Id) -> Result<Option<BlobMeta>>;

    /// Deletes blob `id`; `false` if it did not exist. Durable when it returns: a deleted
    /// blob never comes back, even after a crash.
    async fn delete(&self, id: Id) -> Result<bool>;

    /// Moves blob `id` to `class` (tiering). Readers see the blob throughout the move.
    async fn set_class(&self, id: Id, class: StorageClass) -> Result<BlobMeta>;

    /// Space used per class.
    async fn usage(&self) -> Result<Usage>;

    /// Whether the backend is reachable (for `/readyz`).
    async fn ping(&self) -> Result<()>;
}
