//! Leader election on a Lease: only the leader runs controllers. Losing the lease ends the
//! process (the kubelet restarts it as a standby), so two writers never overlap. A leader that
//! stops on SIGTERM releases the Lease once its controllers have stopped, so the standby takes
//! over at once instead of after the lease duration (a rollout or a drain hands over quickly).
//!
//! With shards, each shard has a Lease of its own ([`Shard::lease_name`]), and a leader also
//! waits at a barrier: while any shard of a *different* shard count still holds a live Lease (a
//! change of `SHARD_COUNT` half rolled out), it does not start. The two counts would split the
//! fleet differently and the same agent would have two owners writing it in turn.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::{Api, Client, ResourceExt};
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::health::Health;
use crate::shard::{BASE_NAME, Shard};

/// Name of the Lease an unsharded operator's replicas compete for.
pub const LEASE_NAME: &str = BASE_NAME;
/// How often the barrier looks at the other shards' Leases.
const BARRIER_POLL: Duration = Duration::from_secs(2);
/// How long a stopping leader tries to release its Lease; past it, the Lease simply expires.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

/// A held Lease: the watchdog that ends the process if it is lost, and the task that renews it.
pub struct Leadership {
    watchdog: JoinHandle<()>,
    renewer: JoinHandle<kube_lease_manager::Result<LeaseManager>>,
}

impl Leadership {
    /// Gives the Lease up. Call only once the controllers have stopped: the standby may start
    /// writing as soon as this returns.
    pub async fn release(self) {
        // The watchdog holds the only receiver; once it is gone, the renewer sees its channel
        // closed, releases the Lease and returns.
        self.watchdog.abort();
        let _ = self.watchdog.await;
        match tokio::time::timeout(RELEASE_TIMEOUT, self.renewer).await {
            Ok(Ok(Ok(_))) => info!("released the leader lease"),
            Ok(Ok(Err(error))) => warn!(%error, "could not release the leader lease; it will expire"),
            Ok(Err(error)) => warn!(%error, "the lease task failed; the lease will expire"),
            Err(_) => warn!("releasing the leader lease timed out; it will expire"),
        }
    }
}

/// Blocks until this replica holds its shard's Lease; the returned [`Leadership`] exits the
/// process if the Lease is lost. `health` learns when this replica has joined the election (a
/// ready standby). A leader must still pass [`await_one_shard_count`] before it writes.
pub async fn acquire(
    client: Client,
    namespace: &str,
    identity: &str,
    shard: Shard,
    health: &Health,
) -> anyhow::Result<Leadership> {
    // The shard count rides in the holder identity, so the barrier needs no other object.
    let identity = holder_identity(identity, &shard);
    let manager = LeaseManagerBuilder::new(client, shard.lease_name())
        .with_namespace(namespace)
        .with_identity(&identity)
        .with_field_manager(shard.field_manager())
        .build()
        .await?;
    let (mut leading, renewer) = manager.watch().await;
    health.set_electing();
    info!(identity, "waiting for leadership");
    while !*leading.borrow_and_update() {
        leading.changed().await?;
    }
    let watchdog = tokio::spawn(async move {
        loop {
            if leading.changed().await.is_err() || !*leading.borrow() {
                error!("lost the leader lease; exiting so a single writer remains");
                std::process::exit(1);
            }
        }
    });
    info!(identity, "holding the lease");
    Ok(Leadership { watchdog, renewer })
}

/// The barrier a new leader passes before it writes: returns once no shard of another shard
/// count holds a live Lease. A step apart from [`acquire`], so that a replica stopped while it
/// waits here still has its [`Leadership`] to release.
pub async fn await_one_shard_count(client: Client, namespace: &str, shard: Shard) -> anyhow::Result<()> {
    let leases = Api::<Lease>::namespaced(client, namespace);
    loop {
        let listed = leases.list(&Default::default()).await?;
        let blocking = blocking_holders(&listed.items, &shard, Timestamp::now());
        if blocking.is_empty() {
            return Ok(());
        }
        info!(?blocking, shards = shard.count(), "waiting for shards of another shard count to stop");
        tokio::time::sleep(BARRIER_POLL).await;
    }
}

