//! Gmail API JSON shapes the Gmail provider reads, and the quota it must stay inside.
//!
//! These are the documented response shapes of `users.messages.list`, `users.messages.get` with
//! `format=metadata`, and `users.history.list`. The emulator used in the peer tests drops
//! `List-Unsubscribe` and friends from `metadata`; real Gmail returns them, so the production
//! path is covered by the contract tests here on documented JSON.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::History;
use crate::message::{MessageMeta, NEEDED_HEADERS};

/// Per-user quota: 15,000 units per minute.
pub const USER_UNITS_PER_MINUTE: u32 = 15_000;
/// The same quota as Gmail's older documentation states it, a moving average of 250 units per
/// second: pacing to it too avoids bursting a whole minute's units into a few seconds, which
/// Gmail's per-user concurrency limit answers with 429.
pub const USER_UNITS_PER_SECOND: u32 = 250;

/// Quota cost of each call the provider makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `users.messages.list`.
    List,
    /// `users.messages.get`.
    Get,
    /// `users.history.list`.
    History,
    /// `users.messages.send`.
    Send,
    /// `users.getProfile`.
    Profile,
}

impl Call {
    /// Units charged.
    pub const fn units(self) -> u32 {
        match self {
            Self::List | Self::Get => 5,
            Self::History => 2,
            Self::Send => 100,
            Self::Profile => 1,
        }
    }
}

/// The `users.messages.get` query for metadata with only the headers triage reads.
pub fn metadata_query() -> Vec<(&'static str, &'static str)> {
    let mut query = vec![("format", "metadata")];
    query.extend(NEEDED_HEADERS.iter().map(|h| ("metadataHeaders", *h)));
    query
}

/// `users.messages.list` response.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse {
    /// Ids on this page.
    #[serde(default)]
    pub messages: Vec<MessageRef>,
    /// The next page, if any.
    pub next_page_token: Option<String>,
}

/// A message reference.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageRef {
    /// Message id.
    pub id: String,
}

/// `users.messages.get` response (`format=metadata`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetadataMessage {
    /// Message id.
    pub id: String,
    /// Labels, including `CATEGORY_*`.
    #[serde(default)]
    pub label_ids: Vec<String>,
    /// The mailbox's history id when fetched.
    pub history_id: Option<String>,
    /// Top-level part with the requested headers.
    pub payload: Option<Payload>,
    /// The whole message, base64url (`format=raw` only).
    #[serde(default)]
    pub raw: Option<String>,
}

/// The message payload, headers only.
#[derive(Debug, Deserialize)]
pub struct Payload {
    /// Headers in message order.
    #[serde(default)]
    pub headers: Vec<HeaderPair>,
}

/// One header.
#[derive(Debug, Deserialize)]
pub struct HeaderPair {
    /// Field name.
    pub name: String,
    /// Field value, unfolded by Gmail.
    pub value: String,
}

impl MetadataMessage {
    /// The header view.
    pub fn into_meta(self) -> MessageMeta {
        let headers = self.payload.map(|p| p.headers).unwrap_or_default();
        MessageMeta::from_header_pairs(
            self.id,
            self.label_ids,
            headers.iter().map(|h| (h.name.as_str(), h.value.as_str())),
        )
    }
}

/// `users.getProfile` response.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// The mailbox address.
    pub email_address: Option<String>,
    /// The mailbox's current history id (a uint64 in decimal).
    pub history_id: Option<String>,
}

/// Google's error body: `{"error": {"code": 429, "status": "...", "errors": [{"reason": "..."}]}}`.
pub fn error_reason(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value
        .pointer("/error/errors/0/reason")
        .or_else(|| value.pointer("/error/status"))
        .and_then(|r| r.as_str())
        .map(str::to_string)
}

/// `users.history.list` response.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryResponse {
    /// Change records.
    #[serde(default)]
    pub history: Vec<HistoryRecord>,
    /// The mailbox's current history id.
    pub history_id: String,
    /// The next page, if any.
    pub next_page_token: Option<String>,
}

/// One change record.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryRecord {
    /// Messages added.
    #[serde(default)]
    pub messages_added: Vec<Change>,
    /// Messages deleted.
    #[serde(default)]
    pub messages_deleted: Vec<Change>,
}

