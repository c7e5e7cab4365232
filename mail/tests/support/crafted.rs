//! Hostile and genuine list mail for the unsubscribe trust tests, shared by the Maildir and the
//! Gmail emulator runs. `authserv_id` is the mailbox provider's own id: the only one trusted.

/// One crafted message: its candidate key, its raw bytes, and what the refusal must say (`None`:
/// the genuine list, which runs).
pub struct Crafted {
    pub key: &'static str,
    pub raw: String,
    pub refusal: Option<&'static str>,
}

/// Secrets and payloads that must never reach a record, a log or a sent message.
pub const NEVER_SHOWN: &[&str] = &["Invoice", "s3cr3t-3", "pay now"];

fn message(from: &str, list_id: &str, date: &str, extra: &str) -> String {
    format!(
        "{extra}From: {from}\r\nTo: me@localhost\r\nSubject: news\r\nDate: {date}\r\nList-Id: <{list_id}>\r\n\r\nbody\r\n"
    )
}

pub fn crafted(authserv_id: &str) -> Vec<Crafted> {
    let date = "Mon, 16 Nov 2026 10:00:00 +0000";
    vec![
        // Issue 13, defect 1: From and List-Id aligned on the victim's domain, no DKIM at all.
        Crafted {
            key: "news.victim.example",
            raw: message(
                "Victim News <news@victim.example>",
                "news.victim.example",
                date,
                "List-Unsubscribe: <mailto:ceo@victim.example?subject=Invoice%20approved&body=pay%20now>\r\n",
            ),
            refusal: Some("no Authentication-Results from"),
        },
        // A valid DKIM signature, but the attacker's own domain signed it.
        Crafted {
            key: "list.victim2.example",
            raw: message(
                "News <news@victim2.example>",
                "list.victim2.example",
                date,
                &format!(
                    "Authentication-Results: {authserv_id}; dkim=pass header.d=attacker.example header.s=s header.b=ATTACKER\r\n\
                     DKIM-Signature: v=1; a=rsa-sha256; d=attacker.example; s=s; h=from:list-id:list-unsubscribe; bh=x; b=ATTACKERsig\r\n\
                     List-Unsubscribe: <mailto:ceo@victim2.example?subject=Invoice%20approved>\r\n"
                ),
            ),
            refusal: Some("not the sender's domain"),
        },
        // The provider said none; a forged pass with the provider's own id sits below it.
        Crafted {
            key: "alerts.victim3.example",
            raw: message(
                "Alerts <alerts@victim3.example>",
                "alerts.victim3.example",
                date,
                &format!(
                    "Authentication-Results: {authserv_id}; dkim=none\r\n\
                     Authentication-Results: {authserv_id}; dkim=pass header.d=victim3.example\r\n\
                     DKIM-Signature: v=1; d=victim3.example; s=s; h=from:list-unsubscribe:list-unsubscribe-post; bh=x; b=forged\r\n\
                     List-Unsubscribe: <https://victim3.example/u?t=s3cr3t-3>\r\n\
                     List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
                ),
            ),
            refusal: Some("reports no passing DKIM signature"),
        },
        // A pass written by someone else's server.
        Crafted {
            key: "deals.victim4.example",
            raw: message(
                "Deals <deals@victim4.example>",
                "deals.victim4.example",
                date,
                "Authentication-Results: mx.attacker.example; dkim=pass header.d=victim4.example\r\n\
                 DKIM-Signature: v=1; d=victim4.example; s=s; h=from:list-unsubscribe; bh=x; b=y\r\n\
                 List-Unsubscribe: <mailto:boss@victim4.example?subject=Invoice%20approved>\r\n",
            ),
            refusal: Some("no Authentication-Results from"),
        },
        // Issue 13, defect 2: signed lists whose mailto hides a NUL or a tab in the address.
        Crafted {
            key: "nul.list.example",
            raw: message(
                "News <news@nul.list.example>",
                "nul.list.example",
                date,
                &format!(
                    "Authentication-Results: {authserv_id}; dkim=pass header.d=nul.list.example\r\n\
                     DKIM-Signature: v=1; d=nul.list.example; s=s; h=from:list-unsubscribe; bh=x; b=y\r\n\
                     List-Unsubscribe: <mailto:le%00ave@nul.list.example>\r\n"
                ),
            ),
            refusal: Some("not a single valid address"),
        },
        Crafted {
            key: "tab.list.example",
            raw: message(
                "News <news@tab.list.example>",
                "tab.list.example",
                date,
                &format!(
                    "Authentication-Results: {authserv_id}; dkim=pass header.d=tab.list.example\r\n\
                     DKIM-Signature: v=1; d=tab.list.example; s=s; h=from:list-unsubscribe; bh=x; b=y\r\n\
                     List-Unsubscribe: <mailto:leave%09Bcc:x@tab.list.example>\r\n"
                ),
            ),
            refusal: Some("not a single valid address"),
        },
        // A genuine list: the provider verified its signature over List-Unsubscribe.
        Crafted {
            key: "genuine.list.example",
            raw: message(
                "List <news@list.example>",
                "genuine.list.example",
                date,
                &format!(
                    "Authentication-Results: {authserv_id};\r\n       dkim=pass header.i=@list.example header.s=s1 header.b=GENUINE1;\r\n       spf=pass smtp.mailfrom=bounce@list.example\r\n\
                     DKIM-Signature: v=1; a=rsa-sha256; d=list.example; s=s1;\r\n h=from:subject:list-id:list-unsubscribe; bh=x; b=GENUINE1xyz\r\n\
                     List-Unsubscribe: <mailto:leave@list.example?subject=unsubscribe%20me&body=remove%20me%20please>\r\n"
                ),
            ),
            refusal: None,
        },
    ]
}
