//! `make bench` on a local node (root only; says why and exits 0 elsewhere). In one run on one node,
//! with the operator installed from the chart as a pod:
//! - time from `apply` of a MailAgent to its workload pod Ready;
//! - time from `apply` of a bare Deployment of the same image and pod spec to its pod Ready (the
//!   baseline: what scheduling, the sandbox, the image and the probes cost without the operator);
//! - resident memory of every node component, the operator pod and a workload pod;
//! - time from a rotation step (the CronJob's Job writing the keyring) to the running pod
//!   accepting the staged key, against a restart of the same workload (`rotation.rs`).
//!
//! Usage: node-bench [ROUNDS]   (default 3)

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use mailagent_crds::MailAgent;
use mailagent_tests::product::{self, kubectl, run};
use mailagent_tests::{ControlPlane, PlaneOptions};
use serde_json::json;

mod rotation;

const NS: &str = "mail";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if let Some(reason) = mailagent_tests::node::unsupported_reason() {
        println!("node bench skipped: this machine cannot run a node: {reason}");
        return Ok(());
    }
    let rounds: usize = std::env::args().nth(1).map(|a| a.parse()).transpose()?.unwrap_or(3);
    let dir = tempfile::Builder::new().prefix("mailagent-node-bench-").tempdir()?;
    let started = Instant::now();
    let plane = ControlPlane::start_in_with(dir.path(), PlaneOptions { controller_manager: true, node: true }).await?;
    let node_ready = started.elapsed();
    let node = plane.node().context("node")?;
    let client = plane.client().await;
    let images = product::import_images(node)?;
    product::seed_volumes(node)?;
    product::install_operator(&plane, None)?;
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../hack/samples");
    run(kubectl(&plane)
        .arg("apply")
        .arg("-f")
        .arg(samples.join("00-namespace.yaml"))
        .arg("-f")
        .arg(samples.join("10-authpolicy.yaml")))?;
    product::client_credentials(&plane, NS, "team-auth", &dir.path().join("keys"))?;

    println!("control plane + node Ready in {:.1}s", node_ready.as_secs_f64());
    println!("{:>5} {:>16} {:>16} {:>7}", "round", "mailagent_s", "deployment_s", "ratio");
    let agents: Api<MailAgent> = Api::namespaced(client.clone(), NS);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let agent_yaml: serde_json::Value =
        serde_yaml::from_str(&std::fs::read_to_string(samples.join("20-mailagent.yaml"))?)?;
    let (mut total_agent, mut total_bare) = (0.0, 0.0);
    for round in 0..rounds {
        let name = format!("bench-{round}");
        let mut agent = agent_yaml.clone();
        agent["metadata"]["name"] = json!(name);
        agent["spec"]["storage"]["onDelete"] = json!("Delete");
        let t = Instant::now();
        agents.patch(&name, &PatchParams::apply("bench").force(), &Patch::Apply(&agent)).await?;
        ready_pod(&pods, &format!("app.kubernetes.io/instance={name}")).await?;
        let agent_s = t.elapsed().as_secs_f64();

        // The same pod spec the operator rendered, as a plain Deployment (state on an emptyDir).
        let rendered = deployments.get(&name).await?;
        let mut template = serde_json::to_value(rendered.spec.context("spec")?.template)?;
        let bare = format!("bare-{round}");
        template["metadata"]["labels"] = json!({"app": bare});
        for volume in template["spec"]["volumes"].as_array_mut().context("volumes")? {
            if volume.get("persistentVolumeClaim").is_some() {
                *volume = json!({"name": volume["name"], "emptyDir": {}});
            }
        }
        let deployment: Deployment = serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": bare},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": bare}}, "template": template}
        }))?;
        let t = Instant::now();
        deployments.create(&PostParams::default(), &deployment).await?;
        ready_pod(&pods, &format!("app={bare}")).await?;
        let bare_s = t.elapsed().as_secs_f64();
        println!("{round:>5} {agent_s:>16.2} {bare_s:>16.2} {:>7.2}", agent_s / bare_s);
        total_agent += agent_s;
        total_bare += bare_s;
        if round + 1 == rounds {
            memory_report(&plane, &client, &pods, &name).await?;
        }
        deployments.delete(&bare, &DeleteParams::default()).await?;
        agents.delete(&name, &DeleteParams::default()).await?;
        gone(&pods, &format!("app.kubernetes.io/instance={name}")).await?;
        gone(&pods, &format!("app={bare}")).await?;
    }
    println!(
        "mean: MailAgent apply -> pod Ready {:.2}s, bare Deployment {:.2}s, ratio {:.2} (image {})",
        total_agent / rounds as f64,
        total_bare / rounds as f64,
        total_agent / total_bare,
        images.workload
    );

    // Rotation on a live agent. Its rate limit is raised so that probing every 50 ms measures
    // the reload, not the limiter.
    let name = "bench-rotation";
    let mut agent = agent_yaml.clone();
    agent["metadata"]["name"] = json!(name);
    agent["spec"]["storage"]["onDelete"] = json!("Delete");
    agent["spec"]["rateLimit"] = json!({"perMinute": 100000, "burst": 1000});
    agents.patch(name, &PatchParams::apply("bench").force(), &Patch::Apply(&agent)).await?;
    ready_pod(&pods, &format!("app.kubernetes.io/instance={name}")).await?;
    let key = std::fs::read_to_string(dir.path().join("keys").join(ROTATION_CLIENT))?;
    let figures = rotation::measure(&plane, &client, NS, name, "team-auth", ROTATION_CLIENT, &key).await?;
    println!(
        "rotation: keyring written -> running pod accepts the staged key {:.2}s ({}/{} requests with the previous key failed meanwhile); \
         restart of the same workload -> new pod answers {:.2}s ({}/{} requests failed meanwhile); ratio {:.2}",
        figures.reload.as_secs_f64(),
        figures.reload_failures.0,
        figures.reload_failures.1,
        figures.restart.as_secs_f64(),
        figures.restart_failures.0,
        figures.restart_failures.1,
        figures.reload.as_secs_f64() / figures.restart.as_secs_f64(),
    );
    agents.delete(name, &DeleteParams::default()).await?;
    gone(&pods, &format!("app.kubernetes.io/instance={name}")).await?;
    Ok(())
}

