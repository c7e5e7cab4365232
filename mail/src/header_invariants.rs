//! The invariants the header fuzz target (`mail/fuzz`) checks on arbitrary bytes, kept here so the
//! stable test suite replays the committed seeds (`mail/fuzz/seeds`) through the very same checks.

use crate::candidates::discover;
use crate::list_unsubscribe::{parse_mailto, parse_uris};
use crate::message::MessageMeta;

/// Parses `data` as a header block and runs discovery, DKIM proof and mailto parsing over it.
///
/// # Panics
/// When any step panics, or when a discovered method's target is shown with its query string
/// (the part of an unsubscribe link that carries its secret).
pub fn check_header_block(data: &[u8]) {
    let meta = MessageMeta::from_raw("fuzz".into(), Vec::new(), data);
    for candidate in discover([&meta]) {
        for method in &candidate.methods {
            assert!(!method.view.target.contains('?'), "unredacted target: {}", method.view.target);
        }
    }
    let text = String::from_utf8_lossy(data);
    for uri in parse_uris(&text) {
        let _ = parse_mailto(&uri);
    }
}
