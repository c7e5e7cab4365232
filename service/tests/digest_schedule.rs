//! The real `mailagent` binary sends the scheduled digest (DIGEST_SCHEDULE) on its own. (That a
//! slot is claimed before sending, so a restart neither repeats nor replays one, is the mail
//! crate's `schedule` tests.)

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Starts the workload on the sample Maildir with a digest due at the start of every minute.
fn start(dir: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_mailagent"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AGENT_API_KEY", "digest-schedule-test-key-0123456789")
        .env("MAILAGENT_LISTEN", "127.0.0.1:0")
        .env("MAILDIR_PATH", dir.join("maildir"))
        .env("MAILAGENT_STATE_DIR", dir.join("state"))
        .env("DIGEST_SCHEDULE", "* * * * * *")
        .env("DIGEST_RECIPIENT", "owner@example.com")
        .env("MAILAGENT_TIMEZONE", "Europe/Berlin")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the mailagent binary")
}

fn sent(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("state/outbox/new")).map(|entries| entries.count()).unwrap_or(0)
}

fn wait_for(what: &str, deadline: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < deadline, "timed out after {deadline:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_binary_sends_scheduled_digests_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    common::copy_sample_maildir(&dir.path().join("maildir"));
    let mut workload = start(dir.path());
    // A schedule with seconds fires every second; two digests prove it keeps going after the first.
    wait_for("two scheduled digests in the outbox", Duration::from_secs(30), || sent(dir.path()) >= 2);
    workload.kill().unwrap();
    workload.wait().unwrap();
    let digest = std::fs::read_dir(dir.path().join("state/outbox/new")).unwrap().next().unwrap().unwrap().path();
    let text = std::fs::read_to_string(digest).unwrap();
    assert!(text.contains("owner@example.com"), "the digest goes to DIGEST_RECIPIENT");
}
