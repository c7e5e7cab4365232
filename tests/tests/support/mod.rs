//! Operator-specific test support on top of the control-plane harness: install the CRDs and the
//! chart's RBAC once, run the controller in-process as the operator's ServiceAccount, wait for
//! conditions with deadlines.

#![allow(dead_code)] // Each test binary uses a different subset.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Recorder, Reporter};
use kube::{Api, Client, Resource};
use mailagent_operator::controller::{authpolicy, mailagent};
use mailagent_operator::health::Health;
use mailagent_operator::metrics::Metrics;
use mailagent_operator::shard::Shard;
use serde::de::DeserializeOwned;
use tokio::sync::OnceCell;

/// A namespaced kind the tests can create, apply and read back.
pub trait Namespaced:
    kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + serde::Serialize
    + std::fmt::Debug
{
}

impl<K> Namespaced for K where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug
{
}

/// The operator's ServiceAccount, as the chart installs it.
pub const OPERATOR_SA_NAMESPACE: &str = "mailagent-system";
pub const OPERATOR_SA: &str = "mailagent-operator";
/// User agent of the in-process controller's client, so audit events can be told apart.
pub const OPERATOR_USER: &str = "system:serviceaccount:mailagent-system:mailagent-operator";

/// An admin client for the shared control plane, with CRDs and operator RBAC installed once.
pub async fn admin() -> Client {
    let client = mailagent_tests::shared().client().await;
    static SETUP: OnceCell<()> = OnceCell::const_new();
    SETUP.get_or_init(|| async { prepare(&client).await }).await;
    client
}

/// Installs the CRDs and the chart's RBAC on the plane `admin` talks to.
pub async fn prepare(admin: &Client) {
    mailagent_tests::install_crds(admin, mailagent_crds::crds()).await.expect("CRDs install");
    install_operator_rbac(admin).await;
}

/// A client that acts as the operator's ServiceAccount: every call is authorised by the chart's
/// ClusterRole, so a permission the chart forgot fails the test.
pub async fn operator_client() -> Client {
    admin().await;
    operator_client_on(mailagent_tests::shared()).await
}

/// Like [`operator_client`], on a plane of the test's own (prepared with [`prepare`]).
pub async fn operator_client_on(plane: &mailagent_tests::ControlPlane) -> Client {
    plane
        .impersonating(
            OPERATOR_USER,
            &[
                "system:serviceaccounts",
                &format!("system:serviceaccounts:{OPERATOR_SA_NAMESPACE}"),
                "system:authenticated",
            ],
        )
        .await
}

/// The chart's ClusterRole rules, loaded from the same file the Helm template includes.
pub fn chart_rules() -> Vec<PolicyRule> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../charts/mailagent-operator/files/clusterrole-rules.yaml");
    serde_yaml::from_str(&std::fs::read_to_string(path).expect("rules file")).expect("rules parse")
}

async fn install_operator_rbac(client: &Client) {
    let role = ClusterRole {
        metadata: ObjectMeta { name: Some("mailagent-operator".into()), ..ObjectMeta::default() },
        rules: Some(chart_rules()),
        ..ClusterRole::default()
    };
    let binding = ClusterRoleBinding {
        metadata: ObjectMeta { name: Some("mailagent-operator".into()), ..ObjectMeta::default() },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "ClusterRole".into(),
            name: "mailagent-operator".into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: OPERATOR_SA.into(),
            namespace: Some(OPERATOR_SA_NAMESPACE.into()),
            ..Subject::default()
        }]),
    };
    let pp = PatchParams::apply("mailagent-tests").force();
    Api::<ClusterRole>::all(client.clone()).patch("mailagent-operator", &pp, &Patch::Apply(&role)).await.expect("role");
    Api::<ClusterRoleBinding>::all(client.clone())
        .patch("mailagent-operator", &pp, &Patch::Apply(&binding))
        .await
        .expect("binding");
}

/// A controller running in the background, scoped to one namespace.
pub struct RunningController {
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    /// The AuthPolicy controller beside it (as in the operator), counted in its own metrics so
    /// the MailAgent controller's write counts stay its own.
    policies: Option<RunningPolicies>,
}

impl RunningController {
    /// Starts the MailAgent controller as the operator would, limited to `namespace`, with the
    /// AuthPolicy controller beside it.
    pub async fn start(namespace: &str) -> Self {
        // Policies first, and published, so the agents' first status does not race the keys.
        let client = operator_client().await;
        let policies = RunningPolicies::start_with(client.clone(), namespace, Arc::new(authpolicy::SystemClock));
        let existing = Api::<mailagent_crds::AuthPolicy>::namespaced(admin().await, namespace);
        for policy in existing.list(&Default::default()).await.expect("listing policies") {
            let name = policy.metadata.name.clone().unwrap_or_default();
            wait_for(&existing, &name, |p| {
                p.status.as_ref().is_some_and(|s| {
                    mailagent_crds::conditions::find(&s.conditions, mailagent_crds::conditions::READY)
                        .is_some_and(|c| c.status == "True")
                })
            })
            .await;
        }
        Self::launch(client, namespace, mailagent::DEFAULT_CONCURRENCY, policies)
    }

    /// Starts both controllers with `client` (the operator's identity on some plane) and a
    /// concurrency of its own.
    pub fn start_with(client: Client, namespace: &str, concurrency: u16) -> Self {
        let policies = RunningPolicies::start_with(client.clone(), namespace, Arc::new(authpolicy::SystemClock));
        Self::launch(client, namespace, concurrency, policies)
    }

