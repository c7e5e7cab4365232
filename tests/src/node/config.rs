//! Configuration files and flags of the node's components. Each setting that this machine needs
//! (and a default cluster would not) says why; see docs/local-node.md.

use std::path::Path;

use base64::Engine as _;

use super::pki::files;
use super::{BRIDGE, NODE_IP, POD_SUBNET};

/// containerd 2.x (config version 3): every directory and the socket under `dir`.
pub fn containerd_toml(dir: &Path, runc: &str, cni_bin_dir: &str, cni_conf_dir: &Path) -> String {
    let d = dir.display();
    format!(
        r#"version = 3
root = "{d}/root"
state = "{d}/state"

[grpc]
  address = "{d}/containerd.sock"

[ttrpc]
  address = "{d}/containerd.sock.ttrpc"

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    # Imported by the node before the kubelet starts; nothing is pulled from a registry.
    sandbox = "{pause}"

[plugins."io.containerd.cri.v1.runtime"]
  enable_selinux = false
  # Root here lacks CAP_SYS_RESOURCE: without this every sandbox fails to start
  # (runc cannot write oom_score_adj -998).
  restrict_oom_score_adj = true
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = "{runc}"
        SystemdCgroup = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["{cni_bin_dir}"]
    conf_dir = "{conf}"
"#,
        pause = super::PAUSE_IMAGE,
        conf = cni_conf_dir.display(),
    )
}

/// The pod network: a bridge whose gateway is the node's address, host-local IPAM with its state
/// under `dir`, hostPort through portmap.
pub fn cni_conflist(ipam_dir: &Path) -> String {
    serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "mailagent",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": true,
                "ipMasq": true,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "dataDir": ipam_dir,
                    "ranges": [[{ "subnet": POD_SUBNET, "gateway": NODE_IP }]],
                    "routes": [{ "dst": "0.0.0.0/0" }]
                }
            },
            { "type": "portmap", "capabilities": { "portMappings": true } },
            { "type": "loopback" }
        ]
    })
    .to_string()
}

/// Ports the kubelet serves on.
pub struct KubeletPorts {
    /// The API (logs, exec, port-forward), on the node address with TLS.
    pub api: u16,
    /// Plain `/healthz` on loopback.
    pub healthz: u16,
}

/// KubeletConfiguration.
pub fn kubelet_yaml(dir: &Path, certs: &Path, containerd_socket: &Path, ports: &KubeletPorts) -> String {
    let cert = |name: &str| certs.join(name).display().to_string();
    let d = dir.display();
    format!(
        r#"apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# The host has cgroup v1 (hybrid): kubelet 1.36 refuses it unless told, and uses cgroupfs there.
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
containerRuntimeEndpoint: unix://{socket}
address: {NODE_IP}
port: {api}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: {healthz}
tlsCertFile: {tls_cert}
tlsPrivateKeyFile: {tls_key}
authentication:
  anonymous: {{enabled: false}}
  webhook: {{enabled: true}}
  x509: {{clientCAFile: {ca}}}
authorization:
  mode: Webhook
resolvConf: {d}/resolv.conf
podLogsDir: {d}/pod-logs
# Lowered for tests from the default 1m: a changed Secret or ConfigMap reaches a running pod's
# volume within about syncFrequency (59-80 s measured with 1m, under 14 s with 10s).
syncFrequency: 10s
nodeStatusUpdateFrequency: 5s
# Images are imported, never pulled: never collect them. Shared build machines run with nearly
# full disks: evict (and taint the node with disk-pressure) only when almost nothing is left, in
# absolute terms (1 % of a large disk is gigabytes).
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 50Mi
  nodefs.available: 100Mi
  imagefs.available: 100Mi
  nodefs.inodesFree: 1%
serializeImagePulls: false
maxPods: 50
"#,
        socket = containerd_socket.display(),
        api = ports.api,
        healthz = ports.healthz,
        tls_cert = cert(files::KUBELET_CERT),
        tls_key = cert(files::KUBELET_KEY),
        ca = cert(files::CA),
    )
}

