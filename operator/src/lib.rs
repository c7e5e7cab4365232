//! The mailagent operator: reconciles `MailAgent` into hardened workloads.
//!
//! `main.rs` is a thin shell over [`run`]; integration tests call the controller directly.

pub mod controller;
pub mod error;
pub mod handover;
pub mod health;
pub mod http;
pub mod labels;
pub mod leader;
pub mod metrics;
pub mod reflect;
pub mod shard;
pub mod token;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kube::runtime::events::{Recorder, Reporter};
use tracing::info;

/// Command-line and environment settings of the operator.
#[derive(Clone, Debug, clap::Parser)]
#[command(name = "mailagent-operator", version, about = "Reconciles MailAgent resources into hardened workloads")]
pub struct Config {
    /// Watch only these namespaces, comma-separated or the flag repeated (default: every
    /// namespace). With a list, Roles in those namespaces are all the operator needs: the chart's
    /// namespaced install mode (`watchNamespaces`).
    #[arg(long = "namespace", env = "WATCH_NAMESPACE", value_delimiter = ',')]
    pub namespaces: Vec<String>,
    /// Reconciles in flight at once.
    #[arg(long, env = "RECONCILE_CONCURRENCY", default_value_t = controller::mailagent::DEFAULT_CONCURRENCY)]
    pub concurrency: u16,
    /// Address of the metrics and health server.
    #[arg(long, env = "METRICS_ADDR", default_value = "0.0.0.0:8081")]
    pub metrics_addr: SocketAddr,
    /// Elect a leader through a Lease so only one replica writes.
    #[arg(long, env = "LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// Namespace of the leader-election Lease (default: the pod's namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "mailagent-system")]
    pub lease_namespace: String,
    /// This replica's identity in the Lease (default: the pod name).
    #[arg(long, env = "POD_NAME", default_value = "mailagent-operator-local")]
    pub identity: String,
    /// `json` or `text` logs.
    #[arg(long, env = "LOG_FORMAT", default_value = "text")]
    pub log_format: String,
    /// Seconds the watches may fail without a pause before `/healthz` fails, so the kubelet
    /// restarts a replica that cannot get them back.
    #[arg(long, env = "WATCH_FAILURE_LIMIT_SECONDS", default_value_t = health::DEFAULT_DEAF_LIMIT.as_secs())]
    pub watch_failure_limit_seconds: u64,
    /// The image each AuthPolicy's rotation CronJob runs (this operator's own image).
    #[arg(long, env = "ROTATOR_IMAGE", default_value = "mailagent-operator:latest")]
    pub rotator_image: String,
    /// Seconds between two probes of an unchanged, Ready agent's doors (the `Verified`
    /// condition). A changed configuration or a hand edit is probed again sooner.
    #[arg(long, env = "VERIFY_INTERVAL_SECONDS", default_value_t = controller::mailagent::verify::DEFAULT_INTERVAL.as_secs())]
    pub verify_interval_seconds: u64,
    /// Whether the operator runs in a pod of namespace `POD_NAMESPACE` (the chart sets this):
    /// then each agent's NetworkPolicy admits the operator's pods, so its probes get through.
    #[arg(long, env = "IN_CLUSTER", default_value_t = false, action = clap::ArgAction::Set)]
    pub in_cluster: bool,
    /// How many shards split the fleet (1: this operator owns every agent). See `docs/scale.md`.
    #[arg(long, env = "SHARD_COUNT", default_value_t = 1)]
    pub shard_count: u32,
    /// Which shard this process is, `0..SHARD_COUNT`.
    #[arg(long, env = "SHARD_INDEX", default_value_t = 0)]
    pub shard_index: u32,
    /// Run one command instead of the controllers.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Commands besides running the controllers.
#[derive(Clone, Debug, clap::Subcommand)]
pub enum Command {
    /// One rotation step for one AuthPolicy: what the policy's CronJob runs.
    Rotate {
        /// The policy's namespace.
        #[arg(long)]
        namespace: String,
        /// The policy's name.
        #[arg(long)]
        policy: String,
        /// The field manager of the shard that owns the policy (its CronJob passes it).
        #[arg(long, default_value = shard::BASE_NAME, value_parser = parse_field_manager)]
        field_manager: String,
    },
}

/// Runs `rotate`: one idempotent step, then exits (non-zero when the step failed or was refused).
pub async fn rotate(namespace: &str, policy: &str, field_manager: &str) -> anyhow::Result<()> {
    use controller::authpolicy::{Clock, SystemClock, rotate};
    let client = kube::Client::try_default().await?;
    let ran = rotate::run_once(&client, field_manager, namespace, policy, &SystemClock.now()).await?;
    info!(?ran, %namespace, %policy, "rotate finished");
    Ok(())
}

/// Only an operator shard's field manager: the Job must not write under another name.
fn parse_field_manager(value: &str) -> Result<String, String> {
    if shard::is_operator_manager(value) {
        Ok(value.to_owned())
    } else {
        Err(format!("{value:?} is not an operator field manager (mailagent-operator or mailagent-operator-shard-<i>)"))
    }
}

/// Runs the operator until SIGTERM or SIGINT.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let shard = shard::Shard::new(config.shard_index, config.shard_count).map_err(anyhow::Error::msg)?;
    let clients = controller::Clients::with_timeouts(kube::Config::infer().await?)?;
    let client = clients.requests.clone();
    let metrics = Arc::new(metrics::Metrics::default());
    let health = Arc::new(health::Health::new(Duration::from_secs(config.watch_failure_limit_seconds)));
    let server = http::serve(config.metrics_addr, metrics.clone(), health.clone()).await?;
    info!(addr = %server, "metrics and health server listening");

