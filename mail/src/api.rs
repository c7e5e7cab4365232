//! The domain's public interface: one request and one response type per capability, the
//! [`Assistant`] trait every front door (REST, A2A, MCP) calls, and [`DomainError`].
//!
//! Every type derives `serde`, `schemars` and `utoipa` so the doors derive tool input schemas and
//! OpenAPI text from the doc comments here; keep them written for the person calling the tool.
//!
//! Interface only: the implementation and its constructors live in `assistant` (re-exported at
//! the crate root), so this module depends on nothing else in the crate.

use async_trait::async_trait;
use chrono::{DateTime, FixedOffset, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What went wrong, sorted by who can fix it; each door maps the kind to its own status code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The caller sent something unusable (a bad time zone, an empty window, an unknown field
    /// value). Retrying the same request will fail the same way.
    #[error("invalid request: {0}")]
    InvalidInput(String),
    /// The thing the caller named (a candidate, a calendar) does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The mailbox or calendar provider (or a state file) failed for now (throttled, 5xx, network,
    /// I/O); retrying later may help.
    #[error("provider failure: {0}")]
    Provider(String),
    /// The mailbox owner's consent is gone (a revoked or expired refresh token, refused
    /// credentials): retrying will fail the same way until a person runs the consent flow again.
    #[error("re-consent required: {0}")]
    ReconsentRequired(String),
    /// The provider refused the request for good (forbidden, malformed, misconfigured): retrying
    /// will fail the same way until the configuration changes.
    #[error("provider refused the request: {0}")]
    ProviderRejected(String),
    /// A mutation was refused on purpose: an unsafe unsubscribe target, a link already used,
    /// mutations switched off. The refusal is recorded; retrying will be refused again.
    #[error("refused: {0}")]
    Refused(String),
}

impl DomainError {
    /// True when the caller's request, not the service, is at fault.
    pub fn is_caller_fault(&self) -> bool {
        matches!(self, Self::InvalidInput(_) | Self::NotFound(_) | Self::Refused(_))
    }
}

/// How a message was classified by triage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageClass {
    /// Written by a person to the user.
    Personal,
    /// A mailing list or newsletter the user subscribed to (`List-Id`, `List-Unsubscribe`).
    Newsletter,
    /// Marketing mail (Gmail's promotions category, bulk precedence with promotional signals).
    Promotion,
    /// Automated notices from services (no-reply senders, social and update categories).
    Notification,
    /// Receipts, invoices, shipping and account mail that matters but needs no reply.
    Transactional,
}

/// Input of `mail:scan`: scan the mailbox and classify what is there.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScanRequest {
    /// Provider search query (Gmail search syntax; ignored by the Maildir provider). Empty
    /// means the whole inbox outside spam and trash.
    #[serde(default)]
    pub query: Option<String>,
    /// Scan at most this many messages (newest first). Defaults to 500, at most 10,000.
    #[serde(default)]
    #[schemars(range(min = 1, max = 10_000))]
    #[schema(minimum = 1, maximum = 10_000)]
    pub max_messages: Option<u32>,
    /// Force a full scan instead of an incremental one from the last scan's checkpoint.
    #[serde(default)]
    pub full: bool,
    /// Include per-message explanations for at most this many messages (default 50, max 1,000).
    #[serde(default)]
    #[schemars(range(min = 1, max = 1_000))]
    #[schema(minimum = 1, maximum = 1_000)]
    pub explain_limit: Option<u32>,
}

/// How many scanned messages fell into one class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub struct ClassCount {
    /// The class.
    pub class: MessageClass,
    /// Messages in that class.
    pub count: u64,
}

/// One sender and how much mail they sent in the scanned set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub struct SenderCount {
    /// The sender's address, lower-cased.
    pub sender: String,
    /// Messages from that sender.
    pub count: u64,
    /// The class most of that sender's messages received.
    pub class: MessageClass,
}

/// Why one message was classified the way it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub struct MessageTriage {
    /// The provider's message id.
    pub id: String,
    /// The sender's address.
    pub from: String,
    /// The subject line (may be empty).
    pub subject: String,
    /// When the message was sent, if its `Date` header could be read.
    pub date: Option<DateTime<Utc>>,
    /// The chosen class.
    pub class: MessageClass,
    /// The header evidence behind the class, strongest first (for example
    /// "List-Id present: <news.example.com>").
    pub reasons: Vec<String>,
}

