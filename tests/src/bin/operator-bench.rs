//! `make bench` for the operator. In one run against one local control plane it measures:
//! - API writes per new MailAgent, against its number of children (goal: children + 1 status);
//! - wall time for the operator (the real release binary, as a process) to converge N agents,
//!   against a plain loop that server-side-applies the same objects directly (goal: <= 1.5x);
//! - the operator's resident memory with N agents (goal: < 64 MiB at 1,000);
//! - the same N agents split over two shards (two processes, `SHARD_COUNT=2`): each shard's
//!   resident memory, the writes per agent and the converge time, for `docs/scale.md`.
//!
//! Usage: operator-bench [N ...]   (default: 1000 3000)

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::{StreamExt, TryStreamExt};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use mailagent_crds::{AuthPolicy, MailAgent};
use mailagent_operator::controller::mailagent::build::{Inputs, build, validate};
use serde_json::json;

const MANAGER: &str = "mailagent-bench";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let sizes: Vec<usize> = std::env::args().skip(1).map(|a| a.parse()).collect::<Result<_, _>>()?;
    let sizes = if sizes.is_empty() { vec![1000, 3000] } else { sizes };
    let operator_bin = operator_binary()?;
    let plane = mailagent_tests::ControlPlane::start().await.context("starting the control plane")?;
    let admin = plane.client().await;
    mailagent_tests::install_crds(&admin, mailagent_crds::crds()).await?;

    println!(
        "{:>6} {:>7} {:>12} {:>12} {:>7} {:>14} {:>12} {:>22}",
        "agents", "shards", "baseline_s", "operator_s", "ratio", "writes/agent", "children", "rss_mib"
    );
    // One process, then two shards, right after its own baseline: each run meets an API server
    // holding what the runs before it created, so rows of one size compare, rows of two sizes less.
    for n in &sizes {
        let n = *n;
        let baseline = baseline_loop(&admin, n).await?;
        for shards in [1, 2] {
            let run = operator_run(&admin, plane.kubeconfig_path(), &operator_bin, n, shards).await?;
            let rss: Vec<String> = run.rss_kib.iter().map(|k| format!("{:.1}", *k as f64 / 1024.0)).collect();
            println!(
                "{n:>6} {shards:>7} {:>12.2} {:>12.2} {:>7.2} {:>14.2} {:>12} {:>22}",
                baseline.as_secs_f64(),
                run.converge.as_secs_f64(),
                run.converge.as_secs_f64() / baseline.as_secs_f64(),
                run.writes as f64 / n as f64,
                CHILDREN,
                rss.join(" + "),
            );
        }
    }
    println!("goals: ratio <= 1.5; writes/agent == children + 1 ({}); rss < 64 MiB at 1000 agents", CHILDREN + 1);
    println!("       two shards: the same writes/agent, each shard below one process's rss");
    Ok(())
}

/// ServiceAccount, ConfigMap, Deployment, three Services, PVC, NetworkPolicy.
const CHILDREN: usize = 8;

fn operator_binary() -> anyhow::Result<PathBuf> {
    if let Ok(path) = std::env::var("MAILAGENT_OPERATOR_BIN") {
        return Ok(path.into());
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|_| root.join("target"));
    let path = target.join("release/mailagent-operator");
    if !path.exists() {
        bail!("{} not found: run `cargo build --release -p mailagent-operator` (make bench does)", path.display());
    }
    Ok(path)
}

async fn namespace_with_agents(admin: &Client, ns: &str, n: usize) -> anyhow::Result<Vec<MailAgent>> {
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
    Api::<k8s_openapi::api::core::v1::Namespace>::all(admin.clone())
        .patch(ns, &PatchParams::apply(MANAGER), &Patch::Apply(&namespace))
        .await?;
    let policy: AuthPolicy = serde_json::from_value(
        json!({"apiVersion": "mailagent.dev/v1alpha1", "kind": "AuthPolicy",
        "metadata": {"name": "policy"}, "spec": {"mode": "api_key", "apiKeys": [{"name": "ci", "scopes": ["mail:scan"]}]}}),
    )?;
    Api::<AuthPolicy>::namespaced(admin.clone(), ns).create(&PostParams::default(), &policy).await?;
    let agents = Api::<MailAgent>::namespaced(admin.clone(), ns);
    futures::stream::iter(0..n)
        .map(|i| {
            let agents = agents.clone();
            async move {
                let agent: MailAgent = serde_json::from_value(json!({"apiVersion": "mailagent.dev/v1alpha1", "kind": "MailAgent",
                    "metadata": {"name": format!("agent-{i:04}")},
                    "spec": {"image": "registry.example/mailagent:0.1.0", "authPolicyRef": {"name": "policy"}, "mailbox": {"provider": "maildir"}}}))?;
                agents.create(&PostParams::default(), &agent).await.map_err(anyhow::Error::from)
            }
        })
        .buffer_unordered(16)
        .try_collect()
        .await
}

