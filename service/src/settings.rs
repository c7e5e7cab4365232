//! Settings: read once at start from the environment and the config directory, with the live
//! subset (mutation switch, keyring) re-read by [`crate::reload`].
//!
//! Precedence follows the contract: a file named after the setting in `MAILAGENT_CONFIG_DIR` wins
//! over the environment, because that directory is what the operator keeps current. Secret settings
//! also accept `NAME_FILE` (container secret convention); the value is never logged.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use mailagent_crds::contract::{self, AuthMode, MailboxProvider, McpAuthMode, Surface, defaults, env};
use mailagent_crds::{Scope, quota};
use mailagent_mail::live::Live;
use mailagent_schedule::{Schedule, Tz};

/// Largest clock skew an operator may configure; beyond this a stolen expired token lives on.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);
/// Skew used when none is configured.
pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(30);

/// Why the workload refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{name}: {message}")]
    Invalid { name: &'static str, message: String },
    #[error("{name}: cannot read {path}: {source}")]
    Unreadable { name: String, path: PathBuf, source: std::io::Error },
}

fn invalid(name: &'static str, message: impl Into<String>) -> SettingsError {
    SettingsError::Invalid { name, message: message.into() }
}

/// The space-separated scope names of setting `name`. An unknown name is an error naming the
/// setting and what was `expected`: a scope list the workload cannot read must not silently
/// grant or advertise more or less than it says.
pub(crate) fn scope_names(name: &'static str, raw: &str, expected: &str) -> Result<BTreeSet<Scope>, SettingsError> {
    raw.split_ascii_whitespace()
        .map(|scope| scope.parse::<Scope>().map_err(|e| invalid(name, format!("{e}; expected {expected}"))))
        .collect()
}

/// Where setting values come from: a snapshot of the environment plus the config directory.
#[derive(Clone, Debug, Default)]
pub struct Source {
    env: HashMap<String, String>,
    config_dir: Option<PathBuf>,
}

impl Source {
    /// The process environment, with `MAILAGENT_CONFIG_DIR` taken from it.
    pub fn from_process() -> Self {
        Self::from_map(std::env::vars().collect())
    }

    /// An explicit environment (tests, embedding).
    pub fn from_map(env: HashMap<String, String>) -> Self {
        let config_dir = env.get(env::MAILAGENT_CONFIG_DIR).filter(|d| !d.is_empty()).map(PathBuf::from);
        Self { env, config_dir }
    }

    /// The config directory, when one is set.
    pub fn config_dir(&self) -> Option<&Path> {
        self.config_dir.as_deref()
    }

    /// A plain setting: the config-dir file (trimmed) if present, else the environment variable.
    /// Empty values count as absent.
    pub fn get(&self, name: &str) -> Result<Option<String>, SettingsError> {
        if let Some(dir) = &self.config_dir {
            let path = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(value) => return Ok(non_empty(value)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(SettingsError::Unreadable { name: name.into(), path, source }),
            }
        }
        Ok(self.env.get(name).cloned().and_then(non_empty))
    }

    /// A secret setting: as [`Self::get`], then `NAME_FILE` pointing at a file with the value.
    pub fn secret(&self, name: &str) -> Result<Option<String>, SettingsError> {
        if let Some(value) = self.get(name)? {
            return Ok(Some(value));
        }
        let file_setting = format!("{name}{}", env::FILE_SUFFIX);
        let Some(path) = self.get(&file_setting)? else { return Ok(None) };
        let path = PathBuf::from(path);
        std::fs::read_to_string(&path).map(non_empty).map_err(|source| SettingsError::Unreadable {
            name: file_setting,
            path,
            source,
        })
    }

    fn parsed<T: std::str::FromStr>(&self, name: &'static str, default: T) -> Result<T, SettingsError>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(name)? {
            None => Ok(default),
            Some(raw) => raw.parse().map_err(|e| invalid(name, format!("{raw:?}: {e}"))),
        }
    }

    fn list(&self, name: &str) -> Result<Vec<String>, SettingsError> {
        Ok(self
            .get(name)?
            .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect())
            .unwrap_or_default())
    }
}

