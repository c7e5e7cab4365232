//! Outgoing messages (unsubscribe mailtos and digests), built with mail-builder so encoding and
//! header folding are right.

use mail_builder::MessageBuilder;
use mail_builder::headers::raw::Raw;

/// Builds a plain-text message marked as machine-generated (RFC 3834 `Auto-Submitted`).
pub fn plain_message(from: Option<&str>, to: &str, subject: &str, body: &str) -> Vec<u8> {
    let mut builder = MessageBuilder::new()
        .to(to.to_string())
        .subject(subject.to_string())
        .header("Auto-Submitted", Raw::new("auto-generated"))
        .text_body(body.to_string());
    if let Some(from) = from {
        builder = builder.from(from.to_string());
    }
    builder.write_to_vec().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::MessageMeta;

    #[test]
    fn headers_survive_a_round_trip() {
        let raw =
            plain_message(Some("me@home.example"), "leave@list.example", "unsubscribe ünïcode", "please remove me");
        let parsed = MessageMeta::from_raw("x".into(), vec![], &raw);
        assert_eq!(parsed.from, "me@home.example");
        assert_eq!(parsed.subject, "unsubscribe ünïcode");
        assert_eq!(parsed.auto_submitted.as_deref(), Some("auto-generated"));
    }
}
