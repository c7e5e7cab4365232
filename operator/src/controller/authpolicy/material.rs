//! Key material: minting from the operating system's CSPRNG, the signer document that holds it,
//! and the public views (keyring entries, JWKS) that may leave the signer Secret.
//!
//! The signer document lives only in the `<policy>-signer` Secret. Everything else (the keyring
//! the workloads mount, the JWKS, the status) is derived from it and carries hashes, public keys
//! or fingerprints, except the HS* secrets a verifier needs and each client's own API key.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use mailagent_crds::authpolicy::{JwtAlgorithm, KeyPurpose};
use mailagent_crds::contract::{KeyState, fingerprint};
use mailagent_crds::jwk::{ED25519_SPKI_PREFIX, P256_SPKI_PREFIX};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Random bytes in every minted secret: 256 bits (RFC 8725 §3.5 asks for full-entropy HMAC keys).
pub const SECRET_BYTES: usize = 32;
/// Prefix of every minted API key, so a leaked one is recognisable in a secret scanner.
pub const API_KEY_PREFIX: &str = "mak_";

/// Which sequence of keys a key belongs to: the JWT signing keys, or one API key client's keys.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "camelCase")]
pub struct Chain {
    /// `apiKey` or `jwt`.
    pub purpose: KeyPurpose,
    /// The client, for API keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
}

impl Chain {
    /// The JWT signing chain.
    pub fn jwt() -> Self {
        Self { purpose: KeyPurpose::Jwt, client: None }
    }

    /// One API key client's chain.
    pub fn client(name: &str) -> Self {
        Self { purpose: KeyPurpose::ApiKey, client: Some(name.to_owned()) }
    }
}

impl std::fmt::Display for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.client {
            Some(client) => write!(f, "client {client}"),
            None => f.write_str("jwt"),
        }
    }
}

/// One key with its history. `secret` is cleared once the key can never be used again.
#[derive(Serialize, Deserialize, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct KeyRecord {
    pub kid: String,
    #[serde(flatten)]
    pub chain: Chain,
    /// The JWT algorithm (JWT keys only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<JwtAlgorithm>,
    pub state: KeyState,
    pub created_at: Time,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activates_at: Option<Time>,
    /// When a Verifying key stops being accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Time>,
    /// `sha256:` + 12 hex digits of the secret (of the public key for asymmetric keys).
    pub fingerprint: String,
    /// Base64 of the API key, the HMAC secret, or the PKCS#8 private key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// SPKI PEM of the public key (ES256, EdDSA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_pem: Option<String>,
}

impl std::fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRecord")
            .field("kid", &self.kid)
            .field("chain", &self.chain)
            .field("state", &self.state)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl KeyRecord {
    /// Whether a verifier accepts this key at `now`.
    pub fn valid_at(&self, now: &Time) -> bool {
        self.state.accepted() && self.expires_at.as_ref().is_none_or(|at| at.0 > now.0)
    }

    /// The decoded secret bytes.
    pub fn secret_bytes(&self) -> Option<Vec<u8>> {
        self.secret.as_deref().and_then(|s| STANDARD.decode(s).ok())
    }

    /// Forgets the material of a key that will never be used again.
    pub fn wipe(&mut self) {
        self.secret = None;
    }
}

/// The signer document (`signer.json` in `<policy>-signer`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct SignerState {
    /// Monotonic: every step adds one. `status.revision` and the keyring's revision follow it.
    pub revision: u64,
    #[serde(default)]
    pub keys: Vec<KeyRecord>,
    /// The manual-rotation nonce already acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handled_rotate_nonce: Option<String>,
    /// When the last rotation started (a key was staged) or the first keys were minted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_rotation: Option<Time>,
}

impl SignerState {
    /// The Active key of a chain.
    pub fn active(&self, chain: &Chain) -> Option<&KeyRecord> {
        self.keys.iter().find(|k| &k.chain == chain && k.state == KeyState::Active)
    }

    /// Keys a verifier accepts at `now`.
    pub fn valid_keys(&self, now: &Time) -> usize {
        self.keys.iter().filter(|k| k.valid_at(now)).count()
    }
}

/// Something the CSPRNG or the key generator refused; never expected on a working system.
#[derive(Debug, thiserror::Error)]
#[error("minting key material failed: {0}")]
pub struct MintError(&'static str);

/// Fresh key material for one chain.
pub struct Minted {
    pub secret: Vec<u8>,
    pub public_key_pem: Option<String>,
    pub fingerprint: String,
}

/// Mints a key. API keys and HMAC secrets are 256 random bits; ES256 and EdDSA keys are
/// generated by `ring` from the same system CSPRNG. RS256 is verified but never minted.
pub fn mint(purpose: KeyPurpose, alg: Option<JwtAlgorithm>) -> Result<Minted, MintError> {
    let rng = SystemRandom::new();
    let random = |len: usize| -> Result<Vec<u8>, MintError> {
        let mut bytes = vec![0u8; len];
        rng.fill(&mut bytes).map_err(|_| MintError("the system CSPRNG failed"))?;
        Ok(bytes)
    };
    match (purpose, alg) {
        (KeyPurpose::ApiKey, _) => {
            let key = format!("{API_KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(random(SECRET_BYTES)?));
            let fingerprint = fingerprint(key.as_bytes());
            Ok(Minted { secret: key.into_bytes(), public_key_pem: None, fingerprint })
        }
        (KeyPurpose::Jwt, Some(alg @ (JwtAlgorithm::HS256 | JwtAlgorithm::HS384 | JwtAlgorithm::HS512))) => {
            // At least the hash size (RFC 7518 §3.2), never below 256 bits.
            let len = match alg {
                JwtAlgorithm::HS384 => 48,
                JwtAlgorithm::HS512 => 64,
                _ => SECRET_BYTES,
            };
            let secret = random(len)?;
            let fingerprint = fingerprint(&secret);
            Ok(Minted { secret, public_key_pem: None, fingerprint })
        }
        (KeyPurpose::Jwt, Some(JwtAlgorithm::ES256)) => {
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(|_| MintError("P-256 key generation failed"))?;
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                .map_err(|_| MintError("P-256 key rejected"))?;
            let public = pair.public_key().as_ref().to_vec();
            Ok(asymmetric(pkcs8.as_ref().to_vec(), &spki(P256_SPKI_PREFIX, &public)))
        }
        (KeyPurpose::Jwt, Some(JwtAlgorithm::EdDSA)) => {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| MintError("Ed25519 key generation failed"))?;
            let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| MintError("Ed25519 key rejected"))?;
            let public = pair.public_key().as_ref().to_vec();
            Ok(asymmetric(pkcs8.as_ref().to_vec(), &spki(ED25519_SPKI_PREFIX, &public)))
        }
        (KeyPurpose::Jwt, _) => Err(MintError("the operator mints HS256, HS384, HS512, ES256 and EdDSA keys only")),
    }
}

