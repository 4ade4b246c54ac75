//! Videos as viewers see them: `GET /api/v1/videos` (newest published), `GET
//! /api/v1/videos/{id}`, `GET /api/v1/videos/{id}/play` (signed, expiring manifest URLs),
//! and the manifests themselves under `/media/v/{id}/` (HLS master and rung playlists,
//! MPEG-DASH MPD), generated per request from the stored renditions so every segment URL
//! in them is signed and a rung that finished a moment ago is already listed.

use std::collections::HashMap;
use std::path::Path as FsPath;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use quicktok_core::{ErrorCode, Id};
use quicktok_media::Rendition;
use quicktok_meta::{Video, VideoStatus};
use quicktok_social::{CounterKey, Metric};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, AuthUser, MaybeAuthUser};
use crate::state::AppState;

/// A video's author.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuthorView {
    pub id: String,
    pub username: String,
}

/// One playable rendition.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RenditionView {
    pub name: String,
    pub width: u32,
    pub height: u32,
    /// Peak bit rate, bits/s (an upper estimate while the rendition is being encoded).
    pub bandwidth: u64,
    pub codecs: String,
    /// Fully encoded; `false` while its segments are still being added (it already plays:
    /// its HLS playlist is an EVENT playlist that grows), and when the pass failed after
    /// publication (it plays what was stored, to an early end, until a retry completes it).
    pub complete: bool,
}

/// Counters shown with a video.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct CountsView {
    pub views: i64,
    pub likes: i64,
    pub comments: i64,
    pub shares: i64,
}

/// A video.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VideoView {
    pub id: String,
    /// `uploading`, `processing`, `published`, `rejected`, `review` or `removed`.
    pub status: String,
    /// Why the video was rejected, removed or held for review.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub title: String,
    pub description: String,
    pub author: AuthorView,
    pub duration_ms: Option<i64>,
    pub width: Option<i32>,
    pub height: Option<i32>,
    /// Ready video renditions, lowest first (more join while the ladder is being encoded);
    /// the audio track, when there is one, plays with every one of them.
    pub renditions: Vec<RenditionView>,
    pub counts: CountsView,
    pub tags: Vec<String>,
    /// A signed URL of the cover image, once covers are chosen.
    pub cover: Option<String>,
    /// Only its author can see and play it.
    pub private: bool,
    /// `video`, or `story` (short, gone for everyone but its author at `expires_at_ms`).
    pub kind: String,
    pub created_at_ms: i64,
    pub published_at_ms: Option<i64>,
    /// A story's end, once it is published; `null` for videos.
    pub expires_at_ms: Option<i64>,
}

/// A page of videos.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VideoPage {
    pub items: Vec<VideoView>,
    pub next_cursor: Option<String>,
}

/// Where to play a video from.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PlayUrls {
    /// HLS master playlist (root-relative, signed).
    pub hls: String,
    /// MPEG-DASH manifest (root-relative, signed). It answers 503 with `Retry-After` while
    /// the video is still being encoded (see `complete`).
    pub dash: String,
    /// Every rendition is fully encoded. Until then the HLS playlists are EVENT playlists
    /// that grow (players start at the beginning and reload them).
    pub complete: bool,
    /// Cover image (root-relative, signed), if chosen.
    pub cover: Option<String>,
    /// When these URLs stop working, Unix seconds.
    pub expires_at: i64,
}

/// Paging through published videos.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1..=50 (default 20).
    pub limit: Option<u32>,
}

/// The signature part of a manifest URL.
#[derive(Debug, Deserialize)]
pub struct ManifestSignature {
    exp: i64,
    sig: String,
}

fn no_such_video() -> ApiError {
    ApiError::not_found("no such video")
}

fn parse_id(id: &str) -> ApiResult<Id> {
    id.parse().map_err(|_| no_such_video())
}

/// Whether `user` may see `video` in a non-public state.
async fn is_owner_or_admin(
    state: &AppState,
    video: &Video,
    user: Option<AuthUser>,
) -> ApiResult<bool> {
    let Some(user) = user else { return Ok(false) };
    if user.id == video.author_id {
        return Ok(true);
    }
    super::admin::is_admin(state, user).await
}

