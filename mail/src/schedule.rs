//! The schedules: cron expressions read in the configured time zone, and the tasks that run them.
//! The digest's last slot is stored in `data/digest_schedule.json` so a restart neither repeats
//! nor replays a digest; the periodic scan needs no record (a scan is idempotent).
//!
//! At most once: a slot is claimed durably before the digest is sent, so a crash between the
//! claim and the send skips that slot rather than sending twice. After downtime only the latest
//! missed slot runs (one digest, not one per missed slot).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use mailagent_schedule::{Schedule, ZonedSchedule};
use serde::{Deserialize, Serialize};

use crate::api::{Assistant, DomainError, ScanRequest};
use crate::live::Live;
use crate::state::StateDocument;

/// A parsed cron schedule in a time zone (the digest and the periodic scan): the grammar and the
/// time-zone rules of [`mailagent_schedule`], the same type the operator validates with.
#[derive(Debug, Clone)]
pub struct CronSchedule(ZonedSchedule);

impl CronSchedule {
    /// Parses the Kubernetes CronJob grammar (five fields or a macro; see [`mailagent_schedule`]).
    pub fn parse(expression: &str, zone: Tz) -> Result<Self, DomainError> {
        let schedule = Schedule::parse(expression)
            .map_err(|e| DomainError::InvalidInput(format!("schedule {expression:?} is not a cron expression: {e}")))?;
        Ok(Self(schedule.in_zone(zone)))
    }

    /// A schedule already parsed (the workload's settings), read in `zone`.
    pub fn new(schedule: Schedule, zone: Tz) -> Self {
        Self(schedule.in_zone(zone))
    }

    /// The first slot strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.0.next_after(after)
    }

    /// The slot to run now, if any: the latest slot after the last claimed one and not after `now`.
    pub fn due(&self, progress: &ScheduleProgress, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let last = progress.last_slot?;
        self.0.runs_after(last).take_while(|slot| *slot <= now).last()
    }
}

/// `data/digest_schedule.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleProgress {
    /// Schema version.
    pub schema: u32,
    /// The last slot claimed (or the moment the schedule started, so past slots never replay).
    pub last_slot: Option<DateTime<Utc>>,
    /// How the last claimed slot ended (`sent` or an error).
    #[serde(default)]
    pub last_outcome: Option<String>,
}

impl StateDocument for ScheduleProgress {
    const SCHEMA: u32 = 1;
    fn schema(&self) -> u32 {
        self.schema
    }
    fn from_legacy(_value: serde_json::Value) -> Option<Self> {
        None
    }
}

/// Runs the digest schedule until the task is dropped: wakes at each slot (and at least every
/// minute, so clock jumps are noticed) and sends what is due. Returns at once when no schedule
/// is configured. The service spawns this next to its servers.
pub async fn run_digest_schedule(assistant: Arc<dyn Assistant>) {
    // Once at start: a first start records its start moment now. Recorded lazily at the first
    // wake instead, that moment fell just after the first slot, which was then never owed.
    if let Err(error) = assistant.run_due_digest(Utc::now()).await {
        tracing::warn!(%error, "scheduled digest failed");
    }
    loop {
        let now = Utc::now();
        let Some(next) = assistant.next_digest(now) else { return };
        let wait = (next - now).to_std().unwrap_or_default().min(std::time::Duration::from_secs(60));
        tokio::time::sleep(wait).await;
        match assistant.run_due_digest(Utc::now()).await {
            Ok(Some(digest)) => tracing::info!(candidates = digest.candidates, "scheduled digest sent"),
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "scheduled digest failed"),
        }
    }
}

/// Scans at each slot of `schedule` (`SCAN_SCHEDULE`) until the task is dropped, so the
/// incremental checkpoint stays fresh: candidates and digests stay cheap, and the Gmail history
/// window (about a week) does not lapse into a full scan. One scan at a time; a slot missed while
/// a scan ran is skipped, not queued. Wakes at least every minute, so clock jumps are noticed.
///
/// Each scan starts `delay` seconds after its slot (`SCAN_SCHEDULE_DELAY_SECONDS`, the agent's
/// place in its quota group's spread, read again at every slot): see [`scan_start`].
pub async fn run_scan_schedule(assistant: Arc<dyn Assistant>, schedule: CronSchedule, delay: Live) {
    loop {
        let Some(slot) = schedule.next_after(Utc::now()) else { return };
        let start = scan_start(&schedule, slot, delay.get());
        loop {
            let now = Utc::now();
            if now >= start {
                break;
            }
            tokio::time::sleep((start - now).to_std().unwrap_or_default().min(std::time::Duration::from_secs(60)))
                .await;
        }
        match assistant.scan(ScanRequest::default()).await {
            Ok(scan) => tracing::info!(
                fetched = scan.fetched_messages,
                incremental = scan.incremental,
                total = scan.total_messages,
                "scheduled scan"
            ),
            Err(error) => tracing::warn!(%error, "scheduled scan failed"),
        }
    }
}

