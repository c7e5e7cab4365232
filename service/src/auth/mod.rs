//! Who is calling, and may they do this: the one decision every door (REST, A2A, MCP) calls.

pub mod api_key;
pub mod cache;
pub mod jwks;
pub mod jwt;
pub mod keys;

use std::collections::BTreeSet;
use std::sync::{Arc, RwLock};

use axum::http::HeaderMap;
use chrono::Utc;
use mailagent_crds::Scope;
use mailagent_crds::contract::{AuthMode, McpAuthMode};

use crate::settings::{JwtPolicy, OauthSettings, Settings};
use jwks::JwksCache;
use keys::{ENV_KID, KeySet};

/// The header an API key arrives in.
pub const API_KEY_HEADER: &str = "x-api-key";
/// [`API_KEY_HEADER`] as documents spell it.
pub const API_KEY_HEADER_NAME: &str = "X-API-Key";
/// Authorization headers longer than this are refused before parsing.
const MAX_AUTHORIZATION_BYTES: usize = jwt::MAX_TOKEN_BYTES + 16;

/// A front door: the contract's [`Surface`], the name the operator and `MAILAGENT_SURFACES` use.
pub use mailagent_crds::contract::Surface;

/// The auth mode one door actually applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EffectiveMode {
    /// Keys from the keyring (and the laptop env secrets).
    Local(AuthMode),
    /// OAuth resource server against the issuer's JWKS.
    Oauth,
}

impl EffectiveMode {
    /// The mode `door` uses under `settings`: MCP may override `AUTH_MODE`.
    pub fn of(settings: &Settings, door: Surface) -> Self {
        match (door, settings.mcp_auth_mode) {
            (Surface::Mcp, McpAuthMode::ApiKey) => Self::Local(AuthMode::ApiKey),
            (Surface::Mcp, McpAuthMode::Jwt) => Self::Local(AuthMode::Jwt),
            (Surface::Mcp, McpAuthMode::Hybrid) => Self::Local(AuthMode::Hybrid),
            (Surface::Mcp, McpAuthMode::Oauth) => Self::Oauth,
            _ => Self::Local(settings.auth_mode),
        }
    }
}

/// How the caller proved who they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    ApiKey,
    Jwt,
    Oauth,
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// Client name (API key) or `sub` / `client_id` (token); safe to log.
    pub name: String,
    /// The key that vouched for the caller.
    pub kid: String,
    pub method: Method,
    pub scopes: BTreeSet<Scope>,
    /// Token `exp` (seconds since the epoch), for tokens.
    pub expires_at: Option<i64>,
}

impl Principal {
    /// Whether the caller holds `scope` (deny by default).
    pub fn may(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }

    /// The rate-limit bucket: one per key and caller.
    pub fn bucket(&self) -> String {
        format!("{}/{}", self.kid, self.name)
    }
}

/// Why a request was not authenticated. Every variant answers 401; the reason goes to the
/// `X-Auth-Failure` header, metrics and the audit log, never more detail than this.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    #[error("missing_credentials")]
    MissingCredentials,
    #[error("malformed")]
    Malformed,
    #[error("too_large")]
    TooLarge,
    #[error("invalid_api_key")]
    InvalidApiKey,
    #[error("revoked_key")]
    RevokedKey,
    #[error("expired_key")]
    ExpiredKey,
    #[error("unknown_kid")]
    UnknownKid,
    #[error("algorithm_not_allowed")]
    AlgorithmNotAllowed,
    #[error("bad_signature")]
    BadSignature,
    #[error("forbidden_header")]
    ForbiddenHeader,
    #[error("wrong_type")]
    WrongType,
    #[error("expired")]
    Expired,
    #[error("not_yet_valid")]
    NotYetValid,
    #[error("wrong_audience")]
    WrongAudience,
    #[error("wrong_issuer")]
    WrongIssuer,
    #[error("missing_claim")]
    MissingClaim,
    #[error("lifetime_too_long")]
    LifetimeTooLong,
    #[error("issuer_unavailable")]
    IssuerUnavailable,
}

