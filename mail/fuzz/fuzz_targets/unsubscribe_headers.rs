//! Any bytes as a message header block: parsing, unsubscribe discovery, DKIM proof and mailto
//! parsing must never panic, and every method target must come out redacted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailagent_mail::candidates::discover;
use mailagent_mail::list_unsubscribe::{parse_mailto, parse_uris};
use mailagent_mail::message::MessageMeta;

fuzz_target!(|data: &[u8]| {
    let meta = MessageMeta::from_raw("fuzz".into(), Vec::new(), data);
    for candidate in discover([&meta]) {
        for method in &candidate.methods {
            assert!(!method.view.target.contains('?'), "{}", method.view.target);
        }
    }
    let text = String::from_utf8_lossy(data);
    for uri in parse_uris(&text) {
        let _ = parse_mailto(&uri);
    }
});
