//! The S3 backend: blobs as objects in one bucket of Amazon S3 or an S3-compatible server
//! (SeaweedFS in the tests), through `object_store`.
//!
//! **Layout.** Blob `id` is the object `{prefix}/{hh}/{id}` (decimal id), where `hh` is two
//! hex digits of a fixed hash of the id ([`object_key`]). The hash spreads keys over 256
//! prefixes (S3 scales request rates per prefix); it is not the id's last hex digits
//! because a Snowflake id ends in its per-millisecond sequence, which is mostly zero. The key
//! never depends on the storage class, so tiering never changes it.
//!
//! **Objects.** `Content-Type` is the blob's content type; user metadata
//! `x-amz-meta-quicktok-class` (`hot`/`warm`/`cold`) and `x-amz-meta-quicktok-created-ms`
//! hold the class and the creation time, so both survive copies and are read back by one
//! HEAD. The class is also sent as `x-amz-storage-class` (names in [`S3Config`]), which is
//! what Amazon S3 bills and tiers by; the metadata, not the storage class, is what `stat`
//! reports, because `object_store` does not expose the storage class of a HEAD. `etag` is
//! the object's ETag without quotes.
//!
//! **Writes.** Blobs up to `multipart_threshold_bytes` are buffered and sent in one PUT with
//! `If-None-Match: *`, so a live id is refused atomically (`AlreadyExists`). Larger blobs
//! stream through a multipart upload (two parts in flight at most); the body is never held
//! whole. A failing body, a wrong size or a failed part aborts the upload, so nothing is
//! stored; a put future dropped mid-upload aborts it in the background. Multipart uploads
//! check for a live id with a HEAD first: two concurrent multipart puts of the same id can
//! both succeed, the last one winning (ids are unique per upload, so this needs a caller
//! bug). A crash mid-upload leaves an incomplete upload behind: give the bucket an
//! `AbortIncompleteMultipartUpload` lifecycle rule. A put is durable when S3 acknowledges it.
//!
//! **Tiering.** `set_class` copies the object onto itself with the new storage class and
//! metadata (`x-amz-metadata-directive: REPLACE`), conditional on the ETag it just read, so
//! readers see the old or the new object and never a gap. CopyObject is limited to 5 GiB:
//! larger blobs cannot change class (`InvalidArgument`).
//!
//! **Reads.** Ranged reads are HTTP range GETs, streamed; `object_store` resumes a broken
//! stream from where it stopped. Integrity is S3's (it checksums stored data, TLS protects
//! the transfer): this backend does not re-verify the bytes it streams.
//!
//! **Usage** lists every object under the prefix (ListObjectsV2, 1000 per request) and
//! counts them by the storage class in the listing; only when two classes share an S3 name
//! does it HEAD each such object. It is exact but costs one request per 1000 blobs: an
//! operator query, not a hot path. Incomplete multipart uploads are not counted.
//!
//! **Deletes** HEAD first, because S3's DELETE does not say whether the object existed; two
//! concurrent deletes of one blob may both report `true`.

mod config;
mod raw;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use http::{HeaderMap, HeaderName, StatusCode};
use object_store::aws::{AmazonS3, AmazonS3Builder, AwsCredential, S3ConditionalPut};
use object_store::client::{HttpConnector, ReqwestConnector};
use object_store::path::Path;
use object_store::{
    Attribute, AttributeValue, Attributes, BackoffConfig, ClientOptions, GetOptions, GetRange,
    ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutMultipartOptions, PutOptions, PutPayload,
    RetryConfig, WriteMultipart,
};
use quicktok_core::Id;
use quicktok_core::clock::{SharedClock, SystemClock};
use tracing::{debug, warn};

use crate::api::{BlobBody, BlobMeta, BlobRead, BlobStore, ByteRange, StorageClass, Usage};
use crate::error::{BlobError, Result};

pub use config::{MAX_PARTS, MAX_PUT_SIZE, MIN_PART_SIZE, S3Config};

/// User metadata holding the QuickTok class (`x-amz-meta-quicktok-class`).
pub const META_CLASS: &str = "quicktok-class";
/// User metadata holding the creation time in Unix ms (`x-amz-meta-quicktok-created-ms`).
pub const META_CREATED: &str = "quicktok-created-ms";
/// Parts of one multipart upload sent at once: enough to overlap reading the body with
/// sending, while bounding memory to about three parts per upload.
const PARTS_IN_FLIGHT: usize = 2;
/// S3's largest object (5 TiB).
const MAX_OBJECT_SIZE: u64 = 5 * 1024 * 1024 * 1024 * 1024;
/// HEADs at once when `usage` must look at objects one by one.
const USAGE_HEADS_IN_FLIGHT: usize = 8;

