//! `AuthPolicy`: who may call a MailAgent, with which scopes, and how its keys rotate.
// `printcolumn(type_ = "string", ...)` repeats by design; clippy reads it as a duplicate attribute.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::core::Duration;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Scope;
use crate::conditions::conditions_schema;
use crate::contract::{AuthMode, KeyState, McpAuthMode};

/// Authentication and authorisation for the MailAgents that reference it: the auth mode per
/// door, the scopes callers may hold, API key clients, JWT validation, and key rotation with
/// overlap plus a declarative emergency revoke.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "mailagent.dev",
    version = "v1alpha1",
    kind = "AuthPolicy",
    namespaced,
    status = "AuthPolicyStatus",
    shortname = "ap",
    // Not the kind's singular name: kubectl expands a category before it looks up a resource,
    // so a category `mailagent` made `kubectl get mailagent NAME` mean both kinds (issue 8).
    // `kubectl get mail` lists every mailagent.dev object.
    category = "mail",
    derive = "PartialEq",
    doc = "Auth mode, scopes, API key clients, JWT validation and key rotation for MailAgents.",
    validation = Rule::new(crate::names::AUTHPOLICY_NAME_RULE).message(crate::names::AUTHPOLICY_NAME_MESSAGE),
    printcolumn(name = "Mode", type_ = "string", json_path = ".spec.mode"),
    printcolumn(name = "MCP", type_ = "string", priority = 1, json_path = ".spec.mcp.mode"),
    printcolumn(name = "Current Kid", type_ = "string", json_path = ".status.currentKid"),
    printcolumn(name = "Valid Keys", type_ = "integer", json_path = ".status.validKeys"),
    printcolumn(name = "Revision", type_ = "integer", priority = 1, json_path = ".status.revision"),
    printcolumn(name = "Next Rotation", type_ = "string", json_path = ".status.nextRotationTime"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[x_kube(validation = Rule::new("self.mode == 'api_key' || has(self.jwt)")
    .message("jwt settings are required when mode is jwt or hybrid")
    .field_path(".jwt"))]
#[x_kube(validation = Rule::new("self.mode == 'jwt' || size(self.apiKeys) > 0")
    .message("at least one apiKeys client is required when mode is api_key or hybrid")
    .field_path(".apiKeys"))]
#[x_kube(validation = Rule::new("self.apiKeys.all(c, c.scopes.all(s, s in self.scopes))")
    .message("every apiKeys client scope must also be listed in scopes")
    .field_path(".apiKeys"))]
#[x_kube(validation = Rule::new("!has(self.rotation) || !has(self.jwt) || duration(self.rotation.overlap) >= duration(self.jwt.maxTokenLifetime)")
    .message("rotation.overlap must be at least jwt.maxTokenLifetime: a token signed just before a rotation must keep working until it expires")
    .field_path(".rotation.overlap"))]
#[serde(rename_all = "camelCase")]
pub struct AuthPolicySpec {
    /// How REST and A2A callers authenticate: `api_key` (X-API-Key), `jwt` (Bearer), or `hybrid`
    /// (API key first, then JWT fallback).
    pub mode: AuthMode,

    /// MCP-only override, including OAuth 2.1 resource-server mode.
    #[serde(default)]
    pub mcp: McpAuth,

    /// The scopes this policy grants at all (a ceiling for every caller). Default: all six.
    #[serde(default = "all_scopes")]
    #[schemars(length(max = 6))]
    pub scopes: Vec<Scope>,

    /// API key clients. Each gets its own key, delivered in a Secret named
    /// `<policy>-client-<name>`; the workload only ever sees hashes.
    #[serde(default)]
    #[schemars(length(max = 64))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub api_keys: Vec<ApiKeyClient>,

    /// JWT validation, required for `jwt` and `hybrid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<JwtSettings>,

    /// Scheduled key rotation with overlap. Absent: keys are minted once and never rotated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<Rotation>,

    /// Emergency revoke: the listed kids stop working at once, skipping any overlap; if the
    /// active key is among them a replacement is minted. Keep it in Git as the audit trail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation: Option<Revocation>,
}

fn all_scopes() -> Vec<Scope> {
    Scope::ALL.to_vec()
}

