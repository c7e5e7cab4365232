//! The AuthPolicy controller and the `rotate` executor against a real kube-apiserver, with an
//! injected clock. No kubelet runs here: the CronJob is created but nothing schedules it, so each
//! test runs the executor's one step itself, as the CronJob's ServiceAccount (impersonated).

mod support;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use mailagent_crds::contract::{KeyState, Keyring};
use mailagent_crds::{AuthPolicy, conditions};
use mailagent_operator::controller::authpolicy::rotate::{Ran, run_once};
use mailagent_operator::controller::authpolicy::{Clock, ManualClock};
use mailagent_operator::shard::BASE_NAME as FIELD_MANAGER;
use mailagent_tests::TestNamespace;
use serde_json::json;
use support::{RunningPolicies, eventually, rotator_client, wait_for};

const ROTATING: &str = "mode: hybrid\napiKeys: [{name: ci, scopes: [mail:scan]}]\njwt: {audiences: [mailagent], maxTokenLifetime: 1m}\nrotation: {every: 5m, overlap: 2m, propagation: 1m}";

/// Every log line of this test binary, to prove no generated secret is ever logged.
fn captured_logs() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        struct Sink;
        impl std::io::Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                captured_logs().lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info,mailagent_operator=debug")
            .with_writer(|| Sink)
            .with_ansi(false)
            .try_init();
        Mutex::new(Vec::new())
    })
}

async fn apply_policy(client: &Client, ns: &str, name: &str, spec_yaml: &str) {
    let spec: serde_json::Value = serde_yaml::from_str(spec_yaml).unwrap();
    let body =
        json!({"apiVersion": "mailagent.dev/v1alpha1", "kind": "AuthPolicy", "metadata": {"name": name}, "spec": spec});
    Api::<AuthPolicy>::namespaced(client.clone(), ns)
        .patch(name, &PatchParams::apply("a-user").force(), &Patch::Apply(&body))
        .await
        .unwrap_or_else(|e| panic!("applying {name}: {e}"));
}

async fn ready_policy(client: &Client, ns: &str, name: &str) -> AuthPolicy {
    let api = Api::<AuthPolicy>::namespaced(client.clone(), ns);
    wait_for(&api, name, |p| {
        p.status.as_ref().is_some_and(|s| {
            s.revision > 0 && conditions::find(&s.conditions, conditions::READY).is_some_and(|c| c.status == "True")
        })
    })
    .await
}

async fn keyring(client: &Client, ns: &str, policy: &str) -> Keyring {
    let secret = Api::<Secret>::namespaced(client.clone(), ns).get(&format!("{policy}-keyring")).await.unwrap();
    serde_json::from_slice(&secret.data.unwrap()["keyring.json"].0).unwrap()
}

async fn client_key(client: &Client, ns: &str, policy: &str, name: &str) -> (Vec<u8>, String) {
    let secret = Api::<Secret>::namespaced(client.clone(), ns).get(&format!("{policy}-client-{name}")).await.unwrap();
    let data = secret.data.unwrap();
    (data["api-key"].0.clone(), String::from_utf8(data["kid"].0.clone()).unwrap())
}

