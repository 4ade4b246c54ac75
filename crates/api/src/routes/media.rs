//! `GET /media/{id}`: blob delivery through signed, expiring URLs.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, StatusCode};
use quicktok_core::{ErrorCode, Id};
use serde::Deserialize;

use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::media::serve_blob;
use crate::state::AppState;

/// Extensions a media URL may carry after the id.
const MEDIA_EXTENSIONS: &[&str] = &["mp4", "m4s", "jpg"];

/// The signature part of a media URL.
#[derive(Debug, Deserialize)]
pub struct Signature {
    exp: i64,
    sig: String,
}

/// Serves a blob (whole, a range, or several ranges) if the URL's signature is valid.
pub async fn media(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(signature): ApiQuery<Signature>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    // An optional media extension (`123.m4s`) is cosmetic: the blob's own type is served.
    let id = match id.split_once('.') {
        Some((id, ext)) if MEDIA_EXTENSIONS.contains(&ext) => id,
        Some(_) => return ApiError::not_found("no such media").into_response(),
        None => id.as_str(),
    };
    let Ok(id) = id.parse::<Id>() else {
        return ApiError::not_found("no such media").into_response();
    };
    let now = state.clock().now_secs();
    if !state.media_signer().verify(id, signature.exp, &signature.sig, now) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            "media URL is invalid or has expired",
        )
        .into_response();
    }
    let max_ranges = state.media_config().max_ranges as usize;
    // Verified above: exp >= now.
    let fresh_secs = u64::try_from(signature.exp - now).unwrap_or(0);
    serve_blob(state.blobs().as_ref(), id, &method, &headers, max_ranges, fresh_secs).await
}
