//! The whole assistant over the shipped sample Maildir (a copy, so the repo stays clean).

use std::path::{Path, PathBuf};

use chrono::DateTime;
use mailagent_mail::api::*;
use mailagent_mail::{AssistantOptions, maildir_assistant, maildir_assistant_with};

mod support;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn sample() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let maildir = dir.path().join("maildir");
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/maildir"), &maildir);
    let state = dir.path().join("state");
    (dir, maildir, state)
}

#[tokio::test(flavor = "multi_thread")]
async fn scan_triage_and_incremental_scan() {
    let (_dir, maildir, state) = sample();
    let assistant = maildir_assistant(&maildir, &state).unwrap();
    let first = assistant.scan(ScanRequest::default()).await.unwrap();
    assert_eq!((first.total_messages, first.fetched_messages, first.incremental), (7, 7, false));
    let count = |class| first.counts.iter().find(|c| c.class == class).map_or(0, |c| c.count);
    assert_eq!(count(MessageClass::Newsletter), 3, "the hostile sender has List-Unsubscribe but no bulk header");
    assert_eq!(count(MessageClass::Promotion), 1);
    assert_eq!(count(MessageClass::Personal), 1);
    assert_eq!(count(MessageClass::Transactional), 1);
    assert_eq!(count(MessageClass::Notification), 1);
    assert_eq!(first.top_senders[0].sender, "news@news.example.com");
    assert!(first.messages.iter().all(|m| !m.reasons.is_empty()));

    std::fs::write(
        maildir.join("new/1763000000.M9P1.added"),
        "From: ann@friends.example\r\nSubject: again\r\nDate: Wed, 11 Nov 2026 09:00:00 +0000\r\n\r\nhi\r\n",
    )
    .unwrap();
    let second = assistant.scan(ScanRequest::default()).await.unwrap();
    assert_eq!((second.total_messages, second.fetched_messages, second.incremental), (8, 1, true));
    let bad = assistant.scan(ScanRequest { max_messages: Some(0), ..ScanRequest::default() }).await;
    assert!(matches!(bad, Err(DomainError::InvalidInput(_))));
}

#[tokio::test(flavor = "multi_thread")]
async fn discovery_execution_and_never_twice() {
    let (_dir, maildir, state) = sample();
    // The sample mailbox is stamped by Gmail's receiving service, as a Maildir synced from Gmail is.
    let options = AssistantOptions { maildir_authserv_id: Some("mx.google.com".into()), ..AssistantOptions::default() };
    let assistant = maildir_assistant_with(&maildir, &state, options).unwrap();
    let found = assistant.unsubscribe_candidates(CandidatesRequest::default()).await.unwrap();
    let keys: Vec<&str> = found.candidates.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(keys, ["weekly.news.example.com", "deals@shop.example.org", "promo@hostile.example.net"]);
    let weekly = &found.candidates[0];
    assert!(weekly.dkim.covers_unsubscribe);
    assert_eq!(weekly.methods[0].kind, MethodKind::OneClick);
    assert!(!serde_json::to_string(&found).unwrap().contains("s3cr3t"), "tokens never leave the domain");

    // The shop's mailto has no DKIM and asks for a bcc: listed with its reasons, never run.
    let shop = &found.candidates[1];
    assert_eq!((shop.methods[0].kind, shop.methods[0].automatic), (MethodKind::Mailto, false));
    assert!(shop.methods[0].reason.contains("`bcc`"), "{:?}", shop.methods[0]);
    let dry = UnsubscribeRequest { candidate: "deals@shop.example.org".into(), method: None, dry_run: true };
    let refused = assistant.unsubscribe(dry.clone()).await;
    assert!(matches!(&refused, Err(DomainError::Refused(reason)) if reason.contains("`bcc`")), "{refused:?}");
    assert!(!state.join("data/sent_unsubscribe_links.json").exists(), "a dry run writes nothing");
    let refused = assistant.unsubscribe(UnsubscribeRequest { dry_run: false, ..dry }).await;
    assert!(matches!(&refused, Err(DomainError::Refused(reason)) if reason.contains("`bcc`")), "{refused:?}");
    assert!(!state.join("outbox/new").exists() || std::fs::read_dir(state.join("outbox/new")).unwrap().count() == 0);

    // The signed list's own mailto runs; the dry run shows the very message that is sent.
    let mailto = UnsubscribeRequest {
        candidate: "weekly.news.example.com".into(),
        method: Some(MethodKind::Mailto),
        dry_run: true,
    };
    let preview = assistant.unsubscribe(mailto.clone()).await.unwrap();
    assert_eq!(preview.outcome, UnsubscribeOutcome::WouldExecute);
    let message = preview.mailto.clone().expect("a mailto dry run shows its message");
    assert_eq!(preview.target, format!("mailto:{}", message.to));
    assert_eq!((message.to.as_str(), message.subject.as_str()), ("leave-weekly@news.example.com", "unsubscribe"));
    let real = UnsubscribeRequest { dry_run: false, ..mailto };
    let response = assistant.unsubscribe(real.clone()).await.unwrap();
    assert_eq!(response.outcome, UnsubscribeOutcome::MailtoSent);
    assert_eq!(response.mailto, preview.mailto, "the dry run showed exactly what was sent");
    let outbox: Vec<_> = std::fs::read_dir(state.join("outbox/new")).unwrap().collect();
    assert_eq!(outbox.len(), 1);
    let sent = std::fs::read_to_string(outbox[0].as_ref().unwrap().path()).unwrap();
    assert!(sent.contains("leave-weekly@news.example.com") && !sent.contains("elsewhere.example"), "{sent}");
    assert!(matches!(assistant.unsubscribe(real).await, Err(DomainError::Refused(_))), "never the same link twice");

    let hostile = UnsubscribeRequest { candidate: "promo@hostile.example.net".into(), method: None, dry_run: false };
    let refused = assistant.unsubscribe(hostile).await;
    assert!(matches!(&refused, Err(DomainError::Refused(reason)) if reason.contains("link-local")), "{refused:?}");
    let methods = std::fs::read_to_string(state.join("data/unsubscribed_methods.json")).unwrap();
    assert!(methods.contains("rejected_unsafe") && methods.contains("mailto_sent"), "{methods}");
    assert!(methods.contains("`bcc`") && !methods.contains("s3cr3t"), "refusals are recorded with reasons: {methods}");
    assert_eq!(assistant.metrics().unsubscribe_refused, 4, "two shop refusals, one reuse, one unsafe target");

    let missing = UnsubscribeRequest { candidate: "nobody@nowhere.example".into(), method: None, dry_run: true };
    assert!(matches!(assistant.unsubscribe(missing).await, Err(DomainError::NotFound(_))));
}

