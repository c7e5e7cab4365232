//! The provider test suite every [`MailProvider`] passes: the Maildir one in `cargo test`, the
//! Gmail one against the Google emulator (`hack/peers/mail/run.sh`).
//!
//! It lives in the library (it is small) so both test crates call the same code.

use async_trait::async_trait;

use super::{History, MailProvider};
use crate::message::MessageMeta;

/// A mailbox the suite can put mail into and read sent mail from. It must start empty.
#[async_trait]
pub trait Fixture: Send + Sync {
    /// The provider under test.
    fn provider(&self) -> &dyn MailProvider;
    /// Delivers a raw message into the inbox.
    async fn deliver(&self, raw: &[u8]);
    /// Header views of the messages sent so far through the provider.
    async fn sent(&self) -> Vec<MessageMeta>;
}

fn message(from: &str, subject: &str, extra: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: owner@mail.example\r\nSubject: {subject}\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\
         Message-ID: <{}@suite.example>\r\n{extra}\r\nbody of {subject}\r\n",
        subject.replace(' ', "-")
    )
    .into_bytes()
}

/// Runs the suite; panics with a message naming the failed expectation.
pub async fn run(fixture: &dyn Fixture) {
    let provider = fixture.provider();
    let name = provider.name();
    assert!(provider.list_ids(None, 100).await.unwrap().is_empty(), "{name}: the fixture must start empty");

    fixture.deliver(&message("Ann <Ann@Friends.Example>", "lunch tomorrow", "")).await;
    fixture.deliver(&message("News <news@news.example.com>", "weekly issue", "Precedence: list\r\n")).await;
    fixture.deliver(&message("Shop <deals@shop.example.org>", "big sale", "")).await;

    let ids = provider.list_ids(None, 100).await.unwrap();
    assert_eq!(ids.len(), 3, "{name}: list_ids sees every delivered message");
    assert_eq!(provider.list_ids(None, 2).await.unwrap().len(), 2, "{name}: list_ids honours max");
    let mut metas = provider.fetch(&ids).await.unwrap();
    assert_eq!(metas.len(), 3, "{name}: fetch returns each listed message");
    metas.sort_by(|a, b| a.subject.cmp(&b.subject));
    let subjects: Vec<&str> = metas.iter().map(|m| m.subject.as_str()).collect();
    assert_eq!(subjects, ["big sale", "lunch tomorrow", "weekly issue"], "{name}: subjects");
    let ann = metas.iter().find(|m| m.subject == "lunch tomorrow").unwrap();
    assert_eq!(ann.from, "ann@friends.example", "{name}: sender address lower-cased");
    assert!(ann.date.is_some(), "{name}: Date parsed");
    assert!(metas.iter().all(|m| m.labels.iter().any(|l| l == "INBOX")), "{name}: inbox messages carry INBOX");
    assert!(metas.iter().all(|m| ids.contains(&m.id)), "{name}: ids round-trip");

    let gone = provider.fetch(&["no-such-message-id".to_string()]).await.unwrap();
    assert!(gone.is_empty(), "{name}: a missing id is skipped, not an error");

    // Incremental: what arrives after a checkpoint is all a history query returns.
    let checkpoint = provider.checkpoint().await.unwrap();
    fixture.deliver(&message("Bob <bob@friends.example>", "late reply", "")).await;
    let after = provider.list_ids(None, 100).await.unwrap();
    assert_eq!(after.len(), 4, "{name}: the new message is listed");
    let new_id = after.iter().find(|id| !ids.contains(id)).cloned().unwrap();
    if let Some(checkpoint) = checkpoint {
        match provider.history(&checkpoint).await.unwrap() {
            History::Delta { added, removed, checkpoint: next } => {
                assert_eq!(added, std::slice::from_ref(&new_id), "{name}: history names exactly the new message");
                assert!(removed.is_empty(), "{name}: nothing removed");
                assert_ne!(next, checkpoint, "{name}: the checkpoint moves on");
            }
            History::Expired => panic!("{name}: a fresh checkpoint must not be expired"),
            History::Unsupported => {}
        }
    } else {
        assert_eq!(provider.history("0").await.unwrap(), History::Unsupported, "{name}: no checkpoint, no history");
    }

    // Sending: the message leaves through the provider and is not delivered to the inbox.
    let raw = crate::outgoing::plain_message(
        Some("owner@mail.example"),
        "leave@news.example.com",
        "unsubscribe",
        "please remove me",
    );
    let sent_id = provider.send_raw(raw).await.unwrap();
    assert!(!sent_id.is_empty(), "{name}: send returns an id");
    let sent = fixture.sent().await;
    assert!(
        sent.iter().any(|m| m.subject == "unsubscribe" && m.auto_submitted.as_deref() == Some("auto-generated")),
        "{name}: the sent message is visible with its headers: {sent:?}"
    );
    assert_eq!(provider.list_ids(None, 100).await.unwrap().len(), 4, "{name}: sent mail is not in the inbox");
}
