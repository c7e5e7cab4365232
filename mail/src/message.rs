//! The header-only view of a message that triage and unsubscribe discovery work from.
//!
//! Every provider produces the same `MessageMeta`: Maildir from raw bytes, Gmail from the
//! `format=metadata` header list. Both paths go through `mail-parser`, so folding, encoded words
//! and odd dates are handled once.

use chrono::{DateTime, Utc};
use mail_parser::MessageParser;
use serde::{Deserialize, Serialize};

/// The headers triage and unsubscribe discovery read; providers ask only for these.
pub const NEEDED_HEADERS: &[&str] = &[
    "From",
    "Subject",
    "Date",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Authentication-Results",
    "DKIM-Signature",
    "Precedence",
    "Auto-Submitted",
];

/// One message, headers only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageMeta {
    /// Provider message id.
    pub id: String,
    /// Sender address, lower-cased; empty when `From` is missing or unreadable.
    pub from: String,
    /// Subject, decoded.
    pub subject: String,
    /// `Date` header, when readable.
    pub date: Option<DateTime<Utc>>,
    /// `List-Id`, unfolded.
    pub list_id: Option<String>,
    /// Every `List-Unsubscribe` field, unfolded (RFC 8058 wants exactly one).
    pub list_unsubscribe: Vec<String>,
    /// Every `List-Unsubscribe-Post` field, unfolded.
    pub list_unsubscribe_post: Vec<String>,
    /// Every `Authentication-Results` field, topmost first.
    pub authentication_results: Vec<String>,
    /// Every `DKIM-Signature` field, unfolded.
    pub dkim_signatures: Vec<String>,
    /// `Precedence` (bulk, list, junk), lower-cased.
    pub precedence: Option<String>,
    /// `Auto-Submitted`, lower-cased.
    pub auto_submitted: Option<String>,
    /// Provider labels (Gmail label ids such as `CATEGORY_PROMOTIONS`; Maildir flags).
    pub labels: Vec<String>,
}

impl MessageMeta {
    /// Builds the view from a raw RFC 5322 message (only the header block is read).
    pub fn from_raw(id: String, labels: Vec<String>, raw: &[u8]) -> Self {
        let mut meta = Self::empty(id, labels);
        let Some(parsed) = MessageParser::default().parse_headers(raw) else { return meta };
        meta.from = parsed
            .from()
            .and_then(|from| from.first())
            .and_then(|addr| addr.address())
            .map(|addr| addr.trim().to_ascii_lowercase())
            .unwrap_or_default();
        meta.subject = parsed.subject().unwrap_or_default().to_string();
        meta.date = parsed.date().and_then(|date| DateTime::from_timestamp(date.to_timestamp(), 0));
        let raw_message = parsed.raw_message();
        for header in parsed.headers() {
            let Some(value) = raw_message.get(header.offset_start as usize..header.offset_end as usize) else {
                continue;
            };
            let value = unfold(&String::from_utf8_lossy(value));
            meta.absorb(header.name.as_str(), value);
        }
        meta
    }

