//! The operator keeps its promises under faults: a restarted API server, its own crash, a leader
//! stopped mid-flight, deleted or weakened children, a deleted Secret, an unreadable object, names
//! at the limit. Tests that restart the API server run on a control plane of their own.

mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use mailagent_crds::{AuthPolicy, MailAgent, conditions};
use mailagent_tests::{ControlPlane, TestNamespace};
use serde_json::{Value, json};
use support::{RunningController, eventually, wait_for};

const POLICY: &str = "mode: api_key\napiKeys: [{name: ci, scopes: [mail:scan]}]";

async fn apply<K: support::Namespaced>(client: &Client, ns: &str, name: &str, spec: Value) -> kube::Result<K> {
    let body =
        json!({"apiVersion": K::api_version(&()), "kind": K::kind(&()), "metadata": {"name": name}, "spec": spec});
    Api::<K>::namespaced(client.clone(), ns)
        .patch(name, &PatchParams::apply("a-user").force(), &Patch::Apply(&body))
        .await
}

async fn policy(client: &Client, ns: &str) {
    let spec: Value = serde_yaml::from_str(POLICY).unwrap();
    apply::<AuthPolicy>(client, ns, "policy", spec).await.expect("policy");
}

/// A maildir agent with `per_minute` as its rate limit, so a spec change shows in its ConfigMap.
fn agent_spec(per_minute: u32) -> Value {
    json!({"image": "registry.example/mailagent:0.1.0", "authPolicyRef": {"name": "policy"},
        "mailbox": {"provider": "maildir"}, "rateLimit": {"perMinute": per_minute, "burst": 10}})
}

async fn agent(client: &Client, ns: &str, name: &str, per_minute: u32) {
    apply::<MailAgent>(client, ns, name, agent_spec(per_minute)).await.unwrap_or_else(|e| panic!("agent {name}: {e}"));
}

/// The rate limit the agent's ConfigMap carries, if the ConfigMap exists.
async fn rendered_rate(client: &Client, ns: &str, agent: &str) -> Option<String> {
    let cm = Api::<ConfigMap>::namespaced(client.clone(), ns).get_opt(&format!("{agent}-config")).await.ok()??;
    cm.data?.get("RATE_LIMIT_PER_MINUTE").cloned()
}

/// Waits until `agent`'s ConfigMap carries `per_minute` and its status has caught up.
async fn converged(client: &Client, ns: &str, agent: &str, per_minute: u32, within: Duration) {
    let agents = Api::<MailAgent>::namespaced(client.clone(), ns);
    eventually(
        &format!("{agent} to converge on perMinute {per_minute}"),
        within,
        || async {
            let rate = rendered_rate(client, ns, agent).await;
            let a = agents.get_opt(agent).await.ok()??;
            let observed = a.status.as_ref().and_then(|s| s.observed_generation) == a.metadata.generation;
            Some(observed && rate.as_deref() == Some(&*per_minute.to_string()))
        },
        |done| *done,
    )
    .await;
}

