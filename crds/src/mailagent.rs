//! `MailAgent`: one mailbox, one assistant, served over REST, A2A and MCP.
// `printcolumn(type_ = "string", ...)` repeats by design; clippy reads it as a duplicate attribute.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::api::networking::v1::{NetworkPolicyEgressRule, NetworkPolicyPeer};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::conditions::conditions_schema;
pub use crate::contract::MailboxProvider;
use crate::contract::{AuthMode, McpAuthMode, defaults};

/// A mail assistant for one mailbox: the operator turns it into a ServiceAccount, ConfigMap,
/// Deployment, Service, PersistentVolumeClaim and NetworkPolicy, hardened to the Pod Security
/// Standards `restricted` profile, with auth driven by the referenced `AuthPolicy`.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "mailagent.dev",
    version = "v1alpha1",
    kind = "MailAgent",
    namespaced,
    status = "MailAgentStatus",
    shortname = "ma",
    // Not the kind's singular name: kubectl expands a category before it looks up a resource,
    // so a category `mailagent` made `kubectl get mailagent NAME` mean both kinds (issue 8).
    // `kubectl get mail` lists every mailagent.dev object.
    category = "mail",
    derive = "PartialEq",
    doc = "A mail assistant for one mailbox, served over REST, A2A and MCP.",
    validation = Rule::new(crate::names::MAILAGENT_NAME_RULE).message(crate::names::MAILAGENT_NAME_MESSAGE),
    printcolumn(name = "Provider", type_ = "string", json_path = ".spec.mailbox.provider"),
    printcolumn(name = "Auth", type_ = "string", json_path = ".status.authMode"),
    printcolumn(name = "MCP Auth", type_ = "string", json_path = ".status.mcpAuthMode"),
    printcolumn(name = "Mutations", type_ = "boolean", json_path = ".spec.mcp.enableMutationTools"),
    printcolumn(name = "Suspended", type_ = "boolean", json_path = ".spec.suspend"),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type==\"Ready\")].status"),
    printcolumn(
        name = "Reason",
        type_ = "string",
        priority = 1,
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(
        name = "Verified",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Verified\")].status"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[x_kube(validation = Rule::new("self.replicas <= 1 || self.storage.accessMode == 'ReadWriteMany'")
    .message("replicas above 1 need storage.accessMode ReadWriteMany: the state volume has one writer, and a ReadWriteOnce volume cannot be shared between pods")
    .field_path(".replicas"))]
#[x_kube(validation = Rule::new("self.surfaces.rest || self.surfaces.a2a || self.surfaces.mcp")
    .message("at least one surface (rest, a2a, mcp) must be served; use suspend to take the agent offline")
    .field_path(".surfaces"))]
#[serde(rename_all = "camelCase")]
pub struct MailAgentSpec {
    /// Container image of the mailagent workload, e.g. `registry.example/mailagent:0.1.0`.
    #[x_kube(validation = Rule::new("self.size() > 0").message("image must not be empty"))]
    #[schemars(length(max = 512))]
    pub image: String,

    /// When the kubelet pulls the image.
    #[serde(default)]
    pub image_pull_policy: ImagePullPolicy,

    /// Pods to run. 0 stops the agent like `suspend` does; more than 1 needs ReadWriteMany state
    /// storage, and the workload then still lets only one pod write state at a time.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0, max = 10))]
    pub replicas: i32,

    /// CPU and memory for the workload container. Defaults: requests 50m CPU and 64Mi memory,
    /// limit 256Mi memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// The `AuthPolicy` in this namespace that decides who may call this agent and with which
    /// scopes. The agent is not made ready until it exists.
    pub auth_policy_ref: LocalObjectRef,

    /// The mailbox this agent works on.
    pub mailbox: Mailbox,

    /// Which front doors to serve. A door turned off has no routes and no Service port.
    #[serde(default)]
    pub surfaces: Surfaces,

    /// MCP settings, including the switch for tools that change the world.
    #[serde(default)]
    pub mcp: McpSettings,

    /// Per-caller rate limit, applied per principal and per client address.
    #[serde(default)]
    pub rate_limit: RateLimit,

    /// Recurring work.
    #[serde(default)]
    pub schedules: Schedules,

