//! The one authorisation decision. A caller may use a capability when it holds the scope, the
//! policy ceiling allows that scope, and (for a mutation) the mutation switch is on. REST routes,
//! A2A skills and the extended card, MCP `tools/list`, `tools/call` and its pre-check, the public
//! card and the protected-resource metadata all ask [`Policy`]; none writes the rule again.

use std::collections::BTreeSet;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

use mailagent_crds::contract::env;
use mailagent_crds::{Capability, Scope};

use crate::auth::Principal;
use crate::settings::{SettingsError, Source, scope_names};

/// Why a caller may not use a capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denial {
    /// The caller does not hold the scope.
    InsufficientScope(Scope),
    /// The caller holds the scope, but the policy ceiling does not grant it to anyone.
    AboveCeiling(Scope),
    /// A mutation while the mutation switch is off.
    MutationsDisabled,
}

impl Denial {
    /// The audit reason.
    pub const fn reason(self) -> &'static str {
        match self {
            Denial::InsufficientScope(_) => "insufficient_scope",
            Denial::AboveCeiling(_) => "above_ceiling",
            Denial::MutationsDisabled => "mutations_disabled",
        }
    }

    /// The scope a caller would need, when a scope is what is missing. Above the ceiling, the
    /// caller is told the scope is missing: from its side, it is.
    pub const fn missing_scope(self) -> Option<Scope> {
        match self {
            Denial::InsufficientScope(scope) | Denial::AboveCeiling(scope) => Some(scope),
            Denial::MutationsDisabled => None,
        }
    }
}

/// The live policy: the mutation switch (`MCP_ENABLE_MUTATION_TOOLS`) and the scope ceiling
/// (`AUTH_SCOPES_CEILING`), both hot-reloaded.
#[derive(Debug)]
pub struct Policy {
    mutations: AtomicBool,
    ceiling: RwLock<Option<BTreeSet<Scope>>>,
}

impl Policy {
    pub fn new(mutations: bool, ceiling: Option<BTreeSet<Scope>>) -> Self {
        Self { mutations: AtomicBool::new(mutations), ceiling: RwLock::new(ceiling) }
    }

    pub fn mutations_enabled(&self) -> bool {
        self.mutations.load(Ordering::Acquire)
    }

    pub fn set_mutations(&self, enabled: bool) {
        self.mutations.store(enabled, Ordering::Release);
    }

    pub fn ceiling(&self) -> Option<BTreeSet<Scope>> {
        self.ceiling.read().expect("ceiling lock").clone()
    }

    pub fn set_ceiling(&self, ceiling: Option<BTreeSet<Scope>>) {
        *self.ceiling.write().expect("ceiling lock") = ceiling;
    }

    fn under_ceiling(&self, scope: Scope) -> bool {
        self.ceiling.read().expect("ceiling lock").as_ref().is_none_or(|c| c.contains(&scope))
    }

    /// May `principal` use `capability` right now?
    pub fn decide(&self, principal: &Principal, capability: Capability) -> Result<(), Denial> {
        let scope = capability.scope();
        if !principal.may(scope) {
            return Err(Denial::InsufficientScope(scope));
        }
        if !self.under_ceiling(scope) {
            return Err(Denial::AboveCeiling(scope));
        }
        if capability.is_mutation() && !self.mutations_enabled() {
            return Err(Denial::MutationsDisabled);
        }
        Ok(())
    }

    /// The capabilities `principal` may use right now (MCP `tools/list`, the extended card).
    pub fn permitted(&self, principal: &Principal) -> Vec<Capability> {
        Capability::ALL.into_iter().filter(|c| self.decide(principal, *c).is_ok()).collect()
    }

    /// Whether anyone could use `capability` right now: the decision for a caller holding
    /// every scope (the public agent card).
    pub fn offered(&self, capability: Capability) -> bool {
        self.under_ceiling(capability.scope()) && (self.mutations_enabled() || !capability.is_mutation())
    }

    /// The scopes anyone could use right now (the protected-resource metadata's
    /// `scopes_supported`), in the matrix order.
    pub fn offered_scopes(&self) -> Vec<Scope> {
        Scope::ALL.into_iter().filter(|s| Capability::ALL.iter().any(|c| c.scope() == *s && self.offered(*c))).collect()
    }
}

/// Reads `AUTH_SCOPES_CEILING`: space-separated scope names, `none` for no scope at all, absent
/// for no ceiling. An unknown name is an error: a ceiling the workload cannot read must not
/// silently grant more or less than the policy says.
pub fn scope_ceiling(source: &Source) -> Result<Option<BTreeSet<Scope>>, SettingsError> {
    let Some(raw) = source.get(env::AUTH_SCOPES_CEILING)? else { return Ok(None) };
    if raw.trim() == "none" {
        return Ok(Some(BTreeSet::new()));
    }
    scope_names(env::AUTH_SCOPES_CEILING, &raw, "scope names separated by spaces, or none").map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Method;

    fn caller(scopes: &[Scope]) -> Principal {
        Principal {
            name: "t".into(),
            kid: "k".into(),
            method: Method::ApiKey,
            scopes: scopes.iter().copied().collect(),
            expires_at: None,
        }
    }

    #[test]
    fn scope_and_ceiling_and_switch_all_must_allow() {
        let all = caller(&Scope::ALL);
        let policy = Policy::new(false, None);
        assert_eq!(policy.decide(&caller(&[]), Capability::Scan), Err(Denial::InsufficientScope(Scope::MailScan)));
        assert_eq!(policy.decide(&all, Capability::Scan), Ok(()));
        assert_eq!(policy.decide(&all, Capability::Unsubscribe), Err(Denial::MutationsDisabled));
        policy.set_mutations(true);
        assert_eq!(policy.permitted(&all).len(), 6);
        policy.set_ceiling(Some([Scope::MailScan, Scope::UnsubscribeExecute].into()));
        assert_eq!(policy.permitted(&all), [Capability::Scan, Capability::Unsubscribe]);
        assert_eq!(
            policy.decide(&all, Capability::Availability),
            Err(Denial::AboveCeiling(Scope::AvailabilityRead)),
            "a token's scope above the policy's ceiling grants nothing"
        );
        assert_eq!(policy.offered_scopes(), [Scope::MailScan, Scope::UnsubscribeExecute]);
        policy.set_mutations(false);
        assert_eq!(policy.offered_scopes(), [Scope::MailScan]);
        assert!(!policy.offered(Capability::Unsubscribe));
    }

    #[test]
    fn the_ceiling_setting_is_read_strictly() {
        let source = |value: &str| {
            Source::from_map([(env::AUTH_SCOPES_CEILING.to_owned(), value.to_owned())].into_iter().collect())
        };
        assert_eq!(scope_ceiling(&Source::default()).unwrap(), None);
        assert_eq!(scope_ceiling(&source("none")).unwrap(), Some(BTreeSet::new()));
        assert_eq!(
            scope_ceiling(&source(" mail:scan  unsubscribe:read ")).unwrap(),
            Some([Scope::MailScan, Scope::UnsubscribeRead].into())
        );
        assert!(scope_ceiling(&source("mail:scan mail:write")).is_err());
    }
}
