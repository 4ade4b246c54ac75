//! QuickTok's HTTP API: the axum router under `/api/v1`, authentication, rate limits, gray
//! release, OpenAPI, health and metrics. The only crate that knows HTTP; it holds no business
//! rules beyond request validation and account flows.

pub mod auth;
pub mod config;
pub mod error;
pub mod extract;
pub mod feed;
pub mod flags;
pub mod media;
pub mod metrics;
pub mod notify;
pub mod openapi;
pub mod ratelimit;
mod routes;
pub mod state;
pub mod upload;

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use http::{HeaderName, HeaderValue, Method, StatusCode};
use tokio::net::TcpListener;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub use config::{ApiConfig, AuthConfig, FlagRule, FlagsConfig, MediaConfig, RateLimitConfig};
pub use error::{ApiError, ApiResult};
pub use state::{ApiDeps, AppState};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    // Install the recorder before the first request so no sample goes to the no-op one.
    let _ = metrics::handle();
    let (api, _spec) = openapi::split(routes::v1());
    let cfg = state.api_config().clone();
    Router::new()
        .merge(routes::probes())
        .nest("/api/v1", api)
        .fallback(routes::not_found)
        .layer(axum::middleware::map_response(error::json_error_bodies))
        .layer(axum::middleware::from_fn_with_state(state.clone(), ratelimit::rate_limit))
        .layer(DefaultBodyLimit::max(cfg.max_json_body_bytes))
        .layer(axum::middleware::from_fn_with_state(state.clone(), request_timeout))
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(cors(&cfg))
        .layer(axum::middleware::from_fn_with_state(state.clone(), upload::tus_options))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::extract::Request| {
            let id = request.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("http", method = %request.method(), path = %request.uri().path(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}

/// Answers 408 when a request takes longer than `api.request_timeout_secs`, except upload
/// bodies and media streams, whose duration is set by the client's bandwidth (they keep
/// what arrived and are resumable).
async fn request_timeout(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let path = request.uri().path();
    if path.starts_with("/api/v1/uploads") || path.starts_with("/media/") {
        return next.run(request).await;
    }
    let limit = Duration::from_secs(state.api_config().request_timeout_secs.max(1));
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => StatusCode::REQUEST_TIMEOUT.into_response(),
    }
}

fn cors(cfg: &ApiConfig) -> CorsLayer {
    let origins = if cfg.cors_allowed_origins.is_empty() {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            cfg.cors_allowed_origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()),
        )
    };
    CorsLayer::new()
        .allow_origin(origins)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::HEAD,
            Method::OPTIONS,
        ])
        .allow_headers(tower_http::cors::Any)
        .expose_headers([
            REQUEST_ID,
            HeaderName::from_static("ratelimit-limit"),
            HeaderName::from_static("ratelimit-remaining"),
            HeaderName::from_static("ratelimit-reset"),
            http::header::RETRY_AFTER,
            http::header::LOCATION,
            // tus clients in browsers read these.
            HeaderName::from_static("upload-offset"),
            HeaderName::from_static("upload-length"),
            HeaderName::from_static("upload-metadata"),
            HeaderName::from_static("upload-expires"),
            HeaderName::from_static("tus-resumable"),
            HeaderName::from_static("tus-version"),
            HeaderName::from_static("tus-extension"),
            HeaderName::from_static("tus-max-size"),
            HeaderName::from_static("tus-checksum-algorithm"),
            HeaderName::from_static("quicktok-video-id"),
        ])
        .max_age(Duration::from_secs(3600))
}

/// Serves `router` on `listener` until `shutdown` fires, then finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: quicktok_core::Shutdown,
) -> std::io::Result<()> {
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
