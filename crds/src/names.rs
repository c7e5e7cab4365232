//! Every name derived from a MailAgent's or an AuthPolicy's name, in one place, and the longest
//! name each kind may have so that all of them fit. Admission refuses a longer name with a
//! message (see the `validation` rules on the kinds), so the operator never renders a child the
//! API server would refuse.

use crate::contract::Surface;

/// Kubernetes' limit for names that are DNS labels (Services), and for label values.
pub const DNS_LABEL_MAX: usize = 63;
/// A CronJob's name may be at most 52 characters: its Jobs append 11.
pub const CRONJOB_NAME_MAX: usize = 52;

/// Suffix of each door's Service.
fn surface_suffix(surface: Surface) -> String {
    format!("-{surface}")
}

/// The longest Service suffix decides the longest MailAgent name.
const LONGEST_SERVICE_SUFFIX: usize = "-rest".len();
/// The CronJob suffix decides the longest AuthPolicy name.
const ROTATION_SUFFIX: &str = "-rotate";

/// The longest MailAgent name whose children all fit: its door Services are DNS labels.
pub const MAILAGENT_NAME_MAX: usize = DNS_LABEL_MAX - LONGEST_SERVICE_SUFFIX;
/// The longest AuthPolicy name whose children all fit: its rotation CronJob's name is the tightest.
pub const AUTHPOLICY_NAME_MAX: usize = CRONJOB_NAME_MAX - ROTATION_SUFFIX.len();

/// CEL for [`MAILAGENT_NAME_MAX`] (kept equal by a test).
pub const MAILAGENT_NAME_RULE: &str = "size(self.metadata.name) <= 58";
/// What admission says when a MailAgent name is too long.
pub const MAILAGENT_NAME_MESSAGE: &str = "metadata.name may be at most 58 characters: each door's Service is named <name>-rest, -a2a or -mcp, and a Service name is at most 63";
/// CEL for [`AUTHPOLICY_NAME_MAX`] (kept equal by a test).
pub const AUTHPOLICY_NAME_RULE: &str = "size(self.metadata.name) <= 45";
/// What admission says when an AuthPolicy name is too long.
pub const AUTHPOLICY_NAME_MESSAGE: &str = "metadata.name may be at most 45 characters: the key-rotation CronJob is named <name>-rotate, and a CronJob name is at most 52";

/// The Service for one door of an agent.
pub fn service(agent: &str, surface: Surface) -> String {
    format!("{agent}{}", surface_suffix(surface))
}

/// The agent's settings ConfigMap.
pub fn config_map(agent: &str) -> String {
    format!("{agent}-config")
}

/// The agent's state PersistentVolumeClaim.
pub fn state_volume(agent: &str) -> String {
    format!("{agent}-state")
}

/// The Secret holding a policy's keyring ([`crate::contract::Keyring`]), which every MailAgent
/// referencing the policy mounts as a directory.
pub fn keyring_secret(policy: &str) -> String {
    format!("{policy}-keyring")
}

/// The policy's key-rotation CronJob, and the ServiceAccount, Role and RoleBinding its Jobs run
/// as (one name, so the Role's `resourceNames` read like the CronJob they serve).
pub fn rotation_cronjob(policy: &str) -> String {
    format!("{policy}{ROTATION_SUFFIX}")
}

/// The Secret holding a policy's signing material and key history; read only by the operator and
/// the policy's rotation Job, mounted by no workload.
pub fn signer_secret(policy: &str) -> String {
    format!("{policy}-signer")
}

/// The ConfigMap publishing a policy's public JWT keys as a JWKS (key `jwks.json`).
pub fn jwks_config_map(policy: &str) -> String {
    format!("{policy}-jwks")
}

/// The Secret delivering one API-key client its current key (keys `api-key` and `kid`).
pub fn client_secret(policy: &str, client: &str) -> String {
    format!("{policy}-client-{client}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_dns_label(name: &str) -> bool {
        name.len() <= DNS_LABEL_MAX
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    }

    #[test]
    fn the_longest_allowed_agent_name_gives_valid_children_and_one_more_does_not() {
        let longest = "a".repeat(MAILAGENT_NAME_MAX);
        for surface in [Surface::Rest, Surface::A2a, Surface::Mcp] {
            assert!(is_dns_label(&service(&longest, surface)), "{}", service(&longest, surface));
        }
        assert!(config_map(&longest).len() <= 253 && state_volume(&longest).len() <= 253);
        assert!(longest.len() <= DNS_LABEL_MAX, "the name is also a label value");
        let too_long = "a".repeat(MAILAGENT_NAME_MAX + 1);
        assert!(!is_dns_label(&service(&too_long, Surface::Rest)));
    }

    #[test]
    fn the_longest_allowed_policy_name_gives_a_valid_cronjob_and_one_more_does_not() {
        let longest = "p".repeat(AUTHPOLICY_NAME_MAX);
        assert!(rotation_cronjob(&longest).len() <= CRONJOB_NAME_MAX);
        for secret in [keyring_secret(&longest), signer_secret(&longest), jwks_config_map(&longest)] {
            assert!(secret.len() <= 253, "{secret}");
        }
        assert!(rotation_cronjob(&format!("{longest}p")).len() > CRONJOB_NAME_MAX);
    }

    #[test]
    fn the_admission_rules_state_the_same_limits() {
        assert_eq!(MAILAGENT_NAME_RULE, format!("size(self.metadata.name) <= {MAILAGENT_NAME_MAX}"));
        assert_eq!(AUTHPOLICY_NAME_RULE, format!("size(self.metadata.name) <= {AUTHPOLICY_NAME_MAX}"));
        assert!(MAILAGENT_NAME_MESSAGE.contains(&format!("at most {MAILAGENT_NAME_MAX} characters")));
        assert!(AUTHPOLICY_NAME_MESSAGE.contains(&format!("at most {AUTHPOLICY_NAME_MAX} characters")));
    }
}
