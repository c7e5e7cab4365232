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

/// The operator writes the Secrets it generates for AuthPolicies (create, then apply by name), so
/// it may create Secrets; it still may not list, watch or delete them, i.e. read no Secret it does
/// not name. (Changed on purpose with issue 9: before it, Secrets were `get` only.)
#[tokio::test]
async fn the_operator_cannot_list_watch_or_delete_secrets() {
    let (admin, operator, ns) = setup().await;
    let secrets = Api::<Secret>::namespaced(operator, ns.name());
    assert!(forbidden(secrets.list(&ListParams::default()).await), "listing Secrets must be forbidden");
    let watch = secrets.watch(&kube::api::WatchParams::default(), "0").await;
    assert!(forbidden(watch.map(|_| ())), "watching Secrets must be forbidden");
    let secret = Secret {
        metadata: kube::api::ObjectMeta { name: Some("x".into()), ..Default::default() },
        ..Default::default()
    };
    Api::<Secret>::namespaced(admin, ns.name()).create(&PostParams::default(), &secret).await.unwrap();
    assert!(forbidden(secrets.delete("x", &DeleteParams::default()).await), "deleting Secrets must be forbidden");
}

/// The operator holds no `escalate`/`bind`: a Role granting more than it holds is refused, which
/// is what keeps each rotation executor's Role within the operator's own rights.
#[tokio::test]
async fn the_operator_cannot_grant_what_it_does_not_hold() {
    use k8s_openapi::api::rbac::v1::{PolicyRule, Role};
    let (_, operator, ns) = setup().await;
    let role = Role {
        metadata: kube::api::ObjectMeta { name: Some("wider".into()), ..Default::default() },
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec!["".into()]),
            resources: Some(vec!["secrets".into()]),
            verbs: vec!["list".into()],
            ..Default::default()
        }]),
    };
    let result = Api::<Role>::namespaced(operator, ns.name()).create(&PostParams::default(), &role).await;
    assert!(forbidden(result), "a Role with a verb the operator lacks must be refused");
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
fn the_chart_grants_no_wildcards_no_secret_reads_in_bulk_and_no_escalation() {
    for rule in support::chart_rules() {
        let all = [rule.api_groups.clone(), rule.resources.clone(), Some(rule.verbs.clone())];
        assert!(all.iter().flatten().flatten().all(|s| s != "*"), "wildcard in {rule:?}");
        if rule.resources.iter().flatten().any(|r| r == "secrets") {
            assert_eq!(rule.verbs, ["get", "create", "patch"], "Secrets: by name only, never list/watch/delete");
        }
        assert!(
            !rule.verbs.iter().any(|v| v == "escalate" || v == "bind" || v == "impersonate"),
            "no escalate/bind/impersonate: {rule:?}"
        );
    }
}
