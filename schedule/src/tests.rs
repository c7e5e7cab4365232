use chrono::{Datelike, Weekday};

use super::*;

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

fn runs(expression: &str, zone: &str, after: &str, count: usize) -> Vec<DateTime<Utc>> {
    ZonedSchedule::parse(expression, zone).unwrap().runs_after(at(after)).take(count).collect()
}

fn weekdays(expression: &str) -> Vec<Weekday> {
    // 2026-03-01 is a Sunday.
    runs(expression, "UTC", "2026-03-01T00:00:00Z", 7).iter().map(|t| t.weekday()).collect()
}

#[test]
fn monday_to_friday_is_monday_to_friday() {
    use Weekday::*;
    assert_eq!(weekdays("0 8 * * 1-5"), [Mon, Tue, Wed, Thu, Fri, Mon, Tue]);
    assert_eq!(weekdays("0 8 * * MON-FRI"), [Mon, Tue, Wed, Thu, Fri, Mon, Tue]);
    assert_eq!(runs("0 8 * * 1-5", "UTC", "2026-03-01T00:00:00Z", 1), [at("2026-03-02T08:00:00Z")]);
}

#[test]
fn zero_and_seven_are_sunday() {
    use Weekday::*;
    assert_eq!(weekdays("0 8 * * 0")[..2], [Sun, Sun]);
    assert_eq!(weekdays("0 8 * * 7")[..2], [Sun, Sun]);
    assert_eq!(weekdays("0 8 * * sun")[..2], [Sun, Sun]);
    // The first run after Sunday 00:00 is that Sunday's.
    assert_eq!(weekdays("0 8 * * FRI-SUN")[..4], [Sun, Fri, Sat, Sun]);
    assert_eq!(weekdays("0 8 * * 5-7")[..4], [Sun, Fri, Sat, Sun]);
    assert_eq!(weekdays("0 8 * * SAT,SUN")[..3], [Sun, Sat, Sun]);
}

#[test]
fn every_macro_is_accepted_and_means_its_expansion() {
    let after = "2026-03-04T10:30:00Z";
    for (name, expansion) in grammar::MACROS {
        assert_eq!(runs(name, "UTC", after, 3), runs(expansion, "UTC", after, 3), "{name}");
    }
    assert_eq!(runs("@annually", "UTC", after, 1), [at("2027-01-01T00:00:00Z")]);
    assert_eq!(runs("@weekly", "UTC", after, 1), [at("2026-03-08T00:00:00Z")], "Sunday midnight");
    assert_eq!(runs("@midnight", "Europe/Berlin", after, 1), [at("2026-03-04T23:00:00Z")]);
}

#[test]
fn names_ranges_steps_and_lists() {
    assert_eq!(
        runs("*/20 9-10 * * *", "UTC", "2026-03-04T00:00:00Z", 7),
        [
            at("2026-03-04T09:00:00Z"),
            at("2026-03-04T09:20:00Z"),
            at("2026-03-04T09:40:00Z"),
            at("2026-03-04T10:00:00Z"),
            at("2026-03-04T10:20:00Z"),
            at("2026-03-04T10:40:00Z"),
            at("2026-03-05T09:00:00Z"),
        ]
    );
    assert_eq!(
        runs("5,35 12 1 jan,Jul *", "UTC", "2026-03-04T00:00:00Z", 3),
        [at("2026-07-01T12:05:00Z"), at("2026-07-01T12:35:00Z"), at("2027-01-01T12:05:00Z")]
    );
    assert_eq!(
        runs("0 0 1 */3 *", "UTC", "2026-03-04T00:00:00Z", 2),
        [at("2026-04-01T00:00:00Z"), at("2026-07-01T00:00:00Z")]
    );
    assert_eq!(
        runs("10/25 * * * *", "UTC", "2026-03-04T00:00:00Z", 3),
        [at("2026-03-04T00:10:00Z"), at("2026-03-04T00:35:00Z"), at("2026-03-04T01:10:00Z")]
    );
    assert_eq!(runs(" 0  8\t* * MON ", "UTC", "2026-03-01T00:00:00Z", 1), [at("2026-03-02T08:00:00Z")], "whitespace");
}

#[test]
fn day_fields_are_or_when_both_are_restricted_and_and_after_a_star() {
    // March 2026: the 1st is a Sunday; Mondays are the 2nd, 9th, 16th...
    let days = |e: &str| runs(e, "UTC", "2026-02-28T12:00:00Z", 4).iter().map(|t| t.day()).collect::<Vec<_>>();
    assert_eq!(days("0 8 1 * MON"), [1, 2, 9, 16], "the 1st or a Monday");
    assert_eq!(days("0 8 */2 * MON"), [9, 23, 13, 27], "a Monday on an odd day (robfig and Vixie: * makes it AND)");
    assert_eq!(days("0 8 * * MON"), [2, 9, 16, 23]);
    assert_eq!(days("0 8 1 * *"), [1, 1, 1, 1]);
    assert_eq!(days("0 8 *,1 * MON"), [2, 9, 16, 23], "a field starting with * is a star (Vixie)");
    assert_eq!(days("0 8 1,* * MON"), [1, 2, 3, 4], "else both restricted: either");
}

