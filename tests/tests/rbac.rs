//! The operator runs with the chart's ClusterRole and nothing more: writes outside it fail.

mod support;

use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use mailagent_crds::MailAgent;
use mailagent_tests::TestNamespace;
use serde_json::json;

fn forbidden<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> bool {
    matches!(result, Err(kube::Error::Api(status)) if status.code == 403)
}

async fn setup() -> (Client, Client, TestNamespace) {
    let admin = support::admin().await;
    let ns = TestNamespace::create(&admin).await;
    (admin, support::operator_client().await, ns)
}

#[tokio::test]
async fn the_operator_cannot_read_or_write_secret_values() {
    let (_, operator, ns) = setup().await;
    let secrets = Api::<Secret>::namespaced(operator, ns.name());
    assert!(forbidden(secrets.list(&ListParams::default()).await), "listing Secrets must be forbidden");
    let secret = Secret {
        metadata: kube::api::ObjectMeta { name: Some("x".into()), ..Default::default() },
        ..Default::default()
    };
    assert!(forbidden(secrets.create(&PostParams::default(), &secret).await), "creating Secrets must be forbidden");
}

#[tokio::test]
async fn the_operator_cannot_delete_state_volumes_or_config() {
    let (admin, operator, ns) = setup().await;
    let cm = ConfigMap {
        metadata: kube::api::ObjectMeta { name: Some("c".into()), ..Default::default() },
        ..Default::default()
    };
    Api::<ConfigMap>::namespaced(admin, ns.name()).create(&PostParams::default(), &cm).await.unwrap();
    let result = Api::<ConfigMap>::namespaced(operator.clone(), ns.name()).delete("c", &DeleteParams::default()).await;
    assert!(forbidden(result), "deleting ConfigMaps must be forbidden");
    let result = Api::<PersistentVolumeClaim>::namespaced(operator, ns.name())
        .delete("inbox-state", &DeleteParams::default())
        .await;
    assert!(forbidden(result), "deleting PVCs must be forbidden: retained state is never the operator's to delete");
}

#[tokio::test]
async fn the_operator_writes_status_not_spec() {
    let (admin, operator, ns) = setup().await;
    let agent = json!({"apiVersion": "mailagent.dev/v1alpha1", "kind": "MailAgent", "metadata": {"name": "inbox"},
        "spec": {"image": "i", "authPolicyRef": {"name": "p"}, "mailbox": {"provider": "maildir"}}});
    Api::<MailAgent>::namespaced(admin, ns.name())
        .patch("inbox", &PatchParams::apply("a-user"), &Patch::Apply(&agent))
        .await
        .unwrap();
    let api = Api::<MailAgent>::namespaced(operator, ns.name());
    let spec_change = json!({"spec": {"suspend": true}});
    assert!(
        forbidden(api.patch("inbox", &PatchParams::default(), &Patch::Merge(&spec_change)).await),
        "the operator must not edit user intent"
    );
    let status = json!({"status": {"readyReplicas": 0}});
    api.patch_status("inbox", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .expect("status is the operator's to write");
}

#[test]
fn the_chart_grants_no_wildcards_and_no_secret_writes() {
    for rule in support::chart_rules() {
        let all = [rule.api_groups.clone(), rule.resources.clone(), Some(rule.verbs.clone())];
        assert!(all.iter().flatten().flatten().all(|s| s != "*"), "wildcard in {rule:?}");
        if rule.resources.iter().flatten().any(|r| r == "secrets") {
            assert_eq!(rule.verbs, ["get"], "Secrets: get only");
        }
    }
}
