//! Prometheus metrics: requests by door, route and status; auth failures by reason; rate-limit
//! rejections; the remaining lifetime of tokens seen.

use std::sync::Mutex;

use mailagent_crds::contract::Surface;
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