    let shutdown = futures::FutureExt::shared(futures::FutureExt::boxed(shutdown_signal()));
    let leadership = if config.leader_election {
        match elect(&client, &config, shard, &health, shutdown.clone()).await? {
            Some(leadership) => Some(leadership),
            None => return Ok(()),
        }
    } else {
        None
    };
    health.set_leading();
    metrics.set_leading();
    let reporter = Reporter { controller: "mailagent-operator".into(), instance: Some(config.identity.clone()) };
    let recorder = Recorder::new(client.clone(), reporter);
    let settings = Controllers {
        namespaces: watched_namespaces(&config.namespaces),
        concurrency: config.concurrency,
        rotator_image: config.rotator_image.clone(),
        clock: Arc::new(controller::authpolicy::SystemClock),
        verify_interval: Duration::from_secs(config.verify_interval_seconds.max(1)),
        operator_namespace: config.in_cluster.then(|| config.lease_namespace.clone()),
        shard,
    };
    if shard.is_sharded() {
        info!(shard = shard.index(), of = shard.count(), "running one shard");
    }
    run_controllers(clients, settings, metrics, recorder, health, shutdown).await;
    info!("controller stopped");
    if let Some(leadership) = leadership {
        leadership.release().await;
    }
    Ok(())
}

/// Waits to lead this shard: the Lease, then the shard-count barrier. `None` when stopped first.
async fn elect(
    client: &kube::Client,
    config: &Config,
    shard: shard::Shard,
    health: &health::Health,
    shutdown: futures::future::Shared<futures::future::BoxFuture<'static, ()>>,
) -> anyhow::Result<Option<leader::Leadership>> {
    // A standby stopped by SIGTERM exits cleanly; it holds nothing to give up.
    let leadership = tokio::select! {
        leadership = leader::acquire(client.clone(), &config.lease_namespace, &config.identity, shard, health) => {
            leadership?
        }
        () = shutdown.clone() => {
            info!("stopped before leading");
            return Ok(None);
        }
    };
    // Holding the Lease but not yet writing: stopped or failed here, give the Lease up at once
    // rather than leave it to expire.
    let barrier = leader::await_one_shard_count(client.clone(), &config.lease_namespace, shard);
    let passed = tokio::select! {
        passed = barrier => passed,
        () = shutdown => {
            info!("stopped at the shard-count barrier");
            leadership.release().await;
            return Ok(None);
        }
    };
    if let Err(error) = passed {
        leadership.release().await;
        return Err(error);
    }
    info!("leading");
    Ok(Some(leadership))
}

