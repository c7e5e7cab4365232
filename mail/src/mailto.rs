//! RFC 6068 `mailto:` unsubscribe targets, read strictly: the user's own mailbox sends this mail,
//! so the address that is checked, shown, recorded and sent must be one and the same valid
//! address, and the message may carry nothing the list did not ask for in its own `subject` and
//! `body` fields.
//!
//! The URI is parsed by hand rather than with `url`: a WHATWG parser silently drops tabs and
//! newlines and decodes `+` in queries as a space, and either would make the address or the
//! message differ from what the header said.

use percent_encoding::percent_decode_str;

/// Longest subject taken from a mailto URI; a longer one is refused, not cut.
pub const MAX_SUBJECT_CHARS: usize = 200;
/// Longest body taken from a mailto URI; a longer one is refused, not cut.
pub const MAX_BODY_CHARS: usize = 1000;
/// Subject and body when the list names none.
pub const DEFAULT_TEXT: &str = "unsubscribe";

/// A mailto target that may be sent to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailtoTarget {
    /// The single list address, lower-cased: the string shown, recorded and sent to.
    pub address: String,
    /// The list's `subject` hfield, decoded.
    pub subject: Option<String>,
    /// The list's `body` hfield, decoded.
    pub body: Option<String>,
}

/// Why a mailto URI may not be sent to unattended. `address` is set when the address itself is
/// valid (so it can be shown) and only the fields were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailtoRefusal {
    /// The valid address, when there is one.
    pub address: Option<String>,
    /// Why, in words; never quotes a field's value.
    pub reason: String,
}

impl MailtoTarget {
    /// The target as shown and recorded: `mailto:` and the address, no fields.
    pub fn redacted(&self) -> String {
        format!("mailto:{}", self.address)
    }

    /// The address's domain.
    pub fn domain(&self) -> &str {
        self.address.rsplit_once('@').map(|(_, domain)| domain).unwrap_or("")
    }

    /// The subject that is sent.
    pub fn subject_text(&self) -> &str {
        self.subject.as_deref().unwrap_or(DEFAULT_TEXT)
    }

    /// The body that is sent.
    pub fn body_text(&self) -> &str {
        self.body.as_deref().unwrap_or(DEFAULT_TEXT)
    }
}

fn refuse(address: Option<&str>, reason: impl Into<String>) -> MailtoRefusal {
    MailtoRefusal { address: address.map(str::to_string), reason: reason.into() }
}

/// Parses a `mailto:` URI. Accepted only with exactly one valid address and no hfield but
/// `subject` and `body`, each at most once, bounded and printable (the subject on one line).
pub fn parse_mailto(uri: &str) -> Result<MailtoTarget, MailtoRefusal> {
    let Some(rest) = uri.get(..7).filter(|scheme| scheme.eq_ignore_ascii_case("mailto:")).map(|_| &uri[7..]) else {
        return Err(refuse(None, "not a mailto URI"));
    };
    // A URI is printable ASCII (RFC 3986); anything else was smuggled in.
    if !rest.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        return Err(refuse(None, "the mailto URI contains spaces, control or non-ASCII characters"));
    }
    if rest.contains('#') {
        return Err(refuse(None, "the mailto URI has a fragment"));
    }
    let (to, query) = rest.split_once('?').unwrap_or((rest, ""));
    if to.contains(',') {
        return Err(refuse(None, "the mailto URI names more than one address"));
    }
    let decoded = decode(to).ok_or_else(|| refuse(None, "the mailto address is not valid percent-encoded UTF-8"))?;
    let address = decoded.to_ascii_lowercase();
    if let Err(why) = check_address(&address) {
        return Err(refuse(None, format!("the mailto address is not a single valid address: {why}")));
    }
    let (subject, body) = hfields(query).map_err(|why| refuse(Some(&address), why))?;
    Ok(MailtoTarget { address, subject, body })
}