/// A plane of the test's own (it will be restarted), prepared like the shared one.
async fn own_plane() -> (ControlPlane, Client) {
    let plane = ControlPlane::start().await.expect("a control plane");
    let admin = plane.client().await;
    support::prepare(&admin).await;
    (plane, admin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_recovers_from_an_api_server_restart() {
    let (plane, admin) = own_plane().await;
    let ns = TestNamespace::create(&admin).await;
    policy(&admin, ns.name()).await;
    agent(&admin, ns.name(), "before", 60).await;
    let controller = RunningController::start_with(support::operator_client_on(&plane).await, ns.name(), 16);
    converged(&admin, ns.name(), "before", 60, Duration::from_secs(60)).await;

    // Down long enough for every watch to notice and back off.
    let plane = plane.restart_apiserver_after(Duration::from_secs(5)).await.expect("API server back");
    eventually(
        "readiness to turn false",
        Duration::from_secs(30),
        || async { Some(controller.health.readiness().is_ok()) },
        |ready| !*ready,
    )
    .await;
    let admin = plane.client().await;
    let restarted = Instant::now();
    agent(&admin, ns.name(), "after", 61).await;
    agent(&admin, ns.name(), "before", 62).await;
    converged(&admin, ns.name(), "after", 61, Duration::from_secs(60)).await;
    converged(&admin, ns.name(), "before", 62, Duration::from_secs(60)).await;
    eprintln!("converged {:?} after the API server came back", restarted.elapsed());
    eventually(
        "readiness to return",
        Duration::from_secs(60),
        || async { Some(controller.health.readiness().is_ok()) },
        |ready| *ready,
    )
    .await;
    controller.stop().await;
}

/// The debug operator binary beside this test binary (`make test-integration` builds it).
fn operator_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path = dir.join("mailagent-operator");
    assert!(path.exists(), "{} missing: run `cargo build -p mailagent-operator` first", path.display());
    path
}

/// The operator as a process of its own, killable with SIGKILL.
fn start_operator(kubeconfig: &std::path::Path, ns: &str) -> std::process::Child {
    operator_command(kubeconfig, ns).args(["--leader-election", "false"]).spawn().expect("operator starts")
}

/// The operator as a replica electing a leader through a Lease in `ns`, named `identity`.
fn start_replica(kubeconfig: &std::path::Path, ns: &str, identity: &str) -> std::process::Child {
    operator_command(kubeconfig, ns)
        .args(["--leader-election", "true", "--lease-namespace", ns, "--identity", identity])
        .spawn()
        .expect("operator starts")
}

fn operator_command(kubeconfig: &std::path::Path, ns: &str) -> std::process::Command {
    let mut command = std::process::Command::new(operator_binary());
    command
        .args(["--namespace", ns, "--metrics-addr", "127.0.0.1:0"])
        .env("KUBECONFIG", kubeconfig)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null());
    command
}

/// Sends SIGTERM (what the kubelet sends on eviction or rollout) and waits for the exit.
fn terminate(child: &mut std::process::Child) -> std::process::ExitStatus {
    let sent = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(sent.success(), "SIGTERM delivered");
    child.wait().expect("the replica exits")
}

/// Kills the child when the test ends, however it ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_sigkill_mid_convergence_a_restart_converges_every_agent_and_a_second_writes_nothing() {
    const AGENTS: u32 = 60;
    let admin = support::admin().await;
    let plane = mailagent_tests::shared();
    let ns = TestNamespace::create(&admin).await;
    policy(&admin, ns.name()).await;
    let names: Vec<String> = (0..AGENTS).map(|i| format!("agent-{i}")).collect();
    for name in &names {
        agent(&admin, ns.name(), name, 60).await;
    }
    let mut first = KillOnDrop(start_operator(plane.kubeconfig_path(), ns.name()));
    // Mid-convergence: some agents done, most not.
    eventually(
        "the first agents to converge",
        Duration::from_secs(60),
        || async { rendered_rate(&admin, ns.name(), "agent-0").await },
        |_| true,
    )
    .await;
    first.0.kill().expect("SIGKILL");
    let _ = first.0.wait();

    let second = KillOnDrop(start_operator(plane.kubeconfig_path(), ns.name()));
    let started = Instant::now();
    for name in &names {
        converged(&admin, ns.name(), name, 60, Duration::from_secs(120)).await;
    }
    eprintln!("{AGENTS} agents converged {:?} after the restart", started.elapsed());
    // A later spec change still reaches every one: none is stuck.
    for name in &names {
        agent(&admin, ns.name(), name, 70).await;
    }
    for name in &names {
        converged(&admin, ns.name(), name, 70, Duration::from_secs(120)).await;
    }
    drop(second);

    // A restart onto a converged namespace writes nothing.
    let audit = plane.audit().expect("a local plane has an audit log");
    let mark = audit.mark();
    let third = KillOnDrop(start_operator(plane.kubeconfig_path(), ns.name()));
    tokio::time::sleep(Duration::from_secs(15)).await;
    let writes: Vec<_> = audit
        .writes_matching(&mailagent_tests::WriteFilter {
            since: mark,
            namespace: Some(ns.name().into()),
            ..Default::default()
        })
        .into_iter()
        .map(|e| format!("{} {} {:?}", e.verb, e.resource, e.name))
        .collect();
    assert!(writes.is_empty(), "a restart onto a converged namespace wrote: {writes:#?}");
    drop(third);
}

