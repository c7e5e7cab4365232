//! The OAuth issuer's keys. Where they are published comes from configuration
//! (`MCP_OAUTH_JWKS_URL`) or from the issuer's own metadata, never from a token header: RFC 8414
//! authorization-server metadata first, OpenID discovery as the fallback, tried in the order the
//! MCP authorization spec gives (path insertion for issuers with a path). The fetched set lives
//! [`KEY_SET_LIFETIME`]: after that it is fetched again before any token is trusted, so a key the
//! issuer removed stops verifying even while tokens with its kid keep arriving. An unknown kid
//! refetches at most once per [`REFETCH_INTERVAL`], so a flood of invented kids cannot turn into
//! a flood of requests to the issuer.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio::sync::Mutex;

/// Least time between two fetches (unknown kids, or an issuer that keeps failing).
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(60);
/// How long a fetched key set is trusted before it must be fetched again.
pub const KEY_SET_LIFETIME: Duration = Duration::from_secs(300);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

type Keys = HashMap<String, (Algorithm, DecodingKey)>;

/// The key set in force and when it was fetched (`None`: never, or thrown away).
#[derive(Default)]
struct Fetched {
    keys: Arc<Keys>,
    at: Option<Instant>,
}

/// The key set of one issuer.
pub struct JwksCache {
    issuer: String,
    /// `MCP_OAUTH_JWKS_URL`, or the discovered `jwks_uri` once known.
    jwks_url: RwLock<Option<String>>,
    configured: bool,
    lifetime: Duration,
    refetch_interval: Duration,
    client: reqwest::Client,
    fetched: RwLock<Fetched>,
    last_attempt: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache")
            .field("issuer", &self.issuer)
            .field("jwks_url", &self.jwks_url)
            .finish_non_exhaustive()
    }
}

impl JwksCache {
    /// The keys of `issuer`, from `jwks_url` when configured, else discovered.
    pub fn new(issuer: String, jwks_url: Option<String>) -> Self {
        Self::with_timing(issuer, jwks_url, KEY_SET_LIFETIME, REFETCH_INTERVAL)
    }

    /// As [`Self::new`] with explicit lifetimes (tests).
    pub fn with_timing(
        issuer: String,
        jwks_url: Option<String>,
        lifetime: Duration,
        refetch_interval: Duration,
    ) -> Self {
        #[allow(
            clippy::disallowed_methods,
            reason = "the JWKS fetcher: the issuer and its jwks_uri pass the endpoint rule"
        )]
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(mailagent_mail::endpoint::tls_client_config())
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .expect("reqwest client with static settings");
        Self {
            issuer,
            configured: jwks_url.is_some(),
            jwks_url: RwLock::new(jwks_url),
            lifetime,
            refetch_interval,
            client,
            fetched: RwLock::new(Fetched::default()),
            last_attempt: Mutex::new(None),
        }
    }

    /// The key for `kid`: from a set younger than its lifetime, else after fetching the set
    /// again (an unknown kid also fetches, at most once per interval). An error means the
    /// issuer could not be asked and no set is in force: the token is refused.
    pub async fn key(&self, kid: &str) -> Result<Option<(Algorithm, DecodingKey)>, String> {
        if let Some(found) = self.fresh(kid) {
            return Ok(found);
        }
        let mut last = self.last_attempt.lock().await;
        // Another request may have refreshed while this one waited for the lock.
        if let Some(found) = self.fresh(kid) {
            return Ok(found);
        }
        let expired = self.is_expired();
        if last.is_some_and(|at| at.elapsed() < self.refetch_interval) {
            // Too soon to ask again: an expired set is not trusted in the meantime.
            return if expired {
                Err("the key set expired and the issuer was asked too recently".into())
            } else {
                Ok(None)
            };
        }
        *last = Some(Instant::now());
        match self.fetch().await {
            Ok(keys) => {
                let found = keys.get(kid).cloned();
                *self.fetched.write().expect("jwks lock") = Fetched { keys: Arc::new(keys), at: Some(Instant::now()) };
                Ok(found)
            }
            Err(error) => {
                if expired {
                    // Fail closed: keys nobody could confirm for a whole lifetime verify nothing.
                    *self.fetched.write().expect("jwks lock") = Fetched::default();
                }
                Err(error)
            }
        }
    }

    /// `Some(answer)` when the set in force is within its lifetime and knows or may answer for
    /// `kid`; `None` when it must be fetched (expired, or the kid is unknown).
    fn fresh(&self, kid: &str) -> Option<Option<(Algorithm, DecodingKey)>> {
        let fetched = self.fetched.read().expect("jwks lock");
        let at = fetched.at?;
        if at.elapsed() >= self.lifetime {
            return None;
        }
        fetched.keys.get(kid).cloned().map(Some)
    }

    fn is_expired(&self) -> bool {
        self.fetched.read().expect("jwks lock").at.is_none_or(|at| at.elapsed() >= self.lifetime)
    }

    async fn fetch(&self) -> Result<Keys, String> {
        let known = self.jwks_url.read().expect("jwks url lock").clone();
        let url = match known {
            Some(url) => url,
            None => {
                let url = self.discover().await?;
                *self.jwks_url.write().expect("jwks url lock") = Some(url.clone());
                url
            }
        };
        match self.get(&url).await {
            Ok(body) => {
                let set: JwkSet = serde_json::from_slice(&body).map_err(|e| format!("parse {url}: {e}"))?;
                Ok(set.keys.iter().filter_map(usable_key).collect())
            }
            Err(error) => {
                if !self.configured {
                    // The issuer may have moved its keys: discover again next time.
                    *self.jwks_url.write().expect("jwks url lock") = None;
                }
                Err(error)
            }
        }
    }

    /// The `jwks_uri` of the first metadata document the issuer serves for itself.
    async fn discover(&self) -> Result<String, String> {
        let mut tried = Vec::new();
        for url in metadata_urls(&self.issuer)? {
            match self.get(&url).await {
                Ok(body) => return jwks_uri(&body, &self.issuer).map_err(|e| format!("{url}: {e}")),
                Err(error) => tried.push(error),
            }
        }
        Err(format!("no issuer metadata: {}", tried.join("; ")))
    }

    /// A successful, bounded body from `url`.
    async fn get(&self, url: &str) -> Result<Vec<u8>, String> {
        let mut response = self.client.get(url).send().await.map_err(|e| format!("fetch {url}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("fetch {url}: HTTP {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| format!("read {url}: {e}"))? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_DOCUMENT_BYTES {
                return Err(format!("{url} is larger than {MAX_DOCUMENT_BYTES} bytes"));
            }
        }
        Ok(body)
    }
}