/// Output of `mail:scan`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub struct ScanResponse {
    /// Messages known after this scan (previously scanned plus new ones).
    pub total_messages: u64,
    /// Messages fetched from the provider by this scan.
    pub fetched_messages: u64,
    /// True when the scan continued from the previous checkpoint instead of starting over.
    pub incremental: bool,
    /// Why a full scan ran when an incremental one was possible (for example an expired Gmail
    /// history id); absent otherwise.
    pub full_scan_reason: Option<String>,
    /// Message counts per class, over every known message.
    pub counts: Vec<ClassCount>,
    /// The busiest senders, most messages first (at most 20).
    pub top_senders: Vec<SenderCount>,
    /// Per-message explanations, newest first, capped by `explain_limit`.
    pub messages: Vec<MessageTriage>,
    /// Provider quota units this scan spent (Gmail units; 0 for Maildir).
    pub quota_units: u64,
}

/// Input of `unsubscribe:read`: list unsubscribe candidates from the last scan.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CandidatesRequest {
    /// Return at most this many candidates (default 50, max 1,000), most frequent first.
    #[serde(default)]
    #[schemars(range(min = 1, max = 1_000))]
    #[schema(minimum = 1, maximum = 1_000)]
    pub limit: Option<u32>,
    /// Only senders with at least this many messages (default 1, at most 1,000,000).
    #[serde(default)]
    #[schemars(range(min = 1, max = 1_000_000))]
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub min_messages: Option<u32>,
    /// Include candidates already unsubscribed (default false).
    #[serde(default)]
    pub include_done: bool,
}

/// How an unsubscribe can be carried out, in the order they are preferred.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MethodKind {
    /// RFC 8058 one-click: an HTTPS POST with body `List-Unsubscribe=One-Click`.
    OneClick,
    /// RFC 2369 mailto: a message sent from the user's mailbox to the list address.
    Mailto,
    /// A web page a person must open and confirm; never run automatically.
    Manual,
}

/// One way to unsubscribe from a candidate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub struct UnsubscribeMethod {
    /// Kind of method.
    pub kind: MethodKind,
    /// 1 is best. One-click with DKIM proof ranks above one-click without it, then mailto, then
    /// manual links.
    pub rank: u32,
    /// Where it goes, with path, query and tokens redacted (`https://host/…`,
    /// `mailto:leave@host`).
    pub target: String,
    /// True when the service may execute it unattended: the mailbox provider verified a DKIM
    /// signature of the sender's domain covering the unsubscribe headers (for mailto, also a single
    /// clean address in the signer's domain). Otherwise `reason` says why a person is needed.
    pub automatic: bool,
    /// Why it has this rank.
    pub reason: String,
}

/// Evidence from headers that the unsubscribe headers were signed by the sender (RFC 8058 §4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub struct DkimProof {
    /// True when the mailbox provider's own `Authentication-Results` says `dkim=pass` for a
    /// signature of the sender's domain whose `h=` tag covers every `List-Unsubscribe` and
    /// `List-Unsubscribe-Post` field.
    pub covers_unsubscribe: bool,
    /// The `d=` domain of the passing signature, when there is one.
    pub signing_domain: Option<String>,
    /// What was found, in words.
    pub detail: String,
}

/// What was last done for a candidate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub struct PastAction {
    /// The method used.
    pub method: MethodKind,
    /// The outcome recorded.
    pub outcome: UnsubscribeOutcome,
    /// When it was done.
    pub at: DateTime<Utc>,
}

/// A sender or list the user might unsubscribe from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub struct UnsubscribeCandidate {
    /// Stable key naming this candidate in `unsubscribe:execute` (the `List-Id`, else the sender
    /// address).
    pub key: String,
    /// The sender address of the newest message.
    pub sender: String,
    /// The `List-Id`, when the mail carries one.
    pub list_id: Option<String>,
    /// Messages seen from this sender or list.
    pub message_count: u64,
    /// Average messages per week between first and last seen (at least one week).
    pub per_week: f64,
    /// Date of the oldest message seen.
    pub first_seen: Option<DateTime<Utc>>,
    /// Date of the newest message seen.
    pub last_seen: Option<DateTime<Utc>>,
    /// Ways to unsubscribe, best first.
    pub methods: Vec<UnsubscribeMethod>,
    /// DKIM evidence for the newest message's unsubscribe headers.
    pub dkim: DkimProof,
    /// The last recorded unsubscribe for this candidate, if any.
    pub done: Option<PastAction>,
}

/// Output of `unsubscribe:read`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub struct CandidatesResponse {
    /// Candidates, most messages first.
    pub candidates: Vec<UnsubscribeCandidate>,
    /// Messages the candidates were drawn from (the last scan's known set).
    pub scanned_messages: u64,
}

/// Input of `unsubscribe:execute` (a mutation).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnsubscribeRequest {
    /// The candidate `key` from `unsubscribe:read`.
    #[schemars(regex(pattern = r"\S"))]
    #[schema(pattern = r"\S")]
    pub candidate: String,
    /// Use this method instead of the best automatic one. `manual` is never executed.
    #[serde(default)]
    pub method: Option<MethodKind>,
    /// Report what would happen without contacting anyone or writing state. Defaults to true:
    /// set `false` to act.
    #[serde(default = "default_true")]
    pub dry_run: bool,
}

