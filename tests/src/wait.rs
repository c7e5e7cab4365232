//! Waiting for the cluster to reach a state: watch-driven, bounded by a deadline, never a bare sleep.

use std::fmt::Debug;
use std::time::Duration;

use anyhow::Context as _;
use kube::runtime::wait::Condition;
use kube::{Api, Resource};
use serde::de::DeserializeOwned;

/// Waits until the object `name` satisfies `condition` (which sees `None` while the object does not
/// exist, so "is gone" is a condition too) and returns the object as it was then. Fails after
/// `timeout` naming the object and the wait, so a slow or wrong controller reads as such.
pub async fn await_condition<K>(
    api: &Api<K>,
    name: &str,
    condition: impl Condition<K>,
    timeout: Duration,
) -> anyhow::Result<Option<K>>
where
    K: Resource + Clone + Debug + DeserializeOwned + Send + 'static,
{
    let what = || format!("{} {name}", std::any::type_name::<K>());
    tokio::time::timeout(timeout, kube::runtime::wait::await_condition(api.clone(), name, condition))
        .await
        .with_context(|| format!("{} did not reach the condition within {timeout:?}", what()))?
        .with_context(|| format!("watching {}", what()))
}

/// Waits until the namespace holds an Event `matches` accepts and returns it. An operator
/// publishes its Events after the status change a test waits on, so a single list can come too
/// early; this watches (the initial list included) instead.
pub async fn await_event(
    client: &kube::Client,
    namespace: &str,
    timeout: Duration,
    matches: impl Fn(&k8s_openapi::api::events::v1::Event) -> bool,
) -> anyhow::Result<k8s_openapi::api::events::v1::Event> {
    use futures::TryStreamExt as _;
    use kube::runtime::{WatchStreamExt as _, watcher};
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), namespace);
    let stream =
        watcher(events, watcher::Config::default()).applied_objects().try_filter(|e| std::future::ready(matches(e)));
    let mut stream = std::pin::pin!(stream);
    tokio::time::timeout(timeout, stream.try_next())
        .await
        .with_context(|| format!("no matching Event in {namespace} within {timeout:?}"))?
        .context("watching Events")?
        .context("the Event watch ended")
}
