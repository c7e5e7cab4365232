//! The operator-workload contract, in one place.
//!
//! The operator renders these names; the workload reads them. Setting names are the runbooks'
//! environment variable names, and they mean the same thing whether they arrive as environment
//! variables (a laptop, `make run`) or as files named after them in [`paths::CONFIG_DIR`] (a pod,
//! rendered from a `MailAgent` into a ConfigMap). A file in the config directory wins over the
//! environment, because the directory is what the operator keeps current and what the workload
//! hot-reloads.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Scope;

/// Setting names (environment variables, or file names in the config directory).
pub mod env {
    /// `api_key`, `jwt` or `hybrid`: how REST and A2A callers authenticate (`hybrid`: the API key
    /// first, then a JWT). Default `jwt`; `oauth` is for MCP only (`MCP_AUTH_MODE`).
    pub const AUTH_MODE: &str = "AUTH_MODE";
    /// `inherit` (default), `api_key`, `jwt`, `hybrid` or `oauth`: MCP-only override of
    /// [`AUTH_MODE`]. `oauth` makes `/mcp` an OAuth 2.1 resource server and needs
    /// [`MCP_RESOURCE_SERVER_URL`] and [`MCP_OAUTH_ISSUER`].
    pub const MCP_AUTH_MODE: &str = "MCP_AUTH_MODE";
    /// The public `https://` URL of the MCP endpoint, without fragment or trailing slash (it is
    /// compared byte for byte with a token's audience); required when `MCP_AUTH_MODE=oauth`.
    pub const MCP_RESOURCE_SERVER_URL: &str = "MCP_RESOURCE_SERVER_URL";
    /// `true` lists and allows mutation tools. Absent or unparsable means `false` (fail closed).
    pub const MCP_ENABLE_MUTATION_TOOLS: &str = "MCP_ENABLE_MUTATION_TOOLS";
    /// The OAuth authorization server (issuer URL, `https://`) trusted in `oauth` mode; required
    /// there. Its keys are found through its RFC 8414 metadata, else OpenID discovery.
    pub const MCP_OAUTH_ISSUER: &str = "MCP_OAUTH_ISSUER";
    /// The issuer's JWKS URL; discovered from the issuer metadata when absent.
    pub const MCP_OAUTH_JWKS_URL: &str = "MCP_OAUTH_JWKS_URL";
    /// Comma-separated further audiences an OAuth token may carry instead of
    /// [`MCP_RESOURCE_SERVER_URL`]: other public URLs of this same MCP endpoint (a host being
    /// moved). Each is written as [`MCP_RESOURCE_SERVER_URL`] is; their hosts pass the `Host`
    /// check.
    pub const MCP_OAUTH_AUDIENCES: &str = "MCP_OAUTH_AUDIENCES";
    /// Space-separated scope names the protected-resource metadata may advertise in
    /// `scopes_supported`; of them, only those the policy offers at the time are listed (the
    /// document never advertises what the doors would refuse). Absent: every offered scope.
    pub const MCP_OAUTH_SCOPES_SUPPORTED: &str = "MCP_OAUTH_SCOPES_SUPPORTED";
    /// An `https://` URL of human-readable documentation, served as the protected-resource
    /// metadata's `resource_documentation` (RFC 9728).
    pub const MCP_OAUTH_RESOURCE_DOCUMENTATION: &str = "MCP_OAUTH_RESOURCE_DOCUMENTATION";
    /// The policy ceiling (an `AuthPolicy`'s `spec.scopes`): space-separated scope names no
    /// caller may exceed, whatever its key or token grants. Absent: no ceiling. `none`: no scope
    /// at all (an empty `spec.scopes`; an empty value would read as absent). Hot-reloaded.
    pub const AUTH_SCOPES_CEILING: &str = "AUTH_SCOPES_CEILING";
    /// Laptop mode: the single shared API key, holding every scope (hashed in memory, never
    /// logged). In a pod the keyring replaces it.
    pub const AGENT_API_KEY: &str = "AGENT_API_KEY";
    /// Laptop mode: the single HMAC secret for HS256 JWTs, at least 32 bytes (RFC 7518 3.2: an
    /// HS256 key is at least as long as the hash); a shorter one stops the start. In a pod the
    /// keyring replaces it.
    pub const AUTH_JWT_SECRET: &str = "AUTH_JWT_SECRET";
    /// Expected JWT issuer (`iss`).
    pub const AUTH_JWT_ISSUER: &str = "AUTH_JWT_ISSUER";
    /// Expected JWT audience (`aud`); comma-separated for several.
    pub const AUTH_JWT_AUDIENCE: &str = "AUTH_JWT_AUDIENCE";
    /// Comma-separated JWT algorithms accepted (e.g. `ES256`); a keyring key of another algorithm
    /// verifies nothing. Absent: each key's own algorithm.
    pub const AUTH_JWT_ALGORITHMS: &str = "AUTH_JWT_ALGORITHMS";
    /// The `typ` header every token must carry (e.g. `at+jwt`), compared case-insensitively.
    pub const AUTH_JWT_REQUIRED_TYP: &str = "AUTH_JWT_REQUIRED_TYP";
    /// Allowed clock skew in seconds for `exp`, `nbf` and `iat`: default 30, at most 300.
    pub const AUTH_JWT_CLOCK_SKEW_SECONDS: &str = "AUTH_JWT_CLOCK_SKEW_SECONDS";
    /// Longest accepted `exp - iat`, in seconds.
    pub const AUTH_JWT_MAX_LIFETIME_SECONDS: &str = "AUTH_JWT_MAX_LIFETIME_SECONDS";
    /// Whether requests are rate limited at all: `true` (default) or `false` (also `1`/`0`,
    /// `yes`/`no`, `on`/`off`); anything else stops the start. The operator never turns it off:
    /// a MailAgent always has limits.
    pub const RATE_LIMIT_ENABLED: &str = "RATE_LIMIT_ENABLED";
    /// Requests per minute per principal and per client address (default 60). Health and
    /// metrics routes need no credentials but count against the address.
    pub const RATE_LIMIT_PER_MINUTE: &str = "RATE_LIMIT_PER_MINUTE";
    /// Requests allowed at once, refilled at the steady rate; at least 1 (the request being
    /// served counts), as `spec.rateLimit.burst` (default 10).
    pub const RATE_LIMIT_BURST: &str = "RATE_LIMIT_BURST";
    /// Comma-separated CIDRs whose `X-Forwarded-For` is believed.
    pub const TRUSTED_PROXIES: &str = "TRUSTED_PROXIES";
    /// Serve TLS with this certificate chain (PEM); reloaded when it changes.
    pub const TLS_CERT_PATH: &str = "TLS_CERT_PATH";
    /// The private key for [`TLS_CERT_PATH`].
    pub const TLS_KEY_PATH: &str = "TLS_KEY_PATH";
    /// The absolute URL clients reach this workload at (e.g. `https://mail.example.com`, optionally
    /// with a path prefix): the agent card's interface URLs are built from it instead of the
    /// request's `Host`. Must be `https://` when TLS is served in-process or `MCP_AUTH_MODE=oauth`;
    /// plain `http://` is accepted otherwise (cluster-internal or loopback names).
    pub const MAILAGENT_PUBLIC_URL: &str = "MAILAGENT_PUBLIC_URL";
    /// Comma-separated surfaces to serve: any of `rest`, `a2a`, `mcp` (default: all three).
    pub const MAILAGENT_SURFACES: &str = "MAILAGENT_SURFACES";
    /// `host:port` to listen on (default `127.0.0.1:8080`; a pod listens on all interfaces).
    pub const MAILAGENT_LISTEN: &str = "MAILAGENT_LISTEN";
    /// Comma-separated `Host` header values the MCP endpoint accepts besides the loopback names
    /// (DNS rebinding protection). The OAuth resource's host is added. Absent: loopback names
    /// only when listening on loopback, and no `Host` check otherwise.
    pub const MCP_ALLOWED_HOSTS: &str = "MCP_ALLOWED_HOSTS";
    /// Comma-separated `Origin` values the MCP endpoint accepts.
    pub const MCP_ALLOWED_ORIGINS: &str = "MCP_ALLOWED_ORIGINS";
    /// Directory of setting files (a mounted ConfigMap), watched and hot-reloaded.
    pub const MAILAGENT_CONFIG_DIR: &str = "MAILAGENT_CONFIG_DIR";
    /// Directory holding `keyring.json` (a mounted Secret: API keys as hashes, JWT verification
    /// keys), watched and hot-reloaded.
    pub const MAILAGENT_KEYRING_DIR: &str = "MAILAGENT_KEYRING_DIR";
    /// Directory holding the mailbox credentials (`token.json`, `client_secret.json`).
    pub const MAILAGENT_CREDENTIALS_DIR: &str = "MAILAGENT_CREDENTIALS_DIR";
    /// Directory of durable state; the runbooks' `data/*.json` live below it. Default `state` in
    /// the working directory; a pod mounts its volume at `/var/lib/mailagent`.
    pub const MAILAGENT_STATE_DIR: &str = "MAILAGENT_STATE_DIR";
    /// `gmail` or `maildir`.
    pub const MAILBOX_PROVIDER: &str = "MAILBOX_PROVIDER";
    /// The Maildir directory for the `maildir` provider; default `Maildir` in the state directory.
    pub const MAILDIR_PATH: &str = "MAILDIR_PATH";
    /// The `authserv-id` (RFC 8601) of the mail server that delivers into the Maildir, e.g.
    /// `mx.home.example`, or `mx.google.com` for a Maildir synced from Gmail. Unsubscribe trusts
    /// only the topmost `Authentication-Results` carrying this id; unset, no unsubscribe runs
    /// unattended. Gmail's own id is built in.
    pub const MAILDIR_AUTHSERV_ID: &str = "MAILDIR_AUTHSERV_ID";
    /// Override of the Gmail API endpoint, used as both `base_url` and `root_url` (trailing slash
    /// added), e.g. `http://127.0.0.1:4000/` for the Google emulator in tests. Default
    /// `https://gmail.googleapis.com/`; plain `http://` is accepted on loopback only.
    pub const GMAIL_API_BASE_URL: &str = "GMAIL_API_BASE_URL";
    /// How Gmail messages are read: `metadata` (default; only the headers triage needs) or `raw`
    /// (same quota cost, whole messages; for servers that drop list headers from `metadata`).
    pub const GMAIL_FETCH_FORMAT: &str = "GMAIL_FETCH_FORMAT";
    /// Gmail quota units per sliding minute this mailbox may spend: its share of its quota
    /// group's budget (`docs/scale.md`), 100 to 15,000 (the per-user quota, the default).
    /// Re-read while running: a fleet that grows or shrinks re-paces without a restart.
    pub const GMAIL_QUOTA_UNITS_PER_MINUTE: &str = "GMAIL_QUOTA_UNITS_PER_MINUTE";
    /// Where availability reads busy time: `ics` (default: [`CALENDAR_ICS_PATH`], else
    /// `calendar.ics` inside the Maildir when present), `google` (Google Calendar free/busy of
    /// [`GOOGLE_CALENDAR_IDS`] with the mailbox credentials, scope `calendar.freebusy`), or `none`.
    pub const CALENDAR_PROVIDER: &str = "CALENDAR_PROVIDER";
    /// The iCalendar file for `CALENDAR_PROVIDER=ics`.
    pub const CALENDAR_ICS_PATH: &str = "CALENDAR_ICS_PATH";
    /// Comma-separated Google calendar ids for `CALENDAR_PROVIDER=google` (default `primary`).
    pub const GOOGLE_CALENDAR_IDS: &str = "GOOGLE_CALENDAR_IDS";
    /// Override of the Google Calendar API base (the `.../calendar/v3/` prefix), e.g.
    /// `http://127.0.0.1:4000/calendar/v3/` for the emulator. Default
    /// `https://www.googleapis.com/calendar/v3/`; plain `http://` on loopback only.
    pub const GOOGLE_CALENDAR_BASE_URL: &str = "GOOGLE_CALENDAR_BASE_URL";
    /// Where the digest goes (the mailbox owner's address).
    pub const DIGEST_RECIPIENT: &str = "DIGEST_RECIPIENT";
    /// Cron expression for the digest (five fields or a macro, see `mailagent_schedule`); empty
    /// disables it.
    pub const DIGEST_SCHEDULE: &str = "DIGEST_SCHEDULE";
    /// Cron expression for the periodic inbox scan; empty disables it.
    pub const SCAN_SCHEDULE: &str = "SCAN_SCHEDULE";
    /// Seconds after each [`SCAN_SCHEDULE`] slot that the scan starts (0 to 3600, default 0), so
    /// that the agents of one quota group do not all scan in the same minute. Re-read while running.
    pub const SCAN_SCHEDULE_DELAY_SECONDS: &str = "SCAN_SCHEDULE_DELAY_SECONDS";
    /// IANA time zone for schedules and working hours.
    pub const MAILAGENT_TIMEZONE: &str = "MAILAGENT_TIMEZONE";
    /// `json` (default) or `text` log lines.
    pub const LOG_FORMAT: &str = "LOG_FORMAT";

