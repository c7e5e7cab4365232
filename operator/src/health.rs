//! What `/readyz` and `/healthz` report: whether this replica has joined the leader election,
//! and once it leads, whether its caches have their first list and its watches can reach the API
//! server.
//!
//! A standby is ready: it can take over the moment the leader goes. Readiness once meant leading,
//! and then a PodDisruptionBudget over two replicas counted one healthy pod and could spare none,
//! so draining the leader's node waited for ever. Which replica leads is the
//! `mailagent_operator_leading` gauge (and the Lease), as controller-runtime's
//! `leader_election_master_status` is for Go operators.
//!
//! Readiness turns false while the watches fail and true again once they recover. Liveness fails
//! only when the watches have failed without a pause for longer than a limit: a process that
//! cannot get its watches back is better restarted by the kubelet than left deaf.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tracing::{info, warn};

/// A watch that has reported no error for this long counts as recovered even without an event:
/// the watcher retries at most every ~30 s (its backoff cap), so a failing watch errs more often.
pub const RECOVERED_AFTER: Duration = Duration::from_secs(40);
/// Default for how long the watches may fail without a pause before liveness fails.
pub const DEFAULT_DEAF_LIMIT: Duration = Duration::from_secs(300);

/// The operator's health, shared by the controllers and the HTTP server.
#[derive(Debug)]
pub struct Health {
    /// The Lease manager reached the API server: this replica takes part in the election.
    electing: AtomicBool,
    leading: AtomicBool,
    /// Controllers whose caches have not had their first list yet.
    unsynced: AtomicUsize,
    /// The watches' view of the API server.
    pub watches: std::sync::Arc<WatchHealth>,
    deaf_limit: Duration,
}

impl Default for Health {
    fn default() -> Self {
        Self::new(DEFAULT_DEAF_LIMIT)
    }
}

impl Health {
    /// Health whose liveness fails after the watches have failed for `deaf_limit`.
    pub fn new(deaf_limit: Duration) -> Self {
        Self {
            electing: AtomicBool::new(false),
            leading: AtomicBool::new(false),
            unsynced: AtomicUsize::new(1),
            watches: Default::default(),
            deaf_limit,
        }
    }

    /// This replica has joined the leader election: a standby until it leads.
    pub fn set_electing(&self) {
        self.electing.store(true, Ordering::Relaxed);
    }

    /// This replica now leads (or runs without election).
    pub fn set_leading(&self) {
        self.electing.store(true, Ordering::Relaxed);
        self.leading.store(true, Ordering::Relaxed);
    }

    /// Whether this replica leads (runs the controllers).
    pub fn is_leading(&self) -> bool {
        self.leading.load(Ordering::Relaxed)
    }

    /// How many controllers report [`Health::set_synced`] before the replica is ready: one per
    /// watched namespace in the namespaced mode (default 1).
    pub fn expect_caches(&self, controllers: usize) {
        self.unsynced.store(controllers, Ordering::Relaxed);
    }

    /// One controller's caches have their first list; its reconciles may start.
    pub fn set_synced(&self) {
        let _ = self.unsynced.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// `Ok` when ready: a standby that has joined the election, or a leader ready to act; else
    /// why not.
    pub fn readiness(&self) -> Result<(), &'static str> {
        if !self.leading.load(Ordering::Relaxed) {
            return if self.electing.load(Ordering::Relaxed) { Ok(()) } else { Err("joining the leader election") };
        }
        if self.unsynced.load(Ordering::Relaxed) > 0 {
            return Err("caches are still listing");
        }
        if !self.watches.is_watching(Instant::now()) {
            return Err("watches cannot reach the API server");
        }
        Ok(())
    }

    /// `Ok` unless the watches have failed without a pause for longer than the limit.
    pub fn liveness(&self) -> Result<(), String> {
        match self.watches.failing_for(Instant::now()) {
            Some(failing) if failing > self.deaf_limit => {
                Err(format!("watches have failed for {}s; restart to start afresh", failing.as_secs()))
            }
            _ => Ok(()),
        }
    }
}

