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