    /// The suffix that turns any secret setting into a path: `AGENT_API_KEY_FILE=/run/secrets/key`.
    pub const FILE_SUFFIX: &str = "_FILE";
}

/// Where the operator mounts things in the workload's pod.
pub mod paths {
    /// Mounted ConfigMap of setting files.
    pub const CONFIG_DIR: &str = "/etc/mailagent/config";
    /// Mounted keyring Secret (directory mount, never `subPath`, so rotation reaches running pods).
    pub const KEYRING_DIR: &str = "/etc/mailagent/keyring";
    /// Mounted mailbox credentials Secret.
    pub const CREDENTIALS_DIR: &str = "/etc/mailagent/credentials";
    /// The state volume (PersistentVolumeClaim).
    pub const STATE_DIR: &str = "/var/lib/mailagent";
    /// Scratch space on a memory-backed `emptyDir` (the root filesystem is read-only).
    pub const TMP_DIR: &str = "/tmp";
}

/// File names inside those directories.
pub mod files {
    /// The keyring document ([`super::Keyring`]) inside the keyring directory.
    pub const KEYRING: &str = "keyring.json";
    /// The public JWT keys as a JWKS, in the `<policy>-jwks` ConfigMap.
    pub const JWKS: &str = "jwks.json";
    /// A client's API key inside its `<policy>-client-<name>` Secret.
    pub const CLIENT_API_KEY: &str = "api-key";
    /// The kid of that key, beside it.
    pub const CLIENT_KID: &str = "kid";
    /// The signing material and key history inside the `<policy>-signer` Secret.
    pub const SIGNER_STATE: &str = "signer.json";
    /// Gmail OAuth authorized-user token, as the runbooks name it.
    pub const GMAIL_TOKEN: &str = "token.json";
    /// Google OAuth client secret file.
    pub const GMAIL_CLIENT_SECRET: &str = "client_secret.json";
    // The state directory's layout (the Maildir, `calendar.ics`, the runbooks' `data/*.json`)
    // belongs to the mail domain: `mailagent_mail::layout`. The operator only mounts the volume.
}

