//! The MailAgent controller: dereference, validate, build, apply, status. Only dereference,
//! apply and status touch the API; build is pure.

mod apply;
pub mod build;
mod dereference;
mod foreign;
pub mod problem;
pub mod quota;
mod status;
pub mod validate;
pub mod verify;
mod written;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::channel::mpsc;
use futures::{Future, FutureExt, StreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::core::DeserializeGuard;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::Recorder;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource, ResourceExt};
use mailagent_crds::{AuthPolicy, MailAgent, MailAgentStatus};
use tracing::{info, warn};

use self::problem::Problem;
use crate::error::{Error, Result};
use crate::health::{Health, WatchHealth};
use crate::labels::{AGENT_LABEL, MANAGED_SELECTOR};
use crate::metrics::Metrics;
use crate::reflect::{self, Ready, Seen, Watched, watch};
use crate::shard::Shard;

/// Controller name in metrics, events and logs.
pub const CONTROLLER: &str = "mailagent";
/// How often an unchanged agent is looked at again (a safety net; watches do the real work).
pub const RESYNC: Duration = Duration::from_secs(3600);
/// How soon to look again while waiting for something the controller does not watch: the
/// credentials Secret, which the operator may only `get` (a Secret watch would need `list` on
/// every Secret in the cluster). Status therefore follows a deleted or restored Secret within this,
/// on a shard of up to 1,500 agents (see [`recheck_after`]).
pub const RECHECK: Duration = Duration::from_secs(30);
/// The credentials lookups one shard's recheck may make a second. Every 30 s for every Gmail agent
/// would be about 3,300 `GET`s a second for a fleet of 100,000: a steady load on the API server
/// for a check that almost never finds anything new.
pub const RECHECKS_PER_SECOND: u32 = 50;
/// Longest a reconcile may take. Past it the reconcile is cancelled, counted and retried with
/// backoff, so no API call can hold a concurrency slot (and the object) for ever.
pub const RECONCILE_DEADLINE: Duration = Duration::from_secs(60);

/// A MailAgent as watched: one that fails to deserialize is reported instead of stalling the watch.
pub type Agent = DeserializeGuard<MailAgent>;
/// An AuthPolicy as watched.
pub type Policy = DeserializeGuard<AuthPolicy>;

/// Caches of everything the reconcile reads.
pub struct Stores {
    pub(crate) policies: Store<Policy>,
    pub(crate) service_accounts: Store<ServiceAccount>,
    pub(crate) config_maps: Store<ConfigMap>,
    pub(crate) deployments: Store<Deployment>,
    pub(crate) services: Store<Service>,
    pub(crate) pvcs: Store<PersistentVolumeClaim>,
    pub(crate) network_policies: Store<NetworkPolicy>,
}

impl Stores {
    async fn ready(&self) {
        let all: [&dyn Ready; 7] = [
            &self.policies,
            &self.service_accounts,
            &self.config_maps,
            &self.deployments,
            &self.services,
            &self.pvcs,
            &self.network_policies,
        ];
        reflect::all_ready(&all).await;
    }
}

/// What every reconcile shares.
pub struct Context {
    pub(crate) client: Client,
    pub(crate) stores: Stores,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) recorder: Recorder,
    /// Which agents are this process's; every write is under its field manager.
    pub(crate) shard: Shard,
    agents: Store<Agent>,
    failures: Mutex<HashMap<ObjectRef<Agent>, u32>>,
    /// Probes of the agents' doors (the `Verified` condition).
    pub(crate) verifier: verify::Verifier,
    /// Where the operator's own pods run, so each agent's NetworkPolicy admits its probes.
    operator_namespace: Option<String>,
    /// The Gmail quota groups (shared by every namespace this operator watches).
    quota: Arc<quota::QuotaBook>,
    /// Where a quota group sends members whose allotment changed.
    again: quota::Trigger,
    /// OAuth client groups learnt from credentials Secrets (see `dereference.rs`).
    client_groups: dereference::ClientGroups,
    /// Keyring Secrets found present in the last few seconds (see `dereference.rs`).
    keyrings: dereference::RecentKeyrings,
    /// The status last written per agent (see `written.rs`).
    written: Arc<written::Written>,
}

