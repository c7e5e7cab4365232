//! The AuthPolicy controller: validate, load the signer document, run the urgent step (first
//! mint, emergency revoke, a removed client), publish, keep the rotation executor in place, and
//! report status. Scheduled steps (stage, promote, retire) are the `rotate` command's, run by the
//! policy's CronJob; the controller decides *when* (`status.nextRotationTime`) and requeues then.

pub mod agents;
pub mod build;
pub mod material;
pub mod permissions;
pub mod plan;
pub mod published;
pub mod rotate;
pub mod schedule;
pub mod status;
pub mod store;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{Future, StreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{EventType, Recorder};
use kube::{Api, Client, Resource, ResourceExt};
use mailagent_crds::AuthPolicy;
use mailagent_crds::authpolicy::JwtAlgorithm;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{info, warn};

use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::reflect::is_subset;
use plan::{Inputs, Step};
use status::Outcome;

/// Controller name in metrics, events and logs.
pub const CONTROLLER: &str = "authpolicy";
/// Longest wait between two looks at an unchanged policy.
pub const RESYNC: Duration = Duration::from_secs(3600);

/// Where time comes from; tests inject a clock they advance by hand.
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> Time;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Time {
        Time(Timestamp::now())
    }
}

/// A clock that moves only when told to.
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<Mutex<Timestamp>>);

impl ManualClock {
    /// A clock standing at `at`.
    pub fn new(at: Timestamp) -> Self {
        Self(Arc::new(Mutex::new(at)))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().expect("not poisoned");
        *now = now.checked_add(by).expect("in range");
    }

    /// Sets the clock.
    pub fn set(&self, at: Timestamp) {
        *self.0.lock().expect("not poisoned") = at;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Time {
        Time(*self.0.lock().expect("not poisoned"))
    }
}

/// What every reconcile shares.
pub struct Context {
    pub(crate) client: Client,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) recorder: Recorder,
    pub(crate) clock: Arc<dyn Clock>,
    /// The operator image, run by the rotation CronJob.
    pub(crate) rotator_image: String,
    /// Which policies are this process's; every write is under its field manager.
    pub(crate) shard: crate::shard::Shard,
}

/// Settings of the AuthPolicy controller.
#[derive(Clone)]
pub struct Settings {
    /// One namespace, or all.
    pub namespace: Option<String>,
    /// The image the rotation CronJob runs (`mailagent-operator rotate`).
    pub rotator_image: String,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Which policies are this process's when several operators split the fleet.
    pub shard: crate::shard::Shard,
}

/// Runs the AuthPolicy controller until `shutdown` resolves.
pub fn run(
    client: Client,
    settings: Settings,
    metrics: Arc<Metrics>,
    recorder: Recorder,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> impl Future<Output = ()> {
    let (api, agents) = match &settings.namespace {
        Some(ns) => (Api::<AuthPolicy>::namespaced(client.clone(), ns), Api::namespaced(client.clone(), ns)),
        None => (Api::<AuthPolicy>::all(client.clone()), Api::all(client.clone())),
    };
    let ctx = Arc::new(Context {
        client,
        metrics,
        recorder,
        clock: settings.clock,
        rotator_image: settings.rotator_image,
        shard: settings.shard,
    });
    let controller = Controller::new(api, kube::runtime::watcher::Config::default().any_semantic());
    let losses = published::losses(controller.store(), ctx.client.clone(), ctx.shard);
    controller
        .reconcile_on(agents::policies_to_wake(agents))
        .reconcile_on(losses)
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                warn!(%error, "authpolicy reconcile failed");
            }
        })
}

async fn reconcile(policy: Arc<AuthPolicy>, ctx: Arc<Context>) -> Result<Action> {
    if !ctx.shard.owns(policy.meta()) {
        // Another shard's: its owner writes it (and is woken by the same watch event).
        return Ok(Action::await_change());
    }
    let started = Instant::now();
    let result = reconcile_policy(&policy, &ctx).await;
    ctx.metrics.reconciled(CONTROLLER, started.elapsed());
    result
}

