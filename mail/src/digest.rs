//! The digest: one line per open candidate with the action it needs.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::api::MethodKind;
use crate::candidates::Candidate;

/// Subject and plain-text body for these candidates.
pub fn render(candidates: &[&Candidate], now: DateTime<Utc>, zone: Tz) -> (String, String) {
    let date = now.with_timezone(&zone).format("%Y-%m-%d");
    let subject = format!("Unsubscribe digest {date}: {} candidate(s)", candidates.len());
    let mut body = format!("Unsubscribe candidates as of {date} ({zone}).\n\n");
    if candidates.is_empty() {
        body.push_str("Nothing to unsubscribe from.\n");
    }
    for candidate in candidates {
        let view = &candidate.view;
        let action = match view.methods.first() {
            Some(m) if m.automatic && m.kind == MethodKind::OneClick => "one-click unsubscribe available".to_string(),
            Some(m) if m.automatic && m.kind == MethodKind::Mailto => {
                format!("unsubscribe by mail to {}", m.target.trim_start_matches("mailto:"))
            }
            Some(m) => format!("open {} to unsubscribe", m.target),
            None => "no unsubscribe method".to_string(),
        };
        body.push_str(&format!(
            "- {} ({} messages, {:.1}/week): {action}; key: {}\n",
            view.sender, view.message_count, view.per_week, view.key
        ));
    }
    (subject, body)
}
