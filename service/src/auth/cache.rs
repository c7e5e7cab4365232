//! Tokens already verified against the keyring, so a client presenting the same token again
//! skips the header and claims parsing and the signature check.
//!
//! What a verification concluded from the token bytes and the key set cannot change while both
//! stay the same; only time can. So an entry is keyed by the SHA-256 of the exact token, belongs
//! to one key-set generation (a keyring reload empties the cache and a lookup ignores entries of
//! another generation, so a revoked key stops working at once), and `exp`, `nbf` and the key's
//! `notAfter` are judged again on every hit with the same leeway. Only successes are kept: a
//! rejected token is verified (and counted) every time. Bounded: when full, expired entries go,
//! then everything.

use std::collections::HashMap;
use std::sync::RwLock;

use sha2::{Digest, Sha256};

use super::{AuthFailure, Principal};

/// Most tokens remembered at once (about 300 bytes each plus the principal).
pub const MAX_ENTRIES: usize = 4096;

/// A verified token's outcome and the instants that bound it.
#[derive(Clone, Debug)]
pub struct Entry {
    pub generation: u64,
    pub principal: Principal,
    /// Token `exp` and `nbf`, seconds since the epoch.
    pub exp: i64,
    pub nbf: Option<i64>,
    /// The verifying key's `notAfter`, seconds since the epoch.
    pub key_not_after: Option<i64>,
}

impl Entry {
    /// The same time checks the full verification makes, at `now`.
    fn judge(&self, now: i64, leeway: i64) -> Result<Principal, AuthFailure> {
        if self.key_not_after.is_some_and(|t| t <= now) {
            return Err(AuthFailure::ExpiredKey);
        }
        if self.exp < now - leeway {
            return Err(AuthFailure::Expired);
        }
        if self.nbf.is_some_and(|nbf| nbf > now + leeway) {
            return Err(AuthFailure::NotYetValid);
        }
        Ok(self.principal.clone())
    }
}

#[derive(Debug, Default)]
pub struct TokenCache {
    entries: RwLock<HashMap<[u8; 32], Entry>>,
}

/// The cache key of a token.
pub fn key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl TokenCache {
    /// The outcome for a token verified before under key-set `generation`, if any.
    pub fn get(
        &self,
        key: &[u8; 32],
        generation: u64,
        now: i64,
        leeway: i64,
    ) -> Option<Result<Principal, AuthFailure>> {
        let entries = self.entries.read().expect("token cache lock");
        let entry = entries.get(key).filter(|e| e.generation == generation)?;
        Some(entry.judge(now, leeway))
    }

    pub fn insert(&self, key: [u8; 32], entry: Entry, now: i64, leeway: i64) {
        let mut entries = self.entries.write().expect("token cache lock");
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&key) {
            let generation = entry.generation;
            entries.retain(|_, e| e.generation == generation && e.exp >= now - leeway);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, entry);
    }

    /// Forgets everything (the key set changed).
    pub fn clear(&self) {
        self.entries.write().expect("token cache lock").clear();
    }

    pub fn len(&self) -> usize {
        self.entries.read().expect("token cache lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Method;

    fn entry(generation: u64, exp: i64) -> Entry {
        let principal = Principal {
            name: "alice".into(),
            kid: "env".into(),
            method: Method::Jwt,
            scopes: Default::default(),
            expires_at: Some(exp),
        };
        Entry { generation, principal, exp, nbf: Some(1_000), key_not_after: Some(5_000) }
    }

    #[test]
    fn a_hit_is_judged_again_against_the_clock_and_the_generation() {
        let cache = TokenCache::default();
        let k = key("token");
        cache.insert(k, entry(1, 2_000), 1_500, 30);
        assert!(cache.get(&k, 1, 1_500, 30).unwrap().is_ok());
        assert!(cache.get(&k, 2, 1_500, 30).is_none(), "another key set");
        assert!(cache.get(&key("token2"), 1, 1_500, 30).is_none());
        assert_eq!(cache.get(&k, 1, 2_029, 30).unwrap().unwrap().name, "alice", "within the leeway");
        assert_eq!(cache.get(&k, 1, 2_031, 30).unwrap(), Err(AuthFailure::Expired));
        assert_eq!(cache.get(&k, 1, 969, 30).unwrap(), Err(AuthFailure::NotYetValid));
        let mut late_key = entry(1, 9_000);
        late_key.key_not_after = Some(2_500);
        cache.insert(k, late_key, 1_500, 30);
        assert_eq!(cache.get(&k, 1, 2_600, 30).unwrap(), Err(AuthFailure::ExpiredKey));
    }

    #[test]
    fn bounded() {
        let cache = TokenCache::default();
        for i in 0..MAX_ENTRIES + 10 {
            cache.insert(key(&i.to_string()), entry(1, 2_000), 1_500, 30);
        }
        assert!(cache.len() <= MAX_ENTRIES);
        cache.clear();
        assert!(cache.is_empty());
    }
}
