//! Every workload metric the chart's alert rules and Grafana dashboard query is one the workload
//! exposes, under the name and type Prometheus sees (a renamed metric would otherwise leave an
//! alert that can never fire and a dashboard panel that stays empty).

use std::collections::BTreeSet;

use mailagent_crds::contract::{KeyState, Surface};
use mailagent_service::auth::keys::{ApiKey, KeySet};
use mailagent_service::metrics::{LimitLabels, RequestLabels};

const QUERY_FILES: [&str; 2] = ["files/prometheus-rules.yaml", "files/grafana-dashboard.json"];

/// `mailagent_*` names written in the chart's rules and dashboard, less the operator's.
fn queried() -> BTreeSet<String> {
    let chart = concat!(env!("CARGO_MANIFEST_DIR"), "/../charts/mailagent-operator/");
    let mut names = BTreeSet::new();
    for file in QUERY_FILES {
        let text = std::fs::read_to_string(format!("{chart}{file}")).unwrap();
        for (at, _) in text.match_indices("mailagent_") {
            let name: String =
                text[at..].chars().take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_').collect();
            if !name.starts_with("mailagent_operator_") {
                names.insert(name);
            }
        }
    }
    names
}

/// Metric family names from `# TYPE` lines of the exposition.
fn exposed(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(String::from)
        .collect()
}

#[test]
fn every_queried_workload_metric_is_exposed() {
    let (app, _dir) = mailagent_service::testing::app("hybrid", &[]);
    // A labelled family is exposed once it has a series: give each one.
    let metrics = &app.metrics;
    metrics.auth_failure(Surface::Rest, "bad_key");
    metrics.requests.get_or_create(&RequestLabels { door: "rest", route: "/v1/scan".into(), status: 200 }).inc();
    metrics.rate_limited.get_or_create(&LimitLabels { bucket: "address" }).inc();
    let mut keys = KeySet::default();
    keys.api_keys.push(ApiKey {
        kid: "k1".into(),
        client: "digest-bot".into(),
        sha256: [0; 32],
        scopes: vec![],
        state: KeyState::Active,
        not_after: Some(chrono::Utc::now()),
    });
    metrics.observe_keys(&keys);
    let families = exposed(&metrics.render());
    let queried = queried();
    assert!(queried.len() >= 15, "the scan found too few names to be meaningful: {queried:?}");
    let missing: Vec<_> = queried
        .iter()
        .filter(|name| {
            let base = ["_total", "_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s));
            !families.contains(*name) && !base.is_some_and(|b| families.contains(b))
        })
        .collect();
    assert!(missing.is_empty(), "queried but not exposed: {missing:?}\nexposed: {families:?}");
}