    /// The state volume (unsubscribe history, digest bookkeeping).
    #[serde(default)]
    pub storage: StateStorage,

    /// Who may call in and where the agent may call out.
    #[serde(default)]
    pub network: NetworkAccess,

    /// Scale to zero and keep everything else: the runbooks' incident isolation step.
    #[serde(default)]
    pub suspend: bool,
}

fn default_replicas() -> i32 {
    1
}

/// A reference to an object in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct LocalObjectRef {
    /// Name of the object.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// Image pull policy.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum ImagePullPolicy {
    /// Always pull.
    Always,
    /// Pull when the node lacks the image.
    #[default]
    IfNotPresent,
    /// Never pull.
    Never,
}

impl ImagePullPolicy {
    /// The Kubernetes spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            ImagePullPolicy::Always => "Always",
            ImagePullPolicy::IfNotPresent => "IfNotPresent",
            ImagePullPolicy::Never => "Never",
        }
    }
}

/// The mailbox and how to reach it.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.provider != 'gmail' || has(self.credentialsSecretRef)")
    .message("the gmail provider needs credentialsSecretRef: a Secret with token.json (and optionally client_secret.json)")
    .field_path(".credentialsSecretRef"))]
#[x_kube(validation = Rule::new("self.provider == 'gmail' || !has(self.quota)")
    .message("quota applies to the gmail provider only (Google meters Gmail, not a Maildir)")
    .field_path(".quota"))]
#[serde(rename_all = "camelCase")]
pub struct Mailbox {
    /// Where the mail lives.
    pub provider: MailboxProvider,
    /// Secret holding the provider credentials; for Gmail the runbooks' `token.json`
    /// (authorized-user OAuth token with refresh token) and optionally `client_secret.json`.
    /// Mounted read-only as a directory, never as environment variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<LocalObjectRef>,
    /// The mailbox owner's address: where digests are sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 254))]
    pub address: Option<String>,
    /// The Gmail quota budget this mailbox shares with others (see [`GmailQuota`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<GmailQuota>,
}

impl Mailbox {
    /// Whether Google meters this mailbox (and so whether it has a quota group at all).
    pub fn is_gmail(&self) -> bool {
        self.provider == MailboxProvider::Gmail
    }

    /// The quota group the spec names, for a Gmail mailbox.
    pub fn named_quota_group(&self) -> Option<&str> {
        self.quota.as_ref().filter(|_| self.is_gmail())?.group.as_deref()
    }
}

/// Which Gmail quota budget an agent draws on. Google meters Gmail per Cloud project as well as
/// per user; the operator divides a group's budget equally among its agents (never above the
/// per-user 15,000 units a minute) and spreads their scheduled scans over up to an hour.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GmailQuota {
    /// The group's name, shared by every agent of one Google Cloud project across namespaces.
    /// Default: the agent's OAuth client (from `client_secret.json`, else `token.json`, in the
    /// credentials Secret), named by fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"))]
    pub group: Option<String>,
    /// The group's budget in quota units a minute. Default: Google's per-project quota,
    /// 1,200,000. When members disagree the smallest stated budget holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 100))]
    pub group_units_per_minute: Option<u32>,
}

/// The front doors. All are on by default.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct Surfaces {
    /// REST under `/v1` with an OpenAPI document.
    #[serde(default = "yes")]
    pub rest: bool,
    /// Agent2Agent JSON-RPC at `/a2a` with the agent card.
    #[serde(default = "yes")]
    pub a2a: bool,
    /// MCP Streamable HTTP at `/mcp`.
    #[serde(default = "yes")]
    pub mcp: bool,
}

fn yes() -> bool {
    true
}

impl Default for Surfaces {
    fn default() -> Self {
        Self { rest: true, a2a: true, mcp: true }
    }
}

/// MCP settings.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[x_kube(validation = Rule::new("self.authMode != 'oauth' || (has(self.resourceServerUrl) && self.resourceServerUrl.startsWith('https://') && !self.resourceServerUrl.endsWith('/'))")
    .message("mcp.authMode oauth needs resourceServerUrl: the public https:// URL of the MCP endpoint without a trailing slash, used as the OAuth resource and audience")
    .field_path(".resourceServerUrl"))]
