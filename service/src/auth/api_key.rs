//! `X-API-Key` verification: hash the presented key and compare it in constant time against every
//! stored hash, so neither the match position nor a near-miss shows in the timing.

use chrono::Utc;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use super::keys::KeySet;
use super::{AuthFailure, Method, Principal};

/// Longer values are refused before hashing; real keys are well under this.
const MAX_API_KEY_BYTES: usize = 512;

/// Finds the key whose hash matches, then judges its state and expiry.
pub fn verify(keys: &KeySet, presented: &[u8]) -> Result<Principal, AuthFailure> {
    if presented.is_empty() || presented.len() > MAX_API_KEY_BYTES {
        return Err(AuthFailure::Malformed);
    }
    let digest: [u8; 32] = Sha256::digest(presented).into();
    let mut found = None;
    for (index, key) in keys.api_keys.iter().enumerate() {
        let matched: Choice = key.sha256.ct_eq(&digest);
        // No early exit: every stored hash is compared whatever matched before.
        if bool::from(matched) && found.is_none() {
            found = Some(index);
        }
    }
    let key = &keys.api_keys[found.ok_or(AuthFailure::InvalidApiKey)?];
    if !key.state.accepted() {
        return Err(AuthFailure::RevokedKey);
    }
    if key.not_after.is_some_and(|t| t <= Utc::now()) {
        return Err(AuthFailure::ExpiredKey);
    }
    Ok(Principal {
        name: key.client.clone(),
        kid: key.kid.clone(),
        method: Method::ApiKey,
        scopes: key.scopes.iter().copied().collect(),
        expires_at: None,
    })
}
