//! Prometheus metrics: requests by door, route and status; auth failures by reason; rate-limit
//! rejections; the remaining lifetime of tokens seen; the busiest client addresses' request
//! counts by rank ([`crate::busy_clients`]); each key's `notAfter` in the keyring in force.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use mailagent_crds::contract::{KeyState, Surface};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub door: &'static str,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    pub door: &'static str,
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabels {
    /// `address` or `principal`.
    pub bucket: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KeyLabels {
    /// `api_key` (a client's token) or `jwt` (a signing key).
    pub kind: &'static str,
    pub kid: String,
    /// The key's lifecycle state, lowercase (`staged`, `active`, `verifying`).
    pub state: &'static str,
}

/// All metrics of the process.
pub struct Metrics {
    registry: Mutex<Registry>,
    pub requests: Family<RequestLabels, Counter>,
    pub auth_failures: Family<FailureLabels, Counter>,
    pub rate_limited: Family<LimitLabels, Counter>,
    pub token_remaining_seconds: Histogram,
    pub mutation_tools_enabled: Gauge,
    pub keyring_revision: Gauge,
    pub reload_failures: Counter,
    pub tls_reloads: Counter,
    pub tls_reload_failures: Counter,
    pub tls_handshake_failures: Counter,
    /// Requests per client address over the last minute (see [`crate::busy_clients`]).
    pub busy_clients: Arc<crate::busy_clients::BusyClients>,
    /// Each key's `notAfter` (seconds since the epoch) in the keyring in force; keys without one
    /// are left out. Refreshed from the key set at each scrape ([`Metrics::observe_keys`]).
    pub key_not_after: Family<KeyLabels, Gauge>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("mailagent");
        let requests = Family::<RequestLabels, Counter>::default();
        let auth_failures = Family::<FailureLabels, Counter>::default();
        let rate_limited = Family::<LimitLabels, Counter>::default();
        let buckets = [0.0, 60.0, 300.0, 900.0, 3600.0, 6.0 * 3600.0, 86400.0, 7.0 * 86400.0];
        let token_remaining_seconds = Histogram::new(buckets);
        let mutation_tools_enabled = Gauge::default();
        let keyring_revision = Gauge::default();
        let reload_failures = Counter::default();
        let tls_reloads = Counter::default();
        let tls_reload_failures = Counter::default();
        let tls_handshake_failures = Counter::default();
        let busy_clients = Arc::new(crate::busy_clients::BusyClients::default());
        let key_not_after = Family::<KeyLabels, Gauge>::default();
        registry.register("http_requests", "Requests by door, route and status", requests.clone());
        registry.register("auth_failures", "Rejected authentication attempts by reason", auth_failures.clone());
        registry.register("rate_limited", "Requests refused with 429", rate_limited.clone());
        registry.register(
            "token_remaining_seconds",
            "Remaining lifetime of accepted tokens",
            token_remaining_seconds.clone(),
        );
        registry.register("mutation_tools_enabled", "1 when mutation tools are on", mutation_tools_enabled.clone());
        registry.register("keyring_revision", "Revision of the keyring in force", keyring_revision.clone());
        registry.register(
            "reload_failures",
            "Configuration or keyring reloads that failed (old values kept)",
            reload_failures.clone(),
        );
        registry.register(
            "tls_reloads",
            "Renewed TLS certificates put in force without a restart",
            tls_reloads.clone(),
        );
        registry.register(
            "tls_reload_failures",
            "Changed TLS certificate files that did not load (the certificate in force is kept)",
            tls_reload_failures.clone(),
        );
        registry.register(
            "tls_handshake_failures",
            "TLS handshakes that failed or timed out",
            tls_handshake_failures.clone(),
        );
        registry.register(
            "key_not_after_timestamp_seconds",
            "When each key of the keyring in force stops being accepted (API keys and JWT keys with a notAfter)",
            key_not_after.clone(),
        );
        registry.register_collector(Box::new(BusyClientsCollector(busy_clients.clone())));
        Self {
            registry: Mutex::new(registry),
            requests,
            auth_failures,
            rate_limited,
            token_remaining_seconds,
            mutation_tools_enabled,
            keyring_revision,
            reload_failures,
            tls_reloads,
            tls_reload_failures,
            tls_handshake_failures,
            busy_clients,
            key_not_after,
        }
    }
}

