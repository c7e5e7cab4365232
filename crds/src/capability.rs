//! The one table of capabilities: what the workload can do, under which name on each door, with
//! which scope, and whether it changes the world. REST routes, A2A skills and MCP tools are all
//! generated from it, and the operator reads it to say what a policy lets a caller do. Pure data.

use crate::Scope;

/// One thing the assistant can do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Capability {
    Scan,
    UnsubscribeCandidates,
    Unsubscribe,
    Digest,
    Availability,
    MeetingIntervals,
}

impl Capability {
    pub const ALL: [Capability; 6] = [
        Capability::Scan,
        Capability::UnsubscribeCandidates,
        Capability::Unsubscribe,
        Capability::Digest,
        Capability::Availability,
        Capability::MeetingIntervals,
    ];

    /// The MCP tool name and the A2A skill id (one name on both doors).
    pub const fn name(self) -> &'static str {
        match self {
            Capability::Scan => "mail_scan",
            Capability::UnsubscribeCandidates => "unsubscribe_candidates",
            Capability::Unsubscribe => "unsubscribe_execute",
            Capability::Digest => "unsubscribe_digest",
            Capability::Availability => "availability",
            Capability::MeetingIntervals => "available_meeting_intervals",
        }
    }

    /// The MCP tool name.
    pub const fn mcp_tool(self) -> &'static str {
        self.name()
    }

    /// The A2A skill id.
    pub const fn a2a_skill(self) -> &'static str {
        self.name()
    }

    /// The REST path (a `POST` route).
    pub const fn path(self) -> &'static str {
        match self {
            Capability::Scan => "/v1/mail/scan",
            Capability::UnsubscribeCandidates => "/v1/unsubscribe/candidates",
            Capability::Unsubscribe => "/v1/unsubscribe/execute",
            Capability::Digest => "/v1/unsubscribe/digest",
            Capability::Availability => "/v1/availability",
            Capability::MeetingIntervals => "/v1/available-meeting-intervals",
        }
    }

    /// The one scope it requires.
    pub const fn scope(self) -> Scope {
        match self {
            Capability::Scan => Scope::MailScan,
            Capability::UnsubscribeCandidates => Scope::UnsubscribeRead,
            Capability::Unsubscribe => Scope::UnsubscribeExecute,
            Capability::Digest => Scope::UnsubscribeDigest,
            Capability::Availability => Scope::AvailabilityRead,
            Capability::MeetingIntervals => Scope::AvailableMeetingIntervalsRead,
        }
    }

    /// Whether it changes the world; such capabilities obey the mutation switch.
    pub const fn is_mutation(self) -> bool {
        self.scope().is_mutation()
    }

    pub const fn title(self) -> &'static str {
        match self {
            Capability::Scan => "Scan and triage the inbox",
            Capability::UnsubscribeCandidates => "List unsubscribe candidates",
            Capability::Unsubscribe => "Unsubscribe from a sender",
            Capability::Digest => "Send the unsubscribe digest",
            Capability::Availability => "Calendar availability",
            Capability::MeetingIntervals => "Suggest meeting intervals",
        }
    }

    pub const fn description(self) -> &'static str {
        match self {
            Capability::Scan => {
                "Scans the mailbox (incrementally when possible) and classifies each message as personal, newsletter, promotion, notification or transactional, with counts, top senders and per-message reasons. Read-only."
            }
            Capability::UnsubscribeCandidates => {
                "Lists senders and mailing lists the user could unsubscribe from, most frequent first, with the ranked unsubscribe methods (RFC 8058 one-click, mailto, manual) and DKIM evidence. Read-only."
            }
            Capability::Unsubscribe => {
                "Unsubscribes from one candidate (by its key from unsubscribe_candidates) using the best safe method. Dry run by default; set dry_run=false to contact the sender. A mutation: refused while mutation tools are disabled."
            }
            Capability::Digest => {
                "Builds the digest of unsubscribe candidates and sends it to the configured recipient. Dry run by default; set dry_run=false to send. A mutation: refused while mutation tools are disabled."
            }
            Capability::Availability => {
                "Returns busy and free time between start and end (RFC 3339), optionally within working hours in an IANA time zone. Read-only."
            }
            Capability::MeetingIntervals => {
                "Suggests free intervals of at least duration_minutes between start and end, within working hours and with optional buffers around busy blocks. Read-only."
            }
        }
    }

    /// The capability with this tool name / skill id.
    pub fn by_name(name: &str) -> Option<Capability> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The capability served at this REST path.
    pub fn by_path(path: &str) -> Option<Capability> {
        Self::ALL.into_iter().find(|c| c.path() == path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scope_guards_exactly_one_capability_and_names_are_unique() {
        for scope in Scope::ALL {
            assert_eq!(Capability::ALL.iter().filter(|c| c.scope() == scope).count(), 1, "{scope}");
        }
        let mut names: Vec<_> = Capability::ALL.iter().map(|c| c.name()).collect();
        let mut paths: Vec<_> = Capability::ALL.iter().map(|c| c.path()).collect();
        names.sort_unstable();
        names.dedup();
        paths.sort_unstable();
        paths.dedup();
        assert_eq!((names.len(), paths.len()), (6, 6));
        for c in Capability::ALL {
            assert_eq!(Capability::by_name(c.name()), Some(c));
            assert_eq!(Capability::by_path(c.path()), Some(c));
            assert_eq!(c.is_mutation(), matches!(c, Capability::Unsubscribe | Capability::Digest));
        }
    }
}
