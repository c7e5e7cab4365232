//! Shared setup for the integration tests and the bench (cargo feature `testing`): the real
//! router over a canned assistant, with a keyring on disk, and token helpers. Not part of the
//! workload binary.

use std::collections::HashMap;
use std::sync::Arc;

use crate::app::App;
use crate::settings::Source;
use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use mailagent_mail::api::*;
use serde_json::{Value, json};
use tower::ServiceExt;

pub const API_KEY: &str = "test-api-key-0123456789abcdef0123456789";
pub const SCAN_ONLY_KEY: &str = "scan-only-key-0123456789abcdef012345678";
pub const REVOKED_KEY: &str = "revoked-key-0123456789abcdef0123456789a";
pub const EXPIRED_KEY: &str = "expired-key-0123456789abcdef0123456789a";
pub const JWT_SECRET: &str = "test-jwt-secret-that-is-at-least-32-bytes!";
pub const REVOKED_HS_SECRET: &str = "revoked-hs-secret-that-is-32-bytes-long!!";
pub const ISSUER: &str = "https://issuer.test";
pub const AUDIENCE: &str = "mailagent";
/// The binary's environment under load (benches, the PGO trainer's test): hybrid auth with the
/// test key and HS256 secret, and a rate limit too high to refuse anything. `hack/pgo-build.sh`
/// trains the release binary under the same settings with throwaway credentials; keep them alike.
pub const LOAD_ENV: [(&str, &str); 7] = [
    ("AUTH_MODE", "hybrid"),
    ("AGENT_API_KEY", API_KEY),
    ("AUTH_JWT_SECRET", JWT_SECRET),
    ("AUTH_JWT_ISSUER", ISSUER),
    ("AUTH_JWT_AUDIENCE", AUDIENCE),
    ("RATE_LIMIT_PER_MINUTE", "1000000000"),
    ("RATE_LIMIT_BURST", "1000000000"),
];
pub const RSA_PRIVATE: &str = include_str!("../tests/fixtures/rsa_private.pem");
pub const RSA_PUBLIC: &str = include_str!("../tests/fixtures/rsa_public.pem");

/// Answers every capability with a small fixed result.
pub struct CannedAssistant;