/// When the scan of `slot` starts: `delay_seconds` later, wrapped to less than the gap to the
/// next slot, so that a frequent schedule keeps its rate (the agents of a group then spread over
/// the gap instead of the whole delay).
pub fn scan_start(schedule: &CronSchedule, slot: DateTime<Utc>, delay_seconds: u32) -> DateTime<Utc> {
    let mut delay = i64::from(delay_seconds);
    if let Some(next) = schedule.next_after(slot) {
        let gap = (next - slot).num_seconds();
        if gap > 0 {
            delay %= gap;
        }
    }
    slot + chrono::Duration::seconds(delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn slots_follow_the_zone_across_dst() {
        let schedule = CronSchedule::parse("0 8 * * *", "Europe/Berlin".parse().unwrap()).unwrap();
        // 08:00 Berlin is 07:00Z in winter and 06:00Z in summer (switch on 29 March 2026).
        assert_eq!(schedule.next_after(at("2026-03-28T12:00:00Z")), Some(at("2026-03-29T06:00:00Z")));
        assert_eq!(schedule.next_after(at("2026-03-27T12:00:00Z")), Some(at("2026-03-28T07:00:00Z")));
    }

    #[test]
    fn a_scan_starts_its_delay_after_the_slot_but_before_the_next() {
        let hourly = CronSchedule::parse("0 * * * *", Tz::UTC).unwrap();
        let slot = at("2026-11-28T10:00:00Z");
        assert_eq!(scan_start(&hourly, slot, 0), slot);
        assert_eq!(scan_start(&hourly, slot, 17 * 60), at("2026-11-28T10:17:00Z"));
        // Every five minutes: a 17-minute delay wraps to 2 minutes, so scans still run every five.
        let frequent = CronSchedule::parse("*/5 * * * *", Tz::UTC).unwrap();
        assert_eq!(scan_start(&frequent, slot, 17 * 60), at("2026-11-28T10:02:00Z"));
    }

    #[test]
    fn only_the_latest_missed_slot_runs_and_never_twice() {
        let schedule = CronSchedule::parse("0 8 * * *", Tz::UTC).unwrap();
        let mut progress =
            ScheduleProgress { schema: 1, last_slot: Some(at("2026-01-01T08:00:00Z")), last_outcome: None };
        assert_eq!(schedule.due(&progress, at("2026-01-01T20:00:00Z")), None);
        assert_eq!(schedule.due(&progress, at("2026-01-04T09:00:00Z")), Some(at("2026-01-04T08:00:00Z")));
        progress.last_slot = Some(at("2026-01-04T08:00:00Z"));
        assert_eq!(schedule.due(&progress, at("2026-01-04T09:00:00Z")), None);
        assert_eq!(
            schedule.due(&ScheduleProgress::default(), at("2026-01-04T09:00:00Z")),
            None,
            "no baseline, no replay"
        );
    }

    #[test]
    fn bad_expressions_are_refused() {
        assert!(CronSchedule::parse("every day", Tz::UTC).is_err());
        assert!(CronSchedule::parse("61 * * * *", Tz::UTC).is_err());
        assert!(CronSchedule::parse("0 0 8 * * *", Tz::UTC).is_err(), "no seconds field");
    }

    /// Issue 8, defect 1: the `cron` crate read day-of-week 1 as Sunday, so a Monday-to-Friday
    /// digest went out Sunday to Thursday.
    #[test]
    fn monday_to_friday_means_monday_to_friday() {
        use chrono::{Datelike, Weekday::*};
        let schedule = CronSchedule::parse("0 8 * * 1-5", Tz::UTC).unwrap();
        // 2026-03-01 is a Sunday.
        let mut after = at("2026-03-01T00:00:00Z");
        let mut days = Vec::new();
        for _ in 0..7 {
            after = schedule.next_after(after).unwrap();
            days.push(after.weekday());
        }
        assert_eq!(days, [Mon, Tue, Wed, Thu, Fri, Mon, Tue]);
    }

    /// Issue 8, defect 1: `0 8 * * 0` and `@annually` passed admission and the operator, then
    /// stopped the workload at start.
    #[test]
    fn sunday_zero_and_the_annual_macro_run() {
        let sunday = CronSchedule::parse("0 8 * * 0", Tz::UTC).unwrap();
        assert_eq!(sunday.next_after(at("2026-03-02T00:00:00Z")), Some(at("2026-03-08T08:00:00Z")));
        let annual = CronSchedule::parse("@annually", Tz::UTC).unwrap();
        assert_eq!(annual.next_after(at("2026-03-02T00:00:00Z")), Some(at("2027-01-01T00:00:00Z")));
    }
}