#[test]
fn refuses_what_kubernetes_cron_users_would_not_write() {
    for bad in [
        "",
        "   ",
        "every day",
        "* * * *",
        "0 0 8 * * *",
        "0 0 8 * * * 2026",
        "61 * * * *",
        "0 24 * * *",
        "0 8 0 * *",
        "0 8 32 * *",
        "0 8 * 13 *",
        "0 8 * 0 *",
        "0 8 * * 8",
        "0 8 * * 1L",
        "0 8 L * *",
        "0 8 15W * *",
        "0 8 * * 1#2",
        "0 8 ? * *",
        "0 8 * * +1",
        "0 8 * MON *",
        "0 8 * * JAN",
        "0 8 * * MONDAY",
        "0 8 * * 5-1",
        "0 8 * * FRI-MON",
        "*/0 * * * *",
        "*/60 * * * *",
        "0 */24 * * *",
        "0 8 * * */8",
        "005 * * * *",
        "0 8 * * 1,",
        "0 8 * * ,1",
        "0 8 * * 1-",
        "0 8 * * -1",
        "0 8 * * 1-2-3",
        "0 8 * * 1/2/3",
        "@every 1h",
        "@reboot",
        "@DAILY",
        "@daily 0",
        "TZ=UTC 0 8 * * *",
        "0 8 * * \u{017f}un",
    ] {
        assert!(Schedule::parse(bad).is_err(), "{bad:?} must be refused");
    }
}

#[test]
fn errors_name_the_field() {
    let err = Schedule::parse("0 8 * * 5-1").unwrap_err().to_string();
    assert_eq!(err, "day of week \"5-1\": range 5-1 runs backwards");
    let err = Schedule::parse("0 8 * MON *").unwrap_err().to_string();
    assert!(err.starts_with("month \"MON\": \"MON\" is neither a number nor one of JAN"), "{err}");
    let err = Schedule::parse("0 0 8 * * *").unwrap_err().to_string();
    assert_eq!(err, "6 fields: expected five (minute hour day-of-month month day-of-week)");
}

#[test]
fn a_date_that_never_comes_has_no_next_run() {
    let schedule = Schedule::parse("0 0 31 2 *").unwrap();
    assert_eq!(schedule.next_after(at("2026-01-01T00:00:00Z"), Tz::UTC), None);
}

#[test]
fn time_zones_are_iana_names() {
    assert_eq!(parse_time_zone(" Europe/Berlin ").unwrap(), Tz::Europe__Berlin);
    assert_eq!(
        parse_time_zone("Mars/Olympus").unwrap_err().to_string(),
        "\"Mars/Olympus\" is not an IANA time zone (e.g. Europe/Berlin)"
    );
}

// Europe/Berlin 2026: clocks go forward on 29 March at 02:00 CET (01:00Z) to 03:00 CEST and back
// on 25 October at 03:00 CEST (01:00Z) to 02:00 CET.

#[test]
fn fixed_times_follow_the_wall_clock_across_dst() {
    assert_eq!(
        runs("0 8 * * *", "Europe/Berlin", "2026-03-27T12:00:00Z", 3),
        [at("2026-03-28T07:00:00Z"), at("2026-03-29T06:00:00Z"), at("2026-03-30T06:00:00Z")]
    );
}

#[test]
fn a_fixed_time_in_the_spring_gap_runs_right_after_it_once() {
    assert_eq!(
        runs("30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", 2),
        [at("2026-03-29T01:00:00Z"), at("2026-03-30T00:30:00Z")],
        "03:00 CEST on the day of the change, 02:30 CEST after"
    );
}

#[test]
fn a_fixed_time_in_the_autumn_overlap_runs_once_at_the_first() {
    assert_eq!(
        runs("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", 2),
        [at("2026-10-25T00:30:00Z"), at("2026-10-26T01:30:00Z")],
        "02:30 CEST only, not 02:30 CET as well"
    );
}

