//! MCP sessions of the 2025 revisions: `tools/call` answered on the request's own task for the
//! revisions without priming, and through rmcp's session worker (priming event, event IDs) for
//! 2025-11-25. What a client sees must be a correct answer either way, in the stream shape its
//! revision defines, with calls of one session served concurrently.

mod common;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use common::*;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

/// One POST to `/mcp` through `router` with the headers every call carries plus `headers` (a
/// `host` among them replaces the loopback one): the status, the response headers and the body.
async fn post(router: &Router, headers: &[(&str, &str)], body: Value) -> (StatusCode, HeaderMap, String) {
    let host = headers.iter().find(|(name, _)| *name == "host").map_or("127.0.0.1", |(_, value)| *value);
    let mut builder = Request::post("/mcp")
        .header("host", host)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("x-api-key", API_KEY);
    for (name, value) in headers.iter().filter(|(name, _)| *name != "host") {
        builder = builder.header(*name, *value);
    }
    let response = router.clone().oneshot(builder.body(Body::from(body.to_string())).unwrap()).await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8(bytes.to_vec()).unwrap())
}

/// One request of `revision`, on `session` if any (the same router keeps the same sessions):
/// the status, the session id answered and the body.
async fn post_mcp(router: &Router, session: Option<&str>, revision: &str, body: Value) -> (StatusCode, String, String) {
    let mut headers = vec![("mcp-protocol-version", revision)];
    headers.extend(session.map(|session| ("mcp-session-id", session)));
    let (status, headers, body) = post(router, &headers, body).await;
    let session = headers.get("mcp-session-id").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, session, body)
}

fn content_type(headers: &HeaderMap) -> &str {
    headers.get("content-type").map(|v| v.to_str().unwrap()).unwrap_or_default()
}

/// A session of `revision`, initialised (the `initialized` notification sent).
async fn open(router: &Router, revision: &str) -> String {
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": revision, "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}});
    let (status, session, _) = post_mcp(router, None, revision, initialize).await;
    assert_eq!(status, StatusCode::OK);
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let (status, ..) = post_mcp(router, Some(&session), revision, initialized).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    session
}

fn call(id: u64, tool: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": {}}})
}

/// The SSE events of a body: (event id, data) per event.
fn events(body: &str) -> Vec<(Option<String>, String)> {
    body.split("\n\n")
        .filter(|event| !event.trim().is_empty())
        .map(|event| {
            let field = |name: &str| {
                event.lines().find_map(|line| line.strip_prefix(name)).map(|value| value.trim().to_owned())
            };
            (field("id:"), field("data:").unwrap_or_default())
        })
        .collect()
}

fn answer(body: &str) -> Value {
    events(body)
        .into_iter()
        .filter_map(|(_, data)| serde_json::from_str::<Value>(&data).ok())
        .find(|message| message.get("id").is_some())
        .unwrap_or_else(|| panic!("no JSON-RPC answer in {body:?}"))
}

#[tokio::test]
async fn a_2025_06_18_call_is_answered_in_one_event_and_a_2025_11_25_call_is_primed() {
    let (app, _dir) = app("api_key", &[]);
    let router = mailagent_service::http::router(app);

    let session = open(&router, "2025-06-18").await;
    // Two calls: the first after initialize (the worker saw the session just now), the second too.
    for id in [2, 3] {
        let (status, _, body) = post_mcp(&router, Some(&session), "2025-06-18", call(id, "mail_scan")).await;
        assert_eq!(status, StatusCode::OK);
        let events = events(&body);
        assert_eq!(events.len(), 1, "the answer is the whole stream: {body}");
        // Through the worker, rmcp would prime the stream with an event ID; directly, nothing
        // precedes the answer, which is how this test knows the call took the direct route.
        assert_eq!(events[0].0, None, "no event ID: the answer is complete, nothing to resume");
        let message = answer(&body);
        assert_eq!(message["id"], id);
        assert!(message["result"]["structuredContent"]["total_messages"].is_number(), "{message}");
    }
    let (_, _, body) = post_mcp(&router, Some(&session), "2025-06-18", call(4, "no_such_tool")).await;
    assert_eq!(answer(&body)["error"]["code"], -32602, "an unknown tool is refused as before: {body}");

    let primed = open(&router, "2025-11-25").await;
    let (status, _, body) = post_mcp(&router, Some(&primed), "2025-11-25", call(5, "mail_scan")).await;
    assert_eq!(status, StatusCode::OK);
    let events = events(&body);
    assert!(events.len() >= 2, "a priming event, then the answer: {body}");
    assert!(events[0].0.is_some() && events[0].1.is_empty(), "the priming event has an ID and no data: {body}");
    assert!(events.iter().skip(1).all(|(id, _)| id.is_some()), "every event can be resumed from: {body}");
    assert_eq!(answer(&body)["id"], 5);
}