/// Defaults both sides apply: the CRD's `default` for a field the user left out, and the
/// workload's value for a setting that is absent (a laptop, `make run`).
pub mod defaults {
    /// [`super::env::RATE_LIMIT_PER_MINUTE`] and `spec.rateLimit.perMinute`.
    pub const RATE_LIMIT_PER_MINUTE: u32 = 60;
    /// [`super::env::RATE_LIMIT_BURST`] and `spec.rateLimit.burst`.
    pub const RATE_LIMIT_BURST: u32 = 10;
    /// [`super::env::MAILAGENT_TIMEZONE`] and `spec.schedules.timeZone`.
    pub const TIME_ZONE: &str = "UTC";
    /// [`super::env::MAILBOX_PROVIDER`] when absent (the workload only: the CRD requires it).
    pub const MAILBOX_PROVIDER: super::MailboxProvider = super::MailboxProvider::Maildir;
}

/// Ports and paths of the workload's HTTP server.
pub mod http {
    /// The one serving port (REST, A2A, MCP, health, metrics).
    pub const PORT: u16 = 8080;
    /// Name of that port on the container and the Service.
    pub const PORT_NAME: &str = "http";
    /// Health, as the runbooks' canary checks it (the same answer as [`HEALTHZ`]).
    pub const HEALTH: &str = "/health";
    /// Liveness.
    pub const HEALTHZ: &str = "/healthz";
    /// Readiness.
    pub const READYZ: &str = "/readyz";
    /// Prometheus metrics.
    pub const METRICS: &str = "/metrics";
    /// The MCP Streamable HTTP endpoint.
    pub const MCP: &str = "/mcp";
    /// The A2A JSON-RPC endpoint.
    pub const A2A: &str = "/a2a";
    /// The A2A agent card.
    pub const AGENT_CARD: &str = "/.well-known/agent-card.json";
    /// The public JWT verification keys of the policy's keyring (ES256, EdDSA), as a JWKS.
    pub const JWKS: &str = "/.well-known/jwks.json";
}

