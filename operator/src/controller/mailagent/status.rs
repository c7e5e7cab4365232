//! Status that tells the truth: conditions computed from what was observed, written only when
//! something changed, and an Event whenever readiness flips.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};
use mailagent_crds::conditions::{self, DesiredCondition, set_condition};
use mailagent_crds::contract::{Surface, http};
use mailagent_crds::{MailAgent, MailAgentStatus, Verification};
use tracing::warn;

use super::Context;
use super::build::{Children, service_name};
use super::dereference::Refs;
use super::problem::Problem;
use crate::error::{Error, Result};
use crate::handover;

/// Computes the status and writes it if it differs from what the object already says.
///
/// `deployment` is the live Deployment as the apply step left it (the cache may not have seen that
/// write yet); `None` falls back to the cache.
pub async fn update(
    agent: &MailAgent,
    refs: &Refs,
    children: &Result<Children, Problem>,
    deployment: Option<Deployment>,
    ctx: &Context,
) -> Result<()> {
    let ns = agent.namespace().ok_or(Error::MissingField("metadata.namespace"))?;
    let deployment = deployment
        .or_else(|| ctx.stores.deployments.get(&ObjectRef::new(&agent.name_any()).within(&ns)).map(|d| (*d).clone()));
    // The cached object can lag behind our own last status write; what we wrote is newer.
    let current = ctx.read_status(agent, Clone::clone);
    let verified = ctx.verifier.verdict(agent);
    let desired = compute(agent, refs, children, deployment.as_ref(), verified, &current, now());
    // Just moved here from another shard: written once under this shard's name, then the other
    // shard's name comes off it (see `handover.rs`).
    let others = handover::noted_others(agent);
    if desired == current && others.is_empty() {
        return Ok(());
    }
    let manager = ctx.shard.field_manager();
    let patch = serde_json::json!({
        "apiVersion": MailAgent::api_version(&()),
        "kind": MailAgent::kind(&()),
        "status": desired,
    });
    let api = Api::<MailAgent>::namespaced(ctx.client.clone(), &ns);
    let written = api
        .patch_status(&agent.name_any(), &PatchParams::apply(&manager).force(), &Patch::Apply(&patch))
        .await
        .map_err(Error::kube("writing status"))?;
    ctx.metrics.wrote("MailAgent", "status");
    let released = handover::release_status(&api, &agent.name_any(), &others)
        .await
        .map_err(Error::kube("taking over an agent's status from another shard"))?;
    (0..released).for_each(|_| ctx.metrics.wrote("MailAgent", "handover"));
    ctx.remember_status(agent, desired.clone(), written.metadata.resource_version);
    announce_readiness_change(agent, &current, &desired, ctx).await;
    announce_new_problem(agent, &current, &desired, ctx).await;
    announce_verification_change(agent, &current, &desired, ctx).await;
    Ok(())
}

/// Now, in whole seconds: all a `metav1.Time` holds. A status computed with finer time would never
/// equal the same status read back, and the echo of our write would look like news (`written.rs`).
pub(crate) fn now() -> Time {
    let now = k8s_openapi::jiff::Timestamp::now();
    Time(k8s_openapi::jiff::Timestamp::from_second(now.as_second()).expect("now is a valid time"))
}