impl Context {
    /// `read` of the newest status this process knows for `agent` (see [`written::Written::read`]).
    pub(crate) fn read_status<R>(&self, agent: &MailAgent, read: impl FnOnce(&MailAgentStatus) -> R) -> R {
        self.written.read(agent, read)
    }

    pub(crate) fn remember_status(&self, agent: &MailAgent, status: MailAgentStatus, version: Option<String>) {
        let cached = self.agents.get(&agent_ref(agent)).and_then(|a| a.meta().resource_version.clone());
        let live = || self.agents.state().iter().map(|a| ObjectRef::from_obj(&**a)).collect();
        self.written.remember(agent, status, version, cached, self.agents.len(), live);
    }
}

/// The controller's key for an agent.
fn agent_ref(agent: &MailAgent) -> ObjectRef<Agent> {
    ObjectRef::new(&agent.name_any()).within(agent.namespace().as_deref().unwrap_or_default())
}

/// Where the controller looks and how much it does at once.
#[derive(Clone, Debug)]
pub struct Scope {
    /// One namespace, or every namespace when `None`.
    pub namespace: Option<String>,
    /// Reconciles in flight at once. Bounded because the API server, not the operator, is the
    /// bottleneck: thousands of concurrent reconciles at startup only hold thousands of rendered
    /// objects and responses in memory at the same time without converging any faster.
    pub concurrency: u16,
    /// Time between two probes of an unchanged, Ready agent (the `Verified` condition).
    pub verify_interval: Duration,
    /// The namespace the operator's pods run in: each agent's NetworkPolicy admits them to the
    /// serving port so the probes get through. `None` (an operator outside the cluster) adds no
    /// rule.
    pub operator_namespace: Option<String>,
    /// Who is in which Gmail quota group; one book for every scope of one operator, since a
    /// Google project's quota spans namespaces.
    pub quota: Arc<quota::QuotaBook>,
    /// Which agents are this process's when several operators split the fleet.
    pub shard: Shard,
}

impl Default for Scope {
    fn default() -> Self {
        Self {
            namespace: None,
            concurrency: DEFAULT_CONCURRENCY,
            verify_interval: verify::DEFAULT_INTERVAL,
            operator_namespace: None,
            quota: Arc::default(),
            shard: Shard::default(),
        }
    }
}

/// Default for [`Scope::concurrency`].
pub const DEFAULT_CONCURRENCY: u16 = 16;

impl Scope {
    fn api<K>(&self, client: &Client) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        match &self.namespace {
            Some(ns) => Api::namespaced(client.clone(), ns),
            None => Api::all(client.clone()),
        }
    }
}

/// Where watches send what must be reconciled: one agent, or every agent (after a re-list).
#[derive(Clone)]
struct Triggers {
    one: mpsc::UnboundedSender<ObjectRef<Agent>>,
    all: mpsc::UnboundedSender<()>,
}

impl Triggers {
    /// Maps a child (by its agent label, which a retained PVC keeps when it has no owner
    /// reference) or a re-list onto the agents to look at again.
    fn child<K: Resource>(&self, seen: Seen<'_, K>) {
        match seen {
            Seen::Changed(child) => {
                if let (Some(agent), Some(ns)) =
                    (child.meta().labels.as_ref().and_then(|l| l.get(AGENT_LABEL)), &child.meta().namespace)
                {
                    let _ = self.one.unbounded_send(ObjectRef::new(agent).within(ns));
                }
            }
            Seen::Relisted => self.everything(),
        }
    }

    fn everything(&self) {
        let _ = self.all.unbounded_send(());
    }
}

/// Spawned watch tasks, stopped when the controller stops.
struct Drivers(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Drivers {
    fn drop(&mut self) {
        self.0.iter().for_each(tokio::task::JoinHandle::abort);
    }
}

/// Watches one kind of child (by the operator's label, and the shard's when sharded: a shard
/// caches only its own children), sending each change to its agent.
fn watch_children<K>(scope: &Scope, client: &Client, health: &Arc<WatchHealth>, triggers: &Triggers) -> Watched<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let triggers = triggers.clone();
    let selector = match scope.shard.child_selector() {
        Some(shard) => format!("{MANAGED_SELECTOR},{shard}"),
        None => MANAGED_SELECTOR.to_owned(),
    };
    let api = scope.api::<K>(client);
    watch(api, Some(&selector), scope.shard, health.clone(), |_| {}, move |seen| triggers.child(seen))
}

