//! Several operator shards side by side against a real kube-apiserver, as the operator's
//! ServiceAccount under the chart's RBAC: who writes what, and an agent moving between shards.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use mailagent_crds::{AuthPolicy, MailAgent};
use mailagent_operator::shard::{SHARD_LABEL, Shard, is_operator_manager};
use mailagent_tests::TestNamespace;
use serde_json::json;
use support::{RunningController, eventually};

const POLICY: &str = "mode: api_key\napiKeys: [{name: ci, scopes: [mail:scan]}]";

/// Every child of every agent in `ns`: `kind/name` -> (its agent, uid, resourceVersion, the
/// operator field managers on it, its shard label).
type Children = BTreeMap<String, (String, String, String, BTreeSet<String>, Option<String>)>;

fn operator_managers<K: Resource>(object: &K) -> BTreeSet<String> {
    let entries = object.meta().managed_fields.as_deref().unwrap_or_default();
    entries.iter().filter_map(|e| e.manager.clone()).filter(|m| is_operator_manager(m)).collect()
}

async fn children(client: &Client, ns: &str) -> Children {
    let mut out = Children::new();
    let lp = ListParams::default().labels("app.kubernetes.io/managed-by=mailagent-operator");
    macro_rules! collect {
        ($($kind:ty),*) => {$(
            for o in Api::<$kind>::namespaced(client.clone(), ns).list(&lp).await.unwrap() {
                // The policy's own children (its JWKS) are not an agent's.
                let Some(agent) = o.labels().get("mailagent.dev/agent").cloned() else { continue };
                let shard = o.labels().get(SHARD_LABEL).cloned();
                let entry = (agent, o.uid().unwrap(), o.resource_version().unwrap(), operator_managers(&o), shard);
                out.insert(format!("{}/{}", stringify!($kind), o.name_any()), entry);
            }
        )*};
    }
    collect!(ServiceAccount, ConfigMap, Deployment, Service, PersistentVolumeClaim, NetworkPolicy);
    out
}

fn agent_name(i: usize) -> String {
    format!("agent-{i:03}")
}

async fn create_agents(client: &Client, ns: &str, count: usize) -> Vec<String> {
    let policy = json!({"apiVersion": "mailagent.dev/v1alpha1", "kind": "AuthPolicy", "metadata": {"name": "policy"},
        "spec": serde_yaml::from_str::<serde_json::Value>(POLICY).unwrap()});
    Api::<AuthPolicy>::namespaced(client.clone(), ns)
        .patch("policy", &PatchParams::apply("a-user"), &Patch::Apply(&policy))
        .await
        .unwrap();
    let agents = Api::<MailAgent>::namespaced(client.clone(), ns);
    let names: Vec<String> = (0..count).map(agent_name).collect();
    for name in &names {
        let body = json!({"apiVersion": "mailagent.dev/v1alpha1", "kind": "MailAgent", "metadata": {"name": name},
            "spec": {"image": "registry.example/mailagent:0.1.0", "authPolicyRef": {"name": "policy"},
                     "mailbox": {"provider": "maildir"}}});
        agents.patch(name, &PatchParams::apply("a-user"), &Patch::Apply(&body)).await.unwrap();
    }
    names
}

/// Waits until every agent's status has observed its generation.
async fn all_converged(client: &Client, ns: &str, count: usize) -> Vec<MailAgent> {
    let agents = Api::<MailAgent>::namespaced(client.clone(), ns);
    eventually(
        "every agent to be reconciled",
        Duration::from_secs(240),
        || async {
            let listed = agents.list(&Default::default()).await.ok()?.items;
            Some(listed)
        },
        |listed: &Vec<MailAgent>| {
            listed.len() == count
                && listed.iter().all(|a| a.status.as_ref().and_then(|s| s.observed_generation) == a.metadata.generation)
        },
    )
    .await
}

fn owner(ns: &str, agent: &MailAgent) -> u32 {
    Shard::owner(2, ns, &agent.name_any(), agent.metadata.labels.as_ref())
}

/// Waits until both shards have made a reconcile pass and stopped writing.
async fn quiet(shards: &[&RunningController]) {
    let mut last = u64::MAX;
    loop {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let now: u64 = shards.iter().map(|s| s.metrics.total_writes()).sum();
        if now == last {
            return;
        }
        last = now;
    }
}

