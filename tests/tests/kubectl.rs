//! kubectl, as a person types it, against the real API server with the CRDs installed: the
//! README's and `make run`'s `kubectl get mailagent NAME` works (issue 8, defect 2: the category
//! used to be `mailagent`, kubectl expanded it to both kinds and refused a name).
//!
//! Needs `kubectl` on PATH (or `KUBECTL`); discovery is cached in a temporary directory so a
//! cache from another cluster cannot answer for this one.

mod support;

use kube::Client;
use kube::api::{Api, Patch, PatchParams};
use mailagent_crds::{AuthPolicy, MailAgent};
use mailagent_tests::TestNamespace;
use serde_json::json;

async fn kubectl(cache: &std::path::Path, args: &[&str]) -> Result<String, String> {
    let program = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".to_owned());
    let kubeconfig = mailagent_tests::shared().kubeconfig_path();
    let output = tokio::process::Command::new(&program)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--cache-dir")
        .arg(cache)
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    if output.status.success() { Ok(stdout) } else { Err(format!("kubectl {}: {stderr}", args.join(" "))) }
}

async fn apply_samples(admin: &Client, ns: &str) {
    let params = PatchParams::apply("kubectl-test").force();
    let policy = json!({"apiVersion": "mailagent.dev/v1alpha1", "kind": "AuthPolicy", "metadata": {"name": "team-auth"},
        "spec": {"mode": "api_key", "apiKeys": [{"name": "bot", "scopes": ["unsubscribe:read"]}]}});
    Api::<AuthPolicy>::namespaced(admin.clone(), ns).patch("team-auth", &params, &Patch::Apply(&policy)).await.unwrap();
    let agent = json!({"apiVersion": "mailagent.dev/v1alpha1", "kind": "MailAgent", "metadata": {"name": "inbox"},
        "spec": {"image": "registry.example/mailagent:0.1.0", "authPolicyRef": {"name": "team-auth"},
                 "mailbox": {"provider": "maildir"}}});
    Api::<MailAgent>::namespaced(admin.clone(), ns).patch("inbox", &params, &Patch::Apply(&agent)).await.unwrap();
}

#[tokio::test]
async fn kubectl_get_by_kind_name_short_name_and_category() {
    let admin = support::admin().await;
    let ns = TestNamespace::create(&admin).await;
    apply_samples(&admin, ns.name()).await;
    let cache = tempfile::tempdir().unwrap();
    let n = ns.name();

    // The README's and `make run`'s line, as printed there.
    let name = kubectl(cache.path(), &["-n", n, "get", "mailagent", "inbox", "-o", "jsonpath={.metadata.name}"]).await;
    assert_eq!(name.unwrap(), "inbox");
    for (resource, object, expected) in [
        ("mailagent", "inbox", "mailagent.mailagent.dev/inbox"),
        ("mailagents", "inbox", "mailagent.mailagent.dev/inbox"),
        ("ma", "inbox", "mailagent.mailagent.dev/inbox"),
        ("authpolicy", "team-auth", "authpolicy.mailagent.dev/team-auth"),
        ("ap", "team-auth", "authpolicy.mailagent.dev/team-auth"),
    ] {
        let got = kubectl(cache.path(), &["-n", n, "get", resource, object, "-o", "name"]).await;
        assert_eq!(got.unwrap(), expected, "kubectl get {resource} {object}");
    }

    // The category lists both kinds.
    let all = kubectl(cache.path(), &["-n", n, "get", "mail", "-o", "name"]).await.unwrap();
    let mut lines: Vec<&str> = all.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["authpolicy.mailagent.dev/team-auth", "mailagent.mailagent.dev/inbox"]);
    ns.delete().await.ok();
}