impl AuthFailure {
    pub fn reason(self) -> &'static str {
        match self {
            Self::MissingCredentials => "missing_credentials",
            Self::Malformed => "malformed",
            Self::TooLarge => "too_large",
            Self::InvalidApiKey => "invalid_api_key",
            Self::RevokedKey => "revoked_key",
            Self::ExpiredKey => "expired_key",
            Self::UnknownKid => "unknown_kid",
            Self::AlgorithmNotAllowed => "algorithm_not_allowed",
            Self::BadSignature => "bad_signature",
            Self::ForbiddenHeader => "forbidden_header",
            Self::WrongType => "wrong_type",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::WrongAudience => "wrong_audience",
            Self::WrongIssuer => "wrong_issuer",
            Self::MissingClaim => "missing_claim",
            Self::LifetimeTooLong => "lifetime_too_long",
            Self::IssuerUnavailable => "issuer_unavailable",
        }
    }
}

/// The key set in force and its generation (bumped on every swap; see [`cache`]).
#[derive(Debug)]
struct Current {
    keys: Arc<KeySet>,
    generation: u64,
}

/// The decision function and everything it reads. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct Authenticator {
    current: RwLock<Current>,
    verified: cache::TokenCache,
    rest_mode: AuthMode,
    mcp_mode: EffectiveMode,
    jwt: JwtPolicy,
    oauth: Option<(OauthSettings, JwksCache)>,
}

impl Authenticator {
    pub fn new(settings: &Settings, keys: KeySet) -> Self {
        let EffectiveMode::Local(rest_mode) = EffectiveMode::of(settings, Surface::Rest) else {
            unreachable!("AUTH_MODE is never oauth")
        };
        Self {
            current: RwLock::new(Current { keys: Arc::new(keys), generation: 0 }),
            verified: cache::TokenCache::default(),
            rest_mode,
            mcp_mode: EffectiveMode::of(settings, Surface::Mcp),
            jwt: settings.jwt.clone(),
            oauth: settings.oauth.clone().map(|o| {
                let cache = JwksCache::new(o.issuer.clone(), o.jwks_url.clone());
                (o, cache)
            }),
        }
    }

    /// Swaps in a freshly loaded key set; in-flight requests keep the one they started with.
    pub fn replace_keys(&self, keys: KeySet) {
        let mut current = self.current.write().expect("keys lock");
        current.keys = Arc::new(keys);
        current.generation += 1;
        // Entries of the old generation are already ignored; this frees them.
        self.verified.clear();
    }

    pub fn keys(&self) -> Arc<KeySet> {
        self.current.read().expect("keys lock").keys.clone()
    }

    fn keys_and_generation(&self) -> (Arc<KeySet>, u64) {
        let current = self.current.read().expect("keys lock");
        (current.keys.clone(), current.generation)
    }

    /// How many verified tokens are remembered (see [`cache`]).
    pub fn cached_tokens(&self) -> usize {
        self.verified.len()
    }

    /// The mode `door` applies.
    pub fn mode(&self, door: Surface) -> EffectiveMode {
        match door {
            Surface::Mcp => self.mcp_mode,
            _ => EffectiveMode::Local(self.rest_mode),
        }
    }

    /// The OAuth settings, when MCP is a resource server.
    pub fn oauth(&self) -> Option<&OauthSettings> {
        self.oauth.as_ref().map(|(settings, _)| settings)
    }

    /// Who is calling `door` with these headers.
    pub async fn authenticate(&self, door: Surface, headers: &HeaderMap) -> Result<Principal, AuthFailure> {
        let api_key = headers.get(API_KEY_HEADER).map(|v| v.as_bytes());
        // `Authorization` is read only where a mode takes bearer tokens: an API-key client behind a
        // proxy that adds its own (Basic) `Authorization` header is still an API-key client.
        match self.mode(door) {
            EffectiveMode::Local(AuthMode::ApiKey) => {
                api_key::verify(&self.keys(), api_key.ok_or(AuthFailure::MissingCredentials)?)
            }
            EffectiveMode::Local(AuthMode::Jwt) => self.verify_local_jwt(required_bearer(headers)?),
            // API key first; a bearer token is the fallback when there is no key or it does not
            // verify, and the key's own failure is the answer when there is no usable token.
            EffectiveMode::Local(AuthMode::Hybrid) => match api_key {
                None => self.verify_local_jwt(required_bearer(headers)?),
                Some(key) => api_key::verify(&self.keys(), key).or_else(|key_failure| match bearer_token(headers) {
                    Ok(Some(token)) => self.verify_local_jwt(token),
                    Ok(None) | Err(_) => Err(key_failure),
                }),
            },
            EffectiveMode::Oauth => self.verify_oauth(required_bearer(headers)?).await,
        }
    }

