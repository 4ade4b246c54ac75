//! `/api/v1/uploads`: the tus 1.0.0 resumable upload server (core protocol plus the
//! creation, creation-with-upload, termination, checksum and expiration extensions).
//!
//! Every response carries `Tus-Resumable: 1.0.0`; a request other than `OPTIONS` without
//! it is answered 412 with `Tus-Version`. Errors keep the API's JSON error body, although
//! tus clients only read the status and headers. Uploads are private: another user's
//! upload answers 404, never 403. A `PATCH` or `DELETE` while another request writes the
//! same upload waits up to `uploads.lock_wait_ms`, then answers 423 Locked. See
//! [`crate::upload`] for durability and the lifecycle.

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use quicktok_core::{ErrorCode, Id};
use quicktok_meta::{NewUpload, NewVideo, Upload};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::AuthUser;
use crate::state::AppState;
use crate::upload::checksum::Expected;
use crate::upload::{
    AppendOutcome, CHECKSUM_MISMATCH, TUS_VERSION, append, capabilities, metadata,
    publish_completed,
};

const TUS_RESUMABLE: HeaderName = HeaderName::from_static("tus-resumable");
const TUS_VERSION_H: HeaderName = HeaderName::from_static("tus-version");
const UPLOAD_LENGTH: HeaderName = HeaderName::from_static("upload-length");
const UPLOAD_DEFER_LENGTH: HeaderName = HeaderName::from_static("upload-defer-length");
const UPLOAD_OFFSET: HeaderName = HeaderName::from_static("upload-offset");
const UPLOAD_METADATA: HeaderName = HeaderName::from_static("upload-metadata");
const UPLOAD_EXPIRES: HeaderName = HeaderName::from_static("upload-expires");
const UPLOAD_CHECKSUM: HeaderName = HeaderName::from_static("upload-checksum");
const VIDEO_ID: HeaderName = HeaderName::from_static("quicktok-video-id");
const OFFSET_OCTET_STREAM: &str = "application/offset+octet-stream";

/// The upload routes with their own layers: no body limit (bodies are streamed to disk),
/// and the `Tus-Resumable` handling.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(options, create))
        .routes(routes!(head, patch, terminate))
        .layer(axum::middleware::from_fn(tus_resumable))
        .layer(DefaultBodyLimit::disable())
}

/// Refuses requests that do not speak tus 1.0.0 (except `OPTIONS`, which is how a client
/// finds out) and stamps `Tus-Resumable` on every response.
async fn tus_resumable(request: Request, next: Next) -> Response {
    let speaks_tus = request.headers().get(TUS_RESUMABLE).is_some_and(|v| v == TUS_VERSION);
    let mut response = if speaks_tus || request.method() == Method::OPTIONS {
        next.run(request).await
    } else {
        ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            ErrorCode::BadRequest,
            format!("this server speaks tus {TUS_VERSION}: send Tus-Resumable: {TUS_VERSION}"),
        )
        .with_header(TUS_VERSION_H, HeaderValue::from_static(TUS_VERSION))
        .into_response()
    };
    response.headers_mut().insert(TUS_RESUMABLE, HeaderValue::from_static(TUS_VERSION));
    response
}

fn header_str<'h>(headers: &'h HeaderMap, name: &HeaderName) -> ApiResult<Option<&'h str>> {
    headers
        .get(name)
        .map(|v| v.to_str().map_err(|_| ApiError::bad_request(format!("{name} is not ASCII"))))
        .transpose()
}

fn header_u64(headers: &HeaderMap, name: &HeaderName) -> ApiResult<Option<u64>> {
    header_str(headers, name)?
        .map(|v| {
            v.trim().parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!("{name} must be a non-negative integer"))
            })
        })
        .transpose()
}

fn number(n: impl std::fmt::Display) -> HeaderValue {
    HeaderValue::from_str(&n.to_string()).unwrap_or(HeaderValue::from_static("0"))
}

