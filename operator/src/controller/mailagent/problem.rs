//! Why an agent cannot be brought to its spec, as status and Events say it.

/// A problem that retrying cannot fix: only a change (to the spec, or by an administrator) can.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The spec asks for something admission could not rule out (a zone that does not exist).
    InvalidSpec(String),
    /// The API server refused a rendered child for good (an invalid name, a quota).
    ApplyRefused(String),
}

impl Problem {
    /// The condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Problem::InvalidSpec(_) => "InvalidSpec",
            Problem::ApplyRefused(_) => "ApplyRefused",
        }
    }

    /// The sentence for a person.
    pub fn message(&self) -> &str {
        match self {
            Problem::InvalidSpec(message) | Problem::ApplyRefused(message) => message,
        }
    }
}
