//! The audit trail: one JSON line per authentication attempt and per mutation, on the tracing
//! target `audit`. Only names, kids, outcomes and reasons: never a key, token, body or address list.

use std::net::IpAddr;

use crate::auth::{AuthFailure, Principal, Surface};

/// The client address as logged: the address, or empty when unknown.
struct Client(Option<IpAddr>);

impl std::fmt::Display for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(ip) => ip.fmt(f),
            None => Ok(()),
        }
    }
}

pub fn authenticated(door: Surface, principal: &Principal, client: Option<IpAddr>) {
    tracing::info!(target: "audit", event = "authn", door = door.as_str(), outcome = "allow", principal = %principal.name, kid = %principal.kid, client = %Client(client));
}

pub fn rejected(door: Surface, failure: AuthFailure, client: Option<IpAddr>) {
    tracing::info!(target: "audit", event = "authn", door = door.as_str(), outcome = "deny", reason = failure.reason(), client = %Client(client));
}

pub fn forbidden(door: Surface, principal: &Principal, capability: &str, reason: &str) {
    tracing::info!(target: "audit", event = "authz", door = door.as_str(), outcome = "deny", principal = %principal.name, capability, reason);
}

/// A mutation was attempted; `target` is the candidate key (a list id or sender, never a link).
pub fn mutation(door: Surface, principal: &Principal, capability: &str, target: &str, outcome: &str) {
    tracing::info!(target: "audit", event = "mutation", door = door.as_str(), principal = %principal.name, capability, target, outcome);
}
