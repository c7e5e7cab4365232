//! The rotation state machine, pure: given the signer document, the spec and the time, which one
//! step is due, and what the document looks like after it. The controller and the `rotate`
//! command both call it, so they can never disagree about what comes next.
//!
//! Per chain (the JWT keys, or one client's API keys) a key moves Staged → Active → Verifying →
//! Retired, or to Revoked from anywhere. A Staged key is published to verifiers
//! one propagation ([`propagation`]) before it is handed out; the old key stays Verifying for the overlap.
//! Every step is checked against the invariant: each chain keeps exactly one Active key and at
//! least one valid key, and no valid key disappears except by revoke or by its client's removal.

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use mailagent_crds::AuthPolicySpec;
use mailagent_crds::authpolicy::{KeyPurpose, Rotation, propagation};
use mailagent_crds::contract::KeyState;

use super::material::{self, Chain, KeyRecord, SignerState};

/// Retired or Revoked records kept per chain (fingerprints for the audit trail; no material).
pub const HISTORY_LIMIT: usize = 3;

/// What the step is computed from.
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a> {
    pub spec: &'a AuthPolicySpec,
    pub state: &'a SignerState,
    pub now: &'a Time,
    /// The manual-rotation nonce on the policy's annotation, if any.
    pub rotate_nonce: Option<&'a str>,
}

/// One step. Each changes the signer document once and adds one to its revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Emergency revoke of these kids (replacements for revoked Active keys come with it).
    Revoke(Vec<String>),
    /// Drop the keys of chains the spec no longer has (a removed client, JWT turned off).
    Forget(Vec<Chain>),
    /// First keys for chains that have no valid key: Active at once.
    Mint(Vec<Chain>),
    /// Verifying keys past their overlap.
    Retire(Vec<String>),
    /// Staged keys whose propagation time has passed become Active; the old Active verifies on.
    Promote(Vec<String>),
    /// A rotation starts: a Staged key per chain, published before anyone uses it.
    Stage { nonce: Option<String> },
}

impl Step {
    /// A short name for logs, events and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Step::Revoke(_) => "revoke",
            Step::Forget(_) => "forget",
            Step::Mint(_) => "mint",
            Step::Retire(_) => "retire",
            Step::Promote(_) => "promote",
            Step::Stage { .. } => "stage",
        }
    }

    /// Steps that must not wait for the next scheduled run (the controller executes them).
    pub fn urgent(&self) -> bool {
        matches!(self, Step::Revoke(_) | Step::Forget(_) | Step::Mint(_))
    }
}

/// Why nothing can be done; reported as `Degraded`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The spec asks for something impossible.
    #[error("{0}")]
    Invalid(String),
    /// The step would leave a chain without a valid key or lose one.
    #[error("refused to break the key invariant: {0}")]
    Invariant(String),
    /// Minting failed.
    #[error("{0}")]
    Mint(String),
}

/// The chains the spec wants, in a stable order.
pub fn chains(spec: &AuthPolicySpec) -> Vec<Chain> {
    let mut chains: Vec<Chain> = spec.api_keys.iter().map(|c| Chain::client(&c.name)).collect();
    if spec.jwt.is_some() {
        chains.push(Chain::jwt());
    }
    chains
}

/// The rotation settings in force: the spec's, or the defaults when only manual rotation is used.
pub fn rotation(spec: &AuthPolicySpec) -> Rotation {
    spec.rotation.clone().unwrap_or_else(|| {
        serde_json::from_value(serde_json::json!({"every": "8760h"})).expect("default rotation parses")
    })
}

