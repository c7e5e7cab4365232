//! Settings rendered into the ConfigMap, named exactly as the runbooks' environment variables so
//! the workload reads them the same way in a pod and on a laptop.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use mailagent_crds::contract::{AuthMode, McpAuthMode, env};
use mailagent_crds::{AuthPolicySpec, MailAgent, QuotaStatus};
use sha2::{Digest, Sha256};

use super::{Valid, child_meta};

/// Settings the workload re-reads from its mounted config directory while running. They are kept
/// out of the restart hash, so flipping one (the incident switch) never restarts a pod.
/// The quota share and scan delay are live too: they change with the size of the agent's quota
/// group, and a fleet that grows must not restart every member.
pub const LIVE_SETTINGS: &[&str] =
    &[env::MCP_ENABLE_MUTATION_TOOLS, env::GMAIL_QUOTA_UNITS_PER_MINUTE, env::SCAN_SCHEDULE_DELAY_SECONDS];

/// The settings of one agent, with the hash of those that need a restart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedConfig {
    /// Every setting, name to value.
    pub settings: BTreeMap<String, String>,
    /// `sha256:` hash over the settings not in [`LIVE_SETTINGS`].
    pub restart_hash: String,
    /// The REST/A2A mode in force.
    pub auth_mode: AuthMode,
    /// The MCP mode in force after overrides.
    pub mcp_auth_mode: McpAuthMode,
    /// The Gmail quota allotment rendered (Gmail mailboxes only), for status.
    pub quota: Option<QuotaStatus>,
}

/// Renders the settings from the parsed values. With no AuthPolicy the agent fails closed: JWT
/// mode with nothing to verify against, so no caller authenticates.
pub fn render_config(valid: &Valid<'_>) -> RenderedConfig {
    let agent = valid.agent();
    let spec = &agent.spec;
    let (auth_mode, mcp_auth_mode) = (valid.auth_mode(), valid.mcp_auth_mode());
    let mut s = BTreeMap::new();
    let mut set = |k: &str, v: String| {
        s.insert(k.to_owned(), v);
    };

    set(env::AUTH_MODE, auth_mode.to_string());
    set(env::MCP_AUTH_MODE, mcp_auth_mode.to_string());
    set(env::MCP_ENABLE_MUTATION_TOOLS, spec.mcp.enable_mutation_tools.to_string());
    set(env::MAILAGENT_SURFACES, surfaces(agent));
    set(env::RATE_LIMIT_PER_MINUTE, spec.rate_limit.per_minute.to_string());
    set(env::RATE_LIMIT_BURST, spec.rate_limit.burst.to_string());
    set(env::MAILBOX_PROVIDER, spec.mailbox.provider.as_str().to_owned());
    set(env::MAILAGENT_TIMEZONE, valid.zone().name().to_owned());
    set(env::MCP_ALLOWED_HOSTS, allowed_hosts(agent).join(","));
    if !spec.mcp.allowed_origins.is_empty() {
        set(env::MCP_ALLOWED_ORIGINS, spec.mcp.allowed_origins.join(","));
    }
    // No MAILDIR_PATH: the workload's default (`Maildir` in its state directory, the mounted
    // volume) is the one place that decides where a `maildir` mailbox lives.
    let optional = [
        (env::DIGEST_RECIPIENT, spec.mailbox.address.clone()),
        (env::DIGEST_SCHEDULE, valid.digest().map(ToString::to_string)),
        (env::SCAN_SCHEDULE, valid.scan().map(ToString::to_string)),
        (env::MCP_RESOURCE_SERVER_URL, valid.resource_server_url().map(str::to_owned)),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            set(name, value);
        }
    }
    let quota = valid.quota();
    if let Some(quota) = &quota {
        set(env::GMAIL_QUOTA_UNITS_PER_MINUTE, quota.units_per_minute.to_string());
        if valid.scan().is_some() {
            set(env::SCAN_SCHEDULE_DELAY_SECONDS, quota.scan_delay_seconds.to_string());
        }
    }
    if let Some(policy) = valid.policy() {
        jwt_settings(policy, &mut set);
    }

    let restart_hash = hash(s.iter().filter(|(k, _)| !LIVE_SETTINGS.contains(&k.as_str())));
    RenderedConfig { settings: s, restart_hash, auth_mode, mcp_auth_mode, quota }
}