#[test]
fn other_jobs_skip_times_that_do_not_exist_and_never_repeat_a_wall_clock_time() {
    assert_eq!(
        runs("30 * * * *", "Europe/Berlin", "2026-03-29T00:00:00Z", 2),
        [at("2026-03-29T00:30:00Z"), at("2026-03-29T01:30:00Z")],
        "01:30 CET, then 03:30 CEST: no 02:30 that day"
    );
    assert_eq!(
        runs("30 * * * *", "Europe/Berlin", "2026-10-25T00:00:00Z", 2),
        [at("2026-10-25T00:30:00Z"), at("2026-10-25T02:30:00Z")],
        "02:30 CEST, then 03:30 CET: the repeated 02:30 CET does not run again"
    );
    assert_eq!(
        runs("*/20 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", 4),
        [
            at("2026-10-25T00:00:00Z"),
            at("2026-10-25T00:20:00Z"),
            at("2026-10-25T00:40:00Z"),
            at("2026-10-26T01:00:00Z")
        ],
        "02:00-02:40 CEST once"
    );
}

mod pattern_agrees_with_parser {
    //! The admission rule, evaluated here the way the API server does (regex plus the range
    //! order check), must accept exactly what the parser accepts.

    use super::*;

    fn admitted(expression: &str) -> bool {
        static PATTERN_RE: std::sync::LazyLock<regex::Regex> =
            std::sync::LazyLock::new(|| regex::Regex::new(PATTERN).unwrap());
        static RANGE_RE: std::sync::LazyLock<regex::Regex> =
            std::sync::LazyLock::new(|| regex::Regex::new("[0-9]+-[0-9]+").unwrap());
        if !PATTERN_RE.is_match(expression) {
            return false;
        }
        let mut numeric = expression.to_ascii_uppercase().replace("-SUN", "-7");
        for (names, first) in [
            (&["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"][..], 0),
            (&["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"][..], 1),
        ] {
            for (i, name) in names.iter().enumerate() {
                numeric = numeric.replace(name, &(first + i).to_string());
            }
        }
        RANGE_RE.find_iter(&numeric).all(|m| {
            let (a, b) = m.as_str().split_once('-').unwrap();
            a.parse::<u64>().unwrap() <= b.parse::<u64>().unwrap()
        })
    }

    #[test]
    fn the_cel_rule_is_the_pattern_plus_the_order_check() {
        assert!(CEL_RULE.starts_with(&format!("self.matches('{PATTERN}') && ")), "{CEL_RULE}");
        assert!(!PATTERN.contains('\\') && !PATTERN.contains('\''), "no escaping needed in CEL");
    }

    #[test]
    fn on_a_table() {
        for expression in
            ["0 8 * * 1-5", "0 8 * * 0", "@annually", "0 8 * * 5-1", "0 8 * MON *", "0 8 * * \u{017f}un", "SUN-SUN"]
        {
            assert_eq!(admitted(expression), Schedule::parse(expression).is_ok(), "{expression:?}");
        }
        for sunday in ["0 8 * * SUN-SUN", "0 8 * * 0-SUN", "0 8 * * 7-SUN", "0 8 * * sun-sat"] {
            assert!(admitted(sunday) && Schedule::parse(sunday).is_ok(), "{sunday:?}");
        }
    }

    #[test]
    fn on_random_expressions() {
        const TOKENS: [&str; 34] = [
            "*",
            "0",
            "1",
            "5",
            "7",
            "8",
            "00",
            "07",
            "12",
            "13",
            "23",
            "24",
            "31",
            "32",
            "59",
            "60",
            "99",
            "100",
            "MON",
            "sun",
            "Fri",
            "SAT",
            "JAN",
            "dec",
            "Jun",
            "L",
            "W",
            "#",
            "?",
            "x",
            "@daily",
            "@every",
            "",
            "\u{017f}un",
        ];
        const LIKELY: [&str; 8] = ["*", "*", "1", "5", "*/5", "1-5", "MON-FRI", "0"];
        const GLUE: [&str; 5] = ["-", "/", ",", "", "-"];
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = |n: usize| {
            // xorshift64: reproducible without a dependency.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let (mut accepted, mut total) = (0, 0);
        for _ in 0..50_000 {
            let fields = [5, 5, 5, 5, 5, 4, 6][next(7)];
            let expression = (0..fields)
                .map(|_| {
                    if next(3) > 0 {
                        return LIKELY[next(LIKELY.len())].to_owned();
                    }
                    let mut field = TOKENS[next(TOKENS.len())].to_owned();
                    for _ in 0..next(3) {
                        field.push_str(GLUE[next(GLUE.len())]);
                        field.push_str(TOKENS[next(TOKENS.len())]);
                    }
                    field
                })
                .collect::<Vec<_>>()
                .join(if next(8) == 0 { "  " } else { " " });
            let parsed = Schedule::parse(&expression).is_ok();
            assert_eq!(admitted(&expression), parsed, "{expression:?}: admission and parser disagree");
            accepted += usize::from(parsed);
            total += 1;
        }
        assert!(accepted > total / 100, "the generator must reach valid expressions too: {accepted} of {total}");
    }
}
