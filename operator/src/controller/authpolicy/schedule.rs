//! The rotation schedule's cron grammar, behind one function each so that moving to the shared
//! `mailagent-schedule` crate (CronJob grammar) is a one-line change here.

use k8s_openapi::jiff::Timestamp;

fn parse(expr: &str) -> Result<croner::Cron, String> {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Optional)
        .build()
        .parse(expr)
        .map_err(|e| format!("rotation.schedule {expr:?} is not a valid cron expression: {e}"))
}

fn zone(name: &str) -> Result<chrono_tz::Tz, String> {
    name.parse().map_err(|_| format!("rotation.timeZone {name:?} is not an IANA time zone"))
}

/// The first firing strictly after `after`, in time zone `tz`.
pub fn next_after(expr: &str, tz: &str, after: Timestamp) -> Result<Timestamp, String> {
    let cron = parse(expr)?;
    let start = chrono::DateTime::from_timestamp(after.as_second(), after.subsec_nanosecond().max(0) as u32)
        .ok_or("time out of range")?
        .with_timezone(&zone(tz)?);
    let next = cron.find_next_occurrence(&start, false).map_err(|e| format!("rotation.schedule {expr:?}: {e}"))?;
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