fn jwt_settings(policy: &AuthPolicySpec, set: &mut impl FnMut(&str, String)) {
    // The policy's scopes cap every principal on every door (the workload intersects).
    // An empty list is spelled `none` (an empty value would read as no ceiling at all).
    let ceiling: Vec<&str> = policy.scopes.iter().map(|s| s.as_str()).collect();
    set(env::AUTH_SCOPES_CEILING, if ceiling.is_empty() { "none".into() } else { ceiling.join(" ") });
    if let Some(jwt) = &policy.jwt {
        let algorithms: Vec<&str> = jwt.algorithms.iter().map(|a| a.as_str()).collect();
        set(env::AUTH_JWT_ALGORITHMS, algorithms.join(","));
        if let Some(typ) = &jwt.required_typ {
            set(env::AUTH_JWT_REQUIRED_TYP, typ.clone());
        }
        if let Some(issuer) = &jwt.issuer {
            set(env::AUTH_JWT_ISSUER, issuer.clone());
        }
        set(env::AUTH_JWT_AUDIENCE, jwt.audiences.join(","));
        set(env::AUTH_JWT_CLOCK_SKEW_SECONDS, seconds(&jwt.clock_skew));
        set(env::AUTH_JWT_MAX_LIFETIME_SECONDS, seconds(&jwt.max_token_lifetime));
    }
    if let Some(oauth) = &policy.mcp.oauth {
        set(env::MCP_OAUTH_ISSUER, oauth.issuer.clone());
        if let Some(jwks) = &oauth.jwks_uri {
            set(env::MCP_OAUTH_JWKS_URL, jwks.clone());
        }
        if !oauth.audiences.is_empty() {
            set(env::MCP_OAUTH_AUDIENCES, oauth.audiences.join(","));
        }
        if !oauth.scopes_supported.is_empty() {
            let scopes: Vec<&str> = oauth.scopes_supported.iter().map(|s| s.as_str()).collect();
            set(env::MCP_OAUTH_SCOPES_SUPPORTED, scopes.join(" "));
        }
        if let Some(url) = &oauth.resource_documentation {
            set(env::MCP_OAUTH_RESOURCE_DOCUMENTATION, url.clone());
        }
    }
}

fn seconds(duration: &kube::core::Duration) -> String {
    std::time::Duration::from(*duration).as_secs().to_string()
}

fn surfaces(agent: &MailAgent) -> String {
    let s = &agent.spec.surfaces;
    [("rest", s.rest), ("a2a", s.a2a), ("mcp", s.mcp)]
        .into_iter()
        .filter_map(|(name, on)| on.then_some(name))
        .collect::<Vec<_>>()
        .join(",")
}

/// The in-cluster names of the MCP Service plus any declared hosts, so in-cluster MCP clients
/// pass the DNS-rebinding check without anyone listing them.
fn allowed_hosts(agent: &MailAgent) -> Vec<String> {
    let name = super::service_name(&agent.name_any(), mailagent_crds::contract::Surface::Mcp);
    let ns = agent.namespace().unwrap_or_default();
    let mut hosts = vec![
        name.clone(),
        format!("{name}.{ns}"),
        format!("{name}.{ns}.svc"),
        format!("{name}.{ns}.svc.cluster.local"),
    ];
    if let Some(url) = &agent.spec.mcp.resource_server_url
        && let Some(host) = url.split("://").nth(1).and_then(|rest| rest.split(['/', '?', '#']).next())
    {
        hosts.push(host.to_owned());
    }
    hosts.extend(agent.spec.mcp.allowed_hosts.iter().cloned());
    hosts.dedup();
    hosts
}

