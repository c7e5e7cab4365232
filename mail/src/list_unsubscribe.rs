//! RFC 2369 `List-Unsubscribe` and RFC 8058 `List-Unsubscribe-Post` parsing.
//!
//! mail-parser reads this field as an address list, which is not RFC 2369's grammar (it keeps
//! going after a non-bracketed item the RFC says ends the field), so the URI list is parsed here
//! from the unfolded raw value mail-parser hands over. The grammar is small: optional comments,
//! then `<uri>` items separated by commas, in order of preference.

use url::Url;

/// Longest URI accepted; real unsubscribe links are far shorter.
const MAX_URI_LEN: usize = 2048;
/// Most URIs read from one field.
const MAX_URIS: usize = 8;
/// The only value RFC 8058 allows in `List-Unsubscribe-Post`.
pub const ONE_CLICK_BODY: &str = "List-Unsubscribe=One-Click";

/// Splits a `List-Unsubscribe` value into its URIs, left (preferred) to right, following RFC 2369
/// §2: a field not starting with `<` (after comments) is ignored, whitespace inside brackets is
/// removed, text after an item ends the field unless a comma follows, and a non-bracketed item
/// ends the field.
pub fn parse_uris(value: &str) -> Vec<String> {
    let mut rest = skip_space_and_comments(value);
    let mut uris = Vec::new();
    while let Some(after_open) = rest.strip_prefix('<') {
        let Some(close) = after_open.find('>') else { break };
        let uri: String = after_open[..close].chars().filter(|c| !c.is_whitespace()).collect();
        if !uri.is_empty() && uri.len() <= MAX_URI_LEN && uris.len() < MAX_URIS {
            uris.push(uri);
        }
        rest = skip_space_and_comments(&after_open[close + 1..]);
        match rest.strip_prefix(',') {
            Some(after_comma) => rest = skip_space_and_comments(after_comma),
            None => break,
        }
    }
    uris
}

/// Skips leading whitespace and (possibly nested) RFC 5322 comments.
fn skip_space_and_comments(mut text: &str) -> &str {
    loop {
        text = text.trim_start();
        if !text.starts_with('(') {
            return text;
        }
        let mut depth = 0usize;
        let mut end = None;
        for (index, c) in text.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(index + 1);
                        break;
                    }
                }
                _ => {}
            }
        }
        match end {
            Some(end) => text = &text[end..],
            None => return "",
        }
    }
}

/// True when the message asks for RFC 8058 one-click: exactly one `List-Unsubscribe-Post` field
/// whose value is exactly `List-Unsubscribe=One-Click`.
pub fn is_one_click(post_fields: &[String]) -> bool {
    matches!(post_fields, [only] if only.trim() == ONE_CLICK_BODY)
}

pub use crate::mailto::{MailtoRefusal, MailtoTarget, parse_mailto};

