//! The MailAgent controller against a real kube-apiserver, running as the operator's
//! ServiceAccount under the chart's RBAC.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use mailagent_crds::conditions;
use mailagent_crds::contract::{Keyring, files};
use mailagent_crds::{AuthPolicy, MailAgent};
use mailagent_operator::controller::authpolicy::published::RECHECK;
use mailagent_tests::TestNamespace;
use serde_json::json;
use support::{RunningController, eventually, wait_for, wait_gone};

const POLICY: &str = "mode: api_key\napiKeys: [{name: ci, scopes: [mail:scan]}]";

async fn apply_yaml<K>(client: &Client, ns: &str, name: &str, spec_yaml: &str)
where
    K: support::Namespaced,
{
    let spec: serde_json::Value = serde_yaml::from_str(spec_yaml).unwrap();
    let body =
        json!({"apiVersion": K::api_version(&()), "kind": K::kind(&()), "metadata": {"name": name}, "spec": spec});
    Api::<K>::namespaced(client.clone(), ns)
        .patch(name, &PatchParams::apply("a-user").force(), &Patch::Apply(&body))
        .await
        .unwrap_or_else(|e| panic!("applying {name}: {e}"));
}

async fn agent_with(client: &Client, ns: &str, extra_yaml: &str) {
    let mut spec: serde_json::Value = serde_yaml::from_str(extra_yaml).unwrap();
    let base = json!({"image": "registry.example/mailagent:0.1.0", "authPolicyRef": {"name": "policy"}, "mailbox": {"provider": "maildir"}});
    for (k, v) in base.as_object().unwrap() {
        spec.as_object_mut().unwrap().entry(k.clone()).or_insert(v.clone());
    }
    apply_yaml::<MailAgent>(client, ns, "inbox", &serde_json::to_string(&spec).unwrap()).await;
}

/// A fresh namespace with the policy, an agent (`extra_yaml` merged into its spec) and a
/// controller watching it.
async fn agent_with_policy(extra_yaml: &str) -> (Client, TestNamespace, RunningController) {
    let admin = support::admin().await;
    let ns = TestNamespace::create(&admin).await;
    apply_yaml::<AuthPolicy>(&admin, ns.name(), "policy", POLICY).await;
    agent_with(&admin, ns.name(), extra_yaml).await;
    let controller = RunningController::start(ns.name()).await;
    (admin, ns, controller)
}

fn ready_reason(agent: &MailAgent) -> Option<(String, String)> {
    let c = conditions::find(&agent.status.as_ref()?.conditions, conditions::READY)?;
    Some((c.status.clone(), c.reason.clone()))
}

async fn versions(client: &Client, ns: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let lp = ListParams::default().labels("mailagent.dev/agent=inbox");
    macro_rules! collect {
        ($($kind:ty),*) => {$(
            for o in Api::<$kind>::namespaced(client.clone(), ns).list(&lp).await.unwrap() {
                out.insert(format!("{}/{}", stringify!($kind), o.name_any()), o.resource_version().unwrap());
            }
        )*};
    }
    collect!(ServiceAccount, ConfigMap, Deployment, Service, PersistentVolumeClaim, NetworkPolicy);
    out
}

async fn converged(client: &Client, ns: &str) -> MailAgent {
    let agents = Api::<MailAgent>::namespaced(client.clone(), ns);
    wait_for(&agents, "inbox", |a| {
        a.status.as_ref().and_then(|s| s.observed_generation) == a.metadata.generation && ready_reason(a).is_some()
    })
    .await
}

