//! Hot reload of the live subset: the mutation switch (config directory) and the keys (keyring
//! directory, `*_FILE` secrets). Polled, not inotify: the kubelet updates mounted ConfigMaps and
//! Secrets by swapping a `..data` symlink, which file watchers report unreliably across
//! filesystems; a content hash every few seconds is simple and never misses a swap.

use std::sync::Arc;
use std::time::Duration;

use mailagent_crds::contract::{env, fingerprint};
use sha2::{Digest, Sha256};

use crate::app::App;
use crate::auth::keys::{EnvSecrets, KeyError, KeySet};
use crate::settings::{Settings, SettingsError, Source, mutation_switch};

pub const INTERVAL: Duration = Duration::from_secs(2);

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

/// Polls until the process ends. A broken update keeps the previous values and is counted.
pub async fn watch(app: Arc<App>, source: Source, mut applied: [u8; 32]) {
    let mut ticker = tokio::time::interval(INTERVAL);
    loop {
        ticker.tick().await;
        let mutations = mutation_switch(&source);
        if mutations != app.mutations_enabled() {
            tracing::info!(target: "audit", event = "config_reload", mutation_tools_enabled = mutations);
            app.set_mutations(mutations);
        }
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
