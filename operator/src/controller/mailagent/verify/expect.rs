//! What a probe must find, from the spec, the policy and the one capability table, and the
//! judgement of what it found. Pure: the probe (`probe.rs`) only fetches.

use std::collections::BTreeSet;

use mailagent_crds::authpolicy::served_mcp_mode;
use mailagent_crds::contract::{McpAuthMode, Surface, http};
use mailagent_crds::{AuthPolicySpec, Capability, MailAgent};
use serde_json::Value;

use super::super::build::{served, service_name};

/// Why a probe failed: a CamelCase reason for the condition and a sentence for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub reason: &'static str,
    pub message: String,
}

impl Finding {
    pub fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Self { reason, message: message.into() }
    }
}

/// What the doors of one agent must show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    pub surfaces: Vec<Surface>,
    /// `Host` for each surface's requests: its Service's in-cluster name, as clients send it.
    pub hosts: Vec<(Surface, String)>,
    /// Skill ids on the public card: every capability under the policy's scopes that the
    /// mutation switch allows.
    pub skills: BTreeSet<String>,
    /// The card's security scheme names, from the policy's REST/A2A mode.
    pub schemes: Vec<String>,
    /// The card's JSON-RPC interface URL.
    pub a2a_url: String,
    /// Tool names `tools/list` returns to a caller holding every scope of the policy.
    pub tools: BTreeSet<String>,
    /// Whether the MCP door takes a JWT the operator can mint with the policy's signing key.
    pub mcp_takes_policy_jwt: bool,
}

/// The expectations for `agent` under `policy`.
pub fn expected(agent: &MailAgent, policy: &AuthPolicySpec) -> Expected {
    let name = agent.metadata.name.clone().unwrap_or_default();
    let ns = agent.metadata.namespace.clone().unwrap_or_default();
    let surfaces = served(agent);
    let host = |surface| format!("{}.{ns}.svc:{}", service_name(&name, surface), http::PORT);
    let offered: Vec<Capability> = Capability::ALL
        .into_iter()
        .filter(|c| policy.scopes.contains(&c.scope()))
        .filter(|c| agent.spec.mcp.enable_mutation_tools || !c.is_mutation())
        .collect();
    let mcp_mode = served_mcp_mode(agent.spec.mcp.auth_mode, Some(policy));
    Expected {
        hosts: surfaces.iter().map(|s| (*s, host(*s))).collect(),
        surfaces,
        skills: offered.iter().map(|c| c.name().to_owned()).collect(),
        schemes: policy.mode.scheme_names().iter().map(|s| (*s).to_owned()).collect(),
        a2a_url: format!("http://{}{}", host(Surface::A2a), http::A2A),
        tools: offered.iter().map(|c| c.mcp_tool().to_owned()).collect(),
        mcp_takes_policy_jwt: policy.jwt.is_some() && matches!(mcp_mode, McpAuthMode::Jwt | McpAuthMode::Hybrid),
    }
}

impl Expected {
    pub fn serves(&self, surface: Surface) -> bool {
        self.surfaces.contains(&surface)
    }

    pub fn host(&self, surface: Surface) -> &str {
        self.hosts.iter().find(|(s, _)| *s == surface).map_or("", |(_, h)| h.as_str())
    }
}

