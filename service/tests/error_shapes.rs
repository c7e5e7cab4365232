//! Every error from every door is one JSON shape: the REST body `{"error", "message"?, "scope"?}`,
//! or on the JSON-RPC doors the error object with the request's id (issue 8, defect 11); provider
//! error kinds reach every door intact (defect 7); and one decision, with the policy ceiling,
//! answers for every door (build 3).

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::Request;
use common::*;
use mailagent_mail::api::*;
use serde_json::{Value, json};

fn a2a(headers: &[(&str, &str)], body: Body) -> Request<Body> {
    let mut builder = Request::post("/a2a").header("a2a-version", "1.0");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(body).unwrap()
}

fn send_message(id: Value, skill: Option<&str>) -> Body {
    let parts = match skill {
        Some(skill) => json!([{"data": {"skill": skill, "arguments": {}}}]),
        None => json!([{"data": {"no": "skill"}}]),
    };
    let message = json!({"messageId": "m", "role": "ROLE_USER", "parts": parts});
    Body::from(json!({"jsonrpc": "2.0", "id": id, "method": "SendMessage", "params": {"message": message}}).to_string())
}

const JSON: (&str, &str) = ("content-type", "application/json");

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let (app, _dir) = app("api_key", &[]);
    let (status, headers, body) = send(&app, Request::get("/nowhere").body(Body::empty()).unwrap()).await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (404, Some("not_found")), "{body}");
    assert_eq!(headers["content-type"], "application/json");
    let get_scan = Request::get("/v1/mail/scan").header("x-api-key", API_KEY).body(Body::empty()).unwrap();
    let (status, headers, body) = send(&app, get_scan).await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (405, Some("method_not_allowed")), "{body}");
    assert!(headers["allow"].to_str().unwrap().contains("POST"), "the Allow header is kept");
    let get_a2a = Request::get("/a2a").header("x-api-key", API_KEY).body(Body::empty()).unwrap();
    let (status, _, body) = send(&app, get_a2a).await;
    assert_eq!(status, 405);
    assert_eq!(
        (body["jsonrpc"].as_str(), body["error"]["data"]["error"].as_str()),
        (Some("2.0"), Some("method_not_allowed"))
    );
}

#[tokio::test]
async fn a2a_errors_echo_the_request_id() {
    let (app, _dir) = app("api_key", &[]);
    // Regression: a message naming no skill was answered with `"id": null`.
    let (status, _, body) = send(&app, a2a(&[JSON, ("x-api-key", API_KEY)], send_message(json!("req-1"), None))).await;
    assert_eq!(
        (status.as_u16(), body["id"].as_str(), body["error"]["code"].as_i64()),
        (200, Some("req-1"), Some(-32602))
    );
    // A missing scope: 403 as before, but the JSON-RPC error object with the id, not a REST body.
    let scan_only = [JSON, ("x-api-key", SCAN_ONLY_KEY)];
    let (status, _, body) = send(&app, a2a(&scan_only, send_message(json!(9), Some("availability")))).await;
    assert_eq!(status, 403);
    assert_eq!(body["id"], 9, "{body}");
    assert_eq!(body["error"]["data"], json!({"error": "insufficient_scope", "scope": "availability:read"}));
    // Unauthenticated: 401 with the challenge, and the id of the (small) body.
    let (status, headers, body) =
        send(&app, a2a(&[JSON, ("x-api-key", "nope")], send_message(json!(3), Some("mail_scan")))).await;
    assert_eq!((status.as_u16(), body["id"].as_i64()), (401, Some(3)), "{body}");
    assert_eq!(headers["x-auth-failure"], "invalid_api_key");
    assert_eq!(body["error"]["data"]["error"], "unauthorized");
}

