//! `make bench` for the operator. Each measured run gets a local control plane of its own (see
//! [`FreshPlane`]); the bench measures:
//! - API writes per new MailAgent, against its number of children (goal: children + 1 status);
//! - wall time for the operator (the real release binary, as a process) to converge N agents,
//!   against a plain loop that server-side-applies the same objects directly (goal: <= 1.5x);
//! - the operator's resident memory with N agents (goal: < 64 MiB at 1,000);
//! - the same N agents split over two shards (two processes, `SHARD_COUNT=2`): each shard's
//!   resident memory, the writes per agent and the converge time, for `docs/scale.md`.
//!
//! It also prints the CPU seconds the API server and etcd spent during each run, the operator's
//! own CPU seconds, and the API server's counts of requests and watch events per agent, so a slow
//! converge can be told apart from a busy API server.
//!
//! Usage: operator-bench [N ...] [--shards=1,2]   (default: 1000 3000, one process then two shards)

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::{StreamExt, TryStreamExt};
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Api, Client, ResourceExt};
use mailagent_crds::{AuthPolicy, MailAgent};
use mailagent_operator::controller::mailagent::build::{Inputs, build, validate};
use mailagent_tests::proc;
use serde_json::json;

const MANAGER: &str = "mailagent-bench";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (shard_args, size_args): (Vec<String>, Vec<String>) =
        std::env::args().skip(1).partition(|a| a.starts_with("--shards="));
    let sizes: Vec<usize> = size_args.iter().map(|a| a.parse()).collect::<Result<_, _>>()?;
    let sizes = if sizes.is_empty() { vec![1000, 3000] } else { sizes };
    let shard_counts: Vec<u32> = match shard_args.last() {
        Some(arg) => arg["--shards=".len()..].split(',').map(str::parse).collect::<Result<_, _>>()?,
        None => vec![1, 2],
    };
    let operator_bin = operator_binary()?;
    println!(
        "{:>6} {:>7} {:>12} {:>12} {:>7} {:>14} {:>12} {:>18} {:>22} {:>18} {:>14}",
        "agents",
        "shards",
        "baseline_s",
        "operator_s",
        "ratio",
        "writes/agent",
        "children",
        "reconciles/agent",
        "rss_mib",
        "server_cpu_s b/o",
        "operator_cpu_s"
    );
    let mut breakdowns = Vec::new();
    for n in &sizes {
        let n = *n;
        let plane = FreshPlane::start().await?;
        let before = plane.load().await?;
        let baseline = baseline_loop(&plane.admin, n).await?;
        let baseline_load = plane.load().await?.since(&before);
        drop(plane);
        for &shards in &shard_counts {
            let plane = FreshPlane::start().await?;
            let before = plane.load().await?;
            let run = operator_run(&plane.admin, plane.plane.kubeconfig_path(), &operator_bin, n, shards).await?;
            let operator_load = plane.load().await?.since(&before);
            drop(plane);
            breakdowns.push(format!(
                "{n} agents, {shards} shard(s), per agent:\n  baseline: {}\n  operator: {}",
                baseline_load.requests.per_agent(n),
                operator_load.requests.per_agent(n)
            ));
            let rss: Vec<String> = run.rss_kib.iter().map(|k| format!("{:.1}", *k as f64 / 1024.0)).collect();
            println!(
                "{n:>6} {shards:>7} {:>12.2} {:>12.2} {:>7.2} {:>14.2} {:>12} {:>18.2} {:>22} {:>18} {:>14.1}",
                baseline.as_secs_f64(),
                run.converge.as_secs_f64(),
                run.converge.as_secs_f64() / baseline.as_secs_f64(),
                run.writes as f64 / n as f64,
                CHILDREN,
                run.reconciles as f64 / n as f64,
                rss.join(" + "),
                format!("{:.0} / {:.0}", baseline_load.server_cpu_s, operator_load.server_cpu_s),
                run.cpu_s,
            );
        }
    }
    println!("goals: ratio <= 1.5; writes/agent == children + 1 ({}); rss < 64 MiB at 1000 agents", CHILDREN + 1);
    println!("       two shards: the same writes/agent, each shard below one process's rss");
    println!("       server_cpu_s: CPU seconds of kube-apiserver + etcd during the baseline / the operator run");
    println!("API server requests (verb resource) and watch events sent (kind), counted by the API server:");
    breakdowns.iter().for_each(|b| println!("{b}"));
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
    /// MailAgent reconciles, summed over the shard processes.
    reconciles: u64,
    /// One per shard process.
    rss_kib: Vec<u64>,
    /// CPU seconds, summed over the shard processes.
    cpu_s: f64,
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
        let port = mailagent_tests::free_port()?;
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
    // Ten minutes per thousand agents (3,000 take about 10 on a busy 2-core machine), twice
    // that for shards, whose processes share those cores with the API server here.
    let limit = Duration::from_secs(600 * u64::from(shards) * (n as u64).div_ceil(1000).max(1));
    until_converged(Api::namespaced(admin.clone(), &ns), n, limit).await?;
    let converge = started.elapsed();
    // Let follow-up reconciles (triggered by the operator's own writes) settle before counting.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (mut writes, mut reconciles, mut rss_kib, mut cpu_s) = (0, 0, Vec::new(), 0.0);
    for (mut child, port) in processes {
        let metrics = scrape_metrics(port).await?;
        writes += samples(&metrics, "mailagent_operator_api_writes_total").map(|(_, value)| value).sum::<f64>() as u64;
        reconciles += samples(&metrics, "mailagent_operator_reconciles_total")
            .filter(|(labels, _)| label(labels, "controller") == "mailagent")
            .map(|(_, value)| value)
            .sum::<f64>() as u64;
        let pid = child.id().context("operator pid")?;
        cpu_s += cpu_seconds(&[pid]);
        rss_kib.push(proc::rss_bytes(pid)? / 1024);
        child.kill().await?;
    }
    Ok(OperatorRun { converge, writes, reconciles, rss_kib, cpu_s })
}

