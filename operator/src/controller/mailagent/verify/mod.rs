//! The `Verified` condition: the operator proves that each Ready agent answers as its spec and
//! its AuthPolicy declare, by probing every serving pod behind the agent's Service (health, a 401
//! without credentials on every served door, the public agent card, an MCP handshake and
//! `tools/list` under a one-minute token it mints with the policy's signing key).
//!
//! Probes run on a schedule, never inside a reconcile: a task wakes every [`TICK`], probes at most
//! [`PER_TICK`] due agents ([`IN_FLIGHT`] at a time), keeps the outcome here and asks the
//! controller to reconcile the agent, whose status then carries it. An agent is due when it has
//! never been probed, its interval has passed, its served configuration changed, or a child was
//! changed by hand (drift: reported at once, probed again once the restored rollout settles).

pub mod expect;
pub mod probe;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::channel::mpsc;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::ListParams;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};
use mailagent_crds::conditions::{self, DesiredCondition};
use mailagent_crds::contract::{files, http};
use mailagent_crds::{AuthPolicySpec, MailAgent, MailAgentStatus, Verification, names};
use tracing::{debug, info};

use self::expect::{Expected, Finding};
use super::{Agent, Context, agent_ref};
use crate::controller::authpolicy::material::SignerState;

/// Default time between two probes of an unchanged agent.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(300);
/// How soon a failed probe is repeated.
pub const RETRY_FAILED: Duration = Duration::from_secs(30);
/// Consecutive failed probes before `Verified` turns `False`, like a kubelet probe's
/// `failureThreshold`: a spec change reaches a running pod with the kubelet's next sync (up to a
/// minute), and a probe in between must not raise a false alarm. A door found broken is reported
/// about [`RETRY_FAILED`] later; a hand edit is reported at once (drift, not a probe).
pub const FAILURES_BEFORE_FALSE: u32 = 2;
/// How often the scheduler looks for due agents.
pub const TICK: Duration = Duration::from_secs(5);
/// Agents probed per tick at most: the rate bound (about 1.6 agents a second), so a fleet's first
/// probes after an operator start spread out instead of hitting every pod at once.
pub const PER_TICK: usize = 8;
/// Probes in flight at once.
pub const IN_FLIGHT: usize = 4;
/// Lifetime of the token the probe mints for `tools/list`.
const PROBE_TOKEN_TTL: Duration = Duration::from_secs(60);
/// The subject of that token, so the workload's audit log names the operator.
const PROBE_SUBJECT: &str = "mailagent-operator/verify";

/// One probe's result.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub report: Verification,
    pub verdict: Result<String, Finding>,
    /// The agent's `status.configHash` when it was probed.
    pub config_hash: Option<String>,
    /// Consecutive failed probes, this one included (0 when it passed).
    pub failures: u32,
    started: Instant,
}

/// Outcomes and drift per agent, kept in memory: after an operator restart the status keeps the
/// last result until the first new probe.
pub struct Verifier {
    interval: Duration,
    http: reqwest::Client,
    outcomes: Mutex<HashMap<ObjectRef<Agent>, Outcome>>,
    /// Children changed outside the operator (and restored), per agent, with when it was seen.
    drifted: Mutex<HashMap<ObjectRef<Agent>, (String, Instant)>>,
}

impl Verifier {
    pub fn new(interval: Duration) -> Self {
        Self { interval, http: probe::client(), outcomes: Mutex::default(), drifted: Mutex::default() }
    }

    /// Records that `what` (e.g. `Deployment inbox`) of the agent `agent` in `ns` was changed
    /// outside the operator.
    pub fn record_drift(&self, ns: &str, agent: &str, what: String) {
        info!(%ns, %agent, %what, "a child was changed outside the operator; restoring it");
        self.drifted.lock().expect("not poisoned").insert(ObjectRef::new(agent).within(ns), (what, Instant::now()));
    }

