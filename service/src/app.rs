//! The shared state behind every door, and the answers every door gives the same way: who is
//! calling, may they do this, and the error that says no.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::header;
use mailagent_crds::Capability;
use mailagent_mail::api::Assistant;

use crate::audit;
use crate::auth::{AuthFailure, Authenticator, Principal, Surface};
use crate::authz::Policy;
use crate::error::{ApiError, ErrorCode};
use crate::metrics::Metrics;
use crate::ratelimit::Limits;
use crate::security;
use crate::settings::Settings;
use crate::tasks::TaskStore;

/// The RFC 9728 metadata path; the MCP door's document is this plus the resource's path.
pub const PROTECTED_RESOURCE_METADATA: &str = "/.well-known/oauth-protected-resource";

/// Everything a request may need; built once, shared as `Arc<App>`.
pub struct App {
    pub settings: Settings,
    pub auth: Authenticator,
    pub assistant: Arc<dyn Assistant>,
    pub limits: Limits,
    pub metrics: Metrics,
    pub tasks: TaskStore,
    /// The authorisation decision's live inputs (mutation switch, scope ceiling).
    pub policy: Policy,
    ready: AtomicBool,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl App {
    pub fn new(settings: Settings, auth: Authenticator, assistant: Arc<dyn Assistant>, policy: Policy) -> Arc<Self> {
        let rate = settings.rate_limit_enabled.then_some((settings.rate_per_minute, settings.rate_burst));
        let limits = Limits::new(rate, settings.trusted_proxies.clone());
        let app = Self {
            settings,
            auth,
            assistant,
            limits,
            metrics: Metrics::default(),
            tasks: TaskStore::default(),
            policy,
            ready: AtomicBool::new(true),
        };
        app.set_mutations(app.policy.mutations_enabled());
        app.metrics.keyring_revision.set(app.auth.keys().revision as i64);
        app.metrics.register_domain(app.assistant.clone());
        Arc::new(app)
    }

    /// Whether mutation capabilities are listed and callable right now.
    pub fn mutations_enabled(&self) -> bool {
        self.policy.mutations_enabled()
    }

    /// Flips the mutation switch (configuration reload).
    pub fn set_mutations(&self, enabled: bool) {
        self.policy.set_mutations(enabled);
        self.metrics.mutation_tools_enabled.set(i64::from(enabled));
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Draining: readiness fails so the Service stops sending new requests.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    /// The absolute URL of the MCP resource's RFC 9728 metadata (path-inserted), in OAuth mode.
    pub fn resource_metadata_url(&self) -> String {
        let Some(oauth) = self.auth.oauth() else { return format!("{PROTECTED_RESOURCE_METADATA}/mcp") };
        let (scheme, authority, path) = split_resource(&oauth.resource);
        format!("{scheme}://{authority}{PROTECTED_RESOURCE_METADATA}{path}")
    }

    /// The path of [`Self::resource_metadata_url`], which this server must answer too: RFC 9728
    /// inserts the well-known segment before the resource's own path, so a resource behind a
    /// path prefix (`https://host/agent/mcp`) has its metadata at
    /// `/.well-known/oauth-protected-resource/agent/mcp`.
    pub fn resource_metadata_path(&self) -> Option<String> {
        let oauth = self.auth.oauth()?;
        let (_, _, path) = split_resource(&oauth.resource);
        Some(format!("{PROTECTED_RESOURCE_METADATA}{path}"))
    }

    /// The decision for `principal` and `capability` on `door`, audited when it says no, as the
    /// error the door answers with (403, with the step-up challenge on an OAuth door).
    pub fn authorize(&self, door: Surface, principal: &Principal, capability: Capability) -> Result<(), ApiError> {
        let denial = match self.policy.decide(principal, capability) {
            Ok(()) => return Ok(()),
            Err(denial) => denial,
        };
        audit::forbidden(door, principal, capability.name(), denial.reason());
        Err(match denial.missing_scope() {
            Some(scope) => {
                let error = ApiError::new(ErrorCode::InsufficientScope).with_scope(scope);
                match security::scope_challenge(self.auth.mode(door), scope, &self.resource_metadata_url()) {
                    Some(challenge) => error.with_header(header::WWW_AUTHENTICATE, &challenge),
                    None => error,
                }
            }
            None => ApiError::new(ErrorCode::MutationsDisabled),
        })
    }

    /// 401 with the reason header and the challenge for the door's schemes. The body is the
    /// same for every reason so it reveals nothing the header does not.
    pub fn unauthorized(&self, door: Surface, failure: AuthFailure) -> ApiError {
        let challenge = security::challenge(self.auth.mode(door), &self.resource_metadata_url());
        ApiError::new(ErrorCode::Unauthorized)
            .with_header(header::HeaderName::from_static("x-auth-failure"), failure.reason())
            .with_header(header::WWW_AUTHENTICATE, &challenge)
    }
}

/// A resource URL as (scheme, authority, path); the path is empty or starts with `/`.
fn split_resource(resource: &str) -> (&str, &str, String) {
    let (scheme, rest) = resource.split_once("://").unwrap_or(("https", resource));
    let (authority, path) = rest.split_once('/').map(|(a, p)| (a, format!("/{p}"))).unwrap_or((rest, String::new()));
    (scheme, authority, path)
}
