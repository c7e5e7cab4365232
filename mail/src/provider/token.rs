//! OAuth access tokens from an authorized-user `token.json` (the format Python's google-auth
//! writes: `refresh_token`, `token_uri`, `client_id`, `client_secret`, optionally `token` /
//! `access_token` and `expiry`).
//!
//! yup-oauth2 12 cannot read this file (it wants a `type` field and ignores `token_uri`, and
//! its installed flow falls back to an interactive prompt when a refresh fails), so this is a
//! small [`GetToken`] of our own: a `refresh_token` grant POSTed with reqwest to the file's
//! own `token_uri`, one refresh in flight at a time, the access token cached until a minute
//! before it expires, and `invalid_grant` turned into a permanent "re-consent needed" error.
//! It never starts an interactive flow. The file is not rewritten: in a pod it is a read-only
//! Secret mount, and the refresh token does not change on refresh.
//!
//! Secrets never appear in `Debug` output, logs or errors; [`fingerprint`] names a token.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use google_calendar3::common::GetToken;
use serde::Deserialize;
use sha2::Digest;

/// Refresh this long before the cached token expires.
pub const EXPIRY_SKEW: Duration = Duration::from_secs(60);
/// Lifetime assumed when the token endpoint sends no `expires_in`.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);
const REFRESH_TIMEOUT: Duration = Duration::from_secs(30);

/// Why no access token could be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The refresh token was revoked or expired (`invalid_grant`; Testing-mode apps lose theirs
    /// after 7 days) or the client is wrong: only a person re-running consent can fix it.
    #[error(
        "the Google refresh token was rejected ({0}); re-consent is needed: run the consent flow again and replace token.json"
    )]
    ReconsentRequired(String),
    /// `token.json` is missing fields or unreadable.
    #[error("token.json is unusable: {0}")]
    BadFile(String),
    /// The token endpoint could not be reached or failed; a later retry may work.
    #[error("token refresh failed: {0}")]
    Transient(String),
}

impl TokenError {
    /// True when retrying later cannot help.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, Self::Transient(_))
    }
}

/// The authorized-user credentials as stored in `token.json`.
#[derive(Clone, Deserialize)]
pub struct AuthorizedUser {
    /// Long-lived refresh token.
    pub refresh_token: String,
    /// Where refreshes go (Google's is `https://oauth2.googleapis.com/token`).
    #[serde(default = "default_token_uri")]
    pub token_uri: String,
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret.
    pub client_secret: String,
    /// A cached access token (google-auth writes `token`).
    #[serde(default, alias = "access_token")]
    pub token: Option<String>,
    /// When the cached access token expires (RFC 3339, google-auth writes it without offset).
    #[serde(default)]
    pub expiry: Option<String>,
}

fn default_token_uri() -> String {
    "https://oauth2.googleapis.com/token".into()
}

impl std::fmt::Debug for AuthorizedUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizedUser")
            .field("token_uri", &self.token_uri)
            .field("client_id", &self.client_id)
            .field("refresh_token", &fingerprint(&self.refresh_token))
            .finish_non_exhaustive()
    }
}

/// A short, non-reversible name for a secret, safe to log.
pub fn fingerprint(secret: &str) -> String {
    format!("sha256:{}", &hex::encode(sha2::Sha256::digest(secret.as_bytes()))[..12])
}