/// An agent the API server stores but the operator cannot read (a field of the wrong type that a
/// looser CRD version let through): said in its status and an Event, while every other agent
/// carries on.
pub async fn report_invalid(invalid: &kube::core::error_boundary::InvalidObject, ctx: &Context) -> Result<()> {
    let meta = &invalid.metadata;
    let (Some(name), Some(ns)) = (meta.name.as_deref(), meta.namespace.as_deref()) else {
        return Err(Error::MissingField("metadata.name"));
    };
    warn!(agent = name, namespace = ns, error = %invalid.error, "MailAgent cannot be read; skipping it");
    ctx.metrics.failed(super::CONTROLLER, "invalid_object");
    let message = format!("the operator cannot read this MailAgent: {}", invalid.error);
    let condition = DesiredCondition::not(conditions::READY, "InvalidObject", message.clone());
    let mut conditions = Vec::new();
    set_condition(&mut conditions, &condition, meta.generation, now());
    // A merge patch of the status alone: the rest of the object cannot be read, so it is not
    // round-tripped.
    let patch = serde_json::json!({"status": {"observedGeneration": meta.generation, "conditions": conditions}});
    Api::<super::Agent>::namespaced(ctx.client.clone(), ns)
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(Error::kube("reporting an unreadable MailAgent"))?;
    ctx.metrics.wrote("MailAgent", "status");
    let reference = k8s_openapi::api::core::v1::ObjectReference {
        api_version: Some(MailAgent::api_version(&()).into_owned()),
        kind: Some(MailAgent::kind(&()).into_owned()),
        name: Some(name.to_owned()),
        namespace: Some(ns.to_owned()),
        uid: meta.uid.clone(),
        ..Default::default()
    };
    publish(ctx, &reference, EventType::Warning, "InvalidObject", message).await;
    Ok(())
}

/// The status as it should read now. Pure, so the condition logic is unit-tested. `verified` is
/// the verifier's latest condition and report; `None` (not probed since the operator started)
/// keeps what the status says.
pub fn compute(
    agent: &MailAgent,
    refs: &Refs,
    children: &Result<Children, Problem>,
    deployment: Option<&Deployment>,
    verified: Option<(DesiredCondition, Option<Verification>)>,
    current: &MailAgentStatus,
    now: Time,
) -> MailAgentStatus {
    let generation = agent.metadata.generation;
    let mut status = current.clone();
    status.observed_generation = generation;
    let rollout = rollout(deployment);
    status.ready_replicas = rollout.ready;
    if let Ok(children) = children {
        status.auth_mode = refs.policy.as_ref().map(|_| children.config.auth_mode);
        status.mcp_auth_mode = refs.policy.as_ref().map(|_| children.config.mcp_auth_mode);
        status.config_hash = Some(children.config.restart_hash.clone());
        status.quota = children.config.quota.clone();
    }
    status.url = first_url(agent);
    for condition in conditions(agent, refs, children, &rollout) {
        set_condition(&mut status.conditions, &condition, generation, now.clone());
    }
    if let Some((condition, report)) = verified {
        set_condition(&mut status.conditions, &condition, generation, now);
        if report.is_some() {
            status.verification = report;
        }
    }
    status
}

fn conditions(
    agent: &MailAgent,
    refs: &Refs,
    children: &Result<Children, Problem>,
    rollout: &Rollout,
) -> Vec<DesiredCondition> {
    use conditions::{AUTH_POLICY_RESOLVED, CREDENTIALS_RESOLVED, DEGRADED, PROGRESSING};
    let policy_name = &agent.spec.auth_policy_ref.name;
    let policy = if refs.policy.is_some() {
        DesiredCondition::ok(AUTH_POLICY_RESOLVED, "Found", format!("AuthPolicy {policy_name} is in force"))
    } else {
        DesiredCondition::not(
            AUTH_POLICY_RESOLVED,
            "AuthPolicyNotFound",
            format!("AuthPolicy {policy_name} does not exist; the agent runs no pods until it does"),
        )
    };
    let credentials = match (&agent.spec.mailbox.credentials_secret_ref, refs.credentials_found) {
        (None, _) => DesiredCondition::ok(CREDENTIALS_RESOLVED, "NotNeeded", "the mailbox needs no credentials Secret"),
        (Some(s), true) => DesiredCondition::ok(CREDENTIALS_RESOLVED, "Found", format!("Secret {} exists", s.name)),
        (Some(s), false) => DesiredCondition::not(
            CREDENTIALS_RESOLVED,
            "CredentialsNotFound",
            format!("Secret {} does not exist; pods wait for it to mount", s.name),
        ),
    };
    let degraded = match children {
        Err(problem) => DesiredCondition::ok(DEGRADED, problem.reason(), problem.message()),
        Ok(_) => DesiredCondition::not(DEGRADED, "AsExpected", "the spec renders cleanly"),
    };
    let progressing = if children.is_ok() && rollout.in_progress {
        DesiredCondition::ok(
            PROGRESSING,
            "RollingOut",
            format!("{} of {} pods updated", rollout.updated, rollout.wanted),
        )
    } else {
        DesiredCondition::not(PROGRESSING, "Settled", "no rollout in progress")
    };
    let ready = readiness(agent, refs, children, rollout);
    vec![policy, credentials, degraded, progressing, ready]
}

