//! The product on a real local node (`make e2e`; it needs root, so a plain `cargo test` skips it
//! as ignored): the operator installed from the chart with helm and running as a pod, the sample
//! AuthPolicy and MailAgent, the workload pod serving the sample Maildir from its volume, the
//! official MCP and A2A Python SDKs calling the pod, the incident switch reaching the live pod,
//! suspend, an operator upgrade that rolls no agent pod, a drain that moves the operator's leader
//! to its standby, garbage collection that keeps the
//! retained volume, and a node teardown that leaves nothing on the host.

mod node_support;

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolume, PersistentVolumeClaim, Pod, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, EvictParams, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use mailagent_crds::MailAgent;
use mailagent_tests::product::{self, kubectl, run};
use mailagent_tests::product::{Credential, mutation_status, post_status};
use mailagent_tests::{ControlPlane, PlaneOptions, await_condition};
use node_support::{agent_ready, container_pid, ready_pods, restrictions, running_pod, step, until};
use serde_json::json;

const NS: &str = "mail";
const AGENT: &str = "inbox";
const TIMEOUT: Duration = Duration::from_secs(180);

fn sample(file: &str) -> String {
    format!("{}/../hack/samples/{file}", env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test]
#[ignore = "needs root and a local node: make e2e"]
async fn the_product_runs_as_pods_on_a_local_node() {
    let _ = tracing_subscriber::fmt().with_env_filter("info,kube_client=off").with_test_writer().try_init();
    let dir = tempfile::Builder::new().prefix("mailagent-e2e-").tempdir().unwrap();
    let leftovers = dir.path().join("host-leftovers");
    {
        let started = Instant::now();
        let options = PlaneOptions { controller_manager: true, node: true };
        let plane = ControlPlane::start_in_with(dir.path(), options).await.expect("a control plane with a node");
        step("control plane and node Ready", started);
        scenario(&plane, dir.path()).await;
    }
    // The node is gone: nothing it made is left on the host.
    let left = std::fs::read_to_string(&leftovers).expect("the node cleanup ran");
    assert!(left.is_empty(), "the node left on the host:\n{left}");
}

async fn scenario(plane: &ControlPlane, dir: &std::path::Path) {
    let node = plane.node().expect("started with a node");
    let client = plane.client().await;
    let t = Instant::now();
    let images = product::import_images(node).expect("images built and imported");
    product::seed_volumes(node).unwrap();
    step("images imported, volumes seeded", t);

    let t = Instant::now();
    product::install_operator(plane, None).expect("helm install");
    let operator_pods: Api<Pod> = Api::namespaced(client.clone(), product::OPERATOR_NAMESPACE);
    let operator = running_pod(&operator_pods, "app.kubernetes.io/name=mailagent-operator").await;
    assert_eq!(operator.spec.as_ref().unwrap().service_account_name.as_deref(), Some("mailagent-operator"));
    step("operator installed from the chart, running as a pod", t);

    let t = Instant::now();
    run(kubectl(plane).args(["apply", "-f", &sample("00-namespace.yaml"), "-f", &sample("10-authpolicy.yaml")]))
        .unwrap();
    let keys = dir.join("keys");
    product::client_credentials(plane, NS, "team-auth", &keys).unwrap();
    run(kubectl(plane).args(["apply", "-f", &sample("20-mailagent.yaml")])).unwrap();
    let agents: Api<MailAgent> = Api::namespaced(client.clone(), NS);
    let ready =
        await_condition(&agents, AGENT, agent_ready, TIMEOUT).await.expect("the sample MailAgent becomes Ready=True");
    let status = ready.and_then(|a| a.status).expect("a status");
    assert_eq!(status.url.as_deref(), Some(&*format!("http://{AGENT}-rest.{NS}.svc:8080")));
    assert_eq!(status.auth_mode.map(|m| m.to_string()).as_deref(), Some("hybrid"), "the sample policy's mode");
    gitops_health_of_a_ready_agent(&agents, dir).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let selector = format!("app.kubernetes.io/instance={AGENT}");
    let pod = running_pod(&pods, &selector).await;
    assert_eq!(pod.spec.as_ref().unwrap().containers[0].image.as_deref(), Some(images.workload.as_str()));
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), NS);
    let claim = claims.get(&format!("{AGENT}-state")).await.unwrap();
    assert_eq!(claim.status.as_ref().unwrap().phase.as_deref(), Some("Bound"));
    step("sample MailAgent Ready=True, its pod Running, its claim Bound", t);

    // Restricted, read from the container's process on this host (the image has no shell to exec).
    let pid = container_pid(node, &pod).expect("the container's process");
    let facts = restrictions(pid).expect("the container's /proc entries");
    assert_eq!(facts.uids, ["65532"; 4], "runs as the non-root user (real, effective, saved, fs)");
    assert_eq!(facts.cap_eff, 0, "no effective capabilities");
    assert_eq!(facts.cap_prm, 0, "no permitted capabilities");
    assert!(facts.no_new_privs, "NoNewPrivs");
    assert_eq!(facts.seccomp, 2, "seccomp in filter mode");
    assert!(facts.root_read_only, "read-only root filesystem");
    // Every container gets the IPC tmpfs mounts and the kubelet's termination-message file; the
    // pod's own writable places must be exactly its state and tmp volumes.
    let runtime = ["/dev/mqueue", "/dev/shm", "/dev/termination-log"];
    let mut writable: Vec<&str> = facts.writable.iter().map(String::as_str).filter(|p| !runtime.contains(p)).collect();
    writable.sort();
    assert_eq!(writable, ["/tmp", "/var/lib/mailagent"], "the only volumes the user can write: {:?}", facts.writable);
    step("pod restricted: uid 65532, no caps, NoNewPrivs, seccomp, ro root, writes only state/tmp (+shm)", t);

    // The official SDKs against the pod.
    let t = Instant::now();
    let pod_ip = pod.status.as_ref().unwrap().pod_ip.clone().expect("a pod IP");
    let base = format!("http://{pod_ip}:8080");
    let python = run(&mut std::process::Command::new(repo("hack/e2e/venv.sh"))).unwrap();
    let out = run(std::process::Command::new(python.trim())
        .arg(repo("hack/e2e/clients.py"))
        .arg(&base)
        .arg(&keys)
        .arg(format!("{AGENT}-mcp.{NS}.svc")))
    .expect("the MCP and A2A SDKs call the pod");
    println!("{out}");
    step("MCP (API key, JWT) and A2A SDK calls to the pod", t);

    verified(&agents).await;
    incident_switch(&client, &base, &keys, &pod).await;
    rotation_job_and_revoke(plane, &client, &base, &keys).await;
    full_rotation_under_load(plane, &client, &pods, &selector).await;
    suspend_and_resume(&client, &pods, &selector).await;
    // Rolls the pod (the edit, then its undoing), so after everything that uses the first pod.
    a_hand_edit_is_reported_and_undone(&client, &agents).await;
    let pod = running_pod(&pods, &selector).await;
    operator_upgrade(plane, &client, &images.operator, &pods, &pod).await;
    a_drain_moves_the_operator_leader(plane, &client, &images.operator).await;
    delete_keeps_the_volume(&client).await;
}

