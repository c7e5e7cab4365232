//! Parse, don't validate: what dereference found becomes a [`Valid`] agent, the only thing the
//! builders take. Its fields are private to this module, so a spec that was not checked here
//! cannot reach them, and they read parsed values (zone, schedules, the auth modes in force)
//! instead of re-reading strings.
//!
//! This is what admission cannot check: that the time zone exists, that cron expressions mean
//! something, and what depends on another object (the AuthPolicy). A problem here is permanent:
//! the controller reports it and waits for a change to the agent or its policy.

use mailagent_crds::authpolicy::served_mcp_mode;
use mailagent_crds::contract::{self, AuthMode, McpAuthMode};
use mailagent_crds::quota::{GroupShape, PROJECT_UNITS_PER_MINUTE};
use mailagent_crds::{AuthPolicySpec, MailAgent, QuotaStatus};
use mailagent_schedule::{Schedule, Tz};

use super::problem::Problem;

/// What the controller read: the agent and the spec of the AuthPolicy it references.
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a> {
    /// The agent.
    pub agent: &'a MailAgent,
    /// The referenced AuthPolicy's spec, or `None` when it does not exist: then the agent is
    /// rendered fail-closed (zero replicas, no one can authenticate).
    pub policy: Option<&'a AuthPolicySpec>,
}

/// An agent whose spec the workload will accept as rendered. Made only by [`validate`].
#[derive(Clone, Debug)]
pub struct Valid<'a> {
    agent: &'a MailAgent,
    policy: Option<&'a AuthPolicySpec>,
    zone: Tz,
    digest: Option<Schedule>,
    scan: Option<Schedule>,
    auth_mode: AuthMode,
    mcp_auth_mode: McpAuthMode,
    quota: Option<QuotaStatus>,
}

impl<'a> Valid<'a> {
    /// The agent.
    pub fn agent(&self) -> &'a MailAgent {
        self.agent
    }

    /// The referenced policy, `None` when it does not exist.
    pub fn policy(&self) -> Option<&'a AuthPolicySpec> {
        self.policy
    }

    /// `spec.schedules.timeZone`, parsed.
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// `spec.schedules.digest`, parsed.
    pub fn digest(&self) -> Option<&Schedule> {
        self.digest.as_ref()
    }

    /// `spec.schedules.scan`, parsed.
    pub fn scan(&self) -> Option<&Schedule> {
        self.scan.as_ref()
    }

    /// The REST/A2A mode in force: the policy's, or `jwt` with nothing to verify against when
    /// there is no policy (fail closed).
    pub fn auth_mode(&self) -> AuthMode {
        self.auth_mode
    }

    /// The MCP mode in force after the agent's and the policy's overrides.
    pub fn mcp_auth_mode(&self) -> McpAuthMode {
        self.mcp_auth_mode
    }

    /// The agent's allotment from its Gmail quota group: what [`Valid::with_quota`] gave, else
    /// (a Gmail mailbox not yet counted in a group) a group of one on its stated budget. `None`
    /// for a Maildir, which Google does not meter.
    pub fn quota(&self) -> Option<QuotaStatus> {
        if !self.agent.spec.mailbox.is_gmail() {
            return None;
        }
        self.quota.clone().or_else(|| {
            let shape = GroupShape::new(1, group_budget(self.agent));
            let group = self.agent.spec.mailbox.quota.as_ref().and_then(|q| q.group.clone());
            Some(shape.allot("").status(group, 1, &shape))
        })
    }

    /// The same agent with the allotment its quota group gives it.
    pub fn with_quota(mut self, quota: Option<QuotaStatus>) -> Self {
        self.quota = quota;
        self
    }

    /// The OAuth resource (`MCP_RESOURCE_SERVER_URL`): the agent's URL, else the policy's.
    pub fn resource_server_url(&self) -> Option<&'a str> {
        let oauth = self.policy.and_then(|p| p.mcp.oauth.as_ref());
        self.agent.spec.mcp.resource_server_url.as_deref().or_else(|| oauth.map(|o| o.resource.as_str()))
    }
}

