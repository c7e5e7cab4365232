//! Helpers of the node end-to-end test: waits on pods, and what the kernel says about a
//! container's process (read from this host's /proc: the test runs as root on the node itself).

use std::os::unix::fs::MetadataExt as _;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use mailagent_crds::{MailAgent, conditions};
use mailagent_tests::Node;

/// Prints one timed step of the scenario.
pub fn step(what: &str, since: Instant) {
    println!("[{:>6.1}s] {what}", since.elapsed().as_secs_f64());
}

/// The MailAgent reports Ready=True.
pub fn agent_ready(agent: Option<&MailAgent>) -> bool {
    agent
        .and_then(|a| a.status.as_ref())
        .and_then(|s| conditions::find(&s.conditions, conditions::READY))
        .is_some_and(|c| c.status == "True")
}

fn is_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// How often [`until`] looks again.
const POLL: Duration = Duration::from_millis(500);
/// How long the pod waits below allow: a pull and a start on this node take seconds.
const POD_TIMEOUT: Duration = Duration::from_secs(180);

/// Polls `probe` until it returns `Ok`; past `timeout`, fails with `what` and the last thing the
/// probe saw (its `Err`), so a timeout says what the cluster looked like, not only that it waited.
pub async fn until<T, Seen, F, Fut>(what: &str, timeout: Duration, mut probe: F) -> T
where
    Seen: std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Seen>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(seen) => assert!(Instant::now() < deadline, "{what} (after {timeout:?}); last seen: {seen:#?}"),
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn list(pods: &Api<Pod>, selector: &str) -> Vec<Pod> {
    pods.list(&ListParams::default().labels(selector)).await.expect("listing pods").items
}

/// Waits until exactly one pod matches `selector` and it is Ready (and none is terminating).
pub async fn running_pod(pods: &Api<Pod>, selector: &str) -> Pod {
    until(&format!("no single Ready pod for {selector}"), POD_TIMEOUT, || async {
        match <[Pod; 1]>::try_from(list(pods, selector).await) {
            Ok([pod]) if is_ready(&pod) => Ok(pod),
            Ok(one) => Err(Vec::from(one)),
            Err(other) => Err(other),
        }
    })
    .await
}

/// Waits until exactly `count` pods match `selector`, every one Ready and none terminating.
pub async fn ready_pods(pods: &Api<Pod>, selector: &str, count: usize) -> Vec<Pod> {
    until(&format!("not {count} Ready pods for {selector}"), POD_TIMEOUT, || async {
        let list = list(pods, selector).await;
        if list.len() == count && list.iter().all(is_ready) { Ok(list) } else { Err(list) }
    })
    .await
}

/// Waits until no pod matches `selector`.
pub async fn no_pods(pods: &Api<Pod>, selector: &str, timeout: Duration) {
    until(&format!("pods for {selector} still exist"), timeout, || async {
        let list = list(pods, selector).await;
        if list.is_empty() { Ok(()) } else { Err(list.into_iter().map(|pod| pod.metadata.name).collect::<Vec<_>>()) }
    })
    .await
}

/// The host pid of the pod's first container, from containerd's task list.
pub fn container_pid(node: &Node, pod: &Pod) -> anyhow::Result<u32> {
    let statuses = pod.status.as_ref().and_then(|s| s.container_statuses.as_ref()).context("no container status")?;
    let id = statuses[0].container_id.as_deref().context("no container id")?;
    let id = id.strip_prefix("containerd://").context("not a containerd container")?;
    let out = std::process::Command::new(node.ctr())
        .arg("--address")
        .arg(node.containerd_socket())
        .args(["-n", "k8s.io", "tasks", "ls"])
        .output()?;
    let text = String::from_utf8(out.stdout)?;
    let line = text.lines().find(|l| l.starts_with(id)).with_context(|| format!("task {id} not in:\n{text}"))?;
    Ok(line.split_whitespace().nth(1).context("no pid column")?.parse()?)
}

/// What the kernel enforces on a process.
#[derive(Debug, Clone)]
pub struct Restrictions {
    /// Real, effective, saved and filesystem uid.
    pub uids: Vec<String>,
    pub cap_eff: u64,
    pub cap_prm: u64,
    pub no_new_privs: bool,
    /// 0 off, 1 strict, 2 filter.
    pub seccomp: u32,
    pub root_read_only: bool,
    /// Mount points mounted read-write whose top directory the process's user or groups may write.
    pub writable: Vec<String>,
}

/// Reads `/proc/<pid>/status` and `mountinfo`, and checks every read-write mount's permissions
/// for the process's uid and groups as seen through `/proc/<pid>/root`.
pub fn restrictions(pid: u32) -> anyhow::Result<Restrictions> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> anyhow::Result<String> {
        let line = status.lines().find_map(|l| l.strip_prefix(&format!("{name}:"))).context(name.to_owned())?;
        Ok(line.trim().to_owned())
    };
    let uids: Vec<String> = field("Uid")?.split_whitespace().map(str::to_owned).collect();
    let uid: u32 = uids[1].parse()?;
    let mut groups: Vec<u32> = field("Groups")?.split_whitespace().filter_map(|g| g.parse().ok()).collect();
    groups.push(field("Gid")?.split_whitespace().nth(1).context("egid")?.parse()?);
    let hex = |name: &str| -> anyhow::Result<u64> { Ok(u64::from_str_radix(&field(name)?, 16)?) };
    let mountinfo = std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))?;
    let mut root_read_only = None;
    let mut writable = Vec::new();
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (point, options) = (fields[4], fields[5]);
        let rw = options.split(',').any(|o| o == "rw");
        if point == "/" {
            root_read_only = Some(!rw);
        }
        // /proc and /sys are the kernel's own views: their files carry their own permission checks.
        if !rw || point.starts_with("/proc") || point.starts_with("/sys") {
            continue;
        }
        let meta = std::fs::metadata(format!("/proc/{pid}/root{point}"))?;
        let mode = meta.mode();
        let can_write = (meta.uid() == uid && mode & 0o200 != 0)
            || (groups.contains(&meta.gid()) && mode & 0o020 != 0)
            || mode & 0o002 != 0;
        if can_write && uid != 0 {
            writable.push(point.to_owned());
        }
    }
    let Some(root_read_only) = root_read_only else { bail!("no root mount in {pid}'s mountinfo") };
    Ok(Restrictions {
        uids,
        cap_eff: hex("CapEff")?,
        cap_prm: hex("CapPrm")?,
        no_new_privs: field("NoNewPrivs")? == "1",
        seccomp: field("Seccomp")?.parse()?,
        root_read_only,
        writable,
    })
}