    /// Builds the view from `(name, value)` pairs as Gmail's metadata format returns them.
    pub fn from_header_pairs<'a>(
        id: String,
        labels: Vec<String>,
        headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        let mut block = String::new();
        for (name, value) in headers {
            // A name or value with a line break would forge extra headers: drop the pair.
            if name.contains(['\r', '\n', ':']) || value.contains(['\r', '\n']) {
                continue;
            }
            block.push_str(name);
            block.push_str(": ");
            block.push_str(value);
            block.push_str("\r\n");
        }
        block.push_str("\r\n");
        Self::from_raw(id, labels, block.as_bytes())
    }

    fn empty(id: String, labels: Vec<String>) -> Self {
        Self {
            id,
            from: String::new(),
            subject: String::new(),
            date: None,
            list_id: None,
            list_unsubscribe: Vec::new(),
            list_unsubscribe_post: Vec::new(),
            authentication_results: Vec::new(),
            dkim_signatures: Vec::new(),
            precedence: None,
            auto_submitted: None,
            labels,
        }
    }

    fn absorb(&mut self, name: &str, value: String) {
        match name.to_ascii_lowercase().as_str() {
            "list-id" => self.list_id = Some(value),
            "list-unsubscribe" => self.list_unsubscribe.push(value),
            "list-unsubscribe-post" => self.list_unsubscribe_post.push(value),
            "authentication-results" => self.authentication_results.push(value),
            "dkim-signature" => self.dkim_signatures.push(value),
            "precedence" => self.precedence = Some(value.to_ascii_lowercase()),
            "auto-submitted" => self.auto_submitted = Some(value.to_ascii_lowercase()),
            _ => {}
        }
    }

    /// The domain of the sender address, lower-cased.
    pub fn from_domain(&self) -> &str {
        self.from.rsplit_once('@').map(|(_, domain)| domain).unwrap_or("")
    }

    /// The `List-Id` identifier inside its angle brackets, when present.
    pub fn list_identifier(&self) -> Option<String> {
        let list_id = self.list_id.as_deref()?;
        let inner = match (list_id.rfind('<'), list_id.rfind('>')) {
            (Some(open), Some(close)) if open < close => &list_id[open + 1..close],
            _ => list_id,
        };
        let inner = inner.trim().to_ascii_lowercase();
        (!inner.is_empty()).then_some(inner)
    }
}

/// Removes folding (CRLF followed by whitespace) and trims the ends.
pub fn unfold(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' || c == '\n' {
            while chars.peek().is_some_and(|next| *next == '\r' || *next == '\n') {
                chars.next();
            }
            continue;
        }
        out.push(c);
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEWSLETTER: &str = "From: \"News\" <News@Example.COM>\r\n\
        Subject: Weekly\r\n\
        Date: Tue, 03 Nov 2026 10:00:00 +0000\r\n\
        List-Id: Example News <news.example.com>\r\n\
        List-Unsubscribe: <https://example.com/u/abc>,\r\n\t<mailto:leave@example.com?subject=unsubscribe>\r\n\
        List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\
        Precedence: Bulk\r\n\r\nbody\r\n";

    #[test]
    fn raw_and_pairs_give_the_same_view() {
        let raw = MessageMeta::from_raw("1".into(), vec![], NEWSLETTER.as_bytes());
        assert_eq!(raw.from, "news@example.com");
        assert_eq!(raw.list_identifier().as_deref(), Some("news.example.com"));
        assert_eq!(
            raw.list_unsubscribe,
            vec!["<https://example.com/u/abc>,\t<mailto:leave@example.com?subject=unsubscribe>"]
        );
        assert_eq!(raw.precedence.as_deref(), Some("bulk"));
        assert_eq!(raw.date.map(|d| d.to_rfc3339()).as_deref(), Some("2026-11-03T10:00:00+00:00"));
        let pairs = MessageMeta::from_header_pairs(
            "1".into(),
            vec![],
            [
                ("From", "\"News\" <News@Example.COM>"),
                ("Subject", "Weekly"),
                ("Date", "Tue, 03 Nov 2026 10:00:00 +0000"),
                ("List-Id", "Example News <news.example.com>"),
                ("List-Unsubscribe", "<https://example.com/u/abc>,\t<mailto:leave@example.com?subject=unsubscribe>"),
                ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
                ("Precedence", "Bulk"),
            ],
        );
        assert_eq!(raw, pairs);
    }

    #[test]
    fn a_pair_with_a_line_break_cannot_forge_headers() {
        let meta = MessageMeta::from_header_pairs(
            "1".into(),
            vec![],
            [("Subject", "hi\r\nList-Unsubscribe: <https://evil.example/>"), ("From", "a@b.example")],
        );
        assert!(meta.list_unsubscribe.is_empty());
        assert_eq!(meta.from, "a@b.example");
    }

    #[test]
    fn garbage_gives_an_empty_view_not_a_panic() {
        let meta = MessageMeta::from_raw("x".into(), vec![], b"\xff\xfe\x00not a message");
        assert_eq!(meta.id, "x");
        assert!(meta.list_unsubscribe.is_empty());
    }
}