fn http_date(ms: i64) -> HeaderValue {
    let secs = u64::try_from(ms.div_euclid(1000)).unwrap_or(0);
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    HeaderValue::from_str(&httpdate::fmt_http_date(time))
        .unwrap_or(HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"))
}

fn too_large(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::PayloadTooLarge, message)
}

fn checksum_mismatch() -> ApiError {
    let status = StatusCode::from_u16(CHECKSUM_MISMATCH).unwrap_or(StatusCode::BAD_REQUEST);
    ApiError::new(status, ErrorCode::BadRequest, "checksum mismatch: the chunk was discarded")
}

fn no_such_upload() -> ApiError {
    ApiError::not_found("no such upload")
}

fn is_offset_stream(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(OFFSET_OCTET_STREAM))
}

fn parse_checksum(headers: &HeaderMap) -> ApiResult<Option<Expected>> {
    header_str(headers, &UPLOAD_CHECKSUM)?
        .map(|v| Expected::parse(v).map_err(|e| ApiError::bad_request(e.to_string())))
        .transpose()
}

/// The caller's upload `id`: 404 for unknown ids and other users' uploads, 410 for expired
/// unfinished ones.
async fn owned_upload(state: &AppState, user: AuthUser, id: &str) -> ApiResult<Upload> {
    let id: Id = id.parse().map_err(|_| no_such_upload())?;
    let upload = state.meta().uploads().by_id(id).await?.ok_or_else(no_such_upload)?;
    if upload.owner_id != user.id {
        return Err(no_such_upload());
    }
    if upload.is_expired(state.clock().now_ms()) {
        return Err(ApiError::new(StatusCode::GONE, ErrorCode::Gone, "the upload expired"));
    }
    Ok(upload)
}

/// The server's tus capabilities. No authentication needed.
#[utoipa::path(options, path = "/uploads", tag = "uploads",
    responses((status = 204, description = "Capabilities in Tus-Version, Tus-Extension, Tus-Max-Size, Tus-Checksum-Algorithm")))]
pub async fn options(State(state): State<AppState>) -> Response {
    // Normally answered by `upload::tus_options` before the CORS layer; kept for the spec
    // and for routers assembled without that layer.
    capabilities(state.uploads().config())
}