#[tokio::test]
async fn refused_bodies_on_the_jsonrpc_doors_are_jsonrpc_errors() {
    let (app, _dir) = app("api_key", &[]);
    let key = ("x-api-key", API_KEY);
    // Wrong content type: refused, the id still read from the body.
    let (status, _, body) = send(&app, a2a(&[("content-type", "text/plain"), key], send_message(json!(4), None))).await;
    assert_eq!((status.as_u16(), body["id"].as_i64()), (415, Some(4)), "{body}");
    assert_eq!(body["error"]["data"]["error"], "unsupported_media_type");
    // Over the size limit: no id is readable.
    let huge = Body::from(vec![b' '; 3 * 1024 * 1024]);
    let (status, _, body) = send(&app, a2a(&[JSON, key], huge)).await;
    assert_eq!(status, 413);
    assert_eq!(
        (body["id"].clone(), body["error"]["data"]["error"].as_str()),
        (Value::Null, Some("payload_too_large")),
        "{body}"
    );

    let mcp = |content_type: &str, body: Body| {
        Request::post("/mcp")
            .header("host", "127.0.0.1")
            .header("content-type", content_type)
            .header("accept", "application/json, text/event-stream")
            .header("x-api-key", API_KEY)
            .body(body)
            .unwrap()
    };
    let ping = json!({"jsonrpc": "2.0", "id": 8, "method": "ping"}).to_string();
    let (status, headers, body) = send(&app, mcp("text/plain", Body::from(ping))).await;
    assert_eq!((status.as_u16(), body["id"].as_i64()), (415, Some(8)), "rmcp's plain-text refusal: {body}");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(body["error"]["data"]["error"], "unsupported_media_type");
    let (status, _, body) = send(&app, mcp("application/json", Body::from(vec![b' '; 5 * 1024 * 1024]))).await;
    assert_eq!(status, 413);
    assert_eq!(body["error"]["data"]["error"], "payload_too_large", "{body}");
}

/// Fails every call with the provider error it was built with.
struct FailingProvider(DomainError);

#[async_trait]
impl Assistant for FailingProvider {
    async fn scan(&self, _: ScanRequest) -> Result<ScanResponse, DomainError> {
        Err(self.0.clone())
    }
    async fn unsubscribe_candidates(&self, _: CandidatesRequest) -> Result<CandidatesResponse, DomainError> {
        Err(self.0.clone())
    }
    async fn unsubscribe(&self, _: UnsubscribeRequest) -> Result<UnsubscribeResponse, DomainError> {
        Err(self.0.clone())
    }
    async fn digest(&self, _: DigestRequest) -> Result<DigestResponse, DomainError> {
        Err(self.0.clone())
    }
    async fn availability(&self, _: AvailabilityRequest) -> Result<AvailabilityResponse, DomainError> {
        Err(self.0.clone())
    }
    async fn meeting_intervals(&self, _: MeetingIntervalsRequest) -> Result<MeetingIntervalsResponse, DomainError> {
        Err(self.0.clone())
    }
    fn metrics(&self) -> DomainMetrics {
        DomainMetrics::default()
    }
}

#[tokio::test]
async fn reconsent_needed_and_retry_later_stay_distinct_on_every_door() {
    let cases = [
        (DomainError::ReconsentRequired("the refresh token was revoked".into()), 502, "reconsent_required"),
        (DomainError::Provider("HTTP 503 from Gmail".into()), 503, "provider_unavailable"),
    ];
    for (error, status, code) in cases {
        let (app, _dir) = app_with("api_key", &[], Arc::new(FailingProvider(error)));
        let key = ("x-api-key", API_KEY);
        let (got, _, body) = send(&app, post("/v1/mail/scan", &[key], json!({}))).await;
        assert_eq!((got.as_u16(), body["error"].as_str()), (status, Some(code)), "REST: {body}");

        let (_, _, reply) = send(&app, a2a(&[JSON, key], send_message(json!(1), Some("mail_scan")))).await;
        let status_message = &reply["result"]["task"]["status"];
        assert_eq!(status_message["state"], "TASK_STATE_FAILED", "{reply}");
        assert_eq!(status_message["message"]["parts"][1]["data"]["error"], code, "A2A: {reply}");

        let (_, _, reply) = mcp(&app, key, "tools/call", json!({"name": "mail_scan", "arguments": {}})).await;
        assert_eq!(reply["result"]["isError"], true, "{reply}");
        assert_eq!(reply["result"]["structuredContent"]["error"], code, "MCP: {reply}");
    }
}

