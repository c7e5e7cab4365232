//! GCRA rate limits (governor) per client address and per principal. The address is the socket's
//! unless that peer is a configured trusted proxy; then the right-most `X-Forwarded-For` hop that
//! is not itself a trusted proxy. A forged header from anyone else is ignored.

use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use axum::http::HeaderMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;

use crate::auth::Principal;

/// Both limiters and the proxy list.
pub struct Limits {
    /// `false` when `RATE_LIMIT_ENABLED=false`: every check passes (client addresses are still
    /// resolved, for logs and metrics).
    enabled: bool,
    by_address: DefaultKeyedRateLimiter<IpAddr>,
    /// Keyed by a keyed hash of (kid, name): no allocation per request, and a caller cannot
    /// choose a name that lands in someone else's bucket (the hash key is random per process).
    by_principal: DefaultKeyedRateLimiter<u64>,
    principal_hasher: std::collections::hash_map::RandomState,
    trusted_proxies: Vec<IpNet>,
    clock: DefaultClock,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits").field("trusted_proxies", &self.trusted_proxies).finish_non_exhaustive()
    }
}

impl Limits {
    /// Limits of `rate` (requests per minute, burst) per address and per principal; `None`
    /// limits nothing.
    pub fn new(rate: Option<(u32, u32)>, trusted_proxies: Vec<IpNet>) -> Self {
        let (per_minute, burst) = rate.unwrap_or((1, 1));
        let quota = Quota::per_minute(NonZeroU32::new(per_minute.max(1)).expect("non-zero"))
            .allow_burst(NonZeroU32::new(burst.max(1)).expect("non-zero"));
        Self {
            enabled: rate.is_some(),
            by_address: RateLimiter::keyed(quota),
            by_principal: RateLimiter::keyed(quota),
            principal_hasher: Default::default(),
            trusted_proxies,
            clock: DefaultClock::default(),
        }
    }

    /// The client address that counts for limits and logs.
    pub fn client_address(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        let peer_ip = peer.ip().to_canonical();
        if !self.is_trusted(peer_ip) {
            return peer_ip;
        }
        let hops: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
            .collect();
        hops.into_iter().rev().find(|hop| !self.is_trusted(*hop)).unwrap_or(peer_ip)
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&ip))
    }

    /// `Err(retry_after)` when the address is over its rate.
    pub fn check_address(&self, ip: IpAddr) -> Result<(), Duration> {
        if !self.enabled {
            return Ok(());
        }
        // IPv6 clients usually hold a whole /64; one bucket per /64 keeps them from multiplying.
        let key = match ip {
            IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
            v4 => v4,
        };
        self.by_address.check_key(&key).map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// `Err(retry_after)` when the principal is over its rate (one bucket per key and caller).
    pub fn check_principal(&self, principal: &Principal) -> Result<(), Duration> {
        if !self.enabled {
            return Ok(());
        }
        let key = self.principal_hasher.hash_one((&principal.kid, &principal.name));
        self.by_principal.check_key(&key).map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Forgets idle buckets so the maps do not grow without bound.
    pub fn retain_recent(&self) {
        self.by_address.retain_recent();
        self.by_principal.retain_recent();
    }
}

/// `Retry-After` in whole seconds, rounded up, at least 1.
pub fn retry_after_seconds(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0).max(u64::from(wait.as_secs() == 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().unwrap());
        h
    }

    #[test]
    fn forged_forwarded_for_from_an_untrusted_peer_is_ignored() {
        let limits = Limits::new(Some((60, 1)), vec!["10.0.0.0/8".parse().unwrap()]);
        let peer: SocketAddr = "203.0.113.9:4000".parse().unwrap();
        assert_eq!(limits.client_address(peer, &headers("198.51.100.1")), peer.ip());
    }

    #[test]
    fn trusted_proxy_hops_are_skipped_from_the_right() {
        let limits = Limits::new(Some((60, 1)), vec!["10.0.0.0/8".parse().unwrap()]);
        let peer: SocketAddr = "10.1.2.3:4000".parse().unwrap();
        let ip = limits.client_address(peer, &headers("1.1.1.1, 198.51.100.7, 10.9.9.9"));
        assert_eq!(ip, "198.51.100.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn burst_then_refusal_with_a_retry_time() {
        let limits = Limits::new(Some((60, 2)), vec![]);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(limits.check_address(ip).is_ok());
        assert!(limits.check_address(ip).is_ok());
        let wait = limits.check_address(ip).unwrap_err();
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        assert_eq!(retry_after_seconds(wait), 1);
        assert!(limits.check_address("192.0.2.2".parse().unwrap()).is_ok(), "other clients keep their own bucket");
    }

    #[test]
    fn switched_off_nothing_is_refused() {
        let limits = Limits::new(None, vec![]);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert!((0..100).all(|_| limits.check_address(ip).is_ok()));
    }

    #[test]
    fn each_principal_has_its_own_bucket() {
        let limits = Limits::new(Some((60, 1)), vec![]);
        let principal = |kid: &str, name: &str| Principal {
            name: name.into(),
            kid: kid.into(),
            method: crate::auth::Method::ApiKey,
            scopes: Default::default(),
            expires_at: None,
        };
        assert!(limits.check_principal(&principal("k1", "ci")).is_ok());
        assert!(limits.check_principal(&principal("k1", "ci")).is_err());
        assert!(limits.check_principal(&principal("k2", "ci")).is_ok(), "same name, other key");
        assert!(limits.check_principal(&principal("k1", "cd")).is_ok());
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_seconds(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(2500)), 3);
        assert_eq!(retry_after_seconds(Duration::from_secs(2)), 2);
    }
}