fn jwt_states(ring: &Keyring) -> Vec<KeyState> {
    ring.jwt_keys.iter().map(|k| k.state).collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

async fn setup(specs: &[(&str, &str)]) -> (Client, TestNamespace, ManualClock, RunningPolicies) {
    captured_logs();
    let admin = support::admin().await;
    let ns = TestNamespace::create(&admin).await;
    for (name, spec) in specs {
        apply_policy(&admin, ns.name(), name, spec).await;
    }
    let clock = ManualClock::new(Timestamp::now());
    let controller = RunningPolicies::start(ns.name(), Arc::new(clock.clone())).await;
    for (name, _) in specs {
        ready_policy(&admin, ns.name(), name).await;
        // The executor's Role and binding come after the keys; wait until its rights are in force.
        let as_executor = Api::<AuthPolicy>::namespaced(rotator_client(ns.name(), name).await, ns.name());
        eventually(
            "the executor's rights",
            Duration::from_secs(60),
            || async { Some(as_executor.get(name).await.is_ok()) },
            |ok| *ok,
        )
        .await;
    }
    (admin, ns, clock, controller)
}

#[tokio::test]
async fn a_rotation_walks_staged_active_verifying_retired_on_the_clock() {
    let (admin, ns, clock, controller) = setup(&[("p", ROTATING)]).await;
    let ns = ns.name().to_owned();
    let first = keyring(&admin, &ns, "p").await;
    assert_eq!((first.api_keys.len(), jwt_states(&first)), (1, vec![KeyState::Active]));
    let (key, kid) = client_key(&admin, &ns, "p", "ci").await;
    assert_eq!(first.api_keys[0].sha256, sha256_hex(&key), "the keyring holds the client's key as a hash");
    assert_eq!(first.api_keys[0].kid, kid);

    // The executor and its rights exist, though no node runs it here.
    let job = Api::<CronJob>::namespaced(admin.clone(), &ns).get("p-rotate").await.unwrap().spec;
    assert_eq!((job.concurrency_policy.as_deref(), job.suspend), (Some("Forbid"), Some(false)));
    Api::<ServiceAccount>::namespaced(admin.clone(), &ns).get("p-rotate").await.unwrap();
    Api::<Role>::namespaced(admin.clone(), &ns).get("p-rotate").await.unwrap();
    Api::<RoleBinding>::namespaced(admin.clone(), &ns).get("p-rotate").await.unwrap();

    let rotator = rotator_client(&ns, "p").await;
    assert_eq!(run_once(&rotator, FIELD_MANAGER, &ns, "p", &clock.now()).await.unwrap(), Ran::NothingDue);
    let policy = Api::<AuthPolicy>::namespaced(admin.clone(), &ns).get("p").await.unwrap();
    let next = policy.status.unwrap().next_rotation_time.expect("the controller decides when");
    clock.set(next.0);
    assert_eq!(run_once(&rotator, FIELD_MANAGER, &ns, "p", &clock.now()).await.unwrap(), Ran::Stepped("stage", 2));
    let staged = keyring(&admin, &ns, "p").await;
    assert_eq!(jwt_states(&staged), [KeyState::Active, KeyState::Staged], "published before use");
    assert_eq!(client_key(&admin, &ns, "p", "ci").await.1, kid, "a staged key is not handed out");
    assert_eq!(run_once(&rotator, FIELD_MANAGER, &ns, "p", &clock.now()).await.unwrap(), Ran::NothingDue);

    clock.advance(Duration::from_secs(60));
    assert_eq!(run_once(&rotator, FIELD_MANAGER, &ns, "p", &clock.now()).await.unwrap(), Ran::Stepped("promote", 3));
    let promoted = keyring(&admin, &ns, "p").await;
    assert_eq!(jwt_states(&promoted), [KeyState::Verifying, KeyState::Active]);
    assert!(promoted.jwt_keys[0].not_after.is_some(), "the old key verifies until its overlap ends");
    let (new_key, new_kid) = client_key(&admin, &ns, "p", "ci").await;
    assert_ne!(new_kid, kid);
    assert!(promoted.api_keys.iter().any(|k| k.kid == kid && k.state == KeyState::Verifying));
    assert!(promoted.api_keys.iter().any(|k| k.sha256 == sha256_hex(&new_key) && k.state == KeyState::Active));

    clock.advance(Duration::from_secs(120));
    assert_eq!(run_once(&rotator, FIELD_MANAGER, &ns, "p", &clock.now()).await.unwrap(), Ran::Stepped("retire", 4));
    let retired = keyring(&admin, &ns, "p").await;
    assert_eq!(jwt_states(&retired), [KeyState::Active]);
    assert_eq!(retired.api_keys.len(), 1);
    let policies = Api::<AuthPolicy>::namespaced(admin.clone(), &ns);
    let status = wait_for(&policies, "p", |p| p.status.as_ref().is_some_and(|s| s.revision == 4)).await.status.unwrap();
    let states: Vec<_> = status.keys.iter().map(|k| k.state).collect();
    assert_eq!(states.iter().filter(|s| **s == KeyState::Retired).count(), 2, "{states:?}");
    assert_eq!(status.valid_keys, 2);
    assert!(status.keys.iter().all(|k| k.fingerprint.starts_with("sha256:") && k.fingerprint.len() == 19));
    controller.stop().await;
}

#[tokio::test]
async fn the_executor_may_rotate_its_own_policy_and_nothing_else() {
    let (admin, ns, clock, controller) = setup(&[("a", ROTATING), ("b", ROTATING)]).await;
    let ns = ns.name().to_owned();
    let rotator = rotator_client(&ns, "a").await;
    run_once(&rotator, FIELD_MANAGER, &ns, "a", &clock.now()).await.expect("its own policy");
    let forbidden = |r: &Result<Ran, mailagent_operator::error::Error>| matches!(r, Err(mailagent_operator::error::Error::Kube { source: kube::Error::Api(s), .. }) if s.code == 403);
    assert!(
        forbidden(&run_once(&rotator, FIELD_MANAGER, &ns, "b", &clock.now()).await),
        "another policy must be forbidden"
    );
    let secrets = Api::<Secret>::namespaced(rotator.clone(), &ns);
    for result in [secrets.get("b-signer").await.map(|_| ()), secrets.list(&ListParams::default()).await.map(|_| ())] {
        assert!(matches!(result, Err(kube::Error::Api(s)) if s.code == 403));
    }
    let new = Secret {
        metadata: kube::api::ObjectMeta { name: Some("a-other".into()), ..Default::default() },
        ..Default::default()
    };
    assert!(
        matches!(secrets.create(&PostParams::default(), &new).await, Err(kube::Error::Api(s)) if s.code == 403),
        "no create"
    );
    drop(admin);
    controller.stop().await;
}

#[tokio::test]
async fn concurrent_runs_take_one_step_and_mint_once() {
    let (admin, ns, clock, controller) = setup(&[("p", ROTATING)]).await;
    let ns = ns.name().to_owned();
    let policy = Api::<AuthPolicy>::namespaced(admin.clone(), &ns).get("p").await.unwrap();
    clock.set(policy.status.unwrap().next_rotation_time.unwrap().0);
    let rotator = rotator_client(&ns, "p").await;
    let now = clock.now();
    let runs = futures::future::join_all((0..4).map(|_| run_once(&rotator, FIELD_MANAGER, &ns, "p", &now))).await;
    let stepped = runs.iter().filter(|r| matches!(r, Ok(Ran::Stepped(..)))).count();
    assert_eq!(stepped, 1, "exactly one of four concurrent runs steps: {runs:?}");
    assert!(runs.iter().all(|r| r.is_ok()), "{runs:?}");
    let ring = keyring(&admin, &ns, "p").await;
    assert_eq!(ring.revision, 2);
    assert_eq!(jwt_states(&ring), [KeyState::Active, KeyState::Staged], "one key minted, not four");
    controller.stop().await;
}

#[tokio::test]
async fn a_revoke_takes_the_kid_out_at_once_and_no_secret_leaks() {
    let spec =
        "mode: hybrid\napiKeys: [{name: ci, scopes: [mail:scan]}]\njwt: {audiences: [mailagent], algorithms: [ES256]}";
    let (admin, ns, _clock, controller) = setup(&[("p", spec)]).await;
    let ns = ns.name().to_owned();
    let policies = Api::<AuthPolicy>::namespaced(admin.clone(), &ns);
    let old = policies.get("p").await.unwrap().status.unwrap().current_kid.unwrap();
    let (old_key, old_client_kid) = client_key(&admin, &ns, "p", "ci").await;
    let revoked = format!("{spec}\nrevocation: {{kids: [{old}, {old_client_kid}], reason: leaked in a ticket}}");
    apply_policy(&admin, &ns, "p", &revoked).await;
    let secrets = Api::<Secret>::namespaced(admin.clone(), &ns);
    let ring = eventually(
        "the revoked kids to leave the keyring",
        Duration::from_secs(30),
        || async { secrets.get("p-keyring").await.ok() },
        |s| {
            let ring: Keyring = serde_json::from_slice(&s.data.as_ref().unwrap()["keyring.json"].0).unwrap();
            !ring.jwt_keys.iter().any(|k| k.kid == old) && !ring.api_keys.iter().any(|k| k.kid == old_client_kid)
        },
    )
    .await;
    let ring: Keyring = serde_json::from_slice(&ring.data.unwrap()["keyring.json"].0).unwrap();
    assert_eq!((ring.jwt_keys.len(), ring.api_keys.len()), (1, 1), "replacements were minted and activated");
    assert_eq!(ring.jwt_keys[0].state, KeyState::Active);
    // The keyring is published before the client Secrets (verifiers first), so the replacement
    // reaches the client's Secret a moment after the keyring drops the revoked key.
    let replacement = ring.api_keys[0].clone();
    let (new_key, _) = eventually(
        "the client's Secret to carry the replacement key",
        Duration::from_secs(30),
        || async { Some(client_key(&admin, &ns, "p", "ci").await) },
        |(_, kid)| *kid == replacement.kid,
    )
    .await;
    // Compared by hash: an assertion message must never print a key.
    assert!(sha256_hex(&new_key) == replacement.sha256, "the client's key is the one the keyring accepts");
    assert!(new_key != old_key, "the client got a new key, not its revoked one");
    let status = wait_for(&policies, "p", |p| {
        p.status.as_ref().is_some_and(|s| {
            conditions::find(&s.conditions, "Revoking").is_some_and(|c| c.reason == "Revoked")
                && s.current_kid.as_deref() != Some(old.as_str())
        })
    })
    .await
    .status
    .unwrap();
    assert!(status.keys.iter().any(|k| k.kid == old && k.state == KeyState::Revoked));

    // No generated value anywhere a person or a log shipper reads.
    let mut values: Vec<String> = Vec::new();
    let signer = secrets.get("p-signer").await.unwrap();
    let document: serde_json::Value = serde_json::from_slice(&signer.data.unwrap()["signer.json"].0).unwrap();
    for key in document["keys"].as_array().unwrap() {
        if let Some(secret) = key["secret"].as_str() {
            values.push(secret.to_owned());
            use base64::Engine;
            let raw = base64::engine::general_purpose::STANDARD.decode(secret).unwrap();
            values.push(String::from_utf8_lossy(&raw).into_owned());
        }
    }
    for key in [old_key, new_key] {
        values.push(String::from_utf8(key).unwrap());
    }
    let status_json = serde_json::to_string(&policies.get("p").await.unwrap().status).unwrap();
    let events = serde_json::to_string(
        &Api::<Event>::namespaced(admin.clone(), &ns).list(&ListParams::default()).await.unwrap().items,
    )
    .unwrap();
    let logs = String::from_utf8_lossy(&captured_logs().lock().unwrap()).into_owned();
    assert!(logs.contains("revoked"), "the revoke was logged (by kid and fingerprint)");
    for (i, value) in values.iter().filter(|v| v.len() >= 16).enumerate() {
        for (what, text) in [("status", &status_json), ("events", &events), ("logs", &logs)] {
            assert!(!text.contains(value.as_str()), "generated secret #{i} appears in the {what}");
        }
    }
    controller.stop().await;
}

#[tokio::test]
async fn status_says_who_may_do_what_and_follows_each_agents_mutation_switch() {
    let spec = "mode: hybrid\nscopes: [mail:scan, unsubscribe:read, unsubscribe:execute]\napiKeys: [{name: ci, scopes: [mail:scan]}]\njwt: {audiences: [mailagent]}\nmcp: {mode: api_key}";
    let (admin, ns, _clock, controller) = setup(&[("p", spec)]).await;
    let ns = ns.name().to_owned();
    let policies = Api::<AuthPolicy>::namespaced(admin.clone(), &ns);
    let status = policies.get("p").await.unwrap().status.unwrap();
    let principals: Vec<_> = status.permissions.iter().map(|p| p.principal.as_str()).collect();
    assert_eq!(principals, ["apiKey/ci", "jwt"]);
    let ci = &status.permissions[0];
    assert_eq!(
        (ci.rest.as_slice(), ci.mcp_tools.as_slice()),
        (&["POST /v1/mail/scan".to_owned()][..], &["mail_scan".to_owned()][..])
    );
    let jwt = &status.permissions[1];
    assert!(jwt.mcp_tools.is_empty(), "the MCP door takes API keys only under this policy");
    assert_eq!(jwt.a2a_skills, ["mail_scan", "unsubscribe_candidates", "unsubscribe_execute"]);

    let agents = Api::<mailagent_crds::MailAgent>::namespaced(admin.clone(), &ns);
    let agent = |mutations: bool| {
        json!({"apiVersion": "mailagent.dev/v1alpha1", "kind": "MailAgent", "metadata": {"name": "inbox"},
            "spec": {"image": "mailagent:test", "authPolicyRef": {"name": "p"}, "mailbox": {"provider": "maildir"},
                     "mcp": {"enableMutationTools": mutations}}})
    };
    let switch = |mutations: bool| {
        let agents = agents.clone();
        let body = agent(mutations);
        async move { agents.patch("inbox", &PatchParams::apply("a-user").force(), &Patch::Apply(&body)).await.unwrap() }
    };
    switch(false).await;
    let off = wait_for(&policies, "p", |p| p.status.as_ref().is_some_and(|s| s.mail_agents.len() == 1)).await;
    let listed = &off.status.unwrap().mail_agents[0];
    assert_eq!(listed.name, "inbox");
    assert_eq!(listed.mutation_tools_off, ["unsubscribe_execute", "unsubscribe_digest"]);
    switch(true).await;
    wait_for(&policies, "p", |p| {
        p.status.as_ref().is_some_and(|s| s.mail_agents.len() == 1 && s.mail_agents[0].mutation_tools_off.is_empty())
    })
    .await;
    agents.delete("inbox", &Default::default()).await.unwrap();
    wait_for(&policies, "p", |p| p.status.as_ref().is_some_and(|s| s.mail_agents.is_empty())).await;
    controller.stop().await;
}

/// A signer Secret deleted by hand after keys were handed out mints nothing: minting afresh would
/// replace every client's key at once. The policy says so (Degraded, a Warning Event), the
/// published keys stay as they are, and a restored Secret clears it.
#[tokio::test]
async fn a_lost_signer_secret_mints_nothing_until_it_is_back() {
    let (admin, ns, _clock, controller) = setup(&[("p", ROTATING)]).await;
    let ns = ns.name().to_owned();
    let secrets = Api::<Secret>::namespaced(admin.clone(), &ns);
    let policies = Api::<AuthPolicy>::namespaced(admin.clone(), &ns);
    let signer = secrets.get("p-signer").await.unwrap();
    let (ring, key) = (keyring(&admin, &ns, "p").await, client_key(&admin, &ns, "p", "ci").await);
    let revision = policies.get("p").await.unwrap().status.unwrap().revision;

    secrets.delete("p-signer", &Default::default()).await.unwrap();
    // Nothing watches Secrets: a change to the policy brings the reconcile that finds it gone.
    let touch = json!({"metadata": {"annotations": {"example.com/touched": "signer-deleted"}}});
    policies.patch("p", &PatchParams::default(), &Patch::Merge(&touch)).await.unwrap();
    let degraded = |p: &AuthPolicy| {
        p.status
            .as_ref()
            .and_then(|s| conditions::find(&s.conditions, conditions::DEGRADED))
            .is_some_and(|c| c.status == "True" && c.reason == "SignerSecretMissing" && c.message.contains("p-signer"))
    };
    let reported = wait_for(&policies, "p", degraded).await;
    let status = reported.status.unwrap();
    assert_eq!(status.revision, revision, "the status keeps the keys it reported");
    assert!(conditions::find(&status.conditions, conditions::READY).is_some_and(|c| c.status == "True"));
    mailagent_tests::await_event(&admin, &ns, Duration::from_secs(30), |e| {
        e.type_.as_deref() == Some("Warning") && e.reason.as_deref() == Some("SignerSecretMissing")
    })
    .await
    .expect("a Warning Event saying the signer Secret is missing");
    assert!(secrets.get_opt("p-signer").await.unwrap().is_none(), "no signer was minted afresh");
    // `assert!`, not `assert_eq!`: a failure must not print the keyring (it holds HS secrets).
    assert!(keyring(&admin, &ns, "p").await == ring, "the published keyring is unchanged");
    assert!(client_key(&admin, &ns, "p", "ci").await == key, "the client's key is unchanged");

    // Restored from a backup: the policy is looked at again within its recheck and is whole.
    let mut restored = signer.clone();
    restored.metadata = kube::api::ObjectMeta {
        name: signer.metadata.name.clone(),
        labels: signer.metadata.labels.clone(),
        owner_references: signer.metadata.owner_references.clone(),
        ..Default::default()
    };
    secrets.create(&PostParams::default(), &restored).await.unwrap();
    eventually(
        "Degraded to clear once the signer Secret is back",
        Duration::from_secs(60),
        || async { policies.get("p").await.ok() },
        |p| !degraded(p) && p.status.as_ref().is_some_and(|s| s.revision == revision),
    )
    .await;
    assert!(keyring(&admin, &ns, "p").await == ring, "the keyring is unchanged after the restore");
    controller.stop().await;
}
