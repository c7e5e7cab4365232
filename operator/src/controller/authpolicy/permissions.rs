//! Effective permissions: who may do what under a policy, derived from its modes, its scopes and
//! the one capability table, so a person can read it from `kubectl get authpolicy -o yaml`
//! without reading code. Pure: the same inputs give the same status, and the workload decides
//! with the same table and the same ceiling.

use std::collections::BTreeSet;

use mailagent_crds::authpolicy::{AgentAccess, AuthPolicySpec, Permission, served_mcp_mode};
use mailagent_crds::contract::{AuthMode, McpAuthMode};
use mailagent_crds::{Capability, MailAgent, Scope};

/// The credentials a door accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Accepts {
    api_key: bool,
    jwt: bool,
    oauth: bool,
}

impl Accepts {
    fn rest_and_a2a(mode: AuthMode) -> Self {
        Self { api_key: mode != AuthMode::Jwt, jwt: mode != AuthMode::ApiKey, oauth: false }
    }

    fn mcp(mode: McpAuthMode, policy: AuthMode) -> Self {
        match mode {
            McpAuthMode::Inherit => Self::rest_and_a2a(policy),
            McpAuthMode::ApiKey => Self::rest_and_a2a(AuthMode::ApiKey),
            McpAuthMode::Jwt => Self::rest_and_a2a(AuthMode::Jwt),
            McpAuthMode::Hybrid => Self::rest_and_a2a(AuthMode::Hybrid),
            McpAuthMode::Oauth => Self { api_key: false, jwt: false, oauth: true },
        }
    }
}

/// One entry per API key client, then one for JWT bearers and one for OAuth bearers where a door
/// accepts them. A principal no door accepts is left out.
pub fn permissions(spec: &AuthPolicySpec) -> Vec<Permission> {
    let ceiling: BTreeSet<Scope> = spec.scopes.iter().copied().collect();
    let rest_a2a = Accepts::rest_and_a2a(spec.mode);
    let mcp = Accepts::mcp(spec.mcp_mode(), spec.mode);
    let clients = if rest_a2a.api_key || mcp.api_key { spec.api_keys.as_slice() } else { &[] };
    let mut out: Vec<Permission> = clients
        .iter()
        .map(|client| {
            let own: BTreeSet<Scope> = client.scopes.iter().copied().filter(|s| ceiling.contains(s)).collect();
            entry(format!("apiKey/{}", client.name), &own, rest_a2a.api_key, mcp.api_key)
        })
        .collect();
    if rest_a2a.jwt || mcp.jwt {
        out.push(entry("jwt".into(), &ceiling, rest_a2a.jwt, mcp.jwt));
    }
    if mcp.oauth {
        out.push(entry("oauth".into(), &ceiling, false, true));
    }
    out
}

fn entry(principal: String, scopes: &BTreeSet<Scope>, rest_and_a2a: bool, mcp: bool) -> Permission {
    let allowed: Vec<Capability> = Capability::ALL.into_iter().filter(|c| scopes.contains(&c.scope())).collect();
    let names = |on: bool, name: fn(Capability) -> String| -> Vec<String> {
        if on { allowed.iter().map(|c| name(*c)).collect() } else { Vec::new() }
    };
    Permission {
        principal,
        scopes: scopes.iter().copied().collect(),
        rest: names(rest_and_a2a, |c| format!("POST {}", c.path())),
        a2a_skills: names(rest_and_a2a, |c| c.a2a_skill().to_owned()),
        mcp_tools: names(mcp, |c| c.mcp_tool().to_owned()),
    }
}