#[tokio::test]
async fn a_new_mailagent_gets_every_child_hardened_and_owned() {
    let (admin, ns, controller) = agent_with_policy("{}").await;

    let deployments = Api::<Deployment>::namespaced(admin.clone(), ns.name());
    let deployment = wait_for(&deployments, "inbox", |_| true).await;
    let pod = deployment.spec.unwrap().template.spec.unwrap();
    let container = &pod.containers[0];
    let sc = container.security_context.as_ref().unwrap();
    assert_eq!(
        (sc.read_only_root_filesystem, sc.allow_privilege_escalation, sc.run_as_non_root),
        (Some(true), Some(false), Some(true))
    );
    assert_eq!(pod.automount_service_account_token, Some(false));
    assert!(container.env.iter().flatten().all(|e| e.value_from.is_none()), "no secrets in env");

    let sa = wait_for(&Api::<ServiceAccount>::namespaced(admin.clone(), ns.name()), "inbox", |_| true).await;
    assert_eq!(sa.automount_service_account_token, Some(false));
    let cm = wait_for(&Api::<ConfigMap>::namespaced(admin.clone(), ns.name()), "inbox-config", |_| true).await;
    assert_eq!(cm.data.as_ref().unwrap()["AUTH_MODE"], "api_key");
    assert_eq!(cm.data.as_ref().unwrap()["MCP_ENABLE_MUTATION_TOOLS"], "false");
    for surface in ["rest", "a2a", "mcp"] {
        let svc =
            wait_for(&Api::<Service>::namespaced(admin.clone(), ns.name()), &format!("inbox-{surface}"), |_| true)
                .await;
        assert_eq!(svc.owner_references()[0].kind, "MailAgent");
    }
    let np = wait_for(&Api::<NetworkPolicy>::namespaced(admin.clone(), ns.name()), "inbox", |_| true).await;
    assert_eq!(np.spec.unwrap().policy_types.unwrap(), ["Ingress", "Egress"]);
    let pvc =
        wait_for(&Api::<PersistentVolumeClaim>::namespaced(admin.clone(), ns.name()), "inbox-state", |_| true).await;
    assert!(pvc.owner_references().is_empty(), "Retain: the state volume must outlive the agent");

    // No kubelet runs here, so the pods never become ready; `make e2e` sees Ready=True on the
    // node, with a real Deployment controller and kubelet behind it.
    let agent = converged(&admin, ns.name()).await;
    assert_eq!(ready_reason(&agent), Some(("False".into(), "PodsNotReady".into())));
    let status = agent.status.unwrap();
    assert_eq!(status.auth_mode.map(|m| m.to_string()).as_deref(), Some("api_key"));
    assert_eq!(status.url.as_deref(), Some(&*format!("http://inbox-rest.{}.svc:8080", ns.name())));
    controller.stop().await;
}

#[tokio::test]
async fn a_spec_change_touches_only_the_affected_children() {
    let (admin, ns, controller) = agent_with_policy("{}").await;
    converged(&admin, ns.name()).await;
    let before = versions(&admin, ns.name()).await;
    assert_eq!(before.len(), 8, "{before:?}");

    // A restart-only setting: the ConfigMap and the pod template (hash) change, nothing else.
    agent_with(&admin, ns.name(), "rateLimit: {perMinute: 5}").await;
    let cms = Api::<ConfigMap>::namespaced(admin.clone(), ns.name());
    wait_for(&cms, "inbox-config", |c| c.data.as_ref().unwrap()["RATE_LIMIT_PER_MINUTE"] == "5").await;
    converged(&admin, ns.name()).await;
    let after = versions(&admin, ns.name()).await;
    let changed: Vec<_> = after.iter().filter(|(k, v)| before.get(*k) != Some(v)).map(|(k, _)| k.as_str()).collect();
    assert_eq!(changed, ["ConfigMap/inbox-config", "Deployment/inbox"]);

    // The incident switch: only the ConfigMap changes; the pod template does not, so no rollout.
    let hash_before =
        Api::<Deployment>::namespaced(admin.clone(), ns.name()).get("inbox").await.unwrap().spec.unwrap().template;
    agent_with(&admin, ns.name(), "rateLimit: {perMinute: 5}\nmcp: {enableMutationTools: true}").await;
    wait_for(&cms, "inbox-config", |c| c.data.as_ref().unwrap()["MCP_ENABLE_MUTATION_TOOLS"] == "true").await;
    converged(&admin, ns.name()).await;
    let again = versions(&admin, ns.name()).await;
    let changed: Vec<_> = again.iter().filter(|(k, v)| after.get(*k) != Some(v)).map(|(k, _)| k.as_str()).collect();
    assert_eq!(changed, ["ConfigMap/inbox-config"]);
    let hash_after =
        Api::<Deployment>::namespaced(admin.clone(), ns.name()).get("inbox").await.unwrap().spec.unwrap().template;
    assert_eq!(hash_before, hash_after);
    controller.stop().await;
}