/// How a MailAgent's MCP door authenticates: its own `mcp.authMode` wins; `inherit` takes the
/// policy's MCP mode (see [`AuthPolicySpec::mcp_mode`]); with no policy, JWT.
pub fn served_mcp_mode(agent: McpAuthMode, policy: Option<&AuthPolicySpec>) -> McpAuthMode {
    match agent {
        McpAuthMode::Inherit => policy.map_or(McpAuthMode::Jwt, AuthPolicySpec::mcp_mode),
        own => own,
    }
}

impl AuthPolicySpec {
    /// How the MCP door authenticates under this policy alone: `inherit` resolves to `mode`.
    /// A MailAgent's own `mcp.authMode` overrides it.
    pub fn mcp_mode(&self) -> McpAuthMode {
        match (self.mcp.mode, self.mode) {
            (McpAuthMode::Inherit, AuthMode::ApiKey) => McpAuthMode::ApiKey,
            (McpAuthMode::Inherit, AuthMode::Jwt) => McpAuthMode::Jwt,
            (McpAuthMode::Inherit, AuthMode::Hybrid) => McpAuthMode::Hybrid,
            (explicit, _) => explicit,
        }
    }
}

/// MCP-only authentication override.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[x_kube(validation = Rule::new("self.mode != 'oauth' || has(self.oauth)")
    .message("mcp.mode oauth needs mcp.oauth: the issuer, audiences and resource URL")
    .field_path(".oauth"))]
#[serde(rename_all = "camelCase")]
pub struct McpAuth {
    /// `inherit` uses `mode`; otherwise MCP callers authenticate this way.
    #[serde(default)]
    pub mode: McpAuthMode,
    /// OAuth 2.1 resource-server settings, for `oauth`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth: Option<OAuthResourceServer>,
}

/// The MCP endpoint as an OAuth 2.1 resource server (RFC 9728 protected-resource metadata).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OAuthResourceServer {
    /// The authorization server's issuer URL; tokens must carry it as `iss`.
    #[x_kube(validation = Rule::new("self.startsWith('https://')").message("oauth.issuer must be an https:// URL"))]
    #[schemars(length(max = 2048))]
    pub issuer: String,
    /// The public URL of the MCP endpoint: the metadata's `resource`, and a required token audience.
    #[x_kube(validation = Rule::new("self.startsWith('https://') && !self.contains('#') && !self.endsWith('/')")
        .message("oauth.resource must be an https:// URL without a fragment or trailing slash"))]
    #[schemars(length(max = 2048))]
    pub resource: String,
    /// Further accepted token audiences besides `resource`: other public URLs of this same MCP
    /// endpoint (a host being moved). Their hosts also pass the MCP `Host` check.
    #[serde(default)]
    #[x_kube(validation = Rule::new("self.all(a, a.startsWith('https://') && !a.contains('#') && !a.endsWith('/'))")
        .message("oauth.audiences must be https:// URLs without a fragment or trailing slash"))]
    #[schemars(length(max = 16), inner(length(max = 2048)))]
    pub audiences: Vec<String>,
    /// The issuer's JWKS URL; discovered from the issuer's metadata when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.startsWith('https://')").message("oauth.jwksUri must be an https:// URL"))]
    #[schemars(length(max = 2048))]
    pub jwks_uri: Option<String>,
    /// Scopes the metadata's `scopes_supported` may advertise; of them, only those the policy
    /// offers at the time are listed. Default: every scope the policy offers.
    #[serde(default)]
    #[schemars(length(max = 6))]
    pub scopes_supported: Vec<Scope>,
    /// Human-readable documentation URL for the metadata's `resource_documentation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.startsWith('https://')")
        .message("oauth.resourceDocumentation must be an https:// URL"))]
    #[schemars(length(max = 2048))]
    pub resource_documentation: Option<String>,
}

/// One API key client.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct ApiKeyClient {
    /// Client name: a DNS label; becomes the principal and part of the Secret name.
    #[schemars(length(min = 1, max = 40), regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub name: String,
    /// What the client may do.
    #[schemars(length(min = 1, max = 6))]
    pub scopes: Vec<Scope>,
}