fn decode(text: &str) -> Option<String> {
    // A `%` not followed by two hex digits is left as is by the decoder: refuse it instead.
    let bytes = text.as_bytes();
    for (index, byte) in bytes.iter().enumerate() {
        if *byte == b'%' && !(bytes.get(index + 1..index + 3).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))) {
            return None;
        }
    }
    percent_decode_str(text).decode_utf8().ok().map(|decoded| decoded.into_owned())
}

type Fields = (Option<String>, Option<String>);

fn hfields(query: &str) -> Result<Fields, String> {
    let (mut subject, mut body) = (None, None);
    for field in query.split('&').filter(|field| !field.is_empty()) {
        let Some((name, value)) = field.split_once('=') else {
            return Err("the mailto URI has a field without a value".into());
        };
        let name = decode(name).unwrap_or_default().to_ascii_lowercase();
        let value = decode(value)
            .ok_or_else(|| format!("the mailto URI's {} is not valid percent-encoded UTF-8", field_label(&name)))?;
        let slot = match name.as_str() {
            "subject" => &mut subject,
            "body" => &mut body,
            _ => {
                return Err(format!(
                    "the mailto URI carries a {}; only subject and body are allowed, and nothing is dropped silently",
                    field_label(&name)
                ));
            }
        };
        if slot.is_some() {
            return Err(format!("the mailto URI names its {name} twice"));
        }
        check_text(&name, &value)?;
        *slot = Some(value);
    }
    Ok((subject, body))
}

/// A field as it may appear in a reason: its name when that is a plain token, else a stand-in.
fn field_label(name: &str) -> String {
    if !name.is_empty() && name.len() <= 32 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        format!("field `{name}`")
    } else {
        "field with an unreadable name".into()
    }
}

/// True for characters that change how text reads without being visible: bidirectional
/// embeddings, overrides and isolates.
fn invisible_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn check_text(name: &str, value: &str) -> Result<(), String> {
    let (limit, multi_line) = if name == "subject" { (MAX_SUBJECT_CHARS, false) } else { (MAX_BODY_CHARS, true) };
    if value.chars().count() > limit {
        return Err(format!("the mailto {name} is longer than {limit} characters"));
    }
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        let line_break = multi_line && (c == '\n' || (c == '\r' && chars.peek() == Some(&'\n')));
        if (c.is_control() || invisible_control(c)) && !line_break {
            let what = if !multi_line && (c == '\r' || c == '\n') { "a line break" } else { "a control character" };
            return Err(format!("the mailto {name} contains {what}"));
        }
    }
    Ok(())
}

/// Characters allowed in a local part: RFC 5322 `atext` without `%` and `!`, which old relays
/// read as routing (`user%host@relay`, `host!user`).
fn local_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"#$&'*+-/=?^_`{|}~".contains(&c)
}

