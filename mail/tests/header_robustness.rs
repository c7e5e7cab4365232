//! The stable-toolchain companion of the cargo-fuzz target: mutated real-world headers must never
//! panic the parser, discovery or DKIM reading, and targets always come out redacted.

use mailagent_mail::candidates::discover;
use mailagent_mail::list_unsubscribe::{parse_mailto, parse_uris};
use mailagent_mail::message::MessageMeta;

const SEED: &[u8] = b"From: \"N\" <n@news.example>\r\nList-Id: <l.news.example>\r\n\
List-Unsubscribe: (c) <https://news.example/u?t=1>,\r\n <mailto:leave@news.example?subject=x&bcc=y@z.example>\r\n\
List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\
Authentication-Results: mx; dkim=pass header.d=news.example\r\n\
DKIM-Signature: v=1; d=news.example; h=list-unsubscribe:list-unsubscribe-post; b=x\r\n\r\n";

const INTERESTING: &[u8] = b"<>,;:()\"\\\r\n\t =?@%\xff\x00";

#[test]
fn mutated_headers_never_panic() {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..20_000 {
        let mut input = SEED.to_vec();
        for _ in 0..(next() % 8 + 1) {
            let position = (next() as usize) % input.len();
            match next() % 3 {
                0 => input[position] = INTERESTING[(next() as usize) % INTERESTING.len()],
                1 => input.insert(position, INTERESTING[(next() as usize) % INTERESTING.len()]),
                _ => {
                    input.remove(position);
                }
            }
        }
        let meta = MessageMeta::from_raw("m".into(), Vec::new(), &input);
        for candidate in discover([&meta], Some("mx")) {
            for method in &candidate.methods {
                assert!(!method.view.target.contains("t=1"), "{}", method.view.target);
            }
        }
        for uri in parse_uris(&String::from_utf8_lossy(&input)) {
            let _ = parse_mailto(&uri);
        }
    }
}
