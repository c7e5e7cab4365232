//! Mailbox providers behind one trait: what scanning and sending need, nothing more.

pub mod gmail;
pub mod gmail_shapes;
pub mod maildir;
pub mod suite;
pub mod token;

use async_trait::async_trait;

use crate::message::MessageMeta;

/// A provider failure, with whether a retry later could help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// Temporary: throttled, 5xx, network. Retrying later may work.
    #[error("temporary provider failure: {0}")]
    Transient(String),
    /// Permanent: bad credentials (re-consent needed), forbidden, malformed request.
    #[error("provider failure: {0}")]
    Permanent(String),
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
