//! One cron schedule type for the operator (which validates a `MailAgent`'s schedules) and the
//! workload (which runs them), so "admitted and Ready" means "runs when the user expects".
//!
//! # Grammar
//! The one Kubernetes CronJob users know: exactly five fields, `minute hour day-of-month month
//! day-of-week`, each a `*`, a number, a range `a-b` or a list `a,b-c`, each optionally with a
//! step `/n`. Months may be written `JAN`-`DEC` and days `SUN`-`SAT` (any case); day-of-week 0
//! and 7 are both Sunday. The macros are `@yearly` (= `@annually`), `@monthly`, `@weekly`,
//! `@daily` (= `@midnight`) and `@hourly`. No seconds, years, `L`, `W`, `#`, `?` or `@every`.
//! Numbers and steps have at most two digits and stay within the field (a step is 1 up to the
//! field's maximum); ranges run forwards.
//!
//! As in Vixie cron and robfig/cron: when both day fields are restricted a day matches if
//! either matches (`0 8 1 * MON` is the 1st and every Monday); when either starts with `*` a
//! day must match both (`0 8 */2 * MON` is a Monday with an odd day of month).
//!
//! # Time zones and daylight saving time
//! Expressions are read in wall-clock time of an IANA zone ([`ZonedSchedule`]). Across DST
//! changes this follows `croner`, which behaves like Vixie cron:
//! - a job at a fixed time (single minute and hour, e.g. `30 2 * * *`) whose time is skipped
//!   when clocks go forward runs once at the first minute after the gap (03:00);
//! - every other job (a `*`, a step, a list or range in minute or hour) does not run at the
//!   skipped times;
//! - no wall-clock time runs twice: in the hour that repeats when clocks go back, only its first
//!   pass runs (an hourly job waits two hours once a year; a digest is never sent twice).
//!
//! Kubernetes CronJobs (robfig/cron) differ on the gap: they skip a fixed-time run that falls in
//! it. `src/tests.rs` pins each case.

mod cel;
mod grammar;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
pub use chrono_tz::Tz;

pub use cel::{CEL_MESSAGE, CEL_RULE, PATTERN};

/// Why an expression or a zone was refused; the text names the part that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// Nothing but whitespace.
    #[error("the expression is empty")]
    Empty,
    /// `@` followed by something other than the known macros.
    #[error("{0:?} is not one of @yearly @annually @monthly @weekly @daily @midnight @hourly")]
    UnknownMacro(String),
    /// Not five fields.
    #[error("{0} fields: expected five (minute hour day-of-month month day-of-week)")]
    FieldCount(usize),
    /// One field is wrong.
    #[error("{field} {text:?}: {reason}")]
    Field {
        /// Which field (`minute`, `day of week`...).
        field: &'static str,
        /// The field as written.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `croner` refused the checked expression (not expected; kept rather than unwrapped).
    #[error("{0}")]
    Cron(String),
    /// Not an IANA time zone name.
    #[error("{0:?} is not an IANA time zone (e.g. Europe/Berlin)")]
    TimeZone(String),
}

/// A parsed cron expression, not yet tied to a time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    expression: String,
    cron: croner::Cron,
}

impl Schedule {
    /// Parses the grammar described in the crate documentation.
    pub fn parse(expression: &str) -> Result<Self, ScheduleError> {
        let numeric = grammar::normalize(expression)?;
        let cron = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Disallowed)
            .year(croner::parser::Year::Disallowed)
            .dom_and_dow(numeric.days_and)
            .build()
            .parse(&numeric.text)
            .map_err(|e| ScheduleError::Cron(e.to_string()))?;
        Ok(Self { expression: expression.trim().to_owned(), cron })
    }

    /// The expression as written (trimmed).
    pub fn as_str(&self) -> &str {
        &self.expression
    }

    /// The first run strictly after `after`, reading the expression in `zone`; `None` when
    /// there is none before the year 5000 (e.g. `0 0 31 2 *`).
    pub fn next_after(&self, after: DateTime<Utc>, zone: Tz) -> Option<DateTime<Utc>> {
        self.cron.find_next_occurrence(&after.with_timezone(&zone), false).ok().map(|at| at.with_timezone(&Utc))
    }

    /// Ties the schedule to a time zone.
    pub fn in_zone(self, zone: Tz) -> ZonedSchedule {
        ZonedSchedule { schedule: self, zone }
    }
}

impl FromStr for Schedule {
    type Err = ScheduleError;
    fn from_str(s: &str) -> Result<Self, ScheduleError> {
        Self::parse(s)
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.expression)
    }
}

/// A schedule read in one IANA time zone: what the workload runs.
#[derive(Debug, Clone)]
pub struct ZonedSchedule {
    schedule: Schedule,
    zone: Tz,
}

impl ZonedSchedule {
    /// Parses `expression` and `zone` (an IANA name such as `Europe/Berlin`).
    pub fn parse(expression: &str, zone: &str) -> Result<Self, ScheduleError> {
        Ok(Schedule::parse(expression)?.in_zone(parse_time_zone(zone)?))
    }

    /// The first run strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedule.next_after(after, self.zone)
    }

    /// Runs strictly after `after`, in order.
    pub fn runs_after(&self, after: DateTime<Utc>) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        std::iter::successors(self.next_after(after), |last| self.next_after(*last))
    }

    /// The schedule.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// The zone.
    pub fn zone(&self) -> Tz {
        self.zone
    }
}

/// Parses an IANA time zone name (`UTC`, `Europe/Berlin`); surrounding whitespace is ignored.
pub fn parse_time_zone(name: &str) -> Result<Tz, ScheduleError> {
    name.trim().parse::<Tz>().map_err(|_| ScheduleError::TimeZone(name.to_owned()))
}

#[cfg(test)]
mod tests;
