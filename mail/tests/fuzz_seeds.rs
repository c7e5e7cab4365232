//! Replays the fuzz target's committed seeds (RFC 2369/8058 examples, the sample mailbox's headers,
//! hostile mailto recipients) through the fuzz target's own checks on the stable toolchain, so a
//! regression in them fails `make test`, not only `make fuzz`.

use std::path::Path;

use mailagent_mail::header_invariants::check_header_block;

#[test]
fn every_fuzz_seed_passes_the_fuzz_checks() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    let mut checked = 0;
    for entry in std::fs::read_dir(&seeds).expect("mail/fuzz/seeds exists") {
        let path = entry.unwrap().path();
        check_header_block(&std::fs::read(&path).unwrap());
        checked += 1;
    }
    assert!(checked >= 10, "expected the committed seeds, found {checked} in {}", seeds.display());
}