/// JWT validation settings. Defaults follow RFC 8725, not the library's lax defaults.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct JwtSettings {
    /// Required `iss`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub issuer: Option<String>,
    /// Accepted audiences; a token's `aud` must contain one.
    #[schemars(length(min = 1, max = 16))]
    pub audiences: Vec<String>,
    /// Allowed algorithms. Each key verifies with exactly one; the token's `alg` never chooses.
    #[serde(default = "default_algorithms")]
    #[schemars(length(min = 1, max = 4))]
    #[x_kube(validation = Rule::new("self.all(a, a.startsWith('HS')) || self.all(a, !a.startsWith('HS'))")
        .message("jwt.algorithms must not mix HMAC (HS*) and asymmetric algorithms: that mix enables key-confusion attacks"))]
    pub algorithms: Vec<JwtAlgorithm>,
    /// Tolerated clock difference for `exp`, `nbf` and `iat`; at most 5m.
    #[serde(default = "default_clock_skew")]
    #[x_kube(validation = Rule::new("duration(self) >= duration('0s') && duration(self) <= duration('5m')")
        .message("jwt.clockSkew must be between 0s and 5m"))]
    #[schemars(length(max = 32), regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"))]
    pub clock_skew: Duration,
    /// Longest accepted token lifetime (`exp - iat`).
    #[serde(default = "default_max_lifetime")]
    #[x_kube(validation = Rule::new("duration(self) > duration('0s') && duration(self) <= duration('24h')")
        .message("jwt.maxTokenLifetime must be between 1s and 24h"))]
    #[schemars(length(max = 32), regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"))]
    pub max_token_lifetime: Duration,
    /// Required `typ` header (e.g. `at+jwt`), when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub required_typ: Option<String>,
}

fn default_algorithms() -> Vec<JwtAlgorithm> {
    vec![JwtAlgorithm::HS256]
}

fn default_clock_skew() -> Duration {
    "30s".parse().expect("valid duration")
}

fn default_max_lifetime() -> Duration {
    "1h".parse().expect("valid duration")
}

/// JWT signature algorithms the workload can verify.
#[allow(clippy::upper_case_acronyms)]
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum JwtAlgorithm {
    /// HMAC with SHA-256 (the runbooks' `AUTH_JWT_SECRET`).
    HS256,
    /// HMAC with SHA-384.
    HS384,
    /// HMAC with SHA-512.
    HS512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// ECDSA P-256 with SHA-256.
    ES256,
    /// Ed25519.
    EdDSA,
}

impl JwtAlgorithm {
    /// The JWS `alg` name.
    pub const fn as_str(self) -> &'static str {
        match self {
            JwtAlgorithm::HS256 => "HS256",
            JwtAlgorithm::HS384 => "HS384",
            JwtAlgorithm::HS512 => "HS512",
            JwtAlgorithm::RS256 => "RS256",
            JwtAlgorithm::ES256 => "ES256",
            JwtAlgorithm::EdDSA => "EdDSA",
        }
    }
}

/// Rotation timing, modelled on cert-manager: a period or a cron schedule, an overlap during
/// which the old and the new key both work, and a cap on valid keys.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(validation = Rule::new("has(self.every) != has(self.schedule)")
    .message("rotation needs exactly one of every (a period like 720h) or schedule (a cron expression)"))]
#[x_kube(validation = Rule::new("!has(self.every) || duration(self.overlap) < duration(self.every)")
    .message("rotation.overlap must be shorter than rotation.every, or two rotations would overlap")
    .field_path(".overlap"))]
#[x_kube(validation = Rule::new("!has(self.every) || duration(self.every) >= duration(self.overlap) + duration(self.propagation)")
    .message("rotation.every must be at least overlap + propagation: a new key is published one propagation before it is used, and the old one stays valid for the overlap")
    .field_path(".every"))]
#[x_kube(validation = Rule::new("duration(self.overlap) >= duration(self.propagation)")
    .message("rotation.overlap must be at least rotation.propagation (default 2m): clients get the new key through a mounted Secret one kubelet sync after the switch, so a shorter overlap cuts off those that have not seen it yet")
    .field_path(".overlap"))]
