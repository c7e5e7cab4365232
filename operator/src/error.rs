//! One error type for reconciliation, classified so the error policy knows whether to retry with
//! backoff (transient: the API server was busy, a write conflicted) or to wait for the user to
//! change the spec (permanent: the spec is wrong in a way admission could not catch).

use std::time::Duration;

/// A reconcile failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call to the API server failed.
    #[error("kubernetes API call failed while {action}: {source}")]
    Kube {
        /// What the controller was doing.
        action: &'static str,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// The spec asks for something impossible; nothing changes until the spec does.
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
    /// The object came from the API server without a namespace or name.
    #[error("object is missing {0}")]
    MissingField(&'static str),
    /// The reconcile did not finish in time (a slow or unreachable API server); it was cancelled.
    #[error("reconcile exceeded its {0:?} deadline and was cancelled")]
    Deadline(Duration),
}

/// Shorthand.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps a client error with what the controller was doing.
    pub fn kube(action: &'static str) -> impl FnOnce(kube::Error) -> Error {
        move |source| Error::Kube { action, source }
    }

    /// Whether retrying without a spec change cannot help.
    pub fn is_permanent(&self) -> bool {
        match self {
            Error::InvalidSpec(_) | Error::MissingField(_) => true,
            // 4xx other than conflict / too-many-requests / not-found means our request is wrong
            // for this object; retrying the same request would fail the same way. A 403 is the
            // exception: RBAC is fixed outside the object, so it is retried (slowly, see `backoff`).
            Error::Kube { source: kube::Error::Api(status), .. } => {
                let code = status.code;
                (400..500).contains(&code) && ![403, 404, 409, 429].contains(&code)
            }
            Error::Kube { .. } | Error::Deadline(_) => false,
        }
    }

    /// Whether the API server refused us on RBAC grounds: retry, but slowly, since only an
    /// administrator can fix it.
    pub fn is_forbidden(&self) -> bool {
        matches!(self, Error::Kube { source: kube::Error::Api(s), .. } if s.code == 403)
    }

    /// How long to wait before retry number `consecutive_failures + 1`.
    pub fn backoff(&self, consecutive_failures: u32) -> Duration {
        if self.is_forbidden() { forbidden_backoff(consecutive_failures) } else { backoff(consecutive_failures) }
    }

    /// A low-cardinality label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube { source: kube::Error::Api(s), .. } if s.code == 409 => "conflict",
            Error::Kube { source: kube::Error::Api(s), .. } if s.code == 403 => "forbidden",
            Error::Kube { source: kube::Error::Api(s), .. } if s.code == 422 => "invalid",
            Error::Kube { .. } => "kube",
            Error::InvalidSpec(_) => "invalid_spec",
            Error::MissingField(_) => "missing_field",
            Error::Deadline(_) => "deadline",
        }
    }
}

/// Per-object exponential backoff for transient errors: 1s, 2s, 4s ... capped at 5 minutes.
pub fn backoff(consecutive_failures: u32) -> Duration {
    let secs = 1u64 << consecutive_failures.min(9);
    Duration::from_secs(secs.min(300))
}

/// Backoff after a 403: a minute, doubling to at most 10 minutes, so a fixed ClusterRole is
/// picked up without a spec change and a broken one does not hammer the API server.
pub fn forbidden_backoff(consecutive_failures: u32) -> Duration {
    Duration::from_secs((60u64 << consecutive_failures.min(4)).min(600))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16) -> Error {
        let status = kube::core::Status::failure("boom", "Reason").with_code(code);
        Error::Kube { action: "testing", source: kube::Error::Api(Box::new(status)) }
    }

    #[test]
    fn conflicts_and_throttling_are_transient_bad_requests_are_not() {
        assert!(!api(409).is_permanent());
        assert!(!api(429).is_permanent());
        assert!(!api(500).is_permanent());
        assert!(api(422).is_permanent());
        assert!(Error::Deadline(Duration::from_secs(1)).metric_label() == "deadline");
        assert!(!Error::Deadline(Duration::from_secs(1)).is_permanent());
        assert!(Error::InvalidSpec("x".into()).is_permanent());
    }

    #[test]
    fn forbidden_is_retried_slowly_until_rbac_is_fixed() {
        assert!(!api(403).is_permanent(), "RBAC is fixed outside the object; wait for no spec change");
        assert_eq!(api(403).backoff(0), Duration::from_secs(60));
        assert_eq!(api(403).backoff(9), Duration::from_secs(600));
        assert_eq!(api(500).backoff(0), Duration::from_secs(1));
    }

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(30), Duration::from_secs(300));
    }
}