fn readiness(
    agent: &MailAgent,
    refs: &Refs,
    children: &Result<Children, Problem>,
    rollout: &Rollout,
) -> DesiredCondition {
    use conditions::READY;
    if let Err(problem) = children {
        return DesiredCondition::not(READY, problem.reason(), problem.message());
    }
    if refs.policy.is_none() {
        return DesiredCondition::not(
            READY,
            "AuthPolicyNotFound",
            "no AuthPolicy, no traffic: the agent is scaled to zero",
        );
    }
    if !refs.credentials_found {
        return DesiredCondition::not(READY, "CredentialsNotFound", "the mailbox credentials Secret is missing");
    }
    if agent.spec.suspend || agent.spec.replicas == 0 {
        return DesiredCondition::not(READY, "Suspended", "scaled to zero by spec; state and config are kept");
    }
    if let Some(not_ready) = refs.policy.as_deref().and_then(|p| policy_not_ready(p, refs.keyring_found)) {
        return not_ready;
    }
    if rollout.available {
        return DesiredCondition::ok(READY, "Available", format!("{} of {} pods ready", rollout.ready, rollout.wanted));
    }
    DesiredCondition::not(READY, "PodsNotReady", format!("{} of {} pods ready", rollout.ready, rollout.wanted))
}

/// Why the referenced policy cannot carry traffic yet: invalid, not Ready, or its keyring Secret
/// is missing (pods would wait in ContainerCreating for the mount).
fn policy_not_ready(policy: &mailagent_crds::AuthPolicy, keyring_found: bool) -> Option<DesiredCondition> {
    use conditions::READY;
    let name = policy.metadata.name.as_deref().unwrap_or_default();
    let ready = policy.status.as_ref().and_then(|s| conditions::find(&s.conditions, READY));
    match ready {
        Some(c) if c.status != "True" && c.reason == "InvalidSpec" => Some(DesiredCondition::not(
            READY,
            "AuthPolicyInvalid",
            format!("AuthPolicy {name} is invalid: {}", c.message),
        )),
        Some(c) if c.status == "True" => (!keyring_found).then(|| {
            DesiredCondition::not(
                READY,
                "KeyringNotFound",
                format!("Secret {name}-keyring does not exist; pods wait for it to mount"),
            )
        }),
        _ => Some(DesiredCondition::not(
            READY,
            "AuthPolicyNotReady",
            format!("AuthPolicy {name} has not published its keys yet"),
        )),
    }
}

/// What the Deployment's status says.
#[derive(Debug, Default)]
struct Rollout {
    wanted: i32,
    ready: i32,
    updated: i32,
    in_progress: bool,
    available: bool,
}

fn rollout(deployment: Option<&Deployment>) -> Rollout {
    let Some(deployment) = deployment else {
        return Rollout::default();
    };
    let wanted = deployment.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let status = deployment.status.clone().unwrap_or_default();
    let observed = status.observed_generation >= deployment.metadata.generation;
    let ready = status.ready_replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    Rollout {
        wanted,
        ready,
        updated,
        in_progress: !observed || updated < wanted,
        available: observed && wanted > 0 && ready >= wanted && updated >= wanted,
    }
}