/// The video if `user` may see it: published and removed videos are public (a removed one
/// shows why) unless private; the rest, and private ones, only to their author and admins.
/// An expired story is its author's only (compared with the app clock: exact to the ms).
pub(crate) async fn visible_video(
    state: &AppState,
    id: &str,
    user: Option<AuthUser>,
) -> ApiResult<Video> {
    let id = parse_id(id)?;
    let video = state.meta().videos().by_id(id).await?.ok_or_else(no_such_video)?;
    if video.expired_at(state.clock().now_ms()) && user.is_none_or(|u| u.id != video.author_id) {
        return Err(no_such_video());
    }
    let public = matches!(video.status, VideoStatus::Published | VideoStatus::Removed);
    if (public && !video.private) || is_owner_or_admin(state, &video, user).await? {
        Ok(video)
    } else {
        Err(no_such_video())
    }
}

/// The stored renditions of `video`, lowest first; rows that do not decode are skipped
/// (and logged) rather than breaking playback of the others.
pub(crate) async fn renditions(state: &AppState, video: Id) -> ApiResult<Vec<Rendition>> {
    Ok(decode_renditions(video, state.meta().renditions().for_video(video).await?))
}

pub(crate) fn decode_renditions(
    video: Id,
    rows: Vec<quicktok_meta::RenditionRow>,
) -> Vec<Rendition> {
    rows.into_iter()
        .filter_map(|row| match serde_json::from_str::<Rendition>(&row.spec_json) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::error!(%video, rung = %row.name, error = %e, "undecodable rendition");
                None
            }
        })
        .collect()
}

/// The counts shown with each video, from the counter service (one store read for the
/// values it has not cached).
pub(crate) async fn counts_of(state: &AppState, videos: &[Id]) -> ApiResult<Vec<CountsView>> {
    const METRICS: [Metric; 4] = [Metric::Plays, Metric::Likes, Metric::Comments, Metric::Shares];
    let keys: Vec<CounterKey> = videos
        .iter()
        .flat_map(|&id| METRICS.iter().map(move |&m| CounterKey::video(id, m)))
        .collect();
    let values = state.counters().get_many(&keys).await?;
    Ok(values
        .chunks_exact(METRICS.len())
        .map(|v| CountsView { views: v[0], likes: v[1], comments: v[2], shares: v[3] })
        .collect())
}

pub(crate) async fn video_view(state: &AppState, video: Video) -> ApiResult<VideoView> {
    let counts = counts_of(state, &[video.id]).await?.pop().unwrap_or_default();
    let author = state.meta().users().by_id(video.author_id).await?;
    let renditions = renditions(state, video.id).await?;
    Ok(view_of(state, video, counts, author, renditions))
}

/// Views of a page of videos: their counts, authors and renditions in one read each.
/// The videos `ids` names that lists may show now ([`Video::is_listable`]), in `ids` order,
/// read in one batch: pages built from ids found elsewhere (an index, an inbox, the
/// recommender) re-check them against the store, which has the last word.
pub(crate) async fn listable_in_order(state: &AppState, ids: &[Id]) -> ApiResult<Vec<Video>> {
    let mut found = state.meta().videos().by_ids(ids).await?;
    Ok(ids.iter().filter_map(|id| found.remove(id)).filter(Video::is_listable).collect())
}