/// A change's message.
#[derive(Debug, Deserialize)]
pub struct Change {
    /// The message.
    pub message: MessageRef,
}

/// Folds history pages into a delta; `status` 404 means the start id expired.
pub fn history_delta(status: u16, pages: &[HistoryResponse]) -> History {
    if status == 404 {
        return History::Expired;
    }
    let (mut added, mut removed) = (Vec::new(), Vec::new());
    for record in pages.iter().flat_map(|p| &p.history) {
        added.extend(record.messages_added.iter().map(|c| c.message.id.clone()));
        removed.extend(record.messages_deleted.iter().map(|c| c.message.id.clone()));
    }
    added.retain(|id| !removed.contains(id));
    let checkpoint = pages.last().map(|p| p.history_id.clone()).unwrap_or_default();
    History::Delta { added, removed, checkpoint }
}

/// Paces calls to stay inside the per-user quota over any sliding minute.
#[derive(Debug)]
pub struct QuotaPacer {
    limit: u32,
    window: Duration,
    spent: VecDeque<(Instant, u32)>,
    total: u64,
}

impl QuotaPacer {
    /// A pacer for `limit` units per `window`.
    pub fn new(limit: u32, window: Duration) -> Self {
        Self { limit, window, spent: VecDeque::new(), total: 0 }
    }

    /// Changes the limit; what was spent in the window still counts against the new one.
    pub fn set_limit(&mut self, limit: u32) {
        self.limit = limit;
    }

    /// How long to wait before spending `units` at `now` (zero when it fits now); records the
    /// spend as happening after that wait.
    pub fn reserve(&mut self, units: u32, now: Instant) -> Duration {
        let wait = self.wait_for(units, now);
        self.record(units, now + wait);
        wait
    }

    /// How long to wait before `units` fit, without recording anything.
    pub fn wait_for(&mut self, units: u32, now: Instant) -> Duration {
        while self.spent.front().is_some_and(|(at, _)| now.duration_since(*at) >= self.window) {
            self.spent.pop_front();
        }
        let mut in_window: u32 = self.spent.iter().map(|(_, u)| u).sum();
        let mut wait = Duration::ZERO;
        let mut index = 0;
        while in_window + units > self.limit && index < self.spent.len() {
            let (at, spent) = self.spent[index];
            wait = (at + self.window).saturating_duration_since(now);
            in_window -= spent;
            index += 1;
        }
        wait
    }

    /// Records `units` spent at `at` (not before any earlier record).
    pub fn record(&mut self, units: u32, at: Instant) {
        let at = self.spent.back().map_or(at, |(last, _)| at.max(*last));
        self.spent.push_back((at, units));
        self.total += u64::from(units);
    }

    /// Units spent since creation.
    pub fn total(&self) -> u64 {
        self.total
    }
}

/// Backoff before retry `attempt` (0-based) after a 429 or 5xx: exponential from 1 s, capped at
/// 32 s, honouring `Retry-After` when the server sent one.
pub fn backoff(attempt: u32, retry_after: Option<Duration>) -> Duration {
    let exponential = Duration::from_secs(1u64 << attempt.min(5));
    retry_after.map_or(exponential, |hint| hint.max(exponential).min(Duration::from_secs(60)))
}

