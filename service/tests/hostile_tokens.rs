//! Every hostile credential is refused with 401, the right reason header and a metrics count.

mod common;

use common::*;
use serde_json::{Value, json};

const SCAN: &str = "/v1/mail/scan";

/// One row: name, headers to send, expected reason.
type Case = (&'static str, Vec<(&'static str, String)>, &'static str);

fn table() -> Vec<Case> {
    let secret = JWT_SECRET.as_bytes();
    let good = claims("mail:scan");
    let with = |patch: Value| {
        let mut c = good.clone();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };
    let hs = |header: Value, payload: Value| hs256_raw(&header, &payload, secret);
    let std_header = json!({"alg": "HS256", "typ": "JWT"});
    let valid = hs256(&good);
    let (h, p, s) = {
        let mut it = valid.split('.');
        (it.next().unwrap().to_owned(), it.next().unwrap().to_owned(), it.next().unwrap().to_owned())
    };
    let bearer = |t: String| vec![("authorization", format!("Bearer {t}"))];
    let none_token = |alg: &str| format!("{}.{}.sig", b64(json!({"alg": alg}).to_string().as_bytes()), p);
    let rs_pub_as_hmac = hs256_raw(&json!({"alg": "HS256", "kid": "rsa1"}), &good, RSA_PUBLIC.as_bytes());
    let tampered =
        format!("{h}.{}.{s}", b64(with(json!({"scope": "mail:scan unsubscribe:execute"})).to_string().as_bytes()));
    vec![
        ("no credentials", vec![], "missing_credentials"),
        ("alg none, empty signature", bearer(format!("{}.{p}.", b64(br#"{"alg":"none"}"#))), "bad_signature"),
        ("alg none", bearer(none_token("none")), "algorithm_not_allowed"),
        ("alg None", bearer(none_token("None")), "algorithm_not_allowed"),
        ("alg NONE", bearer(none_token("NONE")), "algorithm_not_allowed"),
        ("alg missing", bearer(format!("{}.{p}.{s}", b64(br#"{"typ":"JWT"}"#))), "algorithm_not_allowed"),
        (
            "HS512 against an HS256 key",
            bearer(format!("{}.{p}.{s}", b64(br#"{"alg":"HS512"}"#))),
            "algorithm_not_allowed",
        ),
        ("HS256 signed with the RSA public key (confusion)", bearer(rs_pub_as_hmac), "algorithm_not_allowed"),
        (
            "RS256 header on the HMAC key",
            bearer(format!("{}.{p}.{s}", b64(br#"{"alg":"RS256"}"#))),
            "algorithm_not_allowed",
        ),
        ("unknown kid", bearer(hs(json!({"alg": "HS256", "kid": "nope"}), good.clone())), "unknown_kid"),
        (
            "kid path traversal",
            bearer(hs(json!({"alg": "HS256", "kid": "../../dev/null"}), good.clone())),
            "unknown_kid",
        ),
        ("kid with NUL", bearer(hs(json!({"alg": "HS256", "kid": "a\u{0}b"}), good.clone())), "unknown_kid"),
        ("kid SQL injection", bearer(hs(json!({"alg": "HS256", "kid": "x' OR '1'='1"}), good.clone())), "unknown_kid"),
        ("kid 2 KB", bearer(hs(json!({"alg": "HS256", "kid": "k".repeat(2048)}), good.clone())), "unknown_kid"),
        ("kid not a string", bearer(hs(json!({"alg": "HS256", "kid": 7}), good.clone())), "unknown_kid"),
        (
            "revoked HMAC key",
            bearer(hs256_raw(&json!({"alg": "HS256", "kid": "hs-revoked"}), &good, REVOKED_HS_SECRET.as_bytes())),
            "revoked_key",
        ),
        (
            "jku header",
            bearer(hs(json!({"alg": "HS256", "jku": "http://169.254.169.254/"}), good.clone())),
            "forbidden_header",
        ),
        ("x5u header", bearer(hs(json!({"alg": "HS256", "x5u": "http://evil/"}), good.clone())), "forbidden_header"),
        (
            "embedded jwk",
            bearer(hs(json!({"alg": "HS256", "jwk": {"kty": "oct", "k": "AA"}}), good.clone())),
            "forbidden_header",
        ),
        ("unknown crit", bearer(hs(json!({"alg": "HS256", "crit": ["exp"]}), good.clone())), "forbidden_header"),
        ("typ JWE", bearer(hs(json!({"alg": "HS256", "typ": "JWE"}), good.clone())), "wrong_type"),
        ("expired beyond skew", bearer(hs(std_header.clone(), with(json!({"exp": now() - 120})))), "expired"),
        ("not yet valid", bearer(hs(std_header.clone(), with(json!({"nbf": now() + 3600})))), "not_yet_valid"),
        ("exp missing", bearer(hs(std_header.clone(), with(json!({"exp": null})))), "missing_claim"),
        ("exp as string", bearer(hs(std_header.clone(), with(json!({"exp": "9999999999"})))), "malformed"),
        ("exp 1e300", bearer(hs(std_header.clone(), with(json!({"exp": 1e300})))), "malformed"),
        ("wrong audience", bearer(hs(std_header.clone(), with(json!({"aud": "someone-else"})))), "wrong_audience"),
        ("audience missing", bearer(hs(std_header.clone(), with(json!({"aud": null})))), "missing_claim"),
        ("wrong issuer", bearer(hs(std_header.clone(), with(json!({"iss": "https://evil.test"})))), "wrong_issuer"),
        ("issuer missing", bearer(hs(std_header.clone(), with(json!({"iss": null})))), "missing_claim"),
        (
            "lifetime over the maximum",
            bearer(hs(std_header.clone(), with(json!({"iat": now(), "exp": now() + 10 * 86400})))),
            "lifetime_too_long",
        ),
        (
            "wrong secret",
            bearer(hs256_raw(&std_header, &good, b"another-secret-of-at-least-32-bytes!!")),
            "bad_signature",
        ),
        ("signature stripped", bearer(format!("{h}.{p}.")), "bad_signature"),
        ("payload tampered", bearer(tampered), "bad_signature"),
        (
            "RS256 token signature from another token",
            bearer({
                let t = rs256("rsa1", &good);
                let mut parts: Vec<&str> = t.split('.').collect();
                parts[2] = &s;
                parts.join(".")
            }),
            "bad_signature",
        ),
        ("two segments", bearer(format!("{h}.{p}")), "malformed"),
        ("four segments", bearer(format!("{h}.{p}.{s}.x")), "malformed"),
        ("header not base64url", bearer(format!("!!!.{p}.{s}")), "malformed"),
        ("header padded base64", bearer(format!("{h}=.{p}.{s}")), "malformed"),
        ("header not JSON", bearer(format!("{}.{p}.{s}", b64(b"not json"))), "malformed"),
        ("oversized token", bearer(hs(std_header.clone(), with(json!({"pad": "x".repeat(9000)})))), "too_large"),
        ("Basic scheme", vec![("authorization", "Basic YWxpY2U6cHc=".to_owned())], "malformed"),
        ("API key with a trailing byte", vec![("x-api-key", format!("{API_KEY}x"))], "invalid_api_key"),
        ("API key truncated", vec![("x-api-key", API_KEY[..API_KEY.len() - 1].to_owned())], "invalid_api_key"),
        ("revoked API key", vec![("x-api-key", REVOKED_KEY.to_owned())], "revoked_key"),
        ("API key past notAfter", vec![("x-api-key", EXPIRED_KEY.to_owned())], "expired_key"),
        ("API key 1 KB", vec![("x-api-key", "k".repeat(1024))], "malformed"),
    ]
}

#[tokio::test]
async fn every_hostile_credential_is_rejected_with_its_reason() {
    let (app, _dir) = app("hybrid", &[]);
    let cases = table();
    assert!(cases.len() >= 30, "the table must stay at least thirty rows");
    let mut expected_counts = std::collections::BTreeMap::<&str, u32>::new();
    for (name, headers, reason) in &cases {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, response_headers, body) = send(&app, post(SCAN, &headers, json!({}))).await;
        assert_eq!(status, 401, "{name}: {body}");
        assert_eq!(response_headers["x-auth-failure"], *reason, "{name}");
        assert_eq!(body, json!({"error": "unauthorized"}), "{name}: same body whatever the reason");
        *expected_counts.entry(reason).or_default() += 1;
    }
    let (_, _, metrics) =
        send(&app, axum::http::Request::get("/metrics").body(axum::body::Body::empty()).unwrap()).await;
    let metrics = metrics.as_str().unwrap().to_owned();
    for (reason, count) in expected_counts {
        let line = format!("mailagent_auth_failures_total{{door=\"rest\",reason=\"{reason}\"}} {count}");
        assert!(metrics.contains(&line), "missing {line:?} in\n{metrics}");
    }
    assert!(!metrics.contains(API_KEY) && !metrics.contains(JWT_SECRET), "no secret in metrics");
}

/// The claims of a valid token with its scopes in `claim`, written as `value` (a string or an
/// array: issuers differ).
fn scoped(claim: &str, value: Value) -> Value {
    let mut c = claims("");
    c.as_object_mut().unwrap().remove("scope");
    c[claim] = value;
    c
}

#[tokio::test]
async fn valid_credentials_of_every_kind_pass() {
    let (app, _dir) = app("hybrid", &[]);
    let bearer = |claims: Value| ("authorization", format!("Bearer {}", hs256(&claims)));
    for headers in [
        vec![("x-api-key", API_KEY.to_owned())],
        // A proxy's own Authorization header does not stop a valid API key.
        vec![("x-api-key", API_KEY.to_owned()), ("authorization", "Basic YWxpY2U6cHc=".to_owned())],
        vec![("x-api-key", API_KEY.to_owned()), ("authorization", "Bearer ".to_owned())],
        // Every shape issuers give the scope claims.
        vec![bearer(scoped("scope", json!("availability:read mail:scan")))],
        vec![bearer(scoped("scope", json!(["mail:scan"])))],
        vec![bearer(scoped("scp", json!("mail:scan availability:read")))],
        vec![bearer(scoped("scp", json!(["availability:read", "mail:scan"])))],
        vec![("authorization", format!("Bearer {}", hs256(&claims("mail:scan"))))],
        vec![("authorization", format!("Bearer {}", rs256("rsa1", &claims("mail:scan"))))],
        vec![("authorization", format!("Bearer {}", hs256(&claims("mail:scan")))), ("x-api-key", "wrong".to_owned())],
        vec![(
            "authorization",
            format!(
                "Bearer {}",
                hs256(&{
                    let mut c = claims("mail:scan");
                    c["exp"] = json!(now() - 10);
                    c
                })
            ),
        )],
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, _, body) = send(&app, post(SCAN, &headers, json!({}))).await;
        assert_eq!(status, 200, "{headers:?}: {body}");
        assert_eq!(body["total_messages"], 3);
    }
}

/// A scope claim in any shape grants only what it names: a token whose `scope` or `scp` lacks
/// `mail:scan` is refused the scan, whichever shape it came in.
#[tokio::test]
async fn every_scope_claim_shape_grants_only_what_it_names() {
    let (app, _dir) = app("hybrid", &[]);
    for claims in [
        scoped("scope", json!("availability:read")),
        scoped("scope", json!(["availability:read", "mail:scan:extra"])),
        scoped("scp", json!("availability:read unknown:scope")),
        scoped("scp", json!(["availability:read"])),
        scoped("scopes", json!(["mail:scan"])),
    ] {
        let token = format!("Bearer {}", hs256(&claims));
        let (status, _, body) = send(&app, post(SCAN, &[("authorization", &token)], json!({}))).await;
        assert_eq!(status, 403, "{claims}: {body}");
    }
}

/// In `api_key` mode the `Authorization` header is not read at all: a proxy's Basic credentials
/// beside a valid key pass, and beside no key the answer is the missing key, not the header.
#[tokio::test]
async fn api_key_mode_ignores_the_authorization_header() {
    let (app, _dir) = app("api_key", &[]);
    let basic = "Basic YWxpY2U6cHc=";
    let (status, _, body) =
        send(&app, post(SCAN, &[("x-api-key", API_KEY), ("authorization", basic)], json!({}))).await;
    assert_eq!(status, 200, "{body}");
    let (status, headers, _) = send(&app, post(SCAN, &[("authorization", basic)], json!({}))).await;
    assert_eq!(status, 401);
    assert_eq!(headers["x-auth-failure"], "missing_credentials");
}
