//! The assistant that wires providers, triage, unsubscribe, digest and calendar together.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use chrono_tz::Tz;

use crate::api::*;
use crate::calendar::{self, CalendarSource};
use crate::candidates::{Candidate, discover};
use crate::digest;
use crate::guard::GuardedClient;
use crate::layout;
use crate::message::MessageMeta;
use crate::provider::maildir::MaildirProvider;
use crate::provider::{History, MailProvider, ProviderError};
use crate::records::UnsubscribedMethods;
use crate::schedule::{CronSchedule, ScheduleProgress};
use crate::state::StateFile;
use crate::triage::classify;
use crate::unsubscribe::{Executor, state_error};

const DEFAULT_MAX_MESSAGES: u32 = 500;
const MAX_MESSAGES: u32 = 10_000;
const DEFAULT_EXPLAIN: u32 = 50;
const MAX_EXPLAIN: u32 = 1_000;
const TOP_SENDERS: usize = 20;

/// What the last scan knows, kept between scans so the next one fetches only what changed.
#[derive(Debug, Default)]
struct ScanIndex {
    messages: HashMap<String, MessageMeta>,
    checkpoint: Option<String>,
    scanned_once: bool,
}

/// An assistant over one mailbox and one state directory.
pub(crate) struct LocalAssistant {
    provider: Box<dyn MailProvider>,
    options: AssistantOptions,
    http: GuardedClient,
    sent_links: StateFile,
    methods: StateFile,
    index: tokio::sync::Mutex<ScanIndex>,
    schedule: Option<CronSchedule>,
    schedule_progress: StateFile,
    /// One mutation at a time: two concurrent executions of one candidate must not both pass
    /// the "never twice" check.
    mutations: tokio::sync::Mutex<()>,
    counters: Counters,
}

#[derive(Debug, Default)]
struct Counters {
    messages_fetched: AtomicU64,
    unsubscribe_refused: AtomicU64,
    digests_sent: AtomicU64,
}

/// Settings beyond the mailbox and the state directory (the service fills them from
/// `DIGEST_RECIPIENT`, `DIGEST_SCHEDULE` and `MAILAGENT_TIMEZONE`).
#[derive(Debug, Clone)]
pub struct AssistantOptions {
    /// Where digests go; defaults to the mailbox owner.
    pub digest_recipient: Option<String>,
    /// Cron expression (five fields or a macro, `mailagent_schedule`'s grammar) for the digest,
    /// read in `time_zone`.
    pub digest_schedule: Option<String>,
    /// The zone used when a request names none, and for the schedule.
    pub time_zone: Tz,
    /// A local iCalendar file for availability.
    pub calendar_ics: Option<std::path::PathBuf>,
    /// Google Calendar free/busy for availability (used together with `calendar_ics` when both
    /// are set).
    pub calendar_google: Option<crate::calendar::GoogleCalendar>,
    /// The Maildir provider's trusted `authserv-id` (`MAILDIR_AUTHSERV_ID`); see
    /// [`crate::provider::maildir::MaildirProvider::trusting`].
    pub maildir_authserv_id: Option<String>,
}

impl Default for AssistantOptions {
    fn default() -> Self {
        Self {
            digest_recipient: None,
            digest_schedule: None,
            time_zone: Tz::UTC,
            calendar_ics: None,
            calendar_google: None,
            maildir_authserv_id: None,
        }
    }
}

/// Builds an assistant over any mailbox provider (Gmail in production) with state under
/// `state_dir`. An invalid schedule is an `InvalidInput`.
pub fn provider_assistant(
    provider: Box<dyn MailProvider>,
    state_dir: &Path,
    options: AssistantOptions,
) -> Result<Arc<dyn Assistant>, DomainError> {
    Ok(Arc::new(LocalAssistant::new(provider, state_dir, options, GuardedClient::default())?))
}

