//! Unsubscribe candidates: messages grouped by list (else sender), methods ranked.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::api::{MethodKind, UnsubscribeCandidate, UnsubscribeMethod};
use crate::dkim::{Authentication, authenticate};
use crate::list_unsubscribe::{is_one_click, parse_mailto, parse_uris, redact_url};
use crate::message::MessageMeta;

/// A method with the full URI kept for execution (never shown or logged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutableMethod {
    /// The public view.
    pub view: UnsubscribeMethod,
    /// The exact URI from the header.
    pub uri: String,
}

/// A candidate and what is needed to act on it.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The public view (its `methods` mirror `methods` below).
    pub view: UnsubscribeCandidate,
    /// Ranked methods with their URIs.
    pub methods: Vec<ExecutableMethod>,
}

/// The key messages are grouped under: the `List-Id` identifier, else the sender address.
pub fn candidate_key(message: &MessageMeta) -> String {
    message.list_identifier().unwrap_or_else(|| message.from.clone())
}

/// Groups messages that carry `List-Unsubscribe` and ranks each group's methods, most messages
/// first. `authserv_id` is the mailbox provider's own `Authentication-Results` identifier (see
/// [`crate::dkim`]); without it no method is automatic.
pub fn discover<'a>(messages: impl IntoIterator<Item = &'a MessageMeta>, authserv_id: Option<&str>) -> Vec<Candidate> {
    let mut groups: BTreeMap<String, Vec<&MessageMeta>> = BTreeMap::new();
    for message in messages {
        if !message.list_unsubscribe.is_empty() && !message.from.is_empty() {
            groups.entry(candidate_key(message)).or_default().push(message);
        }
    }
    let mut candidates: Vec<Candidate> =
        groups.into_iter().map(|(key, group)| build(key, &group, authserv_id)).collect();
    candidates
        .sort_by(|a, b| b.view.message_count.cmp(&a.view.message_count).then_with(|| a.view.key.cmp(&b.view.key)));
    candidates
}

fn build(key: String, group: &[&MessageMeta], authserv_id: Option<&str>) -> Candidate {
    // Act on the newest message's headers: older links may have been rotated by the sender.
    let newest = group.iter().max_by_key(|m| (m.date, m.id.clone())).copied().unwrap_or(group[0]);
    let first_seen = group.iter().filter_map(|m| m.date).min();
    let last_seen = group.iter().filter_map(|m| m.date).max();
    let authentication = authenticate(newest, authserv_id);
    let methods = rank_methods(newest, &authentication);
    let view = UnsubscribeCandidate {
        key,
        sender: newest.from.clone(),
        list_id: newest.list_id.clone(),
        message_count: group.len() as u64,
        per_week: per_week(group.len(), first_seen, last_seen),
        first_seen,
        last_seen,
        methods: methods.iter().map(|m| m.view.clone()).collect(),
        dkim: authentication.proof(newest),
        done: None,
    };
    Candidate { view, methods }
}

fn per_week(count: usize, first: Option<DateTime<Utc>>, last: Option<DateTime<Utc>>) -> f64 {
    let weeks = match (first, last) {
        (Some(first), Some(last)) => ((last - first).num_seconds() as f64 / (7.0 * 86_400.0)).max(1.0),
        _ => 1.0,
    };
    (count as f64 / weeks * 100.0).round() / 100.0
}

/// Methods from the newest message, best first: one-click the provider vouches for, one-click
/// without that, mailto, manual link. Only the leftmost URI of each kind is kept (RFC 2369
/// preference order). A method is automatic only when the provider-verified DKIM signature
/// vouches for it; every other method says why a person is needed.
pub fn rank_methods(message: &MessageMeta, auth: &Authentication) -> Vec<ExecutableMethod> {
    // RFC 8058 requires a single List-Unsubscribe field; with several, one-click is off.
    let one_click = is_one_click(&message.list_unsubscribe_post) && message.list_unsubscribe.len() == 1;
    let Some(field) = message.list_unsubscribe.first() else { return Vec::new() };
    let mut found: Vec<(u8, ExecutableMethod)> = Vec::new();
    for uri in parse_uris(field) {
        let Some(method) = classify_uri(&uri, one_click, auth) else { continue };
        if found.iter().any(|(_, m)| m.view.kind == method.1.view.kind) {
            continue;
        }
        found.push(method);
    }
    found.sort_by_key(|(order, _)| *order);
    found
        .into_iter()
        .enumerate()
        .map(|(index, (_, mut method))| {
            method.view.rank = index as u32 + 1;
            method
        })
        .collect()
}

