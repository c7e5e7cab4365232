//! Status conditions shared by both kinds: one helper, so every controller stamps
//! `observedGeneration` the same way and `lastTransitionTime` moves only when a status flips.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::{JsonSchema, Schema, SchemaGenerator};

/// The object is serving as its spec asks.
pub const READY: &str = "Ready";
/// The controller is moving the world toward the spec (a rollout, a rotation).
pub const PROGRESSING: &str = "Progressing";
/// Something is wrong that the controller cannot fix by itself.
pub const DEGRADED: &str = "Degraded";
/// The referenced `AuthPolicy` exists and is usable (MailAgent).
pub const AUTH_POLICY_RESOLVED: &str = "AuthPolicyResolved";
/// The mailbox credentials Secret exists (MailAgent). Only its existence is checked (by
/// metadata, never reading data); whether it holds `token.json` is not checked yet, so a Secret
/// without it shows up when the workload starts.
pub const CREDENTIALS_RESOLVED: &str = "CredentialsResolved";
/// The operator's last probe of the serving pods found every door answering as the spec and the
/// policy declare: health, the agent card, the MCP handshake and tool list, and a refusal without
/// credentials (MailAgent). Absent until the first probe.
pub const VERIFIED: &str = "Verified";
/// A key rotation is under way (AuthPolicy).
pub const ROTATING: &str = "Rotating";

/// `True`/`False` as the API spells them.
pub fn status_str(ok: bool) -> &'static str {
    if ok { "True" } else { "False" }
}

/// One desired condition, before it is merged into a status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredCondition {
    /// Condition type, e.g. [`READY`].
    pub type_: &'static str,
    /// Whether it holds.
    pub status: bool,
    /// CamelCase machine-readable reason.
    pub reason: Cow<'static, str>,
    /// A sentence a person understands.
    pub message: String,
}

impl DesiredCondition {
    /// A condition that holds.
    pub fn ok(type_: &'static str, reason: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self { type_, status: true, reason: reason.into(), message: message.into() }
    }

    /// A condition that does not hold.
    pub fn not(type_: &'static str, reason: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self { type_, status: false, reason: reason.into(), message: message.into() }
    }
}

/// Merges `desired` into `conditions`, stamping `generation`. `lastTransitionTime` keeps its old
/// value unless the status flips, so re-reconciling an unchanged object changes nothing.
/// Returns whether anything a reader would see changed.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    desired: &DesiredCondition,
    generation: Option<i64>,
    now: Time,
) -> bool {
    let status = status_str(desired.status);
    let generation = generation.unwrap_or_default();
    match conditions.iter_mut().find(|c| c.type_ == desired.type_) {
        Some(existing) => {
            let flipped = existing.status != status;
            let changed = flipped
                || existing.reason != desired.reason
                || existing.message != desired.message
                || existing.observed_generation != Some(generation);
            if flipped {
                existing.last_transition_time = now;
            }
            existing.status = status.to_owned();
            existing.reason = desired.reason.to_string();
            existing.message = desired.message.clone();
            existing.observed_generation = Some(generation);
            changed
        }
        None => {
            conditions.push(Condition {
                type_: desired.type_.to_owned(),
                status: status.to_owned(),
                reason: desired.reason.to_string(),
                message: desired.message.clone(),
                observed_generation: Some(generation),
                last_transition_time: now,
            });
            true
        }
    }
}

/// Looks a condition up by type.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Schema for a conditions list: a list-map keyed by `type`, so server-side apply merges
/// conditions one by one instead of replacing the list.
pub fn conditions_schema(generator: &mut SchemaGenerator) -> Schema {
    let mut schema = <Vec<Condition>>::json_schema(generator);
    schema.insert("x-kubernetes-list-type".into(), "map".into());
    schema.insert("x-kubernetes-list-map-keys".into(), serde_json::json!(["type"]));
    schema
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(secs).unwrap())
    }

    #[test]
    fn transition_time_moves_only_when_status_flips() {
        let mut conditions = Vec::new();
        let ready = DesiredCondition::ok(READY, "Available", "serving");
        assert!(set_condition(&mut conditions, &ready, Some(1), at(10)));
        assert!(!set_condition(&mut conditions, &ready, Some(1), at(20)), "no-op must report no change");
        assert_eq!(conditions[0].last_transition_time, at(10));

        let reworded = DesiredCondition::ok(READY, "Available", "serving 1 replica");
        assert!(set_condition(&mut conditions, &reworded, Some(2), at(30)));
        assert_eq!(conditions[0].last_transition_time, at(10), "same status keeps the time");
        assert_eq!(conditions[0].observed_generation, Some(2));

        let down = DesiredCondition::not(READY, "Suspended", "scaled to zero");
        assert!(set_condition(&mut conditions, &down, Some(3), at(40)));
        assert_eq!(conditions[0].last_transition_time, at(40));
        assert_eq!(conditions[0].status, "False");
        assert_eq!(conditions.len(), 1);
    }
}