/// Create an upload (tus creation and creation-with-upload). Headers: `Tus-Resumable:
/// 1.0.0`, `Upload-Length` (required; `Upload-Defer-Length` is not supported),
/// `Upload-Metadata` (keys `filename`, `title` (defaults to the filename), `description`,
/// `tags`, `visibility` (`public` or `private`), `kind` (`video` or `story`: at most
/// `social.stories.max_duration_ms` long, visible for `social.stories.lifetime_ms`)). With `Content-Type: application/offset+octet-stream` the body is the first
/// chunk (optionally with `Upload-Checksum`). Creates the video in status `uploading`.
#[utoipa::path(post, path = "/uploads", tag = "uploads", security(("bearer" = [])),
    request_body(content = Vec<u8>, content_type = "application/offset+octet-stream", description = "Optional first chunk"),
    responses(
        (status = 201, description = "Created; Location, QuickTok-Video-Id, Upload-Expires (and Upload-Offset with a body)"),
        (status = 400, description = "Missing Upload-Length, bad Upload-Metadata or Upload-Checksum", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 412, description = "Missing Tus-Resumable", body = ErrorBody),
        (status = 413, description = "Larger than Tus-Max-Size or the user's quota", body = ErrorBody),
        (status = 415, description = "A body with another Content-Type", body = ErrorBody),
        (status = 429, description = "Too many unfinished uploads", body = ErrorBody),
        (status = 460, description = "Checksum mismatch (nothing created)", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let config = state.uploads().config().clone();
    if headers.contains_key(UPLOAD_DEFER_LENGTH) {
        return Err(ApiError::bad_request("Upload-Defer-Length is not supported"));
    }
    let length = header_u64(&headers, &UPLOAD_LENGTH)?
        .ok_or_else(|| ApiError::bad_request("Upload-Length is required"))?;
    if length == 0 {
        return Err(ApiError::bad_request("the upload is empty"));
    }
    if length > config.max_size_bytes {
        return Err(too_large(format!(
            "Upload-Length exceeds the largest upload, {} bytes",
            config.max_size_bytes
        )));
    }
    let raw_metadata = header_str(&headers, &UPLOAD_METADATA)?.unwrap_or("").trim().to_owned();
    let meta =
        metadata::parse(&raw_metadata, config.max_metadata_bytes).map_err(ApiError::bad_request)?;
    let content_length = header_u64(&headers, &http::header::CONTENT_LENGTH)?;
    let with_body = is_offset_stream(&headers);
    let has_other_body = !with_body
        && (content_length.is_some_and(|n| n > 0)
            || headers.contains_key(http::header::TRANSFER_ENCODING));
    if has_other_body {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            format!("a body on creation must be Content-Type: {OFFSET_OCTET_STREAM}"),
        ));
    }
    let expected = if with_body { parse_checksum(&headers)? } else { None };
    if with_body && content_length.is_some_and(|n| n > length) {
        return Err(too_large("the body is longer than Upload-Length"));
    }

    let (upload, lock) = {
        let _creating = state.uploads().creation_guard().await;
        let now = state.clock().now_ms();
        let usage = state.meta().uploads().owner_usage(user.id, now).await?;
        if config.max_concurrent_per_user > 0
            && usage.count >= u64::from(config.max_concurrent_per_user)
        {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::RateLimited,
                format!(
                    "you have {} unfinished uploads, the most allowed; finish or terminate one first",
                    usage.count
                ),
            ));
        }
        if config.user_quota_bytes > 0
            && usage.bytes.saturating_add(length) > config.user_quota_bytes
        {
            return Err(too_large(format!(
                "this upload would put {} bytes in unfinished uploads, over your quota of {} bytes",
                usage.bytes.saturating_add(length),
                config.user_quota_bytes
            )));
        }
        let (upload_id, video_id) = (state.next_id(), state.next_id());
        // The file first: a row never points at a missing file.
        state.uploads().create_file(upload_id).await.map_err(ApiError::internal)?;
        let created = async {
            state
                .meta()
                .videos()
                .create(NewVideo {
                    id: video_id,
                    author_id: user.id,
                    title: meta.title,
                    description: meta.description,
                    tags: meta.tags,
                    created_at_ms: now,
                })
                .await?;
            if meta.private {
                state.meta().videos().set_private(video_id, true, now).await?;
            }
            if meta.kind != quicktok_meta::VideoKind::Video {
                state.meta().videos().set_kind(video_id, meta.kind, now).await?;
            }
            let upload = state
                .meta()
                .uploads()
                .create(NewUpload {
                    id: upload_id,
                    owner_id: user.id,
                    video_id,
                    length,
                    metadata: raw_metadata,
                    created_at_ms: now,
                    expires_at_ms: now.saturating_add(config.expiry_ms()),
                })
                .await;
            if upload.is_err() {
                // Best effort: do not leave a video without its upload.
                let _ = state
                    .meta()
                    .videos()
                    .set_status(
                        video_id,
                        quicktok_meta::VideoStatus::Removed,
                        Some("upload failed"),
                        now,
                    )
                    .await;
            }
            upload.map_err(ApiError::from)
        }
        .await;
        let upload = match created {
            Ok(upload) => upload,
            Err(e) => {
                let _ = state.uploads().remove_file(upload_id).await;
                return Err(e);
            }
        };
        // Nobody knows the id yet, so the lock is free.
        let lock = state.uploads().lock(upload.id).await?;
        (upload, lock)
    };

    let mut offset = None;
    if with_body {
        match append(&state, upload.clone(), body, expected, lock).await? {
            AppendOutcome::Stored { offset: o, .. } | AppendOutcome::CutOff { offset: o } => {
                offset = Some(o);
            }
            outcome @ (AppendOutcome::ChecksumMismatch | AppendOutcome::TooLarge) => {
                // The client will not learn the upload's address: do not keep it.
                state.meta().uploads().delete(upload.id).await?;
                let _ = state.uploads().remove_file(upload.id).await;
                return Err(if outcome == AppendOutcome::TooLarge {
                    too_large("the body is longer than Upload-Length")
                } else {
                    checksum_mismatch()
                });
            }
        }
    } else {
        drop(lock);
    }

    let mut response = StatusCode::CREATED.into_response();
    let h = response.headers_mut();
    let location = format!("/api/v1/uploads/{}", upload.id);
    h.insert(http::header::LOCATION, HeaderValue::from_str(&location).map_err(ApiError::internal)?);
    h.insert(VIDEO_ID, number(upload.video_id));
    if offset != Some(upload.length) {
        h.insert(UPLOAD_EXPIRES, http_date(upload.expires_at_ms));
    }
    if let Some(offset) = offset {
        h.insert(UPLOAD_OFFSET, number(offset));
    }
    Ok(response)
}