fn classify_uri(uri: &str, one_click: bool, auth: &Authentication) -> Option<(u8, ExecutableMethod)> {
    let lower = uri.to_ascii_lowercase();
    let method = |kind, target: String, automatic, reason: String| ExecutableMethod {
        view: UnsubscribeMethod { kind, rank: 0, target, automatic, reason },
        uri: uri.to_string(),
    };
    if lower.starts_with("https://") && one_click {
        return Some(if auth.vouches_for_one_click() {
            (0, method(MethodKind::OneClick, redact_url(uri), true, format!("RFC 8058 one-click: {}", auth.detail)))
        } else {
            let reason = format!("RFC 8058 one-click, but {}; needs a person", auth.detail);
            (1, method(MethodKind::OneClick, redact_url(uri), false, reason))
        });
    }
    if lower.starts_with("mailto:") {
        return Some((2, mailto_method(uri, auth)));
    }
    if lower.starts_with("https://") || lower.starts_with("http://") {
        let reason = "a web page a person must open (no RFC 8058 one-click)".to_string();
        return Some((3, method(MethodKind::Manual, redact_url(uri), false, reason)));
    }
    None
}

/// A mailto method: automatic only for a single clean address in the signer's own domain.
fn mailto_method(uri: &str, auth: &Authentication) -> ExecutableMethod {
    let (target, automatic, reason) = match parse_mailto(uri) {
        Err(refusal) => {
            let target = refusal.address.map_or_else(|| "mailto:…".to_string(), |a| format!("mailto:{a}"));
            (target, false, format!("{}; needs a person", refusal.reason))
        }
        Ok(target) if auth.vouches_for_mailto(target.domain()) => {
            (target.redacted(), true, format!("mailto to the list's own address: {}", auth.detail))
        }
        Ok(target) if auth.covers_list_unsubscribe && auth.aligned_with_sender => {
            let signer = auth.signing_domain.as_deref().unwrap_or_default();
            let reason = format!(
                "mailto to {}, outside {signer} whose signature vouches for it; needs a person",
                target.domain()
            );
            (target.redacted(), false, reason)
        }
        Ok(target) => (target.redacted(), false, format!("mailto, but {}; needs a person", auth.detail)),
    };
    ExecutableMethod {
        view: UnsubscribeMethod { kind: MethodKind::Mailto, rank: 0, target, automatic, reason },
        uri: uri.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(id: &str, headers: &str) -> MessageMeta {
        MessageMeta::from_raw(id.into(), vec![], format!("{headers}\r\n\r\n").as_bytes())
    }

    const SIGNED: &str = "Authentication-Results: mx.example; dkim=pass header.d=news.example\r\n\
        DKIM-Signature: v=1; d=news.example; h=from:list-unsubscribe:list-unsubscribe-post; b=x";

    #[test]
    fn groups_by_list_and_ranks_methods() {
        let a = meta(
            "a",
            &format!(
                "{SIGNED}\r\nFrom: n@news.example\r\nDate: Mon, 02 Nov 2026 10:00:00 +0000\r\nList-Id: <weekly.news.example>\r\nList-Unsubscribe: <https://news.example/u?t=1>, <mailto:leave@news.example?subject=bye>, <http://news.example/page>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click"
            ),
        );
        let b = meta(
            "b",
            "From: n@news.example\r\nDate: Mon, 19 Oct 2026 10:00:00 +0000\r\nList-Id: <weekly.news.example>\r\nList-Unsubscribe: <https://news.example/old>",
        );
        let c = meta("c", "From: friend@x.example\r\nSubject: hi");
        let candidates = discover([&a, &b, &c], Some("mx.example"));
        assert_eq!(candidates.len(), 1);
        let candidate = &candidates[0];
        assert_eq!(candidate.view.key, "weekly.news.example");
        assert_eq!(candidate.view.message_count, 2);
        assert_eq!(candidate.view.per_week, 1.0);
        let kinds: Vec<_> = candidate.methods.iter().map(|m| (m.view.kind, m.view.rank, m.view.automatic)).collect();
        assert_eq!(
            kinds,
            [(MethodKind::OneClick, 1, true), (MethodKind::Mailto, 2, true), (MethodKind::Manual, 3, false)]
        );
        assert_eq!(candidate.methods[0].view.target, "https://news.example/…");
        assert_eq!(candidate.methods[0].uri, "https://news.example/u?t=1");
    }

    #[test]
    fn one_click_without_proof_is_not_automatic() {
        let message = meta(
            "a",
            "From: n@news.example\r\nList-Unsubscribe: <https://news.example/u>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click",
        );
        let methods = rank_methods(&message, &authenticate(&message, Some("mx.example")));
        assert_eq!(methods[0].view.kind, MethodKind::OneClick);
        assert!(!methods[0].view.automatic);
    }

    #[test]
    fn two_list_unsubscribe_fields_disable_one_click_and_unaligned_mailto_needs_a_person() {
        let message = meta(
            "a",
            &format!(
                "{SIGNED}\r\nFrom: n@news.example\r\nList-Unsubscribe: <https://news.example/u>\r\nList-Unsubscribe: <mailto:x@elsewhere.example>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click"
            ),
        );
        let methods = rank_methods(&message, &authenticate(&message, Some("mx.example")));
        assert_eq!(methods.len(), 1);
        assert_eq!(methods[0].view.kind, MethodKind::Manual);
        let unaligned = meta("b", "From: n@news.example\r\nList-Unsubscribe: <mailto:x@elsewhere.example>");
        let methods = rank_methods(&unaligned, &authenticate(&unaligned, Some("mx.example")));
        assert!(!methods[0].view.automatic);
    }
}