/// A leader stopped by SIGTERM (a rollout, an eviction, a drain) gives its Lease up on the way
/// out, so the standby leads at once instead of after the lease duration; a standby's own exit
/// leaves the leader alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_leader_releases_its_lease_and_the_standby_takes_over() {
    let admin = support::admin().await;
    let plane = mailagent_tests::shared();
    let ns = TestNamespace::create(&admin).await;
    let leases: Api<Lease> = Api::namespaced(admin.clone(), ns.name());
    let holder = || async {
        let lease = leases.get_opt("mailagent-operator").await.expect("read the Lease")?;
        Some(lease.spec.and_then(|spec| spec.holder_identity).unwrap_or_default())
    };
    let mut first = KillOnDrop(start_replica(plane.kubeconfig_path(), ns.name(), "replica-a"));
    eventually("replica-a to lead", Duration::from_secs(60), holder, |h| h == "replica-a").await;
    let mut second = KillOnDrop(start_replica(plane.kubeconfig_path(), ns.name(), "replica-b"));
    // Once the standby runs, it watches the Lease; a standby's exit must not disturb the leader.
    let mut third = KillOnDrop(start_replica(plane.kubeconfig_path(), ns.name(), "replica-c"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(terminate(&mut third.0).success(), "a standby stops cleanly on SIGTERM");
    assert_eq!(holder().await.as_deref(), Some("replica-a"), "the leader kept its Lease");

    assert!(terminate(&mut first.0).success(), "the leader stops cleanly on SIGTERM");
    // The process has exited: without a release the Lease would still name it for its duration.
    let after = holder().await.expect("the Lease stays");
    assert_ne!(after, "replica-a", "the stopped leader released its Lease");
    eventually("replica-b to lead", Duration::from_secs(60), holder, |h| h == "replica-b").await;
    assert!(second.0.try_wait().unwrap().is_none(), "the new leader runs");
}

#[tokio::test]
async fn a_leader_stopped_at_the_shard_count_barrier_releases_its_lease() {
    let admin = support::admin().await;
    let plane = mailagent_tests::shared();
    let ns = TestNamespace::create(&admin).await;
    let leases: Api<Lease> = Api::namespaced(admin.clone(), ns.name());
    // A shard of a two-shard operator, live for an hour: a `SHARD_COUNT` change half rolled out.
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(k8s_openapi::jiff::Timestamp::now());
    let other_count = Lease {
        metadata: kube::api::ObjectMeta { name: Some("mailagent-operator-shard-1".into()), ..Default::default() },
        spec: Some(k8s_openapi::api::coordination::v1::LeaseSpec {
            holder_identity: Some("elsewhere/shards=2".into()),
            acquire_time: Some(now.clone()),
            renew_time: Some(now),
            lease_duration_seconds: Some(3600),
            ..Default::default()
        }),
    };
    leases.create(&PostParams::default(), &other_count).await.expect("the other count's Lease");
    let holder = || async {
        let lease = leases.get_opt("mailagent-operator").await.expect("read the Lease")?;
        Some(lease.spec.and_then(|spec| spec.holder_identity).unwrap_or_default())
    };
    let mut replica = KillOnDrop(start_replica(plane.kubeconfig_path(), ns.name(), "replica-a"));
    eventually("replica-a to hold its Lease", Duration::from_secs(60), holder, |h| h == "replica-a").await;
    // It holds the Lease but waits at the barrier; stopped there, it gives the Lease up.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(replica.0.try_wait().unwrap().is_none(), "the replica waits at the barrier");
    assert!(terminate(&mut replica.0).success(), "stopped at the barrier, it exits cleanly");
    let after = holder().await.expect("the Lease stays");
    assert_ne!(after, "replica-a", "the replica stopped at the barrier released its Lease");
}

#[tokio::test]
async fn deleted_children_come_back_within_seconds() {
    let admin = support::admin().await;
    let ns = TestNamespace::create(&admin).await;
    policy(&admin, ns.name()).await;
    agent(&admin, ns.name(), "inbox", 60).await;
    let controller = RunningController::start(ns.name()).await;
    converged(&admin, ns.name(), "inbox", 60, Duration::from_secs(60)).await;

    async fn delete_and_await<K: support::Namespaced>(admin: &Client, ns: &str, name: &str) {
        let api = Api::<K>::namespaced(admin.clone(), ns);
        let old = api.get(name).await.unwrap().uid();
        api.delete(name, &DeleteParams::background()).await.unwrap();
        let deleted = Instant::now();
        eventually(
            &format!("{} {name} to be recreated", K::kind(&())),
            Duration::from_secs(10),
            || async { api.get_opt(name).await.ok().flatten().map(|o| o.uid()) },
            |uid| uid.is_some() && *uid != old,
        )
        .await;
        eprintln!("{} {name} recreated in {:?}", K::kind(&()), deleted.elapsed());
    }
    delete_and_await::<Service>(&admin, ns.name(), "inbox-mcp").await;
    delete_and_await::<NetworkPolicy>(&admin, ns.name(), "inbox").await;
    delete_and_await::<ConfigMap>(&admin, ns.name(), "inbox-config").await;
    delete_and_await::<Deployment>(&admin, ns.name(), "inbox").await;
    delete_and_await::<ServiceAccount>(&admin, ns.name(), "inbox").await;
    controller.stop().await;
}

#[tokio::test]
async fn a_weakened_deployment_is_restored_and_other_tools_labels_stay() {
    let admin = support::admin().await;
    let ns = TestNamespace::create(&admin).await;
    policy(&admin, ns.name()).await;
    agent(&admin, ns.name(), "inbox", 60).await;
    let controller = RunningController::start(ns.name()).await;
    converged(&admin, ns.name(), "inbox", 60, Duration::from_secs(60)).await;

    // Another field manager adds a capability, a host namespace and a volume, and a label.
    let intrusion = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "inbox",
        "labels": {"team.example/owner": "mail"}},
        "spec": {"selector": {"matchLabels": {"mailagent.dev/agent": "inbox", "app.kubernetes.io/name": "mailagent",
            "app.kubernetes.io/instance": "inbox"}},
        "template": {"spec": {"hostPID": true,
            "containers": [{"name": "mailagent", "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}},
                "volumeMounts": [{"name": "host", "mountPath": "/host"}]}],
            "volumes": [{"name": "host", "emptyDir": {}}]}}}});
    let deployments = Api::<Deployment>::namespaced(admin.clone(), ns.name());
    deployments
        .patch("inbox", &PatchParams::apply("intruder").force(), &Patch::Apply(&intrusion))
        .await
        .expect("the intruder's apply");
    let weakened = Instant::now();
    let restored = eventually(
        "the Deployment to be restored",
        Duration::from_secs(10),
        || async { deployments.get_opt("inbox").await.ok().flatten() },
        |d| {
            let pod = d.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
            let container = &pod.containers[0];
            let caps = container.security_context.as_ref().and_then(|s| s.capabilities.as_ref());
            caps.and_then(|c| c.add.as_ref()).is_none_or(Vec::is_empty)
                && pod.host_pid != Some(true)
                && pod.volumes.iter().flatten().all(|v| v.name != "host")
                && container.volume_mounts.iter().flatten().all(|m| m.name != "host")
        },
    )
    .await;
    eprintln!("Deployment restored in {:?}", weakened.elapsed());
    assert_eq!(restored.labels().get("team.example/owner").map(String::as_str), Some("mail"), "others' labels stay");
    // The edit is reported (no pod serves here, so no probe follows to clear it).
    let agents = Api::<MailAgent>::namespaced(admin.clone(), ns.name());
    let drifted = eventually(
        "Verified=False ConfigDrifted",
        Duration::from_secs(10),
        || async { agents.get_opt("inbox").await.ok().flatten() },
        |a| {
            a.status.as_ref().and_then(|s| conditions::find(&s.conditions, conditions::VERIFIED)).is_some_and(|c| {
                c.status == "False"
                    && c.reason == "ConfigDrifted"
                    && c.message.starts_with("Deployment inbox was changed")
            })
        },
    )
    .await;
    assert!(drifted.status.unwrap().verification.is_none(), "no probe ran, so no probe report");
    controller.stop().await;
}