/// The one step due now, or `None`.
pub fn plan(i: &Inputs<'_>) -> Result<Option<Step>, Refusal> {
    let now = &i.now.0;
    if let Some(revocation) = &i.spec.revocation {
        if revocation.issued_before.as_ref().is_some_and(|t| t.0 > *now) {
            return Err(Refusal::Invalid("revocation.issuedBefore is in the future".into()));
        }
        let kids: Vec<String> = i
            .state
            .keys
            .iter()
            .filter(|k| k.state != KeyState::Revoked)
            .filter(|k| {
                revocation.kids.contains(&k.kid)
                    || revocation.issued_before.as_ref().is_some_and(|t| k.created_at.0 < t.0)
            })
            .map(|k| k.kid.clone())
            .collect();
        if !kids.is_empty() {
            return Ok(Some(Step::Revoke(kids)));
        }
    }
    let wanted = chains(i.spec);
    let stale: BTreeSet<Chain> = i.state.keys.iter().map(|k| k.chain.clone()).filter(|c| !wanted.contains(c)).collect();
    if !stale.is_empty() {
        return Ok(Some(Step::Forget(stale.into_iter().collect())));
    }
    let unkeyed: Vec<Chain> =
        wanted.iter().filter(|c| !i.state.keys.iter().any(|k| &k.chain == *c && k.valid_at(i.now))).cloned().collect();
    if !unkeyed.is_empty() {
        return Ok(Some(Step::Mint(unkeyed)));
    }
    let expired: Vec<String> = i
        .state
        .keys
        .iter()
        .filter(|k| k.state == KeyState::Verifying && k.expires_at.as_ref().is_some_and(|t| t.0 <= *now))
        .map(|k| k.kid.clone())
        .collect();
    if !expired.is_empty() {
        return Ok(Some(Step::Retire(expired)));
    }
    let ready: Vec<String> = i
        .state
        .keys
        .iter()
        .filter(|k| k.state == KeyState::Staged && k.activates_at.as_ref().is_some_and(|t| t.0 <= *now))
        .map(|k| k.kid.clone())
        .collect();
    if !ready.is_empty() {
        return Ok(Some(Step::Promote(ready)));
    }
    let nonce = i.rotate_nonce.filter(|n| Some(*n) != i.state.handled_rotate_nonce.as_deref());
    let scheduled = next_rotation(i.spec, i.state)?.is_some_and(|t| t.0 <= *now);
    if !(scheduled || nonce.is_some()) || i.state.keys.iter().any(|k| k.state == KeyState::Staged) {
        return Ok(None);
    }
    // Room for one more valid key in every chain; otherwise wait for the overlap to end.
    let max = rotation(i.spec).max_valid_keys.max(2) as usize;
    let full = wanted.iter().any(|c| i.state.keys.iter().filter(|k| &k.chain == c && k.valid_at(i.now)).count() >= max);
    if full {
        return Ok(None);
    }
    Ok(Some(Step::Stage { nonce: nonce.map(str::to_owned) }))
}

/// When the next scheduled rotation is due: `every` after the last one, or the schedule's next
/// firing after it. `None` without rotation or when suspended.
pub fn next_rotation(spec: &AuthPolicySpec, state: &SignerState) -> Result<Option<Time>, Refusal> {
    let Some(rotation) = &spec.rotation else { return Ok(None) };
    if rotation.suspend {
        return Ok(None);
    }
    let Some(base) = state.last_rotation.as_ref().or_else(|| state.keys.iter().map(|k| &k.created_at).max()) else {
        return Ok(None);
    };
    if let Some(every) = rotation.every {
        let every =
            SignedDuration::try_from(std::time::Duration::from(every)).map_err(|e| Refusal::Invalid(e.to_string()))?;
        return Ok(Some(Time(base.0.saturating_add(every).map_err(|e| Refusal::Invalid(e.to_string()))?)));
    }
    let Some(expr) = &rotation.schedule else { return Ok(None) };
    super::schedule::next_after(expr, &rotation.time_zone, base.0).map(|t| Some(Time(t))).map_err(Refusal::Invalid)
}