fn non_empty(value: String) -> Option<String> {
    let trimmed = value.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

/// How JWTs are judged (both the keyring's keys and the laptop secret).
#[derive(Clone, Debug)]
pub struct JwtPolicy {
    /// Required `iss`, when configured.
    pub issuer: Option<String>,
    /// Accepted audiences; when non-empty, `aud` is required and must contain one.
    pub audiences: Vec<String>,
    /// Leeway for `exp` and `nbf`.
    pub clock_skew: Duration,
    /// Longest accepted `exp - iat`.
    pub max_lifetime: Option<Duration>,
    /// Algorithms a keyring key may verify with (`AUTH_JWT_ALGORITHMS`); empty: each key's own.
    pub algorithms: Vec<jsonwebtoken::Algorithm>,
    /// The `typ` header every token must carry (`AUTH_JWT_REQUIRED_TYP`), case-insensitive.
    pub required_typ: Option<String>,
}

/// OAuth resource-server settings for `MCP_AUTH_MODE=oauth`.
#[derive(Clone, Debug)]
pub struct OauthSettings {
    /// The public `https://` MCP URL; the token audience and the PRM `resource`.
    pub resource: String,
    /// The trusted authorization server (token `iss`).
    pub issuer: String,
    /// Where the issuer's keys are published (`MCP_OAUTH_JWKS_URL`); absent, the `jwks_uri`
    /// of the issuer's metadata (RFC 8414, else OpenID discovery).
    pub jwks_url: Option<String>,
    /// `MCP_OAUTH_AUDIENCES`: other URLs of this endpoint a token may name instead of `resource`.
    pub audiences: Vec<String>,
    /// `MCP_OAUTH_SCOPES_SUPPORTED`: what the metadata may advertise (`None`: every offered scope).
    pub scopes_supported: Option<BTreeSet<Scope>>,
    /// `MCP_OAUTH_RESOURCE_DOCUMENTATION`: the metadata's `resource_documentation`.
    pub resource_documentation: Option<String>,
}

impl OauthSettings {
    /// The audiences a token may carry, one of which it must: the resource first.
    pub fn accepted_audiences(&self) -> Vec<String> {
        std::iter::once(&self.resource).chain(&self.audiences).cloned().collect()
    }
}

/// Every setting the workload reads at start.
#[derive(Clone, Debug)]
pub struct Settings {
    pub listen: SocketAddr,
    pub auth_mode: AuthMode,
    pub mcp_auth_mode: McpAuthMode,
    pub oauth: Option<OauthSettings>,
    pub jwt: JwtPolicy,
    /// `RATE_LIMIT_ENABLED`; when false, nothing is rate limited.
    pub rate_limit_enabled: bool,
    pub rate_per_minute: u32,
    pub rate_burst: u32,
    pub trusted_proxies: Vec<IpNet>,
    pub surfaces: BTreeSet<Surface>,
    pub mcp_allowed_hosts: Vec<String>,
    pub mcp_allowed_origins: Vec<String>,
    pub keyring_dir: Option<PathBuf>,
    pub state_dir: PathBuf,
    pub maildir: Option<PathBuf>,
    pub tls: Option<(PathBuf, PathBuf)>,
    /// `MAILAGENT_PUBLIC_URL` without a trailing slash: the base of the agent card's URLs.
    pub public_url: Option<String>,
    pub json_logs: bool,
    pub mail: MailSettings,
}

/// Where availability reads busy time (`CALENDAR_PROVIDER`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CalendarChoice {
    /// `CALENDAR_ICS_PATH`, else `calendar.ics` inside the Maildir when present.
    Ics(Option<PathBuf>),
    /// Google Calendar free/busy of these calendar ids (empty: `primary`).
    Google(Vec<String>),
    /// No calendar: every window is free.
    None,
}