#[tokio::test]
async fn status_follows_a_deleted_and_restored_credentials_secret() {
    let admin = support::admin().await;
    let ns = TestNamespace::create(&admin).await;
    policy(&admin, ns.name()).await;
    let secrets = Api::<Secret>::namespaced(admin.clone(), ns.name());
    let secret = || Secret {
        metadata: kube::api::ObjectMeta { name: Some("gmail-token".into()), ..Default::default() },
        string_data: Some([("token.json".to_owned(), "{}".to_owned())].into()),
        ..Default::default()
    };
    secrets.create(&PostParams::default(), &secret()).await.unwrap();
    let mut spec = agent_spec(60);
    spec["mailbox"] =
        json!({"provider": "gmail", "credentialsSecretRef": {"name": "gmail-token"}, "address": "owner@example.com"});
    apply::<MailAgent>(&admin, ns.name(), "inbox", spec).await.unwrap();
    let controller = RunningController::start(ns.name()).await;
    let agents = Api::<MailAgent>::namespaced(admin.clone(), ns.name());
    let credentials = |a: &MailAgent| {
        conditions::find(&a.status.as_ref()?.conditions, conditions::CREDENTIALS_RESOLVED).map(|c| c.status.clone())
    };
    wait_for(&agents, "inbox", |a| credentials(a).as_deref() == Some("True")).await;

    secrets.delete("gmail-token", &DeleteParams::default()).await.unwrap();
    let deleted = Instant::now();
    wait_for(&agents, "inbox", |a| credentials(a).as_deref() == Some("False")).await;
    let noticed = deleted.elapsed();
    assert!(noticed < Duration::from_secs(60), "a deleted Secret noticed after {noticed:?}");
    secrets.create(&PostParams::default(), &secret()).await.unwrap();
    let created = Instant::now();
    wait_for(&agents, "inbox", |a| credentials(a).as_deref() == Some("True")).await;
    eprintln!("deletion noticed in {noticed:?}, restoration in {:?}", created.elapsed());
    controller.stop().await;
}

