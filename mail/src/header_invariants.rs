//! The invariants the header fuzz target (`mail/fuzz`) checks on arbitrary bytes, kept here so the
//! stable test suite replays the committed seeds (`mail/fuzz/seeds`) through the very same checks.

use crate::api::MethodKind;
use crate::candidates::discover;
use crate::list_unsubscribe::{parse_mailto, parse_uris};
use crate::mailto::{MAX_BODY_CHARS, MAX_SUBJECT_CHARS};
use crate::message::MessageMeta;

/// Parses `data` as a header block and runs discovery, DKIM proof and mailto parsing over it.
///
/// # Panics
/// When any step panics; when a method is automatic although no provider verdict is trusted;
/// when a discovered method's target is shown with its query string (the part of an unsubscribe
/// link that carries its secret); or when an accepted mailto target is anything but one valid
/// address without control characters, with bounded, printable fields.
pub fn check_header_block(data: &[u8]) {
    let meta = MessageMeta::from_raw("fuzz".into(), Vec::new(), data);
    for candidate in discover([&meta], None) {
        assert!(candidate.methods.iter().all(|m| !m.view.automatic), "automatic without a trusted verdict");
    }
    // Trust whatever the block's own topmost verdict claims: the most permissive reading, so the
    // automatic paths are exercised too.
    let claimed = meta.authentication_results.first().and_then(|f| f.split([';', ' ']).next()).map(str::to_string);
    for candidate in discover([&meta], claimed.as_deref()) {
        for method in &candidate.methods {
            assert!(!method.view.target.contains('?'), "unredacted target: {}", method.view.target);
            if method.view.kind != MethodKind::Mailto {
                continue;
            }
            if let Some(address) = method.view.target.strip_prefix("mailto:").filter(|a| *a != "…") {
                assert_single_clean_address(address);
            }
            if method.view.automatic {
                let target = parse_mailto(&method.uri).expect("an automatic mailto parses");
                assert_eq!(target.redacted(), method.view.target, "shown and sent address differ");
            }
        }
    }
    let text = String::from_utf8_lossy(data);
    for uri in parse_uris(&text) {
        if let Ok(target) = parse_mailto(&uri) {
            assert_single_clean_address(&target.address);
            let subject = target.subject_text();
            assert!(
                subject.chars().count() <= MAX_SUBJECT_CHARS && !subject.chars().any(char::is_control),
                "{subject:?}"
            );
            let body = target.body_text();
            let body_ok = !body.replace("\r\n", "").replace('\n', "").chars().any(char::is_control);
            assert!(body.chars().count() <= MAX_BODY_CHARS && body_ok, "{body:?}");
        }
    }
}

/// An address check written apart from the parser's: one `@`, a non-empty local part and a
/// dotted host name, nothing that separates, quotes, routes or controls.
fn assert_single_clean_address(address: &str) {
    let forbidden = |c: char| c.is_control() || c.is_whitespace() || !c.is_ascii() || ",;:<>\"()[]\\%!@".contains(c);
    let (local, domain) = address.split_once('@').unwrap_or_else(|| panic!("no @ in {address:?}"));
    assert!(!local.is_empty() && !local.contains(forbidden), "bad local part in {address:?}");
    assert!(domain.contains('.') && !domain.contains(forbidden), "bad domain in {address:?}");
    assert!(domain.split('.').all(|label| !label.is_empty()), "empty label in {address:?}");
}