fn first_url(agent: &MailAgent) -> Option<String> {
    let s = &agent.spec.surfaces;
    let surface = [(Surface::Rest, s.rest), (Surface::A2a, s.a2a), (Surface::Mcp, s.mcp)]
        .into_iter()
        .find_map(|(surface, on)| on.then_some(surface))?;
    let ns = agent.namespace()?;
    Some(format!("http://{}.{ns}.svc:{}", service_name(&agent.name_any(), surface), http::PORT))
}

async fn announce_readiness_change(
    agent: &MailAgent,
    before: &MailAgentStatus,
    after: &MailAgentStatus,
    ctx: &Context,
) {
    let was = conditions::find(&before.conditions, conditions::READY).map(|c| (c.status.clone(), c.reason.clone()));
    let Some(now) = conditions::find(&after.conditions, conditions::READY) else {
        return;
    };
    // The first condition is an initial state, not a transition; unchanged ones are noise.
    if was.is_none() || was.as_ref() == Some(&(now.status.clone(), now.reason.clone())) {
        return;
    }
    let type_ = if now.status == "True" { EventType::Normal } else { EventType::Warning };
    publish(ctx, &agent.object_ref(&()), type_, &now.reason, now.message.clone()).await;
}

/// A Warning whenever the agent becomes degraded or its problem changes, including on its first
/// status: a child the API server refuses must never fail in silence.
async fn announce_new_problem(agent: &MailAgent, before: &MailAgentStatus, after: &MailAgentStatus, ctx: &Context) {
    let degraded = |status: &MailAgentStatus| {
        conditions::find(&status.conditions, conditions::DEGRADED)
            .filter(|c| c.status == "True")
            .map(|c| (c.reason.clone(), c.message.clone()))
    };
    if let Some((reason, message)) = degraded(after)
        && degraded(before).as_ref() != Some(&(reason.clone(), message.clone()))
    {
        publish(ctx, &agent.object_ref(&()), EventType::Warning, &reason, message).await;
    }
}

/// An Event whenever the `Verified` condition appears or changes status or reason: a Warning
/// with the finding when a door misbehaves, Normal when the doors answer as declared again.
async fn announce_verification_change(
    agent: &MailAgent,
    before: &MailAgentStatus,
    after: &MailAgentStatus,
    ctx: &Context,
) {
    let key = |c: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition| (c.status.clone(), c.reason.clone());
    let was = conditions::find(&before.conditions, conditions::VERIFIED).map(key);
    let Some(now) = conditions::find(&after.conditions, conditions::VERIFIED) else { return };
    if was.as_ref() == Some(&key(now)) {
        return;
    }
    let type_ = if now.status == "True" { EventType::Normal } else { EventType::Warning };
    let reason = if now.status == "True" { "Verified" } else { now.reason.as_str() };
    publish(ctx, &agent.object_ref(&()), type_, reason, now.message.clone()).await;
}

