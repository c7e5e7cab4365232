//! `mailagent-operator rotate`: what the policy's CronJob runs. One idempotent step per run:
//!
//! 1. If the signer document is ahead of the published keyring (a previous run was killed
//!    between the two writes), publish it and stop: that completes the previous step.
//! 2. Otherwise compute the one step due (the same [`plan`] the controller uses) and write the
//!    new document conditionally on the resourceVersion it was read at. Losing that race means
//!    another run took the step; this one stops without minting anything.
//! 3. Publish (keyring and JWKS before client Secrets) and write status, itself conditional.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::{Api, Client, ResourceExt};
use mailagent_crds::AuthPolicy;
use tracing::{info, warn};

use super::plan::{self, Inputs};
use super::status::{self, Outcome};
use super::store;
use crate::error::{Error, Result};

/// What one run did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ran {
    /// The operator has not minted the first keys yet.
    NotMinted,
    /// A previous run's document was published.
    Completed(u64),
    /// A step ran; the new revision.
    Stepped(&'static str, u64),
    /// Nothing was due.
    NothingDue,
    /// Another writer advanced the document first.
    LostRace,
    /// Waiting out the backoff after a failure.
    BackingOff,
}

/// Runs one step for `namespace/name` at `now`.
/// Writes are under `manager`: the field manager of the shard that owns the policy, which puts
/// it in the CronJob it builds, so the Job and the controller share one owner of each field.
pub async fn run_once(client: &Client, manager: &str, namespace: &str, name: &str, now: &Time) -> Result<Ran> {
    let policy = Api::<AuthPolicy>::namespaced(client.clone(), namespace)
        .get(name)
        .await
        .map_err(Error::kube("reading the AuthPolicy"))?;
    let Some(loaded) = store::load(client, manager, namespace, name).await? else {
        return Ok(Ran::NotMinted);
    };
    let published = store::published_revision(client, namespace, name).await?;
    if published < loaded.state.revision {
        store::publish(client, manager, &policy, &loaded.state, now).await?;
        let desired = status::compute(&policy, Some(&loaded.state), None, &Outcome::Fine, now);
        write_status_quietly(client, manager, &policy, &desired).await?;
        info!(policy = %name, revision = loaded.state.revision, "published a step a previous run had written");
        return Ok(Ran::Completed(loaded.state.revision));
    }
    if status::in_backoff(&policy, now) {
        return Ok(Ran::BackingOff);
    }
    if let Err(problem) = super::validate(&policy, now) {
        return Err(Error::InvalidSpec(problem));
    }
    let inputs = Inputs { spec: &policy.spec, state: &loaded.state, now, rotate_nonce: status::rotate_nonce(&policy) };
    let step = match plan::plan(&inputs) {
        Ok(Some(step)) => step,
        Ok(None) => {
            let desired = status::compute(&policy, Some(&loaded.state), None, &Outcome::Fine, now);
            write_status_quietly(client, manager, &policy, &desired).await?;
            return Ok(Ran::NothingDue);
        }
        Err(refusal) => return refuse(client, manager, &policy, &loaded.state, None, &refusal, now).await,
    };
    let next = match plan::execute(&inputs, &step) {
        Ok(next) => next,
        Err(refusal) => return refuse(client, manager, &policy, &loaded.state, Some(&step), &refusal, now).await,
    };
    match store::save(client, manager, &policy, &next, loaded.resource_version.clone()).await {
        Ok(()) => {}
        Err(e) if store::lost_race(&e) => {
            info!(policy = %name, "another run advanced the keyring first; nothing done");
            return Ok(Ran::LostRace);
        }
        Err(e) => return Err(e),
    }
    store::publish(client, manager, &policy, &next, now).await?;
    let desired = status::compute(&policy, Some(&next), None, &Outcome::Fine, now);
    write_status_quietly(client, manager, &policy, &desired).await?;
    info!(policy = %name, step = step.name(), revision = next.revision, "{}", super::describe(&step, &next, &policy));
    Ok(Ran::Stepped(step.name(), next.revision))
}

async fn refuse(
    client: &Client,
    manager: &str,
    policy: &AuthPolicy,
    state: &super::material::SignerState,
    step: Option<&plan::Step>,
    refusal: &plan::Refusal,
    now: &Time,
) -> Result<Ran> {
    warn!(policy = %policy.name_any(), %refusal, "step refused");
    let desired = status::compute(policy, Some(state), step, &status::outcome_of(refusal), now);
    write_status_quietly(client, manager, policy, &desired).await?;
    Err(Error::InvalidSpec(refusal.to_string()))
}

/// Status is a report: losing its conditional write to a newer writer is fine.
async fn write_status_quietly(
    client: &Client,
    manager: &str,
    policy: &AuthPolicy,
    desired: &mailagent_crds::AuthPolicyStatus,
) -> Result<()> {
    match status::write(client, manager, policy, desired).await {
        Ok(_) => Ok(()),
        Err(e) if store::lost_race(&e) => Ok(()),
        Err(e) => Err(e),
    }
}
