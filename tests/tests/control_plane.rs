//! Smoke test of the harness itself: the plane is the version we built, RBAC and the admin
//! certificate work, the audit counter sees writes, and a dropped plane leaves nothing running.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use mailagent_tests::{ControlPlane, TestNamespace, WriteFilter, await_condition, shared};

const ADMIN: &str = "mailagent-test-admin";

fn config_map(name: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta { name: Some(name.to_owned()), ..ObjectMeta::default() },
        data: Some([("greeting".to_owned(), "hello".to_owned())].into()),
        ..ConfigMap::default()
    }
}

async fn service_account_client(namespace: &str, name: &str) -> Client {
    let user = format!("system:serviceaccount:{namespace}:{name}");
    let namespace_group = format!("system:serviceaccounts:{namespace}");
    shared().impersonating(&user, &["system:serviceaccounts", &namespace_group, "system:authenticated"]).await
}

#[tokio::test]
async fn reports_the_kubernetes_version_it_was_built_as() {
    let plane = shared();
    if !plane.is_local() {
        return; // An external cluster runs whatever version it runs.
    }
    let version = plane.client().await.apiserver_version().await.expect("GET /version");
    assert_eq!(version.git_version, "v1.36.3", "the build injects the version with -ldflags -X");
    assert_eq!((version.major.as_str(), version.minor.as_str()), ("1", "36"));
}

#[tokio::test]
async fn admin_writes_are_allowed_and_counted_by_the_audit_log() {
    let admin = shared().client().await;
    let ns = TestNamespace::create(&admin).await;
    let mark = shared().audit().map(|log| log.mark());

    let api = Api::<ConfigMap>::namespaced(admin.clone(), ns.name());
    api.create(&PostParams::default(), &config_map("settings")).await.expect("the admin may create a ConfigMap");
    let seen = await_condition(&api, "settings", |cm: Option<&ConfigMap>| cm.is_some(), Duration::from_secs(10))
        .await
        .expect("the ConfigMap is readable");
    assert_eq!(seen.and_then(|cm| cm.data).and_then(|d| d.get("greeting").cloned()).as_deref(), Some("hello"));

    let (Some(log), Some(mark)) = (shared().audit(), mark) else { return }; // External cluster: no audit file.
    let filter = WriteFilter {
        since: mark,
        username: Some(ADMIN.to_owned()),
        namespace: Some(ns.name().to_owned()),
        ..WriteFilter::default()
    };
    let writes = log.writes_matching(&filter);
    let summary: Vec<_> =
        writes.iter().map(|w| (w.verb.as_str(), w.resource.as_str(), w.name.as_deref(), w.code)).collect();
    assert_eq!(summary, [("create", "configmaps", Some("settings"), Some(201))], "exactly one write, no reads");
}

#[tokio::test]
async fn a_service_account_without_a_role_is_forbidden_and_the_attempt_is_audited() {
    let admin = shared().client().await;
    let ns = TestNamespace::create(&admin).await;
    let mark = shared().audit().map(|log| log.mark());

    let intruder = service_account_client(ns.name(), "intruder").await;
    let denied = Api::<ConfigMap>::namespaced(intruder.clone(), ns.name())
        .create(&PostParams::default(), &config_map("nope"))
        .await
        .expect_err("RBAC grants a bare ServiceAccount no writes");
    assert!(matches!(&denied, kube::Error::Api(status) if status.code == 403), "not a 403: {denied:?}");
    let listed = Api::<Namespace>::all(intruder).list(&Default::default()).await;
    assert!(matches!(&listed, Err(kube::Error::Api(status)) if status.code == 403), "listing namespaces: {listed:?}");

    let (Some(log), Some(mark)) = (shared().audit(), mark) else { return };
    let attempts = log.writes_matching(&WriteFilter {
        since: mark,
        username: Some(format!("system:serviceaccount:{}:intruder", ns.name())),
        ..WriteFilter::default()
    });
    let codes: Vec<_> = attempts.iter().map(|w| (w.verb.as_str(), w.code)).collect();
    assert_eq!(codes, [("create", Some(403))], "a denied write is an audited attempt, not a change");
}

#[tokio::test]
async fn dropping_a_plane_stops_its_servers_and_removes_its_files() {
    if std::env::var("MAILAGENT_TEST_USE_KUBECONFIG").as_deref() == Ok("1") {
        return; // Nothing is started against an external cluster.
    }
    let started = Instant::now();
    let plane = ControlPlane::start().await.expect("a second, private plane starts");
    eprintln!("control plane ready in {:.1?}", started.elapsed());
    let client = plane.client().await;
    client.apiserver_version().await.expect("it serves");
    let dir = plane.kubeconfig_path().parent().expect("the plane's directory").to_owned();

    drop(plane);
    assert!(!dir.exists(), "{} is left behind", dir.display());
    assert!(client.apiserver_version().await.is_err(), "the API server still answers after drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_test_namespace_is_deleted() {
    let admin = shared().client().await;
    let ns = TestNamespace::create(&admin).await;
    let name = ns.name().to_owned();
    drop(ns);
    let live = Api::<Namespace>::all(admin).get_opt(&name).await.expect("reading the namespace");
    // Without a controller-manager a deleted namespace stays Terminating instead of going away.
    assert!(live.is_none_or(|ns| ns.metadata.deletion_timestamp.is_some()), "{name} was not deleted on drop");
}