/// The agent's `Verified` condition as (status, reason), if it has one.
fn verified_condition(agent: Option<&MailAgent>) -> Option<(String, String)> {
    let status = agent?.status.as_ref()?;
    let c = mailagent_crds::conditions::find(&status.conditions, mailagent_crds::conditions::VERIFIED)?;
    Some((c.status.clone(), c.reason.clone()))
}

fn passed(agent: Option<&MailAgent>) -> bool {
    verified_condition(agent).is_some_and(|(s, r)| s == "True" && r == "DoorsAnswerAsDeclared")
}

/// The operator probes the pod through its Service's endpoints and reports `Verified=True` with
/// what it saw.
async fn verified(agents: &Api<MailAgent>) {
    let t = Instant::now();
    let agent = await_condition(agents, AGENT, passed, TIMEOUT).await.expect("Verified=True").unwrap();
    let report = agent.status.unwrap().verification.expect("status.verification");
    assert_eq!(report.endpoints, 1, "the one serving pod probed");
    assert!(report.a2a_protocol_version.is_some() && report.a2a_skills.is_some_and(|n| n > 0), "{report:?}");
    assert!(report.mcp_protocol_version.is_some(), "an MCP handshake with the operator's token: {report:?}");
    let tools = report.mcp_tools.expect("tools/list under the operator's token");
    assert!(tools > 0, "{report:?}");
    step(&format!("Verified=True: health, 401 without credentials, card, MCP with {tools} tools"), t);
}

