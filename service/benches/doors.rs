//! In-process bench: authenticated REST read vs a bare axum route returning the same bytes, and
//! the cost of one JWT verification. Prints ratios against the baseline measured in the same run.
//! (No sockets: this isolates the cost of our layers. MCP tools/call is not measured here yet.)

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::Request;
use mailagent_mail::api::*;
use mailagent_service::auth::Door;
use mailagent_service::settings::Source;
use tower::ServiceExt;

const REQUESTS: usize = 20_000;
const SECRET: &str = "bench-jwt-secret-that-is-at-least-32-bytes";

struct Canned;

#[async_trait]
impl Assistant for Canned {
    async fn scan(&self, _: ScanRequest) -> Result<ScanResponse, DomainError> {
        Ok(ScanResponse {
            total_messages: 1,
            fetched_messages: 1,
            incremental: true,
            full_scan_reason: None,
            counts: vec![],
            top_senders: vec![],
            messages: vec![],
            quota_units: 0,
        })
    }
    async fn unsubscribe_candidates(&self, _: CandidatesRequest) -> Result<CandidatesResponse, DomainError> {
        Ok(CandidatesResponse { candidates: vec![], scanned_messages: 0 })
    }
    async fn unsubscribe(&self, _: UnsubscribeRequest) -> Result<UnsubscribeResponse, DomainError> {
        Err(DomainError::Refused("bench".into()))
    }
    async fn digest(&self, _: DigestRequest) -> Result<DigestResponse, DomainError> {
        Err(DomainError::Refused("bench".into()))
    }
    async fn availability(&self, _: AvailabilityRequest) -> Result<AvailabilityResponse, DomainError> {
        Err(DomainError::Refused("bench".into()))
    }
    async fn meeting_intervals(&self, _: MeetingIntervalsRequest) -> Result<MeetingIntervalsResponse, DomainError> {
        Err(DomainError::Refused("bench".into()))
    }
    fn metrics(&self) -> DomainMetrics {
        DomainMetrics::default()
    }
}

async fn measure(router: &Router, make: impl Fn() -> Request<Body>) -> (f64, Duration) {
    let mut latencies = Vec::with_capacity(REQUESTS);
    let start = Instant::now();
    for _ in 0..REQUESTS {
        let t = Instant::now();
        let response = router.clone().oneshot(make()).await.unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        latencies.push(t.elapsed());
    }
    let rate = REQUESTS as f64 / start.elapsed().as_secs_f64();
    latencies.sort();
    (rate, latencies[REQUESTS * 99 / 100])
}

fn token() -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = serde_json::json!({"sub": "bench", "iat": now, "exp": now + 3600, "scope": "mail:scan"});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let env: HashMap<String, String> = [
        ("AUTH_MODE", "jwt"),
        ("AUTH_JWT_SECRET", SECRET),
        ("RATE_LIMIT_PER_MINUTE", "100000000"),
        ("RATE_LIMIT_BURST", "100000000"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let (app, _) = mailagent_service::server::build(&Source::from_map(env), Some(Arc::new(Canned))).unwrap();
    let body = serde_json::to_vec(&app.assistant.scan(ScanRequest::default()).await.unwrap()).unwrap();
    let bare: Router =
        Router::new().route("/v1/mail/scan", axum::routing::post(move || std::future::ready(body.clone())));
    let ours = mailagent_service::http::router(app.clone());
    let bearer = format!("Bearer {}", token());

    let (bare_rate, bare_p99) = measure(&bare, || Request::post("/v1/mail/scan").body(Body::from("{}")).unwrap()).await;
    let (rest_rate, rest_p99) = measure(&ours, || {
        Request::post("/v1/mail/scan")
            .header("content-type", "application/json")
            .header("authorization", &bearer)
            .body(Body::from("{}"))
            .unwrap()
    })
    .await;
    let mut headers = axum::http::HeaderMap::new();
    headers.insert("authorization", bearer.parse().unwrap());
    let start = Instant::now();
    for _ in 0..REQUESTS {
        app.auth.authenticate(Door::Rest, &headers).await.unwrap();
    }
    let jwt_cost = start.elapsed() / REQUESTS as u32;

    println!("bare axum route        {bare_rate:>10.0} req/s  p99 {bare_p99:?}");
    println!("authenticated REST     {rest_rate:>10.0} req/s  p99 {rest_p99:?}");
    println!("REST / bare throughput {:>10.1} %  (goal >= 60 %)", 100.0 * rest_rate / bare_rate);
    println!("JWT verification       {jwt_cost:>10.2?} per request (HS256)");
}