/// The mail domain's settings: provider, credentials, endpoint overrides, calendar, digest.
#[derive(Clone, Debug)]
pub struct MailSettings {
    /// `MAILBOX_PROVIDER`: a Maildir (`MAILDIR_PATH`) by default, or Gmail with `token.json`
    /// from the credentials directory.
    pub provider: MailboxProvider,
    /// Holds `token.json` (and `client_secret.json`) for Google.
    pub credentials_dir: PathBuf,
    /// `GMAIL_API_BASE_URL`, trailing slash added.
    pub gmail_base_url: Option<String>,
    /// `GMAIL_FETCH_FORMAT=raw`.
    pub gmail_raw: bool,
    pub calendar: CalendarChoice,
    /// `GOOGLE_CALENDAR_BASE_URL`, trailing slash added.
    pub calendar_base_url: Option<String>,
    pub digest_recipient: Option<String>,
    /// `DIGEST_SCHEDULE`, read in `time_zone`: the operator validates it with the same type.
    pub digest_schedule: Option<Schedule>,
    /// `SCAN_SCHEDULE`, read in `time_zone`.
    pub scan_schedule: Option<Schedule>,
    /// `MAILAGENT_TIMEZONE` (default UTC): schedules and working hours.
    pub time_zone: Tz,
    /// `MAILDIR_AUTHSERV_ID`: whose `Authentication-Results` unsubscribe trusts in a Maildir.
    pub maildir_authserv_id: Option<String>,
    /// `GMAIL_QUOTA_UNITS_PER_MINUTE`: this mailbox's share of its quota group, re-read while
    /// running (clones share the cell, so the reload loop's change reaches the Gmail pacer).
    pub gmail_units_per_minute: Live,
    /// `SCAN_SCHEDULE_DELAY_SECONDS`, re-read while running.
    pub scan_delay_seconds: Live,
}

impl MailSettings {
    fn load(source: &Source) -> Result<Self, SettingsError> {
        let provider = source.parsed(env::MAILBOX_PROVIDER, defaults::MAILBOX_PROVIDER)?;
        let schedule = |name: &'static str| -> Result<Option<Schedule>, SettingsError> {
            let Some(raw) = source.get(name)? else { return Ok(None) };
            Schedule::parse(&raw).map(Some).map_err(|e| invalid(name, format!("{raw:?} is not a cron expression: {e}")))
        };
        let time_zone = match source.get(env::MAILAGENT_TIMEZONE)? {
            Some(raw) => mailagent_schedule::parse_time_zone(&raw)
                .map_err(|e| invalid(env::MAILAGENT_TIMEZONE, e.to_string()))?,
            None => mailagent_schedule::parse_time_zone(defaults::TIME_ZONE).expect("the default zone exists"),
        };
        let endpoint = |name: &'static str| -> Result<Option<String>, SettingsError> {
            match source.get(name)? {
                None => Ok(None),
                Some(url) => match mailagent_mail::endpoint::check(&url) {
                    Ok(_) => Ok(Some(if url.ends_with('/') { url } else { format!("{url}/") })),
                    Err(e) => Err(invalid(name, format!("{url:?} {e}"))),
                },
            }
        };
        let gmail_raw = match source.get(env::GMAIL_FETCH_FORMAT)?.as_deref() {
            None | Some("metadata") => false,
            Some("raw") => true,
            Some(other) => {
                return Err(invalid(env::GMAIL_FETCH_FORMAT, format!("{other:?}: expected metadata or raw")));
            }
        };
        let calendar = match source.get(env::CALENDAR_PROVIDER)?.as_deref() {
            None | Some("ics") => CalendarChoice::Ics(source.get(env::CALENDAR_ICS_PATH)?.map(PathBuf::from)),
            Some("google") => CalendarChoice::Google(source.list(env::GOOGLE_CALENDAR_IDS)?),
            Some("none") => CalendarChoice::None,
            Some(other) => {
                return Err(invalid(env::CALENDAR_PROVIDER, format!("{other:?}: expected ics, google or none")));
            }
        };
        let maildir_authserv_id = match source.get(env::MAILDIR_AUTHSERV_ID)? {
            Some(id) if id.is_empty() || !id.bytes().all(|b| b.is_ascii_graphic() && b != b';') => {
                return Err(invalid(
                    env::MAILDIR_AUTHSERV_ID,
                    format!("{id:?}: expected one authserv-id such as mx.example.com"),
                ));
            }
            id => id,
        };
        Ok(Self {
            maildir_authserv_id,
            provider,
            credentials_dir: source
                .get(env::MAILAGENT_CREDENTIALS_DIR)?
                .map(PathBuf::from)
                .unwrap_or_else(|| contract::paths::CREDENTIALS_DIR.into()),
            gmail_base_url: endpoint(env::GMAIL_API_BASE_URL)?,
            gmail_raw,
            calendar,
            calendar_base_url: endpoint(env::GOOGLE_CALENDAR_BASE_URL)?,
            digest_recipient: source.get(env::DIGEST_RECIPIENT)?,
            digest_schedule: schedule(env::DIGEST_SCHEDULE)?,
            scan_schedule: schedule(env::SCAN_SCHEDULE)?,
            time_zone,
            gmail_units_per_minute: Live::new(gmail_units_per_minute(source)?),
            scan_delay_seconds: Live::new(scan_delay_seconds(source)?),
        })
    }
}