/// Views of the videos `ids` names that lists may show now, in `ids` order, for a caller
/// that also knows each one's author (`authors[i]` wrote `ids[i]`): every read of the page
/// (the rows and tags, counts, authors, renditions) is issued at once, so the page waits for
/// the slowest read instead of the listability check and then the rest.
pub(crate) async fn listable_views_in_order(
    state: &AppState,
    ids: &[Id],
    authors: &[Id],
) -> ApiResult<Vec<VideoView>> {
    let meta = state.meta();
    let (mut found, counts, mut users, renditions) = tokio::try_join!(
        async { Ok::<_, ApiError>(meta.videos().by_ids(ids).await?) },
        counts_of(state, ids),
        async { Ok::<_, ApiError>(meta.users().by_ids(authors).await?) },
        async { Ok::<_, ApiError>(meta.renditions().for_videos(ids).await?) },
    )?;
    let videos: Vec<(Video, CountsView)> = ids
        .iter()
        .zip(counts)
        .filter_map(|(id, counts)| found.remove(id).map(|v| (v, counts)))
        .filter(|(v, _)| v.is_listable())
        .collect();
    // Authors are fixed at upload, so the caller's are right unless its copy is out of date.
    let missing: Vec<Id> =
        videos.iter().map(|(v, _)| v.author_id).filter(|a| !users.contains_key(a)).collect();
    if !missing.is_empty() {
        users.extend(meta.users().by_ids(&missing).await?);
    }
    Ok(views_of(state, videos, &users, renditions))
}

pub(crate) async fn video_views(state: &AppState, videos: Vec<Video>) -> ApiResult<Vec<VideoView>> {
    let ids: Vec<Id> = videos.iter().map(|v| v.id).collect();
    let authors: Vec<Id> = videos.iter().map(|v| v.author_id).collect();
    // Independent reads: issued together, the page waits for the slowest instead of the sum.
    let meta = state.meta();
    let (counts, users, renditions) = tokio::try_join!(
        counts_of(state, &ids),
        async { Ok::<_, ApiError>(meta.users().by_ids(&authors).await?) },
        async { Ok::<_, ApiError>(meta.renditions().for_videos(&ids).await?) },
    )?;
    Ok(views_of(state, videos.into_iter().zip(counts), &users, renditions))
}

/// The views of `videos` (with their counts) from the page's authors and stored renditions.
fn views_of(
    state: &AppState,
    videos: impl IntoIterator<Item = (Video, CountsView)>,
    users: &HashMap<Id, quicktok_meta::User>,
    mut renditions: HashMap<Id, Vec<quicktok_meta::RenditionRow>>,
) -> Vec<VideoView> {
    videos
        .into_iter()
        .map(|(v, counts)| {
            let author = users.get(&v.author_id).cloned();
            let decoded = decode_renditions(v.id, renditions.remove(&v.id).unwrap_or_default());
            view_of(state, v, counts, author, decoded)
        })
        .collect()
}

fn view_of(
    state: &AppState,
    video: Video,
    counts: CountsView,
    author: Option<quicktok_meta::User>,
    renditions: Vec<Rendition>,
) -> VideoView {
    let show_reason =
        matches!(video.status, VideoStatus::Rejected | VideoStatus::Removed | VideoStatus::Review);
    // A rung plays to its end only with the audio track it is muxed against in the player, so
    // it is complete when both are: the same rule `/play`'s `complete` follows.
    let done = |r: &Rendition| !r.growing && !r.truncated;
    let audio_done = renditions.iter().filter(|r| quicktok_media::is_audio_track(r)).all(done);
    VideoView {
        id: video.id.to_string(),
        status: video.status.as_str().to_owned(),
        reason: if show_reason { video.reason.clone() } else { None },
        author: AuthorView {
            id: video.author_id.to_string(),
            username: author.map(|u| u.username).unwrap_or_default(),
        },
        duration_ms: video.duration_ms,
        width: video.width,
        height: video.height,
        renditions: renditions
            .iter()
            .filter(|r| !quicktok_media::is_audio_track(r))
            .map(|r| RenditionView {
                name: r.rung.name.clone(),
                width: r.width,
                height: r.height,
                bandwidth: r.bandwidth,
                codecs: r.codecs.clone(),
                complete: done(r) && audio_done,
            })
            .collect(),
        counts,
        cover: video.cover_blob_id.map(|b| state.media_path(b)),
        private: video.private,
        kind: video.kind.as_str().to_owned(),
        expires_at_ms: video.expires_at_ms,
        tags: video.tags,
        title: video.title,
        description: video.description,
        created_at_ms: video.created_at_ms,
        published_at_ms: video.published_at_ms,
    }
}