impl Metrics {
    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry.lock().expect("registry lock"))
            .expect("encode to string");
        out
    }

    /// Exposes the mail domain's counters (Gmail quota units, API calls, retries, ...), read from
    /// the assistant at each scrape.
    pub fn register_domain(&self, assistant: std::sync::Arc<dyn mailagent_mail::api::Assistant>) {
        self.registry.lock().expect("registry lock").register_collector(Box::new(DomainCollector(assistant)));
    }

    pub fn auth_failure(&self, door: Surface, reason: &'static str) {
        self.auth_failures.get_or_create(&FailureLabels { door: door.as_str(), reason }).inc();
    }

    /// Counts one request from `address` towards the busiest-addresses gauge.
    pub fn client_request(&self, address: std::net::IpAddr) {
        self.busy_clients.record(address, Instant::now());
    }

    /// Sets `key_not_after_timestamp_seconds` to the keys in `keys` (and only those: a key that
    /// left the keyring leaves the metric). Keys the verifier no longer accepts are left out.
    pub fn observe_keys(&self, keys: &crate::auth::keys::KeySet) {
        let api = keys.api_keys.iter().map(|k| ("api_key", &k.kid, k.state, k.not_after));
        let jwt = keys.jwt_keys.iter().map(|(kid, k)| ("jwt", kid, k.state, k.not_after));
        self.key_not_after.clear();
        for (kind, kid, state, not_after) in api.chain(jwt) {
            let (Some(not_after), Some(state)) = (not_after, accepted_state(state)) else { continue };
            self.key_not_after.get_or_create(&KeyLabels { kind, kid: kid.clone(), state }).set(not_after.timestamp());
        }
    }
}

fn accepted_state(state: KeyState) -> Option<&'static str> {
    match state {
        KeyState::Staged => Some("staged"),
        KeyState::Active => Some("active"),
        KeyState::Verifying => Some("verifying"),
        KeyState::Retired | KeyState::Revoked => None,
    }
}

/// `mailagent_client_address_requests_per_minute{rank}`, `mailagent_client_addresses` and
/// `mailagent_client_requests_untracked_total`, computed at each scrape.
#[derive(Debug)]
struct BusyClientsCollector(Arc<crate::busy_clients::BusyClients>);

impl prometheus_client::collector::Collector for BusyClientsCollector {
    fn encode(&self, mut encoder: prometheus_client::encoding::DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        use prometheus_client::metrics::counter::ConstCounter;
        use prometheus_client::metrics::gauge::ConstGauge;
        let snapshot = self.0.snapshot(Instant::now());
        let mut family = encoder.encode_descriptor(
            "client_address_requests_per_minute",
            "Requests in the last minute from the busiest client addresses, by rank (1 = busiest); the addresses are in the audit log",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (rank, count) in snapshot.top.iter().enumerate() {
            let rank = (rank + 1).to_string();
            ConstGauge::new(i64::from(*count)).encode(family.encode_family(&[("rank", rank.as_str())])?)?;
        }
        let addresses = ConstGauge::new(snapshot.addresses as i64);
        addresses.encode(encoder.encode_descriptor(
            "client_addresses",
            "Client addresses with a request in the last minute",
            None,
            addresses.metric_type(),
        )?)?;
        let untracked = ConstCounter::new(snapshot.untracked);
        untracked.encode(encoder.encode_descriptor(
            "client_requests_untracked",
            "Requests not counted per address because the address table was full",
            None,
            untracked.metric_type(),
        )?)?;
        Ok(())
    }
}

/// The domain's monotonic counters as OpenMetrics counters (`mailagent_mail_*_total`).
struct DomainCollector(std::sync::Arc<dyn mailagent_mail::api::Assistant>);

impl std::fmt::Debug for DomainCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DomainCollector")
    }
}

