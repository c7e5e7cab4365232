//! Issue 13 through the REST door: `execute` on a spoofed list (From and List-Id on the victim's
//! domain, no DKIM) answers with the reason and sends nothing; the Maildir's trusted mail server
//! is the `MAILDIR_AUTHSERV_ID` setting.

mod common;

use std::collections::HashMap;

use common::*;
use mailagent_service::settings::Source;
use serde_json::json;

const SPOOF: &str = "From: Victim News <news@victim.example>\r\nTo: me@localhost\r\nSubject: news\r\n\
Date: Mon, 16 Nov 2026 10:00:00 +0000\r\nList-Id: <news.victim.example>\r\n\
Authentication-Results: mx.attacker.example; dkim=pass header.d=victim.example\r\n\
List-Unsubscribe: <mailto:ceo@victim.example?subject=Invoice%20approved&body=pay%20now>\r\n\r\nhi\r\n";

#[tokio::test(flavor = "multi_thread")]
async fn rest_execute_on_a_spoofed_list_answers_why_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("maildir");
    copy_sample_maildir(&maildir);
    std::fs::write(maildir.join("new/1763300000.M1P1.spoof"), SPOOF).unwrap();
    write_keyring(dir.path());
    let env: HashMap<String, String> = [
        ("AUTH_MODE", "api_key".to_string()),
        ("AGENT_API_KEY", API_KEY.to_string()),
        ("MAILAGENT_KEYRING_DIR", dir.path().display().to_string()),
        ("MAILAGENT_STATE_DIR", dir.path().join("state").display().to_string()),
        ("MAILDIR_PATH", maildir.display().to_string()),
        ("MAILDIR_AUTHSERV_ID", "mx.google.com".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let (app, _) = mailagent_service::server::build(&Source::from_map(env), None).unwrap();
    app.set_mutations(true);
    let key = [("x-api-key", API_KEY)];

    let (status, _, listed) = send(&app, post("/v1/unsubscribe/candidates", &key, json!({}))).await;
    assert_eq!(status, 200, "{listed}");
    let spoof = listed["candidates"].as_array().unwrap().iter().find(|c| c["key"] == "news.victim.example").unwrap();
    assert_eq!(spoof["methods"][0]["automatic"], false, "{spoof}");

    let execute = json!({"candidate": "news.victim.example", "dry_run": false});
    let (status, _, body) = send(&app, post("/v1/unsubscribe/execute", &key, execute)).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "refused");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("no Authentication-Results from mx.google.com") && message.contains("needs a person"),
        "{message}"
    );
    assert!(!message.contains("Invoice"), "{message}");
    let outbox = dir.path().join("state/outbox/new");
    assert!(
        !outbox.exists() || std::fs::read_dir(&outbox).unwrap().count() == 0,
        "the spoofed list made the mailbox send"
    );
    let records = std::fs::read_to_string(dir.path().join("state/data/unsubscribed_methods.json")).unwrap();
    assert!(records.contains("news.victim.example") && records.contains("no Authentication-Results"), "{records}");

    // The genuine sample list still runs unattended (dry run: nothing leaves the test).
    let genuine = json!({"candidate": "weekly.news.example.com", "method": "mailto"});
    let (status, _, body) = send(&app, post("/v1/unsubscribe/execute", &key, genuine)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outcome"], "would_execute");
    assert_eq!(body["mailto"]["to"], "leave-weekly@news.example.com");
}