impl Settings {
    /// Reads and validates everything; an error names the setting and why.
    pub fn load(source: &Source) -> Result<Self, SettingsError> {
        let auth_mode: AuthMode = source.parsed(env::AUTH_MODE, AuthMode::default())?;
        let mcp_auth_mode: McpAuthMode = source.parsed(env::MCP_AUTH_MODE, McpAuthMode::Inherit)?;
        let oauth = match mcp_auth_mode {
            McpAuthMode::Oauth => Some(oauth_settings(source)?),
            _ => None,
        };
        let clock_skew =
            Duration::from_secs(source.parsed(env::AUTH_JWT_CLOCK_SKEW_SECONDS, DEFAULT_CLOCK_SKEW.as_secs())?);
        if clock_skew > MAX_CLOCK_SKEW {
            return Err(invalid(
                env::AUTH_JWT_CLOCK_SKEW_SECONDS,
                format!("at most {} seconds", MAX_CLOCK_SKEW.as_secs()),
            ));
        }
        let max_lifetime = match source.get(env::AUTH_JWT_MAX_LIFETIME_SECONDS)? {
            None => None,
            Some(raw) => Some(Duration::from_secs(
                raw.parse().map_err(|e| invalid(env::AUTH_JWT_MAX_LIFETIME_SECONDS, format!("{raw:?}: {e}")))?,
            )),
        };
        let jwt = JwtPolicy {
            issuer: source.get(env::AUTH_JWT_ISSUER)?,
            audiences: source.list(env::AUTH_JWT_AUDIENCE)?,
            clock_skew,
            max_lifetime,
            algorithms: source
                .list(env::AUTH_JWT_ALGORITHMS)?
                .iter()
                .map(|a| {
                    a.parse().map_err(|_| invalid(env::AUTH_JWT_ALGORITHMS, format!("{a:?} is not a JWS algorithm")))
                })
                .collect::<Result<_, _>>()?,
            required_typ: source.get(env::AUTH_JWT_REQUIRED_TYP)?,
        };
        let rate_limit_enabled = contract::rate_limit_enabled(source.get(env::RATE_LIMIT_ENABLED)?.as_deref())
            .map_err(|e| invalid(env::RATE_LIMIT_ENABLED, e))?;
        let rate_per_minute = source.parsed(env::RATE_LIMIT_PER_MINUTE, defaults::RATE_LIMIT_PER_MINUTE)?;
        if rate_per_minute == 0 {
            return Err(invalid(env::RATE_LIMIT_PER_MINUTE, "must be at least 1"));
        }
        // Refused rather than raised to 1, as admission refuses `spec.rateLimit.burst: 0`: both
        // sides serve exactly the number written.
        let rate_burst = source.parsed(env::RATE_LIMIT_BURST, defaults::RATE_LIMIT_BURST)?;
        if rate_burst == 0 {
            return Err(invalid(env::RATE_LIMIT_BURST, "must be at least 1 (the request being served counts)"));
        }
        let trusted_proxies = source
            .list(env::TRUSTED_PROXIES)?
            .iter()
            .map(|cidr| parse_cidr(cidr).map_err(|e| invalid(env::TRUSTED_PROXIES, e)))
            .collect::<Result<_, _>>()?;
        let surfaces = match source.list(env::MAILAGENT_SURFACES)? {
            names if names.is_empty() => Surface::ALL.into(),
            names => names
                .iter()
                .map(|n| n.parse::<Surface>().map_err(|e| invalid(env::MAILAGENT_SURFACES, e)))
                .collect::<Result<_, _>>()?,
        };
        let listen = source.parsed(env::MAILAGENT_LISTEN, SocketAddr::from(([127, 0, 0, 1], contract::http::PORT)))?;
        let tls = match (source.get(env::TLS_CERT_PATH)?, source.get(env::TLS_KEY_PATH)?) {
            (Some(cert), Some(key)) => Some((cert.into(), key.into())),
            (None, None) => None,
            _ => return Err(invalid(env::TLS_CERT_PATH, "TLS_CERT_PATH and TLS_KEY_PATH must be set together")),
        };
        let public_url = match source.get(env::MAILAGENT_PUBLIC_URL)? {
            None => None,
            Some(raw) => Some(
                public_url(&raw, tls.is_some() || oauth.is_some())
                    .map_err(|message| invalid(env::MAILAGENT_PUBLIC_URL, format!("{raw:?} {message}")))?,
            ),
        };
        let mut mcp_allowed_hosts = source.list(env::MCP_ALLOWED_HOSTS)?;
        if let Some(oauth) = &oauth {
            mcp_allowed_hosts.extend(oauth.accepted_audiences().iter().filter_map(|url| host_of(url)));
        }
        Ok(Self {
            listen,
            auth_mode,
            mcp_auth_mode,
            oauth,
            jwt,
            rate_limit_enabled,
            rate_per_minute,
            rate_burst,
            trusted_proxies,
            surfaces,
            mcp_allowed_hosts,
            mcp_allowed_origins: source.list(env::MCP_ALLOWED_ORIGINS)?,
            keyring_dir: source.get(env::MAILAGENT_KEYRING_DIR)?.map(PathBuf::from),
            state_dir: source.get(env::MAILAGENT_STATE_DIR)?.map(PathBuf::from).unwrap_or_else(|| "state".into()),
            maildir: source.get(env::MAILDIR_PATH)?.map(PathBuf::from),
            tls,
            public_url,
            json_logs: source.get(env::LOG_FORMAT)?.as_deref() != Some("text"),
            mail: MailSettings::load(source)?,
        })
    }
}