#[tokio::test]
async fn turning_a_surface_off_removes_its_service() {
    let (admin, ns, controller) = agent_with_policy("{}").await;
    let services = Api::<Service>::namespaced(admin.clone(), ns.name());
    wait_for(&services, "inbox-a2a", |_| true).await;

    agent_with(&admin, ns.name(), "surfaces: {rest: true, a2a: false, mcp: true}").await;
    wait_gone(&services, "inbox-a2a").await;
    let cms = Api::<ConfigMap>::namespaced(admin.clone(), ns.name());
    wait_for(&cms, "inbox-config", |c| c.data.as_ref().unwrap()["MAILAGENT_SURFACES"] == "rest,mcp").await;
    assert!(
        services.get_opt("inbox-rest").await.unwrap().is_some()
            && services.get_opt("inbox-mcp").await.unwrap().is_some()
    );
    controller.stop().await;
}

#[tokio::test]
async fn a_noop_resync_and_an_operator_restart_write_nothing() {
    let (admin, ns, controller) = agent_with_policy("{}").await;
    converged(&admin, ns.name()).await;
    let agents = Api::<MailAgent>::namespaced(admin.clone(), ns.name());
    let settled = versions(&admin, ns.name()).await;
    let writes = controller.metrics.total_writes();
    // 8 children and a status write per observed change (first status, the rollout seen). The
    // same with a Ready agent, on a real node: `make e2e`'s operator upgrade.
    assert!(
        (8 + 1..=8 + 2).contains(&writes),
        "writes to create one agent: {writes}\n{:#?}",
        support::operator_writes(ns.name())
    );

    // A change that is not in the spec (a label) triggers a reconcile that must write nothing.
    let touch = json!({"metadata": {"labels": {"touched": "yes"}}});
    agents.patch("inbox", &PatchParams::default(), &Patch::Merge(&touch)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(controller.metrics.total_writes(), writes, "a no-op reconcile wrote");
    controller.stop().await;

    // A fresh operator process sees everything for the first time: still nothing to write, and
    // above all no pod template change (an operator upgrade must not roll every agent).
    let restarted = RunningController::start(ns.name()).await;
    eventually(
        "the restarted controller to reconcile",
        Duration::from_secs(30),
        || async {
            Some(restarted.metrics.encode().contains("mailagent_operator_reconciles_total{controller=\"mailagent\"}"))
        },
        |seen| *seen,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(restarted.metrics.total_writes(), 0, "an operator restart wrote to existing objects");
    assert_eq!(versions(&admin, ns.name()).await, settled);
    restarted.stop().await;
}

#[tokio::test]
async fn missing_references_are_reported_and_fail_closed() {
    let admin = support::admin().await;
    let ns = TestNamespace::create(&admin).await;
    agent_with(&admin, ns.name(), "mailbox: {provider: gmail, credentialsSecretRef: {name: gmail-token}}").await;
    let controller = RunningController::start(ns.name()).await;
    let agents = Api::<MailAgent>::namespaced(admin.clone(), ns.name());
    let agent = wait_for(&agents, "inbox", |a| ready_reason(a).is_some()).await;
    assert_eq!(ready_reason(&agent), Some(("False".into(), "AuthPolicyNotFound".into())));
    let creds = conditions::find(&agent.status.as_ref().unwrap().conditions, conditions::CREDENTIALS_RESOLVED).unwrap();
    assert_eq!((creds.status.as_str(), creds.reason.as_str()), ("False", "CredentialsNotFound"));
    let deployments = Api::<Deployment>::namespaced(admin.clone(), ns.name());
    let d = wait_for(&deployments, "inbox", |_| true).await;
    assert_eq!(d.spec.unwrap().replicas, Some(0), "no policy, no pods");

    apply_yaml::<AuthPolicy>(&admin, ns.name(), "policy", POLICY).await;
    // The policy's keys are published before the agent can be ready (issue 9).
    let policies = Api::<AuthPolicy>::namespaced(admin.clone(), ns.name());
    wait_for(&policies, "policy", |p| {
        p.status
            .as_ref()
            .is_some_and(|s| conditions::find(&s.conditions, conditions::READY).is_some_and(|c| c.status == "True"))
    })
    .await;
    wait_for(&deployments, "inbox", |d| d.spec.as_ref().unwrap().replicas == Some(1)).await;
    let agent = wait_for(&agents, "inbox", |a| ready_reason(a).is_some_and(|(_, r)| r == "CredentialsNotFound")).await;
    assert_eq!(agent.status.unwrap().auth_mode.map(|m| m.to_string()).as_deref(), Some("api_key"));

    let secret = Secret {
        metadata: kube::api::ObjectMeta { name: Some("gmail-token".into()), ..Default::default() },
        ..Default::default()
    };
    Api::<Secret>::namespaced(admin.clone(), ns.name()).create(&PostParams::default(), &secret).await.unwrap();
    // The Secret is not watched (the operator may only `get` Secrets): found on the next recheck.
    let agent = eventually(
        "credentials to resolve",
        Duration::from_secs(45),
        || async { agents.get("inbox").await.ok() },
        |a| {
            conditions::find(&a.status.as_ref().unwrap().conditions, conditions::CREDENTIALS_RESOLVED)
                .is_some_and(|c| c.status == "True")
        },
    )
    .await;
    assert_eq!(ready_reason(&agent).unwrap().1, "PodsNotReady");
    controller.stop().await;
}

/// A Secret's contents by fingerprint (12 hex digits of their SHA-256), so a failed comparison
/// prints no key.
fn fingerprint(secret: &Secret) -> String {
    use sha2::Digest;
    let data = serde_json::to_vec(&secret.data).unwrap();
    hex::encode(sha2::Sha256::digest(data))[..12].to_owned()
}

/// What a policy publishes is not watched (the operator may only `get` Secrets). Deleted by hand
/// under a converged agent, the keyring, the JWKS ConfigMap and a client's Secret come back within
/// the operator's recheck of published objects, with the same keys; the agent keeps its
/// Deployment (no pod is replaced) and ends where it was.
#[tokio::test]
async fn deleted_published_objects_come_back_with_the_same_keys() {
    let admin = support::admin().await;
    let ns = TestNamespace::create(&admin).await;
    apply_yaml::<AuthPolicy>(&admin, ns.name(), "policy", POLICY).await;
    agent_with(&admin, ns.name(), "{}").await;
    let controller = RunningController::start(ns.name()).await;
    let agents = Api::<MailAgent>::namespaced(admin.clone(), ns.name());
    let reason = |want: &'static str| move |a: &MailAgent| ready_reason(a).is_some_and(|(_, r)| r == want);
    // Every reference resolved, the keyring included: only the pods (no kubelet here) are missing.
    wait_for(&agents, "inbox", reason("PodsNotReady")).await;
    let deployments = Api::<Deployment>::namespaced(admin.clone(), ns.name());
    let deployment = wait_for(&deployments, "inbox", |d| d.spec.as_ref().unwrap().replicas == Some(1)).await;
    let secrets = Api::<Secret>::namespaced(admin.clone(), ns.name());
    let maps = Api::<ConfigMap>::namespaced(admin.clone(), ns.name());
    let (keyring, client) =
        (mailagent_crds::names::keyring_secret("policy"), mailagent_crds::names::client_secret("policy", "ci"));
    let jwks = mailagent_crds::names::jwks_config_map("policy");
    let (published_keyring, published_client) =
        (secrets.get(&keyring).await.unwrap(), secrets.get(&client).await.unwrap());
    let published_jwks = maps.get(&jwks).await.unwrap();

    for name in [&keyring, &client] {
        secrets.delete(name, &DeleteParams::default()).await.unwrap();
    }
    maps.delete(&jwks, &DeleteParams::default()).await.unwrap();
    let within = RECHECK + Duration::from_secs(30);
    let back = |api: &Api<Secret>, name: &str| {
        let (api, name) = (api.clone(), name.to_owned());
        async move {
            eventually(&name.clone(), within, || async { api.get_opt(&name).await.ok().flatten() }, |_| true).await
        }
    };
    let (new_keyring, new_client) = (back(&secrets, &keyring).await, back(&secrets, &client).await);
    assert_eq!(fingerprint(&new_keyring), fingerprint(&published_keyring), "the keyring came back with other keys");
    assert_eq!(fingerprint(&new_client), fingerprint(&published_client), "the client's key changed");
    let new_jwks =
        eventually("the JWKS ConfigMap", within, || async { maps.get_opt(&jwks).await.ok().flatten() }, |_| true).await;
    assert_eq!(new_jwks.data, published_jwks.data);

    // The agent may have seen the keyring missing in between; it ends where it was, on the same
    // Deployment.
    wait_for(&agents, "inbox", reason("PodsNotReady")).await;
    let after = deployments.get("inbox").await.unwrap();
    assert_eq!(
        (after.uid(), after.metadata.generation),
        (deployment.uid(), deployment.metadata.generation),
        "the Deployment was replaced or rolled"
    );

    // What the operator wrote names the Secrets, never what they hold.
    let api_key = String::from_utf8_lossy(&new_client.data.unwrap()[files::CLIENT_API_KEY].0).into_owned();
    let ring: Keyring = serde_json::from_slice(&published_keyring.data.as_ref().unwrap()[files::KEYRING].0)
        .unwrap_or_else(|_| panic!("keyring {} does not parse", fingerprint(&published_keyring)));
    let events = Api::<k8s_openapi::api::events::v1::Event>::namespaced(admin.clone(), ns.name());
    let policies = Api::<AuthPolicy>::namespaced(admin.clone(), ns.name());
    let written = format!(
        "{}{}{}",
        serde_json::to_string(&agents.get("inbox").await.unwrap().status).unwrap(),
        serde_json::to_string(&policies.get("policy").await.unwrap().status).unwrap(),
        serde_json::to_string(&events.list(&ListParams::default()).await.unwrap().items).unwrap()
    );
    assert!(!api_key.is_empty() && !ring.api_keys.is_empty());
    assert!(
        !written.contains(&api_key) && ring.api_keys.iter().all(|k| !written.contains(&k.sha256)),
        "a status or an Event repeats the keyring's contents"
    );
    controller.stop().await;
}

/// A status someone else overwrote (a hand edit through the status subresource, another
/// controller) is written back, as soon as the operator sees the edit: the operator's memo of what
/// it last wrote must not stand in for what the object now says.
#[tokio::test]
async fn a_status_overwritten_by_hand_is_written_back() {
    let (admin, ns, controller) = agent_with_policy("{}").await;
    let agents = Api::<MailAgent>::namespaced(admin.clone(), ns.name());
    let settled = |a: &MailAgent| ready_reason(a).is_some_and(|(_, r)| r == "PodsNotReady");
    let before = wait_for(&agents, "inbox", settled).await;
    let edit = json!({"status": {"conditions": [], "url": "http://elsewhere.example"}});
    let params = PatchParams { field_manager: Some("kubectl-edit".into()), ..Default::default() };
    agents.patch_status("inbox", &params, &Patch::Merge(&edit)).await.unwrap();
    let restored = wait_for(&agents, "inbox", |a| {
        settled(a) && a.status.as_ref().unwrap().url == before.status.as_ref().unwrap().url
    })
    .await;
    assert_eq!(
        restored.status.as_ref().unwrap().conditions.len(),
        before.status.as_ref().unwrap().conditions.len(),
        "every condition is back"
    );
    controller.stop().await;
}

#[tokio::test]
async fn suspend_scales_to_zero_and_keeps_everything() {
    let (admin, ns, controller) = agent_with_policy("{}").await;
    converged(&admin, ns.name()).await;
    agent_with(&admin, ns.name(), "suspend: true").await;
    let deployments = Api::<Deployment>::namespaced(admin.clone(), ns.name());
    wait_for(&deployments, "inbox", |d| d.spec.as_ref().unwrap().replicas == Some(0)).await;
    let agents = Api::<MailAgent>::namespaced(admin.clone(), ns.name());
    wait_for(&agents, "inbox", |a| ready_reason(a).is_some_and(|(_, r)| r == "Suspended")).await;
    assert_eq!(versions(&admin, ns.name()).await.len(), 8, "suspend keeps every child");
    controller.stop().await;
}

#[tokio::test]
async fn the_state_volume_is_owned_only_when_asked_to_be_deleted() {
    let (admin, ns, controller) = agent_with_policy("storage: {onDelete: Delete}").await;
    let pvcs = Api::<PersistentVolumeClaim>::namespaced(admin.clone(), ns.name());
    let pvc = support::eventually(
        "an owned state volume",
        Duration::from_secs(30),
        || async { pvcs.get_opt("inbox-state").await.ok().flatten() },
        |p| !p.owner_references().is_empty(),
    )
    .await;
    assert_eq!(pvc.owner_references()[0].name, "inbox");

    agent_with(&admin, ns.name(), "storage: {onDelete: Retain}").await;
    wait_for(&pvcs, "inbox-state", |p| p.owner_references().is_empty()).await;

    // Deleting the agent leaves the retained volume (garbage collection follows owner references).
    Api::<MailAgent>::namespaced(admin.clone(), ns.name()).delete("inbox", &DeleteParams::foreground()).await.unwrap();
    controller.stop().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(pvcs.get_opt("inbox-state").await.unwrap().is_some(), "Retain must keep the state volume");
}

/// A Gmail agent's spec for the quota tests: its own credentials Secret, a scan schedule, and
/// `quota` when given.
fn gmail_agent(secret: &str, quota: Option<serde_json::Value>) -> String {
    let mut spec = json!({
        "image": "registry.example/mailagent:0.1.0",
        "authPolicyRef": {"name": "policy"},
        "mailbox": {"provider": "gmail", "credentialsSecretRef": {"name": secret}},
        "schedules": {"scan": "0 * * * *"},
    });
    if let Some(quota) = quota {
        spec["mailbox"]["quota"] = quota;
    }
    spec.to_string()
}

async fn setting(client: &Client, ns: &str, agent: &str, name: &str) -> Option<String> {
    let maps = Api::<ConfigMap>::namespaced(client.clone(), ns);
    let map = maps.get_opt(&mailagent_crds::names::config_map(agent)).await.unwrap()?;
    map.data?.get(name).cloned()
}

/// Twenty Gmail agents name one quota group: the operator divides the group's budget among them
/// (rendered as the live setting the workload paces to), spreads their scan starts, and gives the
/// share back to the rest when half of them go.
#[tokio::test]
async fn agents_of_one_quota_group_share_its_budget_and_spread_their_scans() {
    use mailagent_crds::contract::env::{GMAIL_QUOTA_UNITS_PER_MINUTE, SCAN_SCHEDULE_DELAY_SECONDS};
    let admin = support::admin().await;
    let ns = TestNamespace::create(&admin).await;
    apply_yaml::<AuthPolicy>(&admin, ns.name(), "policy", POLICY).await;
    let quota = json!({"group": "acme-prod", "groupUnitsPerMinute": 2000});
    let names: Vec<String> = (0..20).map(|i| format!("fleet-{i:02}")).collect();
    for name in &names {
        apply_yaml::<MailAgent>(&admin, ns.name(), name, &gmail_agent("creds", Some(quota.clone()))).await;
    }
    let _controller = RunningController::start(ns.name()).await;
    let agents = Api::<MailAgent>::namespaced(admin.clone(), ns.name());
    let shares = |want: &'static str, names: Vec<String>| {
        let (admin, ns) = (admin.clone(), ns.name().to_owned());
        async move {
            eventually(
                &format!("every ConfigMap at {want} units a minute"),
                Duration::from_secs(60),
                || {
                    let (admin, ns, names) = (admin.clone(), ns.clone(), names.clone());
                    async move {
                        let mut found = Vec::new();
                        for name in &names {
                            found.push(setting(&admin, &ns, name, GMAIL_QUOTA_UNITS_PER_MINUTE).await);
                        }
                        Some(found)
                    }
                },
                |found| found.iter().all(|s| s.as_deref() == Some(want)),
            )
            .await
        }
    };
    // 2,000 units among 20 agents: 100 each (one send's cost, so not oversubscribed).
    shares("100", names.clone()).await;
    let status = wait_for(&agents, &names[0], |a| {
        a.status.as_ref().and_then(|s| s.quota.as_ref()).is_some_and(|q| q.members == 20)
    })
    .await;
    let quota_status = status.status.unwrap().quota.unwrap();
    assert_eq!(
        (
            quota_status.group.as_deref(),
            quota_status.group_units_per_minute,
            quota_status.units_per_minute,
            quota_status.oversubscribed
        ),
        (Some("acme-prod"), 2_000, 100, false)
    );
    let mut delays = std::collections::BTreeSet::new();
    for name in &names {
        delays.insert(setting(&admin, ns.name(), name, SCAN_SCHEDULE_DELAY_SECONDS).await.expect("a scan delay"));
    }
    assert!(delays.len() >= 8, "20 agents' scans spread over 32 minutes, not one: {delays:?}");
    // The group was counted whole before the first reconcile: each ConfigMap written once.
    let config_writes = support::operator_writes(ns.name())
        .iter()
        .filter(|w| w.contains("-config") && w.contains("configmaps"))
        .count();
    assert_eq!(config_writes, 20, "{:#?}", support::operator_writes(ns.name()));

    // Half the group goes: the rest get 200 each, without a restart (the share is a live setting).
    let hashes_before: Vec<_> = {
        let deployments = Api::<Deployment>::namespaced(admin.clone(), ns.name());
        let mut out = Vec::new();
        for name in &names[10..] {
            out.push(deployments.get(name).await.unwrap().spec.unwrap().template.metadata.unwrap().annotations);
        }
        out
    };
    for name in &names[..10] {
        agents.delete(name, &DeleteParams::default()).await.unwrap();
    }
    shares("200", names[10..].to_vec()).await;
    let deployments = Api::<Deployment>::namespaced(admin.clone(), ns.name());
    for (name, before) in names[10..].iter().zip(hashes_before) {
        let after = deployments.get(name).await.unwrap().spec.unwrap().template.metadata.unwrap().annotations;
        assert_eq!(after, before, "{name}'s pods were not restarted for a new share");
    }
}

/// An agent that names no group joins its OAuth client's, read from the credentials Secret and
/// named by fingerprint: status never repeats the client id, let alone the secret.
#[tokio::test]
async fn agents_naming_no_group_share_their_oauth_clients_budget() {
    let admin = support::admin().await;
    let ns = TestNamespace::create(&admin).await;
    apply_yaml::<AuthPolicy>(&admin, ns.name(), "policy", POLICY).await;
    let client_id = "1234-fleet.apps.googleusercontent.com";
    let secrets = Api::<Secret>::namespaced(admin.clone(), ns.name());
    for (name, file, body) in [
        ("creds-a", "client_secret.json", json!({"installed": {"client_id": client_id, "client_secret": "cs-a"}})),
        ("creds-b", "token.json", json!({"client_id": client_id, "client_secret": "cs-b", "refresh_token": "rt-b"})),
    ] {
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": name}, "stringData": {file: body.to_string()}
        }))
        .unwrap();
        secrets.create(&PostParams::default(), &secret).await.unwrap();
    }
    apply_yaml::<MailAgent>(&admin, ns.name(), "alice", &gmail_agent("creds-a", None)).await;
    apply_yaml::<MailAgent>(
        &admin,
        ns.name(),
        "bob",
        &gmail_agent("creds-b", Some(json!({"groupUnitsPerMinute": 20000}))),
    )
    .await;
    let _controller = RunningController::start(ns.name()).await;
    let agents = Api::<MailAgent>::namespaced(admin.clone(), ns.name());
    let group = mailagent_crds::quota::oauth_client_group(client_id);
    for name in ["alice", "bob"] {
        let agent = wait_for(&agents, name, |a| {
            a.status.as_ref().and_then(|s| s.quota.as_ref()).is_some_and(|q| q.members == 2)
        })
        .await;
        let quota = agent.status.as_ref().unwrap().quota.clone().unwrap();
        // The smaller stated budget holds: 20,000 among two.
        assert_eq!(
            (quota.group.as_deref(), quota.group_units_per_minute, quota.units_per_minute),
            (Some(group.as_str()), 20_000, 10_000)
        );
        let status = serde_json::to_string(&agent.status).unwrap();
        assert!(
            !status.contains("1234-fleet") && !status.contains("cs-") && !status.contains("rt-b"),
            "status repeats the credentials"
        );
    }
}