/// Errors and events of every watch.
#[derive(Debug, Default)]
pub struct WatchHealth {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    last_event: Option<Instant>,
    last_error: Option<Instant>,
    /// When the current run of errors began.
    failing_since: Option<Instant>,
}

impl WatchHealth {
    /// A watch delivered an event: the API server answers.
    pub fn watched(&self, _kind: &str) {
        let mut state = self.state.lock().expect("not poisoned");
        if state.failing_since.take().is_some() {
            info!("watches recovered");
        }
        state.last_event = Some(Instant::now());
    }

    /// A watch failed; it retries by itself with backoff.
    pub fn failed(&self, kind: &str, error: &dyn std::fmt::Display) {
        let now = Instant::now();
        let mut state = self.state.lock().expect("not poisoned");
        // A pause longer than the recovery window ends the previous run of errors.
        if state.last_error.is_some_and(|last| now.duration_since(last) > RECOVERED_AFTER) {
            state.failing_since = None;
        }
        state.failing_since.get_or_insert(now);
        state.last_error = Some(now);
        drop(state);
        warn!(kind, %error, "watch failed; retrying with backoff");
    }

    /// Whether the watches work: no error since the last event, or none for a while.
    pub fn is_watching(&self, now: Instant) -> bool {
        let state = self.state.lock().expect("not poisoned");
        match state.last_error {
            None => true,
            Some(error) => {
                state.last_event.is_some_and(|event| event > error) || now.duration_since(error) > RECOVERED_AFTER
            }
        }
    }

    /// How long the watches have been failing without a pause, if they are.
    pub fn failing_for(&self, now: Instant) -> Option<Duration> {
        let state = self.state.lock().expect("not poisoned");
        let recent = state.last_error.is_some_and(|error| now.duration_since(error) <= RECOVERED_AFTER);
        state.failing_since.filter(|_| recent).map(|since| now.duration_since(since))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_makes_the_operator_unready_until_an_event_or_a_quiet_spell() {
        let health = WatchHealth::default();
        let start = Instant::now();
        assert!(health.is_watching(start));
        health.failed("Deployment", &"connection refused");
        assert!(!health.is_watching(Instant::now()));
        assert!(health.is_watching(Instant::now() + RECOVERED_AFTER + Duration::from_secs(1)));
        health.watched("Deployment");
        assert!(health.is_watching(Instant::now()));
        assert_eq!(health.failing_for(Instant::now()), None);
    }

    #[test]
    fn liveness_fails_only_after_a_long_unbroken_failure() {
        let health = Health::new(Duration::ZERO);
        health.set_leading();
        health.set_synced();
        assert!(health.liveness().is_ok());
        health.watches.failed("MailAgent", &"tls handshake eof");
        std::thread::sleep(Duration::from_millis(5));
        assert!(health.liveness().is_err(), "failing for longer than a zero limit");
        assert_eq!(health.readiness(), Err("watches cannot reach the API server"));
        health.watches.watched("MailAgent");
        assert!(health.liveness().is_ok());
        assert!(health.readiness().is_ok());
    }

    #[test]
    fn a_standby_is_ready_and_a_leader_once_its_caches_are_listed() {
        let health = Health::default();
        assert_eq!(health.readiness(), Err("joining the leader election"));
        health.set_electing();
        assert_eq!(health.readiness(), Ok(()), "a standby can take over: ready");
        assert!(!health.is_leading());
        health.set_leading();
        assert_eq!(health.readiness(), Err("caches are still listing"));
        health.set_synced();
        assert_eq!(health.readiness(), Ok(()));
    }

    #[test]
    fn with_one_controller_per_namespace_every_one_must_list_first() {
        let health = Health::default();
        health.set_leading();
        health.expect_caches(3);
        health.set_synced();
        health.set_synced();
        assert_eq!(health.readiness(), Err("caches are still listing"));
        health.set_synced();
        assert!(health.readiness().is_ok());
        health.set_synced();
        assert!(health.readiness().is_ok(), "an extra report does not wrap around");
    }
}
