//! Answers a request for one blob: conditional requests, ranges, caching headers.

use std::time::{Duration, UNIX_EPOCH};

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use quicktok_blob::{BlobError, BlobMeta, BlobStore, ByteRange};
use quicktok_core::{ErrorCode, Id};

use super::range::{RangeVerdict, parse};
use crate::error::ApiError;

/// `Cache-Control` of a blob reached through a URL valid for `fresh_secs` more seconds.
/// Blobs are immutable, so caches (an edge included) need never revalidate; but a copy
/// kept past the URL's expiry would outlive the signature, so it lasts as long as the URL.
fn cache_control(fresh_secs: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("public, max-age={fresh_secs}, immutable"))
        .unwrap_or(HeaderValue::from_static("no-store"))
}

/// Serves blob `id` for a GET or HEAD with `headers`, through a URL that stays valid for
/// `fresh_secs` more seconds.
pub async fn serve_blob(
    store: &dyn BlobStore,
    id: Id,
    method: &Method,
    headers: &HeaderMap,
    max_ranges: usize,
    fresh_secs: u64,
) -> Response {
    match serve(store, id, method, headers, max_ranges, fresh_secs).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

fn blob_error(e: BlobError) -> ApiError {
    match e {
        BlobError::NotFound(_) => ApiError::not_found("no such media"),
        BlobError::Unavailable(_) => ApiError::unavailable(e),
        other => ApiError::internal(other),
    }
}

fn quoted_etag(meta: &BlobMeta) -> String {
    format!("\"{}\"", meta.etag)
}

fn last_modified(meta: &BlobMeta) -> String {
    let secs = u64::try_from(meta.created_at_ms.div_euclid(1000)).unwrap_or(0);
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs))
}

/// `If-None-Match` with weak comparison (RFC 9110 13.1.2).
fn none_match(headers: &HeaderMap, etag: &str) -> Option<bool> {
    let value = headers.get(header::IF_NONE_MATCH)?.to_str().ok()?;
    Some(
        value
            .split(',')
            .map(str::trim)
            .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag.trim_start_matches("W/")),
    )
}

fn not_modified_since(headers: &HeaderMap, meta: &BlobMeta) -> bool {
    let Some(since) = headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
    else {
        return false;
    };
    let modified = UNIX_EPOCH
        + Duration::from_secs(u64::try_from(meta.created_at_ms.div_euclid(1000)).unwrap_or(0));
    modified <= since
}

/// `If-Range`: the range applies only if the validator still matches (strong comparison for
/// entity tags, exact match for dates).
fn if_range_allows(headers: &HeaderMap, meta: &BlobMeta) -> bool {
    let Some(value) = headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let value = value.trim();
    if value.starts_with('"') {
        value == quoted_etag(meta)
    } else if value.starts_with("W/") {
        false
    } else {
        value == last_modified(meta)
    }
}

fn common_headers(meta: &BlobMeta, fresh_secs: u64) -> HeaderMap {
    let mut h = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&quoted_etag(meta)) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&last_modified(meta)) {
        h.insert(header::LAST_MODIFIED, v);
    }
    h.insert(header::CACHE_CONTROL, cache_control(fresh_secs));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h
}

