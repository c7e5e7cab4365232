//! Hot reload of the live subset: the mutation switch (config directory) and the keys (keyring
//! directory, `*_FILE` secrets).
//!
//! The keyring and config directories are watched (inotify through `notify`): the kubelet
//! updates a mounted Secret by writing a new timestamped directory and renaming a `..data`
//! symlink over the old one, which shows up as events on the watched directory itself, so a
//! revoked key is dropped within milliseconds of the swap instead of at the next poll. The poll
//! stays as the fallback for what watchers miss (a directory replaced underneath, a filesystem
//! without inotify): a content hash every [`INTERVAL`] never misses a swap.

use std::sync::Arc;
use std::time::Duration;

use mailagent_crds::contract::{env, fingerprint};
use sha2::{Digest, Sha256};

use crate::app::App;
use crate::auth::keys::{EnvSecrets, KeyError, KeySet};
use crate::settings::{Settings, SettingsError, Source, mutation_switch};

pub const INTERVAL: Duration = Duration::from_secs(2);
/// How long after a change event the directory is read, so a burst of events is one reload.
pub const SETTLE: Duration = Duration::from_millis(20);

/// Reads the laptop secrets (env or `*_FILE`).
pub fn env_secrets(source: &Source) -> Result<EnvSecrets, SettingsError> {
    Ok(EnvSecrets { api_key: source.secret(env::AGENT_API_KEY)?, jwt_secret: source.secret(env::AUTH_JWT_SECRET)? })
}

/// Loads the complete key set and a digest of what it was built from.
pub fn load_keys(settings: &Settings, source: &Source) -> anyhow::Result<(KeySet, [u8; 32])> {
    let secrets = env_secrets(source)?;
    let keyring = match &settings.keyring_dir {
        Some(dir) => KeySet::read_keyring(dir)?,
        None => None,
    };
    let mut digest = Sha256::new();
    digest.update(serde_json::to_vec(&keyring).unwrap_or_default());
    for secret in [&secrets.api_key, &secrets.jwt_secret] {
        digest.update(secret.as_deref().map(|s| fingerprint(s.as_bytes())).unwrap_or_default());
        digest.update([0]);
    }
    let keys = KeySet::build(keyring.as_ref(), &secrets).map_err(|e: KeyError| anyhow::anyhow!(e))?;
    Ok((keys, digest.finalize().into()))
}

/// The Gmail quota share and scan delay, which the operator re-renders as the agent's quota
/// group changes size. A bad value keeps the one in force and is counted.
fn reload_quota(app: &App, source: &Source) {
    let mail = &app.settings.mail;
    let live = [
        (
            crate::settings::gmail_units_per_minute(source),
            &mail.gmail_units_per_minute,
            env::GMAIL_QUOTA_UNITS_PER_MINUTE,
        ),
        (crate::settings::scan_delay_seconds(source), &mail.scan_delay_seconds, env::SCAN_SCHEDULE_DELAY_SECONDS),
    ];
    for (read, cell, name) in live {
        match read {
            Ok(value) => {
                if cell.set(value) {
                    tracing::info!(target: "audit", event = "config_reload", setting = name, value);
                }
            }
            Err(error) => {
                app.metrics.reload_failures.inc();
                tracing::warn!(%error, "reload failed; keeping the value in force");
            }
        }
    }
}

/// Watches the directories the live settings come from; each change wakes the reload loop.
/// `None` when no directory is set or the platform refuses a watch (the poll still runs).
fn watch_dirs(dirs: &[&std::path::Path], wake: tokio::sync::mpsc::Sender<()>) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher;
    if dirs.is_empty() {
        return None;
    }
    let handler = move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| !e.kind.is_access()) {
            // A full channel already holds a wake-up; one reload reads every change.
            let _ = wake.try_send(());
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(watcher) => watcher,
        Err(error) => {
            tracing::warn!(%error, "cannot watch for changes; polling only");
            return None;
        }
    };
    for dir in dirs {
        if let Err(error) = watcher.watch(dir, notify::RecursiveMode::NonRecursive) {
            tracing::warn!(%error, dir = %dir.display(), "cannot watch; polling only for this directory");
        }
    }
    Some(watcher)
}

/// Reloads on every change notification and every [`INTERVAL`] until the process ends. A broken
/// update keeps the previous values and is counted.
pub async fn watch(app: Arc<App>, source: Source, applied: [u8; 32]) {
    watch_polling_every(app, source, applied, INTERVAL).await
}

/// [`watch`] with another fallback poll period (tests use a very long one to prove that the
/// change notifications alone reload).
pub async fn watch_polling_every(app: Arc<App>, source: Source, applied: [u8; 32], poll: Duration) {
    reload_loop(app, source, applied, poll, true).await
}

/// The poll alone, without change notifications: what the workload did before it watched the
/// directories. Only `make bench` runs it, as the baseline the notified reload is measured against.
pub async fn poll_only(app: Arc<App>, source: Source, applied: [u8; 32], poll: Duration) {
    reload_loop(app, source, applied, poll, false).await
}

async fn reload_loop(app: Arc<App>, source: Source, mut applied: [u8; 32], poll: Duration, notified: bool) {
    let mut ticker = tokio::time::interval(poll);
    let (wake, mut woken) = tokio::sync::mpsc::channel(1);
    let dirs: Vec<&std::path::Path> =
        [app.settings.keyring_dir.as_deref(), source.config_dir()].into_iter().flatten().collect();
    let _watcher = if notified { watch_dirs(&dirs, wake) } else { None };
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            Some(()) = woken.recv() => {
                // The kubelet's swap is several events in a row; read once they have settled.
                tokio::time::sleep(SETTLE).await;
                while woken.try_recv().is_ok() {}
            }
        }
        let mutations = mutation_switch(&source);
        if mutations != app.mutations_enabled() {
            tracing::info!(target: "audit", event = "config_reload", mutation_tools_enabled = mutations);
            app.set_mutations(mutations);
        }
        reload_quota(&app, &source);
        match crate::authz::scope_ceiling(&source) {
            Ok(ceiling) if ceiling != app.policy.ceiling() => {
                tracing::info!(target: "audit", event = "config_reload", scope_ceiling = ?ceiling);
                app.policy.set_ceiling(ceiling);
            }
            Ok(_) => {}
            Err(error) => {
                app.metrics.reload_failures.inc();
                tracing::warn!(%error, "scope ceiling reload failed; keeping the ceiling in force");
            }
        }
        match load_keys(&app.settings, &source) {
            Ok((keys, digest)) if digest != applied => {
                tracing::info!(target: "audit", event = "keyring_reload", revision = keys.revision, keys = ?keys);
                app.metrics.keyring_revision.set(keys.revision as i64);
                app.auth.replace_keys(keys);
                applied = digest;
            }
            Ok(_) => {}
            Err(error) => {
                app.metrics.reload_failures.inc();
                tracing::warn!(%error, "key reload failed; keeping the keys in force");
            }
        }
        app.limits.retain_recent();
    }
}