/// How REST and A2A callers authenticate (`AUTH_MODE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// `X-API-Key` header, compared in constant time against stored hashes.
    ApiKey,
    /// `Authorization: Bearer` JWT with scope checks.
    #[default]
    Jwt,
    /// API key first, then JWT fallback.
    Hybrid,
}

impl AuthMode {
    /// The security schemes a door in this mode declares (agent card `securitySchemes`, OpenAPI),
    /// by name, in the order it tries them: what the operator's probe expects on the card.
    pub const fn scheme_names(self) -> &'static [&'static str] {
        match self {
            AuthMode::ApiKey => &["apiKey"],
            AuthMode::Jwt => &["bearer"],
            AuthMode::Hybrid => &["apiKey", "bearer"],
        }
    }
}

/// How MCP callers authenticate (`MCP_AUTH_MODE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum McpAuthMode {
    /// Use [`AuthMode`].
    #[default]
    Inherit,
    /// `X-API-Key` only.
    ApiKey,
    /// Bearer JWT only.
    Jwt,
    /// API key first, then JWT fallback.
    Hybrid,
    /// OAuth 2.1 resource server (RFC 9728 metadata, issuer JWKS, audience = resource URL).
    Oauth,
}

macro_rules! wire_enum {
    ($ty:ty { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// The wire name, as the runbooks spell it.
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $name),+ }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
        impl FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s.trim() {
                    $($name => Ok(Self::$variant),)+
                    other => Err(format!(
                        "{other:?} is not one of {}", [$($name),+].join(", ")
                    )),
                }
            }
        }
    };
}