/// The object key of blob `id` under `prefix` (no surrounding slashes; may be empty).
/// Stable forever: changing it would orphan every stored blob.
pub fn object_key(prefix: &str, id: Id) -> String {
    let spread = spread(id);
    if prefix.is_empty() {
        format!("{spread:02x}/{id}")
    } else {
        format!("{prefix}/{spread:02x}/{id}")
    }
}

/// The id a key of [`object_key`]'s layout names; `None` for foreign objects.
fn id_of_key(prefix: &str, key: &str) -> Option<Id> {
    let rest = if prefix.is_empty() { key } else { key.strip_prefix(prefix)?.strip_prefix('/')? };
    let (spread_hex, id) = rest.split_once('/')?;
    let id: Id = id.parse().ok()?;
    (spread_hex == format!("{:02x}", spread(id))).then_some(id)
}

/// The top byte of a Fibonacci hash of the id (every bit of the id moves it).
fn spread(id: Id) -> u8 {
    (id.0.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8
}

/// An S3 bucket (or a prefix of one) as a [`BlobStore`].
#[derive(Debug)]
pub struct S3Store {
    store: Arc<AmazonS3>,
    raw: raw::RawClient,
    config: S3Config,
    prefix: String,
    clock: SharedClock,
}

impl S3Store {
    /// A store for `config`. Makes no request: use [`S3Store::ping`] (via [`BlobStore`]) to
    /// check the server, [`S3Store::create_bucket`] to create the bucket.
    pub fn new(config: S3Config) -> Result<Self> {
        let prefix = config.validate()?;
        let mut options = ClientOptions::new()
            .with_connect_timeout(Duration::from_secs(config.connect_timeout_secs))
            .with_allow_http(config.allow_http);
        options = if config.request_timeout_secs == 0 {
            options.with_timeout_disabled()
        } else {
            options.with_timeout(Duration::from_secs(config.request_timeout_secs))
        };
        let retry = RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: config.max_retries,
            retry_timeout: Duration::from_secs(config.retry_timeout_secs),
        };
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_conditional_put(S3ConditionalPut::ETagMatch)
            .with_retry(retry)
            .with_client_options(options.clone());
        if !config.endpoint.is_empty() {
            builder = builder
                .with_endpoint(config.endpoint.trim_end_matches('/'))
                .with_virtual_hosted_style_request(false);
        }
        builder = builder.with_allow_http(config.allow_http);
        let credential = if config.access_key_id.is_empty() {
            // Unsigned requests; also keeps object_store from asking an instance-metadata
            // endpoint for credentials.
            builder = builder.with_skip_signature(true);
            None
        } else {
            builder = builder
                .with_access_key_id(&config.access_key_id)
                .with_secret_access_key(&config.secret_access_key);
            Some(AwsCredential {
                key_id: config.access_key_id.clone(),
                secret_key: config.secret_access_key.clone(),
                token: None,
            })
        };
        let store = builder
            .build()
            .map_err(|e| BlobError::InvalidConfig(format!("blob.s3: {}", error_chain(&e))))?;
        let http = ReqwestConnector::default()
            .connect(&options)
            .map_err(|e| BlobError::InvalidConfig(format!("blob.s3: {}", error_chain(&e))))?;
        let raw = raw::RawClient::new(
            http,
            &config.endpoint,
            &config.bucket,
            &config.region,
            credential,
            config.max_retries,
            Duration::from_secs(config.retry_timeout_secs),
        )?;
        Ok(S3Store { store: Arc::new(store), raw, config, prefix, clock: Arc::new(SystemClock) })
    }

    /// Uses `clock` for creation times (tests).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The configuration in use.
    pub fn config(&self) -> &S3Config {
        &self.config
    }

    /// Creates the configured bucket if it does not exist (development setups, tests);
    /// production buckets are made by their operators, with lifecycle rules.
    pub async fn create_bucket(&self) -> Result<()> {
        self.raw.create_bucket().await
    }

    /// Keys of incomplete multipart uploads under this store's prefix (at most 1000): puts
    /// that crashed before completing or aborting. Not blobs; a lifecycle rule removes them.
    pub async fn incomplete_uploads(&self) -> Result<Vec<String>> {
        self.raw.list_uploads(&self.list_prefix()).await
    }

    fn list_prefix(&self) -> String {
        if self.prefix.is_empty() { String::new() } else { format!("{}/", self.prefix) }
    }

    /// The object key of blob `id` in this store.
    pub fn key(&self, id: Id) -> String {
        object_key(&self.prefix, id)
    }

    fn path(&self, id: Id) -> Result<Path> {
        let key = self.key(id);
        Path::parse(&key).map_err(|e| BlobError::InvalidConfig(format!("blob.s3: key {key}: {e}")))
    }

    fn attributes(
        &self,
        class: StorageClass,
        created_at_ms: i64,
        content_type: &str,
    ) -> Attributes {
        let mut attributes = Attributes::new();
        attributes.insert(
            Attribute::ContentType,
            AttributeValue::from(content_type_or_default(content_type).to_owned()),
        );
        attributes.insert(Attribute::Metadata(META_CLASS.into()), class.as_str().into());
        attributes
            .insert(Attribute::Metadata(META_CREATED.into()), created_at_ms.to_string().into());
        let name = self.config.storage_class_name(class);
        if !name.is_empty() {
            attributes.insert(Attribute::StorageClass, AttributeValue::from(name.to_owned()));
        }
        attributes
    }

    /// HEAD of blob `id`: its metadata and the raw (quoted) ETag, `None` if absent.
    async fn head(&self, id: Id) -> Result<Option<(BlobMeta, String)>> {
        let options = GetOptions { head: true, ..GetOptions::default() };
        match self.store.get_opts(&self.path(id)?, options).await {
            Ok(result) => {
                let raw_etag = result.meta.e_tag.clone().unwrap_or_default();
                Ok(Some((meta_of(id, &result.meta, &result.attributes), raw_etag)))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(map_error(e, id)),
        }
    }

    async fn put_single(
        &self,
        id: Id,
        size: u64,
        attributes: Attributes,
        body: BlobBody,
    ) -> Result<Option<String>> {
        let chunks = collect_exact(body, size).await?;
        let options = PutOptions { mode: PutMode::Create, attributes, ..PutOptions::default() };
        let payload: PutPayload = chunks.into_iter().collect();
        let result = self
            .store
            .put_opts(&self.path(id)?, payload, options)
            .await
            .map_err(|e| map_error(e, id))?;
        Ok(result.e_tag)
    }

    async fn put_multipart(
        &self,
        id: Id,
        size: u64,
        attributes: Attributes,
        mut body: BlobBody,
    ) -> Result<Option<String>> {
        if self.head(id).await?.is_some() {
            return Err(BlobError::AlreadyExists(id));
        }
        let part_size = usize::try_from(self.config.part_size_for(size))
            .map_err(|_| BlobError::InvalidConfig("part size exceeds memory".into()))?;
        let options = PutMultipartOptions { attributes, ..PutMultipartOptions::default() };
        let upload = self
            .store
            .put_multipart_opts(&self.path(id)?, options)
            .await
            .map_err(|e| map_error(e, id))?;
        let mut guard = UploadGuard {
            id,
            writer: Some(WriteMultipart::new_with_chunk_size(upload, part_size)),
        };
        let mut received = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    guard.abort().await;
                    return Err(BlobError::Body(e.to_string()));
                }
            };
            received += chunk.len() as u64;
            if received > size {
                guard.abort().await;
                let actual = drain_count(received, &mut body).await?;
                return Err(BlobError::SizeMismatch { announced: size, actual });
            }
            let Some(writer) = guard.writer.as_mut() else {
                return Err(BlobError::Unavailable("s3: upload already finished".into()));
            };
            if let Err(e) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
                guard.abort().await;
                return Err(map_error(e, id));
            }
            writer.put(chunk);
        }
        if received != size {
            guard.abort().await;
            return Err(BlobError::SizeMismatch { announced: size, actual: received });
        }
        let Some(writer) = guard.writer.take() else {
            return Err(BlobError::Unavailable("s3: upload already finished".into()));
        };
        // `finish` aborts the upload itself when a part or the completion fails.
        let result = writer.finish().await.map_err(|e| map_error(e, id))?;
        Ok(result.e_tag)
    }
}