fn default_true() -> bool {
    true
}

/// How an unsubscribe attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnsubscribeOutcome {
    /// Dry run: nothing was contacted.
    WouldExecute,
    /// The one-click endpoint answered 200, 202 or 204 to the RFC 8058 POST.
    OneClickAccepted,
    /// The unsubscribe mail was handed to the provider for sending.
    MailtoSent,
    /// Only a person can finish this (a web page, a redirect, a non-compliant answer).
    ManualRequired,
    /// The attempt was made and failed (timeout, 4xx/5xx, send error).
    Failed,
    /// The target was unsafe (not https, private or metadata address, ...) and was not contacted.
    RejectedUnsafe,
    /// Started but its outcome was never recorded (the process stopped); never retried
    /// automatically.
    Pending,
}

/// Output of `unsubscribe:execute`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub struct UnsubscribeResponse {
    /// The candidate key.
    pub candidate: String,
    /// The method chosen.
    pub method: MethodKind,
    /// Where it went (redacted).
    pub target: String,
    /// True when nothing was contacted.
    pub dry_run: bool,
    /// How it ended.
    pub outcome: UnsubscribeOutcome,
    /// Details in words (status code, refusal reason); never contains link tokens.
    pub detail: String,
    /// For a mailto: the exact message sent, or that a dry run would send.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailto: Option<MailtoMessage>,
}

/// The message a mailto unsubscribe sends from the user's mailbox (plus `Auto-Submitted:
/// auto-generated`). `to` is the one address shown as the method's target and recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub struct MailtoMessage {
    /// The sending mailbox, when known.
    pub from: Option<String>,
    /// The list's unsubscribe address.
    pub to: String,
    /// The list's `subject` field, else `unsubscribe`.
    pub subject: String,
    /// The list's `body` field, else `unsubscribe`.
    pub body: String,
}

/// Input of `unsubscribe:digest` (a mutation: sends mail to the configured recipient).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DigestRequest {
    /// Build the digest and return it without sending. Defaults to true: set `false` to send.
    #[serde(default = "default_true")]
    pub dry_run: bool,
}

/// Output of `unsubscribe:digest`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub struct DigestResponse {
    /// True when the digest was handed to the provider for sending.
    pub sent: bool,
    /// True when this was a dry run.
    pub dry_run: bool,
    /// The configured recipient (the mailbox owner unless configured otherwise).
    pub recipient: String,
    /// The digest's subject line.
    pub subject: String,
    /// The plain-text body, one line per candidate with its suggested action.
    pub body: String,
    /// Candidates listed in the digest.
    pub candidates: u32,
    /// When the schedule will next send a digest, if a schedule is configured.
    pub next_scheduled: Option<DateTime<Utc>>,
}

/// Day of the week, for working hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    /// Monday.
    Mon,
    /// Tuesday.
    Tue,
    /// Wednesday.
    Wed,
    /// Thursday.
    Thu,
    /// Friday.
    Fri,
    /// Saturday.
    Sat,
    /// Sunday.
    Sun,
}

/// Working hours in the request's time zone, the same each selected day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkingHours {
    /// Start of the working day, `HH:MM` local time (default `09:00`).
    #[schemars(regex(pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"))]
    #[schema(pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub start: String,
    /// End of the working day, `HH:MM` local time, after `start` (default `17:00`).
    #[schemars(regex(pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"))]
    #[schema(pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub end: String,
    /// Working days (default Monday to Friday).
    #[schemars(length(min = 1))]
    #[schema(min_items = 1)]
    pub days: Vec<Weekday>,
}

/// Input of `availability:read`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AvailabilityRequest {
    /// Start of the window (RFC 3339 with offset).
    pub start: DateTime<FixedOffset>,
    /// End of the window (RFC 3339 with offset), after `start`, at most 62 days later.
    pub end: DateTime<FixedOffset>,
    /// IANA time zone for working hours and for the returned times, e.g. `Europe/Berlin`
    /// (default: the service's configured zone).
    #[serde(default)]
    pub time_zone: Option<String>,
    /// Working hours; free time outside them is not reported. Absent means the whole window.
    #[serde(default)]
    pub working_hours: Option<WorkingHours>,
}

/// A half-open time interval `[start, end)` in the requested time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub struct Interval {
    /// Inclusive start.
    pub start: DateTime<FixedOffset>,
    /// Exclusive end.
    pub end: DateTime<FixedOffset>,
}