/// The sample policy's API key client whose key the rotation figure probes with.
const ROTATION_CLIENT: &str = "mail-admin";

async fn ready_pod(pods: &Api<Pod>, selector: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let list = pods.list(&ListParams::default().labels(selector)).await?.items;
        let ready = list.iter().any(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        });
        if ready {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "no Ready pod for {selector}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn gone(pods: &Api<Pod>, selector: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !pods.list(&ListParams::default().labels(selector)).await?.items.is_empty() {
        anyhow::ensure!(Instant::now() < deadline, "pods for {selector} remain");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

fn rss_mib(pid: u32) -> Option<f64> {
    Some(mailagent_tests::proc::rss_bytes(pid).ok()? as f64 / (1024.0 * 1024.0))
}

/// Resident memory of the node's components and of the operator and workload containers.
async fn memory_report(plane: &ControlPlane, client: &Client, pods: &Api<Pod>, agent: &str) -> anyhow::Result<()> {
    let node = plane.node().context("node")?;
    let mut line = String::from("resident memory (MiB):");
    for (name, pid) in plane.pids().into_iter().chain(node.pids()) {
        if let Some(mib) = rss_mib(pid) {
            line.push_str(&format!(" {name} {mib:.0},"));
        }
    }
    let operator_pods: Api<Pod> = Api::namespaced(client.clone(), product::OPERATOR_NAMESPACE);
    let named = [
        ("operator", operator_pods.list(&ListParams::default()).await?.items),
        (
            "workload",
            pods.list(&ListParams::default().labels(&format!("app.kubernetes.io/instance={agent}"))).await?.items,
        ),
    ];
    for (label, list) in named {
        for pod in list {
            if let Some(pid) = pod_pid(node, &pod)
                && let Some(mib) = rss_mib(pid)
            {
                line.push_str(&format!(" {label} pod {} {mib:.1},", pod.name_any()));
            }
        }
    }
    println!("{}", line.trim_end_matches(','));
    Ok(())
}

fn pod_pid(node: &mailagent_tests::Node, pod: &Pod) -> Option<u32> {
    let id = pod.status.as_ref()?.container_statuses.as_ref()?.first()?.container_id.as_deref()?;
    let id = id.strip_prefix("containerd://")?;
    let out = std::process::Command::new(node.ctr())
        .arg("--address")
        .arg(node.containerd_socket())
        .args(["-n", "k8s.io", "tasks", "ls"])
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    text.lines().find(|l| l.starts_with(id))?.split_whitespace().nth(1)?.parse().ok()
}
