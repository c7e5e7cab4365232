//! Busy time from calendars, and the two availability capabilities over it.
//!
//! Local calendars are iCalendar files: `icalendar` parses the components, `rrule` expands
//! RRULE/RDATE/EXDATE with IANA zones. Cancelled and transparent events do not block; a
//! `RECURRENCE-ID` override replaces the occurrence it names; all-day and floating times are
//! read in the request's zone. A calendar that cannot be read is reported and its whole window
//! counted as busy, never as free.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use icalendar::parser::{Component, read_calendar, unfold};

use crate::api::*;
use crate::intervals::{Hours, Span, check_window, merge, subtract, widen};

/// Most occurrences expanded per recurring event inside one window.
const MAX_OCCURRENCES: u16 = 2_000;

/// Where busy time comes from.
#[derive(Debug, Clone)]
pub enum CalendarSource {
    /// A local iCalendar file.
    Ics(PathBuf),
    /// Google Calendar free/busy for some calendars of one account.
    Google {
        /// The account's client.
        client: GoogleCalendar,
    },
}

impl CalendarSource {
    fn name(&self) -> String {
        match self {
            Self::Ics(path) => format!("ics:{}", path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()),
            Self::Google { client } => format!("google:{}", client.calendars.join(",")),
        }
    }
}

/// Google Calendar through `google-calendar3`'s `freebusy.query`, with the narrowest scope
/// (`calendar.freebusy`): busy blocks only, no event details.
#[derive(Clone)]
pub struct GoogleCalendar {
    hub: Arc<google_calendar3::CalendarHub<crate::provider::gmail::Connector>>,
    calendars: Vec<String>,
}

impl std::fmt::Debug for GoogleCalendar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleCalendar").field("calendars", &self.calendars).finish_non_exhaustive()
    }
}

/// Google's Calendar API base (`base_url`); `root_url` is the host part.
pub const GOOGLE_CALENDAR_DEFAULT_URL: &str = "https://www.googleapis.com/calendar/v3/";
/// Longest wait for a free/busy answer.
const FREEBUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

impl GoogleCalendar {
    /// A client for `calendars` (ids; `primary` is the account's own) at `base_url` (the
    /// `.../calendar/v3/` prefix, trailing slash added when missing).
    pub fn new<A: google_calendar3::common::GetToken + 'static>(
        base_url: &str,
        calendars: Vec<String>,
        auth: A,
    ) -> Result<Self, DomainError> {
        let connector = crate::provider::gmail::connector().map_err(|e| DomainError::Provider(e.to_string()))?;
        #[allow(
            clippy::disallowed_methods,
            reason = "the Google API client: a configured base URL that passed the endpoint rule"
        )]
        let client = google_calendar3::hyper_util::client::legacy::Client::builder(
            google_calendar3::hyper_util::rt::TokioExecutor::new(),
        )
        .build(connector);
        let mut hub = google_calendar3::CalendarHub::new(client, auth);
        let base = crate::provider::gmail::with_slash(base_url);
        hub.base_url(base.clone());
        if let Some(root) = base.strip_suffix("calendar/v3/") {
            hub.root_url(root.to_string());
        }
        let calendars = if calendars.is_empty() { vec!["primary".to_string()] } else { calendars };
        Ok(Self { hub: Arc::new(hub), calendars })
    }

    /// Busy spans per calendar over `[from, to)`; a calendar Google reports errors for (or leaves
    /// out) is an `Err`, so its window counts as busy.
    async fn busy(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<(String, Result<Vec<Span>, String>)> {
        use google_calendar3::api::{FreeBusyRequest, FreeBusyRequestItem, Scope};
        let request = FreeBusyRequest {
            time_min: Some(from),
            time_max: Some(to),
            time_zone: Some("UTC".into()),
            items: Some(self.calendars.iter().map(|id| FreeBusyRequestItem { id: Some(id.clone()) }).collect()),
            ..FreeBusyRequest::default()
        };
        let call = self.hub.freebusy().query(request).add_scope(Scope::Freebusy).doit();
        let answer = match tokio::time::timeout(FREEBUSY_TIMEOUT, call).await {
            Ok(Ok((_, answer))) => answer,
            Ok(Err(error)) => {
                let message =
                    error.to_string().lines().next().unwrap_or_default().chars().take(200).collect::<String>();
                return self
                    .calendars
                    .iter()
                    .map(|id| (id.clone(), Err(format!("freebusy.query: {message}"))))
                    .collect();
            }
            Err(_) => {
                return self.calendars.iter().map(|id| (id.clone(), Err("freebusy.query timed out".into()))).collect();
            }
        };
        let mut answered = answer.calendars.unwrap_or_default();
        self.calendars
            .iter()
            .map(|id| {
                let result = match answered.remove(id) {
                    None => Err("not in the answer".to_string()),
                    Some(calendar) if calendar.errors.as_ref().is_some_and(|e| !e.is_empty()) => {
                        let reasons: Vec<String> =
                            calendar.errors.unwrap_or_default().into_iter().filter_map(|e| e.reason).collect();
                        Err(format!("Google reported {}", reasons.join(", ")))
                    }
                    Some(calendar) => Ok(calendar
                        .busy
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|p| Some((p.start?.max(from), p.end?.min(to))))
                        .filter(|(s, e)| s < e)
                        .collect()),
                };
                (id.clone(), result)
            })
            .collect()
    }
}