/// Output of `availability:read`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub struct AvailabilityResponse {
    /// The time zone the intervals are expressed in.
    pub time_zone: String,
    /// Busy blocks in the window, merged and sorted.
    pub busy: Vec<Interval>,
    /// Free time in the window within working hours, sorted.
    pub free: Vec<Interval>,
    /// Calendars consulted (`ics:<file name>` or a Google calendar id).
    pub sources: Vec<String>,
    /// Calendars that could not be read; their time is treated as busy, never as free.
    pub unavailable_sources: Vec<String>,
}

/// Input of `available_meeting_intervals:read`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MeetingIntervalsRequest {
    /// Start of the search window (RFC 3339 with offset).
    pub start: DateTime<FixedOffset>,
    /// End of the search window (RFC 3339 with offset), at most 62 days after `start`.
    pub end: DateTime<FixedOffset>,
    /// IANA time zone for working hours and results (default: the configured zone).
    #[serde(default)]
    pub time_zone: Option<String>,
    /// Working hours (default Monday to Friday, 09:00 to 17:00).
    #[serde(default)]
    pub working_hours: Option<WorkingHours>,
    /// Meeting length in minutes (5 to 480); shorter free gaps are skipped.
    #[schemars(range(min = 5, max = 480))]
    #[schema(minimum = 5, maximum = 480)]
    pub duration_minutes: u32,
    /// Minutes kept free before each busy block (default 0, at most 120).
    #[serde(default)]
    #[schemars(range(max = 120))]
    #[schema(minimum = 0, maximum = 120)]
    pub buffer_before_minutes: u32,
    /// Minutes kept free after each busy block (default 0, at most 120).
    #[serde(default)]
    #[schemars(range(max = 120))]
    #[schema(minimum = 0, maximum = 120)]
    pub buffer_after_minutes: u32,
    /// Return at most this many intervals (default 10, max 100), earliest first.
    #[serde(default)]
    #[schemars(range(min = 1, max = 100))]
    #[schema(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

/// Output of `available_meeting_intervals:read`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub struct MeetingIntervalsResponse {
    /// The time zone of the intervals.
    pub time_zone: String,
    /// Free intervals at least `duration_minutes` long, buffers already applied, earliest first.
    pub intervals: Vec<Interval>,
    /// Calendars that could not be read (their time was treated as busy).
    pub unavailable_sources: Vec<String>,
}

/// Counters for `/metrics`; monotonic since the process started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, ToSchema)]
pub struct DomainMetrics {
    /// Provider API calls made.
    pub provider_calls: u64,
    /// Provider quota units spent (Gmail units).
    pub quota_units: u64,
    /// Provider calls retried after 429 or 5xx.
    pub provider_retries: u64,
    /// Messages fetched by scans.
    pub messages_fetched: u64,
    /// Unsubscribe attempts refused as unsafe.
    pub unsubscribe_refused: u64,
    /// Digests sent.
    pub digests_sent: u64,
}

/// The mail assistant behind every door. Object safe: doors hold an `Arc<dyn Assistant>`.
#[async_trait]
pub trait Assistant: Send + Sync {
    /// `mail:scan`: scan (incrementally when possible) and classify.
    async fn scan(&self, request: ScanRequest) -> Result<ScanResponse, DomainError>;
    /// `unsubscribe:read`: unsubscribe candidates from the known messages.
    async fn unsubscribe_candidates(&self, request: CandidatesRequest) -> Result<CandidatesResponse, DomainError>;
    /// `unsubscribe:execute`: run (or dry-run) one unsubscribe. A mutation.
    async fn unsubscribe(&self, request: UnsubscribeRequest) -> Result<UnsubscribeResponse, DomainError>;
    /// `unsubscribe:digest`: build and send (or dry-run) the digest. A mutation.
    async fn digest(&self, request: DigestRequest) -> Result<DigestResponse, DomainError>;
    /// `availability:read`: busy and free time in a window.
    async fn availability(&self, request: AvailabilityRequest) -> Result<AvailabilityResponse, DomainError>;
    /// `available_meeting_intervals:read`: free intervals a meeting fits in.
    async fn meeting_intervals(
        &self,
        request: MeetingIntervalsRequest,
    ) -> Result<MeetingIntervalsResponse, DomainError>;
    /// Counters for the service's `/metrics`.
    fn metrics(&self) -> DomainMetrics;
    /// Sends the scheduled digest if a slot is due at `now` and was not sent yet (the progress
    /// survives restarts). `None` when nothing was due or no schedule is configured.
    async fn run_due_digest(&self, _now: DateTime<Utc>) -> Result<Option<DigestResponse>, DomainError> {
        Ok(None)
    }
    /// The next scheduled digest after `now`, if a schedule is configured.
    fn next_digest(&self, _now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        None
    }
}