/// Newest published videos.
#[utoipa::path(get, path = "/videos", tag = "videos", params(ListQuery),
    responses(
        (status = 200, description = "Newest first", body = VideoPage),
        (status = 400, description = "Bad cursor or limit", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<ApiJson<VideoPage>> {
    let (before, limit) = page_of(&q)?;
    let videos = state.meta().videos().latest_published(before, limit).await?;
    Ok(ApiJson(video_page(&state, videos, limit).await?))
}

/// The signed-in creator's own videos in every status (uploading, processing, review,
/// rejected with the reason...), newest first.
#[utoipa::path(get, path = "/me/videos", tag = "videos", security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "Newest first", body = VideoPage),
        (status = 400, description = "Bad cursor or limit", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
    ))]
pub async fn mine(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<ApiJson<VideoPage>> {
    let (before, limit) = page_of(&q)?;
    let videos = state.meta().videos().by_author(user.id, before, limit).await?;
    Ok(ApiJson(video_page(&state, videos, limit).await?))
}

/// The keyset position and page size a list query asks for.
pub(crate) fn page_of(q: &ListQuery) -> ApiResult<(Option<Id>, u32)> {
    let limit = q.limit.unwrap_or(20);
    if !(1..=50).contains(&limit) {
        return Err(ApiError::bad_request("limit must be between 1 and 50"));
    }
    let before = match q.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => Some(c.parse::<Id>().map_err(|_| ApiError::bad_request("bad cursor"))?),
    };
    Ok((before, limit))
}

/// A page of videos; a full page has a cursor to the next.
async fn video_page(state: &AppState, videos: Vec<Video>, limit: u32) -> ApiResult<VideoPage> {
    let next_cursor =
        (videos.len() == limit as usize).then(|| videos.last().map(|v| v.id.to_string())).flatten();
    let items = video_views(state, videos).await?;
    Ok(VideoPage { items, next_cursor })
}

/// A video. Published and removed videos are public; others only for their author (and
/// admins), 404 for everyone else.
#[utoipa::path(get, path = "/videos/{id}", tag = "videos",
    params(("id" = String, Path, description = "Video id")),
    responses(
        (status = 200, description = "The video", body = VideoView),
        (status = 404, description = "No such video (or not visible to you)", body = ErrorBody),
    ))]
pub async fn get_video(
    State(state): State<AppState>,
    MaybeAuthUser(user): MaybeAuthUser,
    Path(id): Path<String>,
) -> ApiResult<ApiJson<VideoView>> {
    let video = visible_video(&state, &id, user).await?;
    Ok(ApiJson(video_view(&state, video).await?))
}

/// Signed, expiring URLs to play a published video.
#[utoipa::path(get, path = "/videos/{id}/play", tag = "videos",
    params(("id" = String, Path, description = "Video id")),
    responses(
        (status = 200, description = "Manifest and cover URLs", body = PlayUrls),
        (status = 404, description = "No such video (or not visible to you)", body = ErrorBody),
        (status = 409, description = "Not playable yet (still processing, or refused)", body = ErrorBody),
        (status = 410, description = "The video was removed", body = ErrorBody),
    ))]
pub async fn play(
    State(state): State<AppState>,
    MaybeAuthUser(user): MaybeAuthUser,
    Path(id): Path<String>,
) -> ApiResult<ApiJson<PlayUrls>> {
    let video = visible_video(&state, &id, user).await?;
    match video.status {
        VideoStatus::Published => {}
        VideoStatus::Removed => {
            return Err(ApiError::new(
                StatusCode::GONE,
                ErrorCode::Gone,
                format!("the video was removed: {}", video.reason.unwrap_or_default()),
            ));
        }
        other => {
            return Err(ApiError::conflict(
                ErrorCode::Conflict,
                format!("the video is not playable: it is {other}"),
            ));
        }
    }
    let renditions = renditions(&state, video.id).await?;
    Ok(ApiJson(play_urls(&state, &video, &renditions)))
}