#[tokio::test]
async fn two_shards_split_two_hundred_agents_and_each_child_has_one_writer() {
    let admin = support::admin().await;
    let ns = TestNamespace::create(&admin).await;
    let count = 200;
    create_agents(&admin, ns.name(), count).await;
    let zero = RunningController::start_shard(ns.name(), Shard::new(0, 2).unwrap()).await;
    let one = RunningController::start_shard(ns.name(), Shard::new(1, 2).unwrap()).await;
    let agents = all_converged(&admin, ns.name(), count).await;
    quiet(&[&zero, &one]).await;

    let owners: BTreeMap<String, u32> = agents.iter().map(|a| (a.name_any(), owner(ns.name(), a))).collect();
    let on_zero = owners.values().filter(|&&o| o == 0).count();
    assert!((60..=140).contains(&on_zero), "an uneven split: {on_zero} of {count} on shard 0");
    for agent in &agents {
        let expected = format!("mailagent-operator-shard-{}", owners[&agent.name_any()]);
        assert_eq!(operator_managers(agent), BTreeSet::from([expected]), "{} status", agent.name_any());
    }
    let settled = children(&admin, ns.name()).await;
    assert_eq!(settled.len(), count * 8, "8 children per agent");
    for (child, (agent, _, _, managers, label)) in &settled {
        let owner = owners[agent];
        assert_eq!(managers, &BTreeSet::from([format!("mailagent-operator-shard-{owner}")]), "{child}");
        assert_eq!(label.as_deref(), Some(owner.to_string().as_str()), "{child}'s shard label");
    }
    let writes = (zero.metrics.total_writes(), one.metrics.total_writes());
    println!("writes: shard 0 {} for {on_zero} agents, shard 1 {} for {}", writes.0, writes.1, count - on_zero);
    assert_eq!(zero.metrics.writes_of("handover") + one.metrics.writes_of("handover"), 0, "nothing to hand over");

    // A resync of either shard writes nothing: a fresh process sees everything for the first time.
    zero.stop().await;
    let zero = RunningController::start_shard(ns.name(), Shard::new(0, 2).unwrap()).await;
    one.stop().await;
    let one = RunningController::start_shard(ns.name(), Shard::new(1, 2).unwrap()).await;
    for shard in [&zero, &one] {
        eventually(
            "the restarted shard to reconcile",
            Duration::from_secs(60),
            || async { Some(shard.metrics.encode().contains("reconciles_total{controller=\"mailagent\"}")) },
            |seen| *seen,
        )
        .await;
    }
    quiet(&[&zero, &one]).await;
    assert_eq!((zero.metrics.total_writes(), one.metrics.total_writes()), (0, 0), "a resync wrote");
    let versions = |c: &Children| c.iter().map(|(k, v)| (k.clone(), v.2.clone())).collect::<BTreeMap<_, _>>();
    assert_eq!(versions(&children(&admin, ns.name()).await), versions(&settled));
    zero.stop().await;
    one.stop().await;
}

