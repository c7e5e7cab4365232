//! Watches that feed both a cache and the controller's triggers, one watch per kind, each driven
//! by a task of its own.
//!
//! The caches let a reconcile compare desired children with what exists without a GET, which is
//! what makes a no-op resync (and an operator restart) cost zero API writes and zero reads.
//!
//! Why a task per watch instead of handing the streams to the controller: the caches must fill
//! (and refill after the API server comes back) whether or not a reconcile is running, so the
//! controller can wait for them once before it starts instead of every reconcile awaiting them
//! (a store's readiness future wakes only its last waiter, which starved concurrent reconciles);
//! and the task sees every event, including deletions and re-lists, which the controller's
//! object streams drop.

use std::fmt::Debug;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, watcher as watch_stream};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;

use crate::health::WatchHealth;

mod compact;
pub use compact::live_json;

/// How long the API server keeps one watch request open (its default is 290 s). Shorter, so the
/// watch client's read timeout can be short too: a list that hangs fails within that timeout
/// instead of leaving the cache deaf.
pub const WATCH_TIMEOUT_SECONDS: u32 = 60;

/// What a watch saw, for the controller to map onto the objects it must look at again.
#[derive(Debug)]
pub enum Seen<'a, K> {
    /// An object was created, changed or deleted.
    Changed(&'a K),
    /// The watch listed everything again (after its API server restarted or its resource version
    /// expired): deletions in between were never seen as events, so everything is suspect.
    Relisted,
}

/// A cache and the task that keeps it filled.
pub struct Watched<K: Resource + 'static>
where
    K::DynamicType: std::hash::Hash + Eq + Clone,
{
    /// The cache.
    pub store: Store<K>,
    /// Runs the watch for ever (it retries with backoff); spawn it.
    pub driver: BoxFuture<'static, ()>,
}

/// Watches `api` (optionally by label selector), strips `managedFields` (the bulk of most
/// objects; what a hand-over between shards needs of them is noted, see `handover.rs`), caches the result (children compacted, see `reflect/compact.rs`;
/// compare them through [`live_json`]) and calls `on_seen` for every change after the first
/// list; `prepare` has the last word on what is cached. Errors are reported to `health` and retried with jittered exponential backoff; a
/// resource version the server no longer has leads to a fresh list.
pub fn watch<K>(
    api: Api<K>,
    label_selector: Option<&str>,
    shard: crate::shard::Shard,
    health: Arc<WatchHealth>,
    prepare: impl Fn(&mut K) + Send + 'static,
    mut on_seen: impl FnMut(Seen<'_, K>) + Send + 'static,
) -> Watched<K>
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
{
    let (store, writer) = reflector::store();
    let mut config = watcher::Config::default().any_semantic().timeout(WATCH_TIMEOUT_SECONDS);
    if let Some(selector) = label_selector {
        config = config.labels(selector);
    }
    let kind = K::kind(&()).into_owned();
    let events = watch_stream(api, config)
        .default_backoff()
        .modify(move |obj: &mut K| {
            crate::handover::note_other_managers(obj, &shard);
            obj.meta_mut().managed_fields = None;
            compact::compact(obj);
            prepare(obj);
        })
        .reflect(writer);
    let driver = async move {
        let mut listed_before = false;
        let mut events = std::pin::pin!(events);
        while let Some(event) = events.next().await {
            match event {
                Ok(event) => {
                    health.watched(&kind);
                    match &event {
                        Event::Apply(obj) | Event::Delete(obj) => on_seen(Seen::Changed(obj)),
                        Event::InitDone if listed_before => on_seen(Seen::Relisted),
                        Event::InitDone => listed_before = true,
                        Event::Init | Event::InitApply(_) => {}
                    }
                }
                Err(error) => health.failed(&kind, &error),
            }
        }
    }
    .boxed();
    Watched { store, driver }
}

/// Waits until every cache has finished its initial list. Reconciling before that would mistake
/// "not listed yet" for "missing" and write everything again after every restart. Called once,
/// before the controller starts, never from a reconcile.
pub async fn all_ready(stores: &[&dyn Ready]) {
    for store in stores {
        store.ready().await;
    }
}

/// A cache that can say when it has its initial list.
#[async_trait::async_trait]
pub trait Ready: Send + Sync {
    /// Resolves once the initial list is in.
    async fn ready(&self);
}

#[async_trait::async_trait]
impl<K> Ready for Store<K>
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    async fn ready(&self) {
        // Err only when the writer is gone, i.e. the controller is shutting down.
        let _ = self.wait_until_ready().await;
    }
}

/// Whether `desired` is already true of `live`: every field `desired` sets has the same value
/// in `live`. Fields the API server defaults or other managers own are ignored, so the
/// comparison holds after a round trip through the server.
pub fn is_subset(desired: &serde_json::Value, live: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (desired, live) {
        (Value::Object(d), Value::Object(l)) => {
            d.iter().all(|(k, dv)| l.get(k).is_some_and(|lv| is_subset(dv, lv)) || is_empty(dv) && l.get(k).is_none())
        }
        (Value::Array(d), Value::Array(l)) => d.len() == l.len() && d.iter().zip(l).all(|(dv, lv)| is_subset(dv, lv)),
        (Value::Number(d), Value::Number(l)) => d.as_f64() == l.as_f64(),
        // The server canonicalises quantities (`0.5` comes back as `500m`, `1024Mi` as `1Gi`).
        (Value::String(d), Value::String(l)) => d == l || same_quantity(d, l),
        _ => desired == live,
    }
}