/// Busy spans from every source over `[from, to)`, with the names of sources read and failed.
async fn busy(
    sources: &[CalendarSource],
    zone: Tz,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> (Vec<Span>, Vec<String>, Vec<String>) {
    let mut spans = Vec::new();
    let (mut read, mut failed) = (Vec::new(), Vec::new());
    for source in sources {
        let results = match source {
            Self_::Ics(path) => vec![(
                source.name(),
                match tokio::fs::read_to_string(path).await {
                    Ok(text) => ics_busy(&text, zone, from, to),
                    Err(error) => Err(error.to_string()),
                },
            )],
            Self_::Google { client } => {
                client.busy(from, to).await.into_iter().map(|(id, result)| (format!("google:{id}"), result)).collect()
            }
        };
        for (name, result) in results {
            match result {
                Ok(found) => {
                    spans.extend(found);
                    read.push(name);
                }
                Err(error) => {
                    tracing::warn!(source = %name, %error, "calendar unavailable; its window counts as busy");
                    spans.push((from, to));
                    failed.push(name);
                }
            }
        }
    }
    (merge(spans), read, failed)
}

use CalendarSource as Self_;

/// Busy spans of one iCalendar text over `[from, to)`.
pub fn ics_busy(text: &str, zone: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<Span>, String> {
    let unfolded = unfold(text);
    let calendar = read_calendar(&unfolded)?;
    let events: Vec<&Component> = calendar.components.iter().filter(|c| c.name == "VEVENT").collect();
    // Overrides: UID -> the RECURRENCE-ID instants they replace.
    let mut overridden: HashMap<String, Vec<String>> = HashMap::new();
    for event in &events {
        if let (Some(uid), Some(recurrence_id)) = (prop(event, "UID"), event.find_prop("RECURRENCE-ID")) {
            overridden.entry(uid.to_string()).or_default().push(rrule_line("EXDATE", recurrence_id, zone));
        }
    }
    let mut spans = Vec::new();
    for event in events {
        if prop(event, "STATUS").is_some_and(|s| s.eq_ignore_ascii_case("CANCELLED"))
            || prop(event, "TRANSP").is_some_and(|t| t.eq_ignore_ascii_case("TRANSPARENT"))
        {
            continue;
        }
        let Some(start_prop) = event.find_prop("DTSTART") else { continue };
        let Some(start) = instant(start_prop, zone) else { continue };
        let length = event_length(event, start_prop, zone, start);
        let is_master = event.find_prop("RECURRENCE-ID").is_none();
        let has_rules = ["RRULE", "RDATE"].iter().any(|name| event.find_prop(name).is_some());
        if !(is_master && has_rules) {
            spans.push((start, start + length));
            continue;
        }
        let mut lines = vec![rrule_line("DTSTART", start_prop, zone)];
        for property in &event.properties {
            match property.name.as_str() {
                "RRULE" => lines.push(format!("RRULE:{}", property.val.as_str())),
                "RDATE" | "EXDATE" => lines.push(rrule_line(property.name.as_str(), property, zone)),
                _ => {}
            }
        }
        if let Some(extra) = prop(event, "UID").and_then(|uid| overridden.get(uid)) {
            lines.extend(extra.iter().cloned());
        }
        let set: rrule::RRuleSet = lines.join("\n").parse().map_err(|e| format!("recurrence: {e}"))?;
        let window_start = (from - length).with_timezone(&rrule::Tz::UTC);
        let window_end = to.with_timezone(&rrule::Tz::UTC);
        let occurrences = set.after(window_start).before(window_end).all(MAX_OCCURRENCES);
        spans.extend(occurrences.dates.into_iter().map(|d| {
            let d = d.with_timezone(&Utc);
            (d, d + length)
        }));
    }
    Ok(spans.into_iter().filter(|(s, e)| *s < to && *e > from).map(|(s, e)| (s.max(from), e.min(to))).collect())
}

fn prop<'a>(component: &'a Component, name: &str) -> Option<&'a str> {
    component.find_prop(name).map(|p| p.val.as_str())
}

