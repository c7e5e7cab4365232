//! Unsubscribe execution: choose a method, refuse what is unsafe, unauthenticated or already
//! done, record `pending` durably before acting and the outcome after, and never use the same
//! link twice.
//!
//! Every refusal is written to the audit log (tracing target `audit`) and, unless it was a dry
//! run, to `data/unsubscribed_methods.json` with its reason; a reason names the candidate, the
//! method kind and the redacted target, never a link's token or a mailto's fields.

use chrono::Utc;

use crate::api::{DomainError, MailtoMessage, MethodKind, UnsubscribeOutcome, UnsubscribeResponse};
use crate::candidates::{Candidate, ExecutableMethod};
use crate::guard::{GuardedClient, PostResult};
use crate::list_unsubscribe::parse_mailto;
use crate::outgoing::plain_message;
use crate::provider::MailProvider;
use crate::records::{MethodRecord, SentLink, SentLinks, UnsubscribedMethods, link_hash};
use crate::state::{StateError, StateFile};

/// What the executor needs.
pub struct Executor<'a> {
    /// The mailbox (mailto sends go through it).
    pub provider: &'a dyn MailProvider,
    /// The guarded HTTP client.
    pub http: &'a GuardedClient,
    /// `data/sent_unsubscribe_links.json`.
    pub sent_links: &'a StateFile,
    /// `data/unsubscribed_methods.json`.
    pub methods: &'a StateFile,
}

pub(crate) fn state_error(error: StateError) -> DomainError {
    DomainError::Provider(error.to_string())
}

/// Why no method was chosen.
enum NoMethod<'a> {
    /// The request named a method the candidate does not have.
    Invalid(DomainError),
    /// Refused on purpose, with the method it concerns when there is one.
    Refused(Option<&'a ExecutableMethod>, String),
}

impl Executor<'_> {
    /// Runs (or dry-runs) one unsubscribe for `candidate`.
    pub async fn execute(
        &self,
        candidate: &Candidate,
        choice: Option<MethodKind>,
        dry_run: bool,
    ) -> Result<UnsubscribeResponse, DomainError> {
        let method = match choose(candidate, choice) {
            Ok(method) => method,
            Err(NoMethod::Invalid(error)) => return Err(error),
            Err(NoMethod::Refused(method, reason)) => {
                return Err(self.refuse(candidate, method, reason, dry_run).await);
            }
        };
        let hash = link_hash(&method.uri);
        let sent: SentLinks = self.sent_links.load().map_err(state_error)?;
        if let Some(previous) = sent.links.get(&hash) {
            let outcome = previous.outcome.map_or("recorded in the seed file".to_string(), |o| format!("{o:?}"));
            let reason = format!("this link was already used ({outcome}); never twice");
            return Err(self.refuse(candidate, Some(method), reason, dry_run).await);
        }
        let respond = |outcome, detail: String, mailto: Option<MailtoMessage>| UnsubscribeResponse {
            candidate: candidate.view.key.clone(),
            method: method.view.kind,
            target: method.view.target.clone(),
            dry_run,
            outcome,
            detail,
            mailto,
        };
        if method.view.kind == MethodKind::OneClick
            && let Err(refusal) = self.http.check(&method.uri).await
        {
            let reason = format!("unsafe unsubscribe target {}: {refusal}", method.view.target);
            if !dry_run {
                let outcome = UnsubscribeOutcome::RejectedUnsafe;
                self.record(candidate, method, &hash, outcome, Some(reason.clone())).await?;
            }
            audit(candidate, method, dry_run, "rejected_unsafe", &reason);
            return Err(DomainError::Refused(reason));
        }
        let message = match method.view.kind {
            MethodKind::Mailto => match self.mailto_message(method).await {
                Ok(message) => Some(message),
                Err(reason) => return Err(self.refuse(candidate, Some(method), reason, dry_run).await),
            },
            _ => None,
        };
        if dry_run {
            let detail = format!("would use {:?} to {}", method.view.kind, method.view.target);
            audit(candidate, method, dry_run, "would_execute", &detail);
            return Ok(respond(UnsubscribeOutcome::WouldExecute, detail, message));
        }
        // Durable before acting: a crash now leaves `pending`, which is never retried blindly.
        self.record(candidate, method, &hash, UnsubscribeOutcome::Pending, None).await?;
        let (outcome, detail) = match (&message, method.view.kind) {
            (Some(message), _) => self.send(message).await,
            (None, MethodKind::OneClick) => self.one_click(method).await,
            (None, _) => (UnsubscribeOutcome::ManualRequired, "only a person can finish this".into()),
        };
        let reason =
            matches!(outcome, UnsubscribeOutcome::ManualRequired | UnsubscribeOutcome::Failed).then(|| detail.clone());
        self.record(candidate, method, &hash, outcome, reason).await?;
        audit(candidate, method, dry_run, outcome_name(outcome), &detail);
        Ok(respond(outcome, detail, message))
    }

    async fn one_click(&self, method: &ExecutableMethod) -> (UnsubscribeOutcome, String) {
        match self.http.one_click(&method.uri).await {
            Ok(PostResult::Accepted(status)) => (UnsubscribeOutcome::OneClickAccepted, format!("HTTP {status}")),
            Ok(PostResult::NotCompliant(detail)) => (UnsubscribeOutcome::ManualRequired, detail),
            Ok(PostResult::Failed(detail)) => (UnsubscribeOutcome::Failed, detail),
            // Checked just before; a changed DNS answer lands here.
            Err(refusal) => (UnsubscribeOutcome::RejectedUnsafe, refusal.0),
        }
    }

    /// The exact message a mailto method sends: the dry run shows it, the real run sends it.
    async fn mailto_message(&self, method: &ExecutableMethod) -> Result<MailtoMessage, String> {
        let target = parse_mailto(&method.uri).map_err(|refusal| format!("Mailto refused: {}", refusal.reason))?;
        // The address shown and recorded is the address sent to; anything else is a bug to stop on.
        if target.redacted() != method.view.target {
            return Err("Mailto refused: the address to send to differs from the one shown".into());
        }
        let from = self.provider.owner().await.ok().flatten();
        Ok(MailtoMessage {
            from,
            to: target.address.clone(),
            subject: target.subject_text().to_string(),
            body: target.body_text().to_string(),
        })
    }

    async fn send(&self, message: &MailtoMessage) -> (UnsubscribeOutcome, String) {
        let raw = plain_message(message.from.as_deref(), &message.to, &message.subject, &message.body);
        match self.provider.send_raw(raw).await {
            Ok(id) => (UnsubscribeOutcome::MailtoSent, format!("sent as message {id}")),
            Err(error) => (UnsubscribeOutcome::Failed, error.to_string()),
        }
    }

    /// Logs and (unless a dry run) records a refusal; returns the error the caller answers with.
    async fn refuse(
        &self,
        candidate: &Candidate,
        method: Option<&ExecutableMethod>,
        reason: String,
        dry_run: bool,
    ) -> DomainError {
        let kind = method.map(|m| m.view.kind);
        tracing::info!(
            target: "audit",
            event = "unsubscribe",
            outcome = "refused",
            candidate = ?candidate.view.key,
            method = ?kind,
            target = ?method.map(|m| m.view.target.as_str()),
            dry_run,
            reason = ?reason,
        );
        if !dry_run {
            let record = MethodRecord {
                method: kind,
                outcome: Some(UnsubscribeOutcome::ManualRequired),
                at: Some(Utc::now()),
                target: method.map(|m| m.view.target.clone()).unwrap_or_default(),
                reason: Some(reason.clone()),
                imported: None,
            };
            let key = candidate.view.key.clone();
            let written = self
                .methods
                .update(|methods: &mut UnsubscribedMethods| {
                    methods.schema = UnsubscribedMethods::SCHEMA_VERSION;
                    methods.refusals.insert(key, record);
                })
                .await;
            if let Err(error) = written {
                return state_error(error);
            }
        }
        DomainError::Refused(reason)
    }

    async fn record(
        &self,
        candidate: &Candidate,
        method: &ExecutableMethod,
        hash: &str,
        outcome: UnsubscribeOutcome,
        reason: Option<String>,
    ) -> Result<(), DomainError> {
        let at = Some(Utc::now());
        let kind = Some(method.view.kind);
        self.sent_links
            .update(|links: &mut SentLinks| {
                links.schema = SentLinks::SCHEMA_VERSION;
                let entry =
                    SentLink { candidate: candidate.view.key.clone(), method: kind, outcome: Some(outcome), at };
                links.links.insert(hash.to_string(), entry);
            })
            .await
            .map_err(state_error)?;
        self.methods
            .update(|methods: &mut UnsubscribedMethods| {
                methods.schema = UnsubscribedMethods::SCHEMA_VERSION;
                let record = MethodRecord {
                    method: kind,
                    outcome: Some(outcome),
                    at,
                    target: method.view.target.clone(),
                    reason,
                    imported: None,
                };
                methods.senders.insert(candidate.view.key.clone(), record);
            })
            .await
            .map_err(state_error)
    }
}