fn asymmetric(pkcs8: Vec<u8>, spki_der: &[u8]) -> Minted {
    Minted { secret: pkcs8, public_key_pem: Some(pem("PUBLIC KEY", spki_der)), fingerprint: fingerprint(spki_der) }
}

fn spki(prefix: &[u8], public: &[u8]) -> Vec<u8> {
    [prefix, public].concat()
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> =
        body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).expect("base64 is ASCII")).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

/// A new kid: a purpose prefix and 48 random bits in hex. It always contains a dash, so it can
/// never be the workload's laptop kid `env`, and it is checked against the kids already in use.
pub fn new_kid(purpose: KeyPurpose, taken: &[&str]) -> Result<String, MintError> {
    let rng = SystemRandom::new();
    loop {
        let mut bytes = [0u8; 6];
        rng.fill(&mut bytes).map_err(|_| MintError("the system CSPRNG failed"))?;
        let prefix = match purpose {
            KeyPurpose::ApiKey => "ak",
            KeyPurpose::Jwt => "jk",
        };
        let kid = format!("{prefix}-{}", hex::encode(bytes));
        if !taken.contains(&kid.as_str()) {
            return Ok(kid);
        }
    }
}

/// The keyring's lowercase hex SHA-256 of an API key.
pub fn api_key_sha256(key: &[u8]) -> String {
    hex::encode(Sha256::digest(key))
}

/// A public key as a JWK (`kty` EC or OKP), for the JWKS ConfigMap; the workload serves the same
/// conversion at `/.well-known/jwks.json`.
pub fn jwk(record: &KeyRecord) -> Option<serde_json::Value> {
    mailagent_crds::jwk::public_jwk(&record.kid, record.alg?.as_str(), record.public_key_pem.as_deref()?)
}

/// The JWS `alg` name of an algorithm.
pub fn alg_name(alg: JwtAlgorithm) -> &'static str {
    alg.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_and_hmac_secrets_carry_256_random_bits() {
        let a = mint(KeyPurpose::ApiKey, None).unwrap();
        let b = mint(KeyPurpose::ApiKey, None).unwrap();
        assert!(a.secret != b.secret, "two mints gave the same secret");
        let body = std::str::from_utf8(&a.secret).unwrap().strip_prefix(API_KEY_PREFIX).unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(body).unwrap().len(), 32);
        assert_eq!(mint(KeyPurpose::Jwt, Some(JwtAlgorithm::HS256)).unwrap().secret.len(), 32);
        assert_eq!(mint(KeyPurpose::Jwt, Some(JwtAlgorithm::HS512)).unwrap().secret.len(), 64);
        assert!(mint(KeyPurpose::Jwt, Some(JwtAlgorithm::RS256)).is_err(), "RSA keys are not minted");
    }

    #[test]
    fn asymmetric_keys_publish_only_the_public_half() {
        for alg in [JwtAlgorithm::ES256, JwtAlgorithm::EdDSA] {
            let minted = mint(KeyPurpose::Jwt, Some(alg)).unwrap();
            let pem = minted.public_key_pem.clone().unwrap();
            assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{pem}");
            let record = KeyRecord {
                kid: "jk-1".into(),
                chain: Chain::jwt(),
                alg: Some(alg),
                state: KeyState::Active,
                created_at: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
                activates_at: None,
                expires_at: None,
                fingerprint: minted.fingerprint.clone(),
                secret: Some(STANDARD.encode(&minted.secret)),
                public_key_pem: Some(pem),
            };
            let jwk = jwk(&record).unwrap().to_string();
            assert!(!jwk.contains("\"d\""), "a JWK with a private part: {jwk}");
            assert!(!format!("{record:?}").contains(record.secret.as_deref().unwrap()), "Debug shows the secret");
        }
    }

    #[test]
    fn kids_never_collide_with_the_laptop_kid_or_each_other() {
        let a = new_kid(KeyPurpose::Jwt, &[]).unwrap();
        assert!(a.starts_with("jk-") && a.len() == 15 && a != "env", "{a}");
        let b = new_kid(KeyPurpose::ApiKey, &[&a]).unwrap();
        assert!(b.starts_with("ak-") && b != a);
    }
}
