//! The keys the workload accepts right now: the mounted keyring plus, on a laptop, the single
//! `AGENT_API_KEY` / `AUTH_JWT_SECRET`. Built whole and swapped atomically on reload, so a request
//! sees either the old set or the new one, never half of each.

use std::collections::HashMap;

use base64::Engine;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey};
use mailagent_crds::Scope;
use mailagent_crds::contract::{KEYRING_SCHEMA, KeyState, Keyring, fingerprint};
use sha2::{Digest, Sha256};

/// The kid given to the laptop `AUTH_JWT_SECRET` and `AGENT_API_KEY`; tokens without `kid` use it.
pub const ENV_KID: &str = "env";
/// HS256 secrets shorter than this are refused (RFC 7518 §3.2: at least the hash size).
const MIN_HMAC_SECRET_BYTES: usize = 32;

/// One API key as the verifier holds it: a hash, never the key.
#[derive(Clone)]
pub struct ApiKey {
    pub kid: String,
    pub client: String,
    pub sha256: [u8; 32],
    pub scopes: Vec<Scope>,
    pub state: KeyState,
    pub not_after: Option<DateTime<Utc>>,
}

/// One JWT verification key with its single allowed algorithm.
#[derive(Clone)]
pub struct JwtKey {
    pub alg: Algorithm,
    pub key: DecodingKey,
    pub state: KeyState,
    pub not_after: Option<DateTime<Utc>>,
}

/// Everything accepted at one instant.
#[derive(Clone)]
pub struct KeySet {
    pub revision: u64,
    pub api_keys: Vec<ApiKey>,
    pub jwt_keys: HashMap<String, JwtKey>,
    /// The keyring's public keys as a JWKS document, served at `/.well-known/jwks.json` for
    /// other verifiers (HMAC keys are never in it).
    /// Serialised once per keyring load, not per request.
    pub jwks: bytes::Bytes,
}

impl Default for KeySet {
    fn default() -> Self {
        Self {
            revision: 0,
            api_keys: Vec::new(),
            jwt_keys: HashMap::new(),
            jwks: bytes::Bytes::from_static(br#"{"keys":[]}"#),
        }
    }
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet")
            .field("revision", &self.revision)
            .field("api_keys", &self.api_keys.iter().map(|k| &k.kid).collect::<Vec<_>>())
            .field("jwt_keys", &self.jwt_keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Why a key set cannot be built; the old set stays in force.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("keyring: {0}")]
    Keyring(String),
    #[error("AUTH_JWT_SECRET must be at least {MIN_HMAC_SECRET_BYTES} bytes")]
    WeakSecret,
}

/// Laptop secrets from the environment (or `*_FILE`).
#[derive(Clone, Default)]
pub struct EnvSecrets {
    pub api_key: Option<String>,
    pub jwt_secret: Option<String>,
}

impl std::fmt::Debug for EnvSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvSecrets")
            .field("api_key", &self.api_key.as_ref().map(|k| fingerprint(k.as_bytes())))
            .field("jwt_secret", &self.jwt_secret.as_ref().map(|k| fingerprint(k.as_bytes())))
            .finish()
    }
}

impl KeySet {
    /// Builds the set from the keyring document (if any) and the laptop secrets.
    pub fn build(keyring: Option<&Keyring>, env: &EnvSecrets) -> Result<Self, KeyError> {
        let mut set = KeySet::default();
        if let Some(api_key) = &env.api_key {
            set.api_keys.push(ApiKey {
                kid: ENV_KID.into(),
                client: "agent-api-key".into(),
                sha256: Sha256::digest(api_key.as_bytes()).into(),
                // The seeds' single shared key stands for the whole matrix.
                scopes: Scope::ALL.to_vec(),
                state: KeyState::Active,
                not_after: None,
            });
        }
        if let Some(secret) = &env.jwt_secret {
            if secret.len() < MIN_HMAC_SECRET_BYTES {
                return Err(KeyError::WeakSecret);
            }
            set.jwt_keys.insert(
                ENV_KID.into(),
                JwtKey {
                    alg: Algorithm::HS256,
                    key: DecodingKey::from_secret(secret.as_bytes()),
                    state: KeyState::Active,
                    not_after: None,
                },
            );
        }
        if let Some(keyring) = keyring {
            set.add_keyring(keyring)?;
        }
        Ok(set)
    }

    fn add_keyring(&mut self, keyring: &Keyring) -> Result<(), KeyError> {
        if keyring.schema != KEYRING_SCHEMA {
            return Err(KeyError::Keyring(format!("schema {} is not {KEYRING_SCHEMA}", keyring.schema)));
        }
        self.revision = keyring.revision;
        self.jwks = mailagent_crds::jwk::keyring_jwks(keyring).to_string().into();
        for entry in &keyring.api_keys {
            let digest = hex::decode(&entry.sha256)
                .ok()
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                .ok_or_else(|| KeyError::Keyring(format!("api key {}: sha256 is not 64 hex digits", entry.kid)))?;
            self.api_keys.push(ApiKey {
                kid: entry.kid.clone(),
                client: entry.client.clone(),
                sha256: digest,
                scopes: entry.scopes.clone(),
                state: entry.state,
                not_after: parse_instant(entry.not_after.as_deref(), &entry.kid)?,
            });
        }
        for entry in &keyring.jwt_keys {
            let bad = |why: &str| KeyError::Keyring(format!("jwt key {}: {why}", entry.kid));
            let alg: Algorithm = entry.alg.parse().map_err(|_| bad("unknown alg"))?;
            let key = match alg {
                Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                    let secret = entry.secret.as_deref().ok_or_else(|| bad("HMAC key without secret"))?;
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(secret)
                        .map_err(|_| bad("secret is not base64"))?;
                    if bytes.len() < MIN_HMAC_SECRET_BYTES {
                        return Err(bad("secret shorter than 32 bytes"));
                    }
                    DecodingKey::from_secret(&bytes)
                }
                _ => {
                    let pem =
                        entry.public_key_pem.as_deref().ok_or_else(|| bad("asymmetric key without publicKeyPem"))?;
                    decoding_key_from_pem(alg, pem.as_bytes()).map_err(|e| bad(&e))?
                }
            };
            let not_after = parse_instant(entry.not_after.as_deref(), &entry.kid)?;
            self.jwt_keys.insert(entry.kid.clone(), JwtKey { alg, key, state: entry.state, not_after });
        }
        Ok(())
    }

    /// Reads `keyring.json` from the directory; a missing file means no keyring keys.
    pub fn read_keyring(dir: &std::path::Path) -> Result<Option<Keyring>, KeyError> {
        let path = dir.join(mailagent_crds::contract::files::KEYRING);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| KeyError::Keyring(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(KeyError::Keyring(format!("{}: {e}", path.display()))),
        }
    }
}

fn decoding_key_from_pem(alg: Algorithm, pem: &[u8]) -> Result<DecodingKey, String> {
    let result = match alg {
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => DecodingKey::from_rsa_pem(pem),
        Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(pem),
        Algorithm::EdDSA => DecodingKey::from_ed_pem(pem),
        _ => return Err("unsupported alg".into()),
    };
    result.map_err(|e| format!("bad public key: {e}"))
}

fn parse_instant(value: Option<&str>, kid: &str) -> Result<Option<DateTime<Utc>>, KeyError> {
    value
        .map(|v| {
            DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| KeyError::Keyring(format!("key {kid}: notAfter {v:?}: {e}")))
        })
        .transpose()
}