wire_enum!(AuthMode { ApiKey => "api_key", Jwt => "jwt", Hybrid => "hybrid" });
wire_enum!(McpAuthMode {
    Inherit => "inherit", ApiKey => "api_key", Jwt => "jwt", Hybrid => "hybrid", Oauth => "oauth"
});

/// A served surface (front door).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Surface {
    /// REST under `/v1` plus the OpenAPI document.
    Rest,
    /// Agent2Agent JSON-RPC plus the agent card.
    A2a,
    /// MCP Streamable HTTP at `/mcp`.
    Mcp,
}

wire_enum!(Surface { Rest => "rest", A2a => "a2a", Mcp => "mcp" });

impl Surface {
    /// Every surface, in the order they are listed and served.
    pub const ALL: [Surface; 3] = [Surface::Rest, Surface::A2a, Surface::Mcp];
}

/// Where the mail lives (`MAILBOX_PROVIDER`, `spec.mailbox.provider`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MailboxProvider {
    /// Gmail through the Gmail API (OAuth token in the credentials Secret).
    Gmail,
    /// A Maildir directory, by default `Maildir/` on the state volume; for trials and tests.
    Maildir,
}

wire_enum!(MailboxProvider { Gmail => "gmail", Maildir => "maildir" });

/// Parses `MCP_ENABLE_MUTATION_TOOLS`. Only an explicit true turns mutations on; anything absent or
/// unparsable is off, because an incident responder's typo must never re-enable sending mail.
pub fn mutation_tools_enabled(value: Option<&str>) -> bool {
    matches!(value.map(|v| v.trim().to_ascii_lowercase()).as_deref(), Some("true" | "1" | "yes" | "on"))
}