/// The baseline: the same objects, server-side-applied in a plain sequential loop, plus one
/// status write per agent. No caches, no comparison, no watches.
async fn baseline_loop(admin: &Client, n: usize) -> anyhow::Result<Duration> {
    let ns = format!("bench-baseline-{n}");
    let agents = namespace_with_agents(admin, &ns, n).await?;
    let policy = Api::<AuthPolicy>::namespaced(admin.clone(), &ns).get("policy").await?;
    let pp = PatchParams::apply(MANAGER).force();
    let started = Instant::now();
    for agent in &agents {
        let valid = validate(Inputs { agent, policy: Some(&policy.spec) }).map_err(|p| anyhow::anyhow!("{p}"))?;
        let children = build(&valid);
        macro_rules! apply {
            ($ty:ty, $obj:expr) => {
                Api::<$ty>::namespaced(admin.clone(), &ns).patch(&$obj.name_any(), &pp, &Patch::Apply(&$obj)).await?;
            };
        }
        apply!(k8s_openapi::api::core::v1::ServiceAccount, children.service_account);
        apply!(k8s_openapi::api::core::v1::ConfigMap, children.config_map);
        apply!(k8s_openapi::api::core::v1::PersistentVolumeClaim, children.pvc);
        for service in &children.services {
            apply!(k8s_openapi::api::core::v1::Service, service);
        }
        apply!(k8s_openapi::api::networking::v1::NetworkPolicy, children.network_policy);
        apply!(k8s_openapi::api::apps::v1::Deployment, children.deployment);
        let status = json!({"apiVersion": "mailagent.dev/v1alpha1", "kind": "MailAgent", "status": {"observedGeneration": agent.metadata.generation}});
        Api::<MailAgent>::namespaced(admin.clone(), &ns)
            .patch_status(&agent.name_any(), &pp, &Patch::Apply(&status))
            .await?;
    }
    Ok(started.elapsed())
}

struct OperatorRun {
    converge: Duration,
    writes: u64,
    /// One per shard process.
    rss_kib: Vec<u64>,
}

/// The operator binary as `shards` processes (one shard each), converging `n` agents that
/// already exist.
async fn operator_run(
    admin: &Client,
    kubeconfig: &std::path::Path,
    bin: &std::path::Path,
    n: usize,
    shards: u32,
) -> anyhow::Result<OperatorRun> {
    let ns = format!("bench-operator-{n}-{shards}");
    namespace_with_agents(admin, &ns, n).await?;
    let started = Instant::now();
    let mut processes = Vec::new();
    for index in 0..shards {
        let port = free_port()?;
        let child = tokio::process::Command::new(bin)
            .args(["--namespace", &ns, "--leader-election=false", "--metrics-addr", &format!("127.0.0.1:{port}")])
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "warn")
            .env("SHARD_COUNT", shards.to_string())
            .env("SHARD_INDEX", index.to_string())
            // glibc otherwise keeps one heap arena per thread; the chart sets the same for the operator.
            .env("MALLOC_ARENA_MAX", "2")
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        processes.push((child, port));
    }
    let agents = Api::<MailAgent>::namespaced(admin.clone(), &ns);
    loop {
        let list = agents.list(&ListParams::default()).await?;
        let done = list
            .items
            .iter()
            .filter(|a| a.status.as_ref().and_then(|s| s.observed_generation) == a.metadata.generation)
            .count();
        if done == n {
            break;
        }
        // Ten minutes per thousand agents (3,000 take about 22 on a busy 2-core machine), twice
        // that for shards, whose processes share those cores with the API server here.
        let limit = Duration::from_secs(600 * u64::from(shards) * (n as u64).div_ceil(1000).max(1));
        if started.elapsed() > limit {
            bail!("operator did not converge {n} agents in {} minutes ({done} done)", limit.as_secs() / 60);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let converge = started.elapsed();
    // Let follow-up reconciles (triggered by the operator's own writes) settle before counting.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (mut writes, mut rss_kib) = (0, Vec::new());
    for (mut child, port) in processes {
        let metrics = scrape_metrics(port).await?;
        writes += metrics
            .lines()
            .filter(|l| l.starts_with("mailagent_operator_api_writes_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum::<u64>();
        let pid = child.id().context("operator pid")?;
        rss_kib.push(
            std::fs::read_to_string(format!("/proc/{pid}/status"))?
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:").map(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>()))
                .context("VmRSS")??,
        );
        child.kill().await?;
    }
    Ok(OperatorRun { converge, writes, rss_kib })
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Reads the operator's /metrics with a plain HTTP/1.0 request (no client dependency needed).
async fn scrape_metrics(port: u16) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n").await?;
    let mut body = String::new();
    stream.read_to_string(&mut body).await?;
    Ok(body)
}
