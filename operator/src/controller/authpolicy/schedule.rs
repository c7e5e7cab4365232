//! The rotation schedule in the CronJob grammar, through the shared `mailagent-schedule` crate
//! (the same type the MailAgent's schedules and the workload use).

use k8s_openapi::jiff::Timestamp;
use mailagent_schedule::ZonedSchedule;

fn parse(expr: &str, tz: &str) -> Result<ZonedSchedule, String> {
    ZonedSchedule::parse(expr, tz).map_err(|e| format!("rotation.schedule {expr:?} in {tz:?}: {e}"))
}

/// The first firing strictly after `after`, in time zone `tz`.
pub fn next_after(expr: &str, tz: &str, after: Timestamp) -> Result<Timestamp, String> {
    let schedule = parse(expr, tz)?;
    let start = chrono::DateTime::from_timestamp(after.as_second(), after.subsec_nanosecond().max(0) as u32)
        .ok_or("time out of range")?;
    let next = schedule.next_after(start).ok_or_else(|| format!("rotation.schedule {expr:?} never fires"))?;
    Timestamp::from_second(next.timestamp()).map_err(|e| e.to_string())
}

/// The shortest gap between two firings over the next `samples` firings after `from`.
pub fn shortest_gap(expr: &str, tz: &str, from: Timestamp, samples: usize) -> Result<i64, String> {
    let mut previous = next_after(expr, tz, from)?;
    let mut shortest = i64::MAX;
    for _ in 1..samples {
        let next = next_after(expr, tz, previous)?;
        shortest = shortest.min(next.as_second() - previous.as_second());
        previous = next;
    }
    Ok(shortest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_next_firing_and_the_shortest_gap() {
        let t0 = Timestamp::from_second(0).unwrap();
        assert_eq!(next_after("0 3 * * *", "UTC", t0).unwrap().as_second(), 3 * 3600);
        assert_eq!(shortest_gap("0 */6 * * *", "UTC", t0, 10).unwrap(), 6 * 3600);
        assert_eq!(shortest_gap("0,5 * * * *", "UTC", t0, 10).unwrap(), 300);
        assert!(next_after("61 * * * *", "UTC", t0).is_err());
        assert!(next_after("0 3 * * *", "Mars/Olympus", t0).is_err());
    }
}
