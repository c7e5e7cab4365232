//! The workload opens the mail domain the settings name (Maildir or Gmail, calendar source) and
//! exposes the domain's counters (Gmail quota units, calls, retries) in `/metrics`.

mod common;

use std::collections::HashMap;
use std::path::Path;

use axum::http::Request;
use common::*;
use mailagent_mail::api::ScanRequest;
use mailagent_service::settings::Source;

fn source(dir: &Path, extra: &[(&str, String)]) -> Source {
    write_keyring(dir);
    let mut env: HashMap<String, String> = [
        ("AGENT_API_KEY", API_KEY.to_string()),
        ("MAILAGENT_KEYRING_DIR", dir.display().to_string()),
        ("MAILAGENT_STATE_DIR", dir.join("state").display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in extra {
        env.insert(k.to_string(), v.clone());
    }
    Source::from_map(env)
}

async fn metrics(app: &std::sync::Arc<mailagent_service::app::App>) -> String {
    let (_, _, body) = send(app, Request::get("/metrics").body(axum::body::Body::empty()).unwrap()).await;
    body.as_str().unwrap().to_owned()
}

#[tokio::test]
async fn maildir_by_default_and_domain_counters_in_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("maildir");
    copy_sample_maildir(&maildir);
    // What the operator renders for the sample MailAgent (hack/samples/20-mailagent.yaml).
    let src = source(
        dir.path(),
        &[
            ("MAILDIR_PATH", maildir.display().to_string()),
            ("MAILBOX_PROVIDER", "maildir".into()),
            ("DIGEST_SCHEDULE", "0 8 * * MON".into()),
            ("DIGEST_RECIPIENT", "owner@example.com".into()),
            ("MAILAGENT_TIMEZONE", "Europe/Berlin".into()),
        ],
    );
    let (app, _) = mailagent_service::server::build(&src, None).unwrap();
    assert!(app.assistant.next_digest(chrono::Utc::now()).is_some(), "the digest schedule is wired");
    let bad = source(dir.path(), &[("MAILAGENT_TIMEZONE", "Mars/Olympus".into())]);
    let error = mailagent_service::server::build(&bad, None).unwrap_err();
    assert!(format!("{error:#}").contains("MAILAGENT_TIMEZONE"), "{error:#}");
    let scan = app.assistant.scan(ScanRequest::default()).await.unwrap();
    assert_eq!(scan.total_messages, 7);
    let text = metrics(&app).await;
    for line in ["mailagent_mail_messages_fetched_total 7", "mailagent_mail_quota_units_total 0"] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}

#[tokio::test]
async fn gmail_needs_token_json_and_is_wired_with_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("credentials");
    std::fs::create_dir_all(&credentials).unwrap();
    let gmail = |extra: &[(&str, String)]| {
        let mut all = vec![
            ("MAILBOX_PROVIDER", "gmail".to_string()),
            ("MAILAGENT_CREDENTIALS_DIR", credentials.display().to_string()),
            ("GMAIL_API_BASE_URL", "http://127.0.0.1:9/".to_string()),
        ];
        all.extend(extra.iter().cloned());
        source(dir.path(), &all)
    };
    let error = mailagent_service::server::build(&gmail(&[]), None).unwrap_err();
    assert!(format!("{error:#}").contains("token.json"), "{error:#}");

    std::fs::write(
        credentials.join("token.json"),
        r#"{"refresh_token":"1//secret-refresh","token_uri":"http://127.0.0.1:9/token","client_id":"c","client_secret":"s"}"#,
    )
    .unwrap();
    let (app, _) = mailagent_service::server::build(
        &gmail(&[
            ("CALENDAR_PROVIDER", "google".into()),
            ("GOOGLE_CALENDAR_BASE_URL", "http://127.0.0.1:9/calendar/v3".into()),
        ]),
        None,
    )
    .unwrap();
    let text = metrics(&app).await;
    assert!(text.contains("mailagent_mail_quota_units_total 0"), "{text}");
    assert!(text.contains("mailagent_mail_provider_retries_total 0"), "{text}");
    assert!(!format!("{:?}", app.settings).contains("secret-refresh"));
}