/// Builds an assistant over a local Maildir with state under `state_dir` (the files
/// `data/sent_unsubscribe_links.json` and `data/unsubscribed_methods.json` live there). This is
/// the embedded default for `make run` and for trying the service without Google credentials.
pub fn maildir_assistant(maildir: &Path, state_dir: &Path) -> Result<Arc<dyn Assistant>, DomainError> {
    let ics = maildir.join(layout::CALENDAR_ICS);
    let options = AssistantOptions { calendar_ics: ics.is_file().then_some(ics), ..AssistantOptions::default() };
    maildir_assistant_with(maildir, state_dir, options)
}

/// Like [`maildir_assistant`] with explicit options. An invalid schedule is an `InvalidInput`.
pub fn maildir_assistant_with(
    maildir: &Path,
    state_dir: &Path,
    options: AssistantOptions,
) -> Result<Arc<dyn Assistant>, DomainError> {
    let provider = MaildirProvider::open(maildir, state_dir.join("outbox"), Some("me@localhost".into()))
        .map_err(|e| DomainError::InvalidInput(e.to_string()))?
        .trusting(options.maildir_authserv_id.clone());
    Ok(Arc::new(LocalAssistant::new(Box::new(provider), state_dir, options, GuardedClient::default())?))
}

fn provider_error(error: ProviderError) -> DomainError {
    error.into()
}

fn bounded(value: Option<u32>, default: u32, max: u32, name: &str) -> Result<u32, DomainError> {
    match value {
        None => Ok(default),
        Some(0) => Err(DomainError::InvalidInput(format!("{name} must be at least 1"))),
        Some(v) if v > max => Err(DomainError::InvalidInput(format!("{name} must be at most {max}"))),
        Some(v) => Ok(v),
    }
}

impl LocalAssistant {
    /// An assistant over any provider.
    pub(crate) fn new(
        provider: Box<dyn MailProvider>,
        state_dir: &Path,
        options: AssistantOptions,
        http: GuardedClient,
    ) -> Result<Self, DomainError> {
        let schedule =
            options.digest_schedule.as_deref().map(|e| CronSchedule::parse(e, options.time_zone)).transpose()?;
        Ok(Self {
            provider,
            options,
            http,
            sent_links: StateFile::new(state_dir.join(layout::SENT_UNSUBSCRIBE_LINKS)),
            methods: StateFile::new(state_dir.join(layout::UNSUBSCRIBED_METHODS)),
            index: tokio::sync::Mutex::new(ScanIndex::default()),
            schedule,
            schedule_progress: StateFile::new(state_dir.join(layout::DIGEST_SCHEDULE)),
            mutations: tokio::sync::Mutex::new(()),
            counters: Counters::default(),
        })
    }

    /// Brings the index up to date; returns (fetched, incremental, full-scan reason, units).
    async fn refresh(
        &self,
        index: &mut ScanIndex,
        query: Option<&str>,
        max: usize,
        full: bool,
    ) -> Result<(u64, bool, Option<String>), DomainError> {
        let mut reason = None;
        if index.scanned_once && !full {
            if let Some(checkpoint) = index.checkpoint.clone() {
                match self.provider.history(&checkpoint).await.map_err(provider_error)? {
                    History::Delta { added, removed, checkpoint } => {
                        for id in removed {
                            index.messages.remove(&id);
                        }
                        let wanted: Vec<String> =
                            added.into_iter().filter(|id| !index.messages.contains_key(id)).collect();
                        let fetched = self.fetch_into(index, &wanted).await?;
                        index.checkpoint = Some(checkpoint);
                        return Ok((fetched, true, None));
                    }
                    History::Expired => reason = Some("the history checkpoint expired; listing everything".to_string()),
                    History::Unsupported => {}
                }
            }
        } else if full && index.scanned_once {
            reason = Some("a full scan was requested".to_string());
        }
        // Listing then fetching only unknown ids: cheap for Maildir, and for Gmail after an
        // expired checkpoint still only `get`s what is new.
        let checkpoint = self.provider.checkpoint().await.map_err(provider_error)?;
        let ids = self.provider.list_ids(query, max).await.map_err(provider_error)?;
        let listed: HashSet<&String> = ids.iter().collect();
        index.messages.retain(|id, _| listed.contains(id));
        let wanted: Vec<String> = ids.iter().filter(|id| !index.messages.contains_key(*id)).cloned().collect();
        let incremental = index.scanned_once && !full && reason.is_none();
        let fetched = self.fetch_into(index, &wanted).await?;
        index.checkpoint = checkpoint;
        index.scanned_once = true;
        Ok((fetched, incremental, reason))
    }