    /// The condition and report for the agent's status, or `None` before its first probe.
    pub fn verdict(&self, agent: &MailAgent) -> Option<(DesiredCondition, Option<Verification>)> {
        let key = agent_ref(agent);
        let outcome = self.outcomes.lock().expect("not poisoned").get(&key).cloned();
        let drift = self.drifted.lock().expect("not poisoned").get(&key).cloned();
        condition(outcome.as_ref(), drift.as_ref())
    }

    /// Drops what is kept for agents that no longer exist, now and then, so the maps stay the
    /// size of the fleet.
    fn forget_deleted(&self, agents: &kube::runtime::reflector::Store<Agent>) {
        let live = agents.len();
        let mut outcomes = self.outcomes.lock().expect("not poisoned");
        let mut drifted = self.drifted.lock().expect("not poisoned");
        if outcomes.len() + drifted.len() <= 2 * live + 16 {
            return;
        }
        let live: std::collections::HashSet<ObjectRef<Agent>> =
            agents.state().iter().map(|a| ObjectRef::from_obj(&**a)).collect();
        outcomes.retain(|key, _| live.contains(key));
        drifted.retain(|key, _| live.contains(key));
    }

    fn due(&self, agent: &MailAgent, status: &MailAgentStatus, now: Instant) -> bool {
        let holds = |type_| conditions::find(&status.conditions, type_).is_some_and(|c| c.status == "True");
        if !holds(conditions::READY) || holds(conditions::PROGRESSING) {
            return false;
        }
        let key = agent_ref(agent);
        let outcomes = self.outcomes.lock().expect("not poisoned");
        let Some(last) = outcomes.get(&key) else { return true };
        let drifted_since =
            self.drifted.lock().expect("not poisoned").get(&key).is_some_and(|(_, at)| *at > last.started);
        let wait = if last.verdict.is_ok() { self.interval } else { RETRY_FAILED.min(self.interval) };
        drifted_since || last.config_hash != status.config_hash || now.duration_since(last.started) >= wait
    }
}

/// The `Verified` condition from the last probe and the last drift: a drift newer than the probe
/// wins, since the probe no longer describes what is served.
pub fn condition(
    outcome: Option<&Outcome>,
    drift: Option<&(String, Instant)>,
) -> Option<(DesiredCondition, Option<Verification>)> {
    let report = outcome.map(|o| o.report.clone());
    if let Some((what, at)) = drift
        && outcome.is_none_or(|o| *at > o.started)
    {
        let message = format!(
            "{what} was changed outside the operator and has been restored; the doors are probed again once the rollout settles"
        );
        return Some((DesiredCondition::not(conditions::VERIFIED, "ConfigDrifted", message), report));
    }
    let outcome = outcome?;
    let condition = match &outcome.verdict {
        Ok(summary) => DesiredCondition::ok(conditions::VERIFIED, "DoorsAnswerAsDeclared", summary.clone()),
        // Not yet: the status keeps what it said until the failure repeats.
        Err(_) if outcome.failures < FAILURES_BEFORE_FALSE => return None,
        Err(finding) => DesiredCondition::not(conditions::VERIFIED, finding.reason, finding.message.clone()),
    };
    Some((condition, report))
}