/// google-auth writes `expiry` as `2026-11-23T17:00:00.123456` (UTC, no offset); accept that
/// and RFC 3339.
fn parse_expiry(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    chrono::NaiveDateTime::parse_from_str(text.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S%.f").ok().map(|n| n.and_utc())
}

#[derive(Clone)]
struct Cached {
    token: String,
    expires: DateTime<Utc>,
}

struct Inner {
    user: AuthorizedUser,
    http: reqwest::Client,
    cache: tokio::sync::Mutex<Option<Cached>>,
    refreshes: std::sync::atomic::AtomicU64,
}

/// A [`GetToken`] over one `token.json`; clones share the cache.
#[derive(Clone)]
pub struct TokenSource {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource").field("user", &self.inner.user).finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

impl TokenSource {
    /// Reads `token.json`.
    pub fn from_file(path: &Path) -> Result<Self, TokenError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| TokenError::BadFile(format!("reading {}: {e}", path.display())))?;
        Self::from_json(&text)
    }

    /// Parses the file's text.
    pub fn from_json(text: &str) -> Result<Self, TokenError> {
        let user: AuthorizedUser = serde_json::from_str(text).map_err(|e| {
            // serde's message names the field, never the value.
            TokenError::BadFile(e.to_string())
        })?;
        Self::new(user)
    }

    /// A source over explicit credentials.
    pub fn new(user: AuthorizedUser) -> Result<Self, TokenError> {
        for (name, value) in
            [("refresh_token", &user.refresh_token), ("client_id", &user.client_id), ("token_uri", &user.token_uri)]
        {
            if value.trim().is_empty() {
                return Err(TokenError::BadFile(format!("{name} is empty")));
            }
        }
        crate::endpoint::check(&user.token_uri).map_err(|e| TokenError::BadFile(format!("token_uri {e}")))?;
        let cached = match (&user.token, user.expiry.as_deref().and_then(parse_expiry)) {
            (Some(token), Some(expires)) if !token.is_empty() => Some(Cached { token: token.clone(), expires }),
            _ => None,
        };
        #[allow(clippy::disallowed_methods, reason = "the token fetcher: one fixed, checked token_uri")]
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(crate::endpoint::tls_client_config())
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(REFRESH_TIMEOUT)
            .user_agent("mailagent-token/1")
            .build()
            .map_err(|e| TokenError::Transient(format!("client set-up: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                user,
                http,
                cache: tokio::sync::Mutex::new(cached),
                refreshes: std::sync::atomic::AtomicU64::new(0),
            }),
        })
    }

    /// Refreshes made so far (for tests and metrics).
    pub fn refreshes(&self) -> u64 {
        self.inner.refreshes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A valid access token: the cached one, or a fresh one from `token_uri`.
    pub async fn access_token(&self) -> Result<String, TokenError> {
        // Holding the lock across the refresh makes concurrent callers wait for one refresh.
        let mut cache = self.inner.cache.lock().await;
        if let Some(cached) = cache.as_ref() {
            let margin = chrono::Duration::from_std(EXPIRY_SKEW).unwrap_or_default();
            if cached.expires - margin > Utc::now() {
                return Ok(cached.token.clone());
            }
        }
        let fresh = self.refresh().await?;
        let token = fresh.token.clone();
        *cache = Some(fresh);
        Ok(token)
    }

    async fn refresh(&self) -> Result<Cached, TokenError> {
        let user = &self.inner.user;
        self.inner.refreshes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", user.refresh_token.as_str()),
            ("client_id", user.client_id.as_str()),
            ("client_secret", user.client_secret.as_str()),
        ];
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let response = self
            .inner
            .http
            .post(&user.token_uri)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| TokenError::Transient(format!("token endpoint unreachable: {}", e.without_url())))?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|e| TokenError::Transient(e.without_url().to_string()))?;
        if (200..300).contains(&status) {
            let parsed: TokenResponse = serde_json::from_slice(&body)
                .map_err(|e| TokenError::Transient(format!("token endpoint answered unreadable JSON: {e}")))?;
            let lifetime = parsed.expires_in.map(Duration::from_secs).unwrap_or(DEFAULT_LIFETIME);
            let expires = Utc::now() + chrono::Duration::from_std(lifetime).unwrap_or_default();
            tracing::debug!(token = %fingerprint(&parsed.access_token), %expires, "access token refreshed");
            return Ok(Cached { token: parsed.access_token, expires });
        }
        let error: Option<ErrorResponse> = serde_json::from_slice(&body).ok();
        let code = error.as_ref().map(|e| e.error.as_str()).unwrap_or("");
        let described = match error.as_ref().and_then(|e| e.error_description.as_deref()) {
            Some(description) => format!("HTTP {status} {code}: {description}"),
            None => format!("HTTP {status} {code}"),
        };
        match (status, code) {
            (400 | 401, "invalid_grant" | "invalid_client" | "unauthorized_client") => {
                Err(TokenError::ReconsentRequired(described))
            }
            (400..=499, _) if status != 408 && status != 429 => Err(TokenError::ReconsentRequired(described)),
            _ => Err(TokenError::Transient(described)),
        }
    }
}

