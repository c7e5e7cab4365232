//! The trust rule on crafted header blocks: only the provider's own verdict, only for a
//! signature it names, aligned with the sender and covering every unsubscribe field.

use super::*;

const GOOD_SIG: &str = "v=1; a=rsa-sha256; d=news.example; s=s1;\r\n\th=from:subject:list-unsubscribe:\r\n\tlist-unsubscribe-post; bh=x; b=AbCdEfGh1234";
const LIST: &str =
    "List-Unsubscribe: <https://news.example/u>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n";

fn message_from(from: &str, extra: &str, auth: &[&str], signatures: &[&str]) -> MessageMeta {
    let mut raw = String::new();
    for field in auth {
        raw.push_str(&format!("Authentication-Results: {field}\r\n"));
    }
    for signature in signatures {
        raw.push_str(&format!("DKIM-Signature: {signature}\r\n"));
    }
    raw.push_str(&format!("From: {from}\r\n{extra}\r\n"));
    MessageMeta::from_raw("m".into(), vec![], raw.as_bytes())
}

fn message(auth: &[&str], signatures: &[&str]) -> MessageMeta {
    message_from("news@news.example", LIST, auth, signatures)
}

fn gmail(message: &MessageMeta) -> Authentication {
    authenticate(message, Some(GMAIL_AUTHSERV_ID))
}

#[test]
fn the_providers_pass_for_a_covering_aligned_signature_is_proof() {
    let m = message(
        &["mx.google.com; dkim=pass header.i=@news.example header.s=s1 header.b=AbCdEfGh; spf=pass"],
        &[GOOD_SIG],
    );
    let auth = gmail(&m);
    assert!(auth.vouches_for_one_click(), "{}", auth.detail);
    assert!(auth.vouches_for_mailto("news.example") && auth.vouches_for_mailto("lists.news.example"));
    assert!(!auth.vouches_for_mailto("victim.example"), "the signer vouches only for its own addresses");
    let proof = auth.proof(&m);
    assert!(proof.covers_unsubscribe);
    assert_eq!(proof.signing_domain.as_deref(), Some("news.example"));
    // Spacing, versions, quoting and comments as RFC 8601 allows them.
    for field in [
        "MX.Google.COM 1; dkim = pass (good signature) header.i = \"@news.example\"",
        "mx.google.com;\r\n       dkim=pass header.d=news.example header.s=s1;\r\n       spf=pass (google.com: ok; really) smtp.mailfrom=x@news.example",
    ] {
        let auth = gmail(&message(&[field], &[GOOD_SIG]));
        assert!(auth.vouches_for_one_click(), "{field}: {}", auth.detail);
    }
}

#[test]
fn nothing_is_trusted_without_the_providers_own_verdict() {
    let genuine = "mx.google.com; dkim=pass header.d=news.example";
    let unconfigured = authenticate(&message(&[genuine], &[GOOD_SIG]), None);
    assert!(!unconfigured.vouches_for_one_click() && unconfigured.detail.contains("no trusted authserv-id"));
    assert!(!authenticate(&message(&[genuine], &[GOOD_SIG]), Some(" ")).vouches_for_one_click());
    let cases = [
        // No verdict at all, or someone else's.
        message(&[], &[GOOD_SIG]),
        message(&["mx.evil.example; dkim=pass header.d=news.example"], &[GOOD_SIG]),
        message(&["mx.google.com.evil.example; dkim=pass header.d=news.example"], &[GOOD_SIG]),
        // The provider's verdict is not a pass.
        message(&["mx.google.com; dkim=fail header.d=news.example"], &[GOOD_SIG]),
        message(&["mx.google.com; dkim=neutral (dkim=pass header.d=news.example)"], &[GOOD_SIG]),
        message(&["mx.google.com; dkim=none; x=\"; dkim=pass header.d=news.example\""], &[GOOD_SIG]),
        // A forged verdict below the provider's own, with its id or another.
        message(&["mx.google.com; dkim=none", "mx.google.com; dkim=pass header.d=news.example"], &[GOOD_SIG]),
        message(&["mx.google.com; dkim=none", "evil; dkim=pass header.d=news.example"], &[GOOD_SIG]),
        // A pass for another domain, or for a signature the message does not carry.
        message(&["mx.google.com; dkim=pass header.d=other.example"], &[GOOD_SIG]),
        message(&["mx.google.com; dkim=pass header.d=news.example header.s=s2"], &[GOOD_SIG]),
        message(&["mx.google.com; dkim=pass header.d=news.example"], &[]),
        message(&["mx.google.com; dkim=pass"], &[GOOD_SIG]),
        // The passing signature does not cover both headers.
        message(
            &["mx.google.com; dkim=pass header.d=news.example"],
            &["v=1; d=news.example; h=from:list-unsubscribe; b=y"],
        ),
    ];
    for case in cases {
        let auth = gmail(&case);
        assert!(!auth.vouches_for_one_click() && !auth.proof(&case).covers_unsubscribe, "{case:?}: {}", auth.detail);
    }
}