/// Checks a lower-cased address against a strict subset of RFC 5321 `Mailbox`: a dot-atom local
/// part and a host name (no quoted local parts, no address literals, ASCII only).
pub fn check_address(address: &str) -> Result<(), &'static str> {
    let Some((local, domain)) = address.split_once('@') else { return Err("no @") };
    if domain.contains('@') {
        return Err("more than one @");
    }
    if local.is_empty() || local.len() > 64 || address.len() > 254 {
        return Err("empty or too long");
    }
    if local.split('.').any(|atom| atom.is_empty() || !atom.bytes().all(local_char)) {
        return Err("the local part is not a plain dot-atom");
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 || domain.len() > 253 {
        return Err("the domain is not a qualified host name");
    }
    let label_ok = |label: &&str| {
        !label.is_empty()
            && label.len() <= 63
            && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if !labels.iter().all(label_ok) {
        return Err("the domain is not a valid host name");
    }
    if labels.last().is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit())) {
        return Err("the domain looks like an IP address");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_list_address_with_subject_and_body() {
        let target = parse_mailto("mailto:Leave@List.Example?subject=unsub%20me+now&body=please%0D%0Aremove").unwrap();
        assert_eq!(target.address, "leave@list.example");
        assert_eq!(target.redacted(), "mailto:leave@list.example");
        assert_eq!(target.subject.as_deref(), Some("unsub me+now"), "+ is a plus in RFC 6068, not a space");
        assert_eq!(target.body.as_deref(), Some("please\r\nremove"));
        let bare = parse_mailto("MAILTO:list-off@host.example").unwrap();
        assert_eq!((bare.subject_text(), bare.body_text()), (DEFAULT_TEXT, DEFAULT_TEXT));
    }

    #[test]
    fn the_issue_addresses_are_refused() {
        for uri in [
            "mailto:le%00ave@list.example",
            "mailto:leave%09Bcc:x@list.example",
            "mailto:leave%0D%0ABcc:%20x@evil.example@list.example",
            "mailto:a@x.example,b@y.example",
            "mailto:a@x.example%2Cb@y.example",
            "mailto:a%25b.example@list.example",
            "mailto:host!user@list.example",
            "mailto:\"quoted\"@list.example",
            "mailto:user@[127.0.0.1]",
            "mailto:user@10.0.0.1",
            "mailto:user@localhost",
            "mailto:user@-bad.example",
            "mailto:.user@list.example",
            "mailto:us..er@list.example",
            "mailto:us%e9r@list.example",
            "mailto:us%ZZr@list.example",
            "mailto:us%c3%a9r@list.example",
            "mailto:?to=a@x.example",
            "mailto:nodomain",
            "mailto:le ave@list.example",
            "https://x.example/",
        ] {
            let refused = parse_mailto(uri).expect_err(uri);
            assert!(refused.address.is_none(), "{uri}: {refused:?}");
        }
    }

    #[test]
    fn fields_other_than_subject_and_body_are_refused_not_dropped() {
        for (uri, why) in [
            ("mailto:leave@list.example?subject=x&bcc=victim@evil.example", "`bcc`"),
            ("mailto:leave@list.example?cc=x@evil.example", "`cc`"),
            ("mailto:leave@list.example?to=y@evil.example", "`to`"),
            ("mailto:leave@list.example?In-Reply-To=%3Cx%3E", "`in-reply-to`"),
            ("mailto:leave@list.example?%00=x", "unreadable"),
            ("mailto:leave@list.example?subject=a&subject=b", "twice"),
            ("mailto:leave@list.example?subject", "without a value"),
            ("mailto:leave@list.example?subject=hi%0D%0ABcc:%20v@evil.example", "line break"),
            ("mailto:leave@list.example?subject=hi%09there", "control"),
            ("mailto:leave@list.example?body=a%00b", "control"),
            ("mailto:leave@list.example?body=a%0Db", "control"),
            ("mailto:leave@list.example?subject=%E2%80%AEevil", "control"),
            ("mailto:leave@list.example?subject=%FF", "percent-encoded"),
        ] {
            let refused = parse_mailto(uri).expect_err(uri);
            assert_eq!(refused.address.as_deref(), Some("leave@list.example"), "{uri}");
            assert!(refused.reason.contains(why), "{uri}: {}", refused.reason);
            assert!(!refused.reason.contains("evil"), "a reason never quotes a value: {}", refused.reason);
        }
    }

    #[test]
    fn lengths_are_bounded_not_cut() {
        let long = format!("mailto:leave@list.example?subject={}", "x".repeat(MAX_SUBJECT_CHARS + 1));
        assert!(parse_mailto(&long).unwrap_err().reason.contains("longer"));
        let fits = format!("mailto:leave@list.example?subject={}", "x".repeat(MAX_SUBJECT_CHARS));
        assert_eq!(parse_mailto(&fits).unwrap().subject.unwrap().len(), MAX_SUBJECT_CHARS);
        let local = format!("mailto:{}@list.example", "a".repeat(65));
        assert!(parse_mailto(&local).is_err());
    }
}
