//! `mailagent-control-plane up --dir DIR`: starts a local kube-apiserver and etcd, writes
//! `DIR/kubeconfig`, and runs until SIGINT or SIGTERM. Used by `make run`.

use std::path::PathBuf;

use mailagent_tests::ControlPlane;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = match args.as_slice() {
        [up, flag, dir] if up == "up" && flag == "--dir" => PathBuf::from(dir),
        _ => anyhow::bail!("usage: mailagent-control-plane up --dir DIR"),
    };
    std::fs::create_dir_all(&dir)?;
    let dir = dir.canonicalize()?;
    let plane = ControlPlane::start_in(&dir).await?;
    println!("{}", plane.kubeconfig_path().display());
    mailagent_operator::shutdown_signal().await;
    drop(plane);
    Ok(())
}
