//! A real control plane: etcd 3.6 (from the `etcd-bin-vendored` crate) and kube-apiserver
//! v1.36.3 (built from the Go module proxy by `hack/control-plane-build.sh`), RBAC on, secure
//! serving with generated certificates, an admin client certificate, and an audit log of writes.
//!
//! With `MAILAGENT_TEST_USE_KUBECONFIG=1` the same API hands out clients for the cluster in
//! `KUBECONFIG` instead of starting anything.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::audit::{AUDIT_POLICY, AuditLog};
use crate::node::{self, Node};
use crate::pki::{Pki, write_private};
use crate::process::{Process, free_port, is_port_race, with_fresh_ports};
use crate::{binaries, controller_manager};

/// How long the API server may take to become ready (2 cores, cold caches).
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// What to run besides etcd and kube-apiserver.
#[derive(Clone, Copy, Debug, Default)]
pub struct PlaneOptions {
    /// Also run kube-controller-manager (garbage collector, namespace, deployment and replicaset
    /// controllers), as `make run` does. Off for tests: see `controller_manager`.
    pub controller_manager: bool,
    /// Also run a node (containerd, kubelet, kube-scheduler; implies the controller manager with
    /// the node's controllers). Needs root: see `node::unsupported_reason`.
    pub node: bool,
}

/// A running control plane (or a handle on an external cluster).
pub struct ControlPlane {
    kubeconfig: PathBuf,
    audit_log: Option<PathBuf>,
    /// In start order (etcd first); stopped in reverse by `Drop`.
    processes: Vec<Process>,
    /// Stopped (and its host footprint removed) before the processes.
    node: Option<Node>,
    /// Removed after the processes stop (fields drop after `Drop::drop`).
    temp_dir: Option<tempfile::TempDir>,
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        drop(self.node.take());
        // The API server first: without etcd its graceful shutdown stalls.
        while let Some(process) = self.processes.pop() {
            drop(process);
        }
    }
}

