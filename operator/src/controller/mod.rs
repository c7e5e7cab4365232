//! Controllers, one folder each.
pub mod authpolicy;
pub mod mailagent;

use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder};
use tracing::warn;

use crate::metrics::Metrics;

/// The operator's API clients. Requests and watches need different timeouts: a request that gets
/// no answer must fail soon (a hung call would otherwise hold its reconcile, or its watch's list,
/// for ever; kube sets no read timeout by default), while a watch legitimately waits for events
/// up to its server-side timeout.
#[derive(Clone)]
pub struct Clients {
    /// Gets, applies, status writes, the Lease, Events.
    pub requests: Client,
    /// Lists and watches.
    pub watches: Client,
}

/// A request's answer must start within this.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Longer than a watch's server-side timeout plus the watcher's idle margin
/// ([`crate::reflect::WATCH_TIMEOUT_SECONDS`] + 5 s), so only a list or watch that hangs trips it.
pub const WATCH_READ_TIMEOUT: Duration = Duration::from_secs(75);

impl Clients {
    /// Clients for `config` with the timeouts above.
    pub fn with_timeouts(config: kube::Config) -> kube::Result<Self> {
        let mut requests = config.clone();
        requests.read_timeout = Some(REQUEST_TIMEOUT);
        requests.reset_reader_on_write = true;
        let mut watches = config;
        watches.read_timeout = Some(WATCH_READ_TIMEOUT);
        Ok(Self { requests: Client::try_from(requests)?, watches: Client::try_from(watches)? })
    }
}

/// One client for both (tests, where the timeouts are not what is under test).
impl From<Client> for Clients {
    fn from(client: Client) -> Self {
        Self { requests: client.clone(), watches: client }
    }
}

/// Publishes an Event about `reference`, counted as a write when the API server took it. A failure
/// is logged and otherwise ignored: an Event is news, and the status already says the same.
pub(crate) async fn publish_event(
    recorder: &Recorder,
    metrics: &Metrics,
    reference: &ObjectReference,
    type_: EventType,
    reason: &str,
    note: Option<String>,
) {
    let event = Event { type_, reason: reason.to_owned(), note, action: "Reconcile".into(), secondary: None };
    match recorder.publish(&event, reference).await {
        Ok(()) => metrics.wrote("Event", "create"),
        Err(error) => warn!(%error, reason, "could not publish an event"),
    }
}