/// An upload's progress: `Upload-Offset`, `Upload-Length`, `Upload-Metadata`,
/// `Upload-Expires` (while unfinished), `Cache-Control: no-store`.
#[utoipa::path(head, path = "/uploads/{id}", tag = "uploads", security(("bearer" = [])),
    params(("id" = String, Path, description = "Upload id")),
    responses(
        (status = 200, description = "Progress in Upload-Offset and Upload-Length"),
        (status = 404, description = "No such upload (or not yours)"),
        (status = 410, description = "The upload expired"),
    ))]
pub async fn head(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let upload = owned_upload(&state, user, &id).await?;
    let mut response = StatusCode::OK.into_response();
    let h = response.headers_mut();
    h.insert(UPLOAD_OFFSET, number(upload.offset));
    h.insert(UPLOAD_LENGTH, number(upload.length));
    if !upload.metadata.is_empty()
        && let Ok(v) = HeaderValue::from_str(&upload.metadata)
    {
        h.insert(UPLOAD_METADATA, v);
    }
    if !upload.is_complete() {
        h.insert(UPLOAD_EXPIRES, http_date(upload.expires_at_ms));
    }
    h.insert(VIDEO_ID, number(upload.video_id));
    h.insert(http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Append a chunk. `Content-Type: application/offset+octet-stream`, `Upload-Offset` equal
/// to the current offset, optional `Upload-Checksum: sha1|md5|sha256 <base64>`. Answers
/// the new `Upload-Offset`. When the last byte arrives the video moves to `processing`
/// and an `upload_completed` event is published.
#[utoipa::path(patch, path = "/uploads/{id}", tag = "uploads", security(("bearer" = [])),
    params(("id" = String, Path, description = "Upload id")),
    request_body(content = Vec<u8>, content_type = "application/offset+octet-stream"),
    responses(
        (status = 204, description = "Stored; the new offset in Upload-Offset"),
        (status = 400, description = "Missing Upload-Offset, bad or unsupported Upload-Checksum", body = ErrorBody),
        (status = 404, description = "No such upload (or not yours)", body = ErrorBody),
        (status = 409, description = "Upload-Offset differs from the current offset", body = ErrorBody),
        (status = 410, description = "The upload expired", body = ErrorBody),
        (status = 413, description = "The chunk runs past Upload-Length (nothing stored)", body = ErrorBody),
        (status = 415, description = "Wrong Content-Type", body = ErrorBody),
        (status = 423, description = "Another request is writing this upload", body = ErrorBody),
        (status = 460, description = "Checksum mismatch (the chunk was discarded)", body = ErrorBody),
    ))]
