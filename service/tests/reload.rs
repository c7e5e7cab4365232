//! The live subset changes without a restart: the mutation switch from the config directory and
//! the keyring from its directory; a broken keyring keeps the keys in force.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::json;

async fn eventually(mut check: impl FnMut() -> bool) {
    for _ in 0..40 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("condition not reached within 4 s");
}

/// An `api_key` workload reading `config` as its config directory and a fresh keyring in
/// `keyring`, with the source and key digest the reload loop starts from.
fn api_key_app(
    config: &std::path::Path,
    keyring: &std::path::Path,
) -> (Arc<mailagent_service::app::App>, mailagent_service::settings::Source, [u8; 32]) {
    write_keyring(keyring);
    let source = source_from(&[
        ("AUTH_MODE", "api_key"),
        ("MAILAGENT_CONFIG_DIR", config.to_str().unwrap()),
        ("MAILAGENT_KEYRING_DIR", keyring.to_str().unwrap()),
        ("RATE_LIMIT_BURST", "1000"),
    ]);
    let (app, digest) = mailagent_service::server::build(&source, Some(Arc::new(CannedAssistant))).unwrap();
    (app, source, digest)
}

#[tokio::test]
async fn mutation_switch_and_keyring_reload_without_restart() {
    let (config, keyring) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (app, source, digest) = api_key_app(config.path(), keyring.path());
    tokio::spawn(mailagent_service::reload::watch(app.clone(), source, digest));
    assert!(!app.mutations_enabled());

    std::fs::write(config.path().join("MCP_ENABLE_MUTATION_TOOLS"), "true").unwrap();
    eventually(|| app.mutations_enabled()).await;
    std::fs::write(config.path().join("MCP_ENABLE_MUTATION_TOOLS"), "tru").unwrap();
    eventually(|| !app.mutations_enabled()).await;

    let scan = || post("/v1/mail/scan", &[("x-api-key", SCAN_ONLY_KEY)], json!({}));
    assert_eq!(send(&app, scan()).await.0, 200);
    // Revoke the key in the mounted keyring: refused from the next poll on.
    let path = keyring.path().join("keyring.json");
    let revoked = std::fs::read_to_string(&path).unwrap().replacen("\"Active\"", "\"Revoked\"", 1);
    std::fs::write(&path, revoked).unwrap();
    eventually(|| app.auth.keys().api_keys.iter().any(|k| k.kid == "k-ci" && !k.state.accepted())).await;
    assert_eq!(send(&app, scan()).await.0, 401);
    // A broken document is refused and the previous keys stay in force.
    std::fs::write(&path, "{ not json").unwrap();
    eventually(|| app.metrics.render().contains("mailagent_reload_failures_total 1")).await;
    assert_eq!(app.auth.keys().revision, 7);
}

#[tokio::test]
async fn a_remembered_token_stops_working_when_its_key_is_revoked() {
    use mailagent_service::auth::keys::{EnvSecrets, KeySet};
    let (app, dir) = app("jwt", &[]);
    let bearer = format!("Bearer {}", rs256("rsa1", &claims("mail:scan")));
    let scan = || post("/v1/mail/scan", &[("authorization", bearer.as_str())], json!({}));
    assert_eq!(send(&app, scan()).await.0, 200);
    assert_eq!(send(&app, scan()).await.0, 200);
    assert_eq!(app.auth.cached_tokens(), 1, "verified once, remembered");
    // Revoke rsa1 and swap the key set in as the watcher does.
    let path = dir.path().join("keyring.json");
    let mut keyring: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    keyring["jwtKeys"][0]["state"] = json!("Revoked");
    std::fs::write(&path, keyring.to_string()).unwrap();
    let secrets = EnvSecrets { api_key: Some(API_KEY.into()), jwt_secret: Some(JWT_SECRET.into()) };
    let keys = KeySet::build(KeySet::read_keyring(dir.path()).unwrap().as_ref(), &secrets).unwrap();
    app.auth.replace_keys(keys);
    let (status, headers, _) = send(&app, scan()).await;
    assert_eq!((status.as_u16(), headers["x-auth-failure"].to_str().unwrap()), (401, "revoked_key"));
}

