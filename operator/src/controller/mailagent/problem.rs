//! Why an agent cannot be brought to its spec, as status and Events say it.

/// A problem that retrying cannot fix: only a change (to the spec, or by an administrator) can.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The spec asks for something admission could not rule out (a zone that does not exist).
    InvalidSpec(String),
    /// The API server refused a rendered child for good (an invalid name, a quota).
    ApplyRefused(String),
    /// The agent asks for something its AuthPolicy does not provide (an `oauth` MCP door under a
    /// policy without `mcp.oauth`): a change to either object fixes it.
    AuthPolicyMismatch(String),
}

impl Problem {
    /// The condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Problem::InvalidSpec(_) => "InvalidSpec",
            Problem::ApplyRefused(_) => "ApplyRefused",
            Problem::AuthPolicyMismatch(_) => "AuthPolicyMismatch",
        }
    }

    /// The sentence for a person.
    pub fn message(&self) -> &str {
        match self {
            Problem::InvalidSpec(message) | Problem::ApplyRefused(message) | Problem::AuthPolicyMismatch(message) => {
                message
            }
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.reason(), self.message())
    }
}