#[tokio::test]
async fn the_longest_admitted_names_converge_and_one_character_more_is_refused() {
    use mailagent_crds::names::{AUTHPOLICY_NAME_MAX, MAILAGENT_NAME_MAX};
    let admin = support::admin().await;
    let ns = TestNamespace::create(&admin).await;
    let spec: Value = serde_yaml::from_str(POLICY).unwrap();
    let long_policy = "p".repeat(AUTHPOLICY_NAME_MAX);
    apply::<AuthPolicy>(&admin, ns.name(), &long_policy, spec.clone()).await.expect("the longest policy name");
    let refused = apply::<AuthPolicy>(&admin, ns.name(), &format!("{long_policy}p"), spec).await.unwrap_err();
    assert!(refused.to_string().contains(&format!("at most {AUTHPOLICY_NAME_MAX} characters")), "{refused}");

    let long_agent = "a".repeat(MAILAGENT_NAME_MAX);
    let mut spec = agent_spec(60);
    spec["authPolicyRef"]["name"] = json!(long_policy);
    apply::<MailAgent>(&admin, ns.name(), &long_agent, spec.clone()).await.expect("the longest agent name");
    let refused = apply::<MailAgent>(&admin, ns.name(), &format!("{long_agent}a"), spec).await.unwrap_err();
    assert!(refused.to_string().contains(&format!("at most {MAILAGENT_NAME_MAX} characters")), "{refused}");

    let controller = RunningController::start(ns.name()).await;
    converged(&admin, ns.name(), &long_agent, 60, Duration::from_secs(60)).await;
    let services = Api::<Service>::namespaced(admin.clone(), ns.name());
    for surface in ["rest", "a2a", "mcp"] {
        wait_for(&services, &format!("{long_agent}-{surface}"), |_| true).await;
    }
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_agent_is_reported_and_the_others_still_converge() {
    let (plane, admin) = own_plane().await;
    let ns = TestNamespace::create(&admin).await;
    policy(&admin, ns.name()).await;
    agent(&admin, ns.name(), "good", 60).await;
    // A looser schema served for the kind (as a bad CRD upgrade would) lets a wrong type in.
    let crds = Api::<CustomResourceDefinition>::all(admin.clone());
    let mut crd = crds.get("mailagents.mailagent.dev").await.unwrap();
    let version = &mut crd.spec.versions[0];
    let schema = version.schema.as_mut().unwrap().open_api_v3_schema.as_mut().unwrap();
    let spec = schema.properties.as_mut().unwrap().get_mut("spec").unwrap();
    *spec = serde_json::from_value(json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})).unwrap();
    schema.x_kubernetes_validations = None;
    crd.metadata.managed_fields = None;
    crds.replace("mailagents.mailagent.dev", &PostParams::default(), &crd).await.expect("a looser CRD");
    let mut bad = agent_spec(60);
    bad["rateLimit"]["perMinute"] = json!("sixty");
    let resource = kube::api::ApiResource::erase::<MailAgent>(&());
    let raw = Api::<kube::core::DynamicObject>::namespaced_with(admin.clone(), ns.name(), &resource);
    let body =
        json!({"apiVersion": resource.api_version, "kind": "MailAgent", "metadata": {"name": "bad"}, "spec": bad});
    eventually(
        "the loose schema to be served",
        Duration::from_secs(30),
        || async { Some(raw.patch("bad", &PatchParams::apply("a-user").force(), &Patch::Apply(&body)).await.is_ok()) },
        |ok| *ok,
    )
    .await;
    agent(&admin, ns.name(), "later", 61).await;

    let controller = RunningController::start_with(support::operator_client_on(&plane).await, ns.name(), 4);
    converged(&admin, ns.name(), "good", 60, Duration::from_secs(60)).await;
    converged(&admin, ns.name(), "later", 61, Duration::from_secs(60)).await;
    let reported = eventually(
        "the unreadable agent's status",
        Duration::from_secs(30),
        || async { raw.get_opt("bad").await.ok()? },
        |o| o.data["status"]["conditions"][0]["reason"] == "InvalidObject",
    )
    .await;
    let message = reported.data["status"]["conditions"][0]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("the operator cannot read this MailAgent"), "{message}");
    mailagent_tests::await_event(&admin, ns.name(), Duration::from_secs(30), |e| {
        e.reason.as_deref() == Some("InvalidObject")
    })
    .await
    .expect("an InvalidObject Event");
    controller.stop().await;
    drop(plane);
}

