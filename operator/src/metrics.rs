//! Prometheus metrics for reconciliation: counts, durations, errors by kind, and API writes by
//! kind and verb (so "a no-op resync writes nothing" is observable in production too).

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabels {
    controller: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    controller: &'static str,
    error: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProbeLabels {
    /// `passed` or the failure's reason.
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WriteLabels {
    kind: &'static str,
    verb: &'static str,
}

/// The operator's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ControllerLabels, Counter>,
    failures: Family<ErrorLabels, Counter>,
    duration: Family<ControllerLabels, Histogram>,
    writes: Family<WriteLabels, Counter>,
    probes: Family<ProbeLabels, Counter>,
    leading: Gauge,
    /// The same writes by verb, kept alongside so tests and benchmarks read them without encoding
    /// the registry (a handful of verbs; one lock per API write, which costs far more).
    writes_by_verb: std::sync::Mutex<std::collections::BTreeMap<&'static str, u64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("mailagent_operator");
        let reconciles = Family::<ControllerLabels, Counter>::default();
        let failures = Family::<ErrorLabels, Counter>::default();
        let duration = Family::<ControllerLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0])
        });
        let writes = Family::<WriteLabels, Counter>::default();
        registry.register("reconciles", "Reconciliations run", reconciles.clone());
        registry.register("reconcile_errors", "Reconciliations that failed, by error kind", failures.clone());
        registry.register("reconcile_duration_seconds", "Time spent in one reconciliation", duration.clone());
        registry.register("api_writes", "Writes sent to the API server, by kind and verb", writes.clone());
        let probes = Family::<ProbeLabels, Counter>::default();
        registry.register(
            "verify_probes",
            "Probes of agents' doors (the Verified condition), by result",
            probes.clone(),
        );
        let leading = Gauge::default();
        registry.register(
            "leading",
            "1 while this replica leads (runs the controllers), 0 while it stands by",
            leading.clone(),
        );
        Self { registry, reconciles, failures, duration, writes, probes, leading, writes_by_verb: Default::default() }
    }
}

impl Metrics {
    /// Records a finished reconciliation.
    pub fn reconciled(&self, controller: &'static str, took: Duration) {
        self.reconciles.get_or_create(&ControllerLabels { controller }).inc();
        self.duration.get_or_create(&ControllerLabels { controller }).observe(took.as_secs_f64());
    }

    /// Records a failed reconciliation.
    pub fn failed(&self, controller: &'static str, error: &'static str) {
        self.failures.get_or_create(&ErrorLabels { controller, error }).inc();
    }

    /// This replica now leads.
    pub fn set_leading(&self) {
        self.leading.set(1);
    }

    /// Records one probe of an agent's doors: `passed` or the failure's reason.
    pub fn probed(&self, result: &'static str) {
        self.probes.get_or_create(&ProbeLabels { result }).inc();
    }

    /// Records one write sent to the API server.
    pub fn wrote(&self, kind: &'static str, verb: &'static str) {
        self.writes.get_or_create(&WriteLabels { kind, verb }).inc();
        *self.writes_by_verb.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).entry(verb).or_default() += 1;
    }

    /// Total writes so far, for benchmarks and tests.
    pub fn total_writes(&self) -> u64 {
        self.writes_by_verb.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).values().sum()
    }

    /// Writes so far of one verb (`apply`, `status`, `handover`, ...), summed over kinds.
    pub fn writes_of(&self, verb: &str) -> u64 {
        self.writes_by_verb.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get(verb).copied().unwrap_or(0)
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_counted_and_exposed() {
        let metrics = Metrics::default();
        metrics.wrote("Deployment", "apply");
        metrics.wrote("Deployment", "apply");
        metrics.wrote("Service", "delete");
        metrics.reconciled("mailagent", Duration::from_millis(3));
        metrics.failed("mailagent", "conflict");
        assert_eq!(metrics.total_writes(), 3);
        assert_eq!((metrics.writes_of("apply"), metrics.writes_of("delete"), metrics.writes_of("status")), (2, 1, 0));
        let text = metrics.encode();
        assert!(text.contains("mailagent_operator_reconciles_total{controller=\"mailagent\"} 1"), "{text}");
        assert!(
            text.contains("mailagent_operator_reconcile_errors_total{controller=\"mailagent\",error=\"conflict\"} 1")
        );
    }

    /// Every operator metric the chart's alert rules and Grafana dashboard query is exposed under
    /// that name (a rename would leave an alert that never fires and an empty panel).
    #[test]
    fn every_queried_operator_metric_is_exposed() {
        let chart = concat!(env!("CARGO_MANIFEST_DIR"), "/../charts/mailagent-operator/files/");
        // A labelled family is exposed once it has a series: give each one.
        let metrics = Metrics::default();
        metrics.reconciled("mailagent", Duration::from_millis(3));
        metrics.failed("mailagent", "conflict");
        metrics.wrote("Deployment", "apply");
        let families: Vec<String> = metrics
            .encode()
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .map(String::from)
            .collect();
        let mut queried = std::collections::BTreeSet::new();
        for file in ["prometheus-rules.yaml", "grafana-dashboard.json"] {
            let text = std::fs::read_to_string(format!("{chart}{file}")).unwrap();
            for (at, _) in text.match_indices("mailagent_operator_") {
                let name: String = text[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                queried.insert(name);
            }
        }
        assert!(queried.len() >= 4, "{queried:?}");
        for name in &queried {
            let base = ["_total", "_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s));
            assert!(
                families.contains(name) || base.is_some_and(|b| families.iter().any(|f| f == b)),
                "{name} is queried but not exposed: {families:?}"
            );
        }
    }
}