/// When something next becomes due without a spec change (the controller requeues then).
pub fn next_wakeup(spec: &AuthPolicySpec, state: &SignerState) -> Option<Time> {
    let rotation = next_rotation(spec, state).ok().flatten();
    let pending = state.keys.iter().filter_map(|k| match k.state {
        KeyState::Staged => k.activates_at.clone(),
        KeyState::Verifying => k.expires_at.clone(),
        _ => None,
    });
    rotation.into_iter().chain(pending).min_by_key(|t| t.0)
}

/// The document after `step`, with the revision advanced, checked against the invariant.
pub fn execute(i: &Inputs<'_>, step: &Step) -> Result<SignerState, Refusal> {
    let mut next = i.state.clone();
    next.revision += 1;
    let now = i.now.clone();
    let overlap = SignedDuration::try_from(std::time::Duration::from(rotation(i.spec).overlap))
        .map_err(|e| Refusal::Invalid(e.to_string()))?;
    match step {
        Step::Revoke(kids) => {
            let mut orphaned = Vec::new();
            for key in next.keys.iter_mut().filter(|k| kids.contains(&k.kid)) {
                if key.state == KeyState::Active {
                    orphaned.push(key.chain.clone());
                }
                key.state = KeyState::Revoked;
                key.expires_at = Some(now.clone());
                key.wipe();
            }
            for chain in orphaned {
                // A Staged successor is already published: activate it; otherwise mint one.
                match next.keys.iter_mut().find(|k| k.chain == chain && k.state == KeyState::Staged) {
                    Some(staged) => {
                        staged.state = KeyState::Active;
                        staged.activates_at = Some(now.clone());
                    }
                    None => {
                        let record = mint_record(i.spec, &next, &chain, KeyState::Active, &now, Some(now.clone()))?;
                        next.keys.push(record);
                    }
                }
            }
        }
        Step::Forget(chains) => next.keys.retain(|k| !chains.contains(&k.chain)),
        Step::Mint(chains) => {
            for chain in chains {
                let record = mint_record(i.spec, &next, chain, KeyState::Active, &now, Some(now.clone()))?;
                next.keys.push(record);
            }
            next.last_rotation.get_or_insert(now.clone());
        }
        Step::Retire(kids) => {
            for key in next.keys.iter_mut().filter(|k| kids.contains(&k.kid)) {
                key.state = KeyState::Retired;
                key.wipe();
            }
        }
        Step::Promote(kids) => {
            let promoted: Vec<Chain> =
                next.keys.iter().filter(|k| kids.contains(&k.kid)).map(|k| k.chain.clone()).collect();
            let until = Time(now.0.saturating_add(overlap).map_err(|e| Refusal::Invalid(e.to_string()))?);
            for key in next.keys.iter_mut() {
                if key.state == KeyState::Active && promoted.contains(&key.chain) {
                    key.state = KeyState::Verifying;
                    key.expires_at = Some(until.clone());
                } else if kids.contains(&key.kid) {
                    key.state = KeyState::Active;
                    key.activates_at = Some(now.clone());
                }
            }
        }
        Step::Stage { nonce } => {
            let budget = SignedDuration::try_from(propagation(i.spec)).expect("admission bounds it to 15m");
            let activates = Time(now.0.saturating_add(budget).expect("in range"));
            for chain in chains(i.spec) {
                let record = mint_record(i.spec, &next, &chain, KeyState::Staged, &now, Some(activates.clone()))?;
                next.keys.push(record);
            }
            next.last_rotation = Some(now.clone());
            if nonce.is_some() {
                next.handled_rotate_nonce = nonce.clone();
            }
        }
    }
    collect_garbage(&mut next);
    check_invariant(i, step, &next)?;
    Ok(next)
}