/// Waits until all `n` agents report their generation observed. It watches rather than polls:
/// a list of every agent costs the API server work in proportion to the fleet, and polling that
/// every 250 ms loaded it beside the operator under measurement (the baseline has no such load).
async fn until_converged(agents: Api<MailAgent>, n: usize, limit: Duration) -> anyhow::Result<()> {
    let mut converged = HashSet::new();
    let events = watcher(agents, watcher::Config::default()).default_backoff();
    let mut events = std::pin::pin!(events);
    let deadline = tokio::time::sleep(limit);
    let mut deadline = std::pin::pin!(deadline);
    while converged.len() < n {
        let event = tokio::select! {
            event = events.try_next() => event?.context("the MailAgent watch ended")?,
            () = &mut deadline => bail!(
                "operator did not converge {n} agents in {} minutes ({} done)",
                limit.as_secs() / 60,
                converged.len()
            ),
        };
        match event {
            Event::Apply(agent) | Event::InitApply(agent) => {
                let observed = agent.status.as_ref().and_then(|s| s.observed_generation) == agent.metadata.generation;
                if observed {
                    converged.insert(agent.name_any());
                } else {
                    converged.remove(&agent.name_any());
                }
            }
            Event::Delete(agent) => {
                converged.remove(&agent.name_any());
            }
            // A re-list: what follows (InitApply) is the whole truth again.
            Event::Init => converged.clear(),
            Event::InitDone => {}
        }
    }
    Ok(())
}

/// The API server's own counters of requests (by verb and resource) and of watch events sent (by
/// kind), from its `/metrics`.
struct ApiRequests(std::collections::BTreeMap<String, f64>);

impl ApiRequests {
    async fn read(admin: &Client) -> anyhow::Result<Self> {
        let request = http::Request::get("/metrics").body(Vec::new())?;
        let text = admin.request_text(request).await?;
        let mut counts = std::collections::BTreeMap::new();
        for (labels, value) in samples(&text, "apiserver_request_total") {
            let (verb, resource, sub) =
                (label(labels, "verb"), label(labels, "resource"), label(labels, "subresource"));
            let key = if sub.is_empty() { format!("{verb} {resource}") } else { format!("{verb} {resource}/{sub}") };
            *counts.entry(key).or_default() += value;
        }
        for (labels, value) in samples(&text, "apiserver_watch_events_total") {
            *counts.entry(format!("watch-event {}", label(labels, "resource"))).or_default() += value;
        }
        Ok(Self(counts))
    }

    fn since(&self, before: &Self) -> Self {
        Self(self.0.iter().map(|(k, v)| (k.clone(), v - before.0.get(k).copied().unwrap_or_default())).collect())
    }