/// Parses `RATE_LIMIT_ENABLED`: absent is on, and only an explicit false turns the limits off. A
/// value that is neither is refused rather than read either way, so a typo neither drops the
/// protection nor goes unnoticed.
pub fn rate_limit_enabled(value: Option<&str>) -> Result<bool, String> {
    match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None | Some("true" | "1" | "yes" | "on") => Ok(true),
        Some("false" | "0" | "no" | "off") => Ok(false),
        Some(other) => Err(format!("{other:?} is neither true nor false")),
    }
}

/// Checks an OAuth resource URL (`MCP_RESOURCE_SERVER_URL` in `oauth` mode): `https://`, no
/// fragment, no trailing slash, since it is compared byte for byte with a token's audience and
/// served as RFC 9728's `resource`. The workload refuses to start on `Err`; the operator refuses
/// to render it, with the same sentence.
pub fn check_oauth_resource(url: &str) -> Result<(), String> {
    if !url.starts_with("https://") || url.contains('#') || url.ends_with('/') {
        return Err(format!("{url:?} must be an https:// URL without fragment or trailing slash"));
    }
    Ok(())
}

/// The lifecycle of one key, modelled on cert-manager's issuance: verifiers learn a key before
/// issuers use it, and keep accepting it for an overlap after issuers stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum KeyState {
    /// Distributed to verifiers, not yet issued or handed to clients.
    Staged,
    /// The key clients are given and issuers sign with.
    Active,
    /// No longer issued; still accepted until the overlap ends.
    Verifying,
    /// Past its overlap; no longer accepted.
    Retired,
    /// Withdrawn in an emergency; never accepted again.
    Revoked,
}

impl KeyState {
    /// Whether a verifier accepts credentials made with a key in this state.
    pub const fn accepted(self) -> bool {
        matches!(self, KeyState::Staged | KeyState::Active | KeyState::Verifying)
    }
}

/// The document in [`files::KEYRING`]: every key the workload may accept. Written whole by the
/// rotation step and swapped atomically by the kubelet; the workload re-reads it on change.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Keyring {
    /// Format version of this document; the workload refuses versions it does not know.
    pub schema: u32,
    /// Monotonic revision from the owning `AuthPolicy` status.
    #[serde(default)]
    pub revision: u64,
    /// API keys, stored as SHA-256 hashes only.
    #[serde(default)]
    pub api_keys: Vec<ApiKeyEntry>,
    /// JWT verification keys.
    #[serde(default)]
    pub jwt_keys: Vec<JwtKeyEntry>,
}