fn mint_record(
    spec: &AuthPolicySpec,
    state: &SignerState,
    chain: &Chain,
    key_state: KeyState,
    now: &Time,
    activates_at: Option<Time>,
) -> Result<KeyRecord, Refusal> {
    use base64::Engine;
    let alg = match chain.purpose {
        KeyPurpose::Jwt => Some(
            spec.jwt
                .as_ref()
                .and_then(|j| j.algorithms.first().copied())
                .ok_or_else(|| Refusal::Invalid("jwt.algorithms is empty".into()))?,
        ),
        KeyPurpose::ApiKey => None,
    };
    let minted = material::mint(chain.purpose, alg).map_err(|e| Refusal::Mint(e.to_string()))?;
    let taken: Vec<&str> = state.keys.iter().map(|k| k.kid.as_str()).collect();
    let kid = material::new_kid(chain.purpose, &taken).map_err(|e| Refusal::Mint(e.to_string()))?;
    Ok(KeyRecord {
        kid,
        chain: chain.clone(),
        alg,
        state: key_state,
        created_at: now.clone(),
        activates_at,
        expires_at: None,
        fingerprint: minted.fingerprint,
        secret: Some(base64::engine::general_purpose::STANDARD.encode(&minted.secret)),
        public_key_pem: minted.public_key_pem,
    })
}

/// Keeps the newest [`HISTORY_LIMIT`] Retired/Revoked records per chain, dropping older ones.
fn collect_garbage(state: &mut SignerState) {
    let chains: BTreeSet<Chain> = state.keys.iter().map(|k| k.chain.clone()).collect();
    for chain in chains {
        let mut done: Vec<(Timestamp, String)> = state
            .keys
            .iter()
            .filter(|k| k.chain == chain && matches!(k.state, KeyState::Retired | KeyState::Revoked))
            .map(|k| (k.created_at.0, k.kid.clone()))
            .collect();
        done.sort();
        let drop = done.len().saturating_sub(HISTORY_LIMIT);
        let dropped: Vec<String> = done.into_iter().take(drop).map(|(_, kid)| kid).collect();
        state.keys.retain(|k| !dropped.contains(&k.kid));
    }
}

