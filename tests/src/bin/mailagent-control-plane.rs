//! `mailagent-control-plane up --dir DIR`: starts a local etcd, kube-apiserver and (unless told
//! not to) kube-controller-manager, writes `DIR/kubeconfig`, prints its path, and runs until SIGINT
//! or SIGTERM, then stops them all. Used by `make run`.

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
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Readiness polling fails until the servers are up; the client's per-request errors are noise.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,kube_client=off"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let Command::Up { dir, no_controller_manager } = Cli::parse().command;
    std::fs::create_dir_all(&dir)?;
    let dir = dir.canonicalize()?;
    let options = PlaneOptions { controller_manager: !no_controller_manager };
    let plane = ControlPlane::start_in_with(&dir, options).await?;
    println!("{}", plane.kubeconfig_path().display());
    mailagent_operator::shutdown_signal().await;
    drop(plane);
    Ok(())
}