/// Runs the schedule until the task is aborted (with the controller's watches).
pub async fn run(ctx: Arc<Context>, wake: mpsc::UnboundedSender<ObjectRef<Agent>>) {
    loop {
        tokio::time::sleep(TICK).await;
        let now = Instant::now();
        let due: Vec<MailAgent> = ctx
            .agents
            .state()
            .iter()
            .filter_map(|a| a.0.as_ref().ok())
            .filter(|a| ctx.shard.owns(&a.metadata))
            .filter(|a| ctx.read_status(a, |status| ctx.verifier.due(a, status, now)))
            .take(PER_TICK)
            .cloned()
            .collect();
        let probed: Vec<(MailAgent, Option<Outcome>)> = futures::stream::iter(due)
            .map(|agent| {
                let ctx = ctx.clone();
                async move {
                    let outcome = verify(&agent, &ctx).await;
                    (agent, outcome)
                }
            })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        ctx.verifier.forget_deleted(&ctx.agents);
        for (agent, outcome) in probed {
            let Some(mut outcome) = outcome else { continue };
            ctx.metrics.probed(outcome.verdict.as_ref().map_or_else(|f| f.reason, |_| "passed"));
            let mut outcomes = ctx.verifier.outcomes.lock().expect("not poisoned");
            if outcome.verdict.is_err() {
                let before = outcomes.get(&agent_ref(&agent)).map_or(0, |o| o.failures);
                outcome.failures = before + 1;
            }
            outcomes.insert(agent_ref(&agent), outcome);
            drop(outcomes);
            let _ = wake.unbounded_send(agent_ref(&agent));
        }
    }
}

/// Probes every serving pod of `agent`; `None` when its policy is not in the cache (the
/// reconcile reports that).
async fn verify(agent: &MailAgent, ctx: &Context) -> Option<Outcome> {
    let ns = agent.namespace()?;
    let policy = ctx.stores.policies.get(&ObjectRef::new(&agent.spec.auth_policy_ref.name).within(&ns))?;
    let policy = policy.0.as_ref().ok()?.spec.clone();
    let status = ctx.read_status(agent, Clone::clone);
    let started = Instant::now();
    let expected = expect::expected(agent, &policy);
    let mut report = Verification { last_check_time: Some(super::status::now()), ..Verification::default() };
    let verdict = probe_pods(agent, &ns, &policy, &expected, &mut report, ctx).await;
    debug!(agent = %agent.name_any(), %ns, ok = verdict.is_ok(), "probed");
    Some(Outcome { report, verdict, config_hash: status.config_hash, failures: 0, started })
}

async fn probe_pods(
    agent: &MailAgent,
    ns: &str,
    policy: &AuthPolicySpec,
    expected: &Expected,
    report: &mut Verification,
    ctx: &Context,
) -> Result<String, Finding> {
    let Some(surface) = expected.surfaces.first() else {
        return Err(Finding::new("NothingServed", "the agent serves no surface"));
    };
    let service = names::service(&agent.name_any(), *surface);
    let pods = endpoints(ctx, ns, &service).await?;
    if pods.is_empty() {
        return Err(Finding::new("NoEndpoints", format!("Service {service} has no ready endpoints")));
    }
    report.endpoints = pods.len() as i32;
    let token = if expected.mcp_takes_policy_jwt && expected.serves(mailagent_crds::contract::Surface::Mcp) {
        Some(probe_token(ctx, ns, &agent.spec.auth_policy_ref.name, policy).await?)
    } else {
        None
    };
    for base in &pods {
        probe::probe(&ctx.verifier.http, base, expected, token.as_deref(), report)
            .await
            .map_err(|f| Finding::new(f.reason, format!("{base}: {}", f.message)))?;
    }
    Ok(summary(report))
}

/// A sentence of what passed, for the condition's message.
fn summary(report: &Verification) -> String {
    let mut parts = vec![format!("{} pod(s): health and a 401 without credentials on every door", report.endpoints)];
    if let (Some(version), Some(skills)) = (&report.a2a_protocol_version, report.a2a_skills) {
        parts.push(format!("agent card (A2A {version}, {skills} skills)"));
    }
    match (&report.mcp_protocol_version, report.mcp_tools) {
        (Some(version), Some(tools)) => parts.push(format!("MCP {version} with {tools} tools")),
        _ => parts.push("MCP tools not listed (the door takes no token the operator mints)".into()),
    }
    parts.join("; ")
}

