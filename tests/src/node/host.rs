//! The node's footprint on the host: whether this machine can run a node at all, the machine-wide
//! lock, the parts from `hack/node-build.sh`, the pod bridge, the `kubernetes` Service forward, and
//! the cleanup (`hack/node-host.sh`) that runs when the guard drops or, if this process dies first,
//! from a janitor process that outlives it.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context as _, bail};

use super::{BRIDGE, KUBERNETES_SERVICE_IP, NODE_IP, POD_SUBNET};

/// One node per machine: this file is locked while one runs.
const LOCK_FILE: &str = "/tmp/mailagent-node.lock";
/// Our stand-in for kube-proxy's rule for the one Service pods need: the API server.
const SERVICE_CHAIN: &str = "MAILAGENT-SERVICES";

/// Why this machine cannot run a node (`None` when it can): the kubelet and containerd need root,
/// cgroups, and the tools `hack/node-build.sh` installs.
pub fn unsupported_reason() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|l| l.split_whitespace().next());
    if uid != Some("0") {
        return Some("a node needs root (kubelet and containerd manage mounts, cgroups and network namespaces)".into());
    }
    let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    if !v2 && !Path::new("/sys/fs/cgroup/memory").is_dir() {
        return Some("no cgroup memory controller under /sys/fs/cgroup (neither v1 nor v2)".into());
    }
    if !Path::new("/proc/filesystems").exists()
        || !std::fs::read_to_string("/proc/filesystems").unwrap_or_default().contains("overlay")
    {
        return Some("the kernel has no overlay filesystem (containerd's snapshotter)".into());
    }
    None
}

fn hack(script: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../hack").join(script)
}

/// Held while a node runs; dropping it removes what the node left on the host.
pub struct HostGuard {
    dir: PathBuf,
    parts: BTreeMap<String, String>,
    janitor: Option<Child>,
    /// Released (closed) last.
    _lock: File,
}

impl HostGuard {
    /// Takes the machine's node lock, builds or finds the node's parts, records the host's state
    /// in `dir`, starts the janitor, and makes the pod bridge (the kubelet wants its node address
    /// to exist before it starts, and the API server serves pods there).
    pub fn acquire(dir: &Path) -> anyhow::Result<Self> {
        if let Some(reason) = unsupported_reason() {
            bail!("this machine cannot run a node: {reason}");
        }
        let lock = File::create(LOCK_FILE).with_context(|| format!("creating {LOCK_FILE}"))?;
        lock.lock().with_context(|| format!("locking {LOCK_FILE}"))?;
        let parts = node_parts()?;
        run(Command::new(hack("node-host.sh")).arg("snapshot").arg(dir))?;
        let janitor = Command::new("/bin/sh")
            .arg("-c")
            .arg(r#"while kill -0 "$WATCH_PID" 2>/dev/null; do sleep 1; done; [ -e "$1/host-cleaned" ] || exec "$2" cleanup "$1""#)
            .arg("janitor")
            .arg(dir)
            .arg(hack("node-host.sh"))
            .env("WATCH_PID", std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(dir.join("janitor.log"))?)
            // Its own process group: a signal to the test's group (Ctrl-C on `make`, a killed CI
            // step or shell) must not take the janitor down with the test it cleans up after.
            .process_group(0)
            .spawn()?;
        let guard = Self { dir: dir.to_owned(), parts, janitor: Some(janitor), _lock: lock };
        let prefix = POD_SUBNET.split('/').nth(1).unwrap_or("24");
        run(Command::new("ip").args(["link", "add", BRIDGE, "type", "bridge"]))?;
        run(Command::new("ip").args(["addr", "add", &format!("{NODE_IP}/{prefix}"), "dev", BRIDGE]))?;
        run(Command::new("ip").args(["link", "set", BRIDGE, "up"]))?;
        Ok(guard)
    }

    /// `NAME=path` lines printed by `hack/node-build.sh`.
    pub fn parts(&self) -> &BTreeMap<String, String> {
        &self.parts
    }
}

impl Drop for HostGuard {
    fn drop(&mut self) {
        let cleanup = Command::new(hack("node-host.sh")).arg("cleanup").arg(&self.dir).status();
        if !cleanup.is_ok_and(|s| s.success()) {
            eprintln!("node cleanup left something behind: see {}/host-leftovers", self.dir.display());
        }
        if let Some(mut janitor) = self.janitor.take() {
            let _ = janitor.kill();
            let _ = janitor.wait();
        }
    }
}

/// Sends pods' connections to the `kubernetes` Service (what in-cluster clients use) to the API
/// server on the node address. Removed by the cleanup with every other new rule.
pub fn forward_kubernetes_service(secure_port: u16) -> anyhow::Result<()> {
    let ipt = |args: &[&str]| run(Command::new("iptables").args(["-w", "-t", "nat"]).args(args));
    ipt(&["-N", SERVICE_CHAIN])?;
    let to = format!("{NODE_IP}:{secure_port}");
    ipt(&[
        "-A",
        SERVICE_CHAIN,
        "-d",
        KUBERNETES_SERVICE_IP,
        "-p",
        "tcp",
        "--dport",
        "443",
        "-j",
        "DNAT",
        "--to-destination",
        &to,
    ])?;
    ipt(&["-I", "PREROUTING", "-j", SERVICE_CHAIN])?;
    ipt(&["-I", "OUTPUT", "-j", SERVICE_CHAIN])
}

/// Runs `hack/node-build.sh` (cached after the first time) for the node's parts.
fn node_parts() -> anyhow::Result<BTreeMap<String, String>> {
    let output = Command::new("bash")
        .arg(hack("node-build.sh"))
        .args(["apt", "containerd", "kube"])
        .stderr(Stdio::inherit())
        .output()
        .context("running hack/node-build.sh")?;
    if !output.status.success() {
        bail!("hack/node-build.sh failed ({})", output.status);
    }
    Ok(String::from_utf8(output.stdout)?
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect())
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let output = command.output().with_context(|| format!("running {command:?}"))?;
    if !output.status.success() {
        bail!("{command:?} failed: {}", String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(())
}
