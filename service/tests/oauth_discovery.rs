//! OAuth mode finds the issuer's keys where the issuer says they are (RFC 8414 metadata, OpenID
//! discovery as the fallback), and a key the issuer removes stops being trusted once the fetched
//! set's lifetime is over (issue 8, defect 10). The issuer is a loopback server publishing its
//! keys at a non-default path, as Keycloak, Okta and Entra ID do.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use common::*;
use jsonwebtoken::jwk::Jwk;
use mailagent_service::auth::jwks::JwksCache;
use serde_json::{Value, json};

const RESOURCE: &str = "https://mail.example.com/mcp";

/// What the fake issuer publishes; changed by the tests while it runs.
struct Published {
    /// Metadata document path -> document.
    metadata: Mutex<Vec<(String, Value)>>,
    keys: Mutex<Value>,
    requests: AtomicUsize,
    /// Answer 503 to everything (an issuer outage).
    down: AtomicBool,
}

/// A loopback issuer at `<base>/tenant`, stopped when dropped.
struct Issuer {
    base: String,
    published: Arc<Published>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Issuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Issuer {
    fn id(&self) -> String {
        format!("{}/tenant", self.base)
    }
}

async fn serve(State(published): State<Arc<Published>>, uri: axum::http::Uri) -> Response {
    published.requests.fetch_add(1, Ordering::SeqCst);
    if published.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let path = uri.path();
    if path == "/keys/current" {
        return axum::Json(published.keys.lock().unwrap().clone()).into_response();
    }
    match published.metadata.lock().unwrap().iter().find(|(p, _)| p == path) {
        Some((_, doc)) => axum::Json(doc.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

fn fixture_jwk(kid: &str) -> Value {
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap();
    let mut jwk = Jwk::from_encoding_key(&key, jsonwebtoken::Algorithm::RS256).unwrap();
    jwk.common.key_id = Some(kid.into());
    serde_json::to_value(jwk).unwrap()
}

/// An issuer publishing its metadata at `metadata_path` (`{issuer}` is the issuer id).
async fn issuer(metadata_path: &str) -> Issuer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let published = Arc::new(Published {
        metadata: Mutex::new(vec![(
            metadata_path.to_owned(),
            json!({"issuer": format!("{base}/tenant"), "jwks_uri": format!("{base}/keys/current")}),
        )]),
        keys: Mutex::new(json!({"keys": [fixture_jwk("rsa-live")]})),
        requests: AtomicUsize::new(0),
        down: AtomicBool::new(false),
    });
    let router = Router::new().fallback(serve).with_state(published.clone());
    let task = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Issuer { base, published, task }
}

fn token(issuer: &Issuer, kid: &str) -> String {
    token_for(issuer, kid, RESOURCE)
}

fn token_for(issuer: &Issuer, kid: &str, audience: &str) -> String {
    let claims = json!({"sub": "agent", "iss": issuer.id(), "aud": audience, "iat": now(), "exp": now() + 300, "scope": "mail:scan"});
    format!("Bearer {}", rs256(kid, &claims))
}

async fn tools_with(issuer: &Issuer) -> (StatusCode, Value) {
    tools_as(issuer, &token(issuer, "rsa-live"), &[]).await
}

/// `tools/list` with `token` on an OAuth MCP door trusting `issuer`, configured with `extra`.
async fn tools_as(issuer: &Issuer, token: &str, extra: &[(&str, &str)]) -> (StatusCode, Value) {
    let id = issuer.id();
    let mut settings =
        vec![("MCP_AUTH_MODE", "oauth"), ("MCP_RESOURCE_SERVER_URL", RESOURCE), ("MCP_OAUTH_ISSUER", id.as_str())];
    settings.extend_from_slice(extra);
    let (app, _dir) = app("api_key", &settings);
    let (status, headers, reply) = mcp(&app, ("authorization", token), "tools/list", json!({})).await;
    let reason = headers.get("x-auth-failure").map(|v| v.to_str().unwrap().to_owned());
    (status, json!({"reply": reply, "auth_failure": reason}))
}

#[tokio::test]
async fn keys_are_found_through_rfc8414_metadata_at_a_non_default_path() {
    let issuer = issuer("/.well-known/oauth-authorization-server/tenant").await;
    let (status, outcome) = tools_with(&issuer).await;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["reply"]["result"]["tools"][0]["name"], "mail_scan", "{outcome}");
}

#[tokio::test]
async fn openid_discovery_is_the_fallback() {
    let issuer = issuer("/tenant/.well-known/openid-configuration").await;
    let (status, outcome) = tools_with(&issuer).await;
    assert_eq!(status, 200, "{outcome}");
}

#[tokio::test]
async fn metadata_naming_another_issuer_is_not_used() {
    let issuer = issuer("/.well-known/oauth-authorization-server/tenant").await;
    issuer.published.metadata.lock().unwrap()[0].1["issuer"] = json!("https://elsewhere.example");
    let (status, outcome) = tools_with(&issuer).await;
    assert_eq!((status.as_u16(), outcome["auth_failure"].as_str()), (401, Some("issuer_unavailable")), "{outcome}");
}

#[tokio::test]
async fn a_removed_key_stops_verifying_when_the_set_expires() {
    let issuer = issuer("/.well-known/oauth-authorization-server/tenant").await;
    let lifetime = Duration::from_millis(300);
    let cache = JwksCache::with_timing(issuer.id(), None, lifetime, Duration::ZERO);
    assert!(cache.key("rsa-live").await.unwrap().is_some());
    let after_first = issuer.published.requests.load(Ordering::SeqCst);
    assert_eq!(after_first, 2, "one metadata document, one key set");

    // The issuer rotates the key out; tokens with its kid keep coming.
    *issuer.published.keys.lock().unwrap() = json!({"keys": [fixture_jwk("rsa-next")]});
    assert!(cache.key("rsa-live").await.unwrap().is_some(), "within its lifetime the fetched set is used as is");
    assert_eq!(issuer.published.requests.load(Ordering::SeqCst), after_first, "a known kid costs no fetch");
    tokio::time::sleep(lifetime + Duration::from_millis(100)).await;
    assert!(cache.key("rsa-live").await.unwrap().is_none(), "after its lifetime the removed key is unknown");
    assert!(cache.key("rsa-next").await.unwrap().is_some());
    assert_eq!(
        issuer.published.requests.load(Ordering::SeqCst),
        after_first + 1,
        "the discovered jwks_uri is remembered: only the key set is fetched again"
    );

    // An issuer that stops answering: an expired set verifies nothing (fail closed).
    issuer.published.down.store(true, Ordering::SeqCst);
    tokio::time::sleep(lifetime + Duration::from_millis(100)).await;
    assert!(cache.key("rsa-next").await.is_err());
}

/// A token for another URL of the same endpoint passes only when that URL is a configured
/// further audience; any other audience stays refused.
#[tokio::test]
async fn further_audiences_are_accepted_only_when_configured() {
    let issuer = issuer("/.well-known/oauth-authorization-server/tenant").await;
    let moved = token_for(&issuer, "rsa-live", "https://old-mail.test/mcp");
    let (status, outcome) = tools_as(&issuer, &moved, &[]).await;
    assert_eq!((status, &outcome["auth_failure"]), (StatusCode::UNAUTHORIZED, &json!("wrong_audience")), "{outcome}");
    let audiences = [("MCP_OAUTH_AUDIENCES", "https://old-mail.test/mcp")];
    let (status, outcome) = tools_as(&issuer, &moved, &audiences).await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    let elsewhere = token_for(&issuer, "rsa-live", "https://another-service.test/mcp");
    let (status, outcome) = tools_as(&issuer, &elsewhere, &audiences).await;
    assert_eq!(outcome["auth_failure"], "wrong_audience", "{status} {outcome}");
}