    async fn fetch_into(&self, index: &mut ScanIndex, ids: &[String]) -> Result<u64, DomainError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let messages = self.provider.fetch(ids).await.map_err(provider_error)?;
        let fetched = messages.len() as u64;
        self.counters.messages_fetched.fetch_add(fetched, Ordering::Relaxed);
        for message in messages {
            index.messages.insert(message.id.clone(), message);
        }
        Ok(fetched)
    }

    async fn candidates_with_history(&self) -> Result<(Vec<Candidate>, u64), DomainError> {
        let index = self.index.lock().await;
        let mut candidates = discover(index.messages.values(), self.provider.authserv_id());
        let done: UnsubscribedMethods = self.methods.load().map_err(state_error)?;
        for candidate in &mut candidates {
            candidate.view.done = done.senders.get(&candidate.view.key).and_then(|record| {
                Some(PastAction { method: record.method?, outcome: record.outcome?, at: record.at? })
            });
        }
        Ok((candidates, index.messages.len() as u64))
    }

    /// Scans first when nothing was scanned yet, so discovery works on a fresh process.
    async fn ensure_scanned(&self) -> Result<(), DomainError> {
        let mut index = self.index.lock().await;
        if !index.scanned_once {
            self.refresh(&mut index, None, DEFAULT_MAX_MESSAGES as usize, false).await?;
        }
        Ok(())
    }

    fn zone(&self, name: Option<&str>) -> Result<Tz, DomainError> {
        match name {
            None => Ok(self.options.time_zone),
            Some(name) => {
                name.parse().map_err(|_| DomainError::InvalidInput(format!("unknown IANA time zone {name:?}")))
            }
        }
    }

    fn calendars(&self) -> Vec<CalendarSource> {
        let ics = self.options.calendar_ics.iter().map(|path| CalendarSource::Ics(path.clone()));
        let google =
            self.options.calendar_google.iter().map(|client| CalendarSource::Google { client: client.clone() });
        ics.chain(google).collect()
    }
}

fn summarise(index: &ScanIndex, explain: usize) -> (Vec<ClassCount>, Vec<SenderCount>, Vec<MessageTriage>) {
    let mut counts: BTreeMap<MessageClass, u64> = BTreeMap::new();
    let mut senders: HashMap<&str, (u64, BTreeMap<MessageClass, u64>)> = HashMap::new();
    let mut triaged = Vec::with_capacity(index.messages.len());
    for message in index.messages.values() {
        let (class, reasons) = classify(message);
        *counts.entry(class).or_default() += 1;
        let sender = senders.entry(message.from.as_str()).or_default();
        sender.0 += 1;
        *sender.1.entry(class).or_default() += 1;
        triaged.push((message, class, reasons));
    }
    let counts = counts.into_iter().map(|(class, count)| ClassCount { class, count }).collect();
    let mut top: Vec<SenderCount> = senders
        .into_iter()
        .filter(|(sender, _)| !sender.is_empty())
        .map(|(sender, (count, classes))| {
            let class = classes.into_iter().max_by_key(|(class, n)| (*n, std::cmp::Reverse(*class))).map(|(c, _)| c);
            SenderCount { sender: sender.to_string(), count, class: class.unwrap_or(MessageClass::Personal) }
        })
        .collect();
    top.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.sender.cmp(&b.sender)));
    top.truncate(TOP_SENDERS);
    triaged.sort_by(|a, b| b.0.date.cmp(&a.0.date).then_with(|| a.0.id.cmp(&b.0.id)));
    let messages = triaged
        .into_iter()
        .take(explain)
        .map(|(message, class, reasons)| MessageTriage {
            id: message.id.clone(),
            from: message.from.clone(),
            subject: message.subject.clone(),
            date: message.date,
            class,
            reasons,
        })
        .collect();
    (counts, top, messages)
}