/// A hand edit of the Deployment (an env entry switching the mutation tools on) is reported as
/// `Verified=False ConfigDrifted` with a Warning Event, taken back, and verified again.
async fn a_hand_edit_is_reported_and_undone(client: &Client, agents: &Api<MailAgent>) {
    let t = Instant::now();
    await_condition(agents, AGENT, passed, TIMEOUT).await.expect("Verified=True before the edit");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let container =
        deployments.get(AGENT).await.unwrap().spec.unwrap().template.spec.unwrap().containers[0].name.clone();
    let edit = json!({"spec": {"template": {"spec": {"containers": [{
        "name": container,
        "env": [{"name": "MCP_ENABLE_MUTATION_TOOLS", "value": "true"}],
    }]}}}});
    deployments
        .patch(
            AGENT,
            &PatchParams { field_manager: Some("kubectl-edit".into()), ..Default::default() },
            &Patch::Strategic(&edit),
        )
        .await
        .unwrap();
    let drifted =
        |a: Option<&MailAgent>| verified_condition(a).is_some_and(|(s, r)| s == "False" && r == "ConfigDrifted");
    await_condition(agents, AGENT, drifted, TIMEOUT).await.expect("Verified=False ConfigDrifted");
    let restored = |d: Option<&Deployment>| {
        d.and_then(|d| d.spec.as_ref()).is_some_and(|s| {
            let env =
                s.template.spec.as_ref().map(|p| p.containers[0].env.clone().unwrap_or_default()).unwrap_or_default();
            !env.iter().any(|e| e.name == "MCP_ENABLE_MUTATION_TOOLS")
        })
    };
    await_condition(&deployments, AGENT, restored, TIMEOUT).await.expect("the operator takes the edit back");
    mailagent_tests::await_event(client, NS, TIMEOUT, |e| {
        e.type_.as_deref() == Some("Warning")
            && e.reason.as_deref() == Some("ConfigDrifted")
            && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(AGENT)
    })
    .await
    .expect("a Warning Event says the agent drifted");
    await_condition(agents, AGENT, passed, TIMEOUT).await.expect("Verified=True again after the restore");
    step("hand edit of the Deployment: Verified=False ConfigDrifted, Event, restored, Verified=True again", t);
}

fn repo(path: &str) -> String {
    format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"))
}