/// Removes `dir` once this process is gone and its servers have stopped. A shared plane lives in
/// a `static`, which Rust never drops, so its `TempDir` (etcd's data, about 125 MB) would stay
/// behind after every test binary. The janitor has its own process group, so a Ctrl-C to the
/// test's group does not take it along before it has cleaned up.
fn remove_when_gone(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::process::CommandExt as _;
    // The servers' watchdogs give them up to 5 s after this process is gone (see `process.rs`).
    let script = r#"while kill -0 "$WATCH_PID" 2>/dev/null; do sleep 1; done; sleep 7; rm -rf -- "$1""#;
    std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .arg("plane-janitor")
        .arg(dir)
        .env("WATCH_PID", std::process::id().to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .map(drop)
}

impl ControlPlane {
    /// Starts a fresh plane in a temporary directory (or uses `KUBECONFIG`, see the module docs).
    pub async fn start() -> anyhow::Result<Self> {
        if std::env::var("MAILAGENT_TEST_USE_KUBECONFIG").as_deref() == Ok("1") {
            let kubeconfig = std::env::var("KUBECONFIG").context("MAILAGENT_TEST_USE_KUBECONFIG=1 needs KUBECONFIG")?;
            return Ok(Self {
                kubeconfig: kubeconfig.into(),
                audit_log: None,
                processes: vec![],
                node: None,
                temp_dir: None,
            });
        }
        let dir = tempfile::Builder::new().prefix("mailagent-plane-").tempdir()?;
        remove_when_gone(dir.path())?;
        let mut plane = Self::start_in(dir.path()).await?;
        plane.temp_dir = Some(dir);
        Ok(plane)
    }

    /// Starts a plane whose files live in `dir`; `dir/kubeconfig` is the admin kubeconfig. It appears
    /// (atomically) only once the plane is ready, so a script may wait for the file.
    pub async fn start_in(dir: &Path) -> anyhow::Result<Self> {
        Self::start_in_with(dir, PlaneOptions::default()).await
    }

    /// Like `start_in`, with more than the API server when `options` asks for it.
    pub async fn start_in_with(dir: &Path, options: PlaneOptions) -> anyhow::Result<Self> {
        let started = Instant::now();
        let apiserver = binaries::kube_apiserver()?;
        let etcd = etcd_bin_vendored::etcd_bin_path().map_err(|e| anyhow::anyhow!("{e}"))?;
        let pki = Pki::generate()?;
        let certs = dir.join("pki");
        std::fs::create_dir_all(&certs)?;
        pki.write_server_files(&certs)?;
        let host = if options.node { Some(node::prepare(dir, &certs, &pki.serving_ca_pem)?) } else { None };

        let (mut plane, secure_port) = with_fresh_ports("etcd and kube-apiserver", async || {
            let attempt = Self::start_apiserver(dir, &certs, &pki, &apiserver, etcd, options.node).await;
            if attempt.as_ref().is_err_and(is_port_race) {
                // The attempt's processes are stopped (dropped); its etcd member recorded peer
                // URLs the next attempt changes, so etcd starts afresh.
                let _ = std::fs::remove_dir_all(dir.join("etcd"));
            }
            attempt
        })
        .await?;
        tracing::info!(took = ?started.elapsed(), "kube-apiserver ready");

        if options.controller_manager || options.node {
            let start = async || plane.start_controller_manager(dir, &certs, options.node).await;
            with_fresh_ports("kube-controller-manager", start).await?;
            tracing::info!(took = ?started.elapsed(), "kube-controller-manager healthy");
        }
        if let Some(host) = host {
            let info = node::PlaneInfo {
                dir,
                certs: &certs,
                admin_kubeconfig: &plane.kubeconfig,
                secure_port,
                serving_ca_pem: &pki.serving_ca_pem,
                client: plane.client().await,
            };
            plane.node = Some(Node::start(info, host).await?);
        }
        plane.kubeconfig = publish(&plane.kubeconfig, &dir.join("kubeconfig"))?;
        Ok(plane)
    }

    /// etcd and kube-apiserver on fresh ports, ready; the API server's port with the plane.
    async fn start_apiserver(
        dir: &Path,
        certs: &Path,
        pki: &Pki,
        apiserver: &Path,
        etcd: &Path,
        node: bool,
    ) -> anyhow::Result<(Self, u16)> {
        let (etcd_client, etcd_peer, secure_port) = (free_port()?, free_port()?, free_port()?);
        let etcd_url = format!("http://127.0.0.1:{etcd_client}");
        let peer_url = format!("http://127.0.0.1:{etcd_peer}");
        let etcd_args = [
            "--name=default".into(),
            format!("--data-dir={}", dir.join("etcd").display()),
            format!("--listen-client-urls={etcd_url}"),
            format!("--advertise-client-urls={etcd_url}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--initial-cluster=default={peer_url}"),
            "--unsafe-no-fsync=true".into(),
            "--log-level=warn".into(),
        ];
        let mut processes = vec![Process::spawn("etcd", etcd, &etcd_args, dir.join("etcd.log"))?];

        let audit_policy = dir.join("audit-policy.yaml");
        std::fs::write(&audit_policy, AUDIT_POLICY)?;
        let audit_log = dir.join("audit.log");
        let cert = |name: &str| certs.join(name).display().to_string();
        let mut apiserver_args = vec![
            format!("--etcd-servers={etcd_url}"),
            format!("--secure-port={secure_port}"),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            format!("--cert-dir={}", certs.display()),
            format!("--tls-cert-file={}", cert("apiserver.crt")),
            format!("--tls-private-key-file={}", cert("apiserver.key")),
            format!("--client-ca-file={}", cert("client-ca.crt")),
            format!("--service-account-issuer=https://127.0.0.1:{secure_port}"),
            format!("--service-account-key-file={}", cert("sa.pub")),
            format!("--service-account-signing-key-file={}", cert("sa.key")),
            // Room for thousands of Services (benchmarks create three per MailAgent).
            "--service-cluster-ip-range=10.96.0.0/16".into(),
            "--authorization-mode=RBAC".into(),
            // No controller-manager creates the `default` ServiceAccount here.
            "--disable-admission-plugins=ServiceAccount".into(),
            "--allow-privileged=false".into(),
            "--endpoint-reconciler-type=none".into(),
            format!("--audit-policy-file={}", audit_policy.display()),
            format!("--audit-log-path={}", audit_log.display()),
            "--audit-log-format=json".into(),
            "--audit-log-mode=blocking".into(),
            "--audit-log-maxsize=0".into(),
        ];
        if node {
            node::apiserver_args(&mut apiserver_args, certs);
        }
        processes.push(Process::spawn("kube-apiserver", apiserver, &apiserver_args, dir.join("kube-apiserver.log"))?);

        // The components' own copy; `dir/kubeconfig` is published when everything is up.
        let kubeconfig = certs.join("admin.kubeconfig");
        write_private(&kubeconfig, &kubeconfig_yaml(pki, secure_port))?;
        let mut plane = Self { kubeconfig, audit_log: Some(audit_log), processes, node: None, temp_dir: None };
        plane.wait_ready().await?;
        Ok((plane, secure_port))
    }

    /// kube-controller-manager on a fresh port, healthy. When it is not, it is stopped again: a
    /// next attempt would take the exited process for a crashed server.
    async fn start_controller_manager(&mut self, dir: &Path, certs: &Path, node: bool) -> anyhow::Result<()> {
        let port = free_port()?;
        let mut args = controller_manager::args(&self.kubeconfig, certs, port);
        if node {
            node::controller_manager_args(&mut args, certs);
        }
        let log = dir.join("kube-controller-manager.log");
        let binary = binaries::kube_controller_manager()?;
        self.processes.push(Process::spawn("kube-controller-manager", &binary, &args, log)?);
        let healthy = self.wait_healthy("kube-controller-manager", port).await;
        if healthy.is_err() {
            self.processes.pop();
        }
        healthy
    }

    /// Stops kube-apiserver and starts it again on the same address, certificates and etcd, as a
    /// control-plane upgrade does; returns once it is ready again. Clients keep working against it.
    pub async fn restart_apiserver(self) -> anyhow::Result<Self> {
        self.restart_apiserver_after(Duration::ZERO).await
    }

    /// Like [`ControlPlane::restart_apiserver`], with the API server down for `downtime`.
    pub async fn restart_apiserver_after(mut self, downtime: Duration) -> anyhow::Result<Self> {
        anyhow::ensure!(self.is_local(), "only a local plane can be restarted");
        let apiserver =
            self.processes.iter_mut().find(|p| p.name() == "kube-apiserver").context("no kube-apiserver")?;
        apiserver.stop();
        tokio::time::sleep(downtime).await;
        // It keeps its port (clients hold its URL), so a port race here cannot be retried.
        apiserver.restart()?;
        self.wait_ready().await?;
        Ok(self)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        self.wait_for_ok("kube-apiserver", None, "/readyz").await
    }

    /// Waits for a component that serves on `port` with the API server's certificate.
    async fn wait_healthy(&mut self, name: &str, port: u16) -> anyhow::Result<()> {
        self.wait_for_ok(name, Some(port), "/healthz").await
    }

    /// Polls `path` (on the API server, or on `port`) until it answers `ok`, failing with the
    /// servers' log tails when one exits or the deadline passes.
    async fn wait_for_ok(&mut self, name: &str, port: Option<u16>, path: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if self.processes.iter_mut().any(|p| !p.is_running()) {
                bail!("a control-plane process exited during startup\n{}", self.log_tails());
            }
            if let Ok(client) = self.try_client_on(port).await {
                let request = http::Request::get(path).body(Vec::new()).expect("static request");
                if client.request_text(request).await.is_ok_and(|body| body.trim() == "ok") {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!("{name} not ready after {READY_TIMEOUT:?}\n{}", self.log_tails());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    fn log_tails(&self) -> String {
        self.processes.iter().map(|p| p.log_tail(30)).collect::<Vec<_>>().join("\n")
    }

    /// The admin kubeconfig.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// Process ids of the plane's servers, by name (for resident-memory reports).
    pub fn pids(&self) -> std::collections::BTreeMap<&'static str, u32> {
        self.processes.iter().filter_map(|p| Some((p.name(), p.server_pid()?))).collect()
    }

    /// The node, when started with one.
    pub fn node(&self) -> Option<&Node> {
        self.node.as_ref()
    }

    /// Whether this plane was started here (false when it stands for the cluster in `KUBECONFIG`).
    pub fn is_local(&self) -> bool {
        !self.processes.is_empty()
    }

    /// The audit log of writes (None against an external cluster).
    pub fn audit(&self) -> Option<AuditLog> {
        self.audit_log.clone().map(AuditLog::new)
    }

    /// An admin client, bound to the calling tokio runtime.
    pub async fn client(&self) -> Client {
        self.try_client(None).await.expect("a client for the control plane")
    }

    /// A client that impersonates `user` in `groups` (RBAC applies as for that user).
    pub async fn impersonating(&self, user: &str, groups: &[&str]) -> Client {
        let groups = groups.iter().map(|g| (*g).to_owned()).collect();
        self.try_client(Some((user.to_owned(), groups))).await.expect("an impersonating client")
    }

    async fn try_client(&self, impersonate: Option<(String, Vec<String>)>) -> anyhow::Result<Client> {
        let mut config = self.config().await?;
        if let Some((user, groups)) = impersonate {
            config.auth_info.impersonate = Some(user);
            config.auth_info.impersonate_groups = Some(groups);
        }
        Ok(Client::try_from(config)?)
    }

    /// An admin client for the API server, or for another local component on `port` that serves
    /// with the API server's certificate (so the same CA verifies it).
    async fn try_client_on(&self, port: Option<u16>) -> anyhow::Result<Client> {
        let mut config = self.config().await?;
        if let Some(port) = port {
            config.cluster_url = format!("https://127.0.0.1:{port}").parse()?;
        }
        Ok(Client::try_from(config)?)
    }

    async fn config(&self) -> anyhow::Result<Config> {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig)?;
        let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
        // Tests run many requests in parallel against a 2-core API server.
        config.read_timeout = Some(Duration::from_secs(60));
        Ok(config)
    }
}

/// Copies `from` to `to` by way of a rename, so a reader never sees a half-written file.
fn publish(from: &Path, to: &Path) -> anyhow::Result<PathBuf> {
    let partial = to.with_extension("partial");
    write_private(&partial, &std::fs::read_to_string(from)?)?;
    std::fs::rename(&partial, to)?;
    Ok(to.to_owned())
}

fn kubeconfig_yaml(pki: &Pki, port: u16) -> String {
    let b64 = |pem: &str| base64::engine::general_purpose::STANDARD.encode(pem);
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: mailagent-local
  cluster:
    server: https://127.0.0.1:{port}
    certificate-authority-data: {ca}
users:
- name: admin
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
contexts:
- name: mailagent-local
  context: {{cluster: mailagent-local, user: admin}}
current-context: mailagent-local
",
        ca = b64(&pki.serving_ca_pem),
        cert = b64(&pki.admin_cert_pem),
        key = b64(&pki.admin_key_pem),
    )
}