fn content_type(meta: &BlobMeta) -> HeaderValue {
    HeaderValue::from_str(&meta.content_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"))
}

async fn serve(
    store: &dyn BlobStore,
    id: Id,
    method: &Method,
    headers: &HeaderMap,
    max_ranges: usize,
    fresh_secs: u64,
) -> Result<Response, ApiError> {
    let meta = store
        .stat(id)
        .await
        .map_err(blob_error)?
        .ok_or_else(|| ApiError::not_found("no such media"))?;
    let etag = quoted_etag(&meta);
    let mut out = common_headers(&meta, fresh_secs);

    // Conditional requests: If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2).
    let unchanged = match none_match(headers, &etag) {
        Some(matched) => matched,
        None => not_modified_since(headers, &meta),
    };
    if unchanged {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        response.headers_mut().extend(out);
        return Ok(response);
    }

    let verdict = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(value) if if_range_allows(headers, &meta) => parse(value, meta.size, max_ranges),
        _ => RangeVerdict::Full,
    };
    let head = method == Method::HEAD;
    match verdict {
        RangeVerdict::Unsatisfiable => {
            let mut e = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                ErrorCode::RangeNotSatisfiable,
                format!("no requested range overlaps the {} bytes of this media", meta.size),
            );
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{}", meta.size)) {
                e = e.with_header(header::CONTENT_RANGE, v);
            }
            Err(e)
        }
        RangeVerdict::Full => {
            out.insert(header::CONTENT_TYPE, content_type(&meta));
            out.insert(header::CONTENT_LENGTH, HeaderValue::from(meta.size));
            let body = if head { Body::empty() } else { body_of(store, id, None).await? };
            Ok((StatusCode::OK, out, body).into_response())
        }
        RangeVerdict::Partial(ranges) if ranges.len() == 1 => {
            let r = ranges[0];
            out.insert(header::CONTENT_TYPE, content_type(&meta));
            out.insert(header::CONTENT_LENGTH, HeaderValue::from(r.len()));
            if let Ok(v) = HeaderValue::from_str(&content_range(r, meta.size)) {
                out.insert(header::CONTENT_RANGE, v);
            }
            let body = if head { Body::empty() } else { body_of(store, id, Some(r)).await? };
            Ok((StatusCode::PARTIAL_CONTENT, out, body).into_response())
        }
        RangeVerdict::Partial(ranges) => {
            let boundary = uuid::Uuid::new_v4().simple().to_string();
            let ctype = meta.content_type.clone();
            let part_heads: Vec<Bytes> = ranges
                .iter()
                .map(|r| {
                    Bytes::from(format!(
                        "\r\n--{boundary}\r\nContent-Type: {ctype}\r\nContent-Range: {}\r\n\r\n",
                        content_range(*r, meta.size)
                    ))
                })
                .collect();
            let tail = Bytes::from(format!("\r\n--{boundary}--\r\n"));
            let length: u64 = part_heads.iter().map(|h| h.len() as u64).sum::<u64>()
                + ranges.iter().map(ByteRange::len).sum::<u64>()
                + tail.len() as u64;
            if let Ok(v) =
                HeaderValue::from_str(&format!("multipart/byteranges; boundary={boundary}"))
            {
                out.insert(header::CONTENT_TYPE, v);
            }
            out.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
            if head {
                return Ok((StatusCode::PARTIAL_CONTENT, out, Body::empty()).into_response());
            }
            // Check the first part now so an unreadable blob is a 500, not a cut connection.
            let first = body_of(store, id, Some(ranges[0])).await?;
            let store_parts: Vec<(Bytes, ByteRange)> = part_heads.into_iter().zip(ranges).collect();
            let parts = stream_parts(store, id, store_parts, first).await?;
            let body = parts.chain(stream::once(async move { Ok::<Bytes, BlobError>(tail) }));
            Ok((StatusCode::PARTIAL_CONTENT, out, Body::from_stream(body)).into_response())
        }
    }
}

fn content_range(r: ByteRange, size: u64) -> String {
    format!("bytes {}-{}/{size}", r.start, r.end.saturating_sub(1))
}

type ByteStream = futures::stream::BoxStream<'static, Result<Bytes, BlobError>>;

/// Opens the body stream and reads its first chunk before the status line is sent, so a
/// missing or corrupt first block becomes an error response instead of a truncated body.
async fn open(
    store: &dyn BlobStore,
    id: Id,
    range: Option<ByteRange>,
) -> Result<ByteStream, ApiError> {
    let read = store.get(id, range).await.map_err(blob_error)?;
    let mut body = read.body;
    match body.next().await {
        None => Ok(stream::empty().boxed()),
        Some(Err(e)) => Err(blob_error(e)),
        Some(Ok(first)) => Ok(stream::once(async move { Ok(first) }).chain(body).boxed()),
    }
}

async fn body_of(
    store: &dyn BlobStore,
    id: Id,
    range: Option<ByteRange>,
) -> Result<Body, ApiError> {
    let s = open(store, id, range).await?;
    // A failure later in the stream aborts the response: the client sees a cut body, never
    // wrong bytes.
    Ok(Body::from_stream(s.inspect_err(|e| tracing::error!(error = %e, "media stream failed"))))
}

async fn stream_parts(
    store: &dyn BlobStore,
    id: Id,
    parts: Vec<(Bytes, ByteRange)>,
    first: Body,
) -> Result<ByteStream, ApiError> {
    // Every part is opened up front (at most `max_ranges`, each holding one chunk), so an
    // unreadable part is an error response rather than a cut body.
    let mut streams: Vec<ByteStream> = Vec::with_capacity(parts.len() * 2);
    let mut first = Some(first);
    for (head, r) in parts {
        streams.push(stream::once(async move { Ok(head) }).boxed());
        let part = match first.take() {
            Some(body) => {
                body.into_data_stream().map_err(|e| BlobError::Body(e.to_string())).boxed()
            }
            None => open(store, id, Some(r)).await?,
        };
        streams.push(part);
    }
    Ok(stream::iter(streams).flatten().boxed())
}