#[serde(rename_all = "camelCase")]
pub struct McpSettings {
    /// List and allow tools that send mail or hit unsubscribe endpoints. Off by default; turning
    /// it off in an incident takes effect in running pods without a restart.
    #[serde(default)]
    pub enable_mutation_tools: bool,
    /// Overrides how MCP callers authenticate. `inherit` takes the `AuthPolicy`'s MCP setting,
    /// which itself defaults to the policy's mode.
    #[serde(default)]
    pub auth_mode: McpAuthMode,
    /// Public URL of the MCP endpoint (`https://.../mcp`); required for `oauth`, and its host is
    /// added to the allowed `Host` headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.matches('^https?://[^\\\\s/?#]+(/[^\\\\s?#]*)?$')")
        .message("resourceServerUrl must be an absolute http(s) URL without query or fragment"))]
    #[schemars(length(max = 2048))]
    pub resource_server_url: Option<String>,
    /// Extra `Host` header values the MCP endpoint accepts (DNS rebinding protection); the
    /// Service's in-cluster names are always accepted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub allowed_hosts: Vec<String>,
    /// `Origin` header values browsers may call the MCP endpoint from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub allowed_origins: Vec<String>,
}

/// A GCRA rate limit: a steady rate with a burst allowance.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RateLimit {
    /// Steady requests per minute.
    #[serde(default = "default_per_minute")]
    #[schemars(range(min = 1, max = 100000))]
    pub per_minute: u32,
    /// Requests allowed at once, refilled at the steady rate: 1 means no burst, each request
    /// waits its turn. At least 1, since the request being served counts; admission refuses 0
    /// rather than the workload serving it as 1.
    #[serde(default = "default_burst")]
    #[schemars(range(min = 1, max = 10000))]
    pub burst: u32,
}

fn default_per_minute() -> u32 {
    defaults::RATE_LIMIT_PER_MINUTE
}

fn default_burst() -> u32 {
    defaults::RATE_LIMIT_BURST
}

impl Default for RateLimit {
    fn default() -> Self {
        Self { per_minute: default_per_minute(), burst: default_burst() }
    }
}

/// Cron schedules, evaluated in `timeZone`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Schedules {
    /// When to send the unsubscribe digest, as a Kubernetes CronJob-style expression
    /// (`0 8 * * MON-FRI`; five fields, 0 and 7 are Sunday) or a macro (`@daily`), read in
    /// `timeZone`. Absent: digests only on demand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(crate::CRON_RULE).message(crate::CRON_MESSAGE))]
    #[schemars(length(max = 128))]
    pub digest: Option<String>,
    /// When to scan and triage the inbox, in the same grammar as `digest`. Absent: scans only
    /// on demand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(crate::CRON_RULE).message(crate::CRON_MESSAGE))]
    #[schemars(length(max = 128))]
    pub scan: Option<String>,
    /// IANA time zone for schedules and working hours, e.g. `Europe/Berlin`.
    #[serde(default = "default_time_zone")]
    #[schemars(length(min = 1, max = 64))]
    pub time_zone: String,
}

fn default_time_zone() -> String {
    defaults::TIME_ZONE.to_owned()
}

impl Default for Schedules {
    fn default() -> Self {
        Self { digest: None, scan: None, time_zone: default_time_zone() }
    }
}

/// The state volume.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.accessMode == oldSelf.accessMode")
    .message("storage.accessMode is immutable: a PersistentVolumeClaim cannot change it; create a new MailAgent")
    .field_path(".accessMode"))]
#[x_kube(validation = Rule::new("has(self.storageClassName) == has(oldSelf.storageClassName) && (!has(self.storageClassName) || self.storageClassName == oldSelf.storageClassName)")
    .message("storage.storageClassName is immutable: a PersistentVolumeClaim cannot move to another class")
    .field_path(".storageClassName"))]
#[serde(rename_all = "camelCase")]
pub struct StateStorage {
    /// Requested size; may grow where the storage class allows expansion.
    #[serde(default = "default_size")]
    pub size: Quantity,
    /// Storage class; the cluster default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub storage_class_name: Option<String>,
    /// Volume access mode. ReadWriteOnce allows one replica.
    #[serde(default)]
    pub access_mode: AccessMode,
    /// What happens to the state volume when the MailAgent is deleted. `Retain` keeps the
    /// unsubscribe history so a re-created agent never repeats a link.
    #[serde(default)]
    pub on_delete: OnDelete,
}

