//! The routers: one file per endpoint group, assembled here.

mod auth;
mod health;
mod me;

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
        .route("/openapi.json", get(health::openapi_json))
}

/// Probes and operator endpoints outside the versioned API.
pub fn probes() -> Router<AppState> {
    Router::new()
        .route("/", get(health::index))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
}

/// Unknown paths, in the JSON error shape.
pub async fn not_found() -> impl IntoResponse {
    ApiError::not_found("no such resource")
}
