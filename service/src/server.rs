//! Start-up and shutdown: settings, keys, the domain, the router, and a graceful stop on SIGTERM
//! (readiness turns false, the listener closes, in-flight requests finish).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use mailagent_mail::api::Assistant;

use crate::app::App;
use crate::auth::Authenticator;
use crate::authz::Policy;
use crate::settings::{Settings, Source, mutation_switch};

/// Builds the application from a settings source (also used by tests and the bench).
pub fn build(source: &Source, assistant: Option<Arc<dyn Assistant>>) -> anyhow::Result<(Arc<App>, [u8; 32])> {
    let settings = Settings::load(source)?;
    let (keys, digest) = crate::reload::load_keys(&settings, source)?;
    if keys.api_keys.is_empty() && keys.jwt_keys.is_empty() && settings.oauth.is_none() {
        anyhow::bail!("no credentials configured: set AGENT_API_KEY, AUTH_JWT_SECRET or MAILAGENT_KEYRING_DIR");
    }
    let assistant = match assistant {
        Some(assistant) => assistant,
        None => open_assistant(&settings)?,
    };
    let auth = Authenticator::new(&settings, keys);
    let policy = Policy::new(mutation_switch(source), crate::authz::scope_ceiling(source)?);
    Ok((App::new(settings, auth, assistant, policy), digest))
}

/// The mail domain the settings describe (`MAILBOX_PROVIDER`, calendar, digest): see [`crate::mailbox`].
fn open_assistant(settings: &Settings) -> anyhow::Result<Arc<dyn Assistant>> {
    crate::mailbox::open(settings)
}

/// Serves until SIGTERM or Ctrl-C.
pub async fn run(source: Source) -> anyhow::Result<()> {
    let (app, digest) = build(&source, None)?;
    // A bad or mismatched certificate stops the start here, before anything listens.
    let tls = match &app.settings.tls {
        Some((cert, key)) => Some(crate::tls::Tls::load(cert, key)?),
        None => None,
    };
    let scan_schedule = crate::mailbox::scan_schedule(&app.settings)?;
    tokio::spawn(crate::reload::watch(app.clone(), source, digest));
    // Scheduled digests (DIGEST_SCHEDULE): the slot is claimed in the state directory before
    // sending, so a restart neither repeats nor replays one. Returns at once without a schedule.
    tokio::spawn(mailagent_mail::run_digest_schedule(app.assistant.clone()));
    if let Some(schedule) = scan_schedule {
        let delay = app.settings.mail.scan_delay_seconds.clone();
        tokio::spawn(mailagent_mail::run_scan_schedule(app.assistant.clone(), schedule, delay));
    }
    let listener = tokio::net::TcpListener::bind(app.settings.listen)
        .await
        .with_context(|| format!("bind {}", app.settings.listen))?;
    serve(app.clone(), listener, tls, shutdown_signal(app)).await
}

/// Serves the router on `listener`, over TLS when `tls` is given (its files polled for renewal),
/// until `shutdown` resolves; then stops accepting and finishes in-flight requests.
pub async fn serve(
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    tls: Option<crate::tls::Tls>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let service = crate::http::router(app.clone()).into_make_service_with_connect_info::<SocketAddr>();
    tracing::info!(listen = %listener.local_addr()?, tls = tls.is_some(), auth_mode = %app.settings.auth_mode, mcp_auth_mode = %app.settings.mcp_auth_mode, "serving");
    match tls {
        None => {
            // Without TCP_NODELAY, a response written in parts (rmcp's SSE stream) waits for the
            // client's delayed ACK: ~40 ms per MCP call.
            let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                let _ = tcp.set_nodelay(true);
            });
            axum::serve(listener, service).with_graceful_shutdown(shutdown).await?
        }
        Some(tls) => {
            let listener = tls.listener(listener, app.clone())?;
            tokio::spawn(tls.watch(app.clone(), crate::reload::INTERVAL));
            // `tap_io` gives the TLS listener axum's `ConnectInfo<SocketAddr>` (the peer address);
            // TCP_NODELAY is set before the handshake.
            let listener = axum::serve::ListenerExt::tap_io(listener, |_| {});
            axum::serve(listener, service).with_graceful_shutdown(shutdown).await?
        }
    }
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal(app: Arc<App>) {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down: finishing in-flight requests");
    app.set_ready(false);
}
