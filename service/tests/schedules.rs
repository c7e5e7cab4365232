//! The real `mailagent` binary runs its schedules on its own: the digest (DIGEST_SCHEDULE) and the
//! periodic scan (SCAN_SCHEDULE); a schedule that is not cron stops the start. (That a digest slot
//! is claimed before sending, so a restart neither repeats nor replays one, is the mail crate's
//! `schedule` tests.)

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

/// The workload on a copy of the sample Maildir with a digest due every minute and a scan on
/// `scan`, its log in `dir/workload.log`.
fn start(dir: &Path, scan: &str) -> common::KillOnDrop {
    let mut command = common::workload_command(env!("CARGO_BIN_EXE_mailagent"), dir);
    command
        .env("AGENT_API_KEY", "digest-schedule-test-key-0123456789")
        .env("DIGEST_SCHEDULE", "* * * * *")
        .env("DIGEST_RECIPIENT", "owner@example.com")
        .env("SCAN_SCHEDULE", scan)
        .env("MAILAGENT_TIMEZONE", "Europe/Berlin");
    common::spawn_logged(&mut command, dir)
}

fn sent(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("state/outbox/new")).map(|entries| entries.count()).unwrap_or(0)
}

/// Waits for `done`; on timeout fails with the workload's log and its digest record, so a CI
/// failure says why (neither holds a secret: the log names no key, the record only slots).
fn wait_for(dir: &Path, what: &str, deadline: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > deadline {
            let record = std::fs::read_to_string(dir.join("state/data/digest_schedule.json")).unwrap_or_default();
            panic!(
                "timed out after {deadline:?} waiting for {what}; digest record: {record}\nworkload log:\n{}",
                common::workload_log(dir)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_binary_runs_its_digest_and_scan_schedules() {
    let dir = tempfile::tempdir().unwrap();
    let workload = start(dir.path(), "* * * * *");
    // The grammar is the CronJob one (issue 8): no seconds field, so the fastest schedule fires
    // each minute and two digests need two minute boundaries. Two prove it keeps going after the
    // first. Three boundaries' time: a start just before a boundary leaves that slot unowed.
    wait_for(dir.path(), "two scheduled digests in the outbox", Duration::from_secs(200), || sent(dir.path()) >= 2);
    wait_for(dir.path(), "a scheduled scan in the log", Duration::from_secs(30), || {
        common::workload_log(dir.path()).contains("scheduled scan")
    });
    drop(workload);
    let digest = std::fs::read_dir(dir.path().join("state/outbox/new")).unwrap().next().unwrap().unwrap().path();
    let text = std::fs::read_to_string(digest).unwrap();
    assert!(text.contains("owner@example.com"), "the digest goes to DIGEST_RECIPIENT");
}

#[test]
fn a_scan_schedule_that_is_not_cron_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut workload = start(dir.path(), "every morning");
    let mut status = None;
    wait_for(dir.path(), "the workload to refuse to start", Duration::from_secs(30), || {
        status = workload.0.try_wait().unwrap();
        status.is_some()
    });
    assert!(!status.unwrap().success(), "the workload must not start with a broken schedule");
    let log = common::workload_log(dir.path());
    assert!(log.contains("SCAN_SCHEDULE") && log.contains("not a cron expression"), "{log}");
}