/// Runs the MailAgent controller until `shutdown` resolves.
pub fn run(
    clients: impl Into<super::Clients>,
    scope: Scope,
    metrics: Arc<Metrics>,
    recorder: Recorder,
    health: Arc<Health>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> impl Future<Output = ()> {
    let super::Clients { requests: client, watches: watch_client } = clients.into();
    let (one, one_rx) = mpsc::unbounded();
    let (all, all_rx) = mpsc::unbounded();
    let triggers = Triggers { one, all };
    let watches = health.watches.clone();
    let service_accounts = watch_children::<ServiceAccount>(&scope, &watch_client, &watches, &triggers);
    let config_maps = watch_children::<ConfigMap>(&scope, &watch_client, &watches, &triggers);
    let deployments = watch_children::<Deployment>(&scope, &watch_client, &watches, &triggers);
    let services = watch_children::<Service>(&scope, &watch_client, &watches, &triggers);
    let pvcs = watch_children::<PersistentVolumeClaim>(&scope, &watch_client, &watches, &triggers);
    let network_policies = watch_children::<NetworkPolicy>(&scope, &watch_client, &watches, &triggers);

    let agent_triggers = triggers.clone();
    // The watch makes its store, so the callback gets it once both exist (before the watch runs).
    let (book, own_store) = (scope.quota.clone(), Arc::new(std::sync::OnceLock::<Store<Agent>>::new()));
    let (store_for_watch, shard) = (own_store.clone(), scope.shard);
    // Every shard watches every agent (they are small next to their children): a quota group
    // spans shards, so each counts all its members, and an agent relabelled to this shard is
    // seen arriving.
    let slim = move |agent: &mut Agent| foreign::slim(agent, &shard);
    let events = foreign::Events::new(shard);
    let written = Arc::new(written::Written::default());
    let echoes = written.clone();
    let agents = watch(scope.api::<Agent>(&watch_client), None, shard, watches.clone(), slim, move |seen| {
        let store = store_for_watch.get().expect("set before the watch runs");
        match seen {
            Seen::Changed(changed) => {
                let agent = ObjectRef::from_obj(changed);
                let present = store.get(&agent).is_some();
                if !present {
                    // Gone from the cache: deleted. Its quota group shares out what it held.
                    book.leave(&agent);
                } else if let Some(joining) = counted_member(changed, &agent_triggers.one, &shard) {
                    // Counted now, so its group re-renders before (not after) its own reconcile.
                    book.join(joining, || true);
                }
                // Another shard's agent is only counted; one that just left this shard is looked
                // at once more, which forgets it. The echo of our own status write shows nothing
                // new (a deleted agent is always looked at).
                let echo = present && changed.0.as_ref().is_ok_and(|a| echoes.observe(a));
                if events.reconciles(changed, present) && !echo {
                    let _ = agent_triggers.one.unbounded_send(agent);
                }
            }
            Seen::Relisted => {
                echoes.clear();
                book.retain(|agent| store.get(agent).is_some());
                events.retain(|agent| store.get(agent).is_some());
                agent_triggers.everything();
            }
        }
    });
    let _ = own_store.set(agents.store.clone());
    // A policy change re-renders every agent that references it.
    let (policy_triggers, agent_store) = (triggers.clone(), agents.store.clone());
    let policies = watch(
        scope.api::<Policy>(&watch_client),
        None,
        shard,
        watches,
        |_| {},
        move |seen| match seen {
            Seen::Changed(policy) => {
                let (name, ns) = (policy.name_any(), policy.namespace());
                let referencing = agent_store
                    .state()
                    .into_iter()
                    .filter(|a| a.namespace() == ns && a.0.as_ref().is_ok_and(|a| a.spec.auth_policy_ref.name == name));
                for agent in referencing {
                    let _ = policy_triggers.one.unbounded_send(ObjectRef::from_obj(&*agent));
                }
            }
            Seen::Relisted => policy_triggers.everything(),
        },
    );

    let stores = Stores {
        policies: policies.store,
        service_accounts: service_accounts.store,
        config_maps: config_maps.store,
        deployments: deployments.store,
        services: services.store,
        pvcs: pvcs.store,
        network_policies: network_policies.store,
    };
    let agent_store = agents.store;
    let drivers = [
        agents.driver,
        policies.driver,
        service_accounts.driver,
        config_maps.driver,
        deployments.driver,
        services.driver,
        pvcs.driver,
        network_policies.driver,
    ];
    let ctx = Arc::new(Context {
        client,
        stores,
        metrics,
        recorder,
        shard: scope.shard,
        agents: agent_store.clone(),
        failures: Mutex::default(),
        verifier: verify::Verifier::new(scope.verify_interval),
        operator_namespace: scope.operator_namespace.clone(),
        quota: scope.quota.clone(),
        again: triggers.one.clone(),
        client_groups: Default::default(),
        keyrings: Default::default(),
        written,
    });
    let shutdown = shutdown.shared();
    async move {
        let mut _drivers = Drivers(drivers.into_iter().map(tokio::spawn).collect());
        // Once, before any reconcile: every cache has its first list.
        tokio::select! {
            () = async { ctx.stores.ready().await; let _ = agent_store.wait_until_ready().await; } => {}
            () = shutdown.clone() => return,
        }
        // Agents that name their quota group are counted before the first reconcile, so each
        // renders its final share at once (a group learnt from OAuth clients grows as it is read).
        ctx.quota.seed(ctx.agents.state().iter().filter_map(|a| counted_member(a, &triggers.one, &ctx.shard)));
        _drivers.0.push(tokio::spawn(verify::run(ctx.clone(), triggers.one.clone())));
        health.set_synced();
        info!("caches listed; reconciling every agent");
        triggers.everything();
        Controller::for_stream(futures::stream::pending(), agent_store)
            .with_config(kube::runtime::controller::Config::default().concurrency(scope.concurrency))
            .reconcile_on(one_rx)
            .reconcile_all_on(all_rx)
            .graceful_shutdown_on(shutdown)
            .run(reconcile, error_policy, ctx)
            .for_each(|result| async move {
                if let Err(error) = result {
                    warn!(%error, "reconcile failed");
                }
            })
            .await;
    }
}

async fn reconcile(agent: Arc<Agent>, ctx: Arc<Context>) -> Result<Action> {
    if !ctx.shard.owns(agent.meta()) {
        // Another shard's (or it just moved there): its owner writes it. Counted in its quota
        // group all the same (see `counted_member`).
        let key = ObjectRef::from_obj(&*agent);
        ctx.failures.lock().expect("not poisoned").remove(&key);
        // Should it come back, what this shard last wrote is no longer what the object says.
        ctx.written.forget(&key);
        return Ok(Action::await_change());
    }
    let started = Instant::now();
    let agent = match &agent.0 {
        Ok(agent) => agent,
        Err(invalid) => return status::report_invalid(invalid, &ctx).await.map(|()| Action::await_change()),
    };
    let result = tokio::time::timeout(RECONCILE_DEADLINE, reconcile_agent(agent, &ctx))
        .await
        .unwrap_or(Err(Error::Deadline(RECONCILE_DEADLINE)));
    ctx.metrics.reconciled(CONTROLLER, started.elapsed());
    if result.is_ok() {
        ctx.failures.lock().expect("not poisoned").remove(&agent_ref(agent));
    }
    result
}

async fn reconcile_agent(agent: &MailAgent, ctx: &Context) -> Result<Action> {
    agent.namespace().ok_or(Error::MissingField("metadata.namespace"))?;
    let refs = dereference::resolve(agent, ctx).await?;
    let inputs = validate::Inputs { agent, policy: refs.policy.as_ref().map(|p| &p.spec) };
    let (children, deployment) = match validate::validate(inputs) {
        Ok(valid) => {
            let valid = valid.with_quota(quota_allotment(agent, &refs, ctx));
            let mut children = build::build(&valid);
            if let Some(ns) = &ctx.operator_namespace {
                build::admit_operator(&mut children.network_policy, ns);
            }
            match apply::apply(agent, &children, ctx).await {
                Ok(deployment) => (Ok(children), Some(deployment)),
                // Said in status and an Event, then wait: retrying the same request fails the same way.
                Err(error) if error.is_permanent() => (Err(Problem::ApplyRefused(error.to_string())), None),
                Err(error) => return Err(error),
            }
        }
        Err(problem) => (Err(problem), None),
    };
    status::update(agent, &refs, &children, deployment, ctx).await?;
    Ok(match &children {
        Err(_) => Action::await_change(),
        // The credentials Secret is not watched (see RECHECK): look again soon, found or not.
        Ok(_) if agent.spec.mailbox.credentials_secret_ref.is_some() => {
            Action::requeue(recheck_after(ctx.agents.len().div_ceil(ctx.shard.count() as usize)))
        }
        Ok(_) => Action::requeue(RESYNC),
    })
}

/// How soon an agent with credentials is looked at again, on a shard that holds about `owned`
/// agents: [`RECHECK`], stretched so that the shard's lookups stay within [`RECHECKS_PER_SECOND`].
/// Every agent is counted as one with credentials, so this errs on the side of fewer lookups.
pub fn recheck_after(owned: usize) -> Duration {
    RECHECK.max(Duration::from_secs_f64(owned as f64 / f64::from(RECHECKS_PER_SECOND)))
}

/// The agent's place in its Gmail quota group, recorded in the book; `None` (and out of any
/// group) for a mailbox Google does not meter.
fn quota_allotment(agent: &MailAgent, refs: &dereference::Refs, ctx: &Context) -> Option<mailagent_crds::QuotaStatus> {
    let key = agent_ref(agent);
    if !agent.spec.mailbox.is_gmail() {
        ctx.quota.leave(&key);
        return None;
    }
    let joining = quota::Joining {
        agent: key.clone(),
        group: refs.quota_group.clone(),
        budget: validate::group_budget(agent),
        trigger: ctx.again.clone(),
    };
    // Still this agent in the cache (not deleted, not replaced by a namesake) when it is counted.
    let exists = || ctx.agents.get(&key).is_some_and(|cached| cached.meta().uid == agent.metadata.uid);
    ctx.quota.join(joining, exists)
}

/// A Gmail agent as the book counts it from the cache: by the group its spec names, or, for
/// another shard's agent, by the group its status reports (its owner learnt it from the
/// credentials, which only the owner reads). `None` for any other: a group this shard learns
/// from the credentials is counted when its reconcile reads them.
fn counted_member(agent: &Agent, trigger: &quota::Trigger, shard: &Shard) -> Option<quota::Joining> {
    let parsed = agent.0.as_ref().ok()?;
    let mailbox = &parsed.spec.mailbox;
    if !mailbox.is_gmail() {
        return None;
    }
    let named = mailbox.named_quota_group().map(str::to_owned);
    let reported = || {
        let status = parsed.status.as_ref()?.quota.as_ref()?;
        if shard.owns(agent.meta()) { None } else { status.group.clone() }
    };
    Some(quota::Joining {
        agent: ObjectRef::from_obj(agent),
        group: Some(named.or_else(reported)?),
        budget: validate::group_budget(parsed),
        trigger: trigger.clone(),
    })
}

fn error_policy(agent: Arc<Agent>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.failed(CONTROLLER, error.metric_label());
    if error.is_permanent() {
        warn!(agent = %agent.name_any(), %error, "permanent error; waiting for a spec change");
        return Action::await_change();
    }
    let mut failures = ctx.failures.lock().expect("not poisoned");
    let count = failures.entry(ObjectRef::from_obj(&*agent)).or_default();
    *count += 1;
    let delay = error.backoff(*count - 1);
    info!(agent = %agent.name_any(), %error, retry_in = ?delay, "transient error; backing off");
    Action::requeue(delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_credentials_recheck_stretches_to_keep_a_shards_lookups_within_budget() {
        assert_eq!(recheck_after(0), RECHECK);
        assert_eq!(recheck_after(1_500), RECHECK, "50 lookups a second fit every 30 s");
        assert_eq!(recheck_after(3_000), Duration::from_secs(60));
        // 100,000 agents over 10 shards: 500 lookups a second for the fleet, not 3,300.
        assert_eq!(recheck_after(10_000), Duration::from_secs(200));
    }
}
