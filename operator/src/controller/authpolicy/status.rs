//! The AuthPolicy's status, computed from the signer document (fingerprints only, never values)
//! by one pure function that the controller and the `rotate` command share, and written with the
//! policy's resourceVersion as a precondition so an older view never overwrites a newer one.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use mailagent_crds::AuthPolicy;
use mailagent_crds::authpolicy::{AuthPolicyStatus, KeyStatus, ROTATE_ANNOTATION};
use mailagent_crds::conditions::{self, DesiredCondition, set_condition};
use mailagent_crds::contract::KeyState;

use super::material::{Chain, SignerState};
use super::plan::{self, Refusal, Step};
use crate::error::{Error, Result};

/// Condition types besides Ready and Degraded.
pub const ROTATING: &str = conditions::ROTATING;
/// An emergency revoke is pending or was just carried out.
pub const REVOKING: &str = "Revoking";

/// What the last attempt at a step did.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Nothing failed (a step may or may not have run).
    Fine,
    /// The spec is impossible; nothing happens until it changes.
    Invalid(String),
    /// A step was refused or failed; counted with backoff.
    Failed(String),
}

/// The status as it should read.
pub fn compute(
    policy: &AuthPolicy,
    state: Option<&SignerState>,
    pending: Option<&Step>,
    outcome: &Outcome,
    now: &Time,
) -> AuthPolicyStatus {
    let current = policy.status.clone().unwrap_or_default();
    let mut status = current.clone();
    status.observed_generation = policy.metadata.generation;
    let empty = SignerState::default();
    let state = state.unwrap_or(&empty);
    status.revision = state.revision as i64;
    let jwt = state.active(&Chain::jwt());
    let first_active = state.keys.iter().find(|k| k.state == KeyState::Active);
    status.current_kid = jwt.or(first_active).map(|k| k.kid.clone());
    status.keys = state
        .keys
        .iter()
        .map(|k| KeyStatus {
            kid: k.kid.clone(),
            purpose: k.chain.purpose,
            client: k.chain.client.clone(),
            state: k.state,
            fingerprint: k.fingerprint.clone(),
            created_at: Some(k.created_at.clone()),
            activates_at: k.activates_at.clone(),
            expires_at: k.expires_at.clone(),
        })
        .collect();
    status.valid_keys = state.valid_keys(now) as i32;
    status.last_rotation_time = state.last_rotation.clone();
    status.next_rotation_time = plan::next_rotation(&policy.spec, state).ok().flatten();
    status.last_handled_rotate_nonce = state.handled_rotate_nonce.clone();
    // `mailAgents` needs a MailAgent list the rotation Job may not read: the controller sets it.
    status.permissions = super::permissions::permissions(&policy.spec);
    match outcome {
        Outcome::Failed(_) => {
            status.failed_attempts = current.failed_attempts + 1;
            status.last_failure_time = Some(now.clone());
        }
        Outcome::Fine if pending.is_none() || state.revision as i64 > current.revision => {
            status.failed_attempts = 0;
        }
        _ => {}
    }
    for condition in conditions(policy, state, pending, outcome) {
        set_condition(&mut status.conditions, &condition, policy.metadata.generation, now.clone());
    }
    status
}

fn conditions(
    policy: &AuthPolicy,
    state: &SignerState,
    pending: Option<&Step>,
    outcome: &Outcome,
) -> Vec<DesiredCondition> {
    use conditions::{DEGRADED, READY};
    let degraded = match outcome {
        Outcome::Fine => DesiredCondition::not(DEGRADED, "AsExpected", "every chain has a valid key"),
        Outcome::Invalid(why) => DesiredCondition::ok(DEGRADED, "InvalidSpec", why.clone()),
        Outcome::Failed(why) => DesiredCondition::ok(DEGRADED, "StepRefused", why.clone()),
    };
    let ready = match (outcome, state.revision) {
        (Outcome::Invalid(why), _) => DesiredCondition::not(READY, "InvalidSpec", why.clone()),
        (_, 0) => DesiredCondition::not(READY, "Minting", "no keys minted yet"),
        _ => DesiredCondition::ok(
            READY,
            "KeysPublished",
            format!(
                "keyring revision {} published with {} keys",
                state.revision,
                state.keys.iter().filter(|k| k.state.accepted()).count()
            ),
        ),
    };
    let staged = state.keys.iter().filter(|k| k.state == KeyState::Staged).count();
    let verifying = state.keys.iter().filter(|k| k.state == KeyState::Verifying).count();
    let rotating = match (staged, verifying, pending) {
        (s, _, _) if s > 0 => DesiredCondition::ok(
            ROTATING,
            "Staged",
            "new keys are published and wait for the kubelet to deliver them before use",
        ),
        (_, v, _) if v > 0 => {
            DesiredCondition::ok(ROTATING, "Overlap", "the previous keys stay valid until their overlap ends")
        }
        (_, _, Some(Step::Stage { .. })) => {
            DesiredCondition::ok(ROTATING, "Due", "a rotation is due; the rotation Job stages it on its next run")
        }
        _ => DesiredCondition::not(ROTATING, "Idle", "no rotation in progress"),
    };
    let revoking = match (&policy.spec.revocation, pending) {
        (_, Some(Step::Revoke(kids))) => {
            DesiredCondition::ok(REVOKING, "Pending", format!("revoking {}", kids.join(", ")))
        }
        (Some(r), _) => DesiredCondition::not(REVOKING, "Revoked", format!("revocation carried out: {}", r.reason)),
        (None, _) => DesiredCondition::not(REVOKING, "NoRevocation", "spec.revocation is not set"),
    };
    vec![ready, degraded, rotating, revoking]
}

