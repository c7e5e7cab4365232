//! What a caller of each door notices: scopes, the mutation switch, the agent card, A2A tasks,
//! the OAuth challenge and rate limits.

mod common;

use axum::body::Body;
use axum::http::Request;
use common::*;
use serde_json::json;

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn missing_scope_is_403_and_mutations_obey_the_switch() {
    let (app, _dir) = app("api_key", &[]);
    let (status, _, body) =
        send(&app, post("/v1/unsubscribe/candidates", &[("x-api-key", SCAN_ONLY_KEY)], json!({}))).await;
    assert_eq!(status, 403);
    assert_eq!(body, json!({"error": "insufficient_scope", "scope": "unsubscribe:read"}));

    let execute = || post("/v1/unsubscribe/execute", &[("x-api-key", API_KEY)], json!({"candidate": "news"}));
    let (status, _, body) = send(&app, execute()).await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (403, Some("mutations_disabled")), "off by default");
    app.set_mutations(true);
    let (status, _, body) = send(&app, execute()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outcome"], "would_execute");
}

#[tokio::test]
async fn domain_errors_map_to_statuses_and_bad_arguments_are_400() {
    let (app, _dir) = app("api_key", &[]);
    let key = [("x-api-key", API_KEY)];
    let (status, _, _) = send(&app, post("/v1/mail/scan", &key, json!({"nonsense": 1}))).await;
    assert_eq!(status, 400);
    let (status, _, body) = send(&app, post("/v1/unsubscribe/digest", &key, json!({}))).await;
    assert_eq!(status, 403, "digest is a mutation: {body}");
}

#[tokio::test]
async fn rest_bodies_must_be_json_objects_and_every_error_is_json() {
    // Regressions found by schemathesis against /openapi.json.
    let (app, _dir) = app("api_key", &[]);
    let key = [("x-api-key", API_KEY)];
    for body in [json!([null, null]), json!(null), json!(7)] {
        let (status, _, reply) = send(&app, post("/v1/mail/scan", &key, body.clone())).await;
        assert_eq!((status.as_u16(), reply["error"].as_str()), (400, Some("invalid_arguments")), "{body}: {reply}");
    }
    let (status, _, reply) = send(&app, post("/v1/unsubscribe/candidates", &key, json!({"limit": 1000.0}))).await;
    assert_eq!(status, 200, "1000.0 is an integer to JSON Schema: {reply}");
    let no_type = Request::post("/v1/mail/scan").header("x-api-key", API_KEY).body(Body::from("{}")).unwrap();
    let (status, headers, reply) = send(&app, no_type).await;
    assert_eq!((status.as_u16(), reply["error"].as_str()), (415, Some("unsupported_media_type")), "{reply}");
    assert_eq!(headers["content-type"], "application/json");
    let broken = Request::post("/v1/mail/scan")
        .header("x-api-key", API_KEY)
        .header("content-type", "application/json")
        .body(Body::from("{\"full\":"))
        .unwrap();
    let (status, _, reply) = send(&app, broken).await;
    assert_eq!((status.as_u16(), reply["error"].as_str()), (400, Some("invalid_json")), "{reply}");
}

