//! What admission cannot check: that cron expressions mean something and that the time zone
//! exists. A problem here is permanent: the controller reports it and waits for a spec change.

use mailagent_crds::MailAgent;

/// Checks the spec; `Err` carries a sentence for the `Degraded` condition.
pub fn check(agent: &MailAgent) -> Result<(), String> {
    let schedules = &agent.spec.schedules;
    schedules.time_zone.parse::<chrono_tz::Tz>().map_err(|_| {
        format!("schedules.timeZone {:?} is not an IANA time zone (e.g. Europe/Berlin)", schedules.time_zone)
    })?;
    for (field, expr) in [("schedules.digest", &schedules.digest), ("schedules.scan", &schedules.scan)] {
        if let Some(expr) = expr {
            parse_cron(expr).map_err(|e| format!("{field} {expr:?} is not a valid cron expression: {e}"))?;
        }
    }
    Ok(())
}

/// Parses a 5-field (or 6-field, with seconds) cron expression or a macro such as `@daily`.
pub fn parse_cron(expr: &str) -> Result<croner::Cron, croner::errors::CronError> {
    croner::parser::CronParser::builder().seconds(croner::parser::Seconds::Optional).build().parse(expr)
}

#[cfg(test)]
mod tests {
    use super::super::build::fixtures::agent;
    use super::*;

    #[test]
    fn accepts_real_schedules_and_zones() {
        assert!(check(&agent("schedules: {digest: '0 8 * * MON', scan: '@hourly', timeZone: Europe/Berlin}")).is_ok());
    }

    #[test]
    fn explains_what_admission_cannot_catch() {
        let err = check(&agent("schedules: {digest: '75 8 * * *'}")).unwrap_err();
        assert!(err.starts_with("schedules.digest \"75 8 * * *\" is not a valid cron expression"), "{err}");
        let err = check(&agent("schedules: {timeZone: Mars/Olympus}")).unwrap_err();
        assert!(err.contains("not an IANA time zone"), "{err}");
    }
}
