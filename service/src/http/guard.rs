//! Middleware in front of the doors: the per-address rate limit and request metrics (outermost,
//! also for health and metrics), then authentication and the per-principal limit for a door.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use mailagent_crds::contract::http as paths;

use crate::app::App;
use crate::audit;
use crate::auth::Surface;
use crate::error::ApiError;
use crate::metrics::{LimitLabels, RequestLabels};

/// Bodies read for a JSON-RPC id before answering 401 or 429 (larger ones have no readable id);
/// the rest is read anyway (see [`super::drain`]), so this bounds only the parsing.
const ID_READ_LIMIT: usize = 1024 * 1024;

/// The client address as decided by [`crate::ratelimit::Limits::client_address`].
#[derive(Clone, Copy, Debug)]
pub struct ClientAddress(pub std::net::IpAddr);

/// Outermost layer: per-address limit, then counts the response by door, route and status.
pub async fn per_address(State(app): State<Arc<App>>, mut request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let client = app.limits.client_address(peer, request.headers());
    request.extensions_mut().insert(ClientAddress(client));
    app.metrics.client_request(client);
    let route =
        request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "unmatched".into());
    let door = door_of(request.uri().path());
    let response = match app.limits.check_address(client) {
        Err(wait) => {
            app.metrics.rate_limited.get_or_create(&LimitLabels { bucket: "address" }).inc();
            ApiError::rate_limited(wait).into_response()
        }
        Ok(()) => next.run(request).await,
    };
    app.metrics
        .requests
        .get_or_create(&RequestLabels {
            door: door.map_or("ops", Surface::as_str),
            route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

/// The door a path belongs to (`None`: health, metrics and other operational routes).
pub fn door_of(path: &str) -> Option<Surface> {
    if path.starts_with(paths::MCP) {
        Some(Surface::Mcp)
    } else if path.starts_with(paths::A2A) || path == paths::AGENT_CARD {
        Some(Surface::A2a)
    } else if path.starts_with("/v1") || path == "/openapi.json" {
        Some(Surface::Rest)
    } else {
        None
    }
}

/// Whether errors on `path` take the JSON-RPC error shape.
pub fn is_jsonrpc(path: &str) -> bool {
    path == paths::MCP || path == paths::A2A
}

/// Authenticates a door's request and applies the per-principal limit.
pub async fn authenticate(
    State((app, door)): State<(Arc<App>, Surface)>,
    mut request: Request,
    next: Next,
) -> Response {
    // Formatted only if the audit line is written.
    let client = request.extensions().get::<ClientAddress>().map(|c| c.0);
    let principal = match app.auth.authenticate(door, request.headers()).await {
        Ok(principal) => principal,
        Err(failure) => {
            app.metrics.auth_failure(door, failure.reason());
            audit::rejected(door, failure, client);
            return refuse(app.unauthorized(door, failure), request).await;
        }
    };
    if let Err(wait) = app.limits.check_principal(&principal) {
        app.metrics.rate_limited.get_or_create(&LimitLabels { bucket: "principal" }).inc();
        return refuse(ApiError::rate_limited(wait), request).await;
    }
    if let Some(exp) = principal.expires_at {
        app.metrics.token_remaining_seconds.observe((exp - chrono::Utc::now().timestamp()).max(0) as f64);
    }
    audit::authenticated(door, &principal, client);
    request.extensions_mut().insert(principal);
    next.run(request).await
}

/// The refusal in the shape of the request's door: on a JSON-RPC door the error object with the
/// request's id, read from a small body (the body is read anyway, see [`super::drain`]).
async fn refuse(error: ApiError, request: Request) -> Response {
    if !is_jsonrpc(request.uri().path()) {
        return error.into_response();
    }
    let id = if request.method() == axum::http::Method::POST {
        crate::jsonrpc::read_id(request.into_body(), ID_READ_LIMIT).await
    } else {
        serde_json::Value::Null
    };
    error.into_jsonrpc(id)
}