#[async_trait::async_trait]
impl BlobStore for S3Store {
    async fn put(
        &self,
        id: Id,
        class: StorageClass,
        size: u64,
        content_type: &str,
        body: BlobBody,
    ) -> Result<BlobMeta> {
        // Refuse what S3 would refuse, before reading the body.
        raw::header_value(content_type)?;
        if size > MAX_OBJECT_SIZE {
            return Err(BlobError::InvalidArgument(format!(
                "a blob of {size} bytes exceeds S3's largest object ({MAX_OBJECT_SIZE} bytes)"
            )));
        }
        let created_at_ms = self.clock.now_ms();
        let attributes = self.attributes(class, created_at_ms, content_type);
        let etag = if size <= self.config.multipart_threshold_bytes {
            self.put_single(id, size, attributes, body).await?
        } else {
            self.put_multipart(id, size, attributes, body).await?
        };
        let etag = match etag {
            Some(etag) => clean_etag(&etag),
            // Every S3 server sends one; a HEAD covers any that does not.
            None => self.head(id).await?.map(|(meta, _)| meta.etag).unwrap_or_default(),
        };
        debug!(%id, size, class = class.as_str(), "stored blob in s3");
        Ok(BlobMeta {
            id,
            size,
            class,
            created_at_ms,
            etag,
            content_type: content_type_or_default(content_type).to_owned(),
        })
    }

