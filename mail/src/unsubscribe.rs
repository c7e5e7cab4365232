//! Unsubscribe execution: choose a method, refuse what is unsafe or already done, record
//! `pending` durably before acting and the outcome after, and never use the same link twice.

use chrono::Utc;

use crate::api::{DomainError, MethodKind, UnsubscribeOutcome, UnsubscribeResponse};
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

impl Executor<'_> {
    /// Runs (or dry-runs) one unsubscribe for `candidate`.
    pub async fn execute(
        &self,
        candidate: &Candidate,
        choice: Option<MethodKind>,
        dry_run: bool,
    ) -> Result<UnsubscribeResponse, DomainError> {
        let method = choose(candidate, choice)?;
        let hash = link_hash(&method.uri);
        let sent: SentLinks = self.sent_links.load().map_err(state_error)?;
        if let Some(previous) = sent.links.get(&hash) {
            let outcome = previous.outcome.map_or("recorded in the seed file".to_string(), |o| format!("{o:?}"));
            return Err(DomainError::Refused(format!("this link was already used ({outcome}); never twice")));
        }
        let respond = |outcome, detail: String| UnsubscribeResponse {
            candidate: candidate.view.key.clone(),
            method: method.view.kind,
            target: method.view.target.clone(),
            dry_run,
            outcome,
            detail,
        };
        if method.view.kind == MethodKind::OneClick
            && let Err(refusal) = self.http.check(&method.uri).await
        {
            if !dry_run {
                self.record(candidate, method, &hash, UnsubscribeOutcome::RejectedUnsafe).await?;
            }
            tracing::warn!(candidate = %candidate.view.key, target = %method.view.target, %refusal, "unsafe unsubscribe target refused");
            return Err(DomainError::Refused(format!("unsafe unsubscribe target {}: {refusal}", method.view.target)));
        }
        if dry_run {
            return Ok(respond(
                UnsubscribeOutcome::WouldExecute,
                format!("would use {:?} to {}", method.view.kind, method.view.target),
            ));
        }
        // Durable before acting: a crash now leaves `pending`, which is never retried blindly.
        self.record(candidate, method, &hash, UnsubscribeOutcome::Pending).await?;
        let (outcome, detail) = match method.view.kind {
            MethodKind::OneClick => self.one_click(method).await,
            MethodKind::Mailto => self.mailto(method).await,
            MethodKind::Manual => unreachable_manual(),
        };
        self.record(candidate, method, &hash, outcome).await?;
        Ok(respond(outcome, detail))
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

    async fn mailto(&self, method: &ExecutableMethod) -> (UnsubscribeOutcome, String) {
        let Some(target) = parse_mailto(&method.uri) else {
            return (UnsubscribeOutcome::Failed, "mailto URI no longer parses".into());
        };
        let owner = self.provider.owner().await.ok().flatten();
        let subject = target.subject.clone().unwrap_or_else(|| "unsubscribe".into());
        let body = target.body.clone().unwrap_or_else(|| "unsubscribe".into());
        let raw = plain_message(owner.as_deref(), &target.address, &subject, &body);
        match self.provider.send_raw(raw).await {
            Ok(id) => (UnsubscribeOutcome::MailtoSent, format!("sent as message {id}")),
            Err(error) => (UnsubscribeOutcome::Failed, error.to_string()),
        }
    }

    async fn record(
        &self,
        candidate: &Candidate,
        method: &ExecutableMethod,
        hash: &str,
        outcome: UnsubscribeOutcome,
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
                    imported: None,
                };
                methods.senders.insert(candidate.view.key.clone(), record);
            })
            .await
            .map_err(state_error)
    }
}

fn unreachable_manual() -> (UnsubscribeOutcome, String) {
    // `choose` never returns a manual method.
    (UnsubscribeOutcome::ManualRequired, "manual links are never executed".into())
}

fn choose(candidate: &Candidate, choice: Option<MethodKind>) -> Result<&ExecutableMethod, DomainError> {
    let method = match choice {
        Some(kind) => candidate.methods.iter().find(|m| m.view.kind == kind).ok_or_else(|| {
            DomainError::InvalidInput(format!("candidate {} has no {kind:?} method", candidate.view.key))
        })?,
        None => candidate.methods.iter().find(|m| m.view.automatic).ok_or_else(|| {
            DomainError::Refused(format!(
                "candidate {} has no method that may run unattended; a person must unsubscribe",
                candidate.view.key
            ))
        })?,
    };
    if method.view.kind == MethodKind::Manual {
        return Err(DomainError::Refused(format!(
            "manual links are never executed; open {} yourself",
            method.view.target
        )));
    }
    if !method.view.automatic {
        return Err(DomainError::Refused(format!("{:?} refused: {}", method.view.kind, method.view.reason)));
    }
    Ok(method)
}