#[async_trait]
impl Assistant for CannedAssistant {
    async fn scan(&self, _: ScanRequest) -> Result<ScanResponse, DomainError> {
        Ok(ScanResponse {
            total_messages: 3,
            fetched_messages: 3,
            incremental: false,
            full_scan_reason: None,
            counts: vec![],
            top_senders: vec![],
            messages: vec![],
            quota_units: 0,
        })
    }
    async fn unsubscribe_candidates(&self, _: CandidatesRequest) -> Result<CandidatesResponse, DomainError> {
        Ok(CandidatesResponse { candidates: vec![], scanned_messages: 3 })
    }
    async fn unsubscribe(&self, request: UnsubscribeRequest) -> Result<UnsubscribeResponse, DomainError> {
        Ok(UnsubscribeResponse {
            candidate: request.candidate,
            method: MethodKind::OneClick,
            target: "https://list.example/…".into(),
            dry_run: request.dry_run,
            outcome: UnsubscribeOutcome::WouldExecute,
            detail: "dry run".into(),
            mailto: None,
        })
    }
    async fn digest(&self, _: DigestRequest) -> Result<DigestResponse, DomainError> {
        Err(DomainError::Provider("no provider in tests".into()))
    }
    async fn availability(&self, _: AvailabilityRequest) -> Result<AvailabilityResponse, DomainError> {
        Err(DomainError::InvalidInput("window".into()))
    }
    async fn meeting_intervals(&self, _: MeetingIntervalsRequest) -> Result<MeetingIntervalsResponse, DomainError> {
        Err(DomainError::InvalidInput("window".into()))
    }
    fn metrics(&self) -> DomainMetrics {
        DomainMetrics::default()
    }
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// Writes a keyring with every kind of key the tests need.
pub fn write_keyring(dir: &std::path::Path) {
    use base64::Engine;
    let keyring = json!({
        "schema": 1,
        "revision": 7,
        "apiKeys": [
            {"kid": "k-ci", "client": "ci", "sha256": sha256_hex(SCAN_ONLY_KEY), "scopes": ["mail:scan"], "state": "Active"},
            {"kid": "k-old", "client": "old", "sha256": sha256_hex(REVOKED_KEY), "scopes": ["mail:scan"], "state": "Revoked"},
            {"kid": "k-exp", "client": "exp", "sha256": sha256_hex(EXPIRED_KEY), "scopes": ["mail:scan"], "state": "Active", "notAfter": "2020-01-01T00:00:00Z"},
        ],
        "jwtKeys": [
            {"kid": "rsa1", "alg": "RS256", "publicKeyPem": RSA_PUBLIC, "state": "Active"},
            {"kid": "hs-revoked", "alg": "HS256", "secret": base64::engine::general_purpose::STANDARD.encode(REVOKED_HS_SECRET), "state": "Revoked"},
        ],
    });
    std::fs::write(dir.join("keyring.json"), serde_json::to_vec_pretty(&keyring).unwrap()).unwrap();
}

/// Publishes `keyring` in `dir` the way the kubelet updates a mounted Secret: a new timestamped
/// directory, then a `..data` symlink renamed over the old one (and `keyring.json` pointing
/// through it, made once). The previous generation's directory is left in place.
pub fn kubelet_publish(dir: &std::path::Path, generation: u32, keyring: &Value) {
    let data = format!("..2026_11_28_{generation:04}");
    std::fs::create_dir(dir.join(&data)).unwrap();
    std::fs::write(dir.join(&data).join("keyring.json"), keyring.to_string()).unwrap();
    std::os::unix::fs::symlink(&data, dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    if !dir.join("keyring.json").exists() {
        std::os::unix::fs::symlink("..data/keyring.json", dir.join("keyring.json")).unwrap();
    }
}

/// Settings from `(name, value)` pairs, as the process would read them from its environment.
pub fn source_from(pairs: &[(&str, &str)]) -> Source {
    Source::from_map(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

/// An app (no socket) in `mode`, with extra settings; the temp dir holds the keyring.
pub fn app(mode: &str, extra: &[(&str, &str)]) -> (Arc<App>, tempfile::TempDir) {
    app_with(mode, extra, Arc::new(CannedAssistant))
}

/// As [`app`], over `assistant`.
pub fn app_with(mode: &str, extra: &[(&str, &str)], assistant: Arc<dyn Assistant>) -> (Arc<App>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    write_keyring(dir.path());
    let mut env: HashMap<String, String> = [
        ("AUTH_MODE", mode),
        ("AGENT_API_KEY", API_KEY),
        ("AUTH_JWT_SECRET", JWT_SECRET),
        ("AUTH_JWT_ISSUER", ISSUER),
        ("AUTH_JWT_AUDIENCE", AUDIENCE),
        ("AUTH_JWT_MAX_LIFETIME_SECONDS", "86400"),
        ("RATE_LIMIT_PER_MINUTE", "100000"),
        ("RATE_LIMIT_BURST", "10000"),
        ("MAILAGENT_KEYRING_DIR", dir.path().to_str().unwrap()),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    let (app, _) = crate::server::build(&Source::from_map(env), Some(assistant)).unwrap();
    (app, dir)
}

/// Sends one request through the full router.
pub async fn send(app: &Arc<App>, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Value) {
    let response = crate::http::router(app.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body =
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, headers, body)
}

/// A POST with the given headers.
pub fn post(path: &str, headers: &[(&str, &str)], body: Value) -> Request<Body> {
    let mut builder = Request::post(path).header("content-type", "application/json");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Body::from(body.to_string())).unwrap()
}

/// The MCP revision that needs no session: each request names its revision itself.
pub const MCP_STATELESS_REVISION: &str = "2026-07-28";

/// The JSON-RPC body of a sessionless (2026-07-28) MCP request (id 5): `params` with the `_meta`
/// that revision asks of every request, since there is no handshake to carry it.
pub fn mcp_stateless_body(method: &str, mut params: Value) -> Value {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": MCP_STATELESS_REVISION,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"},
    });
    json!({"jsonrpc": "2.0", "id": 5, "method": method, "params": params})
}

/// A sessionless (2026-07-28) MCP request for `method` with `params`, and `credential` as a
/// header; the answer's status, headers and JSON-RPC message (read from the SSE stream, or the
/// JSON body of a refusal).
pub async fn mcp(
    app: &Arc<App>,
    credential: (&str, &str),
    method: &str,
    params: Value,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let mut builder = Request::post("/mcp")
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", MCP_STATELESS_REVISION)
        .header("mcp-method", method)
        .header(credential.0, credential.1);
    if let Some(name) = params.get("name").and_then(Value::as_str) {
        builder = builder.header("mcp-name", name);
    }
    let body = mcp_stateless_body(method, params);
    let response =
        crate::http::router(app.clone()).oneshot(builder.body(Body::from(body.to_string())).unwrap()).await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes);
    let message = text
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
        .find(|m| m.get("id").is_some())
        .or_else(|| serde_json::from_slice(&bytes).ok())
        .unwrap_or_else(|| Value::String(text.into_owned()));
    (status, headers, message)
}