    async fn get(&self, id: Id, range: Option<ByteRange>) -> Result<BlobRead> {
        if let Some(r) = range {
            // HTTP cannot ask for zero bytes: answer empty and inverted ranges from a HEAD.
            if r.start >= r.end {
                let (meta, _) = self.head(id).await?.ok_or(BlobError::NotFound(id))?;
                if r.start > r.end || r.end > meta.size {
                    return Err(BlobError::RangeNotSatisfiable {
                        start: r.start,
                        end: r.end,
                        size: meta.size,
                    });
                }
                return Ok(BlobRead { meta, range: r, body: futures::stream::empty().boxed() });
            }
        }
        let options = GetOptions {
            range: range.map(|r| GetRange::Bounded(r.start..r.end)),
            ..GetOptions::default()
        };
        let result = match self.store.get_opts(&self.path(id)?, options).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Err(BlobError::NotFound(id)),
            Err(e) => {
                // A 416 (start past the end) arrives as a generic error: tell it apart by size.
                if let Some(r) = range {
                    let (meta, _) = self.head(id).await?.ok_or(BlobError::NotFound(id))?;
                    if r.end > meta.size {
                        return Err(BlobError::RangeNotSatisfiable {
                            start: r.start,
                            end: r.end,
                            size: meta.size,
                        });
                    }
                }
                return Err(map_error(e, id));
            }
        };
        let meta = meta_of(id, &result.meta, &result.attributes);
        let served = ByteRange { start: result.range.start, end: result.range.end };
        if let Some(r) = range {
            // S3 shortens a range that runs past the end; the contract refuses it.
            if served != r {
                return Err(BlobError::RangeNotSatisfiable {
                    start: r.start,
                    end: r.end,
                    size: meta.size,
                });
            }
        }
        let body = result.into_stream().map_err(move |e| map_error(e, id)).boxed();
        Ok(BlobRead { meta, range: served, body })
    }

    async fn stat(&self, id: Id) -> Result<Option<BlobMeta>> {
        Ok(self.head(id).await?.map(|(meta, _)| meta))
    }

    async fn delete(&self, id: Id) -> Result<bool> {
        if self.head(id).await?.is_none() {
            return Ok(false);
        }
        match self.store.delete(&self.path(id)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(true),
            Err(e) => Err(map_error(e, id)),
        }
    }

    async fn set_class(&self, id: Id, class: StorageClass) -> Result<BlobMeta> {
        // A blob replaced between our HEAD and the copy fails the copy's ETag condition;
        // look again a few times rather than copying bytes we did not inspect.
        for _ in 0..3 {
            let (meta, raw_etag) = self.head(id).await?.ok_or(BlobError::NotFound(id))?;
            if meta.class == class {
                return Ok(meta);
            }
            if meta.size > MAX_PUT_SIZE {
                // UploadPartCopy could move it; blobs this large are not short videos.
                return Err(BlobError::InvalidArgument(format!(
                    "blob {id} has {} bytes, more than S3 CopyObject's 5 GiB: its class cannot change",
                    meta.size
                )));
            }
            let mut headers = HeaderMap::new();
            headers.insert(http::header::CONTENT_TYPE, raw::header_value(&meta.content_type)?);
            headers.insert(
                HeaderName::from_static("x-amz-meta-quicktok-class"),
                raw::header_value(class.as_str())?,
            );
            headers.insert(
                HeaderName::from_static("x-amz-meta-quicktok-created-ms"),
                raw::header_value(&meta.created_at_ms.to_string())?,
            );
            let name = self.config.storage_class_name(class);
            if !name.is_empty() {
                headers.insert(
                    HeaderName::from_static("x-amz-storage-class"),
                    raw::header_value(name)?,
                );
            }
            let (response, etag) =
                self.raw.copy_in_place(&self.key(id), &raw_etag, headers).await?;
            match response.status {
                s if s.is_success() && !response.is_error_document() => {
                    let etag = etag.map(|e| clean_etag(&e)).unwrap_or(meta.etag);
                    debug!(%id, class = class.as_str(), "moved blob to another s3 storage class");
                    return Ok(BlobMeta { class, etag, ..meta });
                }
                StatusCode::NOT_FOUND => return Err(BlobError::NotFound(id)),
                StatusCode::PRECONDITION_FAILED => continue,
                _ => {
                    return Err(BlobError::Unavailable(format!(
                        "s3: changing the class of {id} failed: {}",
                        response.describe()
                    )));
                }
            }
        }
        Err(BlobError::Unavailable(format!("s3: blob {id} kept changing during set_class")))
    }

    async fn usage(&self) -> Result<Usage> {
        let mut totals = [(0u64, 0u64); 3];
        let index =
            |class: StorageClass| StorageClass::ALL.iter().position(|c| *c == class).unwrap_or(0);
        let list_prefix = self.list_prefix();
        let mut undecided = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let (entries, next) = self.raw.list_page(&list_prefix, token.as_deref()).await?;
            for entry in entries {
                let Some(id) = id_of_key(&self.prefix, &entry.key) else {
                    debug!(key = entry.key, "ignoring a foreign object in the blob prefix");
                    continue;
                };
                let name = entry.storage_class.as_deref().unwrap_or("STANDARD");
                match self.config.class_for_name(name) {
                    Some(class) => {
                        let slot = &mut totals[index(class)];
                        slot.0 += 1;
                        slot.1 += entry.size;
                    }
                    None => undecided.push(id),
                }
            }
            match next {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        // Storage class names shared by several classes (or unknown): ask each object.
        let mut heads = futures::stream::iter(undecided)
            .map(|id| async move { self.head(id).await })
            .buffer_unordered(USAGE_HEADS_IN_FLIGHT);
        while let Some(head) = heads.next().await {
            if let Some((meta, _)) = head? {
                let slot = &mut totals[index(meta.class)];
                slot.0 += 1;
                slot.1 += meta.size;
            }
        }
        let classes = StorageClass::ALL
            .iter()
            .zip(totals)
            // S3 bills live bytes; there is no garbage of ours to count.
            .map(|(class, (count, bytes))| (*class, count, bytes, bytes))
            .collect();
        Ok(Usage { classes })
    }

    async fn ping(&self) -> Result<()> {
        let response = self.raw.head_bucket().await?;
        if response.status.is_success() {
            Ok(())
        } else {
            Err(BlobError::Unavailable(format!(
                "s3: bucket {} is not usable: {}",
                self.config.bucket,
                response.describe()
            )))
        }
    }
}

