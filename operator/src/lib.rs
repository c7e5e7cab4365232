//! The mailagent operator: reconciles `MailAgent` into hardened workloads.
//!
//! `main.rs` is a thin shell over [`run`]; integration tests call the controller directly.

pub mod controller;
pub mod error;
pub mod health;
pub mod http;
pub mod labels;
pub mod leader;
pub mod metrics;
pub mod reflect;
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
    /// Watch one namespace only (default: every namespace).
    #[arg(long, env = "WATCH_NAMESPACE")]
    pub namespace: Option<String>,
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
    },
}

/// Runs `rotate`: one idempotent step, then exits (non-zero when the step failed or was refused).
pub async fn rotate(namespace: &str, policy: &str) -> anyhow::Result<()> {
    use controller::authpolicy::{Clock, SystemClock, rotate};
    let client = kube::Client::try_default().await?;
    let ran = rotate::run_once(&client, namespace, policy, &SystemClock.now()).await?;
    info!(?ran, %namespace, %policy, "rotate finished");
    Ok(())
}

/// Runs the operator until SIGTERM or SIGINT.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let clients = controller::Clients::with_timeouts(kube::Config::infer().await?)?;
    let client = clients.requests.clone();
    let metrics = Arc::new(metrics::Metrics::default());
    let health = Arc::new(health::Health::new(Duration::from_secs(config.watch_failure_limit_seconds)));
    let server = http::serve(config.metrics_addr, metrics.clone(), health.clone()).await?;
    info!(addr = %server, "metrics and health server listening");

    let _leadership = if config.leader_election {
        Some(leader::acquire(client.clone(), &config.lease_namespace, &config.identity).await?)
    } else {
        None
    };
    health.set_leading();
    let reporter = Reporter { controller: "mailagent-operator".into(), instance: Some(config.identity.clone()) };
    let recorder = Recorder::new(client.clone(), reporter);
    let scope = controller::mailagent::Scope { namespace: config.namespace.clone(), concurrency: config.concurrency };
    let shutdown = futures::FutureExt::shared(futures::FutureExt::boxed(shutdown_signal()));
    let policies = controller::authpolicy::Settings {
        namespace: config.namespace.clone(),
        rotator_image: config.rotator_image.clone(),
        clock: Arc::new(controller::authpolicy::SystemClock),
    };
    futures::join!(
        controller::mailagent::run(clients, scope, metrics.clone(), recorder.clone(), health, shutdown.clone()),
        controller::authpolicy::run(client, policies, metrics, recorder, shutdown),
    );
    info!("controller stopped");
    Ok(())
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