impl GetToken for TokenSource {
    fn get_token<'a>(
        &'a self,
        _scopes: &'a [&str],
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<Option<String>, Box<dyn std::error::Error + Send + Sync>>>
                + Send
                + 'a,
        >,
    > {
        // The scopes were fixed at consent time; a refresh cannot widen them.
        Box::pin(async move { self.access_token().await.map(Some).map_err(|e| Box::new(e) as _) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A loopback token endpoint answering each request with the next canned response and
    /// recording request bodies.
    async fn endpoint(
        answers: Vec<(u16, &'static str)>,
    ) -> (String, Arc<std::sync::Mutex<Vec<String>>>, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/token", listener.local_addr().unwrap());
        let bodies = Arc::new(std::sync::Mutex::new(Vec::new()));
        let hits = Arc::new(AtomicUsize::new(0));
        let (bodies2, hits2) = (bodies.clone(), hits.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else { return };
                let n = hits2.fetch_add(1, Ordering::SeqCst);
                let (status, body) = answers[n.min(answers.len() - 1)];
                let mut buf = vec![0u8; 8192];
                let mut got = Vec::new();
                // Read headers and the (small) form body.
                loop {
                    let read = socket.read(&mut buf).await.unwrap_or(0);
                    if read == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..read]);
                    let text = String::from_utf8_lossy(&got);
                    if let Some(split) = text.find("\r\n\r\n") {
                        let length: usize = text[..split]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap())
                            })
                            .unwrap_or(0);
                        if got.len() >= split + 4 + length {
                            bodies2.lock().unwrap().push(text[split + 4..].to_string());
                            break;
                        }
                    }
                }
                let reply = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(reply.as_bytes()).await;
            }
        });
        (url, bodies, hits)
    }

    fn file(token_uri: &str, extra: &str) -> String {
        format!(
            r#"{{"refresh_token":"1//refresh-secret","token_uri":"{token_uri}","client_id":"cid.apps.example","client_secret":"client-secret","scopes":["https://www.googleapis.com/auth/gmail.modify"]{extra}}}"#
        )
    }

    #[tokio::test]
    async fn refreshes_against_the_files_token_uri_and_caches() {
        let (url, bodies, hits) =
            endpoint(vec![(200, r#"{"access_token":"ya29.fresh","expires_in":3599,"token_type":"Bearer"}"#)]).await;
        let source = TokenSource::from_json(&file(&url, "")).unwrap();
        let (a, b) = tokio::join!(source.access_token(), source.access_token());
        assert_eq!((a.unwrap(), b.unwrap()), ("ya29.fresh".to_string(), "ya29.fresh".to_string()));
        assert_eq!(source.access_token().await.unwrap(), "ya29.fresh");
        assert_eq!(hits.load(Ordering::SeqCst), 1, "one refresh for concurrent callers, then the cache");
        let body = bodies.lock().unwrap()[0].clone();
        assert!(body.contains("grant_type=refresh_token") && body.contains("client_id=cid.apps.example"), "{body}");
        let debug = format!("{source:?}");
        assert!(!debug.contains("refresh-secret") && !debug.contains("client-secret"), "{debug}");
    }

    #[tokio::test]
    async fn a_valid_cached_token_is_used_and_an_expiring_one_refreshed() {
        let (url, _, hits) = endpoint(vec![(200, r#"{"access_token":"ya29.new","expires_in":3600}"#)]).await;
        let later = (Utc::now() + chrono::Duration::minutes(30)).format("%Y-%m-%dT%H:%M:%S%.6f");
        let source =
            TokenSource::from_json(&file(&url, &format!(r#","token":"ya29.cached","expiry":"{later}""#))).unwrap();
        assert_eq!(source.access_token().await.unwrap(), "ya29.cached");
        assert_eq!(hits.load(Ordering::SeqCst), 0);
        let soon = (Utc::now() + chrono::Duration::seconds(30)).to_rfc3339();
        let source =
            TokenSource::from_json(&file(&url, &format!(r#","access_token":"ya29.old","expiry":"{soon}""#))).unwrap();
        assert_eq!(source.access_token().await.unwrap(), "ya29.new", "inside the skew: refresh");
    }

    #[tokio::test]
    async fn invalid_grant_means_reconsent_and_5xx_is_transient() {
        let (url, _, _) = endpoint(vec![
            (503, r#"{"error":"backend"}"#),
            (400, r#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#),
        ])
        .await;
        let source = TokenSource::from_json(&file(&url, "")).unwrap();
        let first = source.access_token().await.unwrap_err();
        assert!(matches!(first, TokenError::Transient(_)) && !first.is_permanent(), "{first}");
        let second = source.access_token().await.unwrap_err();
        assert!(matches!(second, TokenError::ReconsentRequired(_)), "{second}");
        assert!(second.to_string().contains("re-consent"), "{second}");
        assert!(!second.to_string().contains("refresh-secret"));
    }

    #[test]
    fn bad_files_are_named_without_secrets() {
        let missing =
            TokenSource::from_json(r#"{"token_uri":"https://x.example/t","client_id":"c","client_secret":"s"}"#);
        assert!(matches!(missing, Err(TokenError::BadFile(m)) if m.contains("refresh_token")));
        let plain_http = TokenSource::from_json(&file("http://token.example/t", ""));
        assert!(matches!(plain_http, Err(TokenError::BadFile(m)) if m.contains("https")));
        assert_eq!(fingerprint("x").len(), "sha256:".len() + 12);
        assert!(parse_expiry("2026-11-23T17:00:00.123456").is_some() && parse_expiry("2026-11-23T17:00:00Z").is_some());
    }
}