/// `kubectl patch` of enableMutationTools reaches the running pod (no restart) within seconds.
async fn incident_switch(client: &Client, base: &str, keys: &std::path::Path, pod: &Pod) {
    let key = std::fs::read_to_string(keys.join("mail-admin")).unwrap();
    assert_eq!(mutation_status(base, &key).await, 403, "mutations are off in the sample");
    let agents: Api<MailAgent> = Api::namespaced(client.clone(), NS);
    let t = Instant::now();
    let patch = json!({"spec": {"mcp": {"enableMutationTools": true}}});
    agents.patch(AGENT, &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    while mutation_status(base, &key).await == 403 {
        assert!(t.elapsed() < Duration::from_secs(60), "the switch did not reach the pod in 60 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let now = pods.get(&pod.name_any()).await.expect("the same pod still exists");
    assert_eq!(now.uid(), pod.uid());
    let restarts = now.status.unwrap().container_statuses.unwrap()[0].restart_count;
    assert_eq!(restarts, 0, "the pod was not restarted");
    step("incident switch on in the live pod, no restart", t);
    let patch = json!({"spec": {"mcp": {"enableMutationTools": false}}});
    agents.patch(AGENT, &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    let t = Instant::now();
    while mutation_status(base, &key).await != 403 {
        assert!(t.elapsed() < Duration::from_secs(60), "the switch-off did not reach the pod in 60 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    step("incident switch off again in the live pod", t);
}

/// The policy's rotation CronJob runs on the node as a Job from the operator image, as its own
/// ServiceAccount, and takes one step; a revoke then reaches the running pod through the kubelet's
/// Secret sync: the old API key is refused and the replacement from the client Secret is served.
async fn rotation_job_and_revoke(plane: &ControlPlane, client: &Client, base: &str, keys: &std::path::Path) {
    use k8s_openapi::api::batch::v1::Job;
    use mailagent_crds::AuthPolicy;
    let policies: Api<AuthPolicy> = Api::namespaced(client.clone(), NS);
    let revision = |p: Option<&AuthPolicy>| p.and_then(|p| p.status.as_ref()).map_or(0, |s| s.revision);
    let before = revision(policies.get("team-auth").await.ok().as_ref());
    let t = Instant::now();
    let nonce = json!({"metadata": {"annotations": {mailagent_crds::authpolicy::ROTATE_ANNOTATION: "e2e-1"}}});
    policies.patch("team-auth", &PatchParams::default(), &Patch::Merge(&nonce)).await.unwrap();
    let cron_job = mailagent_crds::names::rotation_cronjob("team-auth");
    run(kubectl(plane).args(["-n", NS, "create", "job", "rotate-now", &format!("--from=cronjob/{cron_job}")])).unwrap();
    let jobs: Api<Job> = Api::namespaced(client.clone(), NS);
    let done = |j: Option<&Job>| j.and_then(|j| j.status.as_ref()).is_some_and(|s| s.succeeded == Some(1));
    await_condition(&jobs, "rotate-now", done, TIMEOUT).await.expect("the rotation Job succeeds on the node");
    let job_pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let ran = job_pods.list(&ListParams::default().labels("job-name=rotate-now")).await.unwrap().items;
    assert_eq!(ran[0].spec.as_ref().unwrap().service_account_name.as_deref(), Some(cron_job.as_str()));
    let stepped =
        await_condition(&policies, "team-auth", move |p: Option<&AuthPolicy>| revision(p) == before + 1, TIMEOUT)
            .await
            .expect("one step, one revision");
    let staged = stepped.unwrap().status.unwrap();
    assert!(staged.keys.iter().any(|k| k.state == mailagent_crds::contract::KeyState::Staged), "{:?}", staged.keys);
    step("rotation CronJob ran as a Job on the node (its own ServiceAccount): one step, keys Staged", t);

    let old_key = std::fs::read_to_string(keys.join("mail-admin")).unwrap();
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), NS);
    let client_secret = mailagent_crds::names::client_secret("team-auth", "mail-admin");
    let kid = secrets.get(&client_secret).await.unwrap().data.unwrap()["kid"].0.clone();
    let kid = String::from_utf8(kid).unwrap();
    assert_eq!(mutation_status(base, &old_key).await, 403, "the key authenticates (mutations are off)");
    let t = Instant::now();
    let revoke = json!({"spec": {"revocation": {"kids": [kid], "reason": "e2e: key pasted in a ticket"}}});
    policies.patch("team-auth", &PatchParams::default(), &Patch::Merge(&revoke)).await.unwrap();
    // One probe a second: the sample's per-address rate limit is 60 a minute.
    while mutation_status(base, &old_key).await != 401 {
        assert!(t.elapsed() < Duration::from_secs(120), "the revoke did not reach the pod in 120 s");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    step("revoked API key refused by the running pod (kubelet Secret sync + reload)", t);
    let replacement = secrets.get(&client_secret).await.unwrap().data.unwrap()["api-key"].0.clone();
    let replacement = String::from_utf8(replacement).unwrap();
    assert!(replacement.trim() != old_key.trim(), "the client Secret holds a replacement, not the revoked key");
    // The probes above may have spent this address's burst: wait out a 429, never accept a 401.
    let mut status = mutation_status(base, &replacement).await;
    while status == 429 && t.elapsed() < Duration::from_secs(180) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        status = mutation_status(base, &replacement).await;
    }
    assert_eq!(status, 403, "the replacement key authenticates");
}

/// A whole rotation run by the CronJob's Jobs on the node (promote, retire, the next stage and
/// beyond) while clients call the pod ten times a second: an API key client that reads its key
/// from its Secret, as a client mounting it would, and a JWT client re-minting one-minute tokens
/// with `mailagent-token`. Not one request may fail.
async fn full_rotation_under_load(plane: &ControlPlane, client: &Client, pods: &Api<Pod>, selector: &str) {
    use mailagent_crds::AuthPolicy;
    let t = Instant::now();
    // Rotate every two minutes with a one-minute overlap (so tokens may live a minute at most)
    // and a 20s propagation (this node's kubelet syncs every 10s, plus its jitter of up to half
    // again), and lift the sample's per-address limit (60 a minute), which the load would trip.
    // Neither is a live setting: the pod rolls once, and the load starts on the pod that has both.
    let policies: Api<AuthPolicy> = Api::namespaced(client.clone(), NS);
    let rotation = json!({"every": "2m", "overlap": "1m", "propagation": "20s"});
    let fast = json!({"spec": {"jwt": {"maxTokenLifetime": "1m"}, "rotation": rotation}});
    policies.patch("team-auth", &PatchParams::default(), &Patch::Merge(&fast)).await.unwrap();
    let agents: Api<MailAgent> = Api::namespaced(client.clone(), NS);
    let unlimited = json!({"spec": {"rateLimit": {"perMinute": 100000, "burst": 1000}}});
    agents.patch(AGENT, &PatchParams::default(), &Patch::Merge(&unlimited)).await.unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    let rendered = |c: Option<&ConfigMap>| {
        c.and_then(|c| c.data.as_ref()).is_some_and(|d| {
            d.get("AUTH_JWT_MAX_LIFETIME_SECONDS").map(String::as_str) == Some("60")
                && d.get("RATE_LIMIT_PER_MINUTE").map(String::as_str) == Some("100000")
        })
    };
    await_condition(&maps, &format!("{AGENT}-config"), rendered, TIMEOUT).await.expect("both settings rendered");
    let pod = until("no pod with the new settings", TIMEOUT, || async {
        let hash = agents.get(AGENT).await.unwrap().status.and_then(|s| s.config_hash);
        let pod = running_pod(pods, selector).await;
        let running = pod.annotations().get("mailagent.dev/config-hash").cloned();
        if hash.is_some() && running == hash { Ok(pod) } else { Err((hash, running)) }
    })
    .await;
    let base = format!("http://{}:8080", pod.status.as_ref().unwrap().pod_ip.as_deref().unwrap());

    let status = |p: &AuthPolicy| p.status.clone().unwrap_or_default();
    let start = status(&policies.get("team-auth").await.unwrap());

    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), NS);
    let client_secret = mailagent_crds::names::client_secret("team-auth", "mail-admin");
    let mint = || {
        product::mint_token(plane, NS, "team-auth", "e2e-load", "1m", &["mail:scan"])
            .expect("mailagent-token mints with the Active key")
    };
    let (mut sent, mut failures, mut token, mut minted) = (0u32, Vec::new(), mint(), Instant::now());
    let mut kids_seen = std::collections::BTreeSet::new();
    // Promote the key the earlier manual rotation staged, retire the previous one, stage the next.
    let finished = |now: &mailagent_crds::authpolicy::AuthPolicyStatus| now.revision >= start.revision + 3;
    loop {
        let now = status(&policies.get("team-auth").await.unwrap());
        kids_seen.insert(now.current_kid.clone().unwrap_or_default());
        if finished(&now) {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(480), "three rotation steps did not run in 8 minutes");
        let data = secrets.get(&client_secret).await.unwrap().data.unwrap();
        let key = String::from_utf8(data["api-key"].0.clone()).unwrap();
        let by_key = mutation_status(&base, &key).await;
        if by_key != 403 {
            failures.push(format!("API key (kid {}): {by_key}", String::from_utf8_lossy(&data["kid"].0)));
        }
        // A client refreshes its token before it expires; half the lifetime here.
        if minted.elapsed() > Duration::from_secs(30) {
            (token, minted) = (mint(), Instant::now());
        }
        let by_token = post_status(&base, "/v1/mail/scan", "{}", Credential::Bearer(&token)).await;
        if by_token != 200 {
            failures.push(format!("JWT: {by_token}"));
        }
        sent += 2;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(failures.is_empty(), "{} of {sent} requests failed across the rotation: {failures:?}", failures.len());
    assert!(kids_seen.len() >= 2, "the current kid changed during the run: {kids_seen:?}");
    println!("full rotation under load: {sent} requests, 0 failed, current kids {kids_seen:?}");
    step("a full rotation by the CronJob's Jobs under load: no request failed", t);
}

/// `suspend: true` scales the workload to zero; `false` brings a Ready pod back.
async fn suspend_and_resume(client: &Client, pods: &Api<Pod>, selector: &str) {
    let agents: Api<MailAgent> = Api::namespaced(client.clone(), NS);
    let t = Instant::now();
    agents.patch(AGENT, &PatchParams::default(), &Patch::Merge(&json!({"spec": {"suspend": true}}))).await.unwrap();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let scaled_down = |d: Option<&Deployment>| {
        d.and_then(|d| d.spec.as_ref()).and_then(|s| s.replicas) == Some(0)
            && d.and_then(|d| d.status.as_ref()).and_then(|s| s.replicas).unwrap_or(0) == 0
    };
    await_condition(&deployments, AGENT, scaled_down, TIMEOUT).await.expect("scaled to zero");
    node_support::no_pods(pods, selector, TIMEOUT).await;
    step("suspend: true scaled the agent to zero pods", t);
    let t = Instant::now();
    agents.patch(AGENT, &PatchParams::default(), &Patch::Merge(&json!({"spec": {"suspend": false}}))).await.unwrap();
    await_condition(&agents, AGENT, agent_ready, TIMEOUT).await.expect("Ready again after resume");
    running_pod(pods, selector).await;
    step("suspend: false brought a Ready pod back", t);
}

/// The Argo CD and Flux health checks of docs/gitops/ on the Ready agent as the operator wrote it
/// on this node (the control-plane tests record every other state; only a node makes pods ready).
async fn gitops_health_of_a_ready_agent(agents: &Api<MailAgent>, dir: &std::path::Path) {
    let t = Instant::now();
    let mut agent = serde_json::to_value(agents.get(AGENT).await.unwrap()).unwrap();
    // What the checks read and what names the object, as hack/manifests-test.sh records it.
    let meta = agent["metadata"].clone();
    agent["metadata"] = json!({"name": meta["name"], "namespace": meta["namespace"], "generation": meta["generation"]});
    for condition in agent["status"]["conditions"].as_array_mut().into_iter().flatten() {
        condition.as_object_mut().map(|c| c.remove("lastTransitionTime"));
    }
    let cases = dir.join("gitops-cases");
    std::fs::create_dir_all(&cases).unwrap();
    std::fs::write(cases.join("mailagent-ready.json"), serde_json::to_string_pretty(&agent).unwrap() + "\n").unwrap();
    let expected = json!({"mailagent-ready": {"argocd": "Healthy", "flux": "Current"}});
    std::fs::write(cases.join("expected.json"), serde_json::to_string_pretty(&expected).unwrap() + "\n").unwrap();
    let venv = run(&mut std::process::Command::new(repo("hack/ops-tools/venv.sh"))).unwrap();
    let out = run(std::process::Command::new(format!("{}/bin/python", venv.trim()))
        .arg(repo("hack/gitops-test.py"))
        .arg(&cases))
    .unwrap();
    assert!(out.contains("mailagent-ready"), "{out}");
    // `RECORD=1 make e2e` keeps it for `make test-ops`, which runs the checks without a node.
    if std::env::var("RECORD").as_deref() == Ok("1") {
        let kept = repo("docs/gitops/testdata-node");
        let _ = std::fs::remove_dir_all(&kept);
        std::fs::create_dir_all(&kept).unwrap();
        for file in ["mailagent-ready.json", "expected.json"] {
            std::fs::copy(cases.join(file), format!("{kept}/{file}")).unwrap();
        }
    }
    step("Argo CD and Flux health checks: the Ready agent is Healthy / Current", t);
}

/// A new operator image tag rolls the operator, and no MailAgent pod.
async fn operator_upgrade(
    plane: &ControlPlane,
    client: &Client,
    operator_image: &str,
    pods: &Api<Pod>,
    agent_pod: &Pod,
) {
    let t = Instant::now();
    let before = operator_owned_versions(client).await;
    let node = plane.node().expect("a node");
    let operator_pods: Api<Pod> = Api::namespaced(client.clone(), product::OPERATOR_NAMESPACE);
    let operator_pods = &operator_pods;
    let old_operator = running_pod(operator_pods, "app.kubernetes.io/name=mailagent-operator").await;
    let (repository, tag) = operator_image.rsplit_once(':').unwrap();
    let new_tag = format!("{tag}-upgrade");
    product::tag_image(node, operator_image, &format!("{repository}:{new_tag}")).unwrap();
    product::install_operator(plane, Some(&new_tag)).expect("helm upgrade");
    let new_operator = running_pod(operator_pods, "app.kubernetes.io/name=mailagent-operator").await;
    assert_ne!(new_operator.uid(), old_operator.uid(), "the operator pod was replaced");
    assert!(new_operator.spec.as_ref().unwrap().containers[0].image.as_deref().unwrap().ends_with(&new_tag));
    // The new leader has reconciled every agent by now; give it a few seconds more to (not) roll.
    let agents: Api<MailAgent> = Api::namespaced(client.clone(), NS);
    await_condition(&agents, AGENT, agent_ready, TIMEOUT).await.unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let now: Vec<Pod> =
        pods.list(&ListParams::default().labels(&format!("app.kubernetes.io/instance={AGENT}"))).await.unwrap().items;
    assert_eq!(now.len(), 1, "one agent pod");
    assert_eq!(now[0].uid(), agent_pod.uid(), "the operator upgrade rolled the agent pod");
    // Nor did the new operator rewrite anything it owns, or flip the Ready condition.
    assert_eq!(operator_owned_versions(client).await, before, "the new operator wrote to a Ready agent's objects");
    step("operator upgraded to a new image tag; the agent pod was not rolled, nothing rewritten", t);
}

/// Two operator replicas: the standby is Ready, so the PodDisruptionBudget can spare the leader,
/// and evicting it (what `kubectl drain` does) hands the Lease to the other replica. When only the
/// leader was Ready, this eviction was refused for ever (HTTP 429) and a node drain never ended.
async fn a_drain_moves_the_operator_leader(plane: &ControlPlane, client: &Client, operator_image: &str) {
    let t = Instant::now();
    let tag = operator_image.rsplit_once(':').unwrap().1;
    let values = [format!("image.tag={tag}-upgrade"), "replicas=2".to_owned()];
    product::install_operator_with(plane, &values).expect("helm upgrade to two replicas");
    let operator_pods: Api<Pod> = Api::namespaced(client.clone(), product::OPERATOR_NAMESPACE);
    let selector = "app.kubernetes.io/name=mailagent-operator";
    let both = ready_pods(&operator_pods, selector, 2).await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), product::OPERATOR_NAMESPACE);
    let holder = || async { leases.get("mailagent-operator").await.ok().and_then(|lease| lease.spec?.holder_identity) };
    // A standby is Ready before it leads: after the upgrade above, the Lease may still name the
    // replaced pod until its lease duration runs out, so wait for one of these two to hold it.
    let leader = until("neither Ready pod took the Lease", TIMEOUT, || async {
        let now = holder().await;
        now.clone().filter(|now| both.iter().any(|pod| pod.name_any() == *now)).ok_or(now)
    })
    .await;
    let budgets: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), product::OPERATOR_NAMESPACE);
    until("the budget never counted both replicas", TIMEOUT, || async {
        let status = budgets.get("mailagent-operator").await.unwrap().status.unwrap_or_default();
        if (status.current_healthy, status.disruptions_allowed) == (Some(2), Some(1)) { Ok(()) } else { Err(status) }
    })
    .await;
    step("two operator replicas Ready (leader and standby); the disruption budget allows one eviction", t);

    let t = Instant::now();
    operator_pods.evict(&leader, &EvictParams::default()).await.expect("the budget lets the leader be evicted");
    let successor = until(&format!("no replica took the Lease over from {leader}"), TIMEOUT, || async {
        let now = holder().await;
        now.clone().filter(|now| *now != leader).ok_or(now)
    })
    .await;
    let replaced = ready_pods(&operator_pods, selector, 2).await;
    assert!(replaced.iter().any(|pod| pod.name_any() == successor), "the new leader {successor} runs");
    assert!(replaced.iter().all(|pod| pod.name_any() != leader), "the evicted leader is gone");
    let agents: Api<MailAgent> = Api::namespaced(client.clone(), NS);
    await_condition(&agents, AGENT, agent_ready, TIMEOUT).await.unwrap();
    step("the leader evicted: the standby took the Lease, a new standby replaced it", t);
}

