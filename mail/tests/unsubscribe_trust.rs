//! Issue 13 against the Maildir provider: crafted list mail in a temporary Maildir. Only what the
//! mailbox's own mail server verified (`MAILDIR_AUTHSERV_ID`) runs unattended; a spoofed list is
//! listed with its reason, refused on execute, recorded, and sends nothing.

use std::path::Path;

use mailagent_mail::api::*;
use mailagent_mail::{AssistantOptions, maildir_assistant_with};

mod support;

use support::crafted::{NEVER_SHOWN, crafted};

const OUR_SERVER: &str = "mx.home.example";

fn maildir(root: &Path) -> std::path::PathBuf {
    let maildir = root.join("maildir");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    for (index, message) in crafted(OUR_SERVER).iter().enumerate() {
        std::fs::write(maildir.join(format!("cur/17630000{index:02}.M{index}P1.crafted:2,S")), &message.raw).unwrap();
    }
    maildir
}

fn outbox(state: &Path) -> Vec<String> {
    let Ok(listing) = std::fs::read_dir(state.join("outbox/new")) else { return Vec::new() };
    listing.map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap()).collect()
}

fn options(authserv_id: Option<&str>) -> AssistantOptions {
    AssistantOptions { maildir_authserv_id: authserv_id.map(str::to_string), ..AssistantOptions::default() }
}

#[tokio::test(flavor = "multi_thread")]
async fn spoofed_lists_are_listed_with_reasons_and_never_run() {
    let dir = tempfile::tempdir().unwrap();
    let (maildir, state) = (maildir(dir.path()), dir.path().join("state"));
    let assistant = maildir_assistant_with(&maildir, &state, options(Some(OUR_SERVER))).unwrap();
    let found = assistant.unsubscribe_candidates(CandidatesRequest::default()).await.unwrap();
    assert_eq!(found.candidates.len(), crafted(OUR_SERVER).len());
    for message in crafted(OUR_SERVER) {
        let candidate = found.candidates.iter().find(|c| c.key == message.key).expect(message.key);
        let Some(why) = message.refusal else { continue };
        for method in &candidate.methods {
            assert!(!method.automatic, "{}: {method:?}", message.key);
            assert!(method.reason.contains("needs a person"), "{}: {method:?}", message.key);
        }
        assert!(candidate.methods.iter().any(|m| m.reason.contains(why)), "{}: {:?}", message.key, candidate.methods);
        for (method, dry_run) in [(None, true), (None, false), (Some(candidate.methods[0].kind), false)] {
            let request = UnsubscribeRequest { candidate: message.key.into(), method, dry_run };
            let refused = assistant.unsubscribe(request).await;
            assert!(
                matches!(&refused, Err(DomainError::Refused(reason)) if reason.contains(why)),
                "{}: {refused:?}",
                message.key
            );
        }
    }
    assert!(outbox(&state).is_empty(), "a spoofed list made the mailbox send: {:?}", outbox(&state));
    assert!(!state.join("data/sent_unsubscribe_links.json").exists(), "no link was used");

    let records = std::fs::read_to_string(state.join("data/unsubscribed_methods.json")).unwrap();
    let recorded: serde_json::Value = serde_json::from_str(&records).unwrap();
    for message in crafted(OUR_SERVER).iter().filter(|m| m.refusal.is_some()) {
        let refusal = &recorded["refusals"][message.key];
        assert_eq!(refusal["outcome"], "manual_required", "{}: {records}", message.key);
        assert!(refusal["reason"].as_str().unwrap().contains(message.refusal.unwrap()), "{records}");
    }
    assert!(recorded["senders"].as_object().unwrap().is_empty(), "a refusal closes nothing: {records}");
    for secret in NEVER_SHOWN {
        assert!(!records.contains(secret), "{secret} in {records}");
    }
    // The candidates stay open: a person still has to act on them.
    let again = assistant.unsubscribe_candidates(CandidatesRequest::default()).await.unwrap();
    assert_eq!(again.candidates.len(), found.candidates.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_genuine_list_still_runs_and_sends_exactly_what_the_dry_run_showed() {
    let dir = tempfile::tempdir().unwrap();
    let (maildir, state) = (maildir(dir.path()), dir.path().join("state"));
    let assistant = maildir_assistant_with(&maildir, &state, options(Some(OUR_SERVER))).unwrap();
    let found = assistant.unsubscribe_candidates(CandidatesRequest::default()).await.unwrap();
    let genuine = found.candidates.iter().find(|c| c.key == "genuine.list.example").unwrap();
    assert!(genuine.dkim.covers_unsubscribe, "{:?}", genuine.dkim);
    assert_eq!(genuine.dkim.signing_domain.as_deref(), Some("list.example"));
    assert_eq!((genuine.methods[0].kind, genuine.methods[0].automatic), (MethodKind::Mailto, true));

    let request = UnsubscribeRequest { candidate: "genuine.list.example".into(), method: None, dry_run: true };
    let preview = assistant.unsubscribe(request.clone()).await.unwrap();
    let shown = preview.mailto.clone().unwrap();
    assert_eq!(
        shown,
        MailtoMessage {
            from: Some("me@localhost".into()),
            to: "leave@list.example".into(),
            subject: "unsubscribe me".into(),
            body: "remove me please".into(),
        }
    );
    assert!(outbox(&state).is_empty(), "a dry run sends nothing");
    let response = assistant.unsubscribe(UnsubscribeRequest { dry_run: false, ..request }).await.unwrap();
    assert_eq!(response.outcome, UnsubscribeOutcome::MailtoSent);
    assert_eq!(response.mailto.as_ref(), Some(&shown));

    let sent = outbox(&state);
    assert_eq!(sent.len(), 1);
    let parsed = mail_parser::MessageParser::default().parse(sent[0].as_bytes()).unwrap();
    let to: Vec<&str> = parsed.to().unwrap().iter().filter_map(|a| a.address()).collect();
    assert_eq!(to, ["leave@list.example"], "exactly one recipient");
    assert!(parsed.cc().is_none() && parsed.bcc().is_none());
    assert_eq!(parsed.subject(), Some("unsubscribe me"));
    assert_eq!(parsed.body_text(0).as_deref().map(str::trim), Some("remove me please"));
    let records = std::fs::read_to_string(state.join("data/unsubscribed_methods.json")).unwrap();
    let recorded: serde_json::Value = serde_json::from_str(&records).unwrap();
    let record = &recorded["senders"]["genuine.list.example"];
    assert_eq!(record["outcome"], "mailto_sent");
    assert_eq!(record["target"], response.target, "the stored address is the shown one");
    assert_eq!(response.target, format!("mailto:{}", to[0]), "and the sent one");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_configured_server_nothing_is_automatic() {
    let dir = tempfile::tempdir().unwrap();
    let (maildir, state) = (maildir(dir.path()), dir.path().join("state"));
    for trusted in [None, Some("mx.other.example")] {
        let assistant = maildir_assistant_with(&maildir, &state, options(trusted)).unwrap();
        let found = assistant.unsubscribe_candidates(CandidatesRequest::default()).await.unwrap();
        assert!(found.candidates.iter().all(|c| c.methods.iter().all(|m| !m.automatic)), "{trusted:?}");
        let request = UnsubscribeRequest { candidate: "genuine.list.example".into(), method: None, dry_run: false };
        assert!(matches!(assistant.unsubscribe(request).await, Err(DomainError::Refused(_))));
    }
    assert!(outbox(&state).is_empty());
}