#[async_trait]
impl Assistant for LocalAssistant {
    async fn scan(&self, request: ScanRequest) -> Result<ScanResponse, DomainError> {
        let max = bounded(request.max_messages, DEFAULT_MAX_MESSAGES, MAX_MESSAGES, "max_messages")?;
        let explain = bounded(request.explain_limit, DEFAULT_EXPLAIN, MAX_EXPLAIN, "explain_limit")?;
        let units_before = self.provider.quota_units();
        let query = request.query.as_deref().map(str::trim).filter(|q| !q.is_empty());
        let mut index = self.index.lock().await;
        let (fetched, incremental, full_scan_reason) =
            self.refresh(&mut index, query, max as usize, request.full).await?;
        let (counts, top_senders, messages) = summarise(&index, explain as usize);
        Ok(ScanResponse {
            total_messages: index.messages.len() as u64,
            fetched_messages: fetched,
            incremental,
            full_scan_reason,
            counts,
            top_senders,
            messages,
            quota_units: self.provider.quota_units() - units_before,
        })
    }

    async fn unsubscribe_candidates(&self, request: CandidatesRequest) -> Result<CandidatesResponse, DomainError> {
        let limit = bounded(request.limit, 50, 1_000, "limit")? as usize;
        let min_messages = u64::from(bounded(request.min_messages, 1, 1_000_000, "min_messages")?);
        self.ensure_scanned().await?;
        let (candidates, scanned_messages) = self.candidates_with_history().await?;
        let candidates = candidates
            .into_iter()
            .filter(|c| c.view.message_count >= min_messages && (request.include_done || c.view.done.is_none()))
            .take(limit)
            .map(|c| c.view)
            .collect();
        Ok(CandidatesResponse { candidates, scanned_messages })
    }