/// What the public agent card says, if it matches: its protocol version and skill count.
pub fn judge_card(expected: &Expected, card: &Value) -> Result<(String, i32), Finding> {
    let skills: BTreeSet<String> = card["skills"]
        .as_array()
        .map(|skills| skills.iter().filter_map(|s| s["id"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    if skills != expected.skills {
        return Err(Finding::new(
            "AgentCardMismatch",
            format!(
                "the agent card lists skills [{}], the spec and policy allow [{}]",
                join(&skills),
                join(&expected.skills)
            ),
        ));
    }
    let schemes: BTreeSet<String> =
        card["securitySchemes"].as_object().map(|s| s.keys().cloned().collect()).unwrap_or_default();
    let want: BTreeSet<String> = expected.schemes.iter().cloned().collect();
    if schemes != want {
        return Err(Finding::new(
            "AgentCardMismatch",
            format!(
                "the agent card declares security schemes [{}], the policy's mode means [{}]",
                join(&schemes),
                join(&want)
            ),
        ));
    }
    let interface = &card["supportedInterfaces"][0];
    let url = interface["url"].as_str().unwrap_or_default();
    if url != expected.a2a_url {
        return Err(Finding::new(
            "AgentCardMismatch",
            format!("the agent card's interface URL is {url:?}, expected {:?}", expected.a2a_url),
        ));
    }
    let version = interface["protocolVersion"].as_str().unwrap_or_default().to_owned();
    Ok((version, skills.len() as i32))
}

/// Whether `tools/list` for a caller with every policy scope shows exactly the expected tools:
/// an extra one (a mutation tool with the switch off) or a missing one fails.
pub fn judge_tools(expected: &Expected, listed: &BTreeSet<String>) -> Result<(), Finding> {
    let extra: BTreeSet<&String> = listed.difference(&expected.tools).collect();
    if !extra.is_empty() {
        return Err(Finding::new(
            "UnexpectedTools",
            format!("tools/list offers [{}], which the spec and policy do not allow", join(extra)),
        ));
    }
    let missing: BTreeSet<&String> = expected.tools.difference(listed).collect();
    if !missing.is_empty() {
        return Err(Finding::new("MissingTools", format!("tools/list lacks [{}]", join(missing))));
    }
    Ok(())
}

fn join<'a>(names: impl IntoIterator<Item = &'a String>) -> String {
    names.into_iter().map(String::as_str).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::super::build::fixtures::agent;
    use super::*;

    fn policy(yaml: &str) -> AuthPolicySpec {
        serde_yaml::from_str(yaml).unwrap()
    }

    const JWT: &str =
        "mode: jwt\nscopes: [mail:scan, unsubscribe:read, unsubscribe:execute]\njwt: {audiences: [mailagent]}";

    #[test]
    fn the_switch_and_the_scopes_decide_skills_and_tools() {
        let off = expected(&agent("mcp: {enableMutationTools: false}"), &policy(JWT));
        assert_eq!(off.skills, ["mail_scan", "unsubscribe_candidates"].map(String::from).into());
        assert!(off.mcp_takes_policy_jwt);
        assert_eq!(off.a2a_url, "http://inbox-a2a.team.svc:8080/a2a");
        assert_eq!(off.host(Surface::Mcp), "inbox-mcp.team.svc:8080");
        let on = expected(&agent("mcp: {enableMutationTools: true}"), &policy(JWT));
        assert!(on.skills.contains("unsubscribe_execute"), "{:?}", on.skills);
        let keys = expected(&agent("{}"), &policy("mode: api_key\nscopes: [mail:scan]"));
        assert!(!keys.mcp_takes_policy_jwt, "API keys are the clients', not the operator's");
        assert_eq!(keys.schemes, ["apiKey"]);
    }

    #[test]
    fn a_card_with_an_extra_skill_or_the_wrong_schemes_fails_with_a_reason() {
        let want = expected(&agent("mcp: {enableMutationTools: false}"), &policy(JWT));
        let card = |skills: &[&str], schemes: Value| {
            json!({
                "skills": skills.iter().map(|s| json!({"id": s})).collect::<Vec<_>>(),
                "securitySchemes": schemes,
                "supportedInterfaces": [{"url": "http://inbox-a2a.team.svc:8080/a2a", "protocolVersion": "1.0"}],
            })
        };
        let good = card(&["mail_scan", "unsubscribe_candidates"], json!({"bearer": {}}));
        assert_eq!(judge_card(&want, &good), Ok(("1.0".into(), 2)));
        let extra = judge_card(
            &want,
            &card(&["mail_scan", "unsubscribe_candidates", "unsubscribe_execute"], json!({"bearer": {}})),
        );
        assert_eq!(extra.unwrap_err().reason, "AgentCardMismatch");
        let schemes = judge_card(&want, &card(&["mail_scan", "unsubscribe_candidates"], json!({"apiKey": {}})));
        assert!(schemes.unwrap_err().message.contains("security schemes [apiKey]"));
    }

    #[test]
    fn an_extra_tool_is_named_and_a_missing_one_too() {
        let want = expected(&agent("mcp: {enableMutationTools: false}"), &policy(JWT));
        let listed = |names: &[&str]| names.iter().map(|s| (*s).to_owned()).collect::<BTreeSet<_>>();
        assert_eq!(judge_tools(&want, &want.tools), Ok(()));
        let mut more = want.tools.clone();
        more.insert(Capability::Unsubscribe.mcp_tool().to_owned());
        let extra = judge_tools(&want, &more).unwrap_err();
        assert_eq!(extra.reason, "UnexpectedTools");
        assert!(extra.message.contains(Capability::Unsubscribe.mcp_tool()), "{}", extra.message);
        assert_eq!(judge_tools(&want, &listed(&[])).unwrap_err().reason, "MissingTools");
    }
}