#[tokio::test]
async fn a_relabelled_agent_moves_with_one_hand_over_and_keeps_its_children() {
    let admin = support::admin().await;
    let ns = TestNamespace::create(&admin).await;
    // Six agents, or more when the namespace's random name hashes all six into shard 1 (one run in
    // 64): the test moves one of shard 0's.
    let count = (6..).find(|&n| (0..n).any(|i| Shard::owner(2, ns.name(), &agent_name(i), None) == 0)).unwrap();
    let names = create_agents(&admin, ns.name(), count).await;
    let zero = RunningController::start_shard(ns.name(), Shard::new(0, 2).unwrap()).await;
    let one = RunningController::start_shard(ns.name(), Shard::new(1, 2).unwrap()).await;
    let agents = all_converged(&admin, ns.name(), names.len()).await;
    quiet(&[&zero, &one]).await;
    let moving = agents.iter().find(|a| owner(ns.name(), a) == 0).expect("shard 0 owns one of the agents").name_any();
    let before = children(&admin, ns.name()).await;
    let template = |c: &Client| {
        let (c, ns, name) = (c.clone(), ns.name().to_owned(), moving.clone());
        async move { Api::<Deployment>::namespaced(c, &ns).get(&name).await.unwrap().spec.unwrap().template }
    };
    let template_before = template(&admin).await;
    let (writes_zero, writes_one) = (zero.metrics.total_writes(), one.metrics.total_writes());

    let pin = json!({"metadata": {"labels": {SHARD_LABEL: "1"}}});
    Api::<MailAgent>::namespaced(admin.clone(), ns.name())
        .patch(&moving, &PatchParams::default(), &Patch::Merge(&pin))
        .await
        .unwrap();
    let only_one = BTreeSet::from(["mailagent-operator-shard-1".to_owned()]);
    let after = eventually(
        "the agent's children to move to shard 1",
        Duration::from_secs(60),
        || async { Some(children(&admin, ns.name()).await) },
        |now: &Children| now.values().filter(|c| c.0 == moving).all(|c| c.3 == only_one && c.4.as_deref() == Some("1")),
    )
    .await;
    eventually(
        "the agent's status to be shard 1's alone",
        Duration::from_secs(30),
        || async { Api::<MailAgent>::namespaced(admin.clone(), ns.name()).get(&moving).await.ok() },
        |a: &MailAgent| operator_managers(a) == only_one,
    )
    .await;
    quiet(&[&zero, &one]).await;

    // No child was deleted or replaced, the pods were not rolled, and nobody else was touched.
    for (child, (agent, uid, version, ..)) in &before {
        assert_eq!(&after[child].1, uid, "{child} was replaced");
        if agent != &moving {
            assert_eq!(&after[child].2, version, "{child} of another agent was written");
        }
    }
    assert_eq!(template(&admin).await, template_before, "the hand-over changed the pod template");
    assert_eq!(zero.metrics.total_writes(), writes_zero, "the shard it left wrote");
    // The receiving shard: one apply and one hand-over per child; its status, and the other
    // shard's name taken off it.
    let moved = before.values().filter(|c| c.0 == moving).count() as u64;
    assert_eq!(moved, 8);
    let handovers = one.metrics.encode();
    let handovers: BTreeMap<&str, u64> = handovers
        .lines()
        .filter(|l| l.starts_with("mailagent_operator_api_writes_total{") && l.contains("verb=\"handover\""))
        .filter_map(|l| Some((l.split('"').nth(1)?, l.rsplit(' ').next()?.parse().ok()?)))
        .collect();
    let of_children: u64 = handovers.iter().filter(|(kind, _)| **kind != "MailAgent").map(|(_, n)| n).sum();
    assert_eq!(of_children, moved, "one hand-over per child: {handovers:?}");
    // The status: once, or twice when a reconcile ran before the watch brought the first one.
    assert!((1..=2).contains(&handovers.get("MailAgent").copied().unwrap_or(0)), "{handovers:?}");
    let written = one.metrics.total_writes() - writes_one;
    println!("hand-over of one agent: {written} writes by the receiving shard, 0 by the one it left");
    // An apply and a hand-over per child, the status and its hand-over (at most twice each).
    assert!(written <= 2 * moved + 4, "{written} writes to take over one agent");

    // The policy moves too: everything made for it, and its status, end with the new owner alone.
    let policies = Api::<AuthPolicy>::namespaced(admin.clone(), ns.name());
    let policy = policies.get("policy").await.unwrap();
    let from = Shard::owner(2, ns.name(), "policy", policy.metadata.labels.as_ref());
    let to = 1 - from;
    let pin = json!({"metadata": {"labels": {SHARD_LABEL: to.to_string()}}});
    policies.patch("policy", &PatchParams::default(), &Patch::Merge(&pin)).await.unwrap();
    let only_new = BTreeSet::from([format!("mailagent-operator-shard-{to}")]);
    eventually(
        "the policy's objects and status to be the new shard's alone",
        Duration::from_secs(60),
        || async { Some(policy_writers(&admin, ns.name()).await) },
        |writers: &BTreeMap<String, BTreeSet<String>>| {
            writers.len() >= 4 && writers.values().all(|managers| *managers == only_new)
        },
    )
    .await;
    zero.stop().await;
    one.stop().await;
}