async fn publish(
    ctx: &Context,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    type_: EventType,
    reason: &str,
    note: String,
) {
    super::super::publish_event(&ctx.recorder, &ctx.metrics, reference, type_, reason, Some(note)).await;
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use k8s_openapi::api::apps::v1::{DeploymentSpec, DeploymentStatus};
    use mailagent_crds::AuthPolicy;

    use super::super::build::build;
    use super::super::build::fixtures::{agent, policy, valid};
    use super::*;

    fn t(secs: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(secs).unwrap())
    }

    fn refs(with_policy: bool) -> Refs {
        let spec = policy("mode: api_key\napiKeys: [{name: ci, scopes: [mail:scan]}]");
        let mut policy = AuthPolicy::new("policy", spec);
        policy.status = Some(mailagent_crds::AuthPolicyStatus {
            conditions: vec![k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
                type_: conditions::READY.into(),
                status: "True".into(),
                reason: "KeysPublished".into(),
                message: String::new(),
                last_transition_time: t(0),
                observed_generation: None,
            }],
            ..Default::default()
        });
        Refs {
            policy: with_policy.then(|| Arc::new(policy)),
            credentials_found: true,
            keyring_found: true,
            quota_group: None,
        }
    }

    fn ready_deployment(ready: i32) -> Deployment {
        let mut d =
            Deployment { spec: Some(DeploymentSpec { replicas: Some(1), ..Default::default() }), ..Default::default() };
        d.metadata.generation = Some(2);
        d.status = Some(DeploymentStatus {
            observed_generation: Some(2),
            ready_replicas: Some(ready),
            updated_replicas: Some(1),
            ..Default::default()
        });
        d
    }

    fn ready_of(status: &MailAgentStatus) -> (String, String) {
        let c = conditions::find(&status.conditions, conditions::READY).unwrap();
        (c.status.clone(), c.reason.clone())
    }

    #[test]
    fn ready_only_when_pods_are_ready_and_references_resolve() {
        let agent = agent("{}");
        let refs = refs(true);
        let children = Ok(build(&valid(&agent, refs.policy.as_ref().map(|p| &p.spec))));
        let none = MailAgentStatus::default();
        let up = compute(&agent, &refs, &children, Some(&ready_deployment(1)), None, &none, t(1));
        assert_eq!(ready_of(&up), ("True".into(), "Available".into()));
        let down = compute(&agent, &refs, &children, Some(&ready_deployment(0)), None, &none, t(1));
        assert_eq!(ready_of(&down), ("False".into(), "PodsNotReady".into()));
        assert_eq!(up.observed_generation, Some(1));
    }

    #[test]
    fn a_missing_policy_says_so() {
        let agent = agent("{}");
        let refs = refs(false);
        let children = Ok(build(&valid(&agent, None)));
        let status = compute(&agent, &refs, &children, None, None, &MailAgentStatus::default(), t(1));
        assert_eq!(ready_of(&status), ("False".into(), "AuthPolicyNotFound".into()));
        assert_eq!(status.auth_mode, None, "no mode is in force without a policy");
    }

    #[test]
    fn a_policy_without_published_keys_keeps_the_agent_not_ready() {
        let agent = agent("{}");
        let mut refs = refs(true);
        let children = Ok(build(&valid(&agent, refs.policy.as_ref().map(|p| &p.spec))));
        refs.keyring_found = false;
        let status =
            compute(&agent, &refs, &children, Some(&ready_deployment(1)), None, &MailAgentStatus::default(), t(1));
        assert_eq!(ready_of(&status), ("False".into(), "KeyringNotFound".into()));
        let mut unready = (*refs.policy.clone().unwrap()).clone();
        unready.status = None;
        refs.policy = Some(Arc::new(unready.clone()));
        let status =
            compute(&agent, &refs, &children, Some(&ready_deployment(1)), None, &MailAgentStatus::default(), t(1));
        assert_eq!(ready_of(&status), ("False".into(), "AuthPolicyNotReady".into()));
        let mut invalid = unready;
        let mut invalid_status = mailagent_crds::AuthPolicyStatus::default();
        let bad = conditions::DesiredCondition::not(conditions::READY, "InvalidSpec", "jwt.algorithms ...");
        conditions::set_condition(&mut invalid_status.conditions, &bad, None, t(0));
        invalid.status = Some(invalid_status);
        refs.policy = Some(Arc::new(invalid));
        let status =
            compute(&agent, &refs, &children, Some(&ready_deployment(1)), None, &MailAgentStatus::default(), t(1));
        assert_eq!(ready_of(&status), ("False".into(), "AuthPolicyInvalid".into()));
    }

    #[test]
    fn recomputing_an_unchanged_world_changes_nothing() {
        let agent = agent("{}");
        let refs = refs(true);
        let children = Ok(build(&valid(&agent, refs.policy.as_ref().map(|p| &p.spec))));
        let first = compute(&agent, &refs, &children, None, None, &MailAgentStatus::default(), t(1));
        let second = compute(&agent, &refs, &children, None, None, &first, t(99));
        assert_eq!(first, second, "a no-op reconcile must not produce a status write");
    }
}