#[tokio::test]
async fn the_policy_ceiling_bounds_every_door() {
    // The key holds every scope; the policy grants only mail:scan and unsubscribe:execute.
    let (app, _dir) = app("hybrid", &[("AUTH_SCOPES_CEILING", "mail:scan unsubscribe:execute")]);
    app.set_mutations(true);
    let key = ("x-api-key", API_KEY);
    let (status, _, body) = send(&app, post("/v1/availability", &[key], json!({}))).await;
    assert_eq!(status, 403);
    assert_eq!(body, json!({"error": "insufficient_scope", "scope": "availability:read"}));
    let (status, _, _) = send(&app, post("/v1/mail/scan", &[key], json!({}))).await;
    assert_eq!(status, 200);

    let (status, _, body) = send(&app, a2a(&[JSON, key], send_message(json!(2), Some("availability")))).await;
    assert_eq!((status.as_u16(), body["error"]["data"]["scope"].as_str()), (403, Some("availability:read")));
    let card = Body::from(json!({"jsonrpc": "2.0", "id": 1, "method": "GetExtendedAgentCard"}).to_string());
    let (_, _, body) = send(&app, a2a(&[JSON, key], card)).await;
    let skills: Vec<&str> =
        body["result"]["skills"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(skills, ["mail_scan", "unsubscribe_execute"]);
    let (_, _, public) = send(&app, Request::get("/.well-known/agent-card.json").body(Body::empty()).unwrap()).await;
    assert_eq!(public["skills"].as_array().unwrap().len(), 2, "the public card offers only what the ceiling allows");

    let (_, _, reply) = mcp(&app, key, "tools/list", json!({})).await;
    let tools: Vec<&str> =
        reply["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(tools, ["mail_scan", "unsubscribe_execute"], "{reply}");
    let (status, _, reply) = mcp(&app, key, "tools/call", json!({"name": "availability", "arguments": {}})).await;
    assert_eq!(status, 403, "the pre-check refuses above the ceiling too: {reply}");
    assert_eq!((reply["id"].as_i64(), reply["error"]["data"]["scope"].as_str()), (Some(5), Some("availability:read")));

    // Lowering the ceiling takes effect without a restart.
    app.policy.set_ceiling(Some([mailagent_crds::Scope::MailScan].into()));
    let (status, _, _) = send(&app, post("/v1/unsubscribe/execute", &[key], json!({"candidate": "x"}))).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn protected_resource_metadata_offers_what_the_decision_allows() {
    let extra = [
        ("MCP_AUTH_MODE", "oauth"),
        ("MCP_RESOURCE_SERVER_URL", "https://mail.example.com/mcp"),
        ("MCP_OAUTH_ISSUER", "https://issuer.example.com"),
        ("AUTH_SCOPES_CEILING", "mail:scan availability:read unsubscribe:digest"),
    ];
    let (app, _dir) = app("api_key", &extra);
    let prm = || Request::get("/.well-known/oauth-protected-resource/mcp").body(Body::empty()).unwrap();
    let (_, _, doc) = send(&app, prm()).await;
    assert_eq!(doc["scopes_supported"], json!(["availability:read", "mail:scan"]), "switch off: no mutation scope");
    app.set_mutations(true);
    let (_, _, doc) = send(&app, prm()).await;
    assert_eq!(doc["scopes_supported"], json!(["availability:read", "mail:scan", "unsubscribe:digest"]));
}