fn check_invariant(i: &Inputs<'_>, step: &Step, next: &SignerState) -> Result<(), Refusal> {
    for chain in chains(i.spec) {
        let active = next.keys.iter().filter(|k| k.chain == chain && k.state == KeyState::Active).count();
        if active != 1 {
            return Err(Refusal::Invariant(format!("{chain} would have {active} active keys after {}", step.name())));
        }
        if !next.keys.iter().any(|k| k.chain == chain && k.valid_at(i.now)) {
            return Err(Refusal::Invariant(format!("{chain} would have no valid key after {}", step.name())));
        }
    }
    let removable = match step {
        Step::Revoke(kids) => kids.clone(),
        Step::Forget(chains) => {
            i.state.keys.iter().filter(|k| chains.contains(&k.chain)).map(|k| k.kid.clone()).collect()
        }
        _ => Vec::new(),
    };
    for before in i.state.keys.iter().filter(|k| k.valid_at(i.now) && !removable.contains(&k.kid)) {
        if !next.keys.iter().any(|k| k.kid == before.kid && k.valid_at(i.now)) {
            return Err(Refusal::Invariant(format!("key {} would stop validating before its time", before.kid)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::jiff::Timestamp;
    use mailagent_crds::authpolicy::Revocation;
    use proptest::prelude::*;

    use super::*;

    fn spec(yaml: &str) -> AuthPolicySpec {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn at(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).unwrap())
    }

    /// Runs every due step at `now`, one at a time, like successive Job runs.
    fn settle(spec: &AuthPolicySpec, state: &mut SignerState, now: &Time, nonce: Option<&str>) -> Vec<&'static str> {
        let mut steps = Vec::new();
        while let Some(step) = plan(&Inputs { spec, state, now, rotate_nonce: nonce }).unwrap() {
            *state = execute(&Inputs { spec, state, now, rotate_nonce: nonce }, &step).unwrap();
            steps.push(step.name());
        }
        steps
    }

    fn states(state: &SignerState) -> Vec<KeyState> {
        state.keys.iter().filter(|k| k.chain == Chain::jwt()).map(|k| k.state).collect()
    }

    /// Without `propagation` a staged key waits 2m: the default kubelet's 1m sync, its jitter
    /// of up to half again, and 30s.
    #[test]
    fn the_default_propagation_covers_a_default_kubelet_sync_and_its_jitter() {
        let spec = spec("mode: jwt\njwt: {audiences: [a]}\nrotation: {every: 10m, overlap: 5m}");
        let mut state = SignerState::default();
        settle(&spec, &mut state, &at(0), None);
        assert_eq!(settle(&spec, &mut state, &at(600), None), ["stage"]);
        assert!(settle(&spec, &mut state, &at(719), None).is_empty(), "90s is within a default kubelet's resync");
        assert_eq!(settle(&spec, &mut state, &at(720), None), ["promote"]);
    }

    #[test]
    fn a_rotation_walks_staged_active_verifying_retired() {
        let spec = spec("mode: jwt\njwt: {audiences: [a]}\nrotation: {every: 10m, overlap: 5m, propagation: 1m}");
        let mut state = SignerState::default();
        assert_eq!(settle(&spec, &mut state, &at(0), None), ["mint"]);
        assert_eq!(states(&state), [KeyState::Active]);
        assert_eq!(next_rotation(&spec, &state).unwrap(), Some(at(600)));
        assert!(settle(&spec, &mut state, &at(599), None).is_empty(), "nothing before the rotation is due");

        assert_eq!(settle(&spec, &mut state, &at(600), None), ["stage"]);
        assert_eq!(states(&state), [KeyState::Active, KeyState::Staged]);
        assert!(settle(&spec, &mut state, &at(659), None).is_empty(), "a staged key waits one propagation");
        assert_eq!(settle(&spec, &mut state, &at(660), None), ["promote"]);
        assert_eq!(states(&state), [KeyState::Verifying, KeyState::Active]);
        assert_eq!(state.keys[0].expires_at, Some(at(960)), "the old key verifies for the overlap");
        assert_eq!(settle(&spec, &mut state, &at(960), None), ["retire"]);
        assert_eq!(states(&state), [KeyState::Retired, KeyState::Active]);
        assert!(state.keys[0].secret.is_none(), "retired material is forgotten");
        assert_eq!(state.revision, 4);
    }

    #[test]
    fn a_manual_nonce_rotates_once() {
        let spec = spec("mode: jwt\njwt: {audiences: [a]}");
        let mut state = SignerState::default();
        settle(&spec, &mut state, &at(0), None);
        assert_eq!(settle(&spec, &mut state, &at(10), Some("n1")), ["stage"]);
        assert_eq!(settle(&spec, &mut state, &at(130), Some("n1")), ["promote"], "one default propagation later");
        assert!(settle(&spec, &mut state, &at(300), Some("n1")).is_empty(), "the same nonce rotates once");
        assert_eq!(state.handled_rotate_nonce.as_deref(), Some("n1"));
    }

    #[test]
    fn revoking_the_active_key_activates_a_replacement_at_once() {
        let mut spec = spec("mode: hybrid\napiKeys: [{name: ci, scopes: [mail:scan]}]\njwt: {audiences: [a]}");
        let mut state = SignerState::default();
        settle(&spec, &mut state, &at(0), None);
        let old = state.active(&Chain::jwt()).unwrap().kid.clone();
        spec.revocation = Some(Revocation { kids: vec![old.clone()], issued_before: None, reason: "leaked".into() });
        assert_eq!(settle(&spec, &mut state, &at(5), None), ["revoke"]);
        let new = state.active(&Chain::jwt()).unwrap();
        assert_ne!(new.kid, old);
        assert!(state.keys.iter().any(|k| k.kid == old && k.state == KeyState::Revoked && k.secret.is_none()));
        let ci = state.active(&Chain::client("ci")).unwrap();
        assert_eq!(ci.state, KeyState::Active, "other chains are untouched");

        spec.revocation.as_mut().unwrap().issued_before = Some(at(100));
        let err = plan(&Inputs { spec: &spec, state: &state, now: &at(50), rotate_nonce: None }).unwrap_err();
        assert!(err.to_string().contains("in the future"), "{err}");
    }

    #[test]
    fn a_removed_client_loses_its_keys_and_history_is_bounded() {
        let mut spec =
            spec("mode: api_key\napiKeys: [{name: ci, scopes: [mail:scan]}, {name: bot, scopes: [mail:scan]}]");
        let mut state = SignerState::default();
        settle(&spec, &mut state, &at(0), None);
        for n in 0..6 {
            let base = 1000 * (n + 1);
            settle(&spec, &mut state, &at(base), Some(&format!("n{n}")));
            settle(&spec, &mut state, &at(base + 130), Some(&format!("n{n}")));
            settle(&spec, &mut state, &at(base + 130 + 86_400), Some(&format!("n{n}")));
        }
        let ci: Vec<_> = state.keys.iter().filter(|k| k.chain == Chain::client("ci")).collect();
        assert_eq!(ci.len(), HISTORY_LIMIT + 1, "history beyond the limit is collected");
        spec.api_keys.retain(|c| c.name == "ci");
        assert_eq!(settle(&spec, &mut state, &at(10_000_000), None), ["forget"]);
        assert!(state.keys.iter().all(|k| k.chain == Chain::client("ci")));
    }

    #[derive(Clone, Debug)]
    enum Action {
        Advance(i64),
        Run,
        Killed,
        Concurrent,
        Revoke(usize),
        RevokeBefore,
        Manual(u8),
        Unrevoke,
    }

    fn action() -> impl Strategy<Value = Action> {
        prop_oneof![
            4 => (1i64..1200).prop_map(Action::Advance),
            4 => Just(Action::Run),
            1 => Just(Action::Killed),
            1 => Just(Action::Concurrent),
            1 => (0usize..16).prop_map(Action::Revoke),
            1 => Just(Action::RevokeBefore),
            1 => (0u8..3).prop_map(Action::Manual),
            1 => Just(Action::Unrevoke),
        ]
    }

    const SPECS: [&str; 4] = [
        "mode: hybrid\napiKeys: [{name: ci, scopes: [mail:scan]}]\njwt: {audiences: [a], maxTokenLifetime: 2m}\nrotation: {every: 5m, overlap: 2m}",
        "mode: jwt\njwt: {audiences: [a], algorithms: [EdDSA], maxTokenLifetime: 5m}\nrotation: {every: 30m, overlap: 10m, maxValidKeys: 3}",
        "mode: api_key\napiKeys: [{name: ci, scopes: [mail:scan]}, {name: bot, scopes: [mail:scan]}]\nrotation: {schedule: '*/10 * * * *', overlap: 5m}",
        "mode: jwt\njwt: {audiences: [a], maxTokenLifetime: 1m}",
    ];

    /// The committed history: a document is written only if it was computed from the latest one
    /// (the resourceVersion precondition), like the signer Secret on the API server.
    struct Store {
        committed: SignerState,
        history: BTreeMap<u64, SignerState>,
    }

    impl Store {
        fn commit(&mut self, read_revision: u64, next: SignerState) -> bool {
            if read_revision != self.committed.revision {
                return false;
            }
            let fresh = |s: &SignerState, chain: &Chain| {
                next.keys.iter().filter(|k| &k.chain == chain && !s.keys.iter().any(|o| o.kid == k.kid)).count()
            };
            for chain in next.keys.iter().map(|k| k.chain.clone()).collect::<BTreeSet<_>>() {
                assert!(fresh(&self.committed, &chain) <= 1, "one step minted two keys for {chain}");
            }
            assert_eq!(next.revision, self.committed.revision + 1, "revisions advance by one");
            assert!(
                self.history.insert(next.revision, next.clone()).is_none(),
                "revision {} written twice",
                next.revision
            );
            self.committed = next;
            true
        }
    }

    fn check(spec: &AuthPolicySpec, state: &SignerState, now: &Time) -> Result<(), TestCaseError> {
        if state.revision == 0 {
            return Ok(());
        }
        for chain in chains(spec) {
            let valid = state.keys.iter().filter(|k| k.chain == chain && k.valid_at(now)).count();
            let active = state.keys.iter().filter(|k| k.chain == chain && k.state == KeyState::Active).count();
            prop_assert!(valid >= 1, "{chain} has no valid key at {:?}: {:?}", now, state.keys);
            prop_assert_eq!(active, 1, "{} has {} active keys", chain, active);
            let max = rotation(spec).max_valid_keys.max(2) as usize + 1;
            prop_assert!(valid <= max, "{chain} has {valid} valid keys");
        }
        for key in state.keys.iter().filter(|k| k.state == KeyState::Staged) {
            prop_assert!(
                key.activates_at.as_ref().unwrap().0 > key.created_at.0,
                "a staged key is used before it is published"
            );
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn no_schedule_revoke_crash_or_race_leaves_zero_valid_keys(which in 0usize..SPECS.len(), actions in proptest::collection::vec(action(), 1..80)) {
            let mut spec = spec(SPECS[which]);
            let mut now = at(1_700_000_000);
            let mut store = Store { committed: SignerState::default(), history: BTreeMap::new() };
            let mut nonce: Option<String> = None;
            let step_once = |spec: &AuthPolicySpec, state: &SignerState, now: &Time, nonce: Option<&str>| {
                let inputs = Inputs { spec, state, now, rotate_nonce: nonce };
                plan(&inputs).ok().flatten().map(|step| execute(&inputs, &step).expect("a planned step executes"))
            };
            // The operator mints first.
            let first = step_once(&spec, &store.committed, &now, None).unwrap();
            store.commit(0, first);
            for action in actions {
                match action {
                    Action::Advance(secs) => {
                        // Between runs nobody writes; the invariant must hold at every instant.
                        for t in [now.0.as_second() + secs / 2, now.0.as_second() + secs] {
                            check(&spec, &store.committed, &at(t))?;
                        }
                        now = at(now.0.as_second() + secs);
                    }
                    Action::Run => {
                        let read = store.committed.clone();
                        if let Some(next) = step_once(&spec, &read, &now, nonce.as_deref()) {
                            prop_assert!(store.commit(read.revision, next));
                        }
                    }
                    Action::Killed => {
                        // Computed (and possibly minted), never written: nothing may change.
                        let before = store.committed.clone();
                        let _ = step_once(&spec, &before, &now, nonce.as_deref());
                        prop_assert_eq!(&store.committed, &before);
                    }
                    Action::Concurrent => {
                        let read = store.committed.clone();
                        let a = step_once(&spec, &read, &now, nonce.as_deref());
                        let b = step_once(&spec, &read, &now, nonce.as_deref());
                        if let (Some(a), Some(b)) = (a, b) {
                            prop_assert!(store.commit(read.revision, a));
                            prop_assert!(!store.commit(read.revision, b), "the second writer must lose");
                        }
                    }
                    Action::Revoke(index) => {
                        let kids: Vec<String> = store.committed.keys.iter().map(|k| k.kid.clone()).collect();
                        if !kids.is_empty() {
                            let kid = kids[index % kids.len()].clone();
                            spec.revocation = Some(Revocation { kids: vec![kid], issued_before: None, reason: "test".into() });
                        }
                    }
                    Action::RevokeBefore => {
                        spec.revocation = Some(Revocation { kids: vec![], issued_before: Some(now.clone()), reason: "test".into() });
                    }
                    Action::Manual(n) => nonce = Some(format!("n{n}")),
                    Action::Unrevoke => spec.revocation = None,
                }
                check(&spec, &store.committed, &now)?;
            }
        }
    }
}