fn oauth_settings(source: &Source) -> Result<OauthSettings, SettingsError> {
    let resource = source.get(env::MCP_RESOURCE_SERVER_URL)?.ok_or_else(|| {
        invalid(env::MCP_RESOURCE_SERVER_URL, "required when MCP_AUTH_MODE=oauth (the public https:// URL of /mcp)")
    })?;
    contract::check_oauth_resource(&resource).map_err(|message| invalid(env::MCP_RESOURCE_SERVER_URL, message))?;
    let issuer = source
        .get(env::MCP_OAUTH_ISSUER)?
        .ok_or_else(|| invalid(env::MCP_OAUTH_ISSUER, "required when MCP_AUTH_MODE=oauth"))?;
    // The issuer is fetched from (its metadata documents), so it obeys the endpoint rule too.
    mailagent_mail::endpoint::check(&issuer).map_err(|e| invalid(env::MCP_OAUTH_ISSUER, format!("{issuer:?} {e}")))?;
    let jwks_url = source.get(env::MCP_OAUTH_JWKS_URL)?;
    if let Some(url) = &jwks_url {
        mailagent_mail::endpoint::check(url).map_err(|e| invalid(env::MCP_OAUTH_JWKS_URL, format!("{url:?} {e}")))?;
    }
    let audiences = source.list(env::MCP_OAUTH_AUDIENCES)?;
    for audience in &audiences {
        contract::check_oauth_resource(audience).map_err(|message| invalid(env::MCP_OAUTH_AUDIENCES, message))?;
    }
    let scopes_supported = source
        .get(env::MCP_OAUTH_SCOPES_SUPPORTED)?
        .map(|raw| scope_names(env::MCP_OAUTH_SCOPES_SUPPORTED, &raw, "scope names separated by spaces"))
        .transpose()?;
    let resource_documentation = source.get(env::MCP_OAUTH_RESOURCE_DOCUMENTATION)?;
    if let Some(url) = &resource_documentation
        && !url.starts_with("https://")
    {
        return Err(invalid(env::MCP_OAUTH_RESOURCE_DOCUMENTATION, format!("{url:?} must be an https:// URL")));
    }
    Ok(OauthSettings { resource, issuer, jwks_url, audiences, scopes_supported, resource_documentation })
}

