//! A real Kubernetes node beside the local control plane: containerd 2.4 with Debian's runc and
//! CNI plugins, kubelet and kube-scheduler v1.36.3, all built or installed once per machine by
//! `hack/node-build.sh`. The kubelet registers with its own client certificate; pods run under
//! the restricted profile exactly as on a cluster, images are imported (never pulled).
//!
//! One node per machine at a time (a lock file): some paths are fixed (`/run/netns`, kubepods
//! cgroups, `/var/log/containers`, ...). Everything the node leaves on the host is recorded before
//! it starts and removed when it stops by `hack/node-host.sh`, also when the test process dies
//! (a janitor process waits for it), so no process, mount, namespace, iptables rule or cgroup
//! outlives a run.

mod config;
mod host;
mod pki;
mod storage;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use k8s_openapi::api::core::v1::Node as NodeObject;
use kube::{Api, Client};

pub(crate) use config::{apiserver_args, controller_manager_args};
pub(crate) use host::HostGuard;
pub use host::unsupported_reason;

use crate::process::{Process, free_port, with_fresh_ports};
use crate::wait::await_condition;

/// The node's name.
pub const NODE_NAME: &str = "mailagent-node";
/// The node's address: the pod bridge's gateway, made before the kubelet starts.
pub const NODE_IP: &str = "10.244.77.1";
/// Pod addresses.
pub const POD_SUBNET: &str = "10.244.77.0/24";
/// The pod bridge.
pub const BRIDGE: &str = "mailagent0";
/// The `kubernetes` Service's address (first of the plane's Service range); the node forwards it
/// to the API server, which is what kube-proxy would do.
pub const KUBERNETES_SERVICE_IP: &str = "10.96.0.1";
/// The sandbox image, built by `hack/image-build.sh pause` and imported at start.
pub const PAUSE_IMAGE: &str = concat!("localhost/pause:", env!("CARGO_PKG_VERSION"));
/// The default StorageClass of statically made hostPath volumes.
pub const STORAGE_CLASS: &str = "local-hostpath";

/// How long the node may take to register and become Ready.
const READY_TIMEOUT: Duration = Duration::from_secs(180);

/// The kubelet's root directory, under the node's directory.
const KUBELET_ROOT: &str = "kubelet";
/// The kubelet's kubeconfig, among the plane's certificates.
const KUBELET_KUBECONFIG: &str = "kubelet.kubeconfig";

/// What the plane tells the node when it starts it.
pub(crate) struct PlaneInfo<'a> {
    pub dir: &'a Path,
    pub certs: &'a Path,
    pub admin_kubeconfig: &'a Path,
    pub secure_port: u16,
    pub serving_ca_pem: &'a str,
    pub client: Client,
}

/// A running node (kubelet, containerd, kube-scheduler). Dropping it stops them and removes
/// everything they left on the host.
pub struct Node {
    /// containerd, kube-scheduler, kubelet: stopped in reverse.
    processes: Vec<Process>,
    containerd_socket: PathBuf,
    ctr: PathBuf,
    volumes_dir: PathBuf,
    /// Dropped after the processes: cleans the host.
    _host: HostGuard,
}

impl Drop for Node {
    fn drop(&mut self) {
        while let Some(process) = self.processes.pop() {
            drop(process);
        }
    }
}

