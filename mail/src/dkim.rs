//! RFC 8058 §4 asks that `List-Unsubscribe` and `List-Unsubscribe-Post` be covered by a valid DKIM
//! signature. The receiving provider already verified signatures and wrote the verdict into the
//! topmost `Authentication-Results`; here we read that verdict and check that a passing
//! signature's `h=` tag names both headers. No cryptography is redone.

use crate::api::DkimProof;
use crate::message::MessageMeta;

/// Reads the DKIM evidence for a message's unsubscribe headers from its headers alone.
pub fn unsubscribe_proof(message: &MessageMeta) -> DkimProof {
    // Only the topmost field was added by our own provider; lower ones came with the message
    // and may be forged by the sender.
    let passing = message.authentication_results.first().map(|field| passing_dkim_domains(field)).unwrap_or_default();
    if passing.is_empty() {
        return DkimProof {
            covers_unsubscribe: false,
            signing_domain: None,
            detail: "no dkim=pass in the topmost Authentication-Results".into(),
        };
    }
    for signature in &message.dkim_signatures {
        let tags = signature_tags(signature);
        let Some(domain) = tag(&tags, "d").map(|d| d.to_ascii_lowercase()) else { continue };
        if !passing.contains(&domain) {
            continue;
        }
        let signed: Vec<String> =
            tag(&tags, "h").unwrap_or("").split(':').map(|name| name.trim().to_ascii_lowercase()).collect();
        let covers =
            ["list-unsubscribe", "list-unsubscribe-post"].iter().all(|needed| signed.iter().any(|s| s == needed));
        if covers {
            return DkimProof {
                covers_unsubscribe: true,
                signing_domain: Some(domain.clone()),
                detail: format!("dkim=pass for {domain}; its signature covers both unsubscribe headers"),
            };
        }
    }
    DkimProof {
        covers_unsubscribe: false,
        signing_domain: passing.first().cloned(),
        detail: "dkim=pass, but no passing signature's h= names List-Unsubscribe and List-Unsubscribe-Post".into(),
    }
}

/// Domains with `dkim=pass` in one `Authentication-Results` field (RFC 8601), from `header.d=`
/// or the domain of `header.i=`.
fn passing_dkim_domains(field: &str) -> Vec<String> {
    let field = strip_comments(field);
    let mut domains = Vec::new();
    // The first element is the authserv-id; the rest are results.
    for result in field.split(';').skip(1) {
        let mut words = result.split_whitespace();
        let Some(verdict) = words.next() else { continue };
        if !verdict.eq_ignore_ascii_case("dkim=pass") {
            continue;
        }
        for property in words {
            let Some((key, value)) = property.split_once('=') else { continue };
            let value = value.trim_matches('"').to_ascii_lowercase();
            let domain = match key.to_ascii_lowercase().as_str() {
                "header.d" => value,
                "header.i" => value.rsplit_once('@').map(|(_, d)| d.to_string()).unwrap_or(value),
                _ => continue,
            };
            if !domain.is_empty() && !domains.contains(&domain) {
                domains.push(domain);
            }
        }
    }
    domains
}

fn strip_comments(text: &str) -> String {
    let mut depth = 0usize;
    text.chars()
        .filter(|c| match c {
            '(' => {
                depth += 1;
                false
            }
            ')' => {
                depth = depth.saturating_sub(1);
                false
            }
            _ => depth == 0,
        })
        .collect()
}

/// `tag=value` pairs of a DKIM-Signature (RFC 6376 §3.2), whitespace removed.
fn signature_tags(signature: &str) -> Vec<(String, String)> {
    signature
        .split(';')
        .filter_map(|pair| pair.split_once('='))
        .map(|(key, value)| (key.trim().to_ascii_lowercase(), value.chars().filter(|c| !c.is_whitespace()).collect()))
        .collect()
}

fn tag<'a>(tags: &'a [(String, String)], name: &str) -> Option<&'a str> {
    tags.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(auth: &[&str], signatures: &[&str]) -> MessageMeta {
        let mut raw = String::new();
        for field in auth {
            raw.push_str(&format!("Authentication-Results: {field}\r\n"));
        }
        for signature in signatures {
            raw.push_str(&format!("DKIM-Signature: {signature}\r\n"));
        }
        raw.push_str("From: news@news.example\r\n\r\n");
        MessageMeta::from_raw("m".into(), vec![], raw.as_bytes())
    }

    const GOOD_SIG: &str = "v=1; a=rsa-sha256; d=news.example; s=s1;\r\n\th=from:subject:list-unsubscribe:\r\n\tlist-unsubscribe-post; bh=x; b=y";

    #[test]
    fn pass_and_covering_signature_is_proof() {
        let proof = message(&["mx.google.com; dkim=pass header.i=@news.example header.s=s1; spf=pass"], &[GOOD_SIG]);
        let proof = unsubscribe_proof(&proof);
        assert!(proof.covers_unsubscribe, "{}", proof.detail);
        assert_eq!(proof.signing_domain.as_deref(), Some("news.example"));
    }

    #[test]
    fn missing_pieces_are_not_proof() {
        let cases = [
            message(&[], &[GOOD_SIG]),
            message(&["mx.google.com; dkim=fail header.d=news.example"], &[GOOD_SIG]),
            message(&["mx.google.com; dkim=pass header.d=other.example"], &[GOOD_SIG]),
            message(
                &["mx.google.com; dkim=pass header.d=news.example"],
                &["v=1; d=news.example; h=from:list-unsubscribe; b=y"],
            ),
            message(&["mx.google.com; dkim=pass header.d=news.example"], &[]),
            // A forged verdict below the provider's own topmost field does not count.
            message(&["mx.google.com; dkim=none", "evil; dkim=pass header.d=news.example"], &[GOOD_SIG]),
            message(&["mx.google.com (dkim=pass header.d=news.example); dkim=neutral"], &[GOOD_SIG]),
        ];
        for case in cases {
            assert!(!unsubscribe_proof(&case).covers_unsubscribe, "{case:?}");
        }
    }
}