    /// The counts over `n` agents, largest first, leaving out what happened less than once in a
    /// hundred agents.
    fn per_agent(&self, n: usize) -> String {
        let mut rows: Vec<(&String, f64)> =
            self.0.iter().map(|(k, v)| (k, v / n as f64)).filter(|(_, v)| *v >= 0.01).collect();
        rows.sort_by(|a, b| b.1.total_cmp(&a.1));
        rows.iter().map(|(k, v)| format!("{k} {v:.2}")).collect::<Vec<_>>().join(", ")
    }
}

/// The samples of `family` in Prometheus text format (`family{a="x",b="y"} 1`): each one's label
/// set (`a="x",b="y"`) and value (the line's last field). Samples without labels, and lines whose
/// value is not a number, are left out.
fn samples<'a>(text: &'a str, family: &str) -> impl Iterator<Item = (&'a str, f64)> {
    let prefix = format!("{family}{{");
    text.lines().filter_map(move |line| {
        let labels = line.strip_prefix(&prefix)?.split('}').next().unwrap_or_default();
        Some((labels, line.rsplit(' ').next()?.parse().ok()?))
    })
}

/// The value of `name` in a label set from [`samples`]. Values here hold no quotes or commas
/// (verbs, resources, kinds).
fn label<'a>(labels: &'a str, name: &str) -> &'a str {
    labels
        .split(',')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix("=\"")?.strip_suffix('"'))
        .unwrap_or_default()
}

/// A control plane of its own for each measured run. The API server's cost of creating a Service
/// grows with the Services it already holds (its ClusterIP allocator counts every allocated
/// address on each allocation), so a run on a plane that still held the previous run's objects
/// paid for them: that made the operator look 1.9x slower than the baseline at 3,000 agents.
struct FreshPlane {
    plane: mailagent_tests::ControlPlane,
    admin: Client,
}

/// What the plane's servers had done by some moment.
struct Load {
    /// CPU seconds of kube-apiserver and etcd.
    server_cpu_s: f64,
    requests: ApiRequests,
}

impl Load {
    fn since(&self, before: &Self) -> Self {
        Self { server_cpu_s: self.server_cpu_s - before.server_cpu_s, requests: self.requests.since(&before.requests) }
    }
}

impl FreshPlane {
    async fn start() -> anyhow::Result<Self> {
        let plane = mailagent_tests::ControlPlane::start().await.context("starting a control plane")?;
        let admin = plane.client().await;
        mailagent_tests::install_crds(&admin, mailagent_crds::crds()).await?;
        Ok(Self { plane, admin })
    }

    async fn load(&self) -> anyhow::Result<Load> {
        let pids: Vec<u32> = self.plane.pids().into_values().collect();
        Ok(Load { server_cpu_s: cpu_seconds(&pids), requests: ApiRequests::read(&self.admin).await? })
    }
}

/// User plus system CPU seconds so far, summed over the processes (those that are gone count 0).
fn cpu_seconds(pids: &[u32]) -> f64 {
    pids.iter().filter_map(|&pid| proc::cpu_seconds(pid).ok()).sum()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_a_familys_labelled_lines() {
        let text = "# HELP apiserver_request_total Counter of apiserver requests.\n\
            # TYPE apiserver_request_total counter\n\
            apiserver_request_total{code=\"200\",resource=\"pods\",subresource=\"\",verb=\"LIST\"} 3\n\
            apiserver_request_total{code=\"201\",resource=\"pods\",subresource=\"status\",verb=\"PATCH\"} 2.5e+01\n\
            apiserver_request_total_other{verb=\"GET\"} 7\n\
            apiserver_request_total 9\n\
            apiserver_request_total{verb=\"GET\"} NaNish\n";
        let found: Vec<_> = samples(text, "apiserver_request_total").collect();
        assert_eq!(
            found,
            [
                ("code=\"200\",resource=\"pods\",subresource=\"\",verb=\"LIST\"", 3.0),
                ("code=\"201\",resource=\"pods\",subresource=\"status\",verb=\"PATCH\"", 25.0),
            ]
        );
        assert_eq!(label(found[1].0, "subresource"), "status");
        assert_eq!(label(found[0].0, "subresource"), "");
        assert_eq!(label(found[0].0, "verb"), "LIST");
        assert_eq!(label(found[0].0, "missing"), "");
    }
}