/// Validates `MAILAGENT_PUBLIC_URL`: absolute `http(s)://` with a host, no credentials, query or
/// fragment; `https` when `need_https` (TLS served here, or an OAuth resource that is https).
/// Returned without a trailing slash so paths append directly.
fn public_url(raw: &str, need_https: bool) -> Result<String, String> {
    let url = url::Url::parse(raw).map_err(|e| format!("is not an absolute URL: {e}"))?;
    match url.scheme() {
        "https" => {}
        "http" if !need_https => {}
        "http" => return Err("must be https:// when TLS is served or MCP_AUTH_MODE=oauth".into()),
        other => return Err(format!("has scheme {other:?}; expected http:// or https://")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment".into());
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    Some(authority.rsplit_once(':').map(|(h, _)| h).unwrap_or(authority).to_owned())
}

fn parse_cidr(text: &str) -> Result<IpNet, String> {
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{text:?} is not an IP address or CIDR"))
}

/// `GMAIL_QUOTA_UNITS_PER_MINUTE` (the grammar is the contract's), read at start and on reload.
pub fn gmail_units_per_minute(source: &Source) -> Result<u32, SettingsError> {
    let raw = source.get(env::GMAIL_QUOTA_UNITS_PER_MINUTE)?;
    quota::parse_units_per_minute(raw.as_deref()).map_err(|e| invalid(env::GMAIL_QUOTA_UNITS_PER_MINUTE, e))
}

/// `SCAN_SCHEDULE_DELAY_SECONDS`, read at start and on reload.
pub fn scan_delay_seconds(source: &Source) -> Result<u32, SettingsError> {
    let raw = source.get(env::SCAN_SCHEDULE_DELAY_SECONDS)?;
    quota::parse_scan_delay(raw.as_deref()).map_err(|e| invalid(env::SCAN_SCHEDULE_DELAY_SECONDS, e))
}

/// The live mutation switch, read fresh on every reload (fail closed).
pub fn mutation_switch(source: &Source) -> bool {
    contract::mutation_tools_enabled(source.get(env::MCP_ENABLE_MUTATION_TOOLS).ok().flatten().as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(pairs: &[(&str, &str)]) -> Source {
        Source::from_map(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn oauth_refuses_a_plain_http_resource() {
        let err = Settings::load(&source(&[
            ("MCP_AUTH_MODE", "oauth"),
            ("MCP_RESOURCE_SERVER_URL", "http://mail.example.com/mcp"),
            ("MCP_OAUTH_ISSUER", "https://issuer.example.com"),
        ]))
        .unwrap_err();
        assert!(err.to_string().starts_with("MCP_RESOURCE_SERVER_URL"), "{err}");
    }

    #[test]
    fn oauth_adds_the_public_host_to_the_mcp_allow_list() {
        let settings = Settings::load(&source(&[
            ("MCP_AUTH_MODE", "oauth"),
            ("MCP_RESOURCE_SERVER_URL", "https://mail.example.com/mcp"),
            ("MCP_OAUTH_ISSUER", "https://issuer.example.com"),
        ]))
        .unwrap();
        assert_eq!(settings.mcp_allowed_hosts, ["mail.example.com"]);
        let moved = Settings::load(&source(&[
            ("MCP_AUTH_MODE", "oauth"),
            ("MCP_RESOURCE_SERVER_URL", "https://mail.example.com/mcp"),
            ("MCP_OAUTH_ISSUER", "https://issuer.example.com"),
            ("MCP_OAUTH_AUDIENCES", "https://old.example.com:8443/mcp"),
        ]))
        .unwrap();
        assert_eq!(moved.mcp_allowed_hosts, ["mail.example.com", "old.example.com"]);
        assert_eq!(settings.oauth.unwrap().jwks_url, None, "discovered from the issuer's metadata");
    }

    #[test]
    fn config_dir_file_wins_over_environment_and_file_suffix_reads_secrets() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("AUTH_MODE"), "hybrid\n").unwrap();
        let secret = dir.path().join("key");
        std::fs::write(&secret, "from-file\n").unwrap();
        let src = source(&[
            ("AUTH_MODE", "jwt"),
            ("MAILAGENT_CONFIG_DIR", dir.path().to_str().unwrap()),
            ("AGENT_API_KEY_FILE", secret.to_str().unwrap()),
        ]);
        assert_eq!(Settings::load(&src).unwrap().auth_mode, AuthMode::Hybrid);
        assert_eq!(src.secret("AGENT_API_KEY").unwrap().as_deref(), Some("from-file"));
    }

    #[test]
    fn bad_values_name_the_setting() {
        for (name, value) in [
            ("AUTH_MODE", "oauth"),
            ("AUTH_JWT_CLOCK_SKEW_SECONDS", "3600"),
            ("TRUSTED_PROXIES", "x"),
            ("RATE_LIMIT_PER_MINUTE", "0"),
            // Refused as admission refuses `rateLimit.burst: 0`, not served as 1 (issue 8).
            ("RATE_LIMIT_BURST", "0"),
            // A typo must neither switch the limits off nor pass unnoticed.
            ("RATE_LIMIT_ENABLED", "flase"),
        ] {
            let err = Settings::load(&source(&[(name, value)])).unwrap_err();
            assert!(err.to_string().starts_with(name), "{err}");
        }
        let oauth = [
            ("MCP_AUTH_MODE", "oauth"),
            ("MCP_RESOURCE_SERVER_URL", "https://mail.example.com/mcp"),
            ("MCP_OAUTH_ISSUER", "https://issuer.example.com"),
        ];
        for (name, value) in [
            ("MCP_OAUTH_AUDIENCES", "https://old.example.com/mcp,http://plain.example.com/mcp"),
            ("MCP_OAUTH_AUDIENCES", "https://old.example.com/mcp/"),
            ("MCP_OAUTH_SCOPES_SUPPORTED", "mail:scan mail:send"),
            ("MCP_OAUTH_RESOURCE_DOCUMENTATION", "http://docs.example.com"),
        ] {
            let mut pairs = oauth.to_vec();
            pairs.push((name, value));
            let err = Settings::load(&source(&pairs)).unwrap_err();
            assert!(err.to_string().starts_with(name), "{err}");
        }
    }

    #[test]
    fn rate_limits_are_on_unless_switched_off_explicitly() {
        let enabled = |pairs: &[(&str, &str)]| Settings::load(&source(pairs)).unwrap().rate_limit_enabled;
        assert!(enabled(&[]));
        assert!(enabled(&[("RATE_LIMIT_ENABLED", "true")]));
        assert!(!enabled(&[("RATE_LIMIT_ENABLED", "false")]));
        assert!(!enabled(&[("RATE_LIMIT_ENABLED", "0")]));
    }

    #[test]
    fn public_url_is_validated_and_normalised() {
        let load = |pairs: &[(&str, &str)]| Settings::load(&source(pairs)).map(|s| s.public_url);
        let ok = load(&[("MAILAGENT_PUBLIC_URL", "https://Mail.Example.com/agent/")]).unwrap();
        assert_eq!(ok.as_deref(), Some("https://mail.example.com/agent"));
        let plain = load(&[("MAILAGENT_PUBLIC_URL", "http://mailagent.mail.svc:8080")]).unwrap();
        assert_eq!(plain.as_deref(), Some("http://mailagent.mail.svc:8080"));
        assert_eq!(load(&[]).unwrap(), None);
        for bad in [
            "mail.example.com",
            "ftp://mail.example.com",
            "https://u:p@mail.example.com",
            "https://x/?a=1",
            "https://x/#f",
        ] {
            let err = load(&[("MAILAGENT_PUBLIC_URL", bad)]).unwrap_err();
            assert!(err.to_string().starts_with("MAILAGENT_PUBLIC_URL"), "{bad}: {err}");
        }
        let tls = [
            ("TLS_CERT_PATH", "/c.pem"),
            ("TLS_KEY_PATH", "/k.pem"),
            ("MAILAGENT_PUBLIC_URL", "http://mail.example.com"),
        ];
        assert!(load(&tls).unwrap_err().to_string().contains("https"));
    }

    #[test]
    fn mail_settings_default_to_maildir_and_check_overrides() {
        let settings = Settings::load(&source(&[])).unwrap();
        assert_eq!(settings.mail.provider, MailboxProvider::Maildir);
        assert_eq!(settings.mail.calendar, CalendarChoice::Ics(None));
        assert_eq!(settings.mail.credentials_dir, PathBuf::from(contract::paths::CREDENTIALS_DIR));
        assert_eq!(settings.mail.maildir_authserv_id, None, "nothing is trusted unless configured");
        let trusted = Settings::load(&source(&[("MAILDIR_AUTHSERV_ID", "mx.home.example")])).unwrap();
        assert_eq!(trusted.mail.maildir_authserv_id.as_deref(), Some("mx.home.example"));
        let settings = Settings::load(&source(&[
            ("MAILBOX_PROVIDER", "gmail"),
            ("GMAIL_API_BASE_URL", "http://127.0.0.1:4000"),
            ("CALENDAR_PROVIDER", "google"),
            ("GOOGLE_CALENDAR_IDS", "primary, team@group.example"),
            ("GOOGLE_CALENDAR_BASE_URL", "http://127.0.0.1:4000/calendar/v3"),
        ]))
        .unwrap();
        assert_eq!(settings.mail.provider, MailboxProvider::Gmail);
        assert_eq!(settings.mail.gmail_base_url.as_deref(), Some("http://127.0.0.1:4000/"));
        assert_eq!(settings.mail.calendar_base_url.as_deref(), Some("http://127.0.0.1:4000/calendar/v3/"));
        assert_eq!(settings.mail.calendar, CalendarChoice::Google(vec!["primary".into(), "team@group.example".into()]));
        for (name, value) in [
            ("MAILBOX_PROVIDER", "imap"),
            ("GMAIL_API_BASE_URL", "http://gmail.example.com/"),
            ("CALENDAR_PROVIDER", "outlook"),
            ("GMAIL_FETCH_FORMAT", "full"),
            ("MAILDIR_AUTHSERV_ID", "mx.example.com; dkim=pass"),
            ("DIGEST_SCHEDULE", "0 0 8 * * *"),
            ("SCAN_SCHEDULE", "every morning"),
            ("MAILAGENT_TIMEZONE", "Mars/Olympus"),
        ] {
            let err = Settings::load(&source(&[(name, value)])).unwrap_err();
            assert!(err.to_string().starts_with(name), "{err}");
        }
    }

    /// Issue 8, defect 3: absent settings mean what the CRD's defaults mean.
    #[test]
    fn defaults_are_the_crds() {
        let settings = Settings::load(&source(&[])).unwrap();
        let spec = mailagent_crds::mailagent::RateLimit::default();
        assert_eq!((settings.rate_per_minute, settings.rate_burst), (spec.per_minute, spec.burst));
        assert_eq!((settings.rate_per_minute, settings.rate_burst), (60, 10));
        assert_eq!(settings.mail.time_zone, Tz::UTC);
        assert_eq!(settings.surfaces, Surface::ALL.into());
    }

    /// Issue 8, defect 1: what the operator admits, the workload starts with.
    #[test]
    fn schedules_are_parsed_at_load_in_the_crontab_grammar() {
        let settings = Settings::load(&source(&[
            ("DIGEST_SCHEDULE", "0 8 * * 0"),
            ("SCAN_SCHEDULE", "@annually"),
            ("MAILAGENT_TIMEZONE", "Europe/Berlin"),
        ]))
        .unwrap();
        assert_eq!(settings.mail.digest_schedule.as_ref().map(Schedule::as_str), Some("0 8 * * 0"));
        assert_eq!(settings.mail.scan_schedule.as_ref().map(Schedule::as_str), Some("@annually"));
        assert_eq!(settings.mail.time_zone, Tz::Europe__Berlin);
    }

    #[test]
    fn endpoints_are_judged_by_their_parsed_host() {
        // Regression: a string-prefix check took `localhost:1@` for a loopback host; the host is
        // evil.example, so plain http there is refused like any other remote host.
        let sneaky = "http://localhost:1@evil.example/";
        for name in ["GMAIL_API_BASE_URL", "GOOGLE_CALENDAR_BASE_URL"] {
            let err = Settings::load(&source(&[(name, sneaky)])).unwrap_err();
            assert!(err.to_string().starts_with(name), "{err}");
        }
        let oauth = |issuer: &str, jwks: &str| {
            Settings::load(&source(&[
                ("MCP_AUTH_MODE", "oauth"),
                ("MCP_RESOURCE_SERVER_URL", "https://mail.example.com/mcp"),
                ("MCP_OAUTH_ISSUER", issuer),
                ("MCP_OAUTH_JWKS_URL", jwks),
            ]))
        };
        let err = oauth("https://issuer.example.com", sneaky).unwrap_err();
        assert!(err.to_string().starts_with("MCP_OAUTH_JWKS_URL"), "{err}");
        let err = oauth(sneaky, "https://issuer.example.com/keys").unwrap_err();
        assert!(err.to_string().starts_with("MCP_OAUTH_ISSUER"), "{err}");
        assert!(oauth("http://127.0.0.1:9/realms/x", "http://localhost:9/keys").is_ok());
    }

    #[test]
    fn mutation_switch_is_off_unless_explicitly_on() {
        assert!(!mutation_switch(&source(&[])));
        assert!(!mutation_switch(&source(&[("MCP_ENABLE_MUTATION_TOOLS", "ture")])));
        assert!(mutation_switch(&source(&[("MCP_ENABLE_MUTATION_TOOLS", "true")])));
    }
}