/// The MailAgents referencing the policy `name`, sorted by name: the MCP mode each one serves and
/// the mutation capabilities its switch turns off on every door.
pub fn agent_access(name: &str, spec: &AuthPolicySpec, agents: &[MailAgent]) -> Vec<AgentAccess> {
    let mut out: Vec<AgentAccess> = agents
        .iter()
        .filter(|a| a.spec.auth_policy_ref.name == name)
        .map(|a| AgentAccess {
            name: a.metadata.name.clone().unwrap_or_default(),
            mcp_auth_mode: served_mcp_mode(a.spec.mcp.auth_mode, Some(spec)),
            mutation_tools_off: if a.spec.mcp.enable_mutation_tools {
                Vec::new()
            } else {
                Capability::ALL.into_iter().filter(|c| c.is_mutation()).map(|c| c.name().to_owned()).collect()
            },
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailagent_crds::authpolicy::ApiKeyClient;

    fn spec(yaml: &str) -> AuthPolicySpec {
        serde_yaml::from_str(yaml).expect("valid spec")
    }

    fn by<'a>(out: &'a [Permission], principal: &str) -> &'a Permission {
        out.iter().find(|p| p.principal == principal).unwrap_or_else(|| panic!("{principal} in {out:?}"))
    }

    #[test]
    fn an_api_key_client_may_use_exactly_its_scopes_on_every_door() {
        let s = spec(
            "mode: api_key\nscopes: [mail:scan, unsubscribe:read]\napiKeys: [{name: triage, scopes: [mail:scan]}]",
        );
        let out = permissions(&s);
        assert_eq!(out.len(), 1, "no bearer principal in api_key mode: {out:?}");
        let triage = by(&out, "apiKey/triage");
        assert_eq!(triage.scopes, vec![Scope::MailScan]);
        assert_eq!(triage.rest, vec!["POST /v1/mail/scan"]);
        assert_eq!(triage.a2a_skills, vec!["mail_scan"]);
        assert_eq!(triage.mcp_tools, vec!["mail_scan"]);
    }

    #[test]
    fn bearers_get_the_ceiling_and_oauth_takes_over_the_mcp_door() {
        let s = spec(
            "mode: hybrid\nscopes: [mail:scan, unsubscribe:execute]\napiKeys: [{name: bot, scopes: [unsubscribe:execute]}]\njwt: {audiences: [mailagent]}\nmcp: {mode: oauth, oauth: {issuer: 'https://id.example', resource: 'https://mail.example/mcp'}}",
        );
        let out = permissions(&s);
        let bot = by(&out, "apiKey/bot");
        assert_eq!(bot.rest, vec!["POST /v1/unsubscribe/execute"]);
        assert!(bot.mcp_tools.is_empty(), "the MCP door takes OAuth tokens only");
        let jwt = by(&out, "jwt");
        assert_eq!(jwt.a2a_skills, vec!["mail_scan", "unsubscribe_execute"]);
        assert!(jwt.mcp_tools.is_empty());
        let oauth = by(&out, "oauth");
        assert!(oauth.rest.is_empty() && oauth.a2a_skills.is_empty());
        assert_eq!(oauth.mcp_tools, vec!["mail_scan", "unsubscribe_execute"]);
    }

    #[test]
    fn a_jwt_only_policy_lists_no_client_doors_and_an_empty_ceiling_opens_nothing() {
        let mut s = spec("mode: jwt\nscopes: []\njwt: {audiences: [mailagent]}");
        let out = permissions(&s);
        assert_eq!(out.len(), 1);
        assert!(out[0].rest.is_empty() && out[0].mcp_tools.is_empty() && out[0].scopes.is_empty());
        // A client of a jwt-only policy has no door at all and is not listed as if it had one.
        s.api_keys.push(ApiKeyClient { name: "orphan".into(), scopes: vec![Scope::MailScan] });
        s.scopes = vec![Scope::MailScan];
        assert!(permissions(&s).iter().all(|p| p.principal != "apiKey/orphan"));
    }

    #[test]
    fn agents_report_their_mcp_mode_and_the_mutations_switched_off() {
        let s = spec("mode: api_key\napiKeys: [{name: a, scopes: [mail:scan]}]");
        let agent = |name: &str, policy: &str, mutations: bool, mcp_mode: &str| -> MailAgent {
            serde_yaml::from_str(&format!(
                "apiVersion: mailagent.dev/v1alpha1\nkind: MailAgent\nmetadata: {{name: {name}}}\nspec: {{image: x, authPolicyRef: {{name: {policy}}}, mailbox: {{provider: maildir}}, mcp: {{enableMutationTools: {mutations}, authMode: {mcp_mode}}}}}"
            ))
            .expect("valid agent")
        };
        let agents = [
            agent("zed", "p", true, "inherit"),
            agent("amy", "p", false, "jwt"),
            agent("other", "q", false, "inherit"),
        ];
        let out = agent_access("p", &s, &agents);
        assert_eq!(out.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), ["amy", "zed"]);
        assert_eq!(out[0].mcp_auth_mode, McpAuthMode::Jwt);
        assert_eq!(out[0].mutation_tools_off, ["unsubscribe_execute", "unsubscribe_digest"]);
        assert_eq!(out[1].mcp_auth_mode, McpAuthMode::ApiKey);
        assert!(out[1].mutation_tools_off.is_empty());
    }
}