#[test]
fn a_third_party_signature_does_not_speak_for_the_sender() {
    // From and List-Id claim the victim; the only valid signature is the attacker's own.
    let spoof = message_from(
        "ceo@victim.example",
        "List-Id: <news.victim.example>\r\nList-Unsubscribe: <mailto:ceo@victim.example>\r\n",
        &["mx.google.com; dkim=pass header.d=attacker.example"],
        &["v=1; d=attacker.example; s=s; h=from:list-unsubscribe; b=x"],
    );
    let auth = gmail(&spoof);
    assert!(auth.covers_list_unsubscribe && !auth.aligned_with_sender, "{}", auth.detail);
    assert!(!auth.vouches_for_mailto("victim.example") && !auth.vouches_for_mailto("attacker.example"));
    assert!(auth.detail.contains("not the sender's domain"), "{}", auth.detail);
    assert!(!related("evil.co.uk", "victim.co.uk"));
    assert!(related("news.example.com", "example.com") && related("example.com", "News.Example.com."));
    assert!(!related("", "example.com") && !related("badexample.com", "example.com"));
}

#[test]
fn the_signature_the_verdict_names_is_the_one_read() {
    // A genuine signature that does not cover the unsubscribe headers, and a forged one with the
    // same domain that claims to: the verdict's header.b picks the genuine one.
    let genuine = "v=1; d=news.example; s=s1; h=from:subject; b=GENUINE123";
    let forged = "v=1; d=news.example; s=s1; h=from:list-unsubscribe:list-unsubscribe-post; b=FORGED456";
    let named = message(
        &[
            "mx.google.com; dkim=pass header.d=news.example header.b=GENUINE1; dkim=fail header.d=news.example header.b=FORGED45",
        ],
        &[genuine, forged],
    );
    assert!(!gmail(&named).vouches_for_one_click(), "{}", gmail(&named).detail);
    let unnamed = message(&["mx.google.com; dkim=pass header.d=news.example"], &[genuine, forged]);
    let auth = gmail(&unnamed);
    assert!(!auth.vouches_for_one_click() && auth.detail.contains("unclear"), "{}", auth.detail);
}

#[test]
fn every_unsubscribe_field_must_be_signed() {
    // DKIM signs the bottom-most instance per h= entry: an added field on top is unsigned.
    let two = format!("List-Unsubscribe: <mailto:ceo@news.example>\r\n{LIST}");
    let auth = "mx.google.com; dkim=pass header.d=news.example";
    let once = message_from("news@news.example", &two, &[auth], &[GOOD_SIG]);
    assert!(!gmail(&once).covers_list_unsubscribe);
    let twice = "v=1; d=news.example; s=s1; h=from:list-unsubscribe:list-unsubscribe:list-unsubscribe-post; b=x";
    let over_signed = message_from("news@news.example", &two, &[auth], &[twice]);
    assert!(gmail(&over_signed).covers_list_unsubscribe);
    let mailto_only = message_from(
        "news@news.example",
        "List-Unsubscribe: <mailto:leave@news.example>\r\n",
        &[auth],
        &["v=1; d=news.example; h=from:list-unsubscribe; b=x"],
    );
    let auth = gmail(&mailto_only);
    assert!(auth.vouches_for_mailto("news.example") && !auth.vouches_for_one_click());
    assert!(auth.proof(&mailto_only).covers_unsubscribe, "no Post field, so none needs covering");
}

#[test]
fn a_configured_maildir_id_is_matched_like_gmails() {
    let m = message(&["mx.home.example; dkim=pass header.d=news.example"], &[GOOD_SIG]);
    assert!(authenticate(&m, Some("mx.home.example")).vouches_for_one_click());
    assert!(!gmail(&m).vouches_for_one_click());
}
