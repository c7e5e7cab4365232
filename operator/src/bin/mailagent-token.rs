//! `mailagent-token`: mints a JWT with an AuthPolicy's Active signing key and prints the token
//! alone on stdout, so `$(mailagent-token ...)` works. The key is read through the kubeconfig
//! (the policy and its `<policy>-signer` Secret), or from `--keyring-dir` on a laptop.

use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client};
use mailagent_crds::authpolicy::signer_secret_name;
use mailagent_crds::contract::files;
use mailagent_crds::{AuthPolicy, AuthPolicySpec, Scope};
use mailagent_operator::controller::authpolicy::material::SignerState;
use mailagent_operator::token::{Request, mint};

#[derive(Parser, Debug)]
#[command(name = "mailagent-token", about = "Mint a JWT with an AuthPolicy's Active key; prints only the token")]
struct Args {
    /// The policy, as NAMESPACE/NAME.
    #[arg(long)]
    policy: String,
    /// The token's subject (`sub`).
    #[arg(long)]
    sub: String,
    /// The audience (`aud`); must be one of the policy's.
    #[arg(long)]
    aud: String,
    /// Lifetime, e.g. 15m; at most the policy's jwt.maxTokenLifetime (default 15m or less).
    #[arg(long)]
    ttl: Option<String>,
    /// A scope to grant; repeat for more. Each must be in the policy's scopes.
    #[arg(long = "scope", required = true)]
    scopes: Vec<String>,
    /// Read `signer.json` and the policy (`policy.yaml`, an AuthPolicy or its spec) from this
    /// directory instead of the cluster.
    #[arg(long)]
    keyring_dir: Option<std::path::PathBuf>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    match run(Args::parse()).await {
        Ok(token) => println!("{token}"),
        Err(error) => {
            eprintln!("mailagent-token: {error:#}");
            std::process::exit(1);
        }
    }
}

async fn run(args: Args) -> anyhow::Result<String> {
    let Some((ns, name)) = args.policy.split_once('/') else { bail!("--policy must be NAMESPACE/NAME") };
    let (spec, state) = match &args.keyring_dir {
        Some(dir) => from_dir(dir)?,
        None => from_cluster(ns, name).await?,
    };
    let ttl = args
        .ttl
        .as_deref()
        .map(|t| t.parse::<kube::core::Duration>().map(Duration::from).map_err(|e| anyhow::anyhow!("--ttl {t:?}: {e}")))
        .transpose()?;
    let scopes = args
        .scopes
        .iter()
        .map(|s| s.parse::<Scope>().map_err(|e| anyhow::anyhow!("--scope {s:?}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64;
    let request = Request { subject: args.sub, audience: args.aud, ttl, scopes, now };
    mint(&spec, &state, &request).map_err(|e| anyhow::anyhow!(e))
}

async fn from_cluster(ns: &str, name: &str) -> anyhow::Result<(AuthPolicySpec, SignerState)> {
    let client = Client::try_default().await.context("connecting with the kubeconfig")?;
    let policy = Api::<AuthPolicy>::namespaced(client.clone(), ns)
        .get(name)
        .await
        .with_context(|| format!("reading AuthPolicy {ns}/{name}"))?;
    let secret = Api::<Secret>::namespaced(client, ns)
        .get(&signer_secret_name(name))
        .await
        .context("reading the signer Secret")?;
    let bytes = secret
        .data
        .and_then(|d| d.get(files::SIGNER_STATE).map(|b| b.0.clone()))
        .context("the signer Secret has no signer.json")?;
    Ok((policy.spec, serde_json::from_slice(&bytes).context("parsing signer.json")?))
}

fn from_dir(dir: &std::path::Path) -> anyhow::Result<(AuthPolicySpec, SignerState)> {
    let state = std::fs::read(dir.join(files::SIGNER_STATE))
        .with_context(|| format!("reading {}/signer.json", dir.display()))?;
    let policy = std::fs::read_to_string(dir.join("policy.yaml"))
        .with_context(|| format!("reading {}/policy.yaml", dir.display()))?;
    let value: serde_json::Value = serde_yaml::from_str(&policy).context("parsing policy.yaml")?;
    let spec = value.get("spec").cloned().unwrap_or(value);
    Ok((
        serde_json::from_value(spec).context("policy.yaml is not an AuthPolicy")?,
        serde_json::from_slice(&state).context("parsing signer.json")?,
    ))
}