    /// Starts both controllers as one shard of several (as the operator's ServiceAccount).
    #[allow(dead_code)]
    pub async fn start_shard(namespace: &str, shard: Shard) -> Self {
        let client = operator_client().await;
        let policies =
            RunningPolicies::start_shard(client.clone(), namespace, Arc::new(authpolicy::SystemClock), shard);
        Self::launch_shard(client, namespace, mailagent::DEFAULT_CONCURRENCY, policies, shard)
    }

    fn launch(client: Client, namespace: &str, concurrency: u16, policies: RunningPolicies) -> Self {
        Self::launch_shard(client, namespace, concurrency, policies, Shard::default())
    }

    fn launch_shard(
        client: Client,
        namespace: &str,
        concurrency: u16,
        policies: RunningPolicies,
        shard: Shard,
    ) -> Self {
        let metrics = Arc::new(Metrics::default());
        let health = Arc::new(Health::default());
        health.set_leading();
        let recorder =
            Recorder::new(client.clone(), Reporter { controller: "mailagent-operator".into(), instance: None });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let scope = mailagent::Scope {
            namespace: Some(namespace.to_owned()),
            concurrency,
            shard,
            ..mailagent::Scope::default()
        };
        let run = mailagent::run(client, scope, metrics.clone(), recorder, health.clone(), async move {
            let _ = stopped.await;
        });
        Self { metrics, health, stop: Some(stop), task: tokio::spawn(run), policies: Some(policies) }
    }

    /// Stops the controller gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(20), &mut self.task).await;
        if let Some(policies) = self.policies.take() {
            policies.stop().await;
        }
    }
}

/// The AuthPolicy controller running in the background on a given clock.
pub struct RunningPolicies {
    pub metrics: Arc<Metrics>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

/// The image the tests' rotation CronJobs name (no node runs them here).
pub const ROTATOR_IMAGE: &str = "registry.example/mailagent-operator:test";

impl RunningPolicies {
    /// Starts the AuthPolicy controller as the operator's ServiceAccount, limited to `namespace`.
    pub async fn start(namespace: &str, clock: Arc<dyn authpolicy::Clock>) -> Self {
        Self::start_with(operator_client().await, namespace, clock)
    }

    /// Starts it with `client` (the operator's identity on some plane).
    pub fn start_with(client: Client, namespace: &str, clock: Arc<dyn authpolicy::Clock>) -> Self {
        Self::start_shard(client, namespace, clock, Shard::default())
    }

    /// Starts it as one shard of several.
    pub fn start_shard(client: Client, namespace: &str, clock: Arc<dyn authpolicy::Clock>, shard: Shard) -> Self {
        let metrics = Arc::new(Metrics::default());
        let recorder =
            Recorder::new(client.clone(), Reporter { controller: "mailagent-operator".into(), instance: None });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let settings = authpolicy::Settings {
            namespace: Some(namespace.to_owned()),
            rotator_image: ROTATOR_IMAGE.into(),
            clock,
            shard,
        };
        let run = authpolicy::run(client, settings, metrics.clone(), recorder, async move {
            let _ = stopped.await;
        });
        Self { metrics, stop: Some(stop), task: tokio::spawn(run) }
    }

    /// Stops it gracefully and waits.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(20), &mut self.task).await;
    }
}

impl Drop for RunningPolicies {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A client acting as a policy's rotation executor (its CronJob's ServiceAccount).
pub async fn rotator_client(namespace: &str, policy: &str) -> Client {
    admin().await;
    let user = format!("system:serviceaccount:{namespace}:{}", mailagent_crds::authpolicy::rotator_name(policy));
    mailagent_tests::shared()
        .impersonating(
            &user,
            &["system:serviceaccounts", &format!("system:serviceaccounts:{namespace}"), "system:authenticated"],
        )
        .await
}

impl Drop for RunningController {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Polls `get` until `check` holds, failing with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut get: F, check: impl Fn(&T) -> bool) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = get().await
            && check(&value)
        {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}; operator writes by namespace: {:#?}",
            all_operator_writes()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits for a namespaced object to exist and satisfy `check`.
pub async fn wait_for<K>(api: &Api<K>, name: &str, check: impl Fn(&K) -> bool) -> K
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    eventually(
        &format!("{} {name}", std::any::type_name::<K>()),
        Duration::from_secs(60),
        || async { api.get_opt(name).await.ok().flatten() },
        check,
    )
    .await
}

/// Waits until an object is gone.
pub async fn wait_gone<K>(api: &Api<K>, name: &str)
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    eventually(
        &format!("{} {name} to go", std::any::type_name::<K>()),
        Duration::from_secs(60),
        || async { Some(api.get_opt(name).await.ok().flatten().is_none()) },
        |gone| *gone,
    )
    .await;
}

/// The operator's writes in `namespace` according to the API server's audit log, one line each,
/// for assertion messages.
pub fn operator_writes(namespace: &str) -> Vec<String> {
    let Some(audit) = mailagent_tests::shared().audit() else { return vec![] };
    audit
        .writes_by(OPERATOR_USER, namespace)
        .into_iter()
        .map(|e| {
            let sub = e.subresource.map(|s| format!("/{s}")).unwrap_or_default();
            format!("{} {}{} {} -> {}", e.verb, e.resource, sub, e.name.unwrap_or_default(), e.code.unwrap_or_default())
        })
        .collect()
}

fn all_operator_writes() -> Vec<String> {
    let Some(audit) = mailagent_tests::shared().audit() else { return vec![] };
    audit
        .writes()
        .into_iter()
        .filter(|e| e.username == OPERATOR_USER)
        .map(|e| format!("{:?} {} {} {:?} -> {:?}", e.namespace, e.verb, e.resource, e.name, e.code))
        .collect()
}