/// Signed URLs to play a published `video` whose stored renditions are `renditions`.
pub(crate) fn play_urls(state: &AppState, video: &Video, renditions: &[Rendition]) -> PlayUrls {
    let exp = state.media_expiry();
    let signer = state.media_signer();
    PlayUrls {
        hls: signer.manifest_path(video.id, "master.m3u8", exp),
        dash: signer.manifest_path(video.id, "manifest.mpd", exp),
        complete: renditions.iter().all(|r| !r.growing && !r.truncated),
        cover: video.cover_blob_id.map(|b| signer.path(b, exp)),
        expires_at: exp,
    }
}

/// The blob id a stored rendition keeps in place of a file path.
fn blob_of(path: &FsPath) -> Option<Id> {
    path.to_str()?.parse().ok()
}

fn manifest_response(body: String, content_type: &'static str, growing: bool) -> Response {
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Players reload a growing playlist every target duration: a cached copy would stall
    // them. A finished one changes only if an operator re-runs the ladder.
    let cache = if growing { "private, no-cache" } else { "private, max-age=5" };
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

/// `GET /media/v/{id}/{file}`: `master.m3u8`, `manifest.mpd` or `<rung>.m3u8`.
pub async fn manifest(
    State(state): State<AppState>,
    Path((id, file)): Path<(String, String)>,
    ApiQuery(signature): ApiQuery<ManifestSignature>,
) -> Response {
    match manifest_inner(&state, &id, &file, &signature).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn manifest_inner(
    state: &AppState,
    id: &str,
    file: &str,
    signature: &ManifestSignature,
) -> ApiResult<Response> {
    let id = parse_id(id)?;
    let now = state.clock().now_secs();
    if !state.media_signer().verify_manifest(id, signature.exp, &signature.sig, now) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            "manifest URL is invalid or has expired",
        ));
    }
    let video = state.meta().videos().by_id(id).await?.ok_or_else(no_such_video)?;
    if video.status != VideoStatus::Published {
        return Err(ApiError::new(StatusCode::GONE, ErrorCode::Gone, "the video is not available"));
    }
    let renditions = renditions(state, id).await?;
    let growing = renditions.iter().any(|r| r.growing);
    // The segment URLs share the manifest's expiry: the whole playback session ends together.
    let exp = signature.exp;
    let signer = state.media_signer();
    let url_of = |p: &FsPath| {
        let Some(blob) = blob_of(p) else { return String::new() };
        // The init segment is the only blob an `init` path is recorded for.
        let ext = if renditions.iter().any(|r| r.init == p) { "mp4" } else { "m4s" };
        signer.path_with_extension(blob, ext, exp)
    };
    match file {
        "master.m3u8" => {
            // The audio track's playlist is `audio.m3u8`, like a rung's.
            let body = quicktok_media::hls_master(&renditions, |r| {
                signer.manifest_path(id, &format!("{}.m3u8", r.rung.name), exp)
            });
            Ok(manifest_response(body, "application/vnd.apple.mpegurl", growing))
        }
        "manifest.mpd" if growing => {
            // A static MPD of part of the clip would end playback early, and a dynamic one
            // makes DASH players start at the live edge, not the beginning. Encoding takes
            // less time than the clip lasts, so this is a few seconds after publication.
            let mut e = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Unavailable,
                "the DASH manifest is ready once encoding finishes; HLS plays already",
            );
            e.headers.push((header::RETRY_AFTER, HeaderValue::from_static("2")));
            Err(e)
        }
        "manifest.mpd" => Ok(manifest_response(
            quicktok_media::dash_mpd(&renditions, url_of),
            "application/dash+xml",
            false,
        )),
        _ => {
            let rung = file
                .strip_suffix(".m3u8")
                .ok_or_else(|| ApiError::not_found("no such manifest"))?;
            let r = renditions
                .iter()
                .find(|r| r.rung.name == rung)
                .ok_or_else(|| ApiError::not_found("no such rendition"))?;
            Ok(manifest_response(
                quicktok_media::hls_media_playlist(r, url_of),
                "application/vnd.apple.mpegurl",
                r.growing,
            ))
        }
    }
}