fn param<'a>(property: &'a icalendar::parser::Property, key: &str) -> Option<&'a str> {
    property.params.iter().find(|p| p.key == key).and_then(|p| p.val.as_ref()).map(|v| v.as_str())
}

/// A DATE or DATE-TIME property as a UTC instant; floating and all-day values use `zone`.
fn instant(property: &icalendar::parser::Property, zone: Tz) -> Option<DateTime<Utc>> {
    let value = property.val.as_str().split(',').next()?.trim();
    if param(property, "VALUE") == Some("DATE") || value.len() == 8 {
        let date = NaiveDate::parse_from_str(value, "%Y%m%d").ok()?;
        return zone.from_local_datetime(&date.and_hms_opt(0, 0, 0)?).earliest().map(|d| d.with_timezone(&Utc));
    }
    if let Some(utc) = value.strip_suffix('Z') {
        return NaiveDateTime::parse_from_str(utc, "%Y%m%dT%H%M%S").ok().map(|n| n.and_utc());
    }
    let naive = NaiveDateTime::parse_from_str(value, "%Y%m%dT%H%M%S").ok()?;
    let event_zone: Tz = param(property, "TZID").and_then(|z| z.parse().ok()).unwrap_or(zone);
    event_zone.from_local_datetime(&naive).earliest().map(|d| d.with_timezone(&Utc))
}

/// The event's length from DTEND or DURATION; all-day events default to one day.
fn event_length(
    event: &Component,
    start_prop: &icalendar::parser::Property,
    zone: Tz,
    start: DateTime<Utc>,
) -> Duration {
    if let Some(end) = event.find_prop("DTEND").and_then(|p| instant(p, zone)) {
        return (end - start).max(Duration::zero());
    }
    if let Some(duration) = prop(event, "DURATION").and_then(parse_duration) {
        return duration;
    }
    let all_day = param(start_prop, "VALUE") == Some("DATE") || start_prop.val.as_str().len() == 8;
    if all_day { Duration::days(1) } else { Duration::zero() }
}

