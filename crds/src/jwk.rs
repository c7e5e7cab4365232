//! Public JWT keys as JWKs (RFC 7517), from the keyring's PEM documents. The operator publishes
//! them in the policy's JWKS ConfigMap and the workload serves them at `/.well-known/jwks.json`:
//! one conversion, so both always say the same. HMAC keys are never published.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use crate::contract::Keyring;

/// SubjectPublicKeyInfo header for an uncompressed P-256 point (RFC 5480).
pub const P256_SPKI_PREFIX: &[u8] = &[
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
    0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
/// SubjectPublicKeyInfo header for an Ed25519 key (RFC 8410).
pub const ED25519_SPKI_PREFIX: &[u8] = &[0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

/// The JWK of an ES256 or EdDSA public key given as a PEM `PUBLIC KEY` document; `None` for
/// other algorithms (HMAC keys are secret, RSA keys are verified but not minted here) and for a
/// document that is not such a key.
pub fn public_jwk(kid: &str, alg: &str, pem: &str) -> Option<serde_json::Value> {
    let der = STANDARD.decode(pem.lines().filter(|l| !l.starts_with("-----")).collect::<String>()).ok()?;
    match alg {
        "ES256" => {
            let point = der.strip_prefix(P256_SPKI_PREFIX)?;
            let (x, y) = point.strip_prefix(&[0x04])?.split_at_checked(32)?;
            Some(serde_json::json!({"kty": "EC", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode(x),
                "y": URL_SAFE_NO_PAD.encode(y), "kid": kid, "alg": "ES256", "use": "sig"}))
        }
        "EdDSA" => {
            let x = der.strip_prefix(ED25519_SPKI_PREFIX)?;
            Some(serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(x),
                "kid": kid, "alg": "EdDSA", "use": "sig"}))
        }
        _ => None,
    }
}

/// The JWKS of a keyring's accepted public keys.
pub fn keyring_jwks(keyring: &Keyring) -> serde_json::Value {
    let keys: Vec<_> = keyring
        .jwt_keys
        .iter()
        .filter(|k| k.state.accepted())
        .filter_map(|k| public_jwk(&k.kid, &k.alg, k.public_key_pem.as_deref()?))
        .collect();
    serde_json::json!({ "keys": keys })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::{JwtKeyEntry, KEYRING_SCHEMA, KeyState};

    // RFC 8037 A.2's Ed25519 public key, as SPKI PEM.
    const ED_PEM: &str = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n-----END PUBLIC KEY-----\n";

    fn entry(kid: &str, alg: &str, state: KeyState) -> JwtKeyEntry {
        JwtKeyEntry {
            kid: kid.into(),
            alg: alg.into(),
            secret: (alg == "HS256").then(|| STANDARD.encode([7u8; 32])),
            public_key_pem: (alg == "EdDSA").then(|| ED_PEM.into()),
            state,
            not_after: None,
        }
    }

    #[test]
    fn the_rfc_8037_key_reads_as_its_jwk() {
        let jwk = public_jwk("k1", "EdDSA", ED_PEM).unwrap();
        assert_eq!(jwk["x"], "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
        assert_eq!((jwk["kty"].as_str(), jwk["crv"].as_str()), (Some("OKP"), Some("Ed25519")));
        assert!(public_jwk("k1", "ES256", ED_PEM).is_none(), "a key of another curve is not mislabelled");
    }

    #[test]
    fn only_accepted_public_keys_are_published() {
        let ring = Keyring {
            schema: KEYRING_SCHEMA,
            revision: 3,
            api_keys: vec![],
            jwt_keys: vec![
                entry("hs", "HS256", KeyState::Active),
                entry("ed", "EdDSA", KeyState::Active),
                entry("gone", "EdDSA", KeyState::Revoked),
            ],
        };
        let jwks = keyring_jwks(&ring);
        let kids: Vec<_> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
        assert_eq!(kids, ["ed"]);
        assert!(!jwks.to_string().contains(&STANDARD.encode([7u8; 32])), "an HMAC secret was published");
    }
}
