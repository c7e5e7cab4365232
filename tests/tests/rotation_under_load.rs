//! The workload under steady load across a full rotation, on the configuration the operator
//! renders and the keyring the operator publishes. No kubelet runs here: the test plays it,
//! copying the keyring Secret into a directory the way the kubelet's atomic writer does (a
//! timestamped directory and a `..data` symlink renamed over the old one), and plays the client
//! side too (re-reading the client Secret, minting tokens with the token CLI's library).

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use mailagent_crds::contract::files;
use mailagent_crds::{AuthPolicy, MailAgent, Scope};
use mailagent_operator::controller::authpolicy::material::SignerState;
use mailagent_operator::controller::authpolicy::rotate::{Ran, run_once};
use mailagent_operator::controller::authpolicy::{Clock, ManualClock};
use mailagent_operator::controller::mailagent::build::{Inputs, render_config, validate};
use mailagent_operator::shard::BASE_NAME as FIELD_MANAGER;
use mailagent_operator::token;
use mailagent_service::settings::Source;
use mailagent_service::testing::{CannedAssistant, post, send};
use mailagent_tests::TestNamespace;
use serde_json::json;
use support::{RunningPolicies, eventually, rotator_client, wait_for};
use tokio::sync::RwLock;

const POLICY: &str = "mode: hybrid\napiKeys: [{name: ci, scopes: [mail:scan]}]\njwt: {audiences: [mailagent], algorithms: [ES256], maxTokenLifetime: 1m}\nrotation: {every: 5m, overlap: 2m, propagation: 1m}";