/// `http://<address>:<port>` of every ready endpoint of `service`: each pod is probed, so one bad
/// replica is found, and no Service proxy or cluster DNS is needed.
async fn endpoints(ctx: &Context, ns: &str, service: &str) -> Result<Vec<String>, Finding> {
    let slices = Api::<EndpointSlice>::namespaced(ctx.client.clone(), ns)
        .list(&ListParams::default().labels(&format!("kubernetes.io/service-name={service}")))
        .await
        .map_err(|e| Finding::new("EndpointsUnreadable", format!("listing the endpoints of {service}: {e}")))?;
    let mut out = Vec::new();
    for slice in slices {
        let port = slice
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(http::PORT_NAME))
            .and_then(|p| p.port)
            .unwrap_or(i32::from(http::PORT));
        for endpoint in slice.endpoints.iter().flatten() {
            if endpoint.conditions.as_ref().and_then(|c| c.ready) == Some(false) {
                continue;
            }
            for address in &endpoint.addresses {
                let host = if address.contains(':') { format!("[{address}]") } else { address.clone() };
                out.push(format!("http://{host}:{port}"));
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// A one-minute token holding every scope of the policy, minted with its Active signing key.
async fn probe_token(ctx: &Context, ns: &str, policy_name: &str, policy: &AuthPolicySpec) -> Result<String, Finding> {
    let unavailable = |why: String| Finding::new("ProbeCredentialUnavailable", why);
    let secret = Api::<Secret>::namespaced(ctx.client.clone(), ns)
        .get(&names::signer_secret(policy_name))
        .await
        .map_err(|e| unavailable(format!("reading the policy's signer Secret: {e}")))?;
    let state: SignerState = secret
        .data
        .as_ref()
        .and_then(|d| d.get(files::SIGNER_STATE))
        .and_then(|b| serde_json::from_slice(&b.0).ok())
        .ok_or_else(|| unavailable("the signer Secret has no readable signer.json".into()))?;
    let audience = policy.jwt.as_ref().and_then(|j| j.audiences.first()).cloned().unwrap_or_default();
    let max = policy.jwt.as_ref().map_or(PROBE_TOKEN_TTL, |j| Duration::from(j.max_token_lifetime));
    let request = crate::token::Request {
        subject: PROBE_SUBJECT.into(),
        audience,
        ttl: Some(PROBE_TOKEN_TTL.min(max)),
        scopes: policy.scopes.clone(),
        now: k8s_openapi::jiff::Timestamp::now().as_second(),
    };
    crate::token::mint(policy, &state, &request).map_err(unavailable)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(verdict: Result<String, Finding>, started: Instant) -> Outcome {
        let failures = if verdict.is_err() { FAILURES_BEFORE_FALSE } else { 0 };
        Outcome { report: Verification::default(), verdict, config_hash: None, failures, started }
    }

    #[test]
    fn a_drift_newer_than_the_probe_wins_and_an_older_one_does_not() {
        let probed = Instant::now();
        let later = probed + Duration::from_secs(1);
        let passed = outcome(Ok("fine".into()), probed);
        let drift = ("Deployment inbox".to_owned(), later);
        let (found, _) = condition(Some(&passed), Some(&drift)).unwrap();
        assert_eq!((found.status, found.reason.as_ref()), (false, "ConfigDrifted"));
        assert!(found.message.starts_with("Deployment inbox was changed outside the operator"));
        let reprobed = outcome(Ok("fine".into()), later + Duration::from_secs(1));
        let (found, _) = condition(Some(&reprobed), Some(&drift)).unwrap();
        assert_eq!((found.status, found.reason.as_ref()), (true, "DoorsAnswerAsDeclared"));
        let failed = outcome(Err(Finding::new("AnswersWithoutCredentials", "POST /mcp answered 200")), later);
        let (found, _) = condition(Some(&failed), None).unwrap();
        assert_eq!((found.status, found.reason.as_ref()), (false, "AnswersWithoutCredentials"));
        assert_eq!(condition(None, None), None, "no condition before the first probe");
        let first = Outcome { failures: 1, ..failed };
        assert_eq!(condition(Some(&first), None), None, "one failure changes nothing yet");
    }
}