/// The operator field managers on the policy's status and on everything made for it.
async fn policy_writers(client: &Client, ns: &str) -> BTreeMap<String, BTreeSet<String>> {
    use k8s_openapi::api::batch::v1::CronJob;
    use k8s_openapi::api::core::v1::Secret;
    use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
    let mut out = BTreeMap::new();
    let policy = Api::<AuthPolicy>::namespaced(client.clone(), ns).get("policy").await.unwrap();
    out.insert("AuthPolicy/policy".to_owned(), operator_managers(&policy));
    let lp = ListParams::default().labels("mailagent.dev/policy=policy");
    macro_rules! collect {
        ($($kind:ty),*) => {$(
            for o in Api::<$kind>::namespaced(client.clone(), ns).list(&lp).await.unwrap() {
                out.insert(format!("{}/{}", stringify!($kind), o.name_any()), operator_managers(&o));
            }
        )*};
    }
    collect!(Secret, ConfigMap, ServiceAccount, Role, RoleBinding, CronJob);
    out
}

/// A Gmail agent of `ns` with its own credentials Secret `secret`, pinned to `shard`.
async fn gmail_agent(client: &Client, ns: &str, name: &str, secret: &str, quota: serde_json::Value, shard: u32) {
    let body = json!({"apiVersion": "mailagent.dev/v1alpha1", "kind": "MailAgent",
        "metadata": {"name": name, "labels": {SHARD_LABEL: shard.to_string()}},
        "spec": {"image": "registry.example/mailagent:0.1.0", "authPolicyRef": {"name": "policy"},
                 "mailbox": {"provider": "gmail", "credentialsSecretRef": {"name": secret}, "quota": quota}}});
    Api::<MailAgent>::namespaced(client.clone(), ns)
        .patch(name, &PatchParams::apply("a-user"), &Patch::Apply(&body))
        .await
        .unwrap();
}

/// A quota group spans shards: each shard counts the other's members, by the group their spec
/// names, or, for a group learnt from OAuth credentials (which only the owner reads), by the
/// group the owner reported in status.
#[tokio::test]
async fn a_quota_group_across_shards_is_counted_whole_by_each() {
    use k8s_openapi::api::core::v1::Secret;
    use kube::api::PostParams;
    let admin = support::admin().await;
    let ns = TestNamespace::create(&admin).await;
    create_agents(&admin, ns.name(), 0).await;
    let client_id = "5678-fleet.apps.googleusercontent.com";
    let secrets = Api::<Secret>::namespaced(admin.clone(), ns.name());
    for name in ["creds-a", "creds-b"] {
        let token = json!({"client_id": client_id, "client_secret": "cs", "refresh_token": "rt"}).to_string();
        let secret: Secret =
            serde_json::from_value(json!({"metadata": {"name": name}, "stringData": {"token.json": token}})).unwrap();
        secrets.create(&PostParams::default(), &secret).await.unwrap();
    }
    let named = json!({"group": "acme-prod", "groupUnitsPerMinute": 2000});
    for i in 0..10 {
        gmail_agent(&admin, ns.name(), &format!("fleet-{i}"), "creds-a", named.clone(), i % 2).await;
    }
    let learnt = json!({"groupUnitsPerMinute": 20000});
    gmail_agent(&admin, ns.name(), "alice", "creds-a", learnt.clone(), 0).await;
    gmail_agent(&admin, ns.name(), "bob", "creds-b", learnt, 1).await;
    let zero = RunningController::start_shard(ns.name(), Shard::new(0, 2).unwrap()).await;
    let one = RunningController::start_shard(ns.name(), Shard::new(1, 2).unwrap()).await;
    let agents = Api::<MailAgent>::namespaced(admin.clone(), ns.name());
    let shares = eventually(
        "every agent's share to count both shards' members",
        Duration::from_secs(90),
        || async {
            let listed = agents.list(&Default::default()).await.ok()?.items;
            Some(listed.iter().map(|a| (a.name_any(), a.status.as_ref().and_then(|s| s.quota.clone()))).collect())
        },
        |shares: &BTreeMap<String, Option<mailagent_crds::QuotaStatus>>| {
            shares.len() == 12
                && shares.iter().all(|(name, quota)| {
                    let want = if name.starts_with("fleet-") { (10, 200) } else { (2, 10_000) };
                    quota.as_ref().is_some_and(|q| (q.members, q.units_per_minute) == want)
                })
        },
    )
    .await;
    let group = mailagent_crds::quota::oauth_client_group(client_id);
    assert_eq!(shares["alice"].as_ref().unwrap().group.as_deref(), Some(group.as_str()));
    zero.stop().await;
    one.stop().await;
}
