//! The accepted grammar, checked field by field before `croner` sees the expression.
//!
//! `croner` alone accepts more than Kubernetes CronJob users expect (seconds, years, `L`, `W`,
//! `#`, `?`, a `+` prefix) and replaces day and month names anywhere in the text, so `MON` in
//! the month field would silently mean January. Here every field is read on its own, names are
//! turned into numbers only where they belong, and `croner` gets a purely numeric expression.

use crate::ScheduleError;

/// The macros, as robfig/cron (Kubernetes CronJob) and Vixie cron spell them (lowercase only,
/// as robfig/cron reads them).
pub(crate) const MACROS: [(&str, &str); 7] = [
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@midnight", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

const MONTHS: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// One of the five fields: its name for messages, its bounds, and the names it accepts
/// (the first name stands for `min`).
struct Field {
    name: &'static str,
    min: u8,
    max: u8,
    names: &'static [&'static str],
}

const FIELDS: [Field; 5] = [
    Field { name: "minute", min: 0, max: 59, names: &[] },
    Field { name: "hour", min: 0, max: 23, names: &[] },
    Field { name: "day of month", min: 1, max: 31, names: &[] },
    Field { name: "month", min: 1, max: 12, names: &MONTHS },
    // 0 and 7 are both Sunday, as in Vixie cron.
    Field { name: "day of week", min: 0, max: 7, names: &DAYS },
];

/// The expression `croner` parses, and whether the day test is an AND (Vixie: when either day
/// field starts with `*`, a day must match both; when both are restricted, either one).
pub(crate) struct Numeric {
    pub(crate) text: String,
    pub(crate) days_and: bool,
}

/// Expands a macro, checks the five fields and rewrites names as numbers.
pub(crate) fn normalize(expression: &str) -> Result<Numeric, ScheduleError> {
    let trimmed = expression.trim();
    if trimmed.is_empty() {
        return Err(ScheduleError::Empty);
    }
    let expanded = if trimmed.starts_with('@') {
        MACROS
            .iter()
            .find(|(name, _)| *name == trimmed)
            .map(|(_, fields)| *fields)
            .ok_or_else(|| ScheduleError::UnknownMacro(trimmed.to_owned()))?
    } else {
        trimmed
    };
    let fields: Vec<&str> = expanded.split_whitespace().collect();
    if fields.len() != FIELDS.len() {
        return Err(ScheduleError::FieldCount(fields.len()));
    }
    let mut numeric = Vec::with_capacity(FIELDS.len());
    for (text, field) in fields.iter().zip(&FIELDS) {
        numeric.push(field.normalize(text).map_err(|reason| ScheduleError::Field {
            field: field.name,
            text: (*text).to_owned(),
            reason,
        })?);
    }
    Ok(Numeric { text: numeric.join(" "), days_and: fields[2].starts_with('*') || fields[4].starts_with('*') })
}

impl Field {
    fn normalize(&self, text: &str) -> Result<String, String> {
        if text == "*" {
            return Ok(text.to_owned());
        }
        // `croner` reads a bare `*` only as a whole field; inside a list it is the full range.
        let full = format!("{}-{}", self.min, self.max);
        let items = text.split(',').map(|item| if item == "*" { Ok(full.clone()) } else { self.item(item) });
        items.collect::<Result<Vec<_>, _>>().map(|items| items.join(","))
    }

    /// `*`, `a` or `a-b`, optionally followed by `/step`.
    fn item(&self, item: &str) -> Result<String, String> {
        if item.is_empty() {
            return Err("empty list item".to_owned());
        }
        let (base, step) = match item.split_once('/') {
            Some((base, step)) => (base, Some(self.step(step)?)),
            None => (item, None),
        };
        let base = if base == "*" {
            "*".to_owned()
        } else if let Some((start, end)) = base.split_once('-') {
            let start = self.value(start, false)?;
            let end = self.value(end, start > 0)?;
            if start > end {
                return Err(format!("range {base} runs backwards"));
            }
            format!("{start}-{end}")
        } else {
            self.value(base, false)?.to_string()
        };
        Ok(match step {
            Some(step) => format!("{base}/{step}"),
            None => base,
        })
    }

    /// A number (one or two digits) or a three-letter name. `SUN` closing a range that starts
    /// later in the week is 7, so `FRI-SUN` reads as cron users mean it.
    fn value(&self, text: &str, range_end_after_sunday: bool) -> Result<u8, String> {
        let value = if is_short_number(text) {
            text.parse::<u8>().map_err(|e| e.to_string())?
        } else if let Some(index) = self.names.iter().position(|name| name.eq_ignore_ascii_case(text)) {
            let value = self.min + index as u8;
            if value == 0 && range_end_after_sunday { 7 } else { value }
        } else if self.names.is_empty() {
            return Err(format!("{text:?} is not a number"));
        } else {
            return Err(format!("{text:?} is neither a number nor one of {}", self.names.join(" ")));
        };
        if !(self.min..=self.max).contains(&value) {
            return Err(format!("{value} is outside {}-{}", self.min, self.max));
        }
        Ok(value)
    }

    fn step(&self, text: &str) -> Result<u8, String> {
        let step = if is_short_number(text) { text.parse::<u8>().ok() } else { None };
        match step {
            Some(step) if (1..=self.max).contains(&step) => Ok(step),
            _ => Err(format!("step {text:?} must be a number from 1 to {}", self.max)),
        }
    }
}

/// One or two ASCII digits: what the admission rule can bound with a pattern.
fn is_short_number(text: &str) -> bool {
    (1..=2).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit())
}
