//! The shared state behind every door.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use mailagent_mail::api::Assistant;

use crate::a2a::TaskStore;
use crate::auth::Authenticator;
use crate::metrics::Metrics;
use crate::ratelimit::Limits;
use crate::settings::Settings;

/// Everything a request may need; built once, shared as `Arc<App>`.
pub struct App {
    pub settings: Settings,
    pub auth: Authenticator,
    pub assistant: Arc<dyn Assistant>,
    pub limits: Limits,
    pub metrics: Metrics,
    pub tasks: TaskStore,
    mutations: AtomicBool,
    ready: AtomicBool,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl App {
    pub fn new(settings: Settings, auth: Authenticator, assistant: Arc<dyn Assistant>, mutations: bool) -> Arc<Self> {
        let limits = Limits::new(settings.rate_per_minute, settings.rate_burst, settings.trusted_proxies.clone());
        let app = Self {
            settings,
            auth,
            assistant,
            limits,
            metrics: Metrics::default(),
            tasks: TaskStore::default(),
            mutations: AtomicBool::new(false),
            ready: AtomicBool::new(true),
        };
        app.set_mutations(mutations);
        app.metrics.keyring_revision.set(app.auth.keys().revision as i64);
        app.metrics.register_domain(app.assistant.clone());
        Arc::new(app)
    }

    /// Whether mutation capabilities are listed and callable right now.
    pub fn mutations_enabled(&self) -> bool {
        self.mutations.load(Ordering::Acquire)
    }

    /// Flips the mutation switch (configuration reload).
    pub fn set_mutations(&self, enabled: bool) {
        self.mutations.store(enabled, Ordering::Release);
        self.metrics.mutation_tools_enabled.set(i64::from(enabled));
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Draining: readiness fails so the Service stops sending new requests.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }
}