#[tokio::test]
async fn agent_card_matches_the_auth_mode_and_supports_etags() {
    let (app, _dir) = app("hybrid", &[]);
    let (status, headers, card) = send(&app, get("/.well-known/agent-card.json")).await;
    assert_eq!(status, 200);
    assert_eq!(card["securityRequirements"].as_array().unwrap().len(), 2, "hybrid is two alternatives");
    assert!(card["securitySchemes"]["apiKey"]["apiKeySecurityScheme"].is_object());
    let skills: Vec<&str> = card["skills"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert!(skills.contains(&"mail_scan") && !skills.contains(&"unsubscribe_execute"), "{skills:?}");
    assert!(headers["cache-control"].to_str().unwrap().contains("max-age"));
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let request =
        Request::get("/.well-known/agent-card.json").header("if-none-match", &etag).body(Body::empty()).unwrap();
    let (status, _, _) = send(&app, request).await;
    assert_eq!(status, 304);
}

#[tokio::test]
async fn agent_card_urls_come_from_the_public_url_not_the_host_header() {
    let (app, _dir) = app("api_key", &[("MAILAGENT_PUBLIC_URL", "https://mail.example.com/agent/")]);
    let request = Request::get("/.well-known/agent-card.json").header("host", "evil.example").body(Body::empty());
    let (status, _, card) = send(&app, request.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(card["supportedInterfaces"][0]["url"], "https://mail.example.com/agent/a2a");
}

#[tokio::test]
async fn a2a_send_then_get_in_v1_and_v03() {
    let (app, _dir) = app("api_key", &[]);
    let message =
        json!({"messageId": "m1", "role": "ROLE_USER", "parts": [{"data": {"skill": "mail_scan", "arguments": {}}}]});
    let rpc = |version: Option<&str>, method: &str, params: serde_json::Value| {
        let mut builder = Request::post("/a2a").header("content-type", "application/json").header("x-api-key", API_KEY);
        if let Some(v) = version {
            builder = builder.header("a2a-version", v);
        }
        builder
            .body(Body::from(json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string()))
            .unwrap()
    };
    let (_, _, sent) = send(&app, rpc(Some("1.0"), "SendMessage", json!({"message": message}))).await;
    let task = &sent["result"]["task"];
    assert_eq!(task["status"]["state"], "TASK_STATE_COMPLETED", "{sent}");
    assert_eq!(task["artifacts"][0]["parts"][0]["data"]["total_messages"], 3);
    let (_, _, got) = send(&app, rpc(Some("1.0"), "GetTask", json!({"id": task["id"]}))).await;
    assert_eq!(got["result"]["id"], task["id"]);
    let (_, _, listed) = send(&app, rpc(Some("1.0"), "ListTasks", json!({}))).await;
    assert_eq!(listed["result"]["tasks"].as_array().unwrap().len(), 1);
    let (_, _, cancel) = send(&app, rpc(Some("1.0"), "CancelTask", json!({"id": task["id"]}))).await;
    assert_eq!(cancel["error"]["code"], -32002);
    let (_, _, old) = send(&app, rpc(None, "message/send", json!({"message": message}))).await;
    assert_eq!(
        (old["result"]["kind"].as_str(), old["result"]["status"]["state"].as_str()),
        (Some("task"), Some("completed"))
    );
    let (_, _, unknown) = send(&app, rpc(Some("9.9"), "SendMessage", json!({}))).await;
    assert_eq!(unknown["error"]["code"], -32009);
    let (_, _, other) = send(&app, rpc(Some("1.0"), "GetTask", json!({"id": "not-mine"}))).await;
    assert_eq!(other["error"]["code"], -32001);
}

#[tokio::test]
async fn extended_agent_card_lists_only_the_callers_skills() {
    let (app, _dir) = app("hybrid", &[]);
    app.set_mutations(true);
    let rpc = |credential: (&str, &str), version: Option<&str>, method: &str| {
        let mut builder =
            Request::post("/a2a").header("content-type", "application/json").header(credential.0, credential.1);
        if let Some(v) = version {
            builder = builder.header("a2a-version", v);
        }
        builder.body(Body::from(json!({"jsonrpc": "2.0", "id": 7, "method": method}).to_string())).unwrap()
    };
    let ids = |card: &serde_json::Value| -> Vec<String> {
        card["skills"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_owned()).collect()
    };

    let (_, _, public) = send(&app, get("/.well-known/agent-card.json")).await;
    assert_eq!(public["capabilities"]["extendedAgentCard"], true);
    assert_eq!(ids(&public).len(), 6, "the public card lists every skill the switch allows, to anyone");

    let token = format!("Bearer {}", hs256(&claims("mail:scan availability:read")));
    let (status, _, reply) = send(&app, rpc(("authorization", &token), Some("1.0"), "GetExtendedAgentCard")).await;
    assert_eq!(status, 200);
    let extended = &reply["result"];
    assert_eq!(ids(extended), ["mail_scan", "availability"], "{reply}");
    assert_eq!(extended["securityRequirements"], public["securityRequirements"]);
    assert_eq!(extended["supportedInterfaces"][0]["url"], "http://localhost/a2a");

    let (_, _, reply) = send(&app, rpc(("x-api-key", SCAN_ONLY_KEY), Some("1.0"), "GetExtendedAgentCard")).await;
    assert_eq!(ids(&reply["result"]), ["mail_scan"]);

    // v0.3 name and card shape when A2A-Version is absent.
    let (_, _, reply) = send(&app, rpc(("x-api-key", SCAN_ONLY_KEY), None, "agent/getAuthenticatedExtendedCard")).await;
    let old = &reply["result"];
    assert_eq!(ids(old), ["mail_scan"], "{reply}");
    assert_eq!((old["protocolVersion"].as_str(), old["url"].as_str()), (Some("0.3.0"), Some("http://localhost/a2a")));
    assert_eq!(old["supportsAuthenticatedExtendedCard"], true);
    assert_eq!(old["security"], json!([{"apiKey": []}, {"bearer": []}]));

    // The switch still applies: an execute-scoped caller loses the skill when mutations go off.
    let token = format!("Bearer {}", hs256(&claims("mail:scan unsubscribe:execute")));
    let (_, _, reply) = send(&app, rpc(("authorization", &token), Some("1.0"), "GetExtendedAgentCard")).await;
    assert_eq!(ids(&reply["result"]), ["mail_scan", "unsubscribe_execute"]);
    app.set_mutations(false);
    let (_, _, reply) = send(&app, rpc(("authorization", &token), Some("1.0"), "GetExtendedAgentCard")).await;
    assert_eq!(ids(&reply["result"]), ["mail_scan"]);

    let (status, _, _) = send(&app, rpc(("x-api-key", "wrong"), Some("1.0"), "GetExtendedAgentCard")).await;
    assert_eq!(status, 401, "the extended card is for authenticated callers only");
}

#[tokio::test]
async fn oauth_mcp_door_challenges_with_resource_metadata() {
    let extra = [
        ("MCP_AUTH_MODE", "oauth"),
        ("MCP_RESOURCE_SERVER_URL", "https://mail.example.com/mcp"),
        ("MCP_OAUTH_ISSUER", "https://issuer.example.com"),
    ];
    let (app, _dir) = app("api_key", &extra);
    let (status, headers, _) = send(&app, post("/mcp", &[("host", "mail.example.com")], json!({}))).await;
    assert_eq!(status, 401);
    assert_eq!(
        headers["www-authenticate"],
        "Bearer error=\"invalid_token\", resource_metadata=\"https://mail.example.com/.well-known/oauth-protected-resource/mcp\""
    );
    assert_eq!(headers["x-auth-failure"], "missing_credentials");
    for path in ["/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"] {
        let (status, _, prm) = send(&app, get(path)).await;
        assert_eq!(status, 200);
        assert_eq!(prm["resource"], "https://mail.example.com/mcp");
        assert_eq!(prm["authorization_servers"], json!(["https://issuer.example.com"]));
    }
    // No documentation URL configured, none advertised.
    assert!(send(&app, get("/.well-known/oauth-protected-resource")).await.2.get("resource_documentation").is_none());
    // The laptop HMAC token is not an OAuth token for this resource (and costs no JWKS fetch).
    let token = format!("Bearer {}", hs256(&claims("mail:scan")));
    let (status, headers, _) = send(&app, post("/mcp", &[("authorization", &token)], json!({}))).await;
    assert_eq!((status.as_u16(), headers["x-auth-failure"].to_str().unwrap()), (401, "unknown_kid"));
}

/// A resource behind a path prefix has its metadata where RFC 9728 puts it (the well-known
/// segment before the resource's path), and the document carries the configured documentation
/// URL and advertises only listed scopes the policy offers.
#[tokio::test]
async fn oauth_metadata_follows_the_resource_path_and_the_configured_fields() {
    let extra = [
        ("MCP_AUTH_MODE", "oauth"),
        ("MCP_RESOURCE_SERVER_URL", "https://mail.example.com/agent/mcp"),
        ("MCP_OAUTH_ISSUER", "https://issuer.example.com"),
        ("MCP_OAUTH_SCOPES_SUPPORTED", "mail:scan unsubscribe:execute availability:read"),
        ("MCP_OAUTH_RESOURCE_DOCUMENTATION", "https://docs.example.com/mail"),
    ];
    let (app, _dir) = app("api_key", &extra);
    let (_, headers, _) = send(&app, post("/mcp", &[("host", "mail.example.com")], json!({}))).await;
    let challenge = headers["www-authenticate"].to_str().unwrap();
    let advertised = "https://mail.example.com/.well-known/oauth-protected-resource/agent/mcp";
    assert!(challenge.contains(&format!("resource_metadata=\"{advertised}\"")), "{challenge}");
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource/agent/mcp",
    ] {
        let (status, _, prm) = send(&app, get(path)).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(prm["resource"], "https://mail.example.com/agent/mcp");
        assert_eq!(prm["resource_documentation"], "https://docs.example.com/mail");
        // Mutations are off by default, so unsubscribe:execute is listed but not offered.
        assert_eq!(prm["scopes_supported"], json!(["availability:read", "mail:scan"]), "{path}");
    }
    app.set_mutations(true);
    let (_, _, prm) = send(&app, get("/.well-known/oauth-protected-resource")).await;
    assert_eq!(prm["scopes_supported"], json!(["availability:read", "mail:scan", "unsubscribe:execute"]));
}

#[tokio::test]
async fn over_the_rate_is_429_with_retry_after_even_for_health() {
    let (app, _dir) = app("api_key", &[("RATE_LIMIT_PER_MINUTE", "1"), ("RATE_LIMIT_BURST", "2")]);
    assert_eq!(send(&app, get("/health")).await.0, 200);
    assert_eq!(send(&app, get("/healthz")).await.0, 200);
    let (status, headers, _) = send(&app, get("/health")).await;
    assert_eq!(status, 429);
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
}

#[tokio::test]
async fn openapi_is_served_without_auth_and_lists_every_route() {
    let (app, _dir) = app("jwt", &[]);
    let (status, _, doc) = send(&app, get("/openapi.json")).await;
    assert_eq!(status, 200);
    assert_eq!(doc["paths"].as_object().unwrap().len(), 6);
}

#[tokio::test]
async fn the_keyrings_public_keys_are_served_as_a_jwks_without_auth_and_follow_a_reload() {
    use mailagent_service::auth::keys::{EnvSecrets, KeySet};
    let (app, dir) = app("jwt", &[]);
    let (status, headers, body) = send(&app, get("/.well-known/jwks.json")).await;
    assert_eq!(status, 200, "public keys need no credential");
    assert_eq!(headers["content-type"], "application/jwk-set+json");
    assert_eq!(body, json!({"keys": []}), "HMAC secrets are never published; RS256 keys are their issuer's to publish");

    // The operator rotates in an EdDSA key (RFC 8037 A.2's public key); a revoked one stays out.
    let ed = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n-----END PUBLIC KEY-----\n";
    let path = dir.path().join("keyring.json");
    let mut keyring: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for (kid, state) in [("jk-new", "Active"), ("jk-gone", "Revoked")] {
        keyring["jwtKeys"]
            .as_array_mut()
            .unwrap()
            .push(json!({"kid": kid, "alg": "EdDSA", "publicKeyPem": ed, "state": state}));
    }
    std::fs::write(&path, keyring.to_string()).unwrap();
    let secrets = EnvSecrets { api_key: None, jwt_secret: Some(JWT_SECRET.into()) };
    app.auth.replace_keys(KeySet::build(KeySet::read_keyring(dir.path()).unwrap().as_ref(), &secrets).unwrap());
    let (_, _, body) = send(&app, get("/.well-known/jwks.json")).await;
    assert_eq!(
        body,
        json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "jk-new", "alg": "EdDSA", "use": "sig"}]})
    );
    assert!(!body.to_string().contains(JWT_SECRET), "the laptop HMAC secret is not published");
}