    fn verify_local_jwt(&self, token: &str) -> Result<Principal, AuthFailure> {
        if token.len() > jwt::MAX_TOKEN_BYTES {
            return Err(AuthFailure::TooLarge);
        }
        let (keys, generation) = self.keys_and_generation();
        let now = Utc::now().timestamp();
        let leeway = self.jwt.clock_skew.as_secs() as i64;
        let cache_key = cache::key(token);
        if let Some(outcome) = self.verified.get(&cache_key, generation, now, leeway) {
            return outcome;
        }
        let header = jwt::inspect(token)?;
        if !jwt::typ_matches(&header, self.jwt.required_typ.as_deref()) {
            return Err(AuthFailure::WrongType);
        }
        let kid = header.kid.as_deref().unwrap_or(ENV_KID);
        let key = keys.jwt_keys.get(kid).ok_or(AuthFailure::UnknownKid)?;
        if !self.jwt.algorithms.is_empty() && !self.jwt.algorithms.contains(&key.alg) {
            return Err(AuthFailure::AlgorithmNotAllowed);
        }
        if !key.state.accepted() {
            return Err(AuthFailure::RevokedKey);
        }
        if key.not_after.is_some_and(|t| t <= Utc::now()) {
            return Err(AuthFailure::ExpiredKey);
        }
        let rules = jwt::ClaimRules {
            issuer: self.jwt.issuer.clone(),
            audiences: self.jwt.audiences.clone(),
            leeway: self.jwt.clock_skew,
            max_lifetime: self.jwt.max_lifetime,
            method: Method::Jwt,
        };
        let verified = jwt::verify(token, &header, kid, key.alg, &key.key, &rules)?;
        let exp = verified.principal.expires_at.ok_or(AuthFailure::MissingClaim)?;
        let entry = cache::Entry {
            generation,
            principal: verified.principal.clone(),
            exp,
            nbf: verified.not_before,
            key_not_after: key.not_after.map(|t| t.timestamp()),
        };
        self.verified.insert(cache_key, entry, now, leeway);
        Ok(verified.principal)
    }

    async fn verify_oauth(&self, token: &str) -> Result<Principal, AuthFailure> {
        let (settings, cache) = self.oauth.as_ref().ok_or(AuthFailure::IssuerUnavailable)?;
        let header = jwt::inspect(token)?;
        let kid = header.kid.as_deref().ok_or(AuthFailure::UnknownKid)?;
        let (alg, key) = cache
            .key(kid)
            .await
            .map_err(|error| {
                tracing::warn!(%error, "JWKS fetch failed");
                AuthFailure::IssuerUnavailable
            })?
            .ok_or(AuthFailure::UnknownKid)?;
        let rules = jwt::ClaimRules {
            issuer: Some(settings.issuer.clone()),
            audiences: settings.accepted_audiences(),
            leeway: self.jwt.clock_skew,
            max_lifetime: self.jwt.max_lifetime,
            method: Method::Oauth,
        };
        jwt::verify(token, &header, kid, alg, &key, &rules).map(|verified| verified.principal)
    }
}

/// The bearer token of a mode that takes nothing else: missing credentials without one.
fn required_bearer(headers: &HeaderMap) -> Result<&str, AuthFailure> {
    bearer_token(headers)?.ok_or(AuthFailure::MissingCredentials)
}

/// The bearer token, if an `Authorization: Bearer` header is present.
fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, AuthFailure> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else { return Ok(None) };
    if value.len() > MAX_AUTHORIZATION_BYTES {
        return Err(AuthFailure::TooLarge);
    }
    let text = value.to_str().map_err(|_| AuthFailure::Malformed)?;
    let (scheme, token) = text.split_once(' ').ok_or(AuthFailure::Malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AuthFailure::Malformed);
    }
    Ok(Some(token.trim()))
}