/// A child process (the `mailagent` binary, a peer server) killed and reaped when dropped, so a
/// failing test or bench leaves none behind.
#[derive(Debug)]
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `mailagent` binary at `binary` as tests and benches start it: nothing of the caller's
/// environment but `PATH`, listening on an ephemeral loopback port (read it back from the log with
/// [`serving_address`]), its state in `dir/state` and a fresh copy of the sample Maildir in
/// `dir/maildir`. Callers add auth and whatever else they test, then [`spawn_logged`].
pub fn workload_command(binary: impl AsRef<std::ffi::OsStr>, dir: &std::path::Path) -> std::process::Command {
    copy_sample_maildir(&dir.join("maildir"));
    let mut command = std::process::Command::new(binary);
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("MAILAGENT_LISTEN", "127.0.0.1:0")
        .env("MAILAGENT_STATE_DIR", dir.join("state"))
        .env("MAILDIR_PATH", dir.join("maildir"));
    command
}

/// Spawns `command` (the `mailagent` binary, as a test configures it) with its stdout and stderr
/// in `dir/workload.log`, which [`workload_log`] reads back.
pub fn spawn_logged(command: &mut std::process::Command, dir: &std::path::Path) -> KillOnDrop {
    let log = std::fs::File::create(dir.join("workload.log")).unwrap();
    KillOnDrop(command.stdout(log.try_clone().unwrap()).stderr(log).spawn().expect("spawn the mailagent binary"))
}

/// What the binary [`spawn_logged`] started has written so far (its log names no secret).
pub fn workload_log(dir: &std::path::Path) -> String {
    std::fs::read_to_string(dir.join("workload.log")).unwrap_or_default()
}

/// The address from the binary's `serving` log line, once it listens. Tests start it on port 0,
/// so no other process can take the port between choosing and binding it. Fails with the log if
/// the binary exits first or has not listened within a minute.
pub fn serving_address(dir: &std::path::Path, workload: &mut KillOnDrop) -> String {
    let started = std::time::Instant::now();
    loop {
        let log = workload_log(dir);
        let serving = log.lines().find_map(|line| {
            let line: Value = serde_json::from_str(line).ok()?;
            (line["fields"]["message"] == "serving").then(|| line["fields"]["listen"].as_str().unwrap().to_owned())
        });
        if let Some(address) = serving {
            return address;
        }
        assert!(workload.0.try_wait().unwrap().is_none(), "the binary exited before it listened:\n{log}");
        assert!(started.elapsed() < std::time::Duration::from_secs(60), "the binary did not start:\n{log}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Standard valid claims with the given scopes.
pub fn claims(scope: &str) -> Value {
    json!({"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "iat": now(), "exp": now() + 600, "scope": scope})
}

pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A compact token with an arbitrary header and payload, HMAC-SHA256-signed with `secret`.
pub fn hs256_raw(header: &Value, payload: &Value, secret: &[u8]) -> String {
    let signing_input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(payload.to_string().as_bytes()));
    let key = jsonwebtoken::EncodingKey::from_secret(secret);
    let signature = jsonwebtoken::crypto::sign(signing_input.as_bytes(), &key, jsonwebtoken::Algorithm::HS256).unwrap();
    format!("{signing_input}.{signature}")
}

/// A real RS256 token from the fixture key.
pub fn rs256(kid: &str, payload: &Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(kid.into());
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, payload, &key).unwrap()
}

/// A valid HS256 token for the laptop secret (no kid).
pub fn hs256(payload: &Value) -> String {
    hs256_raw(&json!({"alg": "HS256", "typ": "JWT"}), payload, JWT_SECRET.as_bytes())
}

/// A copy of the sample Maildir (`mail/testdata/maildir`) at `to`, so a test may change it.
pub fn copy_sample_maildir(to: &std::path::Path) {
    fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                copy_dir(&entry.path(), &to.join(entry.file_name()));
            } else {
                std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
            }
        }
    }
    copy_dir(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../mail/testdata/maildir"), to);
}