/// Where the issuer's metadata may be, in the order the MCP authorization spec tries them: for
/// `https://as.example/tenant1`, RFC 8414 with the path inserted
/// (`/.well-known/oauth-authorization-server/tenant1`), OpenID with the path inserted, then OpenID
/// with the path appended (`/tenant1/.well-known/openid-configuration`); without a path, the two
/// documents at the root.
pub fn metadata_urls(issuer: &str) -> Result<Vec<String>, String> {
    let url = url::Url::parse(issuer).map_err(|e| format!("issuer {issuer:?}: {e}"))?;
    let origin = url.origin().ascii_serialization();
    let path = url.path().trim_end_matches('/');
    Ok(if path.is_empty() {
        vec![
            format!("{origin}/.well-known/oauth-authorization-server"),
            format!("{origin}/.well-known/openid-configuration"),
        ]
    } else {
        vec![
            format!("{origin}/.well-known/oauth-authorization-server{path}"),
            format!("{origin}/.well-known/openid-configuration{path}"),
            format!("{origin}{path}/.well-known/openid-configuration"),
        ]
    })
}

/// The `jwks_uri` of a metadata document that names `issuer` as its issuer (RFC 8414 §3.3: a
/// document for another issuer must not be used), checked by the endpoint rule.
fn jwks_uri(body: &[u8], issuer: &str) -> Result<String, String> {
    #[derive(serde::Deserialize)]
    struct Metadata {
        issuer: String,
        jwks_uri: Option<String>,
    }
    let metadata: Metadata = serde_json::from_slice(body).map_err(|e| format!("unreadable metadata: {e}"))?;
    if metadata.issuer != issuer {
        return Err(format!("metadata names issuer {:?}, not {issuer:?}", metadata.issuer));
    }
    let uri = metadata.jwks_uri.ok_or("metadata has no jwks_uri")?;
    mailagent_mail::endpoint::check(&uri).map_err(|e| format!("jwks_uri {uri:?} {e}"))?;
    Ok(uri)
}

/// A JWK we can verify with: it has a kid, is for signatures, and its algorithm is pinned (by its
/// own `alg`, else by its key type), never chosen by the token.
fn usable_key(jwk: &Jwk) -> Option<(String, (Algorithm, DecodingKey))> {
    let kid = jwk.common.key_id.clone()?;
    let alg = match (&jwk.common.key_algorithm, &jwk.algorithm) {
        (Some(declared), _) => algorithm_of(*declared)?,
        (None, AlgorithmParameters::RSA(_)) => Algorithm::RS256,
        (None, AlgorithmParameters::EllipticCurve(ec)) if ec.curve == EllipticCurve::P256 => Algorithm::ES256,
        (None, AlgorithmParameters::OctetKeyPair(_)) => Algorithm::EdDSA,
        _ => return None,
    };
    // Symmetric keys in a public JWKS would let anyone who reads it mint tokens.
    if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
        return None;
    }
    DecodingKey::from_jwk(jwk).ok().map(|key| (kid, (alg, key)))
}

fn algorithm_of(declared: KeyAlgorithm) -> Option<Algorithm> {
    Some(match declared {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_urls_insert_the_issuer_path() {
        assert_eq!(
            metadata_urls("https://as.example").unwrap(),
            [
                "https://as.example/.well-known/oauth-authorization-server",
                "https://as.example/.well-known/openid-configuration"
            ]
        );
        assert_eq!(
            metadata_urls("https://kc.example:8443/realms/mail/").unwrap(),
            [
                "https://kc.example:8443/.well-known/oauth-authorization-server/realms/mail",
                "https://kc.example:8443/.well-known/openid-configuration/realms/mail",
                "https://kc.example:8443/realms/mail/.well-known/openid-configuration",
            ]
        );
    }

    #[test]
    fn metadata_for_another_issuer_or_an_unsafe_jwks_uri_is_refused() {
        let doc = |issuer: &str, jwks: &str| serde_json::json!({"issuer": issuer, "jwks_uri": jwks}).to_string();
        let ok = jwks_uri(doc("https://as.example", "https://as.example/keys/v2").as_bytes(), "https://as.example");
        assert_eq!(ok.unwrap(), "https://as.example/keys/v2");
        assert!(
            jwks_uri(doc("https://evil.example", "https://as.example/k").as_bytes(), "https://as.example").is_err()
        );
        let sneaky = doc("https://as.example", "http://localhost:1@evil.example/k");
        assert!(jwks_uri(sneaky.as_bytes(), "https://as.example").is_err());
    }
}