fn hash<'a>(entries: impl Iterator<Item = (&'a String, &'a String)>) -> String {
    let mut hasher = Sha256::new();
    for (k, v) in entries {
        // Length-prefixed so ("a","bc") and ("ab","c") hash differently.
        for part in [k, v] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
    }
    format!("sha256:{}", &hex::encode(hasher.finalize())[..16])
}

/// The ConfigMap mounted at `contract::paths::CONFIG_DIR`.
pub fn config_map(agent: &MailAgent, config: &RenderedConfig) -> ConfigMap {
    ConfigMap {
        metadata: child_meta(agent, config_map_name(&agent.name_any())),
        data: Some(config.settings.clone()),
        ..ConfigMap::default()
    }
}

/// Name of the agent's settings ConfigMap.
pub fn config_map_name(agent: &str) -> String {
    mailagent_crds::names::config_map(agent)
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{agent, policy, valid};
    use super::*;

    #[test]
    fn settings_use_the_runbook_names_and_inherit_from_the_policy() {
        let agent = agent("{}");
        let policy = policy("mode: hybrid\napiKeys: [{name: ci, scopes: [mail:scan]}]\njwt: {audiences: [mailagent]}");
        let config = render_config(&valid(&agent, Some(&policy)));
        let s = &config.settings;
        assert_eq!(s["AUTH_MODE"], "hybrid");
        assert_eq!(s["MCP_AUTH_MODE"], "hybrid", "inherit falls through to the policy's mode");
        assert_eq!(s["MCP_ENABLE_MUTATION_TOOLS"], "false", "mutations are off unless asked for");
        assert_eq!(s["AUTH_JWT_CLOCK_SKEW_SECONDS"], "30");
        assert_eq!(s["AUTH_JWT_AUDIENCE"], "mailagent");
        assert_eq!(s["MAILAGENT_SURFACES"], "rest,a2a,mcp");
        assert!(s["MCP_ALLOWED_HOSTS"].contains("inbox-mcp.team.svc"));
        assert_eq!(s["AUTH_JWT_ALGORITHMS"], "HS256");
        assert!(!s.contains_key("AUTH_JWT_REQUIRED_TYP"), "no typ required unless the policy says so");
        assert_eq!(s["AUTH_SCOPES_CEILING"].split(' ').count(), 6, "the default ceiling is every scope");
    }

    #[test]
    fn a_gmail_agent_gets_its_quota_share_live_and_a_maildir_none() {
        let gmail = agent(
            "mailbox: {provider: gmail, credentialsSecretRef: {name: c}, quota: {group: acme, groupUnitsPerMinute: 3000}}\n\
             schedules: {scan: '0 * * * *'}",
        );
        let alone = render_config(&valid(&gmail, None));
        assert_eq!(alone.settings["GMAIL_QUOTA_UNITS_PER_MINUTE"], "3000", "a group of one, on its stated budget");
        assert_eq!(alone.settings["SCAN_SCHEDULE_DELAY_SECONDS"], "0");
        let share =
            QuotaStatus { units_per_minute: 150, scan_delay_seconds: 840, members: 20, ..QuotaStatus::default() };
        let in_group = render_config(&valid(&gmail, None).with_quota(Some(share.clone())));
        assert_eq!(in_group.settings["GMAIL_QUOTA_UNITS_PER_MINUTE"], "150");
        assert_eq!(in_group.settings["SCAN_SCHEDULE_DELAY_SECONDS"], "840");
        assert_eq!(in_group.quota, Some(share));
        assert_eq!(in_group.restart_hash, alone.restart_hash, "a new share never restarts the pods");

        let maildir = agent("schedules: {scan: '0 * * * *'}");
        let config = render_config(&valid(&maildir, None).with_quota(None));
        assert!(!config.settings.contains_key("GMAIL_QUOTA_UNITS_PER_MINUTE") && config.quota.is_none());
        assert!(!config.settings.contains_key("SCAN_SCHEDULE_DELAY_SECONDS"));
    }

    #[test]
    fn the_oauth_override_renders_its_audiences_scopes_and_documentation() {
        let agent = agent("{}");
        let bare = policy(
            "mode: api_key\napiKeys: [{name: ci, scopes: [mail:scan]}]\nmcp: {mode: oauth, oauth: {issuer: 'https://id.example', resource: 'https://mail.example/mcp'}}",
        );
        let s = render_config(&valid(&agent, Some(&bare))).settings;
        assert_eq!(s["MCP_OAUTH_ISSUER"], "https://id.example");
        for absent in ["MCP_OAUTH_AUDIENCES", "MCP_OAUTH_SCOPES_SUPPORTED", "MCP_OAUTH_RESOURCE_DOCUMENTATION"] {
            assert!(!s.contains_key(absent), "{absent} rendered with nothing to say");
        }
        let full = policy(
            "mode: api_key\napiKeys: [{name: ci, scopes: [mail:scan]}]\nmcp: {mode: oauth, oauth: {issuer: 'https://id.example', resource: 'https://mail.example/mcp', \
             audiences: ['https://old.example/mcp', 'https://mail.example/agent/mcp'], scopesSupported: [mail:scan, availability:read], \
             resourceDocumentation: 'https://docs.example/mail'}}",
        );
        let s = render_config(&valid(&agent, Some(&full))).settings;
        assert_eq!(s["MCP_OAUTH_AUDIENCES"], "https://old.example/mcp,https://mail.example/agent/mcp");
        assert_eq!(s["MCP_OAUTH_SCOPES_SUPPORTED"], "mail:scan availability:read");
        assert_eq!(s["MCP_OAUTH_RESOURCE_DOCUMENTATION"], "https://docs.example/mail");
    }

    #[test]
    fn the_policy_renders_its_ceiling_algorithms_and_typ() {
        let agent = agent("{}");
        let policy = policy(
            "mode: jwt\nscopes: [mail:scan, availability:read]\njwt: {audiences: [a], algorithms: [ES256, EdDSA], requiredTyp: at+jwt}",
        );
        let s = render_config(&valid(&agent, Some(&policy))).settings;
        assert_eq!(s["AUTH_SCOPES_CEILING"], "mail:scan availability:read");
        assert_eq!(s["AUTH_JWT_ALGORITHMS"], "ES256,EdDSA");
        assert_eq!(s["AUTH_JWT_REQUIRED_TYP"], "at+jwt");
    }

    #[test]
    fn agent_override_beats_policy_and_missing_policy_fails_closed() {
        let agent = agent("mcp: {authMode: api_key}");
        let policy = policy("mode: jwt\njwt: {audiences: [a]}\nmcp: {mode: jwt}");
        let config = render_config(&valid(&agent, Some(&policy)));
        assert_eq!(config.mcp_auth_mode, McpAuthMode::ApiKey);

        let orphan = render_config(&valid(&agent, None));
        assert_eq!(orphan.auth_mode, AuthMode::Jwt);
        assert!(!orphan.settings.contains_key("AUTH_JWT_AUDIENCE"), "no audience: no token can verify");
    }

    #[test]
    fn the_mutation_switch_does_not_change_the_restart_hash() {
        let off = agent("{}");
        let on = agent("mcp: {enableMutationTools: true}");
        let a = render_config(&valid(&off, None));
        let b = render_config(&valid(&on, None));
        assert_ne!(a.settings, b.settings);
        assert_eq!(a.restart_hash, b.restart_hash, "flipping the switch must not roll pods");

        let limited = agent("rateLimit: {perMinute: 5}");
        let c = render_config(&valid(&limited, None));
        assert_ne!(a.restart_hash, c.restart_hash, "a restart-only setting must roll pods");
    }
}
