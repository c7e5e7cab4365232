//! `mailagent`: the workload binary. Configuration comes from the environment and the config
//! directory (see `mailagent_crds::contract::env`).

use mailagent_service::settings::Source;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let source = Source::from_process();
    let json = source.get(mailagent_crds::contract::env::LOG_FORMAT).ok().flatten().as_deref() != Some("text");
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    if json {
        tracing_subscriber::fmt().json().with_env_filter(filter).init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    // The one place the process-wide crypto provider is installed; libraries pass theirs.
    #[allow(clippy::disallowed_methods, reason = "main installs the provider once per binary")]
    let _ = rustls::crypto::ring::default_provider().install_default();
    match mailagent_service::server::run(source).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("mailagent: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
