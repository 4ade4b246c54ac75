//! The routers: one file per endpoint group, assembled here.

mod admin;
mod auth;
mod comments;
mod feed;
mod health;
mod interactions;
mod me;
mod media;
mod notifications;
mod playback;
mod recommend;
mod reports;
mod search;
mod stories;
mod trending;
mod uploads;
mod users;
mod videos;
mod views;

use axum::Router;
use axum::response::IntoResponse;
use axum::routing::get;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::openapi::ApiDoc;
use crate::state::AppState;

/// Everything under `/api/v1`, documented.
pub fn v1() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(auth::register))
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(me::me))
        .routes(routes!(me::flags))
        .routes(routes!(trending::trending))
        .routes(routes!(trending::trending_tag))
        .routes(routes!(views::report_view))
        .routes(routes!(videos::archive, videos::unarchive))
        .routes(routes!(videos::set_visibility))
        .routes(routes!(videos::update, videos::delete))
        .routes(routes!(search::search))
        .routes(routes!(search::suggest))
        .routes(routes!(admin::remove_video))
        .routes(routes!(playback::list))
        .routes(routes!(playback::mine))
        .routes(routes!(playback::get_video))
        .routes(routes!(playback::play))
        .routes(routes!(admin::review_queue))
        .routes(routes!(admin::decide))
        .routes(routes!(admin::jobs))
        .routes(routes!(admin::retry))
        .routes(routes!(users::profile))
        .routes(routes!(users::follow, users::unfollow))
        .routes(routes!(users::followers))
        .routes(routes!(users::following))
        .routes(routes!(users::block, users::unblock))
        .routes(routes!(interactions::like, interactions::unlike))
        .routes(routes!(interactions::share))
        .routes(routes!(comments::create, comments::list))
        .routes(routes!(comments::replies))
        .routes(routes!(comments::delete))
        .routes(routes!(reports::create))
        .routes(routes!(reports::list))
        .routes(routes!(recommend::for_you))
        .routes(routes!(recommend::related))
        .routes(routes!(stories::row))
        .routes(routes!(stories::of_author))
        .routes(routes!(stories::seen))
        .routes(routes!(stories::mine))
        .routes(routes!(feed::following))
        .routes(routes!(notifications::list))
        .routes(routes!(notifications::mark_read))
        .routes(routes!(notifications::stream))
        .merge(uploads::router())
        .route("/openapi.json", get(health::openapi_json))
}

/// Probes and operator endpoints outside the versioned API.
pub fn probes() -> Router<AppState> {
    Router::new()
        .route("/", get(health::index))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/media/{id}", get(media::media))
        .route("/media/v/{id}/{file}", get(playback::manifest))
        .route("/views/top", get(trending::views_top))
}

/// Unknown paths, in the JSON error shape.
pub async fn not_found() -> impl IntoResponse {
    ApiError::not_found("no such resource")
}
