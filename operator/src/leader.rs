//! Leader election on a Lease: only the leader runs controllers. Losing the lease ends the
//! process (the kubelet restarts it as a standby), so two writers never overlap.

use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use tokio::task::JoinHandle;
use tracing::{error, info};

/// Name of the Lease the replicas compete for.
pub const LEASE_NAME: &str = "mailagent-operator";

/// Blocks until this replica holds the Lease; the returned task exits the process if it is lost.
pub async fn acquire(client: Client, namespace: &str, identity: &str) -> anyhow::Result<JoinHandle<()>> {
    let manager = LeaseManagerBuilder::new(client, LEASE_NAME)
        .with_namespace(namespace)
        .with_identity(identity)
        .with_field_manager(crate::labels::FIELD_MANAGER)
        .build()
        .await?;
    let (mut leading, _task) = manager.watch().await;
    info!(identity, "waiting for leadership");
    while !*leading.borrow_and_update() {
        leading.changed().await?;
    }
    info!(identity, "leading");
    Ok(tokio::spawn(async move {
        loop {
            if leading.changed().await.is_err() || !*leading.borrow() {
                error!("lost the leader lease; exiting so a single writer remains");
                std::process::exit(1);
            }
        }
    }))
}
