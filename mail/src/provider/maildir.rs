//! A local Maildir as the mailbox: the embedded default and the test fixture.
//!
//! The inbox is the Maildir's own `cur/` and `new/`. Sent mail (unsubscribe mailtos, digests) is
//! delivered into a separate `outbox` Maildir under the state directory, since there is no
//! transport here; it is what a person or a test inspects.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use super::{History, MailProvider, ProviderError};
use crate::message::MessageMeta;

/// Largest header block read from one file; the rest of a message is never needed.
const MAX_HEADER_BYTES: u64 = 256 * 1024;

/// A Maildir-backed mailbox.
#[derive(Debug)]
pub struct MaildirProvider {
    root: PathBuf,
    outbox: PathBuf,
    owner: Option<String>,
    authserv_id: Option<String>,
    sent: AtomicU64,
}

impl MaildirProvider {
    /// Opens `root` (which must hold `cur/` or `new/`); outgoing mail goes to `outbox`.
    pub fn open(root: &Path, outbox: PathBuf, owner: Option<String>) -> Result<Self, ProviderError> {
        if !root.join("cur").is_dir() && !root.join("new").is_dir() {
            return Err(ProviderError::Permanent(format!("{} is not a Maildir (no cur/ or new/)", root.display())));
        }
        Ok(Self { root: root.to_path_buf(), outbox, owner, authserv_id: None, sent: AtomicU64::new(0) })
    }

    /// Trusts the `Authentication-Results` of the mail server that delivers into this Maildir,
    /// named by its `authserv-id` (`MAILDIR_AUTHSERV_ID`). Without one, no unsubscribe is automatic.
    pub fn trusting(mut self, authserv_id: Option<String>) -> Self {
        self.authserv_id = authserv_id.map(|id| id.trim().to_string()).filter(|id| !id.is_empty());
        self
    }

    /// Every message file as (id, path, flags), newest modification first.
    fn entries(&self) -> Result<Vec<(String, PathBuf, String)>, ProviderError> {
        let mut entries = Vec::new();
        for sub in ["new", "cur"] {
            let dir = self.root.join(sub);
            let Ok(listing) = fs::read_dir(&dir) else { continue };
            for entry in listing {
                let entry = entry.map_err(|e| ProviderError::Transient(format!("reading {}: {e}", dir.display())))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') {
                    continue;
                }
                let (id, flags) = match name.split_once(":2,") {
                    Some((id, flags)) => (id.to_string(), flags.to_string()),
                    None => (name.clone(), String::new()),
                };
                let modified = entry.metadata().and_then(|m| m.modified()).ok();
                entries.push((modified, id, entry.path(), flags));
            }
        }
        entries.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        Ok(entries.into_iter().map(|(_, id, path, flags)| (id, path, flags)).collect())
    }
}

fn labels_from_flags(flags: &str) -> Vec<String> {
    let mut labels = vec!["INBOX".to_string()];
    if !flags.contains('S') {
        labels.push("UNREAD".to_string());
    }
    if flags.contains('F') {
        labels.push("STARRED".to_string());
    }
    labels
}

fn read_headers(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    fs::File::open(path)?.take(MAX_HEADER_BYTES).read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[async_trait]
impl MailProvider for MaildirProvider {
    fn name(&self) -> &'static str {
        "maildir"
    }

    fn authserv_id(&self) -> Option<&str> {
        self.authserv_id.as_deref()
    }

    async fn owner(&self) -> Result<Option<String>, ProviderError> {
        Ok(self.owner.clone())
    }

    async fn checkpoint(&self) -> Result<Option<String>, ProviderError> {
        Ok(None)
    }

    async fn list_ids(&self, _query: Option<&str>, max: usize) -> Result<Vec<String>, ProviderError> {
        Ok(self.entries()?.into_iter().take(max).map(|(id, _, _)| id).collect())
    }

    async fn fetch(&self, ids: &[String]) -> Result<Vec<MessageMeta>, ProviderError> {
        let wanted: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
        let mut messages = Vec::new();
        for (id, path, flags) in self.entries()? {
            if !wanted.contains(id.as_str()) {
                continue;
            }
            match read_headers(&path) {
                Ok(bytes) => messages.push(MessageMeta::from_raw(id, labels_from_flags(&flags), &bytes)),
                // Moved or deleted between listing and reading: it is simply gone.
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(ProviderError::Transient(format!("reading {}: {error}", path.display()))),
            }
        }
        Ok(messages)
    }

    async fn history(&self, _checkpoint: &str) -> Result<History, ProviderError> {
        Ok(History::Unsupported)
    }

    async fn send_raw(&self, raw: Vec<u8>) -> Result<String, ProviderError> {
        let sequence = self.sent.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}.{}_{sequence}.mailagent", chrono::Utc::now().timestamp_micros(), std::process::id());
        let deliver = || -> std::io::Result<()> {
            for sub in ["tmp", "new", "cur"] {
                fs::create_dir_all(self.outbox.join(sub))?;
            }
            // Maildir delivery: write into tmp/, then rename into new/.
            let temporary = self.outbox.join("tmp").join(&id);
            fs::write(&temporary, &raw)?;
            fs::File::open(&temporary)?.sync_all()?;
            fs::rename(&temporary, self.outbox.join("new").join(&id))
        };
        deliver().map_err(|e| ProviderError::Transient(format!("delivering to {}: {e}", self.outbox.display())))?;
        Ok(id)
    }
}
