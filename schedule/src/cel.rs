//! The admission rule for a schedule field, written next to the parser it must agree with.
//!
//! A regular expression bounds every number, step and name per field; the one thing a pattern
//! cannot see, that a range runs forwards, is checked by turning names into numbers and comparing
//! both ends. The rule accepts exactly what [`crate::Schedule::parse`] accepts; the unit tests
//! compare the pattern with the parser, and `tests/tests/schedule_admission.rs` compares the API
//! server's verdict with it.
//!
//! No backslashes (they would need escaping twice, for CEL and for the regex) and no `(?i)`
//! (RE2's Unicode case folding lets `ſ` stand for `s`): names spell both cases out.

/// `a`, `a-b` or `*`, optionally `/step`: the value and step patterns are per field.
macro_rules! item {
    ($value:expr, $step:expr) => {
        concat!("([*]|(", $value, ")(-(", $value, "))?)(/(", $step, "))?")
    };
}

/// A comma-separated list of items.
macro_rules! field {
    ($value:expr, $step:expr) => {
        concat!(item!($value, $step), "(,", item!($value, $step), ")*")
    };
}

macro_rules! months {
    () => {
        "[Jj][Aa][Nn]|[Ff][Ee][Bb]|[Mm][Aa][Rr]|[Aa][Pp][Rr]|[Mm][Aa][Yy]|[Jj][Uu][Nn]|[Jj][Uu][Ll]|[Aa][Uu][Gg]|[Ss][Ee][Pp]|[Oo][Cc][Tt]|[Nn][Oo][Vv]|[Dd][Ee][Cc]"
    };
}

macro_rules! days {
    () => {
        "[Ss][Uu][Nn]|[Mm][Oo][Nn]|[Tt][Uu][Ee]|[Ww][Ee][Dd]|[Tt][Hh][Uu]|[Ff][Rr][Ii]|[Ss][Aa][Tt]"
    };
}

macro_rules! pattern {
    () => {
        concat!(
            "^[[:space:]]*(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|",
            field!("[0-5]?[0-9]", "0?[1-9]|[1-5][0-9]"),
            "[[:space:]]+",
            field!("[01]?[0-9]|2[0-3]", "0?[1-9]|1[0-9]|2[0-3]"),
            "[[:space:]]+",
            field!("0?[1-9]|[12][0-9]|3[01]", "0?[1-9]|[12][0-9]|3[01]"),
            "[[:space:]]+",
            field!(concat!("0?[1-9]|1[0-2]|", months!()), "0?[1-9]|1[0-2]"),
            "[[:space:]]+",
            field!(concat!("0?[0-7]|", days!()), "0?[1-7]"),
            ")[[:space:]]*$"
        )
    };
}

/// The shape of an accepted expression (RE2 and Rust `regex` syntax alike).
pub const PATTERN: &str = pattern!();

/// The CEL rule for a schedule string. `SUN` closing a range counts as 7 here, which can only
/// accept more ranges than the parser reads as forwards when the range starts at Sunday, and
/// the parser reads `SUN-SUN` and `0-SUN` as forwards too.
pub const CEL_RULE: &str = concat!(
    "self.matches('",
    pattern!(),
    "') && self.upperAscii()",
    ".replace('-SUN', '-7').replace('SUN', '0').replace('MON', '1').replace('TUE', '2')",
    ".replace('WED', '3').replace('THU', '4').replace('FRI', '5').replace('SAT', '6')",
    ".replace('JAN', '1').replace('FEB', '2').replace('MAR', '3').replace('APR', '4')",
    ".replace('MAY', '5').replace('JUN', '6').replace('JUL', '7').replace('AUG', '8')",
    ".replace('SEP', '9').replace('OCT', '10').replace('NOV', '11').replace('DEC', '12')",
    ".findAll('[0-9]+-[0-9]+').all(r, int(r.split('-')[0]) <= int(r.split('-')[1]))"
);

/// What the person sees when the rule refuses a value.
pub const CEL_MESSAGE: &str = "must be a cron expression with five fields, minute hour day-of-month month day-of-week \
(e.g. \"0 8 * * MON-FRI\"; 0 and 7 are Sunday; ranges run forwards; a step is 1 up to the field's maximum), \
or one of @yearly @annually @monthly @weekly @daily @midnight @hourly";