fn default_size() -> Quantity {
    Quantity("1Gi".to_owned())
}

impl Default for StateStorage {
    fn default() -> Self {
        Self {
            size: default_size(),
            storage_class_name: None,
            access_mode: AccessMode::default(),
            on_delete: OnDelete::default(),
        }
    }
}

/// Volume access modes the agent supports.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum AccessMode {
    /// One node mounts the volume.
    #[default]
    ReadWriteOnce,
    /// Many nodes mount it; needed for more than one replica.
    ReadWriteMany,
}

impl AccessMode {
    /// The Kubernetes spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            AccessMode::ReadWriteOnce => "ReadWriteOnce",
            AccessMode::ReadWriteMany => "ReadWriteMany",
        }
    }
}

/// What happens to the state volume on delete.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
pub enum OnDelete {
    /// Keep the PersistentVolumeClaim (no owner reference).
    #[default]
    Retain,
    /// Delete it with the MailAgent (owned, garbage-collected).
    Delete,
}

/// Network access, rendered into a default-deny NetworkPolicy.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkAccess {
    /// Who may reach the serving port. Absent: pods in the same namespace. An empty list: nobody.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_from: Option<Vec<NetworkPolicyPeer>>,
    /// Where the agent may connect. Absent: DNS plus TCP 443 to public addresses (Google APIs
    /// and one-click unsubscribe endpoints; private, link-local and metadata ranges excluded).
    /// Given: DNS plus exactly these rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress: Option<Vec<NetworkPolicyEgressRule>>,
}

/// What the operator observed, not what it hopes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MailAgentStatus {
    /// The generation the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Progressing, Degraded, AuthPolicyResolved, CredentialsResolved, Verified.
    #[serde(default)]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
    /// The REST/A2A auth mode in force, from the AuthPolicy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_mode: Option<AuthMode>,
    /// The MCP auth mode in force after overrides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp_auth_mode: Option<McpAuthMode>,
    /// Pods ready to serve.
    #[serde(default)]
    pub ready_replicas: i32,
    /// In-cluster base URL of the agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Hash of the settings that need a restart; equal to the pod template's annotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_hash: Option<String>,
    /// What the operator's last probe of the serving pods found (the `Verified` condition says
    /// whether it matched the spec and the policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
    /// The Gmail quota this agent is allotted from its group (Gmail mailboxes only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<QuotaStatus>,
}

/// An agent's allotment from its Gmail quota group.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct QuotaStatus {
    /// The group (`spec.mailbox.quota.group`, or `oauth-client-<fingerprint>`); absent when the
    /// agent names none and its credentials name no OAuth client: it is then a group of one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Agents in the group, as this operator sees them.
    pub members: i32,
    /// The group's budget in force (units a minute).
    pub group_units_per_minute: i64,
    /// This agent's share (units a minute), which its workload paces every sliding minute to.
    pub units_per_minute: i64,
    /// Seconds after each scheduled scan slot that this agent's scan starts.
    pub scan_delay_seconds: i64,
    /// True when an equal share would not fit one send (100 units) and was raised to it: the
    /// group together may then exceed its budget. Raise the budget or split the group.
    #[serde(default)]
    pub oversubscribed: bool,
}

/// The last probe of an agent's doors, made by the operator through the pods behind its Service.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    /// When the pods were last probed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_check_time: Option<Time>,
    /// Serving pods probed.
    #[serde(default)]
    pub endpoints: i32,
    /// The A2A protocol version the agent card declares (absent when A2A is not served).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub a2a_protocol_version: Option<String>,
    /// Skills on the public agent card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub a2a_skills: Option<i32>,
    /// The MCP protocol version negotiated with the operator's probe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp_protocol_version: Option<String>,
    /// Tools `tools/list` returned to a caller holding every scope of the policy (absent when the
    /// MCP door takes no credential the operator can mint: API keys or an external OAuth issuer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp_tools: Option<i32>,
}