#[x_kube(validation = Rule::new("!has(self.schedule) || !self.schedule.matches('^[*]( |/)')")
    .message("rotation.schedule fires every few minutes, more often than overlap + propagation allows; the operator reports the exact minimum gap in status")
    .field_path(".schedule"))]
#[x_kube(validation = Rule::new("duration(self.overlap) == duration('0s') || self.maxValidKeys >= 2")
    .message("rotation.maxValidKeys must be at least 2 when overlap is set: the old and new keys are both valid during the overlap")
    .field_path(".maxValidKeys"))]
#[serde(rename_all = "camelCase")]
pub struct Rotation {
    /// Rotate this long after the previous rotation, e.g. `720h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("duration(self) >= duration('1m')").message("rotation.every must be at least 1m"))]
    #[schemars(length(max = 32), regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"))]
    pub every: Option<Duration>,
    /// Rotate on this cron schedule, e.g. `0 3 1 * *`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(crate::CRON_RULE).message(crate::CRON_MESSAGE))]
    #[schemars(length(max = 128))]
    pub schedule: Option<String>,
    /// IANA time zone for `schedule`.
    #[serde(default = "utc")]
    #[schemars(length(min = 1, max = 64))]
    pub time_zone: String,
    /// How long the previous key keeps working after a new one becomes active. Make it longer
    /// than client refresh plus `propagation`; at least `propagation`.
    #[serde(default = "default_overlap")]
    #[schemars(length(max = 32), regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"))]
    pub overlap: Duration,
    /// How long a changed Secret may take to reach a running pod: new keys are published to the
    /// workload this long before anything signs or hands out with them. The kubelet resyncs each
    /// pod every `syncFrequency` plus up to half again (its jitter), so the default, 2m, covers
    /// the default 1m `syncFrequency` with 30s to spare. Set it to your kubelets'
    /// `syncFrequency` times 1.5 plus a margin.
    #[serde(default = "default_propagation")]
    #[x_kube(validation = Rule::new("duration(self) >= duration('10s') && duration(self) <= duration('15m')")
        .message("rotation.propagation must be between 10s and 15m"))]
    #[schemars(length(max = 32), regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"))]
    pub propagation: Duration,
    /// Most keys valid at once, per purpose.
    #[serde(default = "default_max_valid_keys")]
    #[schemars(range(min = 1, max = 5))]
    pub max_valid_keys: i32,
    /// Pause scheduled rotation (manual rotation and revocation still work).
    #[serde(default)]
    pub suspend: bool,
}

fn utc() -> String {
    crate::contract::defaults::TIME_ZONE.to_owned()
}

fn default_overlap() -> Duration {
    "24h".parse().expect("valid duration")
}

/// [`Rotation::propagation`] when absent: the kubelet's default 1m `syncFrequency`, plus its
/// jitter (up to half again), plus 30s.
pub const DEFAULT_PROPAGATION: std::time::Duration = std::time::Duration::from_secs(120);

fn default_propagation() -> Duration {
    Duration::from(DEFAULT_PROPAGATION)
}

fn default_max_valid_keys() -> i32 {
    2
}

/// A declarative emergency revoke.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("size(self.kids) > 0 || has(self.issuedBefore)")
    .message("revocation needs kids, issuedBefore, or both"))]
#[serde(rename_all = "camelCase")]
pub struct Revocation {
    /// Key ids to revoke (see `status.keys`).
    #[serde(default)]
    #[schemars(length(max = 32))]
    pub kids: Vec<String>,
    /// Also revoke every key minted before this instant (RFC 3339). Must not be in the future.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_before: Option<Time>,
    /// Why, for the audit trail and events.
    #[schemars(length(min = 1, max = 1024))]
    pub reason: String,
}