    async fn unsubscribe(&self, request: UnsubscribeRequest) -> Result<UnsubscribeResponse, DomainError> {
        let key = request.candidate.trim().to_ascii_lowercase();
        if key.is_empty() {
            return Err(DomainError::InvalidInput("candidate must name a key from unsubscribe:read".into()));
        }
        self.ensure_scanned().await?;
        let _one_at_a_time = self.mutations.lock().await;
        let (candidates, _) = self.candidates_with_history().await?;
        let candidate = candidates
            .into_iter()
            .find(|c| c.view.key == key)
            .ok_or_else(|| DomainError::NotFound(format!("no unsubscribe candidate {key:?} in the scanned mail")))?;
        let executor = Executor {
            provider: self.provider.as_ref(),
            http: &self.http,
            sent_links: &self.sent_links,
            methods: &self.methods,
        };
        let result = executor.execute(&candidate, request.method, request.dry_run).await;
        if matches!(&result, Err(DomainError::Refused(_))) {
            self.counters.unsubscribe_refused.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    async fn digest(&self, request: DigestRequest) -> Result<DigestResponse, DomainError> {
        let mut index = self.index.lock().await;
        self.refresh(&mut index, None, DEFAULT_MAX_MESSAGES as usize, false).await?;
        drop(index);
        let (candidates, _) = self.candidates_with_history().await?;
        let open: Vec<&Candidate> = candidates.iter().filter(|c| c.view.done.is_none()).collect();
        let recipient = match &self.options.digest_recipient {
            Some(recipient) => recipient.clone(),
            None => self.provider.owner().await.map_err(provider_error)?.ok_or_else(|| {
                DomainError::InvalidInput("no digest recipient configured and the mailbox owner is unknown".into())
            })?,
        };
        let (subject, body) = digest::render(&open, chrono::Utc::now(), self.options.time_zone);
        let mut response = DigestResponse {
            sent: false,
            dry_run: request.dry_run,
            recipient: recipient.clone(),
            subject: subject.clone(),
            body: body.clone(),
            candidates: open.len() as u32,
            next_scheduled: self.next_digest(chrono::Utc::now()),
        };
        if !request.dry_run {
            let _one_at_a_time = self.mutations.lock().await;
            let raw = crate::outgoing::plain_message(Some(&recipient), &recipient, &subject, &body);
            self.provider.send_raw(raw).await.map_err(provider_error)?;
            self.counters.digests_sent.fetch_add(1, Ordering::Relaxed);
            response.sent = true;
        }
        Ok(response)
    }

    async fn availability(&self, request: AvailabilityRequest) -> Result<AvailabilityResponse, DomainError> {
        let zone = self.zone(request.time_zone.as_deref())?;
        calendar::availability(&self.calendars(), zone, &request).await
    }

    async fn meeting_intervals(
        &self,
        request: MeetingIntervalsRequest,
    ) -> Result<MeetingIntervalsResponse, DomainError> {
        let zone = self.zone(request.time_zone.as_deref())?;
        calendar::meeting_intervals(&self.calendars(), zone, &request).await
    }

    async fn run_due_digest(&self, now: chrono::DateTime<chrono::Utc>) -> Result<Option<DigestResponse>, DomainError> {
        let Some(schedule) = &self.schedule else { return Ok(None) };
        let progress: ScheduleProgress = self.schedule_progress.load().map_err(state_error)?;
        let Some(slot) = (match progress.last_slot {
            Some(_) => schedule.due(&progress, now),
            None => {
                // First start: slots before now are not owed.
                self.schedule_progress
                    .update(|p: &mut ScheduleProgress| {
                        p.schema = 1;
                        p.last_slot.get_or_insert(now);
                    })
                    .await
                    .map_err(state_error)?;
                None
            }
        }) else {
            return Ok(None);
        };
        // Claim the slot durably before sending (at most once), re-checking under the lock.
        let claimed = self
            .schedule_progress
            .update(|p: &mut ScheduleProgress| {
                if p.last_slot.is_some_and(|last| last >= slot) {
                    return false;
                }
                p.schema = 1;
                p.last_slot = Some(slot);
                p.last_outcome = None;
                true
            })
            .await
            .map_err(state_error)?;
        if !claimed {
            return Ok(None);
        }
        let result = self.digest(DigestRequest { dry_run: false }).await;
        let outcome = match &result {
            Ok(_) => "sent".to_string(),
            Err(error) => error.to_string(),
        };
        self.schedule_progress
            .update(|p: &mut ScheduleProgress| p.last_outcome = Some(outcome))
            .await
            .map_err(state_error)?;
        result.map(Some)
    }

    fn next_digest(&self, now: chrono::DateTime<chrono::Utc>) -> Option<chrono::DateTime<chrono::Utc>> {
        self.schedule.as_ref()?.next_after(now)
    }

    fn metrics(&self) -> DomainMetrics {
        DomainMetrics {
            provider_calls: self.provider.calls(),
            quota_units: self.provider.quota_units(),
            provider_retries: self.provider.retries(),
            messages_fetched: self.counters.messages_fetched.load(Ordering::Relaxed),
            unsubscribe_refused: self.counters.unsubscribe_refused.load(Ordering::Relaxed),
            digests_sent: self.counters.digests_sent.load(Ordering::Relaxed),
        }
    }
}
