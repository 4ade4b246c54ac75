//! Liveness, readiness, Prometheus metrics, the OpenAPI document and the landing page.

use std::sync::OnceLock;

use axum::Json;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;

use crate::state::AppState;

/// `GET /healthz`: the process is up and serving.
pub async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    Json(serde_json::json!({"status": "ok", "uptime_secs": state.uptime_secs()}))
}

#[derive(Serialize)]
struct Check {
    name: &'static str,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// `GET /readyz`: every dependency answers; 503 listing the ones that do not.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let meta = state.meta().ping().await;
    let log = state.log().ping().await;
    let checks = [
        Check { name: "meta", ok: meta.is_ok(), error: meta.err().map(|e| e.to_string()) },
        Check { name: "log", ok: log.is_ok(), error: log.err().map(|e| e.to_string()) },
    ];
    let ready = checks.iter().all(|c| c.ok);
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = serde_json::json!({"status": if ready { "ready" } else { "unavailable" }, "checks": checks});
    if ready {
        (status, Json(body)).into_response()
    } else {
        // Keeps the JSON error shape while listing the failing dependencies.
        let mut body = body;
        body["error"] = "unavailable".into();
        body["message"] = "a dependency is not reachable".into();
        (status, Json(body)).into_response()
    }
}

/// `GET /metrics`: Prometheus text exposition.
pub async fn metrics() -> Response {
    match crate::metrics::handle() {
        Some(handle) => {
            let mut response = handle.render().into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            response
        }
        None => {
            crate::error::ApiError::unavailable("metrics recorder not installed").into_response()
        }
    }
}

/// `GET /api/v1/openapi.json`.
pub async fn openapi_json() -> Response {
    static SPEC: OnceLock<String> = OnceLock::new();
    let spec = SPEC.get_or_init(|| {
        crate::openapi::spec().to_pretty_json().unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    });
    let mut response = spec.clone().into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// `GET /`: a landing page for whoever opens the server in a browser.
pub async fn index() -> Html<&'static str> {
    Html(concat!(
        "<!doctype html><html lang=en><meta charset=utf-8><title>QuickTok</title>",
        "<h1>QuickTok</h1><p>The QuickTok server is running.</p><ul>",
        "<li><a href=/api/v1/openapi.json>API description (OpenAPI)</a></li>",
        "<li><a href=/healthz>health</a> · <a href=/readyz>readiness</a> · <a href=/metrics>metrics</a></li>",
        "</ul></html>"
    ))
}
