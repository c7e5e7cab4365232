//! Whether a message's unsubscribe headers are vouched for by a DKIM signature that the user's
//! own mail provider verified (RFC 8058 §4 asks that `List-Unsubscribe` and
//! `List-Unsubscribe-Post` be covered by a valid DKIM signature).
//!
//! No cryptography is redone here: the provider checked the signatures when the message arrived
//! and wrote its verdict into an `Authentication-Results` field (RFC 8601). Any sender can write
//! such a field too, so only the topmost one carrying the provider's own `authserv-id` counts
//! (RFC 8601 §5); without a configured id nothing counts. From that field's `dkim=pass` results
//! the signing domain is taken (`header.d`, else the domain of `header.i`), never from `From` or
//! `List-Id`. The result names its signature (`header.s`, and `header.b`, the first characters of
//! the signature, RFC 6008); that signature's `h=` tag must name the unsubscribe headers at least
//! as often as the message carries them, because DKIM signs the bottom-most instances only. The
//! `h=` tag itself is covered by the signature that passed, so it is as trustworthy as the verdict.

use crate::api::DkimProof;
use crate::message::MessageMeta;

/// Gmail's receiving service: the `authserv-id` of the `Authentication-Results` Gmail adds.
pub const GMAIL_AUTHSERV_ID: &str = "mx.google.com";

/// What the provider's verdict proves about one message's unsubscribe headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authentication {
    /// The `d=` domain of the passing signature relied on.
    pub signing_domain: Option<String>,
    /// That signature covers every `List-Unsubscribe` field (and there is at least one).
    pub covers_list_unsubscribe: bool,
    /// That signature covers every `List-Unsubscribe-Post` field (and there is at least one).
    pub covers_post: bool,
    /// The signing domain is the sender's (`From`) domain, a parent or a subdomain of it.
    pub aligned_with_sender: bool,
    /// What was found, in words.
    pub detail: String,
}

impl Authentication {
    fn refused(detail: impl Into<String>) -> Self {
        Self {
            signing_domain: None,
            covers_list_unsubscribe: false,
            covers_post: false,
            aligned_with_sender: false,
            detail: detail.into(),
        }
    }

    /// A mailto may go out unattended to an address in `domain`.
    pub fn vouches_for_mailto(&self, domain: &str) -> bool {
        self.covers_list_unsubscribe
            && self.aligned_with_sender
            && self.signing_domain.as_deref().is_some_and(|signer| related(signer, domain))
    }

    /// An RFC 8058 one-click POST may be sent unattended.
    pub fn vouches_for_one_click(&self) -> bool {
        self.covers_list_unsubscribe && self.covers_post && self.aligned_with_sender
    }

    /// The public summary.
    pub fn proof(&self, message: &MessageMeta) -> DkimProof {
        let post_ok = self.covers_post || message.list_unsubscribe_post.is_empty();
        DkimProof {
            covers_unsubscribe: self.covers_list_unsubscribe && post_ok && self.aligned_with_sender,
            signing_domain: self.signing_domain.clone(),
            detail: self.detail.clone(),
        }
    }

    fn rank(&self) -> u8 {
        u8::from(self.aligned_with_sender) * 4 + u8::from(self.covers_list_unsubscribe) * 2 + u8::from(self.covers_post)
    }
}

/// True when one domain is the other or a subdomain of it. Without a public-suffix list this is
/// never looser than DMARC's relaxed (organizational-domain) alignment: `evil.co.uk` and
/// `victim.co.uk` are not related.
pub fn related(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim_end_matches('.').to_ascii_lowercase(), b.trim_end_matches('.').to_ascii_lowercase());
    !a.is_empty() && !b.is_empty() && (a == b || a.ends_with(&format!(".{b}")) || b.ends_with(&format!(".{a}")))
}

/// Reads the provider's verdict on `message`; `authserv_id` is the provider's own identifier
/// (`None`: no verdict is trusted).
pub fn authenticate(message: &MessageMeta, authserv_id: Option<&str>) -> Authentication {
    let Some(ours) = authserv_id.map(str::trim).filter(|id| !id.is_empty()) else {
        return Authentication::refused(
            "no trusted authserv-id is configured for this mailbox, so no Authentication-Results is trusted",
        );
    };
    let Some(field) = message
        .authentication_results
        .iter()
        .map(|f| lex(f))
        .find(|parts| authserv_id_of(parts).is_some_and(|id| id.eq_ignore_ascii_case(ours)))
    else {
        return Authentication::refused(format!("no Authentication-Results from {ours}, the mailbox provider"));
    };
    let passes: Vec<&Vec<String>> =
        field[1..].iter().filter(|words| words.first().is_some_and(|w| w.eq_ignore_ascii_case("dkim=pass"))).collect();
    if passes.is_empty() {
        return Authentication::refused(format!("{ours} reports no passing DKIM signature"));
    }
    let mut best: Option<Authentication> = None;
    for words in passes {
        let found = judge_pass(message, ours, words);
        if best.as_ref().is_none_or(|b| found.rank() > b.rank()) {
            best = Some(found);
        }
    }
    best.unwrap_or_else(|| Authentication::refused("no passing DKIM signature"))
}