/// Rotation state as observed. Fingerprints only; key material never appears here.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthPolicyStatus {
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Degraded, Rotating, Revoking.
    #[serde(default)]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// Monotonic keyring revision.
    #[serde(default)]
    pub revision: i64,
    /// The kid issuers and clients should use now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_kid: Option<String>,
    /// Every key the controller tracks.
    #[serde(default)]
    pub keys: Vec<KeyStatus>,
    /// When the last rotation happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_rotation_time: Option<Time>,
    /// When the next scheduled rotation is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_rotation_time: Option<Time>,
    /// Keys a verifier accepts now (Staged, Active, Verifying and unexpired).
    #[serde(default)]
    pub valid_keys: i32,
    /// The manual-rotation nonce (annotation `mailagent.dev/rotate`) already acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_rotate_nonce: Option<String>,
    /// Rotation or revoke steps that failed since the last success.
    #[serde(default)]
    pub failed_attempts: i32,
    /// When the last failure happened; the next attempt waits an exponential backoff after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure_time: Option<Time>,
    /// Who may do what under this policy: one entry per API key client and per kind of bearer
    /// token, with the REST routes, A2A skills and MCP tools its scopes open on the policy's doors.
    #[serde(default)]
    pub permissions: Vec<Permission>,
    /// The MailAgents that reference this policy, with the MCP auth mode each one serves and the
    /// mutation capabilities switched off there (on every door).
    #[serde(default)]
    pub mail_agents: Vec<AgentAccess>,
}

/// What one principal may do, derived from the policy's scopes, modes and the capability table.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Permission {
    /// `apiKey/<client>`, `jwt` (bearer tokens that `spec.jwt` accepts, at most the policy's
    /// scopes, narrowed by each token's `scope` claim) or `oauth` (MCP bearer tokens from
    /// `spec.mcp.oauth.issuer`, likewise capped).
    pub principal: String,
    /// The scopes it may hold: its own (API keys) or the policy's ceiling (bearer tokens).
    pub scopes: Vec<Scope>,
    /// REST routes it may call (`POST /v1/...`), where its credential is accepted on REST.
    #[serde(default)]
    pub rest: Vec<String>,
    /// A2A skills it may invoke, where its credential is accepted on A2A.
    #[serde(default)]
    pub a2a_skills: Vec<String>,
    /// MCP tools it may call, where its credential is accepted on MCP (by the policy's MCP mode;
    /// a MailAgent's own `mcp.authMode` may differ, see `mailAgents`).
    #[serde(default)]
    pub mcp_tools: Vec<String>,
}

/// One MailAgent under the policy.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentAccess {
    /// The MailAgent's name.
    pub name: String,
    /// How its MCP door authenticates (its own override, else the policy's).
    pub mcp_auth_mode: McpAuthMode,
    /// Mutation capabilities refused there on every door because `mcp.enableMutationTools` is off.
    #[serde(default)]
    pub mutation_tools_off: Vec<String>,
}

/// One key as observed.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyStatus {
    /// Key id.
    pub kid: String,
    /// `apiKey` or `jwt`.
    pub purpose: KeyPurpose,
    /// The API key client, for API keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// Lifecycle state.
    pub state: KeyState,
    /// `sha256:` and 12 hex digits of the key; never the key.
    pub fingerprint: String,
    /// When the key was minted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Time>,
    /// When it becomes (or became) the Active key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activates_at: Option<Time>,
    /// When it stops being accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Time>,
}

/// What a key is for.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum KeyPurpose {
    /// An API key for one client.
    ApiKey,
    /// A JWT signing/verification key.
    Jwt,
}

// The names derived from a policy's name live in `crate::names`, with the length limits they set.
pub use crate::names::{
    client_secret as client_secret_name, jwks_config_map as jwks_config_map_name,
    keyring_secret as keyring_secret_name, rotation_cronjob as rotator_name, signer_secret as signer_secret_name,
};

/// Annotation requesting one manual rotation; its value is a nonce recorded in
/// `status.lastHandledRotateNonce` so each value rotates once.
pub const ROTATE_ANNOTATION: &str = "mailagent.dev/rotate";

/// How long a changed Secret may take to reach this policy's pods ([`Rotation::propagation`]):
/// a new key is published this long before it is used. A policy without `rotation` (manual
/// rotation only) waits [`DEFAULT_PROPAGATION`].
pub fn propagation(spec: &AuthPolicySpec) -> std::time::Duration {
    spec.rotation.as_ref().map_or(DEFAULT_PROPAGATION, |rotation| rotation.propagation.into())
}
