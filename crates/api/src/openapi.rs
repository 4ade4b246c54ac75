//! The OpenAPI document (utoipa), assembled from the annotated handlers and served at
//! `/api/v1/openapi.json`.

use axum::Router;
use utoipa::Modify;
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "QuickTok API", description = "Self-hostable short-video platform."),
    servers((url = "/api/v1")),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Accounts and sessions"),
        (name = "me", description = "The signed-in user"),
        (name = "trending", description = "Exact sliding-window leaderboards"),
        (name = "videos", description = "Videos"),
        (name = "search", description = "Full-text search over videos and creators, suggestions"),
        (name = "social", description = "Follows, blocks, likes, comments, shares, reports"),
        (name = "feed", description = "Feeds: For-You recommendations (with degradation), related videos"),
        (name = "stories", description = "Stories: short clips visible for a day, the row of followed authors with unseen ones, progress"),
        (name = "notifications", description = "Your inbox: grouped notifications, unread count, live stream (SSE)"),
        (name = "feed", description = "The following feed: videos of the creators you follow, newest first"),
        (name = "uploads", description = "Resumable uploads (tus 1.0)"),
        (name = "meta", description = "The API itself"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                Http::builder().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build(),
            ),
        );
    }
}

/// Splits the documented router into the axum router and its spec.
pub fn split(router: OpenApiRouter<AppState>) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    router.split_for_parts()
}

/// The full specification.
pub fn spec() -> utoipa::openapi::OpenApi {
    crate::routes::v1().into_openapi()
}
