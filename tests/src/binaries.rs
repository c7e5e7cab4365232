//! Where the Kubernetes binaries come from: `KUBE_APISERVER_BIN` (and `KUBE_CONTROLLER_MANAGER_BIN`),
//! or the per-machine cache that `hack/control-plane-build.sh` fills, building it on first use.

use std::path::PathBuf;

use anyhow::{Context as _, bail};

/// The kube-apiserver binary.
pub fn kube_apiserver() -> anyhow::Result<PathBuf> {
    match std::env::var_os("KUBE_APISERVER_BIN") {
        Some(path) => Ok(path.into()),
        None => Ok(build_cache()?.join("kube-apiserver")),
    }
}

/// The kube-controller-manager binary: `KUBE_CONTROLLER_MANAGER_BIN`, else the one beside
/// kube-apiserver (the build script makes both).
pub fn kube_controller_manager() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("KUBE_CONTROLLER_MANAGER_BIN") {
        return Ok(path.into());
    }
    let apiserver = kube_apiserver()?;
    let dir = apiserver.parent().context("kube-apiserver path has no directory")?;
    Ok(dir.join("kube-controller-manager"))
}

/// Runs the build script, which prints the cache directory (at once when it is already built).
fn build_cache() -> anyhow::Result<PathBuf> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../hack/control-plane-build.sh");
    let output = std::process::Command::new("bash")
        .arg(&script)
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !output.status.success() {
        bail!("{} failed ({})", script.display(), output.status);
    }
    Ok(PathBuf::from(String::from_utf8(output.stdout)?.trim()))
}

/// A container image built by `hack/image-build.sh` (cached by input): its reference and the
/// tarball to import into a node's containerd.
pub fn image(name: &str) -> anyhow::Result<(String, PathBuf)> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../hack/image-build.sh");
    let output = std::process::Command::new("bash")
        .arg(&script)
        .arg(name)
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !output.status.success() {
        bail!("{} {name} failed ({})", script.display(), output.status);
    }
    let stdout = String::from_utf8(output.stdout)?;
    let line = stdout.lines().find_map(|l| l.strip_prefix(&format!("{name}="))).context("no image line")?;
    let (reference, tarball) = line.split_once(' ').context("image line is `name=ref tarball`")?;
    Ok((reference.to_owned(), PathBuf::from(tarball)))
}

/// The tarball of an image built by `hack/image-build.sh`.
pub fn image_tarball(name: &str) -> anyhow::Result<PathBuf> {
    Ok(image(name)?.1)
}

/// A binary of this workspace from the debug build (`CARGO_TARGET_DIR` or `target/`), which the
/// make targets that need it build first (`make e2e`, `make bench`).
pub fn cargo_bin(name: &str) -> anyhow::Result<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    let path = target.join("debug").join(name);
    if !path.exists() {
        bail!("{} not found: run `cargo build --bins` first", path.display());
    }
    Ok(path)
}
