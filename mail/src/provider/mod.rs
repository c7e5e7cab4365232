//! Mailbox providers behind one trait: what scanning and sending need, nothing more.

pub mod gmail;
pub mod gmail_shapes;
pub mod maildir;
pub mod suite;
pub mod token;

use async_trait::async_trait;

use crate::api::DomainError;
use crate::message::MessageMeta;

/// A provider failure, with what would fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// Temporary: throttled, 5xx, network. Retrying later may work.
    #[error("temporary provider failure: {0}")]
    Transient(String),
    /// The mailbox owner's consent is gone (refresh token revoked or expired, credentials
    /// refused): only a person re-running the consent flow can fix it.
    #[error("{0}")]
    ReconsentRequired(String),
    /// Permanent: forbidden, malformed request, unusable configuration.
    #[error("provider failure: {0}")]
    Permanent(String),
}

/// The kind survives the trip to the doors: "retry later" and "re-consent" stay distinct.
impl From<ProviderError> for DomainError {
    fn from(error: ProviderError) -> Self {
        match error {
            transient @ ProviderError::Transient(_) => DomainError::Provider(transient.to_string()),
            ProviderError::ReconsentRequired(message) => DomainError::ReconsentRequired(message),
            permanent @ ProviderError::Permanent(_) => DomainError::ProviderRejected(permanent.to_string()),
        }
    }
}

/// What changed since a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum History {
    /// Ids added and removed since the checkpoint, and the new checkpoint.
    Delta {
        /// Messages added.
        added: Vec<String>,
        /// Messages deleted.
        removed: Vec<String>,
        /// Where the next incremental scan starts.
        checkpoint: String,
    },
    /// The checkpoint is too old (Gmail answers 404 for an expired history id): scan in full.
    Expired,
    /// The provider has no change log; listing is cheap enough to diff.
    Unsupported,
}

/// One mailbox.
#[async_trait]
pub trait MailProvider: Send + Sync {
    /// A short name for logs and errors (`maildir`, `gmail`).
    fn name(&self) -> &'static str;
    /// The `authserv-id` of the provider's own `Authentication-Results` (RFC 8601), the only
    /// verdicts unsubscribe trusts; `None` trusts none, so nothing runs unattended.
    fn authserv_id(&self) -> Option<&str> {
        None
    }
    /// The mailbox owner's address (the digest's default recipient), when known.
    async fn owner(&self) -> Result<Option<String>, ProviderError>;
    /// The checkpoint to continue from after a full scan that starts now.
    async fn checkpoint(&self) -> Result<Option<String>, ProviderError>;
    /// Message ids matching `query`, newest first, at most `max`.
    async fn list_ids(&self, query: Option<&str>, max: usize) -> Result<Vec<String>, ProviderError>;
    /// Header views of these messages (missing ones are skipped).
    async fn fetch(&self, ids: &[String]) -> Result<Vec<MessageMeta>, ProviderError>;
    /// Changes since `checkpoint`.
    async fn history(&self, checkpoint: &str) -> Result<History, ProviderError>;
    /// Sends a raw RFC 5322 message from the mailbox; returns the provider's message id.
    async fn send_raw(&self, raw: Vec<u8>) -> Result<String, ProviderError>;
    /// Quota units spent so far (0 where there is no quota).
    fn quota_units(&self) -> u64 {
        0
    }
    /// API calls made so far.
    fn calls(&self) -> u64 {
        0
    }
    /// Calls retried after throttling or a server error.
    fn retries(&self) -> u64 {
        0
    }
}

/// A shared provider is a provider (callers keep a handle for counters while the assistant owns one).
#[async_trait]
impl<T: MailProvider + ?Sized> MailProvider for std::sync::Arc<T> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn authserv_id(&self) -> Option<&str> {
        (**self).authserv_id()
    }
    async fn owner(&self) -> Result<Option<String>, ProviderError> {
        (**self).owner().await
    }
    async fn checkpoint(&self) -> Result<Option<String>, ProviderError> {
        (**self).checkpoint().await
    }
    async fn list_ids(&self, query: Option<&str>, max: usize) -> Result<Vec<String>, ProviderError> {
        (**self).list_ids(query, max).await
    }
    async fn fetch(&self, ids: &[String]) -> Result<Vec<MessageMeta>, ProviderError> {
        (**self).fetch(ids).await
    }
    async fn history(&self, checkpoint: &str) -> Result<History, ProviderError> {
        (**self).history(checkpoint).await
    }
    async fn send_raw(&self, raw: Vec<u8>) -> Result<String, ProviderError> {
        (**self).send_raw(raw).await
    }
    fn quota_units(&self) -> u64 {
        (**self).quota_units()
    }
    fn calls(&self) -> u64 {
        (**self).calls()
    }
    fn retries(&self) -> u64 {
        (**self).retries()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconsent_and_retry_later_stay_distinct_domain_errors() {
        let reconsent: DomainError = ProviderError::ReconsentRequired("refresh token revoked".into()).into();
        let transient: DomainError = ProviderError::Transient("HTTP 503".into()).into();
        let permanent: DomainError = ProviderError::Permanent("HTTP 403".into()).into();
        assert!(matches!(&reconsent, DomainError::ReconsentRequired(m) if m == "refresh token revoked"));
        assert!(matches!(transient, DomainError::Provider(_)));
        assert!(matches!(permanent, DomainError::ProviderRejected(_)));
        assert!(!reconsent.is_caller_fault());
    }
}
