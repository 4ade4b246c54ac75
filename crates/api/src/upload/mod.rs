//! Resumable uploads (tus 1.0.0) behind `/api/v1/uploads`: where partial files live, how
//! a request's bytes are appended, the per-upload lock, quotas, and the cleanup of expired
//! uploads. The HTTP surface is `routes/uploads.rs`.
//!
//! Durability: the bytes of upload `id` are in `<data_dir>/uploads/<id>.part`; the offset
//! in the metadata store counts only bytes that were fsynced before it was stored, so the
//! stored offset never claims a byte the disk may not have. Bytes past the stored offset
//! (written by a request that died before storing its offset) are cut off by the next
//! write. A request whose body is cut off mid-way keeps what arrived: its bytes are synced
//! and the offset stored, and a later `HEAD` reports exactly that.
//!
//! The writing runs in a task of its own, holding the upload's lock, so it finishes (syncs
//! and stores the offset) even when the request's future is dropped: client disconnects,
//! the request timeout.
//!
//! Termination deletes the upload and its video row (the video never existed for anyone
//! else); a completed upload cannot be terminated (its video is being processed — delete
//! the video instead).

pub mod checksum;
mod config;
pub mod lock;
pub mod metadata;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use futures::StreamExt;
use http::StatusCode;
use quicktok_core::{ErrorCode, Event, Id};
use quicktok_log::NewRecord;
use quicktok_meta::Upload;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

pub use config::UploadConfig;

use crate::error::ApiError;
use crate::state::AppState;
use checksum::{Expected, Hasher};
use lock::{UploadLock, UploadLocks};

/// The tus protocol version spoken.
pub const TUS_VERSION: &str = "1.0.0";
/// The extensions offered in `Tus-Extension`.
pub const TUS_EXTENSIONS: &str = "creation,creation-with-upload,termination,checksum,expiration";
/// The status tus defines for a checksum mismatch.
pub const CHECKSUM_MISMATCH: u16 = 460;

/// The upload machinery shared by the handlers (inside [`AppState`]).
#[derive(Debug)]
pub struct UploadService {
    config: UploadConfig,
    dir: PathBuf,
    locks: Arc<UploadLocks>,
    /// Serialises quota check + creation so concurrent creations cannot both squeeze under
    /// a quota (within one API node).
    creating: tokio::sync::Mutex<()>,
}

/// The partial file of upload `id` under `data_dir`; the pipeline reads completed uploads
/// from here.
pub fn part_path(data_dir: &Path, id: Id) -> PathBuf {
    data_dir.join("uploads").join(format!("{id}.part"))
}

/// How an append ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOutcome {
    /// The whole body was stored; the offset is now this (the upload may be complete).
    Stored { offset: u64, completed: bool },
    /// The body stopped early (client gone); what arrived is stored up to this offset.
    CutOff { offset: u64 },
    /// The body's checksum did not match; nothing was kept.
    ChecksumMismatch,
    /// The body ran past the upload's length; nothing was kept.
    TooLarge,
}

/// What [`UploadService::cleanup_expired`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CleanupReport {
    /// Expired unfinished uploads removed (file, upload row and video row).
    pub uploads_removed: u64,
    /// Partial files without an upload row (left by a crash), older than the expiry.
    pub orphan_files_removed: u64,
}

impl UploadService {
    /// Checks `config` and makes sure `<data_dir>/uploads` exists.
    pub fn new(config: UploadConfig, data_dir: &Path) -> Result<UploadService, String> {
        config.validate()?;
        let dir = data_dir.join("uploads");
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(UploadService {
            config,
            dir,
            locks: Arc::new(UploadLocks::default()),
            creating: tokio::sync::Mutex::new(()),
        })
    }

    pub fn config(&self) -> &UploadConfig {
        &self.config
    }

    /// The partial file of upload `id`.
    pub fn path(&self, id: Id) -> PathBuf {
        self.dir.join(format!("{id}.part"))
    }

    /// Takes upload `id`'s lock, waiting up to the configured time.
    pub async fn lock(&self, id: Id) -> Result<UploadLock, ApiError> {
        let wait = Duration::from_millis(self.config.lock_wait_ms);
        self.locks.acquire(id, wait).await.ok_or_else(|| {
            ApiError::new(
                StatusCode::LOCKED,
                ErrorCode::Conflict,
                "another request is writing to this upload; retry after it ends",
            )
        })
    }

    /// Held while checking a quota and creating an upload.
    pub async fn creation_guard(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.creating.lock().await
    }