impl Node {
    /// Starts containerd, kube-scheduler and the kubelet against a ready API server and waits
    /// until the node is Ready and schedulable.
    pub(crate) async fn start(plane: PlaneInfo<'_>, host: HostGuard) -> anyhow::Result<Self> {
        let started = Instant::now();
        let parts = host.parts().clone();
        let dir = plane.dir.join("node");
        std::fs::create_dir_all(&dir)?;
        let part = |name: &str| parts.get(name).cloned().with_context(|| format!("node-build.sh printed no {name}"));
        let (containerd_dir, kube_dir) = (PathBuf::from(part("CONTAINERD_DIR")?), PathBuf::from(part("KUBE_DIR")?));

        let containerd_home = dir.join("containerd");
        let cni_conf = dir.join("cni");
        std::fs::create_dir_all(&containerd_home)?;
        std::fs::create_dir_all(&cni_conf)?;
        std::fs::write(cni_conf.join("10-mailagent.conflist"), config::cni_conflist(&dir.join("cni-ipam")))?;
        let toml = config::containerd_toml(&containerd_home, &part("RUNC")?, &part("CNI_BIN_DIR")?, &cni_conf);
        std::fs::write(containerd_home.join("config.toml"), toml)?;
        let socket = containerd_home.join("containerd.sock");
        let ctr = containerd_dir.join("ctr");
        // Its own shim first on PATH (containerd starts `containerd-shim-runc-v2` by name).
        let path = format!("PATH={}:{}", containerd_dir.display(), std::env::var("PATH").unwrap_or_default());
        let containerd_args = [
            path,
            containerd_dir.join("containerd").display().to_string(),
            "--config".into(),
            toml_path(&containerd_home),
        ];
        let mut node = Self {
            processes: vec![Process::spawn(
                "containerd",
                Path::new("/usr/bin/env"),
                &containerd_args,
                dir.join("containerd.log"),
            )?],
            containerd_socket: socket,
            ctr,
            volumes_dir: dir.join("volumes"),
            _host: host,
        };
        node.wait_containerd().await?;
        let pause = crate::binaries::image_tarball("pause")?;
        node.import_image(&pause)?;
        tracing::info!(took = ?started.elapsed(), "containerd ready, pause image imported");

        host::forward_kubernetes_service(plane.secure_port)?;

        write_kubelet_files(&plane, &dir)?;
        let start = async || node.start_scheduler_and_kubelet(&plane, &dir, &kube_dir).await;
        with_fresh_ports("kube-scheduler and kubelet", start).await?;
        tracing::info!(took = ?started.elapsed(), "node Ready");
        storage::install(&plane.client, &node.volumes_dir).await?;
        Ok(node)
    }

    /// kube-scheduler and the kubelet on fresh ports, until the node is Ready. When it does not get
    /// there they are stopped again: a next attempt would take them for crashed servers. A port race
    /// shows as an exit: both servers exit when they cannot bind their API ports. (The kubelet's
    /// healthz server retries its bind every 5 s instead; nothing here uses it.)
    async fn start_scheduler_and_kubelet(
        &mut self,
        plane: &PlaneInfo<'_>,
        dir: &Path,
        kube_dir: &Path,
    ) -> anyhow::Result<()> {
        let containerd_only = self.processes.len();
        let args = config::scheduler_args(plane.admin_kubeconfig, plane.certs, free_port()?);
        let scheduler =
            Process::spawn("kube-scheduler", &kube_dir.join("kube-scheduler"), &args, dir.join("kube-scheduler.log"))?;
        self.processes.push(scheduler);

        let ports = config::KubeletPorts { api: free_port()?, healthz: free_port()? };
        let kubelet_config = dir.join("kubelet.yaml");
        std::fs::write(&kubelet_config, config::kubelet_yaml(dir, plane.certs, &self.containerd_socket, &ports))?;
        let args = [
            format!("--config={}", kubelet_config.display()),
            format!("--kubeconfig={}", plane.certs.join(KUBELET_KUBECONFIG).display()),
            format!("--root-dir={}", dir.join(KUBELET_ROOT).display()),
            format!("--hostname-override={NODE_NAME}"),
            format!("--node-ip={NODE_IP}"),
        ];
        self.processes.push(Process::spawn("kubelet", &kube_dir.join("kubelet"), &args, dir.join("kubelet.log"))?);

        let ready = self.wait_ready(&plane.client).await;
        if ready.is_err() {
            self.processes.truncate(containerd_only);
        }
        ready
    }