/// The quota budget an agent states for its group: `spec.mailbox.quota.groupUnitsPerMinute`, else
/// Google's per-project quota.
pub fn group_budget(agent: &MailAgent) -> u32 {
    agent.spec.mailbox.quota.as_ref().and_then(|q| q.group_units_per_minute).unwrap_or(PROJECT_UNITS_PER_MINUTE)
}

/// Parses and checks the agent against its policy; `Err` says what to change, and where.
pub fn validate(inputs: Inputs<'_>) -> Result<Valid<'_>, Problem> {
    let Inputs { agent, policy } = inputs;
    let spec = &agent.spec;
    let schedules = &spec.schedules;
    let zone = mailagent_schedule::parse_time_zone(&schedules.time_zone).map_err(|_| {
        Problem::InvalidSpec(format!(
            "schedules.timeZone {:?} is not an IANA time zone (e.g. Europe/Berlin)",
            schedules.time_zone
        ))
    })?;
    let schedule = |field: &str, expr: &Option<String>| {
        expr.as_deref()
            .map(|expr| {
                Schedule::parse(expr)
                    .map_err(|e| Problem::InvalidSpec(format!("{field} {expr:?} is not a valid cron expression: {e}")))
            })
            .transpose()
    };
    let digest = schedule("schedules.digest", &schedules.digest)?;
    let scan = schedule("schedules.scan", &schedules.scan)?;
    // The schema says at least 1; an object stored under an older, looser schema may say 0,
    // which the workload refuses rather than serve as something else.
    for (field, value) in
        [("rateLimit.perMinute", spec.rate_limit.per_minute), ("rateLimit.burst", spec.rate_limit.burst)]
    {
        if value == 0 {
            return Err(Problem::InvalidSpec(format!("{field} must be at least 1 (the request being served counts)")));
        }
    }

    let (auth_mode, mcp_auth_mode) = match policy {
        // No policy, no traffic: JWT on every door with nothing to verify against, whatever the
        // agent asks for (an `oauth` door would have no issuer, and the workload refuses that).
        None => (AuthMode::Jwt, McpAuthMode::Jwt),
        Some(policy) => (policy.mode, served_mcp_mode(spec.mcp.auth_mode, Some(policy))),
    };
    let valid = Valid { agent, policy, zone, digest, scan, auth_mode, mcp_auth_mode, quota: None };
    if let Some(policy) = policy
        && mcp_auth_mode == McpAuthMode::Oauth
    {
        check_oauth(&valid, policy)?;
    }
    Ok(valid)
}

/// An `oauth` MCP door needs the authorization server, which only the AuthPolicy names
/// (`spec.mcp.oauth`). Admission cannot see across objects, so the operator says it here instead
/// of rendering a configuration the workload refuses at start.
fn check_oauth(valid: &Valid<'_>, policy: &AuthPolicySpec) -> Result<(), Problem> {
    let policy_name = &valid.agent.spec.auth_policy_ref.name;
    if policy.mcp.oauth.is_none() {
        return Err(Problem::AuthPolicyMismatch(format!(
            "mcp.authMode oauth needs an authorization server, and AuthPolicy {policy_name} has no mcp.oauth \
             (issuer, resource): add it to the policy, or choose another mcp.authMode"
        )));
    }
    let resource = valid.resource_server_url().unwrap_or_default();
    contract::check_oauth_resource(resource)
        .map_err(|e| Problem::InvalidSpec(format!("the MCP door's OAuth resource (mcp.resourceServerUrl) {e}")))
}

#[cfg(test)]
mod tests {
    use super::super::build::fixtures::{agent, policy};
    use super::*;

    fn check(agent: &MailAgent) -> Result<Valid<'_>, Problem> {
        validate(Inputs { agent, policy: None })
    }

    #[test]
    fn parses_real_schedules_and_zones() {
        let agent = agent("schedules: {digest: '0 8 * * MON', scan: '@hourly', timeZone: Europe/Berlin}");
        let valid = check(&agent).unwrap();
        assert_eq!(valid.zone(), Tz::Europe__Berlin);
        assert_eq!(valid.digest().map(Schedule::as_str), Some("0 8 * * MON"));
        assert_eq!(valid.scan().map(Schedule::as_str), Some("@hourly"));
    }

    /// Issue 8, defect 1: the operator and the workload read these alike now (see also
    /// `mailagent_mail::schedule`'s tests of the same expressions).
    #[test]
    fn accepts_what_the_workload_runs_and_refuses_what_it_would_not() {
        for good in ["0 8 * * 1-5", "0 8 * * 0", "0 8 * * 7", "@annually", "@midnight"] {
            assert!(check(&agent(&format!("schedules: {{digest: '{good}'}}"))).is_ok(), "{good}");
        }
        for bad in ["0 0 8 * * *", "0 8 * * 1L", "0 8 * MON *"] {
            assert!(check(&agent(&format!("schedules: {{scan: '{bad}'}}"))).is_err(), "{bad}");
        }
    }

    #[test]
    fn explains_what_admission_cannot_catch() {
        let err = check(&agent("schedules: {digest: '75 8 * * *'}")).unwrap_err();
        assert_eq!(err.reason(), "InvalidSpec");
        assert!(err.message().starts_with("schedules.digest \"75 8 * * *\" is not a valid cron expression"), "{err:?}");
        let err = check(&agent("schedules: {timeZone: Mars/Olympus}")).unwrap_err();
        assert!(err.message().contains("not an IANA time zone"), "{err:?}");
    }

    /// Issue 8 round trip, finding (b): a burst of 0 used to be served as 1.
    #[test]
    fn a_burst_of_zero_is_refused_not_raised() {
        let err = check(&agent("rateLimit: {perMinute: 5, burst: 0}")).unwrap_err();
        assert_eq!(err.message(), "rateLimit.burst must be at least 1 (the request being served counts)");
        assert!(check(&agent("rateLimit: {perMinute: 5, burst: 1}")).is_ok());
    }

    /// Issue 8 round trip, finding (a): an `oauth` MCP door under a policy without OAuth settings
    /// used to render MCP_AUTH_MODE=oauth with no issuer, and the workload refused to start.
    #[test]
    fn an_oauth_door_needs_the_policys_authorization_server() {
        let agent = agent("mcp: {authMode: oauth, resourceServerUrl: 'https://mail.example.com/mcp'}");
        let without = policy("mode: api_key\napiKeys: [{name: ci, scopes: [mail:scan]}]");
        let err = validate(Inputs { agent: &agent, policy: Some(&without) }).unwrap_err();
        assert_eq!(err.reason(), "AuthPolicyMismatch");
        assert!(err.message().contains("AuthPolicy policy has no mcp.oauth"), "{err:?}");

        let with = policy(
            "mode: api_key\napiKeys: [{name: ci, scopes: [mail:scan]}]\n\
             mcp: {oauth: {issuer: 'https://issuer.example.com', resource: 'https://mail.example.com/mcp'}}",
        );
        let valid = validate(Inputs { agent: &agent, policy: Some(&with) }).unwrap();
        assert_eq!(valid.mcp_auth_mode(), McpAuthMode::Oauth);

        // The policy's own oauth mode (admission makes it carry mcp.oauth); its resource is used.
        let inheriting = super::super::build::fixtures::agent("{}");
        let slash = policy(
            "mode: jwt\njwt: {audiences: [a]}\n\
             mcp: {mode: oauth, oauth: {issuer: 'https://issuer.example.com', resource: 'https://mail.example.com/'}}",
        );
        let err = validate(Inputs { agent: &inheriting, policy: Some(&slash) }).unwrap_err();
        assert!(err.message().contains("without fragment or trailing slash"), "{err:?}");

        // No policy: fail closed on every door, an `oauth` override included.
        let orphan = check(&agent).unwrap();
        assert_eq!((orphan.auth_mode(), orphan.mcp_auth_mode()), (AuthMode::Jwt, McpAuthMode::Jwt));
    }
}