#[tokio::test(flavor = "multi_thread")]
async fn digest_and_availability() {
    let (_dir, maildir, state) = sample();
    let assistant = maildir_assistant(&maildir, &state).unwrap();
    let preview = assistant.digest(DigestRequest { dry_run: true }).await.unwrap();
    assert!(!preview.sent && preview.candidates == 3, "{preview:?}");
    assert!(preview.body.contains("weekly.news.example.com"));
    let sent = assistant.digest(DigestRequest { dry_run: false }).await.unwrap();
    assert!(sent.sent);
    assert_eq!(std::fs::read_dir(state.join("outbox/new")).unwrap().count(), 1);

    let free = assistant
        .meeting_intervals(MeetingIntervalsRequest {
            start: DateTime::parse_from_rfc3339("2026-11-24T00:00:00+01:00").unwrap(),
            end: DateTime::parse_from_rfc3339("2026-11-25T00:00:00+01:00").unwrap(),
            time_zone: Some("Europe/Berlin".into()),
            working_hours: None,
            duration_minutes: 30,
            buffer_before_minutes: 0,
            buffer_after_minutes: 0,
            limit: None,
        })
        .await
        .unwrap();
    let got = support::hhmm(&free.intervals);
    // Stand-up 09:30-09:45 and review 14:00-15:30 local are busy.
    assert_eq!(got, ["09:00-09:30", "09:45-14:00", "15:30-17:00"]);
    let bad = assistant
        .availability(AvailabilityRequest {
            start: DateTime::parse_from_rfc3339("2026-11-24T00:00:00Z").unwrap(),
            end: DateTime::parse_from_rfc3339("2026-11-25T00:00:00Z").unwrap(),
            time_zone: Some("Mars/Olympus".into()),
            working_hours: None,
        })
        .await;
    assert!(matches!(bad, Err(DomainError::InvalidInput(_))));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_schedule_survives_a_restart_and_never_sends_twice() {
    use chrono::{Duration, Utc};
    let (_dir, maildir, state) = sample();
    let options = || AssistantOptions { digest_schedule: Some("0 8 * * *".into()), ..AssistantOptions::default() };
    let start = Utc::now();
    let assistant = maildir_assistant_with(&maildir, &state, options()).unwrap();
    assert!(assistant.run_due_digest(start).await.unwrap().is_none(), "the first start owes nothing");
    let later = start + Duration::days(3);
    assert!(assistant.run_due_digest(later).await.unwrap().is_some_and(|d| d.sent));
    assert!(assistant.run_due_digest(later).await.unwrap().is_none());
    drop(assistant);
    let restarted = maildir_assistant_with(&maildir, &state, options()).unwrap();
    assert!(restarted.run_due_digest(later).await.unwrap().is_none(), "no double send after a restart");
    assert!(restarted.run_due_digest(later + Duration::days(1)).await.unwrap().is_some());
    assert_eq!(std::fs::read_dir(state.join("outbox/new")).unwrap().count(), 2);
    let bad = AssistantOptions { digest_schedule: Some("whenever".into()), ..AssistantOptions::default() };
    assert!(matches!(maildir_assistant_with(&maildir, &state, bad), Err(DomainError::InvalidInput(_))));
}
