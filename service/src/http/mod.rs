//! The HTTP surface: one router for REST, A2A, MCP, health and metrics.

pub mod guard;
pub mod openapi;
pub mod prm;
pub mod rest;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use mailagent_crds::contract::{Surface, http as paths};

use crate::app::App;
use crate::auth::Door;

/// Builds the whole router for the configured surfaces.
pub fn router(app: Arc<App>) -> Router {
    let mut router: Router<Arc<App>> = Router::new()
        .route("/health", get(health))
        .route(paths::HEALTHZ, get(health))
        .route(paths::READYZ, get(ready))
        .route("/metrics", get(metrics));
    let surfaces = &app.settings.surfaces;
    if surfaces.contains(&Surface::Rest) {
        let rest =
            rest::routes().layer(axum::middleware::from_fn_with_state((app.clone(), Door::Rest), guard::authenticate));
        router = router.merge(rest).route("/openapi.json", get(openapi_json));
    }
    if surfaces.contains(&Surface::A2a) {
        let a2a = crate::a2a::routes()
            .layer(axum::middleware::from_fn_with_state((app.clone(), Door::A2a), guard::authenticate));
        router = router.merge(a2a).route(crate::a2a::card::PATH, get(crate::a2a::card::serve));
    }
    if surfaces.contains(&Surface::Mcp) {
        let mcp = crate::mcp::service(app.clone());
        let mcp = Router::new()
            .nest_service(paths::MCP, mcp)
            .layer(axum::middleware::from_fn_with_state(app.clone(), crate::mcp::scope_precheck))
            .layer(axum::middleware::from_fn_with_state((app.clone(), Door::Mcp), guard::authenticate));
        router = router.merge(mcp);
        if app.auth.oauth().is_some() {
            router = router.route(prm::ROOT, get(prm::document)).route(prm::MCP, get(prm::document));
        }
    }
    router.layer(axum::middleware::from_fn_with_state(app.clone(), guard::per_address)).with_state(app)
}

async fn health() -> &'static str {
    "ok"
}

async fn ready(State(app): State<Arc<App>>) -> impl IntoResponse {
    if app.is_ready() { (StatusCode::OK, "ready") } else { (StatusCode::SERVICE_UNAVAILABLE, "draining") }
}

async fn metrics(State(app): State<Arc<App>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], app.metrics.render())
}

async fn openapi_json(State(app): State<Arc<App>>) -> impl IntoResponse {
    axum::Json(openapi::document(app.settings.auth_mode))
}
