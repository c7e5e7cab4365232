//! Any bytes as a message header block: parsing, unsubscribe discovery, DKIM proof and mailto
//! parsing must never panic, and every method target must come out redacted.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mailagent_mail::header_invariants::check_header_block(data));