/// RFC 5545 DURATION (`P1D`, `PT1H30M`, `P1W`).
fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim().strip_prefix('+').unwrap_or(text.trim());
    let body = text.strip_prefix('P')?;
    let mut total = Duration::zero();
    let mut number = String::new();
    for c in body.chars() {
        match c {
            '0'..='9' => number.push(c),
            'T' => {}
            unit => {
                let n: i64 = number.parse().ok()?;
                number.clear();
                total += match unit {
                    'W' => Duration::weeks(n),
                    'D' => Duration::days(n),
                    'H' => Duration::hours(n),
                    'M' => Duration::minutes(n),
                    'S' => Duration::seconds(n),
                    _ => return None,
                };
            }
        }
    }
    Some(total)
}

/// A DTSTART/RDATE/EXDATE line for rrule, with floating and all-day values pinned to a zone
/// (rrule needs a zone for each).
fn rrule_line(name: &str, property: &icalendar::parser::Property, zone: Tz) -> String {
    let values: Vec<String> = property
        .val
        .as_str()
        .split(',')
        .map(|v| v.trim())
        .map(|v| if v.len() == 8 { format!("{v}T000000") } else { v.to_string() })
        .collect();
    let utc = values.iter().all(|v| v.ends_with('Z'));
    let tz = param(property, "TZID").map(str::to_string).unwrap_or_else(|| zone.name().to_string());
    if utc { format!("{name}:{}", values.join(",")) } else { format!("{name};TZID={tz}:{}", values.join(",")) }
}

fn output(zone: Tz, spans: &[Span]) -> Vec<Interval> {
    spans
        .iter()
        .map(|(s, e)| Interval {
            start: s.with_timezone(&zone).fixed_offset(),
            end: e.with_timezone(&zone).fixed_offset(),
        })
        .collect()
}

/// `availability:read` over `sources`.
pub async fn availability(
    sources: &[CalendarSource],
    zone: Tz,
    request: &AvailabilityRequest,
) -> Result<AvailabilityResponse, DomainError> {
    let (from, to) = (request.start.with_timezone(&Utc), request.end.with_timezone(&Utc));
    check_window(from, to)?;
    let hours = request.working_hours.as_ref().map(Hours::parse).transpose()?.unwrap_or_else(Hours::always);
    let (busy, sources, unavailable_sources) = busy(sources, zone, from, to).await;
    let free = subtract(&hours.windows(zone, from, to), &busy);
    Ok(AvailabilityResponse {
        time_zone: zone.name().into(),
        busy: output(zone, &busy),
        free: output(zone, &free),
        sources,
        unavailable_sources,
    })
}

