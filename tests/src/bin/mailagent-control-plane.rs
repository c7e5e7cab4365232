//! `mailagent-control-plane up --dir DIR`: starts a local etcd, kube-apiserver and (unless told
//! not to) kube-controller-manager, writes `DIR/kubeconfig`, prints its path, and runs until SIGINT
//! or SIGTERM, then stops them all. Used by `make run`.
//!
//! With `--node` it also runs a node (containerd, kubelet, kube-scheduler; root only) and writes
//! `DIR/node.env`: `CTR`, `CONTAINERD_ADDRESS` (to import images), `NODE_VOLUMES`, `NODE_NAME`,
//! `NODE_IP`, as shell assignments.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use mailagent_tests::{ControlPlane, PlaneOptions};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(about = "A local Kubernetes control plane for development and tests")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the plane and stay in the foreground until SIGINT or SIGTERM.
    Up {
        /// Directory for the kubeconfig, certificates, etcd data, audit log and server logs.
        #[arg(long)]
        dir: PathBuf,
        /// Run only etcd and kube-apiserver (no garbage collection, no ReplicaSets or Pods).
        #[arg(long)]
        no_controller_manager: bool,
        /// Also run a node: containerd, kubelet and kube-scheduler (needs root).
        #[arg(long)]
        node: bool,
    },
    /// Print why this machine cannot run a node and exit 1, or exit 0 when it can.
    CanRunNode,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Readiness polling fails until the servers are up; the client's per-request errors are noise.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,kube_client=off"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let (dir, no_controller_manager, node) = match Cli::parse().command {
        Command::Up { dir, no_controller_manager, node } => (dir, no_controller_manager, node),
        Command::CanRunNode => match mailagent_tests::node::unsupported_reason() {
            Some(reason) => {
                println!("{reason}");
                std::process::exit(1);
            }
            None => return Ok(()),
        },
    };
    std::fs::create_dir_all(&dir)?;
    let dir = dir.canonicalize()?;
    let options = PlaneOptions { controller_manager: !no_controller_manager, node };
    let plane = ControlPlane::start_in_with(&dir, options).await?;
    if let Some(node) = plane.node() {
        let env = format!(
            "CTR={}\nCONTAINERD_ADDRESS={}\nNODE_VOLUMES={}\nNODE_NAME={}\nNODE_IP={}\n",
            node.ctr().display(),
            node.containerd_socket().display(),
            node.volumes_dir().display(),
            mailagent_tests::node::NODE_NAME,
            mailagent_tests::node::NODE_IP,
        );
        std::fs::write(dir.join("node.env"), env)?;
    }
    println!("{}", plane.kubeconfig_path().display());
    mailagent_operator::shutdown_signal().await;
    drop(plane);
    Ok(())
}