/// Copies a Secret into `dir` as the kubelet does whenever its data changes.
async fn kubelet(secrets: Api<Secret>, name: String, dir: std::path::PathBuf, stop: Arc<AtomicBool>) {
    let mut last = None;
    let mut generation = 0u32;
    while !stop.load(Ordering::Relaxed) {
        if let Ok(secret) = secrets.get(&name).await
            && secret.data != last
        {
            generation += 1;
            let data = format!("..gen_{generation:04}");
            std::fs::create_dir(dir.join(&data)).unwrap();
            for (file, bytes) in secret.data.clone().unwrap_or_default() {
                std::fs::write(dir.join(&data).join(&file), &bytes.0).unwrap();
                let link = dir.join(&file);
                if !link.exists() {
                    std::os::unix::fs::symlink(format!("..data/{file}"), link).unwrap();
                }
            }
            std::os::unix::fs::symlink(&data, dir.join("..data_tmp")).unwrap();
            std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
            last = secret.data;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What the load generator's clients hold: the API key from their mounted Secret and a token
/// minted with the Active key, refreshed when either changes.
#[derive(Clone, Default)]
struct Credentials {
    api_key: String,
    token: String,
    jwt_kid: String,
}

async fn refresh(admin: &Client, ns: &str, spec: &mailagent_crds::AuthPolicySpec) -> Credentials {
    let secrets = Api::<Secret>::namespaced(admin.clone(), ns);
    let client = secrets.get("p-client-ci").await.unwrap().data.unwrap();
    let signer = secrets.get("p-signer").await.unwrap().data.unwrap();
    let state: SignerState = serde_json::from_slice(&signer[files::SIGNER_STATE].0).unwrap();
    let request = token::Request {
        subject: "load".into(),
        audience: "mailagent".into(),
        ttl: None,
        scopes: vec![Scope::MailScan],
        now: Timestamp::now().as_second(),
    };
    let kid = state.active(&mailagent_operator::controller::authpolicy::material::Chain::jwt()).unwrap().kid.clone();
    Credentials {
        api_key: String::from_utf8(client[files::CLIENT_API_KEY].0.clone()).unwrap(),
        token: token::mint(spec, &state, &request).unwrap(),
        jwt_kid: kid,
    }
}

#[tokio::test]
async fn zero_failed_requests_across_a_full_rotation_and_old_keys_fail_right_after_a_revoke() {
    let admin = support::admin().await;
    let ns = TestNamespace::create(&admin).await;
    let ns = ns.name().to_owned();
    let spec: serde_json::Value = serde_yaml::from_str(POLICY).unwrap();
    let body =
        json!({"apiVersion": "mailagent.dev/v1alpha1", "kind": "AuthPolicy", "metadata": {"name": "p"}, "spec": spec});
    let policies = Api::<AuthPolicy>::namespaced(admin.clone(), &ns);
    policies.patch("p", &PatchParams::apply("a-user").force(), &Patch::Apply(&body)).await.unwrap();
    let clock = ManualClock::new(Timestamp::now());
    let controller = RunningPolicies::start(&ns, Arc::new(clock.clone())).await;
    let policy = wait_for(&policies, "p", |p| p.status.as_ref().is_some_and(|s| s.revision > 0)).await;

    // The workload on the settings the operator renders for a MailAgent using this policy.
    let agent: MailAgent = serde_json::from_value(json!({"apiVersion": "mailagent.dev/v1alpha1", "kind": "MailAgent",
        "metadata": {"name": "inbox", "namespace": ns}, "spec": {"image": "i", "authPolicyRef": {"name": "p"},
        "mailbox": {"provider": "maildir"}, "rateLimit": {"perMinute": 1000000, "burst": 100000}}}))
    .unwrap();
    let rendered = render_config(&validate(Inputs { agent: &agent, policy: Some(&policy.spec) }).unwrap());
    let keyring_dir = tempfile::tempdir().unwrap();
    let mut env: HashMap<String, String> = rendered.settings.clone().into_iter().collect();
    env.insert("MAILAGENT_KEYRING_DIR".into(), keyring_dir.path().to_str().unwrap().into());
    env.retain(|k, _| !["MAILDIR_PATH", "MCP_ALLOWED_HOSTS"].contains(&k.as_str()));
    let stop = Arc::new(AtomicBool::new(false));
    let stop_kubelet = Arc::new(AtomicBool::new(false));
    let secrets = Api::<Secret>::namespaced(admin.clone(), &ns);
    let kubelet_task =
        tokio::spawn(kubelet(secrets.clone(), "p-keyring".into(), keyring_dir.path().into(), stop_kubelet.clone()));
    eventually(
        "the keyring to be materialised",
        Duration::from_secs(30),
        || async { Some(keyring_dir.path().join("keyring.json").exists()) },
        |e| *e,
    )
    .await;
    let source = Source::from_map(env);
    let (app, digest) = mailagent_service::server::build(&source, Some(Arc::new(CannedAssistant))).unwrap();
    tokio::spawn(mailagent_service::reload::watch(app.clone(), source, digest));

    let creds = Arc::new(RwLock::new(refresh(&admin, &ns, &policy.spec).await));
    let first = creds.read().await.clone();
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut load = Vec::new();
    for worker in 0..8 {
        let (app, creds, ok, failed, stop) = (app.clone(), creds.clone(), ok.clone(), failed.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let c = creds.read().await.clone();
                let bearer = format!("Bearer {}", c.token);
                let header = if (n + worker).is_multiple_of(2) {
                    ("x-api-key", c.api_key.as_str())
                } else {
                    ("authorization", bearer.as_str())
                };
                let (status, headers, _) = send(&app, post("/v1/mail/scan", &[header], json!({}))).await;
                if status == 200 {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    let why = headers.get("x-auth-failure").map(|v| v.to_str().unwrap().to_owned());
                    eprintln!("request failed: {status} {why:?} with {}", header.0);
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                n += 1;
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }));
    }
    let client_side = {
        let (admin, ns, spec, creds, stop) =
            (admin.clone(), ns.clone(), policy.spec.clone(), creds.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let fresh = refresh(&admin, &ns, &spec).await;
                let changed = {
                    let c = creds.read().await;
                    c.api_key != fresh.api_key || c.jwt_kid != fresh.jwt_kid
                };
                if changed {
                    *creds.write().await = fresh;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let started = Instant::now();
    let rotator = rotator_client(&ns, "p").await;
    let as_executor = Api::<AuthPolicy>::namespaced(rotator.clone(), &ns);
    eventually(
        "the executor's rights",
        Duration::from_secs(60),
        || async { Some(as_executor.get("p").await.is_ok()) },
        |ok| *ok,
    )
    .await;
    let seen = |revision: u64| {
        let app = app.clone();
        async move {
            eventually(
                "the workload to load the new keyring",
                Duration::from_secs(30),
                || async { Some(app.auth.keys().revision) },
                |r| *r >= revision,
            )
            .await;
        }
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    clock.set(policies.get("p").await.unwrap().status.unwrap().next_rotation_time.unwrap().0);
    assert_eq!(run_once(&rotator, FIELD_MANAGER, &ns, "p", &clock.now()).await.unwrap(), Ran::Stepped("stage", 2));
    seen(2).await; // the propagation budget, played by the test's kubelet
    tokio::time::sleep(Duration::from_secs(2)).await;
    clock.advance(Duration::from_secs(60));
    assert_eq!(run_once(&rotator, FIELD_MANAGER, &ns, "p", &clock.now()).await.unwrap(), Ran::Stepped("promote", 3));
    seen(3).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    // During the overlap the previous key and tokens of the previous kid still work.
    let scan = |h: (&'static str, String)| post("/v1/mail/scan", &[(h.0, h.1.as_str())], json!({}));
    assert_eq!(send(&app, scan(("x-api-key", first.api_key.clone()))).await.0, 200, "previous API key in the overlap");
    assert_eq!(
        send(&app, scan(("authorization", format!("Bearer {}", first.token)))).await.0,
        200,
        "previous kid in the overlap"
    );
    clock.advance(Duration::from_secs(120));
    assert_eq!(run_once(&rotator, FIELD_MANAGER, &ns, "p", &clock.now()).await.unwrap(), Ran::Stepped("retire", 4));
    seen(4).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        send(&app, scan(("x-api-key", first.api_key.clone()))).await.0,
        401,
        "previous API key after its overlap"
    );

    // An emergency revoke of the current JWT kid: its tokens fail as soon as the file changes.
    let current = creds.read().await.clone();
    let revoked = format!("{POLICY}\nrevocation: {{kids: [{}], reason: drill}}", current.jwt_kid);
    let spec: serde_json::Value = serde_yaml::from_str(&revoked).unwrap();
    let body =
        json!({"apiVersion": "mailagent.dev/v1alpha1", "kind": "AuthPolicy", "metadata": {"name": "p"}, "spec": spec});
    let before = ok.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    client_side.await.unwrap();
    let elapsed = started.elapsed();
    let (served, lost) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!(
        "{served} requests in {elapsed:?} ({:.0}/s) across stage, promote and retire; {lost} failed",
        served as f64 / elapsed.as_secs_f64()
    );
    assert!(before > 1000, "too little load to mean anything: {before}");
    assert_eq!(lost, 0, "requests failed during the rotation");

    policies.patch("p", &PatchParams::apply("a-user").force(), &Patch::Apply(&body)).await.unwrap();
    seen(5).await;
    let (status, headers, _) = send(&app, scan(("authorization", format!("Bearer {}", current.token)))).await;
    assert_eq!(
        (status.as_u16(), headers.get("x-auth-failure").map(|v| v.to_str().unwrap())),
        (401, Some("unknown_kid"))
    );
    stop_kubelet.store(true, Ordering::Relaxed);
    let _ = kubelet_task.await;
    controller.stop().await;
}