fn judge_pass(message: &MessageMeta, ours: &str, words: &[String]) -> Authentication {
    let property = |name: &str| {
        words[1..].iter().find_map(|w| {
            let (key, value) = w.split_once('=')?;
            key.eq_ignore_ascii_case(name).then(|| value.to_string())
        })
    };
    let identity = property("header.i").map(|i| i.rsplit_once('@').map_or(i.clone(), |(_, d)| d.to_string()));
    let Some(domain) = property("header.d").or(identity).map(|d| d.to_ascii_lowercase()).filter(|d| !d.is_empty())
    else {
        return Authentication::refused(format!("{ours} reports dkim=pass without naming the signing domain"));
    };
    let signature = match find_signature(message, &domain, property("header.s"), property("header.b")) {
        Ok(tags) => tags,
        Err(why) => return Authentication::refused(format!("dkim=pass for {domain}, but {why}")),
    };
    let signer = tag(&signature, "d").unwrap_or_default().to_ascii_lowercase();
    let signed: Vec<String> =
        tag(&signature, "h").unwrap_or("").split(':').map(|name| name.trim().to_ascii_lowercase()).collect();
    let times = |name: &str| signed.iter().filter(|s| *s == name).count();
    let (lu, post) = (message.list_unsubscribe.len(), message.list_unsubscribe_post.len());
    let covers_list_unsubscribe = lu > 0 && times("list-unsubscribe") >= lu;
    let covers_post = post > 0 && times("list-unsubscribe-post") >= post;
    let sender = message.from_domain();
    let aligned_with_sender = related(&signer, sender);
    let detail = if !aligned_with_sender {
        format!("{ours} verified a DKIM signature from {signer}, which is not the sender's domain {sender:?}")
    } else if !covers_list_unsubscribe {
        format!(
            "{ours} verified a DKIM signature from {signer}, but it does not cover the message's {lu} List-Unsubscribe field(s)"
        )
    } else if post > 0 && !covers_post {
        format!(
            "{ours} verified a DKIM signature from {signer} covering List-Unsubscribe but not List-Unsubscribe-Post"
        )
    } else {
        format!("{ours} verified a DKIM signature from {signer} that covers the unsubscribe headers")
    };
    Authentication { signing_domain: Some(signer), covers_list_unsubscribe, covers_post, aligned_with_sender, detail }
}

/// The one `DKIM-Signature` a passing result names: same domain (`header.i` may be a subdomain
/// of `d=`), same selector and signature prefix when the result gives them. Several candidates
/// are refused: which of them passed would be a guess.
fn find_signature(
    message: &MessageMeta,
    domain: &str,
    selector: Option<String>,
    prefix: Option<String>,
) -> Result<Vec<(String, String)>, &'static str> {
    let mut matching = message.dkim_signatures.iter().map(|s| signature_tags(s)).filter(|tags| {
        let d = tag(tags, "d").unwrap_or_default();
        let b = tag(tags, "b").unwrap_or_default();
        !d.is_empty()
            && (d.eq_ignore_ascii_case(domain) || domain.ends_with(&format!(".{}", d.to_ascii_lowercase())))
            && selector.as_deref().is_none_or(|s| tag(tags, "s").is_some_and(|t| t.eq_ignore_ascii_case(s)))
            && prefix.as_deref().is_none_or(|p| b.starts_with(p))
    });
    match (matching.next(), matching.next()) {
        (Some(tags), None) => Ok(tags),
        (None, _) => Err("the message carries no DKIM-Signature that result names"),
        (Some(_), Some(_)) => Err("several DKIM-Signatures match that result, so which one passed is unclear"),
    }
}

/// The authserv-id (first word of the first part) of a lexed field, without its version.
fn authserv_id_of(parts: &[Vec<String>]) -> Option<&str> {
    parts.first()?.first().map(String::as_str)
}

/// Splits an `Authentication-Results` value into its `;`-separated parts, each a list of words:
/// comments removed, quoted strings unquoted, and `method = result` / `ptype.property = value`
/// joined into one word whatever the spacing.
fn lex(field: &str) -> Vec<Vec<String>> {
    let mut lexer = Lexer { parts: vec![Vec::new()], word: String::new() };
    let (mut depth, mut quoted, mut escaped) = (0usize, false, false);
    for c in field.chars() {
        if escaped {
            escaped = false;
            if quoted {
                lexer.push(c);
            }
            continue;
        }
        if quoted {
            match c {
                '\\' => escaped = true,
                '"' => quoted = false,
                _ => lexer.push(c),
            }
            continue;
        }
        if depth > 0 {
            match c {
                '\\' => escaped = true,
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            continue;
        }
        match c {
            '(' => depth = 1,
            '"' => {
                quoted = true;
                lexer.join_previous();
            }
            ';' => {
                lexer.flush();
                lexer.parts.push(Vec::new());
            }
            c if c.is_whitespace() => lexer.flush(),
            c => lexer.push(c),
        }
    }
    lexer.flush();
    lexer.parts
}

struct Lexer {
    parts: Vec<Vec<String>>,
    word: String,
}

impl Lexer {
    fn current(&mut self) -> &mut Vec<String> {
        self.parts.last_mut().expect("at least one part")
    }

    /// Continues the previous word when it ends in `=` or this character is one.
    fn join_previous(&mut self) {
        if self.word.is_empty() && self.current().last().is_some_and(|w| w.ends_with('=')) {
            self.word = self.current().pop().unwrap_or_default();
        }
    }

    fn push(&mut self, c: char) {
        if self.word.is_empty() {
            if c == '=' {
                self.word = self.current().pop().unwrap_or_default();
            } else {
                self.join_previous();
            }
        }
        self.word.push(c);
    }

    fn flush(&mut self) {
        if !self.word.is_empty() {
            let word = std::mem::take(&mut self.word);
            self.current().push(word);
        }
    }
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
#[path = "dkim_tests.rs"]
mod tests;