/// The manual-rotation nonce on the policy, if any.
pub fn rotate_nonce(policy: &AuthPolicy) -> Option<&str> {
    policy.annotations().get(ROTATE_ANNOTATION).map(String::as_str)
}

/// Whether a failed step should wait before it is tried again (1m, 2m, 4m ... capped at 1h).
pub fn in_backoff(policy: &AuthPolicy, now: &Time) -> bool {
    let Some(status) = &policy.status else { return false };
    let (Some(at), n) = (&status.last_failure_time, status.failed_attempts) else { return false };
    if n <= 0 {
        return false;
    }
    let wait = (60i64 << (n - 1).min(6)).min(3600);
    now.0.as_second() < at.0.as_second() + wait
}

/// Writes `desired` if it differs from the policy's status, guarded by the policy's
/// resourceVersion. A conflict means someone (the rotation Job, another reconcile) wrote newer
/// state: the caller re-reads instead of overwriting it.
pub async fn write(
    client: &kube::Client,
    manager: &str,
    policy: &AuthPolicy,
    desired: &AuthPolicyStatus,
) -> Result<bool> {
    // Just moved here from another shard: written once under this shard's name, then the other
    // shard's name comes off it (see `handover.rs`).
    let others = crate::handover::others_live(policy, manager);
    if policy.status.as_ref() == Some(desired) && others.is_empty() {
        return Ok(false);
    }
    let ns = policy.namespace().ok_or(Error::MissingField("metadata.namespace"))?;
    let patch = serde_json::json!({
        "apiVersion": AuthPolicy::api_version(&()),
        "kind": AuthPolicy::kind(&()),
        "metadata": {"resourceVersion": policy.resource_version()},
        "status": desired,
    });
    let api = Api::<AuthPolicy>::namespaced(client.clone(), &ns);
    api.patch_status(&policy.name_any(), &PatchParams::apply(manager).force(), &Patch::Apply(&patch))
        .await
        .map_err(Error::kube("writing AuthPolicy status"))?;
    crate::handover::release_status(&api, &policy.name_any(), &others)
        .await
        .map_err(Error::kube("taking over a policy's status from another shard"))?;
    Ok(true)
}

/// Why a policy whose signer Secret is gone mints nothing.
pub const SIGNER_MISSING: &str = "SignerSecretMissing";

/// The status of a policy that has published keys and lost its signer Secret: what it said
/// before (the published keys are still served, so `Ready` stands), plus `Degraded=True`,
/// because nothing can be minted, rotated or revoked until the Secret is back.
pub fn signer_missing(policy: &AuthPolicy, now: &Time) -> AuthPolicyStatus {
    let mut status = policy.status.clone().unwrap_or_default();
    status.observed_generation = policy.metadata.generation;
    let message = format!(
        "Secret {} is gone, and with it every key's history and private half: the published keys are still served, but nothing is minted, rotated or revoked until it is restored from a backup (or the AuthPolicy is deleted and created again, which mints new keys for every client)",
        mailagent_crds::names::signer_secret(&policy.name_any())
    );
    let degraded = DesiredCondition::ok(conditions::DEGRADED, SIGNER_MISSING, message);
    set_condition(&mut status.conditions, &degraded, policy.metadata.generation, now.clone());
    status
}

/// A refusal as an outcome.
pub fn outcome_of(refusal: &Refusal) -> Outcome {
    match refusal {
        Refusal::Invalid(why) => Outcome::Invalid(why.clone()),
        other => Outcome::Failed(other.to_string()),
    }
}