/// The keyring format version this code reads and writes.
pub const KEYRING_SCHEMA: u32 = 1;

/// One API key: the verifier side never holds the key itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyEntry {
    /// Key id, unique within the keyring.
    pub kid: String,
    /// The client this key belongs to (becomes the principal name).
    pub client: String,
    /// Lowercase hex SHA-256 of the key bytes.
    pub sha256: String,
    /// What the client may do.
    pub scopes: Vec<Scope>,
    /// Lifecycle state; only accepted states authenticate.
    pub state: KeyState,
    /// RFC 3339 instant after which the key is no longer accepted, whatever its state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
}

/// One JWT verification key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JwtKeyEntry {
    /// Key id, matched against the token header's `kid`.
    pub kid: String,
    /// The one algorithm this key verifies (`HS256`, `RS256`, `ES256`, `EdDSA`); never taken from the token.
    pub alg: String,
    /// For HMAC algorithms: the secret, base64 (standard alphabet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// For asymmetric algorithms: the public key as a PEM document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_pem: Option<String>,
    /// Lifecycle state; only accepted states verify.
    pub state: KeyState,
    /// RFC 3339 instant after which the key is no longer accepted, whatever its state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
}

/// A short, non-reversible fingerprint of secret material for logs, events and status:
/// the first 12 hex digits of its SHA-256. Never log the value itself.
pub fn fingerprint(secret: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(secret);
    format!("sha256:{}", &hex::encode(digest)[..12])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutation_switch_fails_closed() {
        for off in [None, Some(""), Some("false"), Some("0"), Some("flase"), Some("no"), Some("maybe")] {
            assert!(!mutation_tools_enabled(off), "{off:?} must mean off");
        }
        for on in ["true", "TRUE", " 1 ", "yes", "on"] {
            assert!(mutation_tools_enabled(Some(on)), "{on:?} must mean on");
        }
    }

    #[test]
    fn wire_enums_round_trip_through_their_names() {
        for surface in Surface::ALL {
            assert_eq!(surface.as_str().parse::<Surface>().unwrap(), surface);
            assert_eq!(serde_json::to_value(surface).unwrap(), surface.as_str());
        }
        for provider in [MailboxProvider::Gmail, MailboxProvider::Maildir] {
            assert_eq!(provider.as_str().parse::<MailboxProvider>().unwrap(), provider);
            assert_eq!(serde_json::to_value(provider).unwrap(), provider.as_str());
        }
        assert!("imap".parse::<MailboxProvider>().unwrap_err().contains("gmail, maildir"));
    }

    #[test]
    fn modes_parse_the_runbook_spellings_only() {
        assert_eq!("hybrid".parse::<AuthMode>().unwrap(), AuthMode::Hybrid);
        assert_eq!("oauth".parse::<McpAuthMode>().unwrap(), McpAuthMode::Oauth);
        let err = "oauth".parse::<AuthMode>().unwrap_err();
        assert!(err.contains("api_key, jwt, hybrid"), "{err}");
    }

    #[test]
    fn keyring_round_trips_and_uses_camel_case() {
        let keyring = Keyring {
            schema: KEYRING_SCHEMA,
            revision: 3,
            api_keys: vec![ApiKeyEntry {
                kid: "k1".into(),
                client: "ci".into(),
                sha256: "ab".repeat(32),
                scopes: vec![Scope::MailScan],
                state: KeyState::Active,
                not_after: None,
            }],
            jwt_keys: vec![],
        };
        let json = serde_json::to_string(&keyring).unwrap();
        assert!(json.contains("\"apiKeys\"") && json.contains("\"mail:scan\""), "{json}");
        assert_eq!(serde_json::from_str::<Keyring>(&json).unwrap(), keyring);
    }

    #[test]
    fn fingerprint_is_short_and_stable() {
        assert_eq!(fingerprint(b"secret"), "sha256:2bb80d537b1d");
    }
}
