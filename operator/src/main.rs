use clap::Parser;
use mailagent_operator::{Command, Config, rotate, run};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,kube=warn".into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    if config.log_format == "json" {
        logs.json().init()
    } else {
        logs.init()
    }
    match &config.command {
        Some(Command::Rotate { namespace, policy, field_manager }) => rotate(namespace, policy, field_manager).await,
        None => run(config).await,
    }
}