/// An http(s) URI shown as scheme and host only: the subscriber token may sit in the path as
/// well as in the query, so neither is shown or logged.
pub fn redact_url(uri: &str) -> String {
    match Url::parse(uri) {
        Ok(url) => {
            let host = url.host_str().unwrap_or("");
            let hidden = url.path() != "/" || url.query().is_some() || url.fragment().is_some();
            format!("{}://{}/{}", url.scheme(), host, if hidden { "…" } else { "" })
        }
        Err(_) => "<unparseable uri>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2369_examples() {
        // RFC 2369 §3.2 examples.
        assert_eq!(
            parse_uris("<mailto:list@host.com?subject=unsubscribe>"),
            ["mailto:list@host.com?subject=unsubscribe"]
        );
        assert_eq!(
            parse_uris("(Use this command to get off the list) <mailto:list-manager@host.com?body=unsubscribe%20list>"),
            ["mailto:list-manager@host.com?body=unsubscribe%20list"]
        );
        assert_eq!(parse_uris("<mailto:list-off@host.com>"), ["mailto:list-off@host.com"]);
        assert_eq!(
            parse_uris(
                "<http://www.host.com/list.cgi?cmd=unsub&lst=list>,\n\t<mailto:list-request@host.com?subject=unsubscribe>"
            ),
            ["http://www.host.com/list.cgi?cmd=unsub&lst=list", "mailto:list-request@host.com?subject=unsubscribe"]
        );
    }

    #[test]
    fn rfc8058_example() {
        let uris = parse_uris(
            "<mailto: listrequest@example.com?subject=unsubscribe>,\r\n <https://example.com/unsubscribe.html?opaque=123456789>",
        );
        assert_eq!(
            uris,
            [
                "mailto:listrequest@example.com?subject=unsubscribe",
                "https://example.com/unsubscribe.html?opaque=123456789"
            ]
        );
        assert!(is_one_click(&["List-Unsubscribe=One-Click".to_string()]));
    }

    #[test]
    fn malformed_fields() {
        assert!(parse_uris("https://no.brackets.example/").is_empty(), "must start with <");
        assert!(parse_uris("").is_empty());
        assert!(parse_uris("<m").is_empty(), "truncated (CPython msg_25)");
        assert!(parse_uris("(unterminated comment <https://x.example/>").is_empty());
        assert_eq!(parse_uris("<https://a.example/> trailing text <https://b.example/>"), ["https://a.example/"]);
        assert_eq!(parse_uris("<https://a.example/>, bare.example, <https://c.example/>"), ["https://a.example/"]);
        assert_eq!(parse_uris("<>, <https://a.example/>"), ["https://a.example/"]);
        let many = vec!["<https://a.example/>"; 50].join(",");
        assert_eq!(parse_uris(&many).len(), MAX_URIS);
        let long = format!("<https://a.example/{}>", "x".repeat(5000));
        assert!(parse_uris(&long).is_empty());
    }

    #[test]
    fn one_click_needs_exactly_one_exact_post_field() {
        assert!(!is_one_click(&[]));
        assert!(!is_one_click(&["list-unsubscribe=one-click".to_string()]));
        assert!(!is_one_click(&[ONE_CLICK_BODY.to_string(), ONE_CLICK_BODY.to_string()]));
        assert!(!is_one_click(&["List-Unsubscribe=One-Click&x=1".to_string()]));
    }

    #[test]
    fn mailto_keeps_one_address_and_refuses_recipient_hfields() {
        // Recipient fields used to be dropped silently; now the whole target is refused, naming why.
        let refused = parse_mailto("mailto:Leave@List.Example?subject=unsub&bcc=victim@evil.example&cc=x@evil.example&to=y@evil.example&body=please%20remove").unwrap_err();
        assert_eq!(refused.address.as_deref(), Some("leave@list.example"));
        assert!(refused.reason.contains("`bcc`"), "{}", refused.reason);
        let target = parse_mailto("mailto:Leave@List.Example?subject=unsub&body=please%20remove").unwrap();
        assert_eq!(target.address, "leave@list.example");
        assert_eq!(target.subject.as_deref(), Some("unsub"));
        assert_eq!(target.body.as_deref(), Some("please remove"));
        assert_eq!(target.redacted(), "mailto:leave@list.example");
        assert!(parse_mailto("mailto:a@x.example,b@y.example").is_err());
        assert!(parse_mailto("mailto:?to=a@x.example").is_err());
        assert!(parse_mailto("mailto:nodomain").is_err());
        assert!(parse_mailto("https://x.example/").is_err());
        assert!(parse_mailto("mailto:a@x.example?subject=hi%0D%0ABcc:%20v@evil.example").is_err());
    }

    #[test]
    fn redaction_hides_tokens() {
        assert_eq!(redact_url("https://e.example/u/x?token=secret#f"), "https://e.example/…");
        assert_eq!(redact_url("https://e.example/u/Zx9a"), "https://e.example/…");
        assert_eq!(redact_url("https://e.example/"), "https://e.example/");
    }
}
