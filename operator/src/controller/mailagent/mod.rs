//! The MailAgent controller: dereference, validate, build, apply, status. Only dereference,
//! apply and status touch the API; build is pure.

mod apply;
pub mod build;
mod dereference;
mod status;
mod validate;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{Future, StreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::Recorder;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, ResourceExt};
use mailagent_crds::{AuthPolicy, MailAgent, MailAgentStatus};
use tracing::{info, warn};

use crate::error::{Error, Result, backoff};
use crate::labels::MANAGED_SELECTOR;
use crate::metrics::Metrics;
use crate::reflect::{self, Ready, reflect};

/// Controller name in metrics, events and logs.
pub const CONTROLLER: &str = "mailagent";
/// How often an unchanged agent is looked at again (a safety net; watches do the real work).
pub const RESYNC: Duration = Duration::from_secs(3600);
/// How soon to look again while waiting for something the controller does not watch.
pub const RECHECK: Duration = Duration::from_secs(30);

/// Caches of everything the reconcile reads.
pub struct Stores {
    pub(crate) policies: Store<AuthPolicy>,
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
    agents: Store<MailAgent>,
    failures: Mutex<HashMap<ObjectRef<MailAgent>, u32>>,
    /// The status last written per agent (with the agent's uid), because a reconcile can run
    /// before the watch delivers our own write: computing from the stale copy would write (and
    /// announce) the same change twice.
    written: Mutex<HashMap<ObjectRef<MailAgent>, (String, MailAgentStatus)>>,
}

impl Context {
    pub(crate) fn written_status(&self, agent: &MailAgent) -> Option<MailAgentStatus> {
        let written = self.written.lock().expect("not poisoned");
        let (uid, status) = written.get(&ObjectRef::from_obj(agent))?;
        (Some(uid) == agent.metadata.uid.as_ref()).then(|| status.clone())
    }

    pub(crate) fn remember_status(&self, agent: &MailAgent, status: MailAgentStatus) {
        let Some(uid) = agent.metadata.uid.clone() else { return };
        let mut written = self.written.lock().expect("not poisoned");
        written.insert(ObjectRef::from_obj(agent), (uid, status));
        // Forget deleted agents now and then, so the memo stays the size of the fleet.
        if written.len() > 2 * self.agents.state().len() + 16 {
            let live: std::collections::HashSet<_> =
                self.agents.state().iter().map(|a| ObjectRef::from_obj(&**a)).collect();
            written.retain(|key, _| live.contains(key));
        }
    }
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
}

impl Default for Scope {
    fn default() -> Self {
        Self { namespace: None, concurrency: DEFAULT_CONCURRENCY }
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

/// Runs the MailAgent controller until `shutdown` resolves.
pub fn run(
    client: Client,
    scope: Scope,
    metrics: Arc<Metrics>,
    recorder: Recorder,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> impl Future<Output = ()> {
    let policies = reflect(scope.api::<AuthPolicy>(&client), None);
    let service_accounts = reflect(scope.api::<ServiceAccount>(&client), Some(MANAGED_SELECTOR));
    let config_maps = reflect(scope.api::<ConfigMap>(&client), Some(MANAGED_SELECTOR));
    let deployments = reflect(scope.api::<Deployment>(&client), Some(MANAGED_SELECTOR));
    let services = reflect(scope.api::<Service>(&client), Some(MANAGED_SELECTOR));
    let pvcs = reflect(scope.api::<PersistentVolumeClaim>(&client), Some(MANAGED_SELECTOR));
    let network_policies = reflect(scope.api::<NetworkPolicy>(&client), Some(MANAGED_SELECTOR));
    let stores = Stores {
        policies: policies.store.clone(),
        service_accounts: service_accounts.store,
        config_maps: config_maps.store,
        deployments: deployments.store,
        services: services.store,
        pvcs: pvcs.store,
        network_policies: network_policies.store,
    };

    // The agents' own watch is stripped of managedFields like the children's.
    let agents = reflect(scope.api::<MailAgent>(&client), None);
    let controller = Controller::for_stream(agents.stream, agents.store.clone())
        .with_config(kube::runtime::controller::Config::default().concurrency(scope.concurrency));
    let agents = agents.store;
    let ctx = Arc::new(Context {
        client: client.clone(),
        stores,
        metrics,
        recorder,
        agents: agents.clone(),
        failures: Mutex::default(),
        written: Mutex::default(),
    });
    controller
        .owns_stream(service_accounts.stream)
        .owns_stream(config_maps.stream)
        .owns_stream(deployments.stream)
        .owns_stream(services.stream)
        .owns_stream(pvcs.stream)
        .owns_stream(network_policies.stream)
        // A policy change re-renders every agent that references it.
        .watches_stream(policies.stream, move |policy: AuthPolicy| {
            let (name, ns) = (policy.name_any(), policy.namespace());
            agents
                .state()
                .into_iter()
                .filter(|a| a.spec.auth_policy_ref.name == name && a.namespace() == ns)
                .map(|a| ObjectRef::from_obj(&*a))
                .collect::<Vec<_>>()
        })
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(error) = result {
                warn!(%error, "reconcile failed");
            }
        })
}

async fn reconcile(agent: Arc<MailAgent>, ctx: Arc<Context>) -> Result<Action> {
    let started = Instant::now();
    ctx.stores.ready().await;
    let result = reconcile_agent(&agent, &ctx).await;
    ctx.metrics.reconciled(CONTROLLER, started.elapsed());
    if result.is_ok() {
        ctx.failures.lock().expect("not poisoned").remove(&ObjectRef::from_obj(&*agent));
    }
    result
}

async fn reconcile_agent(agent: &MailAgent, ctx: &Context) -> Result<Action> {
    agent.namespace().ok_or(Error::MissingField("metadata.namespace"))?;
    let refs = dereference::resolve(agent, ctx).await?;
    let (children, deployment) = match validate::check(agent) {
        Ok(()) => {
            let inputs = build::Inputs { agent, policy: refs.policy.as_ref().map(|p| &p.spec) };
            let children = build::build(inputs);
            let deployment = apply::apply(agent, &children, ctx).await?;
            (Ok(children), Some(deployment))
        }
        Err(problem) => (Err(problem), None),
    };
    status::update(agent, &refs, &children, deployment, ctx).await?;
    Ok(match (&children, &refs) {
        (Err(_), _) => Action::await_change(),
        (Ok(_), refs) if !refs.credentials_found => Action::requeue(RECHECK),
        _ => Action::requeue(RESYNC),
    })
}

fn error_policy(agent: Arc<MailAgent>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.failed(CONTROLLER, error.metric_label());
    if error.is_permanent() {
        warn!(agent = %agent.name_any(), %error, "permanent error; waiting for a spec change");
        return Action::await_change();
    }
    let mut failures = ctx.failures.lock().expect("not poisoned");
    let count = failures.entry(ObjectRef::from_obj(&*agent)).or_default();
    *count += 1;
    let delay = backoff(*count - 1);
    info!(agent = %agent.name_any(), %error, retry_in = ?delay, "transient error; backing off");
    Action::requeue(delay)
}
