//! What admission cannot check: that cron expressions mean something and that the time zone
//! exists. A problem here is permanent: the controller reports it and waits for a spec change.

use mailagent_crds::MailAgent;

/// Checks the spec; `Err` carries a sentence for the `Degraded` condition.
pub fn check(agent: &MailAgent) -> Result<(), String> {
    let schedules = &agent.spec.schedules;
    mailagent_schedule::parse_time_zone(&schedules.time_zone).map_err(|_| {
        format!("schedules.timeZone {:?} is not an IANA time zone (e.g. Europe/Berlin)", schedules.time_zone)
    })?;
    for (field, expr) in [("schedules.digest", &schedules.digest), ("schedules.scan", &schedules.scan)] {
        if let Some(expr) = expr {
            parse_cron(expr).map_err(|e| format!("{field} {expr:?} is not a valid cron expression: {e}"))?;
        }
    }
    Ok(())
}

/// Parses a cron expression with the workload's own type (five fields or a macro such as
/// `@daily`; see [`mailagent_schedule`]), so what passes here is what the workload runs.
pub fn parse_cron(expr: &str) -> Result<mailagent_schedule::Schedule, mailagent_schedule::ScheduleError> {
    mailagent_schedule::Schedule::parse(expr)
}

#[cfg(test)]
mod tests {
    use super::super::build::fixtures::agent;
    use super::*;

    #[test]
    fn accepts_real_schedules_and_zones() {
        assert!(check(&agent("schedules: {digest: '0 8 * * MON', scan: '@hourly', timeZone: Europe/Berlin}")).is_ok());
    }

    /// Issue 8, defect 1: the operator and the workload read these alike now (see also
    /// `mailagent_mail::schedule`'s tests of the same expressions).
    #[test]
    fn accepts_what_the_workload_runs_and_refuses_what_it_would_not() {
        for good in ["0 8 * * 1-5", "0 8 * * 0", "0 8 * * 7", "@annually", "@midnight"] {
            assert!(check(&agent(&format!("schedules: {{digest: '{good}'}}"))).is_ok(), "{good}");
        }
        for bad in ["0 0 8 * * *", "0 8 * * 1L", "0 8 * MON *"] {
            assert!(check(&agent(&format!("schedules: {{scan: '{bad}'}}"))).is_err(), "{bad}");
        }
    }

    #[test]
    fn explains_what_admission_cannot_catch() {
        let err = check(&agent("schedules: {digest: '75 8 * * *'}")).unwrap_err();
        assert!(err.starts_with("schedules.digest \"75 8 * * *\" is not a valid cron expression"), "{err}");
        let err = check(&agent("schedules: {timeZone: Mars/Olympus}")).unwrap_err();
        assert!(err.contains("not an IANA time zone"), "{err}");
    }
}