/// Whether a status is worth retrying.
pub fn retryable(status: u16) -> bool {
    status == 429 || (500..600).contains(&status)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Shape from developers.google.com/gmail/api/reference/rest/v1/users.messages/get.
    const METADATA: &str = r#"{
      "id": "18c2f0a1b2c3d4e5", "threadId": "18c2f0a1b2c3d4e5",
      "labelIds": ["INBOX", "CATEGORY_PROMOTIONS", "UNREAD"],
      "snippet": "Big sale", "historyId": "987654", "internalDate": "1762000000000", "sizeEstimate": 5120,
      "payload": {"partId": "", "mimeType": "multipart/alternative", "filename": "",
        "headers": [
          {"name": "Authentication-Results", "value": "mx.google.com; dkim=pass header.i=@shop.example header.s=s1; spf=pass"},
          {"name": "DKIM-Signature", "value": "v=1; a=rsa-sha256; d=shop.example; s=s1; h=from:subject:list-unsubscribe:list-unsubscribe-post; bh=x; b=y"},
          {"name": "From", "value": "Shop <deals@shop.example>"},
          {"name": "Subject", "value": "Big sale"},
          {"name": "Date", "value": "Sun, 01 Nov 2026 12:26:40 +0000"},
          {"name": "List-Unsubscribe", "value": "<https://shop.example/u/abc>, <mailto:u@shop.example>"},
          {"name": "List-Unsubscribe-Post", "value": "List-Unsubscribe=One-Click"}
        ]}
    }"#;

    #[test]
    fn metadata_message_becomes_a_candidate_with_proof() {
        let message: MetadataMessage = serde_json::from_str(METADATA).unwrap();
        let meta = message.into_meta();
        assert_eq!(meta.from, "deals@shop.example");
        assert!(meta.labels.contains(&"CATEGORY_PROMOTIONS".to_string()));
        let candidates = crate::candidates::discover([&meta], Some(crate::dkim::GMAIL_AUTHSERV_ID));
        assert_eq!(candidates[0].view.methods[0].kind, crate::api::MethodKind::OneClick);
        assert!(candidates[0].view.dkim.covers_unsubscribe);
        assert_eq!(crate::triage::classify(&meta).0, crate::api::MessageClass::Promotion);
    }

    #[test]
    fn list_and_history_shapes() {
        let list: ListResponse = serde_json::from_str(r#"{"messages":[{"id":"a","threadId":"a"},{"id":"b","threadId":"b"}],"nextPageToken":"p2","resultSizeEstimate":2}"#).unwrap();
        assert_eq!(list.messages.len(), 2);
        assert_eq!(list.next_page_token.as_deref(), Some("p2"));
        let empty: ListResponse = serde_json::from_str(r#"{"resultSizeEstimate":0}"#).unwrap();
        assert!(empty.messages.is_empty());
        let page: HistoryResponse = serde_json::from_str(
            r#"{"history":[
            {"id":"1","messages":[{"id":"n1"}],"messagesAdded":[{"message":{"id":"n1","labelIds":["INBOX"]}}]},
            {"id":"2","messagesAdded":[{"message":{"id":"n2"}}],"messagesDeleted":[{"message":{"id":"old"}}]},
            {"id":"3","messagesDeleted":[{"message":{"id":"n2"}}]}],"historyId":"1000"}"#,
        )
        .unwrap();
        assert_eq!(
            history_delta(200, &[page]),
            History::Delta {
                added: vec!["n1".into()],
                removed: vec!["old".into(), "n2".into()],
                checkpoint: "1000".into(),
            }
        );
        assert_eq!(history_delta(404, &[]), History::Expired);
    }

    #[test]
    fn metadata_asks_only_for_needed_headers() {
        let query = metadata_query();
        assert_eq!(query[0], ("format", "metadata"));
        assert!(query.contains(&("metadataHeaders", "List-Unsubscribe-Post")));
        assert_eq!(query.len(), 1 + NEEDED_HEADERS.len());
    }

    #[test]
    fn pacing_keeps_any_minute_under_the_quota() {
        let mut pacer = QuotaPacer::new(USER_UNITS_PER_MINUTE, Duration::from_secs(60));
        let start = Instant::now();
        let mut clock = start;
        // 4,000 gets (20,000 units) cannot all fit in the first minute.
        for _ in 0..4_000 {
            clock += pacer.reserve(Call::Get.units(), clock);
        }
        assert_eq!(pacer.total(), 20_000);
        let elapsed = clock.duration_since(start);
        assert!(elapsed >= Duration::from_secs(60), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(61), "{elapsed:?}");
    }

    #[test]
    fn retries_back_off() {
        assert!(retryable(429) && retryable(503) && !retryable(404) && !retryable(400));
        assert_eq!(backoff(0, None), Duration::from_secs(1));
        assert_eq!(backoff(3, None), Duration::from_secs(8));
        assert_eq!(backoff(10, None), Duration::from_secs(32));
        assert_eq!(backoff(0, Some(Duration::from_secs(5))), Duration::from_secs(5));
    }
}
