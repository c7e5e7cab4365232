//! The scope matrix from the security runbooks. The names are a public contract: JWT `scope`
//! claims, API key client grants and `AuthPolicy` fields all use exactly these strings.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One permission a caller may hold. Every REST route, A2A skill and MCP tool requires exactly one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
pub enum Scope {
    /// Calendar availability.
    #[serde(rename = "availability:read")]
    AvailabilityRead,
    /// Suggested meeting intervals.
    #[serde(rename = "available_meeting_intervals:read")]
    AvailableMeetingIntervalsRead,
    /// Inbox scan and triage.
    #[serde(rename = "mail:scan")]
    MailScan,
    /// Unsubscribe candidate discovery.
    #[serde(rename = "unsubscribe:read")]
    UnsubscribeRead,
    /// Unsubscribe execution (a mutation: hits endpoints or sends mail).
    #[serde(rename = "unsubscribe:execute")]
    UnsubscribeExecute,
    /// Digest scan and send (a mutation: sends mail).
    #[serde(rename = "unsubscribe:digest")]
    UnsubscribeDigest,
}

impl Scope {
    /// Every scope, in the order of the runbooks' matrix.
    pub const ALL: [Scope; 6] = [
        Scope::AvailabilityRead,
        Scope::AvailableMeetingIntervalsRead,
        Scope::MailScan,
        Scope::UnsubscribeRead,
        Scope::UnsubscribeExecute,
        Scope::UnsubscribeDigest,
    ];

    /// The wire name, e.g. `mail:scan`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::AvailabilityRead => "availability:read",
            Scope::AvailableMeetingIntervalsRead => "available_meeting_intervals:read",
            Scope::MailScan => "mail:scan",
            Scope::UnsubscribeRead => "unsubscribe:read",
            Scope::UnsubscribeExecute => "unsubscribe:execute",
            Scope::UnsubscribeDigest => "unsubscribe:digest",
        }
    }

    /// Whether holding this scope lets a caller change the world (send mail, hit an unsubscribe
    /// endpoint). Such capabilities are off unless `MCP_ENABLE_MUTATION_TOOLS` is true.
    pub const fn is_mutation(self) -> bool {
        matches!(self, Scope::UnsubscribeExecute | Scope::UnsubscribeDigest)
    }

    /// One line a person reads in an agent card, a tool description or `kubectl explain`.
    pub const fn description(self) -> &'static str {
        match self {
            Scope::AvailabilityRead => "calendar availability",
            Scope::AvailableMeetingIntervalsRead => "suggested meeting intervals",
            Scope::MailScan => "inbox scan and triage",
            Scope::UnsubscribeRead => "unsubscribe candidate discovery",
            Scope::UnsubscribeExecute => "unsubscribe execution (mutation)",
            Scope::UnsubscribeDigest => "digest scan and send (mutation)",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scope name outside the matrix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownScope(pub String);

impl fmt::Display for UnknownScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown scope {:?}", self.0)
    }
}

impl std::error::Error for UnknownScope {}

impl FromStr for Scope {
    type Err = UnknownScope;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL.into_iter().find(|scope| scope.as_str() == s).ok_or_else(|| UnknownScope(s.to_owned()))
    }
}

/// Parses an OAuth-style space-separated scope string (the JWT `scope` claim). Unknown names are
/// ignored rather than rejected: an issuer may grant scopes for other resources in one token.
pub fn parse_scope_claim(claim: &str) -> Vec<Scope> {
    let mut scopes: Vec<Scope> = claim.split_ascii_whitespace().filter_map(|s| s.parse().ok()).collect();
    scopes.sort();
    scopes.dedup();
    scopes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip_through_serde_and_fromstr() {
        for scope in Scope::ALL {
            let json = serde_json::to_string(&scope).unwrap();
            assert_eq!(json, format!("\"{}\"", scope.as_str()));
            assert_eq!(serde_json::from_str::<Scope>(&json).unwrap(), scope);
            assert_eq!(scope.as_str().parse::<Scope>().unwrap(), scope);
        }
    }

    #[test]
    fn only_execute_and_digest_are_mutations() {
        let mutations: Vec<_> = Scope::ALL.into_iter().filter(|s| s.is_mutation()).collect();
        assert_eq!(mutations, [Scope::UnsubscribeExecute, Scope::UnsubscribeDigest]);
    }

    #[test]
    fn scope_claim_ignores_foreign_scopes_and_duplicates() {
        let scopes = parse_scope_claim("openid mail:scan  unsubscribe:read mail:scan MAIL:SCAN");
        assert_eq!(scopes, [Scope::MailScan, Scope::UnsubscribeRead]);
    }
}