/// `available_meeting_intervals:read` over `sources`.
pub async fn meeting_intervals(
    sources: &[CalendarSource],
    zone: Tz,
    request: &MeetingIntervalsRequest,
) -> Result<MeetingIntervalsResponse, DomainError> {
    let (from, to) = (request.start.with_timezone(&Utc), request.end.with_timezone(&Utc));
    check_window(from, to)?;
    if !(5..=480).contains(&request.duration_minutes) {
        return Err(DomainError::InvalidInput("duration_minutes must be between 5 and 480".into()));
    }
    if request.buffer_before_minutes > 120 || request.buffer_after_minutes > 120 {
        return Err(DomainError::InvalidInput("buffers may be at most 120 minutes".into()));
    }
    let limit = match request.limit {
        None => 10,
        Some(limit @ 1..=100) => limit as usize,
        Some(_) => return Err(DomainError::InvalidInput("limit must be between 1 and 100".into())),
    };
    let hours = request.working_hours.as_ref().map(Hours::parse).transpose()?.unwrap_or_else(Hours::office);
    let (busy, _, unavailable_sources) = busy(sources, zone, from, to).await;
    let blocked = widen(
        &busy,
        Duration::minutes(request.buffer_before_minutes.into()),
        Duration::minutes(request.buffer_after_minutes.into()),
    );
    let minimum = Duration::minutes(request.duration_minutes.into());
    let free: Vec<Span> = subtract(&hours.windows(zone, from, to), &blocked)
        .into_iter()
        .filter(|(s, e)| *e - *s >= minimum)
        .take(limit)
        .collect();
    Ok(MeetingIntervalsResponse { time_zone: zone.name().into(), intervals: output(zone, &free), unavailable_sources })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    const ICS: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n\
BEGIN:VEVENT\r\nUID:standup\r\nDTSTART;TZID=Europe/Berlin:20260302T093000\r\nDTEND;TZID=Europe/Berlin:20260302T094500\r\nRRULE:FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR\r\nEXDATE;TZID=Europe/Berlin:20260304T093000\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:standup\r\nRECURRENCE-ID;TZID=Europe/Berlin:20260305T093000\r\nDTSTART;TZID=Europe/Berlin:20260305T140000\r\nDTEND;TZID=Europe/Berlin:20260305T141500\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:cancelled\r\nDTSTART:20260303T120000Z\r\nDTEND:20260303T130000Z\r\nSTATUS:CANCELLED\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:free\r\nDTSTART:20260303T150000Z\r\nDURATION:PT1H\r\nTRANSP:TRANSPARENT\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:offsite\r\nDTSTART;VALUE=DATE:20260306\r\nEND:VEVENT\r\n\
END:VCALENDAR\r\n";

    #[test]
    fn recurrences_exceptions_and_overrides() {
        let zone: Tz = "Europe/Berlin".parse().unwrap();
        let spans = merge(ics_busy(ICS, zone, at("2026-03-02T00:00:00Z"), at("2026-03-07T00:00:00Z")).unwrap());
        assert_eq!(
            spans,
            vec![
                (at("2026-03-02T08:30:00Z"), at("2026-03-02T08:45:00Z")),
                (at("2026-03-03T08:30:00Z"), at("2026-03-03T08:45:00Z")),
                // 4 March excluded; 5 March moved to 14:00 local.
                (at("2026-03-05T13:00:00Z"), at("2026-03-05T13:15:00Z")),
                // All-day offsite on 6 March in Berlin (the standup that day is inside it).
                (at("2026-03-05T23:00:00Z"), at("2026-03-06T23:00:00Z")),
            ]
        );
    }

    #[tokio::test]
    async fn meeting_intervals_apply_buffers_duration_and_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calendar.ics");
        std::fs::write(&path, ICS).unwrap();
        let request = MeetingIntervalsRequest {
            start: DateTime::parse_from_rfc3339("2026-03-02T00:00:00+01:00").unwrap(),
            end: DateTime::parse_from_rfc3339("2026-03-03T00:00:00+01:00").unwrap(),
            time_zone: Some("Europe/Berlin".into()),
            working_hours: None,
            duration_minutes: 60,
            buffer_before_minutes: 15,
            buffer_after_minutes: 15,
            limit: Some(5),
        };
        let zone: Tz = "Europe/Berlin".parse().unwrap();
        let response = meeting_intervals(&[CalendarSource::Ics(path)], zone, &request).await.unwrap();
        let got: Vec<(String, String)> =
            response.intervals.iter().map(|i| (i.start.to_rfc3339(), i.end.to_rfc3339())).collect();
        // 09:00-09:15 is too short; the rest of the day starts after the 15-minute buffer.
        assert_eq!(got, vec![("2026-03-02T10:00:00+01:00".into(), "2026-03-02T17:00:00+01:00".into())]);
    }

    #[tokio::test]
    async fn an_unreadable_calendar_is_busy_not_free() {
        let request = AvailabilityRequest {
            start: DateTime::parse_from_rfc3339("2026-03-02T00:00:00Z").unwrap(),
            end: DateTime::parse_from_rfc3339("2026-03-03T00:00:00Z").unwrap(),
            time_zone: None,
            working_hours: None,
        };
        let response =
            availability(&[CalendarSource::Ics("/nonexistent/cal.ics".into())], Tz::UTC, &request).await.unwrap();
        assert!(response.free.is_empty());
        assert_eq!(response.unavailable_sources, ["ics:cal.ics"]);
    }
}