/// `pod` as this shard's Lease holder: the pod name, plus the shard count when sharded.
pub fn holder_identity(pod: &str, shard: &Shard) -> String {
    if shard.is_sharded() { format!("{pod}/shards={}", shard.count()) } else { pod.to_owned() }
}

/// The shard count a Lease holder runs with (1 for an unsharded operator's plain pod name).
fn holder_count(identity: &str) -> u32 {
    identity.rsplit_once("/shards=").and_then(|(_, n)| n.parse().ok()).unwrap_or(1)
}

/// Operator Leases, other than this shard's, held now by a shard of another count.
pub fn blocking_holders(leases: &[Lease], shard: &Shard, now: Timestamp) -> Vec<String> {
    leases
        .iter()
        .filter(|lease| crate::shard::is_operator_manager(&lease.name_any()) && lease.name_any() != shard.lease_name())
        .filter_map(|lease| {
            let spec = lease.spec.as_ref()?;
            let holder = spec.holder_identity.as_deref().filter(|h| !h.is_empty())?;
            let renewed = spec.renew_time.as_ref().or(spec.acquire_time.as_ref())?.0;
            let duration = i64::from(spec.lease_duration_seconds.unwrap_or(0));
            let live = renewed.as_second() + duration > now.as_second();
            (live && holder_count(holder) != shard.count()).then(|| format!("{} ({holder})", lease.name_any()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

    use super::*;

    fn lease(name: &str, holder: Option<&str>, renewed: Timestamp) -> Lease {
        Lease {
            metadata: kube::api::ObjectMeta { name: Some(name.into()), ..Default::default() },
            spec: Some(LeaseSpec {
                holder_identity: holder.map(Into::into),
                renew_time: Some(MicroTime(renewed)),
                lease_duration_seconds: Some(15),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn shards_of_another_count_block_until_their_leases_expire() {
        let now: Timestamp = "2026-11-28T12:00:00Z".parse().unwrap();
        let fresh = now - k8s_openapi::jiff::SignedDuration::from_secs(5);
        let stale = now - k8s_openapi::jiff::SignedDuration::from_secs(60);
        let three = Shard::new(0, 3).unwrap();
        let leases = [
            lease("mailagent-operator-shard-0", Some("pod-a/shards=3"), fresh),
            lease("mailagent-operator-shard-1", Some("pod-b/shards=3"), fresh),
            lease("mailagent-operator-shard-2", Some("pod-c/shards=2"), fresh),
            lease("mailagent-operator", Some("pod-d"), stale),
            lease("someone-else", Some("x/shards=9"), fresh),
        ];
        assert_eq!(blocking_holders(&leases, &three, now), ["mailagent-operator-shard-2 (pod-c/shards=2)"]);
        // The unsharded operator's Lease, while live, blocks shards; shards block it.
        let leases = [lease("mailagent-operator", Some("pod-d"), fresh)];
        assert_eq!(blocking_holders(&leases, &three, now).len(), 1);
        assert!(blocking_holders(&leases, &Shard::default(), now).is_empty(), "its own Lease");
        let leases = [lease("mailagent-operator-shard-1", Some("pod-b/shards=3"), fresh)];
        assert_eq!(blocking_holders(&leases, &Shard::default(), now).len(), 1);
        // A released Lease (no holder) blocks nobody.
        assert!(blocking_holders(&[lease("mailagent-operator-shard-2", None, fresh)], &three, now).is_empty());
    }

    #[test]
    fn the_identity_carries_the_count_only_when_sharded() {
        assert_eq!(holder_identity("pod", &Shard::default()), "pod");
        assert_eq!(holder_identity("pod", &Shard::new(1, 4).unwrap()), "pod/shards=4");
        assert_eq!(holder_count("pod/shards=4"), 4);
        assert_eq!(holder_count("pod"), 1);
    }
}