/// One audit line per execution that got past the choice (refusals log in `refuse`).
fn audit(candidate: &Candidate, method: &ExecutableMethod, dry_run: bool, outcome: &str, detail: &str) {
    tracing::info!(
        target: "audit",
        event = "unsubscribe",
        outcome,
        candidate = ?candidate.view.key,
        method = ?method.view.kind,
        target = ?method.view.target,
        dry_run,
        reason = ?detail,
    );
}

fn outcome_name(outcome: UnsubscribeOutcome) -> &'static str {
    match outcome {
        UnsubscribeOutcome::WouldExecute => "would_execute",
        UnsubscribeOutcome::OneClickAccepted => "one_click_accepted",
        UnsubscribeOutcome::MailtoSent => "mailto_sent",
        UnsubscribeOutcome::ManualRequired => "manual_required",
        UnsubscribeOutcome::Failed => "failed",
        UnsubscribeOutcome::RejectedUnsafe => "rejected_unsafe",
        UnsubscribeOutcome::Pending => "pending",
    }
}

fn choose(candidate: &Candidate, choice: Option<MethodKind>) -> Result<&ExecutableMethod, NoMethod<'_>> {
    let method = match choice {
        Some(kind) => candidate.methods.iter().find(|m| m.view.kind == kind).ok_or_else(|| {
            NoMethod::Invalid(DomainError::InvalidInput(format!(
                "candidate {} has no {kind:?} method",
                candidate.view.key
            )))
        })?,
        None => match candidate.methods.iter().find(|m| m.view.automatic) {
            Some(method) => method,
            None => {
                let why: Vec<String> =
                    candidate.methods.iter().map(|m| format!("{:?}: {}", m.view.kind, m.view.reason)).collect();
                let reason = format!(
                    "candidate {} has no method that may run unattended; a person must unsubscribe ({})",
                    candidate.view.key,
                    why.join("; ")
                );
                return Err(NoMethod::Refused(candidate.methods.first(), reason));
            }
        },
    };
    if method.view.kind == MethodKind::Manual {
        let reason = format!("manual links are never executed; open {} yourself", method.view.target);
        return Err(NoMethod::Refused(Some(method), reason));
    }
    if !method.view.automatic {
        return Err(NoMethod::Refused(Some(method), format!("{:?} refused: {}", method.view.kind, method.view.reason)));
    }
    Ok(method)
}
