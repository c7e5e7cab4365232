//! The OAuth issuer's JWKS, fetched from the configured URL (never from a token header), cached,
//! and refetched on an unknown `kid` at most once per [`REFETCH_INTERVAL`], so a flood of tokens
//! with invented kids cannot turn into a flood of requests to the issuer.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio::sync::Mutex;

/// Least time between two fetches triggered by unknown kids.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(60);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_JWKS_BYTES: usize = 256 * 1024;

type Keys = HashMap<String, (Algorithm, DecodingKey)>;

/// A cached key set for one issuer.
pub struct JwksCache {
    url: String,
    client: reqwest::Client,
    keys: RwLock<Arc<Keys>>,
    last_fetch: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache").field("url", &self.url).finish_non_exhaustive()
    }
}

impl JwksCache {
    pub fn new(url: String) -> Self {
        // The binary uses rustls with ring; install it unless something already chose a provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("reqwest client with static settings");
        Self { url, client, keys: RwLock::new(Arc::default()), last_fetch: Mutex::new(None) }
    }

    /// The key for `kid`, fetching the set when it is unknown and the interval allows.
    pub async fn key(&self, kid: &str) -> Result<Option<(Algorithm, DecodingKey)>, String> {
        if let Some(found) = self.cached(kid) {
            return Ok(Some(found));
        }
        let mut last = self.last_fetch.lock().await;
        // Another request may have refreshed while this one waited for the lock.
        if let Some(found) = self.cached(kid) {
            return Ok(Some(found));
        }
        if last.is_some_and(|at| at.elapsed() < REFETCH_INTERVAL) {
            return Ok(None);
        }
        *last = Some(Instant::now());
        let fresh = self.fetch().await?;
        *self.keys.write().expect("jwks lock") = Arc::new(fresh);
        Ok(self.cached(kid))
    }

    fn cached(&self, kid: &str) -> Option<(Algorithm, DecodingKey)> {
        self.keys.read().expect("jwks lock").get(kid).cloned()
    }

    async fn fetch(&self) -> Result<Keys, String> {
        let response = self.client.get(&self.url).send().await.map_err(|e| format!("fetch {}: {e}", self.url))?;
        if !response.status().is_success() {
            return Err(format!("fetch {}: HTTP {}", self.url, response.status()));
        }
        let body = response.bytes().await.map_err(|e| format!("read {}: {e}", self.url))?;
        if body.len() > MAX_JWKS_BYTES {
            return Err(format!("{} is larger than {MAX_JWKS_BYTES} bytes", self.url));
        }
        let set: JwkSet = serde_json::from_slice(&body).map_err(|e| format!("parse {}: {e}", self.url))?;
        Ok(set.keys.iter().filter_map(usable_key).collect())
    }
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