/// Aborts a multipart upload that did not complete: explicitly on errors, or in the
/// background when the put future is dropped mid-upload.
struct UploadGuard {
    id: Id,
    writer: Option<WriteMultipart>,
}

impl UploadGuard {
    async fn abort(&mut self) {
        if let Some(writer) = self.writer.take() {
            abort_upload(self.id, writer).await;
        }
    }
}

impl Drop for UploadGuard {
    fn drop(&mut self) {
        if let Some(writer) = self.writer.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let id = self.id;
            runtime.spawn(abort_upload(id, writer));
        }
    }
}

async fn abort_upload(id: Id, writer: WriteMultipart) {
    if let Err(e) = writer.abort().await {
        // The parts stay until a lifecycle rule removes them; no blob is visible either way.
        warn!(%id, error = %error_chain(&e), "could not abort an s3 multipart upload");
    }
}

/// Reads the whole body of a single-PUT blob, checking its size.
async fn collect_exact(mut body: BlobBody, size: u64) -> Result<Vec<Bytes>> {
    let mut chunks = Vec::new();
    let mut received = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| BlobError::Body(e.to_string()))?;
        received += chunk.len() as u64;
        if received > size {
            let actual = drain_count(received, &mut body).await?;
            return Err(BlobError::SizeMismatch { announced: size, actual });
        }
        if !chunk.is_empty() {
            chunks.push(chunk);
        }
    }
    if received != size {
        return Err(BlobError::SizeMismatch { announced: size, actual: received });
    }
    Ok(chunks)
}