/// What the operator writes for the agent: each child's resourceVersion (the Deployment's spec
/// generation, since its status is the Deployment controller's) and when Ready last changed.
async fn operator_owned_versions(client: &Client) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let lp = ListParams::default().labels(&format!("mailagent.dev/agent={AGENT}"));
    for cm in Api::<ConfigMap>::namespaced(client.clone(), NS).list(&lp).await.unwrap() {
        out.push((format!("configmap/{}", cm.name_any()), cm.resource_version().unwrap_or_default()));
    }
    for svc in Api::<Service>::namespaced(client.clone(), NS).list(&lp).await.unwrap() {
        out.push((format!("service/{}", svc.name_any()), svc.resource_version().unwrap_or_default()));
    }
    for d in Api::<Deployment>::namespaced(client.clone(), NS).list(&lp).await.unwrap() {
        out.push((format!("deployment/{}", d.name_any()), d.metadata.generation.unwrap_or_default().to_string()));
    }
    let agent = Api::<MailAgent>::namespaced(client.clone(), NS).get(AGENT).await.unwrap();
    let ready = agent
        .status
        .as_ref()
        .and_then(|s| mailagent_crds::conditions::find(&s.conditions, mailagent_crds::conditions::READY));
    out.push(("mailagent Ready since".into(), format!("{:?}", ready.map(|c| &c.last_transition_time))));
    out.sort();
    out
}

