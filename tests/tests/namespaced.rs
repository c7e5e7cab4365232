//! The namespaced install mode (the chart's `watchNamespaces`): an operator identity that holds
//! the chart's rules as a Role in two namespaces, and nothing cluster-wide, runs both controllers
//! for those two namespaces against a real kube-apiserver. Agents and policies there converge; a
//! third namespace is neither touched nor readable.

mod support;

use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::events::{Recorder, Reporter};
use kube::{Api, Client};
use mailagent_crds::{AuthPolicy, MailAgent};
use mailagent_operator::controller::authpolicy::SystemClock;
use mailagent_operator::health::Health;
use mailagent_operator::metrics::Metrics;
use mailagent_operator::{Controllers, run_controllers};
use mailagent_tests::TestNamespace;
use serde_json::json;
use support::{chart_rules, eventually};

/// A ServiceAccount of its own, so the cluster-wide binding the other tests install for
/// `mailagent-system:mailagent-operator` grants it nothing.
const SCOPED_SA_NAMESPACE: &str = "mailagent-scoped";
const SCOPED_SA: &str = "mailagent-operator";

async fn scoped_identity() -> Client {
    mailagent_tests::shared()
        .impersonating(
            &format!("system:serviceaccount:{SCOPED_SA_NAMESPACE}:{SCOPED_SA}"),
            &[
                "system:serviceaccounts",
                &format!("system:serviceaccounts:{SCOPED_SA_NAMESPACE}"),
                "system:authenticated",
            ],
        )
        .await
}

/// What the chart renders per watched namespace: its rules as a Role, bound to the operator.
async fn grant_in(admin: &Client, ns: &str) {
    let pp = PatchParams::apply("mailagent-tests").force();
    let role = Role {
        metadata: ObjectMeta { name: Some("mailagent-operator".into()), ..Default::default() },
        rules: Some(chart_rules()),
    };
    Api::<Role>::namespaced(admin.clone(), ns).patch("mailagent-operator", &pp, &Patch::Apply(&role)).await.unwrap();
    let binding = RoleBinding {
        metadata: ObjectMeta { name: Some("mailagent-operator".into()), ..Default::default() },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Role".into(),
            name: "mailagent-operator".into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: SCOPED_SA.into(),
            namespace: Some(SCOPED_SA_NAMESPACE.into()),
            ..Default::default()
        }]),
    };
    Api::<RoleBinding>::namespaced(admin.clone(), ns)
        .patch("mailagent-operator", &pp, &Patch::Apply(&binding))
        .await
        .unwrap();
}

async fn agent_and_policy(admin: &Client, ns: &str) {
    let pp = PatchParams::apply("a-user").force();
    let policy = json!({"apiVersion": "mailagent.dev/v1alpha1", "kind": "AuthPolicy", "metadata": {"name": "policy"},
        "spec": {"mode": "api_key", "apiKeys": [{"name": "ci", "scopes": ["mail:scan"]}]}});
    Api::<AuthPolicy>::namespaced(admin.clone(), ns).patch("policy", &pp, &Patch::Apply(&policy)).await.unwrap();
    let agent = json!({"apiVersion": "mailagent.dev/v1alpha1", "kind": "MailAgent", "metadata": {"name": "inbox"},
        "spec": {"image": "registry.example/mailagent:0.1.0", "authPolicyRef": {"name": "policy"},
                 "mailbox": {"provider": "maildir"}}});
    Api::<MailAgent>::namespaced(admin.clone(), ns).patch("inbox", &pp, &Patch::Apply(&agent)).await.unwrap();
}

#[tokio::test]
async fn roles_in_the_watched_namespaces_are_all_it_needs_and_others_stay_untouched() {
    let admin = support::admin().await;
    let (a, b, other) =
        (TestNamespace::create(&admin).await, TestNamespace::create(&admin).await, TestNamespace::create(&admin).await);
    for ns in [&a, &b] {
        grant_in(&admin, ns.name()).await;
    }
    for ns in [&a, &b, &other] {
        agent_and_policy(&admin, ns.name()).await;
    }

    let client = scoped_identity().await;
    let health = Arc::new(Health::default());
    health.set_leading();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let settings = Controllers {
        namespaces: Some(vec![a.name().to_owned(), b.name().to_owned()]),
        concurrency: 4,
        rotator_image: support::ROTATOR_IMAGE.into(),
        clock: Arc::new(SystemClock),
        verify_interval: mailagent_operator::controller::mailagent::verify::DEFAULT_INTERVAL,
        operator_namespace: None,
        shard: Default::default(),
    };
    let recorder = Recorder::new(client.clone(), Reporter { controller: "mailagent-operator".into(), instance: None });
    let shutdown = async move {
        let _ = stopped.await;
    }
    .boxed()
    .shared();
    let running = tokio::spawn(run_controllers(
        client.clone().into(),
        settings,
        Arc::new(Metrics::default()),
        recorder,
        health.clone(),
        shutdown,
    ));

    for ns in [&a, &b] {
        let deployments = Api::<Deployment>::namespaced(admin.clone(), ns.name());
        eventually(
            "the agent's Deployment",
            Duration::from_secs(60),
            || async { deployments.get_opt("inbox").await.ok() },
            |d| d.is_some(),
        )
        .await;
        let policies = Api::<AuthPolicy>::namespaced(admin.clone(), ns.name());
        eventually(
            "the policy's keys",
            Duration::from_secs(60),
            || async { policies.get("policy").await.ok() },
            |p| p.status.as_ref().is_some_and(|s| !s.keys.is_empty()),
        )
        .await;
    }
    let _ready = eventually(
        "readiness after both namespaces listed",
        Duration::from_secs(30),
        || async { Some(health.readiness()) },
        |r| r.is_ok(),
    )
    .await;

    // The third namespace: nothing rendered, no status written, and not even readable.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let untouched = Api::<Deployment>::namespaced(admin.clone(), other.name()).get_opt("inbox").await.unwrap();
    assert!(untouched.is_none(), "the operator rendered an agent in a namespace it does not watch");
    let policy = Api::<AuthPolicy>::namespaced(admin.clone(), other.name()).get("policy").await.unwrap();
    assert!(policy.status.is_none(), "the operator wrote a status outside its namespaces");
    let forbidden = |r: Result<kube::core::ObjectList<MailAgent>, kube::Error>| matches!(r, Err(kube::Error::Api(s)) if s.code == 403);
    assert!(forbidden(Api::<MailAgent>::namespaced(client.clone(), other.name()).list(&ListParams::default()).await));
    assert!(
        forbidden(Api::<MailAgent>::all(client.clone()).list(&ListParams::default()).await),
        "no cluster-wide list"
    );

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(30), running).await.expect("stops on shutdown").unwrap();
}