/// Reads the rest of an oversized body without keeping it, to report its real size.
async fn drain_count(mut received: u64, body: &mut BlobBody) -> Result<u64> {
    while let Some(chunk) = body.next().await {
        received += chunk.map_err(|e| BlobError::Body(e.to_string()))?.len() as u64;
    }
    Ok(received)
}

fn content_type_or_default(content_type: &str) -> &str {
    if content_type.is_empty() { "application/octet-stream" } else { content_type }
}

/// The blob metadata of an object, from its HEAD or GET answer.
fn meta_of(id: Id, object: &ObjectMeta, attributes: &Attributes) -> BlobMeta {
    let text = |key: &Attribute| attributes.get(key).map(|v| v.as_ref().to_owned());
    let class_text = text(&Attribute::Metadata(META_CLASS.into()));
    let class = match class_text.as_deref() {
        Some("hot") => StorageClass::Hot,
        Some("warm") => StorageClass::Warm,
        Some("cold") => StorageClass::Cold,
        other => {
            // Objects written by something else: treat them as hot rather than fail reads.
            warn!(%id, class = ?other, "s3 object without a valid quicktok class");
            StorageClass::Hot
        }
    };
    let created_at_ms = text(&Attribute::Metadata(META_CREATED.into()))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| object.last_modified.timestamp_millis());
    let etag =
        object.e_tag.as_deref().map(clean_etag).or_else(|| object.version.clone()).unwrap_or_else(
            || format!("{}-{}", object.size, object.last_modified.timestamp_millis()),
        );
    BlobMeta {
        id,
        size: object.size,
        class,
        created_at_ms,
        etag,
        content_type: text(&Attribute::ContentType)
            .unwrap_or_else(|| content_type_or_default("").to_owned()),
    }
}

/// An ETag without its quotes (and weak marker): the HTTP layer adds its own.
fn clean_etag(etag: &str) -> String {
    etag.trim_start_matches("W/").trim_matches('"').to_owned()
}

/// Maps an `object_store` error on blob `id` to the crate's error.
fn map_error(e: object_store::Error, id: Id) -> BlobError {
    match e {
        object_store::Error::NotFound { .. } => BlobError::NotFound(id),
        object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. } => {
            BlobError::AlreadyExists(id)
        }
        e @ (object_store::Error::NotImplemented { .. }
        | object_store::Error::NotSupported { .. }
        | object_store::Error::UnknownConfigurationKey { .. }) => {
            BlobError::InvalidConfig(format!("blob.s3: {}", error_chain(&e)))
        }
        other => BlobError::Unavailable(format!("s3: {}", error_chain(&other))),
    }
}

/// An error and its sources on one line, skipping sources its message already quotes.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        if !text.contains(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_spread_and_parse_back() {
        let id = Id(7_261_839_467_622_400_000);
        let key = object_key("blobs", id);
        assert!(key.starts_with("blobs/") && key.ends_with("/7261839467622400000"), "{key}");
        assert_eq!(id_of_key("blobs", &key), Some(id));
        assert_eq!(id_of_key("", &object_key("", id)), Some(id));
        assert_eq!(id_of_key("blobs", "blobs/zz/7261839467622400000"), None);
        assert_eq!(id_of_key("blobs", "other/00/1"), None);
        // Ids one millisecond apart with sequence 0 still land in many prefixes.
        let spreads: std::collections::HashSet<u8> =
            (0..64u64).map(|ms| spread(Id(ms << 22))).collect();
        assert!(spreads.len() > 32, "{}", spreads.len());
    }

    #[test]
    fn etags_lose_quotes() {
        assert_eq!(clean_etag("\"abc-3\""), "abc-3");
        assert_eq!(clean_etag("W/\"abc\""), "abc");
        assert_eq!(clean_etag("abc"), "abc");
    }

    #[test]
    fn new_validates_and_makes_no_request() {
        assert!(S3Store::new(S3Config::default()).is_ok());
        let bad = S3Config { bucket: String::new(), ..S3Config::default() };
        assert!(matches!(S3Store::new(bad), Err(BlobError::InvalidConfig(_))));
    }
}
