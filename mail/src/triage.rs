//! Header-only classification with reasons. The first matching rule wins; rules run from the
//! most specific evidence (the provider's own category) to the weakest (no bulk signal at all).

use crate::api::MessageClass;
use crate::message::MessageMeta;

const TRANSACTIONAL_SUBJECT_WORDS: &[&str] = &[
    "receipt",
    "invoice",
    "order",
    "shipped",
    "shipping",
    "delivery",
    "payment",
    "password",
    "verification",
    "verify",
    "statement",
    "booking",
    "reservation",
    "confirmation",
];
const AUTOMATED_LOCAL_PARTS: &[&str] = &[
    "noreply",
    "no-reply",
    "donotreply",
    "do-not-reply",
    "notifications",
    "notification",
    "alerts",
    "alert",
    "mailer-daemon",
];

/// Classifies one message and says why.
pub fn classify(message: &MessageMeta) -> (MessageClass, Vec<String>) {
    let mut reasons = Vec::new();
    let class = decide(message, &mut reasons);
    (class, reasons)
}

fn decide(message: &MessageMeta, reasons: &mut Vec<String>) -> MessageClass {
    let has = |label: &str| message.labels.iter().any(|l| l == label);
    if has("CATEGORY_PROMOTIONS") {
        reasons.push("Gmail category: promotions".into());
        return MessageClass::Promotion;
    }
    let subject = message.subject.to_lowercase();
    let local_part = message.from.split('@').next().unwrap_or("");
    let automated_sender = AUTOMATED_LOCAL_PARTS.iter().any(|p| local_part.contains(p));
    let transactional_subject = TRANSACTIONAL_SUBJECT_WORDS.iter().find(|w| subject.contains(*w));
    let from_a_list = message.list_id.is_some() || message.precedence.as_deref() == Some("bulk");
    if let Some(word) = transactional_subject
        && (automated_sender || message.list_unsubscribe.is_empty())
        && !from_a_list
    {
        reasons.push(format!("subject mentions \"{word}\" and the mail is not from a list"));
        if automated_sender {
            reasons.push(format!("automated sender address ({})", message.from));
        }
        return MessageClass::Transactional;
    }
    if let Some(list_id) = &message.list_id {
        reasons.push(format!("List-Id present: {list_id}"));
        if !message.list_unsubscribe.is_empty() {
            reasons.push("List-Unsubscribe present".into());
        }
        return MessageClass::Newsletter;
    }
    let bulk = matches!(message.precedence.as_deref(), Some("bulk" | "junk"));
    if !message.list_unsubscribe.is_empty() {
        reasons.push("List-Unsubscribe present without List-Id".into());
        if bulk {
            reasons.push(format!("Precedence: {}", message.precedence.as_deref().unwrap_or_default()));
            return MessageClass::Promotion;
        }
        if has("CATEGORY_FORUMS") {
            reasons.push("Gmail category: forums".into());
        }
        return MessageClass::Newsletter;
    }
    if has("CATEGORY_SOCIAL") || has("CATEGORY_UPDATES") {
        reasons.push(if has("CATEGORY_SOCIAL") { "Gmail category: social" } else { "Gmail category: updates" }.into());
        return MessageClass::Notification;
    }
    if let Some(auto) = message.auto_submitted.as_deref().filter(|a| *a != "no") {
        reasons.push(format!("Auto-Submitted: {auto}"));
        return MessageClass::Notification;
    }
    if automated_sender {
        reasons.push(format!("automated sender address ({})", message.from));
        return MessageClass::Notification;
    }
    if bulk {
        reasons.push(format!("Precedence: {}", message.precedence.as_deref().unwrap_or_default()));
        return MessageClass::Promotion;
    }
    reasons.push("no list, bulk, category or automation headers".into());
    MessageClass::Personal
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(headers: &str, labels: &[&str]) -> MessageMeta {
        let raw = format!("{headers}\r\n\r\n");
        MessageMeta::from_raw("m".into(), labels.iter().map(|l| l.to_string()).collect(), raw.as_bytes())
    }

    #[test]
    fn each_class_with_its_reason() {
        let cases = [
            (meta("From: ann@friends.example\r\nSubject: lunch?", &[]), MessageClass::Personal, "no list"),
            (
                meta("From: n@news.example\r\nList-Id: <news.example>\r\nList-Unsubscribe: <https://n.example/u>", &[]),
                MessageClass::Newsletter,
                "List-Id",
            ),
            (
                meta("From: deals@shop.example\r\nList-Unsubscribe: <https://s.example/u>\r\nPrecedence: bulk", &[]),
                MessageClass::Promotion,
                "Precedence",
            ),
            (meta("From: x@shop.example", &["CATEGORY_PROMOTIONS"]), MessageClass::Promotion, "promotions"),
            (meta("From: noreply@ci.example\r\nSubject: build failed", &[]), MessageClass::Notification, "automated"),
            (
                meta("From: bot@ci.example\r\nAuto-Submitted: auto-generated", &[]),
                MessageClass::Notification,
                "Auto-Submitted",
            ),
            (
                meta("From: orders@shop.example\r\nSubject: Your receipt #123", &[]),
                MessageClass::Transactional,
                "receipt",
            ),
        ];
        for (message, class, reason) in cases {
            let (got, reasons) = classify(&message);
            assert_eq!(got, class, "{message:?}");
            assert!(reasons.iter().any(|r| r.contains(reason)), "{reasons:?} lacks {reason}");
        }
    }
}
