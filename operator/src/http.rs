//! `/metrics`, `/healthz` and `/readyz` for the operator.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::health::Health;
use crate::metrics::Metrics;

#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

/// Binds and serves in the background; returns the bound address.
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>, health: Arc<Health>) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = router(metrics, health);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(bound)
}

/// The router, separate from binding so it is testable.
pub fn router(metrics: Arc<Metrics>, health: Arc<Health>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(AppState { metrics, health })
}

async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics.encode())
}

/// Ready as a standby that has joined the election (it can take over), or as the leader once its
/// caches are listed and its watches reach the API server. Who leads is `mailagent_operator_leading`.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.health.readiness() {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

/// Alive unless the watches have been failing for too long to hope they come back by themselves.
async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    match state.health.liveness() {
        Ok(()) => (StatusCode::OK, "ok".to_owned()),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

#[cfg(test)]
mod tests {
    use axum::body::{Body, to_bytes};
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    async fn get(router: Router, path: &str) -> (StatusCode, String) {
        let response = router.oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
        let status = response.status();
        let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn a_standby_is_ready_but_only_the_leader_reports_leading() {
        let (health, metrics) = (Arc::new(Health::default()), Arc::new(Metrics::default()));
        let router = router(metrics.clone(), health.clone());
        assert_eq!(get(router.clone(), "/healthz").await.0, StatusCode::OK);
        let (status, body) = get(router.clone(), "/readyz").await;
        assert_eq!((status, body.as_str()), (StatusCode::SERVICE_UNAVAILABLE, "joining the leader election"));
        health.set_electing();
        assert_eq!(get(router.clone(), "/readyz").await.0, StatusCode::OK, "a standby counts for disruption budgets");
        assert!(get(router.clone(), "/metrics").await.1.contains("mailagent_operator_leading 0\n"));
        health.set_leading();
        metrics.set_leading();
        assert_eq!(get(router.clone(), "/readyz").await.0, StatusCode::SERVICE_UNAVAILABLE, "listing");
        health.set_synced();
        assert_eq!(get(router.clone(), "/readyz").await.0, StatusCode::OK);
        assert!(get(router, "/metrics").await.1.contains("mailagent_operator_leading 1\n"));
    }

    #[tokio::test]
    async fn deaf_watches_fail_readiness_and_in_the_end_liveness() {
        let health = Arc::new(Health::new(std::time::Duration::ZERO));
        health.set_leading();
        health.set_synced();
        let router = router(Arc::new(Metrics::default()), health.clone());
        health.watches.failed("MailAgent", &"connection refused");
        std::thread::sleep(std::time::Duration::from_millis(5));
        let (status, body) = get(router.clone(), "/readyz").await;
        assert_eq!((status, body.as_str()), (StatusCode::SERVICE_UNAVAILABLE, "watches cannot reach the API server"));
        assert_eq!(get(router.clone(), "/healthz").await.0, StatusCode::SERVICE_UNAVAILABLE);
        health.watches.watched("MailAgent");
        assert_eq!(get(router.clone(), "/readyz").await.0, StatusCode::OK);
        assert_eq!(get(router, "/healthz").await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn metrics_are_exposed_in_text_format() {
        let metrics = Arc::new(Metrics::default());
        metrics.reconciled("mailagent", std::time::Duration::from_millis(1));
        let (status, body) = get(router(metrics, Arc::new(Health::default())), "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("mailagent_operator_reconcile_duration_seconds_bucket"), "{body}");
    }
}