#[tokio::test]
async fn calls_on_one_session_run_together_and_a_deleted_session_is_gone() {
    let (app, _dir) = app("api_key", &[]);
    let router = mailagent_service::http::router(app);
    let session = open(&router, "2025-06-18").await;

    let calls = (10..26).map(|id| {
        let (router, session) = (router.clone(), session.clone());
        tokio::spawn(async move { post_mcp(&router, Some(&session), "2025-06-18", call(id, "mail_scan")).await })
    });
    let mut ids = Vec::new();
    for handle in calls {
        let (status, _, body) = handle.await.unwrap();
        assert_eq!(status, StatusCode::OK);
        ids.push(answer(&body)["id"].as_u64().unwrap());
    }
    ids.sort_unstable();
    assert_eq!(ids, (10..26).collect::<Vec<_>>(), "every call answered under its own id");

    let delete = Request::delete("/mcp")
        .header("host", "127.0.0.1")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-06-18")
        .header("x-api-key", API_KEY)
        .body(Body::empty())
        .unwrap();
    let deleted = router.clone().oneshot(delete).await.unwrap();
    assert!(deleted.status().is_success(), "DELETE: {}", deleted.status());
    let (status, _, body) = post_mcp(&router, Some(&session), "2025-06-18", call(30, "mail_scan")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a call on a deleted session is not answered: {body}");
}

/// A 2026-07-28 call has no session: each request names its revision and capabilities itself,
/// and the method and tool ride in headers that mirror the body.
async fn stateless_call(router: &Router, id: u64, tool: &str) -> (StatusCode, HeaderMap, String) {
    let mut body = call(id, tool);
    body["params"]["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"},
    });
    let headers = [("mcp-protocol-version", "2026-07-28"), ("mcp-method", "tools/call"), ("mcp-name", tool)];
    post(router, &headers, body).await
}

#[tokio::test]
async fn a_sessionless_call_is_answered_as_plain_json_and_a_session_call_as_an_event_stream() {
    let (app, _dir) = app("api_key", &[]);
    let router = mailagent_service::http::router(app);

    let (status, headers, body) = stateless_call(&router, 40, "mail_scan").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(content_type(&headers).starts_with("application/json"), "one answer, no stream: {headers:?}");
    let message: Value = serde_json::from_str(&body).expect("the body is the JSON-RPC answer itself");
    assert_eq!(message["id"], 40);
    assert!(message["result"]["structuredContent"]["total_messages"].is_number(), "{message}");

    let (_, headers, body) = stateless_call(&router, 41, "no_such_tool").await;
    assert!(content_type(&headers).starts_with("application/json"), "{headers:?}");
    let message: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((message["id"].clone(), message["error"]["code"].clone()), (json!(41), json!(-32602)), "{body}");

    // Sessions of the earlier revisions keep the stream their clients read.
    let session = open(&router, "2025-06-18").await;
    let headers = [("mcp-protocol-version", "2025-06-18"), ("mcp-session-id", session.as_str())];
    let (_, headers, _) = post(&router, &headers, call(42, "mail_scan")).await;
    assert_eq!(content_type(&headers), "text/event-stream");
}

/// With a configured host list (the operator renders the MCP Service's names), loopback names
/// still pass, as a `kubectl port-forward` canary sends them, and any other name is refused:
/// DNS-rebinding protection stays on.
#[tokio::test]
async fn a_configured_host_list_keeps_loopback_names_and_refuses_others() {
    let (app, _dir) = app("api_key", &[("MCP_ALLOWED_HOSTS", "inbox-mcp,inbox-mcp.mail.svc")]);
    let router = mailagent_service::http::router(app);
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}});
    for (host, expected) in [
        ("127.0.0.1:8080", StatusCode::OK),
        ("localhost:8080", StatusCode::OK),
        ("[::1]:8080", StatusCode::OK),
        ("inbox-mcp.mail.svc:8080", StatusCode::OK),
        ("inbox-mcp", StatusCode::OK),
        ("rebind.attacker.example", StatusCode::FORBIDDEN),
        ("inbox-mcp.mail.svc.attacker.example", StatusCode::FORBIDDEN),
    ] {
        let (status, _, body) = post(&router, &[("host", host)], initialize.clone()).await;
        assert_eq!(status, expected, "Host {host}: {body}");
    }
}
