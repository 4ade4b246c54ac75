//! Media delivery: signed, expiring URLs for blobs and the HTTP serving of a blob with
//! `Range` (single and capped multi-range), `ETag`, `Last-Modified`, conditional requests and
//! immutable caching headers.
//!
//! Bytes flow from the blob store to the socket as a stream of verified chunks: the volume
//! engine checks each 64 KiB block's CRC before yielding it, so a copy into user space is the
//! price of never serving wrong bytes (`sendfile` would skip the check). Nothing is buffered
//! beyond one chunk per response.

pub mod range;
mod serve;
mod signer;

pub use serve::serve_blob;
pub use signer::MediaSigner;

use serde::{Deserialize, Serialize};

/// The `[media]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// Lifetime of a signed media URL, seconds.
    pub url_ttl_secs: u64,
    /// Most ranges honoured in one `Range` header; more get the whole body (200).
    pub max_ranges: u32,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig { url_ttl_secs: 6 * 3600, max_ranges: 8 }
    }
}