/// The kubelet's kubeconfig: the node's own client certificate (`system:node:<name>`).
pub fn kubelet_kubeconfig(certs: &Path, server: &str, serving_ca_pem: &str) -> anyhow::Result<String> {
    let b64 = |pem: &str| base64::engine::general_purpose::STANDARD.encode(pem);
    let read = |name: &str| std::fs::read_to_string(certs.join(name));
    Ok(format!(
        "apiVersion: v1
kind: Config
clusters:
- name: local
  cluster: {{server: '{server}', certificate-authority-data: {ca}}}
users:
- name: node
  user: {{client-certificate-data: {cert}, client-key-data: {key}}}
contexts:
- name: local
  context: {{cluster: local, user: node}}
current-context: local
",
        ca = b64(serving_ca_pem),
        cert = b64(&read(files::NODE_CERT)?),
        key = b64(&read(files::NODE_KEY)?),
    ))
}

/// kube-apiserver flags for a plane with a node: Node authorization and NodeRestriction, the
/// ServiceAccount admission plugin back on (the controller manager now creates the accounts), the
/// client certificate it presents to the kubelet, and listening where pods can reach it.
pub fn apiserver_args(args: &mut Vec<String>, certs: &Path) {
    let cert = |name: &str| certs.join(name).display().to_string();
    args.retain(|a| {
        !a.starts_with("--authorization-mode=")
            && !a.starts_with("--disable-admission-plugins=")
            && !a.starts_with("--bind-address=")
    });
    args.extend([
        "--authorization-mode=Node,RBAC".into(),
        "--enable-admission-plugins=NodeRestriction".into(),
        // Pods reach it on the node address (through the `kubernetes` Service DNAT), tools on loopback.
        "--bind-address=0.0.0.0".into(),
        format!("--kubelet-client-certificate={}", cert(files::APISERVER_KUBELET_CERT)),
        format!("--kubelet-client-key={}", cert(files::APISERVER_KUBELET_KEY)),
        format!("--kubelet-certificate-authority={}", cert(files::CA)),
        "--kubelet-preferred-address-types=InternalIP".into(),
    ]);
}

/// The controllers a node needs on top of the plane's: ServiceAccounts and their CA bundle for
/// pods, node lifecycle (the not-ready taint), Jobs and CronJobs, volume binding, certificate
/// signing, pod garbage collection, and the EndpointSlices behind Services (the operator probes
/// the pods they list for the Verified condition).
pub const NODE_CONTROLLERS: &str = "serviceaccount-controller,serviceaccount-token-controller,\
root-ca-certificate-publisher-controller,node-lifecycle-controller,taint-eviction-controller,\
job-controller,cronjob-controller,persistentvolume-binder-controller,\
persistentvolume-protection-controller,persistentvolumeclaim-protection-controller,\
certificatesigningrequest-signing-controller,certificatesigningrequest-approving-controller,\
certificatesigningrequest-cleaner-controller,pod-garbage-collector-controller,ttl-after-finished-controller,\
endpointslice-controller,disruption-controller";

/// kube-controller-manager flags added in node mode.
pub fn controller_manager_args(args: &mut Vec<String>, certs: &Path) {
    let cert = |name: &str| certs.join(name).display().to_string();
    for arg in args.iter_mut() {
        if let Some(base) = arg.strip_prefix("--controllers=") {
            *arg = format!("--controllers={base},{NODE_CONTROLLERS}");
        }
    }
    args.extend([
        format!("--service-account-private-key-file={}", cert("sa.key")),
        format!("--root-ca-file={}", cert(files::SERVING_CA)),
        format!("--cluster-signing-cert-file={}", cert(files::CA)),
        format!("--cluster-signing-key-file={}", cert(files::CA_KEY)),
        "--allocate-node-cidrs=false".into(),
        // React to a stopped kubelet within seconds, not minutes (tests stop and start nodes).
        "--node-monitor-grace-period=20s".into(),
    ]);
}

/// kube-scheduler flags: the admin kubeconfig, health on loopback with the API server's certificate.
pub fn scheduler_args(kubeconfig: &Path, certs: &Path, port: u16) -> Vec<String> {
    let kubeconfig = kubeconfig.display();
    vec![
        format!("--kubeconfig={kubeconfig}"),
        format!("--authentication-kubeconfig={kubeconfig}"),
        format!("--authorization-kubeconfig={kubeconfig}"),
        "--leader-elect=false".into(),
        "--bind-address=127.0.0.1".into(),
        format!("--secure-port={port}"),
        format!("--tls-cert-file={}", certs.join("apiserver.crt").display()),
        format!("--tls-private-key-file={}", certs.join("apiserver.key").display()),
    ]
}