/// What the controllers watch and how.
#[derive(Clone)]
pub struct Controllers {
    /// `None`: every namespace (cluster-wide rights); otherwise one pair of controllers per
    /// namespace, each with its own watches, so that Roles in these namespaces suffice.
    pub namespaces: Option<Vec<String>>,
    pub concurrency: u16,
    pub rotator_image: String,
    pub clock: Arc<dyn controller::authpolicy::Clock>,
    /// See [`controller::mailagent::Scope::verify_interval`].
    pub verify_interval: Duration,
    /// See [`controller::mailagent::Scope::operator_namespace`].
    pub operator_namespace: Option<String>,
    /// Which agents and policies are this process's.
    pub shard: shard::Shard,
}

/// The namespaces to watch from `--namespace` values: `None` for every namespace; blanks (an
/// empty `WATCH_NAMESPACE`) and repeats dropped.
pub fn watched_namespaces(given: &[String]) -> Option<Vec<String>> {
    let mut namespaces: Vec<String> = given.iter().map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()).collect();
    namespaces.sort();
    namespaces.dedup();
    (!namespaces.is_empty()).then_some(namespaces)
}

/// Runs the MailAgent and AuthPolicy controllers for `settings` until `shutdown` resolves.
pub async fn run_controllers(
    clients: controller::Clients,
    settings: Controllers,
    metrics: Arc<metrics::Metrics>,
    recorder: Recorder,
    health: Arc<health::Health>,
    shutdown: futures::future::Shared<futures::future::BoxFuture<'static, ()>>,
) {
    let scopes: Vec<Option<String>> = match settings.namespaces {
        None => vec![None],
        Some(namespaces) => namespaces.into_iter().map(Some).collect(),
    };
    health.expect_caches(scopes.len());
    let quota = Arc::new(controller::mailagent::quota::QuotaBook::default());
    let pairs = scopes.into_iter().map(|namespace| {
        let scope = controller::mailagent::Scope {
            namespace: namespace.clone(),
            concurrency: settings.concurrency,
            verify_interval: settings.verify_interval,
            operator_namespace: settings.operator_namespace.clone(),
            quota: quota.clone(),
            shard: settings.shard,
        };
        let policies = controller::authpolicy::Settings {
            namespace,
            rotator_image: settings.rotator_image.clone(),
            clock: settings.clock.clone(),
            shard: settings.shard,
        };
        let agents = controller::mailagent::run(
            clients.clone(),
            scope,
            metrics.clone(),
            recorder.clone(),
            health.clone(),
            shutdown.clone(),
        );
        let policies = controller::authpolicy::run(
            clients.requests.clone(),
            policies,
            metrics.clone(),
            recorder.clone(),
            shutdown.clone(),
        );
        futures::future::join(agents, policies)
    });
    futures::future::join_all(pairs).await;
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal handler");
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Config, watched_namespaces};

    fn namespaces(args: &[&str]) -> Option<Vec<String>> {
        let config = Config::try_parse_from(std::iter::once("mailagent-operator").chain(args.iter().copied())).unwrap();
        watched_namespaces(&config.namespaces)
    }

    #[test]
    fn namespaces_come_as_a_list_or_repeated_and_blank_means_all() {
        assert_eq!(namespaces(&[]), None);
        assert_eq!(namespaces(&["--namespace", ""]), None, "an empty WATCH_NAMESPACE watches everything");
        assert_eq!(namespaces(&["--namespace", "mail"]), Some(vec!["mail".to_owned()]));
        let both = Some(vec!["mail".to_owned(), "team-b".to_owned()]);
        assert_eq!(namespaces(&["--namespace", "team-b,mail"]), both);
        assert_eq!(namespaces(&["--namespace", "mail", "--namespace", "team-b", "--namespace", "mail"]), both);
    }
}