    /// Imports an image tarball (from `hack/image-build.sh`) into the node's containerd.
    pub fn import_image(&self, tarball: &Path) -> anyhow::Result<()> {
        let status = std::process::Command::new(&self.ctr)
            .arg("--address")
            .arg(&self.containerd_socket)
            .args(["-n", "k8s.io", "images", "import"])
            .arg(tarball)
            .stdout(std::process::Stdio::null())
            .status()?;
        if !status.success() {
            bail!("ctr images import {} failed ({status})", tarball.display());
        }
        Ok(())
    }

    /// The containerd socket (for `ctr --address`).
    pub fn containerd_socket(&self) -> &Path {
        &self.containerd_socket
    }

    /// The `ctr` binary.
    pub fn ctr(&self) -> &Path {
        &self.ctr
    }

    /// Where the hostPath PersistentVolumes live (one directory each, `pv-N`).
    pub fn volumes_dir(&self) -> &Path {
        &self.volumes_dir
    }

    /// Process ids of the node's components, by name (for resident-memory reports).
    pub fn pids(&self) -> BTreeMap<&'static str, u32> {
        self.processes.iter().filter_map(|p| Some((p.name(), p.server_pid()?))).collect()
    }

    async fn wait_containerd(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ok = std::process::Command::new(&self.ctr)
                .arg("--address")
                .arg(&self.containerd_socket)
                .arg("version")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return Ok(());
            }
            if !self.processes[0].is_running() || Instant::now() > deadline {
                bail!("containerd did not start\n{}", self.processes[0].log_tail(30));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn wait_ready(&mut self, client: &Client) -> anyhow::Result<()> {
        let nodes: Api<NodeObject> = Api::all(client.clone());
        let ready = |node: Option<&NodeObject>| node.is_some_and(is_schedulable);
        let wait = await_condition(&nodes, NODE_NAME, ready, READY_TIMEOUT);
        let mut check = tokio::time::interval(Duration::from_secs(1));
        tokio::pin!(wait);
        loop {
            tokio::select! {
                result = &mut wait => {
                    return result.map(|_| ()).with_context(|| self.log_tails());
                }
                _ = check.tick() => {
                    if self.processes.iter_mut().any(|p| !p.is_running()) {
                        bail!("a node process exited during startup\n{}", self.log_tails());
                    }
                }
            }
        }
    }

    fn log_tails(&self) -> String {
        self.processes.iter().map(|p| p.log_tail(30)).collect::<Vec<_>>().join("\n")
    }
}

/// Ready, and the node lifecycle controller has lifted the not-ready taint.
fn is_schedulable(node: &NodeObject) -> bool {
    let status = node.status.as_ref();
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let tainted = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|t| t.iter().any(|t| t.key.starts_with("node.kubernetes.io/")));
    ready && !tainted
}

/// What the kubelet needs besides its configuration (which names its ports): its directories,
/// a resolv.conf for pods, and its kubeconfig.
fn write_kubelet_files(plane: &PlaneInfo<'_>, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir.join(KUBELET_ROOT))?;
    std::fs::create_dir_all(dir.join("pod-logs"))?;
    let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    std::fs::write(dir.join("resolv.conf"), resolv)?;
    let server = format!("https://127.0.0.1:{}", plane.secure_port);
    let kubeconfig = config::kubelet_kubeconfig(plane.certs, &server, plane.serving_ca_pem)?;
    crate::pki::write_private(&plane.certs.join(KUBELET_KUBECONFIG), &kubeconfig)?;
    Ok(())
}

fn toml_path(dir: &Path) -> String {
    dir.join("config.toml").display().to_string()
}

/// Before the API server starts: the host guard (lock, snapshot, bridge) and the node's
/// certificates, whose CA joins the API server's client CA bundle.
pub(crate) fn prepare(dir: &Path, certs: &Path, serving_ca_pem: &str) -> anyhow::Result<HostGuard> {
    let host = HostGuard::acquire(dir)?;
    pki::write(certs, NODE_NAME, NODE_IP, serving_ca_pem)?;
    Ok(host)
}