/// Where `live` falls short of `desired`, as JSON pointers with the value each should have: the
/// places [`is_subset`] finds wanting, as deep as objects go. A list is one place, so a list that
/// someone else lengthened (an extra volume or container) is replaced whole.
pub fn drift(desired: &serde_json::Value, live: &serde_json::Value) -> Vec<(String, serde_json::Value)> {
    let mut out = Vec::new();
    drift_at(desired, live, String::new(), &mut out);
    out
}

fn drift_at(
    desired: &serde_json::Value,
    live: &serde_json::Value,
    at: String,
    out: &mut Vec<(String, serde_json::Value)>,
) {
    use serde_json::Value;
    match (desired, live) {
        (Value::Object(d), Value::Object(l)) => {
            for (key, dv) in d {
                let path = format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"));
                match l.get(key) {
                    Some(lv) => drift_at(dv, lv, path, out),
                    None if is_empty(dv) => {}
                    None => out.push((path, dv.clone())),
                }
            }
        }
        _ if is_subset(desired, live) => {}
        _ => out.push((at, desired.clone())),
    }
}

/// Whether two strings are the same Kubernetes quantity written differently.
fn same_quantity(a: &str, b: &str) -> bool {
    match (quantity(a), quantity(b)) {
        (Some(a), Some(b)) => (a - b).abs() <= f64::EPSILON * a.abs().max(b.abs()).max(1.0),
        _ => false,
    }
}

/// Parses a quantity (`500m`, `1.5Gi`, `2e3`) to its value; `None` for anything else.
fn quantity(s: &str) -> Option<f64> {
    const SUFFIXES: [(&str, f64); 15] = [
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("Pi", 1125899906842624.0),
        ("Ei", 1152921504606846976.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    let (number, scale) =
        SUFFIXES.iter().find_map(|(suffix, scale)| s.strip_suffix(suffix).map(|n| (n, *scale))).unwrap_or((s, 1.0));
    let starts_numeric = number.starts_with(|c: char| c.is_ascii_digit() || c == '.' || c == '+' || c == '-');
    if !starts_numeric {
        return None;
    }
    number.parse::<f64>().ok().map(|n| n * scale)
}

/// The server drops empty maps and lists, and Go's `omitempty` drops zero values of plain
/// fields (`readOnly: false`, `""`, `0`); treat them as absent.
fn is_empty(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Object(m) => m.is_empty(),
        serde_json::Value::Array(a) => a.is_empty(),
        serde_json::Value::Bool(b) => !b,
        serde_json::Value::String(s) => s.is_empty(),
        serde_json::Value::Number(n) => n.as_f64() == Some(0.0),
        serde_json::Value::Null => true,
    }
}

#[cfg(test)]
mod tests {
    use super::is_subset;
    use serde_json::json;

    #[test]
    fn defaults_added_by_the_server_do_not_count_as_drift() {
        let desired = json!({"spec": {"replicas": 1, "template": {"containers": [{"name": "a"}]}}});
        let live = json!({"spec": {"replicas": 1, "progressDeadlineSeconds": 600,
            "template": {"containers": [{"name": "a", "terminationMessagePath": "/dev/termination-log"}]}}, "status": {}});
        assert!(is_subset(&desired, &live));
    }

    #[test]
    fn a_changed_or_missing_value_is_drift() {
        let desired = json!({"spec": {"replicas": 1, "ports": [{"port": 80}]}});
        assert!(!is_subset(&desired, &json!({"spec": {"replicas": 2, "ports": [{"port": 80}]}})));
        assert!(!is_subset(&desired, &json!({"spec": {"replicas": 1}})));
        assert!(!is_subset(&desired, &json!({"spec": {"replicas": 1, "ports": [{"port": 80}, {"port": 81}]}})));
    }

    #[test]
    fn canonicalised_quantities_are_not_drift() {
        assert!(is_subset(&json!({"cpu": "0.5", "memory": "1024Mi"}), &json!({"cpu": "500m", "memory": "1Gi"})));
        assert!(!is_subset(&json!({"cpu": "0.5"}), &json!({"cpu": "400m"})));
        assert!(!is_subset(&json!({"name": "http"}), &json!({"name": "https"})));
    }

    #[test]
    fn drift_names_each_place_and_replaces_lists_whole() {
        use super::drift;
        let desired = json!({"spec": {"hostNetwork": false, "volumes": [{"name": "a"}],
            "securityContext": {"capabilities": {"add": [], "drop": ["ALL"]}}}, "metadata": {"annotations": {"a/b": "1"}}});
        let live = json!({"spec": {"hostNetwork": true, "volumes": [{"name": "a"}, {"name": "extra"}],
            "securityContext": {"capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}}}, "metadata": {}});
        let places: Vec<_> = drift(&desired, &live).into_iter().map(|(path, _)| path).collect();
        assert_eq!(
            places,
            ["/metadata/annotations", "/spec/hostNetwork", "/spec/securityContext/capabilities/add", "/spec/volumes",]
        );
        assert!(drift(&desired, &desired).is_empty());
    }

    #[test]
    fn empty_collections_match_absent_ones() {
        assert!(is_subset(&json!({"spec": {"ingress": []}}), &json!({"spec": {}})));
    }
}