/// A small deterministic generator (xorshift), seeded and printed so a failing run can be replayed.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % sides
    }

    fn millis(&mut self, max: u64) -> Duration {
        Duration::from_millis(self.roll(max))
    }
}

/// For `MAILAGENT_CHAOS_SECONDS` (default 90), at random: kill and restart the operator, restart
/// the API server, delete children, weaken Deployments, and change specs. Then every agent must
/// match its last spec with every child present and unweakened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_ends_with_every_agent_matching_its_spec() {
    const AGENTS: usize = 10;
    let seconds = std::env::var("MAILAGENT_CHAOS_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(90);
    let seed = std::env::var("MAILAGENT_CHAOS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
    });
    eprintln!("chaos for {seconds}s with MAILAGENT_CHAOS_SEED={seed}");
    let mut dice = Dice(seed);
    let (mut plane, mut admin) = own_plane().await;
    let ns = TestNamespace::create(&admin).await;
    policy(&admin, ns.name()).await;
    let mut rates = [60u32; AGENTS];
    for (i, rate) in rates.iter().enumerate() {
        agent(&admin, ns.name(), &format!("agent-{i}"), *rate).await;
    }
    let operator = support::operator_client_on(&plane).await;
    let mut controller = Some(RunningController::start_with(operator.clone(), ns.name(), 16));
    let (mut kills, mut restarts, mut deletions, mut weakenings, mut changes) = (0, 0, 0, 0, 0);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(seconds) {
        let i = dice.roll(AGENTS as u64) as usize;
        let name = format!("agent-{i}");
        match dice.roll(5) {
            0 => {
                drop(controller.take());
                tokio::time::sleep(dice.millis(2000)).await;
                controller = Some(RunningController::start_with(operator.clone(), ns.name(), 16));
                kills += 1;
            }
            1 => {
                plane = plane.restart_apiserver_after(dice.millis(3000)).await.expect("API server back");
                admin = plane.client().await;
                restarts += 1;
            }
            2 => {
                let dp = DeleteParams::background();
                let _ = match dice.roll(4) {
                    0 => Api::<ConfigMap>::namespaced(admin.clone(), ns.name())
                        .delete(&format!("{name}-config"), &dp)
                        .await
                        .map(|_| ()),
                    1 => Api::<Service>::namespaced(admin.clone(), ns.name())
                        .delete(&format!("{name}-rest"), &dp)
                        .await
                        .map(|_| ()),
                    2 => {
                        Api::<NetworkPolicy>::namespaced(admin.clone(), ns.name()).delete(&name, &dp).await.map(|_| ())
                    }
                    _ => Api::<Deployment>::namespaced(admin.clone(), ns.name()).delete(&name, &dp).await.map(|_| ()),
                };
                deletions += 1;
            }
            3 => {
                let weaken = json!({"spec": {"template": {"spec": {"hostIPC": true}}}});
                let _ = Api::<Deployment>::namespaced(admin.clone(), ns.name())
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&weaken))
                    .await;
                weakenings += 1;
            }
            _ => {
                rates[i] += 1;
                // The change must land: retry through an API server restart.
                while apply::<MailAgent>(&admin, ns.name(), &name, agent_spec(rates[i])).await.is_err() {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                changes += 1;
            }
        }
        tokio::time::sleep(dice.millis(1500)).await;
    }
    eprintln!(
        "chaos: {kills} operator kills, {restarts} API server restarts, {deletions} deletions, {weakenings} weakenings, {changes} spec changes"
    );
    let controller = controller.unwrap_or_else(|| RunningController::start_with(operator.clone(), ns.name(), 16));
    let settling = Instant::now();
    let deployments = Api::<Deployment>::namespaced(admin.clone(), ns.name());
    let services = Api::<Service>::namespaced(admin.clone(), ns.name());
    let policies = Api::<NetworkPolicy>::namespaced(admin.clone(), ns.name());
    for (i, rate) in rates.iter().enumerate() {
        let name = format!("agent-{i}");
        converged(&admin, ns.name(), &name, *rate, Duration::from_secs(120)).await;
        wait_for(&services, &format!("{name}-rest"), |_| true).await;
        wait_for(&policies, &name, |_| true).await;
        wait_for(&deployments, &name, |d| {
            d.spec.as_ref().unwrap().template.spec.as_ref().unwrap().host_ipc != Some(true)
        })
        .await;
    }
    eprintln!("every agent matched its spec {:?} after the chaos ended (longest time to recover)", settling.elapsed());
    eventually(
        "readiness after the chaos",
        Duration::from_secs(60),
        || async { Some(controller.health.readiness().is_ok()) },
        |ready| *ready,
    )
    .await;
    controller.stop().await;
}