    /// Creates the empty partial file of upload `id` (durably).
    pub async fn create_file(&self, id: Id) -> std::io::Result<()> {
        let file = tokio::fs::File::create(self.path(id)).await?;
        file.sync_all().await?;
        sync_dir(&self.dir).await
    }

    /// Removes upload `id`'s partial file; a missing file is fine.
    pub async fn remove_file(&self, id: Id) -> std::io::Result<()> {
        match tokio::fs::remove_file(self.path(id)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Removes expired unfinished uploads (partial file, upload row, and video row) as of
    /// `now_ms`, and partial files no upload row knows that are older than the expiry.
    /// Uploads busy with a request are skipped (they go next time). The scheduler calls
    /// this periodically.
    pub async fn cleanup_expired(
        &self,
        state: &AppState,
        now_ms: i64,
    ) -> Result<CleanupReport, ApiError> {
        const BATCH: u32 = 200;
        let mut report = CleanupReport::default();
        loop {
            let batch = state.meta().uploads().expired(now_ms, BATCH).await?;
            let mut progressed = false;
            for upload in &batch {
                let Some(_lock) = self.locks.acquire(upload.id, Duration::ZERO).await else {
                    continue;
                };
                // Re-read under the lock: a request may have just moved it on.
                match state.meta().uploads().by_id(upload.id).await? {
                    Some(u) if u.is_expired(now_ms) => {}
                    _ => continue,
                }
                if state.meta().uploads().delete(upload.id).await? {
                    report.uploads_removed += 1;
                    progressed = true;
                }
                if let Err(e) = self.remove_file(upload.id).await {
                    tracing::warn!(upload = %upload.id, error = %e, "cannot remove partial file");
                }
            }
            if batch.len() < BATCH as usize || !progressed {
                break;
            }
        }
        report.orphan_files_removed = self.remove_orphans(state, now_ms).await?;
        if report != CleanupReport::default() {
            tracing::info!(?report, "expired uploads removed");
        }
        Ok(report)
    }

    async fn remove_orphans(&self, state: &AppState, now_ms: i64) -> Result<u64, ApiError> {
        let mut removed = 0;
        let mut entries = match tokio::fs::read_dir(&self.dir).await {
            Ok(entries) => entries,
            Err(e) => return Err(ApiError::internal(format!("listing uploads: {e}"))),
        };
        let cutoff = now_ms.saturating_sub(self.config.expiry_ms());
        while let Ok(Some(entry)) = entries.next_entry().await {
            let name = entry.file_name();
            let Some(id) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".part"))
                .and_then(|n| n.parse::<Id>().ok())
            else {
                continue;
            };
            let modified_ms = entry
                .metadata()
                .await
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(i64::MAX, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
            if modified_ms > cutoff || state.meta().uploads().by_id(id).await?.is_some() {
                continue;
            }
            if self.remove_file(id).await.is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// Appends `body` to `upload` (read under `lock`, which the append keeps until it ends) and
/// stores the new offset. Runs in a task of its own, so a dropped request future (client
/// gone, request timeout) still ends with synced bytes and a stored offset.
pub async fn append(
    state: &AppState,
    upload: Upload,
    body: Body,
    expected: Option<Expected>,
    lock: UploadLock,
) -> Result<AppendOutcome, ApiError> {
    let state = state.clone();
    let task = tokio::spawn(async move {
        let _lock = lock;
        append_locked(&state, &upload, body, expected).await
    });
    task.await.map_err(|e| ApiError::internal(format!("upload task failed: {e}")))?
}

async fn append_locked(
    state: &AppState,
    upload: &Upload,
    body: Body,
    expected: Option<Expected>,
) -> Result<AppendOutcome, ApiError> {
    let service = state.uploads();
    let path = service.path(upload.id);
    let start = upload.offset;
    let remaining = upload.length.saturating_sub(start);
    let io = |what: &str, e: std::io::Error| {
        ApiError::internal(format!("upload {}: {what} {}: {e}", upload.id, path.display()))
    };
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .await
        .map_err(|e| io("opening", e))?;
    let on_disk = file.metadata().await.map_err(|e| io("inspecting", e))?.len();
    if on_disk < start {
        return Err(ApiError::internal(format!(
            "upload {}: partial file has {on_disk} bytes, fewer than the stored offset {start}",
            upload.id
        )));
    }
    // Bytes past the stored offset were never acknowledged: drop them.
    file.set_len(start).await.map_err(|e| io("truncating", e))?;
    file.seek(std::io::SeekFrom::Start(start)).await.map_err(|e| io("seeking", e))?;

    let mut hasher = expected.as_ref().map(|e| Hasher::new(e.algorithm));
    let mut written: u64 = 0;
    let mut cut = false;
    let mut too_large = false;
    let mut write_error = None;
    let mut stream = body.into_data_stream();
    while let Some(frame) = stream.next().await {
        let bytes = match frame {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::debug!(upload = %upload.id, error = %e, "upload body cut off");
                cut = true;
                break;
            }
        };
        let len = bytes.len() as u64;
        if written.saturating_add(len) > remaining {
            too_large = true;
            break;
        }
        if let Err(e) = file.write_all(&bytes).await {
            write_error = Some(e);
            break;
        }
        if let Some(h) = hasher.as_mut() {
            h.update(&bytes);
        }
        written += len;
    }
    drop(stream);
    if write_error.is_none()
        && let Err(e) = file.flush().await
    {
        write_error = Some(e);
    }
    let mismatch = match (expected, hasher) {
        // A cut-off chunk cannot be verified: it is dropped whole.
        (Some(_), _) if cut => true,
        (Some(e), Some(h)) => h.finish() != e.digest,
        _ => false,
    };
    if too_large || mismatch || write_error.is_some() {
        file.set_len(start).await.map_err(|e| io("truncating", e))?;
        file.sync_data().await.map_err(|e| io("syncing", e))?;
        if let Some(e) = write_error {
            return Err(io("writing", e));
        }
        return Ok(if too_large {
            AppendOutcome::TooLarge
        } else {
            AppendOutcome::ChecksumMismatch
        });
    }
    file.sync_data().await.map_err(|e| io("syncing", e))?;
    drop(file);

    let now = state.clock().now_ms();
    let offset = start + written;
    let completed = offset == upload.length;
    let stored = if completed {
        state.meta().uploads().complete(upload.id, start, now).await?
    } else {
        let expires = now.saturating_add(service.config().expiry_ms());
        state.meta().uploads().set_offset(upload.id, start, offset, expires, now).await?
    };
    if !stored {
        // Cannot happen while the lock is held, unless the row went away (terminated by
        // another node, or cleaned up).
        return Err(ApiError::conflict(ErrorCode::Conflict, "the upload changed meanwhile"));
    }
    if completed {
        publish_completed(state, upload, now).await?;
    }
    Ok(if cut {
        AppendOutcome::CutOff { offset }
    } else {
        AppendOutcome::Stored { offset, completed }
    })
}

/// Appends [`Event::UploadCompleted`] for `upload` (topic `uploads`).
pub async fn publish_completed(
    state: &AppState,
    upload: &Upload,
    at_ms: i64,
) -> Result<(), ApiError> {
    let event = Event::UploadCompleted {
        upload_id: upload.id,
        video_id: upload.video_id,
        owner: upload.owner_id,
        size: upload.length,
        at_ms,
    };
    state
        .log()
        .append(event.topic(), vec![NewRecord { timestamp_ms: at_ms, payload: event.encode() }])
        .await?;
    tracing::info!(upload = %upload.id, video = %upload.video_id, size = upload.length, "upload completed");
    Ok(())
}

/// The answer to `OPTIONS /api/v1/uploads`: the server's tus capabilities.
pub fn capabilities(config: &UploadConfig) -> axum::response::Response {
    use axum::response::IntoResponse;
    use http::HeaderValue;
    let mut response = StatusCode::NO_CONTENT.into_response();
    let h = response.headers_mut();
    h.insert("tus-resumable", HeaderValue::from_static(TUS_VERSION));
    h.insert("tus-version", HeaderValue::from_static(TUS_VERSION));
    h.insert("tus-extension", HeaderValue::from_static(TUS_EXTENSIONS));
    h.insert("tus-max-size", HeaderValue::from(config.max_size_bytes));
    h.insert("tus-checksum-algorithm", HeaderValue::from_static(checksum::ALGORITHMS));
    response
}

/// Middleware placed outside the CORS layer: the CORS layer answers every `OPTIONS` as a
/// preflight, which would hide tus discovery. A plain `OPTIONS /api/v1/uploads` (no
/// `Access-Control-Request-Method`, so not a preflight) gets the tus capabilities; every
/// other request passes on.
pub async fn tus_options(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let is_tus_discovery = request.method() == http::Method::OPTIONS
        && request.uri().path().trim_end_matches('/') == "/api/v1/uploads"
        && !request.headers().contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD);
    if is_tus_discovery {
        return capabilities(state.uploads().config());
    }
    next.run(request).await
}

/// Makes a directory entry change (a created file) durable.
async fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        tokio::fs::File::open(dir).await?.sync_all().await
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}
