//! Middleware in front of the doors: the per-address rate limit and request metrics (outermost,
//! also for health and metrics), then authentication and the per-principal limit for a door.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::App;
use crate::audit;
use crate::auth::{AuthFailure, Door};
use crate::metrics::{LimitLabels, RequestLabels};
use crate::ratelimit::retry_after_seconds;
use crate::settings::EffectiveMode;

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
    let route =
        request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "unmatched".into());
    let door = door_of(request.uri().path());
    let response = match app.limits.check_address(client) {
        Err(wait) => {
            app.metrics.rate_limited.get_or_create(&LimitLabels { bucket: "address" }).inc();
            too_many(wait)
        }
        Ok(()) => next.run(request).await,
    };
    app.metrics.requests.get_or_create(&RequestLabels { door, route, status: response.status().as_u16() }).inc();
    response
}

fn door_of(path: &str) -> &'static str {
    if path.starts_with("/mcp") {
        "mcp"
    } else if path.starts_with("/a2a") || path == crate::a2a::card::PATH {
        "a2a"
    } else if path.starts_with("/v1") || path == "/openapi.json" {
        "rest"
    } else {
        "ops"
    }
}

/// Authenticates a door's request and applies the per-principal limit.
pub async fn authenticate(State((app, door)): State<(Arc<App>, Door)>, mut request: Request, next: Next) -> Response {
    // Formatted only if the audit line is written.
    let client = request.extensions().get::<ClientAddress>().map(|c| c.0);
    let principal = match app.auth.authenticate(door, request.headers()).await {
        Ok(principal) => principal,
        Err(failure) => {
            app.metrics.auth_failure(door, failure.reason());
            audit::rejected(door, failure, client);
            return unauthorized(&app, door, failure);
        }
    };
    if let Err(wait) = app.limits.check_principal(&principal) {
        app.metrics.rate_limited.get_or_create(&LimitLabels { bucket: "principal" }).inc();
        return too_many(wait);
    }
    if let Some(exp) = principal.expires_at {
        app.metrics.token_remaining_seconds.observe((exp - chrono::Utc::now().timestamp()).max(0) as f64);
    }
    audit::authenticated(door, &principal, client);
    request.extensions_mut().insert(principal);
    next.run(request).await
}

fn too_many(wait: std::time::Duration) -> Response {
    let mut response = (StatusCode::TOO_MANY_REQUESTS, axum::Json(json!({"error": "rate_limited"}))).into_response();
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_seconds(wait)));
    response
}

/// 401 with the reason header and the challenge for the door's mode. The body is the same for
/// every reason so it reveals nothing the header does not.
pub fn unauthorized(app: &App, door: Door, failure: AuthFailure) -> Response {
    let mut response = (StatusCode::UNAUTHORIZED, axum::Json(json!({"error": "unauthorized"}))).into_response();
    let headers = response.headers_mut();
    headers.insert("x-auth-failure", HeaderValue::from_static(failure.reason()));
    let challenge = match app.auth.mode(door) {
        EffectiveMode::Oauth => {
            let metadata = crate::http::prm::metadata_url(app);
            format!("Bearer error=\"invalid_token\", resource_metadata=\"{metadata}\"")
        }
        EffectiveMode::Local(mailagent_crds::contract::AuthMode::ApiKey) => "ApiKey header=\"X-API-Key\"".to_owned(),
        EffectiveMode::Local(_) => "Bearer".to_owned(),
    };
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        headers.insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// 403 for a missing scope; on an OAuth door with the RFC 6750 step-up challenge.
pub fn insufficient_scope(app: &App, door: Door, scope: mailagent_crds::Scope) -> Response {
    let body = json!({"error": "insufficient_scope", "scope": scope.as_str()});
    let mut response = (StatusCode::FORBIDDEN, axum::Json(body)).into_response();
    if app.auth.mode(door) == EffectiveMode::Oauth {
        let metadata = crate::http::prm::metadata_url(app);
        let challenge = format!(
            "Bearer error=\"insufficient_scope\", scope=\"{}\", resource_metadata=\"{metadata}\"",
            scope.as_str()
        );
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
        }
    }
    response
}