/// Deleting the MailAgent garbage-collects its children and keeps the retained state volume.
async fn delete_keeps_the_volume(client: &Client) {
    let t = Instant::now();
    let agents: Api<MailAgent> = Api::namespaced(client.clone(), NS);
    agents.delete(AGENT, &DeleteParams::foreground()).await.unwrap();
    await_condition(&agents, AGENT, |a: Option<&MailAgent>| a.is_none(), TIMEOUT).await.unwrap();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    await_condition(&deployments, AGENT, |d: Option<&Deployment>| d.is_none(), TIMEOUT).await.unwrap();
    let services: Api<Service> = Api::namespaced(client.clone(), NS);
    await_condition(&services, &format!("{AGENT}-mcp"), |s: Option<&Service>| s.is_none(), TIMEOUT).await.unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    await_condition(&maps, &format!("{AGENT}-config"), |c: Option<&ConfigMap>| c.is_none(), TIMEOUT).await.unwrap();
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), NS);
    let claim = claims.get(&format!("{AGENT}-state")).await.expect("the retained claim is kept");
    let volume = claim.spec.unwrap().volume_name.expect("bound to a volume");
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    let pv = volumes.get(&volume).await.expect("the volume is kept");
    assert_eq!(pv.status.unwrap().phase.as_deref(), Some("Bound"));
    step("MailAgent deleted: children collected, state claim and volume kept", t);
}

/// One version source: the cargo workspace version is the chart's appVersion (the operator
/// image's default tag), the image tag of the sample MailAgent, and what hack/image-build.sh tags.
#[test]
fn the_cargo_version_is_the_chart_and_image_version() {
    let version = env!("CARGO_PKG_VERSION");
    let chart: serde_json::Value =
        serde_yaml::from_str(&std::fs::read_to_string(repo("charts/mailagent-operator/Chart.yaml")).unwrap()).unwrap();
    assert_eq!(chart["appVersion"], version, "Chart.yaml appVersion");
    let agent: serde_json::Value =
        serde_yaml::from_str(&std::fs::read_to_string(sample("20-mailagent.yaml")).unwrap()).unwrap();
    assert_eq!(agent["spec"]["image"], format!("localhost/mailagent:{version}"), "the sample's image");
    assert_eq!(mailagent_tests::node::PAUSE_IMAGE, format!("localhost/pause:{version}"));
    let script = std::fs::read_to_string(repo("hack/image-build.sh")).unwrap();
    assert!(script.contains(r#"ref="$registry/$name:$version""#) && script.contains("[workspace.package]"));
}
