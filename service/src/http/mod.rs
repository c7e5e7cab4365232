//! The HTTP surface: one router for REST, A2A, MCP, health and metrics.

pub mod drain;
pub mod guard;
pub mod openapi;
pub mod prm;
pub mod rest;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mailagent_crds::contract::{Surface, http as paths};

use crate::app::App;
use crate::error::{ApiError, ErrorCode};

/// Builds the whole router for the configured surfaces.
pub fn router(app: Arc<App>) -> Router {
    let mut router: Router<Arc<App>> = Router::new()
        .route(paths::HEALTH, get(health))
        .route(paths::HEALTHZ, get(health))
        .route(paths::READYZ, get(ready))
        .route(paths::METRICS, get(metrics))
        .route(paths::JWKS, get(jwks));
    let surfaces = &app.settings.surfaces;
    if surfaces.contains(&Surface::Rest) {
        let rest = rest::routes()
            .layer(axum::middleware::from_fn_with_state((app.clone(), Surface::Rest), guard::authenticate));
        router = router.merge(rest).route("/openapi.json", get(openapi_json));
    }
    if surfaces.contains(&Surface::A2a) {
        let a2a = crate::a2a::routes()
            .layer(axum::middleware::from_fn_with_state((app.clone(), Surface::A2a), guard::authenticate));
        router = router.merge(a2a).route(paths::AGENT_CARD, get(crate::a2a::card::serve));
    }
    if surfaces.contains(&Surface::Mcp) {
        let mcp = crate::mcp::service(app.clone());
        let mcp = Router::new()
            .nest_service(paths::MCP, mcp)
            .layer(axum::middleware::from_fn_with_state(app.clone(), crate::mcp::gate))
            .layer(axum::middleware::from_fn_with_state((app.clone(), Surface::Mcp), guard::authenticate));
        router = router.merge(mcp);
        if let Some(path) = app.resource_metadata_path() {
            router = router.route(prm::ROOT, get(prm::document)).route(prm::MCP, get(prm::document));
            // A path with characters axum reads as route syntax (`{`, `*`) is left out rather
            // than allowed to stop the start; every real resource path is plain.
            let plain = path.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~/%".contains(&b));
            if plain && path != prm::ROOT && path != prm::MCP {
                router = router.route(&path, get(prm::document));
            }
        }
    }
    router
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(app.clone(), guard::per_address))
        .layer(axum::middleware::from_fn(uniform_errors))
        .layer(axum::middleware::from_fn(drain::drain_unread_body))
        .with_state(app)
}

/// Every error leaves in the shared shape, whichever layer or library produced it: the JSON-RPC
/// error object on `/a2a` and `/mcp`, the REST body elsewhere.
async fn uniform_errors(request: Request, next: Next) -> Response {
    let jsonrpc = guard::is_jsonrpc(request.uri().path()).then_some(serde_json::Value::Null);
    crate::error::normalize(next.run(request).await, jsonrpc).await
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound).with_message("no such route")
}

/// Public keys only, so no authentication; short-cached because a rotation or revoke changes them.
async fn jwks(State(app): State<Arc<App>>) -> Response {
    let document = app.auth.keys().jwks.clone();
    ([(header::CONTENT_TYPE, "application/jwk-set+json"), (header::CACHE_CONTROL, "max-age=60")], document)
        .into_response()
}

async fn health() -> &'static str {
    "ok"
}

async fn ready(State(app): State<Arc<App>>) -> Response {
    if app.is_ready() {
        "ready".into_response()
    } else {
        ApiError::new(ErrorCode::Draining).with_message("draining").into_response()
    }
}

async fn metrics(State(app): State<Arc<App>>) -> impl IntoResponse {
    app.metrics.observe_keys(&app.auth.keys());
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], app.metrics.render())
}

async fn openapi_json(State(app): State<Arc<App>>) -> impl IntoResponse {
    axum::Json(openapi::document(app.settings.auth_mode))
}