async fn reconcile_policy(policy: &AuthPolicy, ctx: &Context) -> Result<Action> {
    let ns = policy.namespace().ok_or(Error::MissingField("metadata.namespace"))?;
    let name = policy.name_any();
    let now = ctx.clock.now();
    if let Err(problem) = validate(policy, &now) {
        let loaded = store::load(&ctx.client, &ctx.shard.field_manager(), &ns, &name).await?;
        let mut desired =
            status::compute(policy, loaded.as_ref().map(|l| &l.state), None, &Outcome::Invalid(problem), &now);
        desired.mail_agents = mail_agents(policy, &ns, ctx).await?;
        write_status(policy, &desired, ctx).await?;
        return Ok(Action::await_change());
    }
    let loaded = store::load(&ctx.client, &ctx.shard.field_manager(), &ns, &name).await?;
    if let Some(l) = loaded.as_ref().filter(|l| !l.other_writers.is_empty()) {
        // Moved here from another shard: the same document, written under this shard's name
        // (which takes the other's off); then a fresh look with the new resource version.
        match store::save(&ctx.client, &ctx.shard.field_manager(), policy, &l.state, l.resource_version.clone()).await {
            Ok(()) => ctx.metrics.wrote("Secret", "handover"),
            Err(e) if store::lost_race(&e) => {}
            Err(e) => return Err(e),
        }
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    if loaded.is_none() && policy.status.as_ref().is_some_and(|s| s.revision > 0) {
        // Keys were minted and handed out, and their signer document is gone (deleted by hand).
        // Minting afresh would replace every client's key at once, with no overlap.
        return signer_missing(policy, &ns, ctx, &now).await;
    }
    let (mut state, resource_version) = match loaded {
        Some(l) => (l.state, l.resource_version),
        None => (Default::default(), None),
    };
    let nonce = status::rotate_nonce(policy);
    let inputs = Inputs { spec: &policy.spec, state: &state, now: &now, rotate_nonce: nonce };
    let mut outcome = Outcome::Fine;
    let mut pending = None;
    match plan::plan(&inputs) {
        Ok(Some(step)) if step.urgent() && !status::in_backoff(policy, &now) => match plan::execute(&inputs, &step) {
            Ok(next) => {
                match store::save(&ctx.client, &ctx.shard.field_manager(), policy, &next, resource_version).await {
                    Ok(()) => {
                        ctx.metrics.wrote("Secret", "apply");
                        announce(policy, &step, &next, ctx).await;
                        state = next;
                    }
                    // The rotation Job wrote first; look again with its document.
                    Err(e) if store::lost_race(&e) => return Ok(Action::requeue(Duration::from_secs(1))),
                    Err(e) => return Err(e),
                }
            }
            Err(refusal) => {
                warn!(policy = %name, %refusal, "step refused");
                outcome = status::outcome_of(&refusal);
                pending = Some(step);
            }
        },
        Ok(step) => pending = step,
        Err(refusal) => outcome = status::outcome_of(&refusal),
    }
    if state.revision > 0 {
        let writes = store::publish(&ctx.client, &ctx.shard.field_manager(), policy, &state, &now).await?;
        for _ in 0..writes {
            ctx.metrics.wrote("Secret", "apply");
        }
    }
    let mut desired = status::compute(policy, Some(&state), pending.as_ref(), &outcome, &now);
    desired.mail_agents = mail_agents(policy, &ns, ctx).await?;
    write_status(policy, &desired, ctx).await?;
    // After the status: keys and their report do not wait for the executor. Creating a
    // RoleBinding right after its Role can be refused until the API server's RBAC cache has seen
    // the Role, so any failure here is retried soon rather than treated as permanent.
    if let Err(error) = ensure_rotator(policy, &state, ctx).await {
        warn!(policy = %name, %error, "rotation executor not in place yet; retrying");
        return Ok(Action::requeue(Duration::from_secs(2)));
    }
    Ok(requeue(policy, &state, &now))
}

/// Reports a lost signer Secret (a Warning Event when first seen) and looks again every
/// `published::RECHECK`, since a restored Secret brings no event.
async fn signer_missing(policy: &AuthPolicy, ns: &str, ctx: &Context, now: &Time) -> Result<Action> {
    let mut desired = status::signer_missing(policy, now);
    desired.mail_agents = mail_agents(policy, ns, ctx).await?;
    let degraded = |s: Option<&mailagent_crds::AuthPolicyStatus>| {
        s.and_then(|s| mailagent_crds::conditions::find(&s.conditions, mailagent_crds::conditions::DEGRADED))
            .is_some_and(|c| c.status == "True" && c.reason == status::SIGNER_MISSING)
    };
    if !degraded(policy.status.as_ref()) {
        warn!(policy = %policy.name_any(), namespace = %ns, "the signer Secret is gone; minting nothing until it is back");
        let message = mailagent_crds::conditions::find(&desired.conditions, mailagent_crds::conditions::DEGRADED)
            .map(|c| c.message.clone());
        publish(policy, EventType::Warning, status::SIGNER_MISSING, message, ctx).await;
    }
    write_status(policy, &desired, ctx).await?;
    Ok(Action::requeue(published::RECHECK))
}

/// The policy's agents as its status reports them.
async fn mail_agents(
    policy: &AuthPolicy,
    ns: &str,
    ctx: &Context,
) -> Result<Vec<mailagent_crds::authpolicy::AgentAccess>> {
    let agents = agents::referencing(&ctx.client, ns, &policy.name_any()).await?;
    Ok(permissions::agent_access(&policy.name_any(), &policy.spec, &agents))
}

/// Checks what admission cannot: a mintable algorithm, a parsable schedule in a real zone, and
/// a schedule whose firings leave room for the overlap.
pub fn validate(policy: &AuthPolicy, now: &Time) -> Result<(), String> {
    if let Some(jwt) = &policy.spec.jwt {
        match jwt.algorithms.first() {
            Some(JwtAlgorithm::RS256) | None => {
                return Err("jwt.algorithms must start with an algorithm the operator can mint: HS256, HS384, HS512, ES256 or EdDSA (RS256 keys are verified, never generated)".into());
            }
            _ => {}
        }
    }
    if let Some(rotation) = &policy.spec.rotation
        && let Some(expr) = &rotation.schedule
    {
        let gap = schedule::shortest_gap(expr, &rotation.time_zone, now.0, 50)?;
        let needed = std::time::Duration::from(rotation.overlap).as_secs() as i64
            + std::time::Duration::from(rotation.propagation).as_secs() as i64;
        if gap < needed {
            return Err(format!(
                "rotation.schedule {expr:?} fires {gap}s apart at its closest, less than overlap + propagation ({needed}s): a rotation would start before the previous key's overlap ended"
            ));
        }
    }
    Ok(())
}

fn requeue(policy: &AuthPolicy, state: &material::SignerState, now: &Time) -> Action {
    match plan::next_wakeup(&policy.spec, state) {
        Some(at) => {
            let secs = (at.0.as_second() - now.0.as_second()).clamp(1, RESYNC.as_secs() as i64);
            Action::requeue(Duration::from_secs(secs as u64))
        }
        None => Action::requeue(RESYNC),
    }
}

async fn write_status(policy: &AuthPolicy, desired: &mailagent_crds::AuthPolicyStatus, ctx: &Context) -> Result<()> {
    match status::write(&ctx.client, &ctx.shard.field_manager(), policy, desired).await {
        Ok(true) => {
            ctx.metrics.wrote("AuthPolicy", "status");
            Ok(())
        }
        Ok(false) => Ok(()),
        // A newer status was written meanwhile (the Job, or our own previous write): the watch
        // brings the fresh object and a new reconcile.
        Err(e) if store::lost_race(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Keeps the rotation executor (ServiceAccount, Role, RoleBinding, CronJob) as built.
async fn ensure_rotator(policy: &AuthPolicy, state: &material::SignerState, ctx: &Context) -> Result<()> {
    let ns = policy.namespace().ok_or(Error::MissingField("metadata.namespace"))?;
    ensure(ctx, &ns, &build::rotator_service_account(policy)).await?;
    ensure(ctx, &ns, &build::rotator_role(policy)).await?;
    ensure(ctx, &ns, &build::rotator_role_binding(policy)).await?;
    ensure(ctx, &ns, &build::rotator_cron_job(policy, state, &ctx.rotator_image, &ctx.shard.field_manager())).await?;
    Ok(())
}

async fn ensure<K>(ctx: &Context, ns: &str, desired: &K) -> Result<()>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + k8s_openapi::Resource
        + Clone
        + std::fmt::Debug
        + Serialize
        + DeserializeOwned,
{
    let api = Api::<K>::namespaced(ctx.client.clone(), ns);
    let name = desired.name_any();
    let wanted = serde_json::to_value(desired).expect("k8s-openapi objects serialize");
    let manager = ctx.shard.field_manager();
    if let Some(live) = api.get_opt(&name).await.map_err(Error::kube("reading a rotation executor object"))? {
        let co_owned = !crate::handover::others_live(&live, &manager).is_empty();
        let live = serde_json::to_value(&live).expect("k8s-openapi objects serialize");
        if is_subset(&wanted, &live) && !co_owned {
            return Ok(());
        }
    }
    let live = api
        .patch(&name, &PatchParams::apply(&manager).force(), &Patch::Apply(&wanted))
        .await
        .map_err(Error::kube("applying a rotation executor object"))?;
    ctx.metrics.wrote(<K as k8s_openapi::Resource>::KIND, "apply");
    if store::release(&api, &live, &manager).await? > 0 {
        ctx.metrics.wrote(<K as k8s_openapi::Resource>::KIND, "handover");
    }
    Ok(())
}

async fn announce(policy: &AuthPolicy, step: &Step, state: &material::SignerState, ctx: &Context) {
    let note = describe(step, state, policy);
    info!(policy = %policy.name_any(), step = step.name(), revision = state.revision, "{note}");
    let type_ = if matches!(step, Step::Revoke(_)) { EventType::Warning } else { EventType::Normal };
    let reason = match step {
        Step::Revoke(_) => "Revoked",
        Step::Forget(_) => "KeysDropped",
        Step::Mint(_) => "Minted",
        _ => "Rotated",
    };
    publish(policy, type_, reason, Some(note), ctx).await;
}

/// An Event about `policy`.
async fn publish(policy: &AuthPolicy, type_: EventType, reason: &str, note: Option<String>, ctx: &Context) {
    super::publish_event(&ctx.recorder, &ctx.metrics, &policy.object_ref(&()), type_, reason, note).await;
}

/// One line about a step: kids and fingerprints, never values.
pub fn describe(step: &Step, state: &material::SignerState, policy: &AuthPolicy) -> String {
    let keys = |kids: &[String]| {
        state
            .keys
            .iter()
            .filter(|k| kids.contains(&k.kid))
            .map(|k| format!("{} ({})", k.kid, k.fingerprint))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match step {
        Step::Revoke(kids) => format!(
            "revoked {} at once: {}; revision {}",
            keys(kids),
            policy.spec.revocation.as_ref().map_or("", |r| r.reason.as_str()),
            state.revision
        ),
        Step::Forget(chains) => {
            format!("dropped the keys of {}", chains.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", "))
        }
        Step::Mint(chains) => format!(
            "minted first keys for {}; revision {}",
            chains.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", "),
            state.revision
        ),
        other => format!("{} step; revision {}", other.name(), state.revision),
    }
}

fn error_policy(policy: Arc<AuthPolicy>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.failed(CONTROLLER, error.metric_label());
    warn!(policy = %policy.name_any(), %error, "authpolicy reconcile failed");
    if error.is_permanent() { Action::requeue(RESYNC) } else { Action::requeue(Duration::from_secs(5)) }
}
