//! Interval arithmetic for availability: working windows per local day (DST-aware), busy merging,
//! subtraction and buffers. Pure functions over UTC instants.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::api::{DomainError, Weekday, WorkingHours};

/// A half-open UTC interval.
pub type Span = (DateTime<Utc>, DateTime<Utc>);

/// Longest window accepted.
pub const MAX_WINDOW_DAYS: i64 = 62;

/// Checks a request window.
pub fn check_window(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<(), DomainError> {
    if end <= start {
        return Err(DomainError::InvalidInput("end must be after start".into()));
    }
    if end - start > Duration::days(MAX_WINDOW_DAYS) {
        return Err(DomainError::InvalidInput(format!("the window may span at most {MAX_WINDOW_DAYS} days")));
    }
    Ok(())
}

/// Parsed working hours.
#[derive(Debug, Clone)]
pub struct Hours {
    start: NaiveTime,
    end: NaiveTime,
    days: Vec<chrono::Weekday>,
}

impl Hours {
    /// Monday to Friday, 09:00 to 17:00.
    pub fn office() -> Self {
        use chrono::Weekday::*;
        Self {
            start: NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default(),
            end: NaiveTime::from_hms_opt(17, 0, 0).unwrap_or_default(),
            days: vec![Mon, Tue, Wed, Thu, Fri],
        }
    }

    /// The whole day, every day.
    pub fn always() -> Self {
        use chrono::Weekday::*;
        Self { start: NaiveTime::MIN, end: NaiveTime::MIN, days: vec![Mon, Tue, Wed, Thu, Fri, Sat, Sun] }
    }

    /// Validates the request's working hours.
    pub fn parse(hours: &WorkingHours) -> Result<Self, DomainError> {
        let time = |text: &str| {
            NaiveTime::parse_from_str(text, "%H:%M")
                .map_err(|_| DomainError::InvalidInput(format!("working hours time {text:?} is not HH:MM")))
        };
        let (start, end) = (time(&hours.start)?, time(&hours.end)?);
        if end <= start {
            return Err(DomainError::InvalidInput("working hours end must be after start".into()));
        }
        if hours.days.is_empty() {
            return Err(DomainError::InvalidInput("working hours need at least one day".into()));
        }
        let days = hours.days.iter().map(|d| to_chrono(*d)).collect();
        Ok(Self { start, end, days })
    }

    /// Working windows intersecting `[from, to)`, in UTC. A local time that does not exist (the
    /// spring-forward gap) moves to the first instant after the gap; an ambiguous one (fall-back)
    /// starts at the earlier and ends at the later instant, so no working time is lost.
    pub fn windows(&self, zone: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Span> {
        let first = from.with_timezone(&zone).date_naive() - Duration::days(1);
        let last = to.with_timezone(&zone).date_naive() + Duration::days(1);
        let mut spans = Vec::new();
        let mut day = first;
        while day <= last {
            if self.days.contains(&chrono::Datelike::weekday(&day)) {
                let end_day = if self.end <= self.start { day + Duration::days(1) } else { day };
                if let (Some(start), Some(end)) =
                    (local(zone, day, self.start, true), local(zone, end_day, self.end, false))
                {
                    let span = (start.max(from), end.min(to));
                    if span.0 < span.1 {
                        spans.push(span);
                    }
                }
            }
            day += Duration::days(1);
        }
        spans
    }
}

fn local(zone: Tz, day: NaiveDate, time: NaiveTime, is_start: bool) -> Option<DateTime<Utc>> {
    let mut naive = day.and_time(time);
    // Walk forward out of a DST gap (at most a few hours anywhere on Earth).
    for _ in 0..8 {
        let mapped = zone.from_local_datetime(&naive);
        let chosen = if is_start { mapped.earliest() } else { mapped.latest() };
        if let Some(instant) = chosen {
            return Some(instant.with_timezone(&Utc));
        }
        naive += Duration::minutes(30);
    }
    None
}

fn to_chrono(day: Weekday) -> chrono::Weekday {
    match day {
        Weekday::Mon => chrono::Weekday::Mon,
        Weekday::Tue => chrono::Weekday::Tue,
        Weekday::Wed => chrono::Weekday::Wed,
        Weekday::Thu => chrono::Weekday::Thu,
        Weekday::Fri => chrono::Weekday::Fri,
        Weekday::Sat => chrono::Weekday::Sat,
        Weekday::Sun => chrono::Weekday::Sun,
    }
}

/// Sorts and merges overlapping or touching spans.
pub fn merge(mut spans: Vec<Span>) -> Vec<Span> {
    spans.retain(|(start, end)| start < end);
    spans.sort();
    let mut merged: Vec<Span> = Vec::with_capacity(spans.len());
    for (start, end) in spans {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

/// `free − busy` by a linear sweep; both inputs merged and sorted.
pub fn subtract(free: &[Span], busy: &[Span]) -> Vec<Span> {
    let mut out = Vec::new();
    let mut b = 0;
    for &(mut start, end) in free {
        while b < busy.len() && busy[b].1 <= start {
            b += 1;
        }
        let mut i = b;
        while i < busy.len() && busy[i].0 < end {
            if busy[i].0 > start {
                out.push((start, busy[i].0));
            }
            start = start.max(busy[i].1);
            i += 1;
        }
        if start < end {
            out.push((start, end));
        }
    }
    out
}

/// Widens each busy span by the buffers.
pub fn widen(busy: &[Span], before: Duration, after: Duration) -> Vec<Span> {
    merge(busy.iter().map(|(start, end)| (*start - before, *end + after)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn subtract_and_merge() {
        let free = vec![(at("2026-01-05T09:00:00Z"), at("2026-01-05T17:00:00Z"))];
        let busy = merge(vec![
            (at("2026-01-05T10:00:00Z"), at("2026-01-05T11:00:00Z")),
            (at("2026-01-05T10:30:00Z"), at("2026-01-05T12:00:00Z")),
            (at("2026-01-05T16:00:00Z"), at("2026-01-05T18:00:00Z")),
        ]);
        assert_eq!(busy.len(), 2);
        assert_eq!(
            subtract(&free, &busy),
            vec![
                (at("2026-01-05T09:00:00Z"), at("2026-01-05T10:00:00Z")),
                (at("2026-01-05T12:00:00Z"), at("2026-01-05T16:00:00Z"))
            ]
        );
    }

    #[test]
    fn working_hours_follow_dst() {
        let zone: Tz = "Europe/Berlin".parse().unwrap();
        let hours = Hours::office();
        // Friday 27 March (UTC+1) and Monday 30 March 2026 (UTC+2, after the switch on the 29th).
        let spans = hours.windows(zone, at("2026-03-27T00:00:00Z"), at("2026-03-31T00:00:00Z"));
        assert_eq!(
            spans,
            vec![
                (at("2026-03-27T08:00:00Z"), at("2026-03-27T16:00:00Z")),
                (at("2026-03-30T07:00:00Z"), at("2026-03-30T15:00:00Z")),
            ]
        );
    }

    #[test]
    fn a_start_inside_the_spring_gap_moves_after_it() {
        let zone: Tz = "America/New_York".parse().unwrap();
        let hours = Hours {
            start: NaiveTime::from_hms_opt(2, 30, 0).unwrap(),
            end: NaiveTime::from_hms_opt(4, 0, 0).unwrap(),
            days: vec![chrono::Weekday::Sun],
        };
        let spans = hours.windows(zone, at("2026-03-08T00:00:00Z"), at("2026-03-09T00:00:00Z"));
        // 02:30 does not exist on 8 March 2026; 03:00 EDT is 07:00Z, 04:00 EDT is 08:00Z.
        assert_eq!(spans, vec![(at("2026-03-08T07:00:00Z"), at("2026-03-08T08:00:00Z"))]);
    }

    #[test]
    fn bad_inputs_are_refused() {
        let hours = WorkingHours { start: "17:00".into(), end: "09:00".into(), days: vec![Weekday::Mon] };
        assert!(Hours::parse(&hours).is_err());
        let hours = WorkingHours { start: "9am".into(), end: "17:00".into(), days: vec![Weekday::Mon] };
        assert!(Hours::parse(&hours).is_err());
        assert!(check_window(at("2026-01-02T00:00:00Z"), at("2026-01-01T00:00:00Z")).is_err());
        assert!(check_window(at("2026-01-01T00:00:00Z"), at("2026-06-01T00:00:00Z")).is_err());
    }
}