pub async fn patch(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    if !is_offset_stream(&headers) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UnsupportedMediaType,
            format!("PATCH needs Content-Type: {OFFSET_OCTET_STREAM}"),
        ));
    }
    let offset = header_u64(&headers, &UPLOAD_OFFSET)?
        .ok_or_else(|| ApiError::bad_request("Upload-Offset is required"))?;
    let expected = parse_checksum(&headers)?;
    let content_length = header_u64(&headers, &http::header::CONTENT_LENGTH)?;
    // Cheap checks (and no waiting for the lock) for uploads that are not the caller's.
    let upload = owned_upload(&state, user, &id).await?;
    let lock = state.uploads().lock(upload.id).await?;
    // Re-read under the lock: the offset may have moved while we waited.
    let upload = owned_upload(&state, user, &id).await?;
    if offset != upload.offset {
        return Err(ApiError::conflict(
            ErrorCode::Conflict,
            format!("Upload-Offset is {offset} but the upload is at {}", upload.offset),
        )
        .with_header(UPLOAD_OFFSET, number(upload.offset)));
    }
    let remaining = upload.length - upload.offset;
    if content_length.is_some_and(|n| n > remaining) {
        return Err(too_large(format!(
            "the chunk runs past Upload-Length: {remaining} bytes remain"
        )));
    }
    let new_offset = if upload.is_complete() {
        // A retry after the completing request: make sure the pipeline heard of it
        // (consumers treat the event idempotently).
        drop(lock);
        publish_completed(&state, &upload, state.clock().now_ms()).await?;
        upload.offset
    } else {
        match append(&state, upload.clone(), body, expected, lock).await? {
            AppendOutcome::Stored { offset, .. } | AppendOutcome::CutOff { offset } => offset,
            AppendOutcome::ChecksumMismatch => return Err(checksum_mismatch()),
            AppendOutcome::TooLarge => {
                return Err(too_large(format!(
                    "the chunk runs past Upload-Length: {remaining} bytes remain"
                )));
            }
        }
    };
    let mut response = StatusCode::NO_CONTENT.into_response();
    let h = response.headers_mut();
    h.insert(UPLOAD_OFFSET, number(new_offset));
    if new_offset < upload.length {
        let expires = state.clock().now_ms().saturating_add(state.uploads().config().expiry_ms());
        h.insert(UPLOAD_EXPIRES, http_date(expires));
    }
    Ok(response)
}

/// Terminate an unfinished upload: its bytes, the upload and its video are deleted. A
/// completed upload cannot be terminated (delete the video instead).
#[utoipa::path(delete, path = "/uploads/{id}", tag = "uploads", security(("bearer" = [])),
    params(("id" = String, Path, description = "Upload id")),
    responses(
        (status = 204, description = "Terminated"),
        (status = 404, description = "No such upload (or not yours)", body = ErrorBody),
        (status = 409, description = "The upload is complete", body = ErrorBody),
        (status = 423, description = "Another request is writing this upload", body = ErrorBody),
    ))]
pub async fn terminate(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let upload = owned_upload_any(&state, user, &id).await?;
    let _lock = state.uploads().lock(upload.id).await?;
    let upload = owned_upload_any(&state, user, &id).await?;
    if upload.is_complete() {
        return Err(ApiError::conflict(
            ErrorCode::Conflict,
            "the upload is complete and its video is being processed; delete the video instead",
        ));
    }
    state.meta().uploads().delete(upload.id).await?;
    if let Err(e) = state.uploads().remove_file(upload.id).await {
        tracing::warn!(upload = %upload.id, error = %e, "cannot remove partial file");
    }
    Ok(StatusCode::NO_CONTENT)
}

/// As [`owned_upload`], but expired uploads can still be terminated.
async fn owned_upload_any(state: &AppState, user: AuthUser, id: &str) -> ApiResult<Upload> {
    let id: Id = id.parse().map_err(|_| no_such_upload())?;
    let upload = state.meta().uploads().by_id(id).await?.ok_or_else(no_such_upload)?;
    if upload.owner_id != user.id {
        return Err(no_such_upload());
    }
    Ok(upload)
}