/// Lays out `dir` the way the kubelet's atomic writer does: the file is a symlink through `..data`,
/// which points at a timestamped directory; an update writes a new directory and renames a fresh
/// `..data` symlink over the old one.
#[tokio::test]
async fn a_kubelet_symlink_swap_reloads_without_waiting_for_the_poll() {
    let keyring = tempfile::tempdir().unwrap();
    let mut doc: serde_json::Value = {
        let scratch = tempfile::tempdir().unwrap();
        write_keyring(scratch.path());
        serde_json::from_slice(&std::fs::read(scratch.path().join("keyring.json")).unwrap()).unwrap()
    };
    kubelet_publish(keyring.path(), 1, &doc);
    let source = source_from(&[
        ("AUTH_MODE", "api_key"),
        ("MAILAGENT_KEYRING_DIR", keyring.path().to_str().unwrap()),
        ("RATE_LIMIT_BURST", "1000"),
    ]);
    let (app, digest) = mailagent_service::server::build(&source, Some(Arc::new(CannedAssistant))).unwrap();
    // A poll an hour apart: whatever reloads within the test comes from the change notification.
    let hour = Duration::from_secs(3600);
    tokio::spawn(mailagent_service::reload::watch_polling_every(app.clone(), source, digest, hour));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let scan = || post("/v1/mail/scan", &[("x-api-key", SCAN_ONLY_KEY)], json!({}));
    assert_eq!(send(&app, scan()).await.0, 200);

    doc["revision"] = json!(8);
    doc["apiKeys"][0]["state"] = json!("Revoked");
    let swapped = std::time::Instant::now();
    kubelet_publish(keyring.path(), 2, &doc);
    eventually(|| app.auth.keys().revision == 8).await;
    eprintln!("keyring swap to reload: {:?}", swapped.elapsed());
    let (status, headers, _) = send(&app, scan()).await;
    assert_eq!((status.as_u16(), headers["x-auth-failure"].to_str().unwrap()), (401, "revoked_key"));
}

/// The operator re-renders an agent's Gmail quota share and scan delay as its quota group grows
/// or shrinks; the running workload follows from its config directory, and a value outside the
/// contract's grammar keeps the one in force.
#[tokio::test]
async fn the_quota_share_and_scan_delay_follow_the_config_directory() {
    let (config, keyring) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(config.path().join("GMAIL_QUOTA_UNITS_PER_MINUTE"), "15000").unwrap();
    let (app, source, digest) = api_key_app(config.path(), keyring.path());
    let mail = app.settings.mail.clone();
    // Clones share the cell: this is what the Gmail pacer and the scan loop hold.
    let (share, delay) = (mail.gmail_units_per_minute.clone(), mail.scan_delay_seconds.clone());
    assert_eq!((share.get(), delay.get()), (15_000, 0));
    tokio::spawn(mailagent_service::reload::watch(app.clone(), source, digest));

    std::fs::write(config.path().join("GMAIL_QUOTA_UNITS_PER_MINUTE"), "1200").unwrap();
    std::fs::write(config.path().join("SCAN_SCHEDULE_DELAY_SECONDS"), "1020").unwrap();
    eventually(|| share.get() == 1_200 && delay.get() == 1_020).await;
    std::fs::write(config.path().join("GMAIL_QUOTA_UNITS_PER_MINUTE"), "50").unwrap();
    eventually(|| app.metrics.render().contains("mailagent_reload_failures_total")).await;
    eventually(|| !app.metrics.render().contains("mailagent_reload_failures_total 0")).await;
    assert_eq!(share.get(), 1_200, "below one send's cost: refused, the share in force stays");
    // The operator's cap and the Gmail pacer's default are the same per-user quota.
    assert_eq!(
        mailagent_crds::quota::USER_UNITS_PER_MINUTE,
        mailagent_mail::provider::gmail_shapes::USER_UNITS_PER_MINUTE
    );
}