impl prometheus_client::collector::Collector for DomainCollector {
    fn encode(&self, mut encoder: prometheus_client::encoding::DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        let m = self.0.metrics();
        for (name, help, value) in [
            (
                "mail_quota_units",
                "Mailbox provider quota units spent (Gmail: 15,000 per user per minute)",
                m.quota_units,
            ),
            ("mail_provider_calls", "Mailbox provider API calls (each attempt)", m.provider_calls),
            (
                "mail_provider_retries",
                "Mailbox provider calls retried after 429, 5xx or a transport error",
                m.provider_retries,
            ),
            ("mail_messages_fetched", "Messages fetched by scans", m.messages_fetched),
            ("mail_unsubscribe_refused", "Unsubscribe attempts refused as unsafe", m.unsubscribe_refused),
            ("mail_digests_sent", "Digests sent", m.digests_sent),
        ] {
            let counter = prometheus_client::metrics::counter::ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(name, help, None, counter.metric_type())?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;
    use crate::auth::keys::{ApiKey, JwtKey, KeySet};

    fn api_key(kid: &str, state: KeyState, not_after: Option<i64>) -> ApiKey {
        ApiKey {
            kid: kid.into(),
            client: "digest-bot".into(),
            sha256: [0; 32],
            scopes: vec![],
            state,
            not_after: not_after.map(|t| chrono::Utc.timestamp_opt(t, 0).unwrap()),
        }
    }

    #[test]
    fn key_not_after_follows_the_key_set_in_force() {
        let metrics = Metrics::default();
        let mut keys = KeySet {
            revision: 3,
            api_keys: vec![
                api_key("k1", KeyState::Active, Some(1_900_000_000)),
                api_key("k0", KeyState::Verifying, Some(1_800_000_000)),
                api_key("k-old", KeyState::Retired, Some(1_700_000_000)),
                api_key("env", KeyState::Active, None),
            ],
            ..KeySet::default()
        };
        keys.jwt_keys.insert(
            "j1".into(),
            JwtKey {
                alg: jsonwebtoken::Algorithm::HS256,
                key: jsonwebtoken::DecodingKey::from_secret(b"not a real secret, a test fixture"),
                state: KeyState::Staged,
                not_after: Some(chrono::Utc.timestamp_opt(2_000_000_000, 0).unwrap()),
            },
        );
        metrics.observe_keys(&keys);
        let text = metrics.render();
        for line in [
            "mailagent_key_not_after_timestamp_seconds{kind=\"api_key\",kid=\"k1\",state=\"active\"} 1900000000",
            "mailagent_key_not_after_timestamp_seconds{kind=\"api_key\",kid=\"k0\",state=\"verifying\"} 1800000000",
            "mailagent_key_not_after_timestamp_seconds{kind=\"jwt\",kid=\"j1\",state=\"staged\"} 2000000000",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        assert!(!text.contains("k-old") && !text.contains("kid=\"env\""), "{text}");
        // A key that leaves the keyring leaves the metric.
        keys.api_keys.truncate(1);
        keys.jwt_keys.clear();
        metrics.observe_keys(&keys);
        let text = metrics.render();
        assert!(!text.contains("kid=\"k0\"") && !text.contains("kid=\"j1\"") && text.contains("kid=\"k1\""), "{text}");
    }

    #[test]
    fn busy_addresses_are_exposed_by_rank_without_the_address() {
        let metrics = Metrics::default();
        for _ in 0..3 {
            metrics.client_request("198.51.100.7".parse().unwrap());
        }
        metrics.client_request("2001:db8::1".parse().unwrap());
        let text = metrics.render();
        for line in [
            "mailagent_client_address_requests_per_minute{rank=\"1\"} 3",
            "mailagent_client_address_requests_per_minute{rank=\"2\"} 1",
            "mailagent_client_address_requests_per_minute{rank=\"5\"} 0",
            "mailagent_client_addresses 2",
            "mailagent_client_requests_untracked_total 0",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        assert!(!text.contains("198.51.100.7") && !text.contains("2001:db8"), "{text}");
    }
}
