//! The assistant that wires providers, triage, unsubscribe, digest and calendar together.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;

use crate::api::*;

/// An assistant over one mailbox and one state directory.
struct LocalAssistant {
    maildir: PathBuf,
    state_dir: PathBuf,
}

pub(crate) fn open_maildir(maildir: &Path, state_dir: &Path) -> Result<Arc<dyn Assistant>, DomainError> {
    if !maildir.is_dir() {
        return Err(DomainError::InvalidInput(format!("Maildir {} is not a directory", maildir.display())));
    }
    Ok(Arc::new(LocalAssistant { maildir: maildir.to_path_buf(), state_dir: state_dir.to_path_buf() }))
}

fn not_yet(capability: &str) -> DomainError {
    DomainError::Provider(format!("{capability} is not available in this build yet"))
}

#[async_trait]
impl Assistant for LocalAssistant {
    async fn scan(&self, _request: ScanRequest) -> Result<ScanResponse, DomainError> {
        let _ = (&self.maildir, &self.state_dir);
        Err(not_yet("scan"))
    }
    async fn unsubscribe_candidates(&self, _request: CandidatesRequest) -> Result<CandidatesResponse, DomainError> {
        Err(not_yet("unsubscribe discovery"))
    }
    async fn unsubscribe(&self, _request: UnsubscribeRequest) -> Result<UnsubscribeResponse, DomainError> {
        Err(not_yet("unsubscribe execution"))
    }
    async fn digest(&self, _request: DigestRequest) -> Result<DigestResponse, DomainError> {
        Err(not_yet("digest"))
    }
    async fn availability(&self, _request: AvailabilityRequest) -> Result<AvailabilityResponse, DomainError> {
        Err(not_yet("availability"))
    }
    async fn meeting_intervals(
        &self,
        _request: MeetingIntervalsRequest,
    ) -> Result<MeetingIntervalsResponse, DomainError> {
        Err(not_yet("meeting intervals"))
    }
    fn metrics(&self) -> DomainMetrics {
        DomainMetrics::default()
    }
}
