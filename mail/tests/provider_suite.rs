//! The shared provider suite over a Maildir (the Gmail run is in `tests/emulator.rs`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use mailagent_mail::message::MessageMeta;
use mailagent_mail::provider::MailProvider;
use mailagent_mail::provider::maildir::MaildirProvider;
use mailagent_mail::provider::suite::{Fixture, run};

struct Maildir {
    _dir: tempfile::TempDir,
    root: PathBuf,
    outbox: PathBuf,
    provider: MaildirProvider,
    delivered: AtomicU64,
}

#[async_trait]
impl Fixture for Maildir {
    fn provider(&self) -> &dyn MailProvider {
        &self.provider
    }

    async fn deliver(&self, raw: &[u8]) {
        let n = self.delivered.fetch_add(1, Ordering::SeqCst);
        std::fs::write(self.root.join("new").join(format!("17630000{n:02}.M{n}P1.suite")), raw).unwrap();
    }

    async fn sent(&self) -> Vec<MessageMeta> {
        let Ok(entries) = std::fs::read_dir(self.outbox.join("new")) else { return Vec::new() };
        entries
            .map(|e| {
                let path = e.unwrap().path();
                MessageMeta::from_raw(path.display().to_string(), vec![], &std::fs::read(path).unwrap())
            })
            .collect()
    }
}

#[tokio::test]
async fn maildir_passes_the_provider_suite() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("maildir");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    let outbox = dir.path().join("outbox");
    let provider = MaildirProvider::open(&root, outbox.clone(), Some("owner@mail.example".into())).unwrap();
    run(&Maildir { _dir: dir, root, outbox, provider, delivered: AtomicU64::new(0) }).await;
}
