//! The rotation figure of `make bench` on the node: how long from a rotation step (the keyring
//! Secret written by the CronJob's Job) until the running workload pod accepts the staged key, with
//! the old key probed all the while; against the way the runbooks delivered a new key before the
//! operator: a restart of the workload (`kubectl rollout restart`), measured in the same run on the
//! same agent.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use base64::Engine as _;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use mailagent_crds::AuthPolicy;
use mailagent_crds::authpolicy::KeyPurpose;
use mailagent_crds::contract::{KeyState, Keyring, files};
use mailagent_operator::controller::authpolicy::store;
use mailagent_tests::ControlPlane;
use mailagent_tests::product::{kubectl, mutation_status, run};
use serde_json::json;

/// How often the pod is probed: fine enough for a figure of seconds.
const PROBE_EVERY: Duration = Duration::from_millis(50);

pub struct Figures {
    /// Keyring written -> staged key accepted by the running pod.
    pub reload: Duration,
    /// Requests with the previous key that failed meanwhile, of those sent.
    pub reload_failures: (u32, u32),
    /// Restart ordered -> a new pod answers with the key.
    pub restart: Duration,
    /// Requests that got no answer or were refused meanwhile, of those sent.
    pub restart_failures: (u32, u32),
}

async fn pod_base(pods: &Api<Pod>, selector: &str, not: Option<&str>) -> anyhow::Result<Option<(String, String)>> {
    let list = pods.list(&ListParams::default().labels(selector)).await?.items;
    Ok(list.into_iter().find_map(|p| {
        let uid = p.uid()?;
        let ready = p.status.as_ref()?.conditions.as_ref()?.iter().any(|c| c.type_ == "Ready" && c.status == "True");
        let ip = p.status.as_ref()?.pod_ip.clone()?;
        (ready && p.metadata.deletion_timestamp.is_none() && not != Some(uid.as_str()))
            .then(|| (uid, format!("http://{ip}:8080")))
    }))
}

async fn keyring_revision(secrets: &Api<Secret>, policy: &str) -> anyhow::Result<u64> {
    let secret = secrets.get(&mailagent_crds::names::keyring_secret(policy)).await?;
    let bytes = secret.data.and_then(|d| d.get(files::KEYRING).map(|b| b.0.clone())).context("keyring data")?;
    Ok(serde_json::from_slice::<Keyring>(&bytes)?.revision)
}

/// Measures both on `agent` (Ready, its pod answering) under `policy`, whose API key client
/// `client_name` holds `key`.
pub async fn measure(
    plane: &ControlPlane,
    client: &Client,
    ns: &str,
    agent: &str,
    policy: &str,
    client_name: &str,
    key: &str,
) -> anyhow::Result<Figures> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let selector = format!("app.kubernetes.io/instance={agent}");
    let (uid, base) = pod_base(&pods, &selector, None).await?.context("a Ready pod")?;
    anyhow::ensure!(
        mutation_status(&base, key).await == 403,
        "the client key does not authenticate before the rotation"
    );

    // A rotation step by the CronJob's own Job, asked for with the manual-rotation nonce.
    let before = keyring_revision(&secrets, policy).await?;
    let nonce = json!({"metadata": {"annotations": {mailagent_crds::authpolicy::ROTATE_ANNOTATION: format!("bench-{before}")}}});
    Api::<AuthPolicy>::namespaced(client.clone(), ns)
        .patch(policy, &PatchParams::default(), &Patch::Merge(&nonce))
        .await?;
    let job = format!("bench-rotate-{before}");
    let cron_job = mailagent_crds::names::rotation_cronjob(policy);
    run(kubectl(plane).args(["-n", ns, "create", "job", &job, &format!("--from=cronjob/{cron_job}")]))?;
    let deadline = Instant::now() + Duration::from_secs(180);
    while keyring_revision(&secrets, policy).await? == before {
        anyhow::ensure!(Instant::now() < deadline, "the rotation Job wrote no keyring in 180 s");
        tokio::time::sleep(PROBE_EVERY).await;
    }
    let written = Instant::now();
    let state = store::load(client, mailagent_operator::shard::BASE_NAME, ns, policy)
        .await?
        .context("the signer document")?
        .state;
    let staged = state
        .keys
        .iter()
        .find(|k| {
            k.state == KeyState::Staged
                && k.chain.purpose == KeyPurpose::ApiKey
                && k.chain.client.as_deref() == Some(client_name)
        })
        .and_then(|k| k.secret.as_deref())
        .context("a staged key for the client")?;
    let staged = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(staged)?)?;
    let (mut failures, mut sent) = (0, 0);
    loop {
        let (new, old) = tokio::join!(mutation_status(&base, &staged), mutation_status(&base, key));
        sent += 1;
        failures += u32::from(old != 403);
        if new == 403 {
            break;
        }
        anyhow::ensure!(written.elapsed() < Duration::from_secs(180), "the pod did not take the staged key in 180 s");
        tokio::time::sleep(PROBE_EVERY).await;
    }
    let reload = written.elapsed();
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);
    jobs.delete(&job, &kube::api::DeleteParams::background()).await.ok();

    // The baseline: deliver a key by restarting the workload, as the runbooks did.
    let restart_at = json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": format!("bench-{before}")}}}}});
    let t = Instant::now();
    Api::<Deployment>::namespaced(client.clone(), ns)
        .patch(agent, &PatchParams::default(), &Patch::Merge(&restart_at))
        .await?;
    let (mut failures_restart, mut sent_restart) = (0, 0);
    loop {
        // The old pod while it lasts, then the new one once it is Ready.
        let status = match pod_base(&pods, &selector, Some(&uid)).await? {
            Some((_, new_base)) => {
                if mutation_status(&new_base, key).await == 403 {
                    break;
                }
                0
            }
            None => mutation_status(&base, key).await,
        };
        sent_restart += 1;
        failures_restart += u32::from(status != 403);
        anyhow::ensure!(t.elapsed() < Duration::from_secs(300), "no new pod answered in 300 s");
        tokio::time::sleep(PROBE_EVERY).await;
    }
    Ok(Figures {
        reload,
        reload_failures: (failures, sent),
        restart: t.elapsed(),
        restart_failures: (failures_restart, sent_restart),
    })
}
