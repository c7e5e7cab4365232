//! Prints, as YAML, every object the operator renders for the MailAgents and AuthPolicies in the
//! given files (what `hack/policy-scan.sh` hands trivy and checkov). The same pure builders the
//! controllers apply, with no cluster: each object gets a placeholder uid, and an AuthPolicy is
//! rendered in its first state (no keys minted yet, so no key material appears).
//!
//!   cargo run -q -p mailagent-operator --example render -- hack/samples/*.yaml > rendered.yaml

use std::collections::BTreeMap;

use anyhow::Context as _;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt as _;
use mailagent_crds::{AuthPolicy, MailAgent};
use mailagent_operator::controller::authpolicy::build as policy_build;
use mailagent_operator::controller::authpolicy::material::SignerState;
use mailagent_operator::controller::mailagent::build::{Inputs, build};
use mailagent_operator::controller::mailagent::validate::validate;
use serde::Deserialize as _;

fn main() -> anyhow::Result<()> {
    let mut agents = Vec::new();
    let mut policies = BTreeMap::new();
    for (index, path) in std::env::args().skip(1).enumerate() {
        let text = std::fs::read_to_string(&path).with_context(|| path.clone())?;
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value = serde_yaml::Value::deserialize(doc).with_context(|| path.clone())?;
            let uid = format!("00000000-0000-4000-8000-{index:012}");
            match value.get("kind").and_then(|k| k.as_str()) {
                Some("MailAgent") => {
                    let mut agent: MailAgent = serde_yaml::from_value(value).with_context(|| path.clone())?;
                    agent.metadata.uid = Some(uid);
                    agents.push(agent);
                }
                Some("AuthPolicy") => {
                    let mut policy: AuthPolicy = serde_yaml::from_value(value).with_context(|| path.clone())?;
                    policy.metadata.uid = Some(uid);
                    policies.insert((policy.namespace(), policy.name_any()), policy);
                }
                _ => {}
            }
        }
    }
    let mut out = Vec::<serde_json::Value>::new();
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::now());
    let state = SignerState::default();
    for policy in policies.values() {
        out.push(serde_json::to_value(policy_build::rotator_service_account(policy))?);
        out.push(serde_json::to_value(policy_build::rotator_role(policy))?);
        out.push(serde_json::to_value(policy_build::rotator_role_binding(policy))?);
        out.push(serde_json::to_value(policy_build::rotator_cron_job(
            policy,
            &state,
            "localhost/mailagent-operator:0.1.0",
            mailagent_operator::shard::BASE_NAME,
        ))?);
        out.push(serde_json::to_value(policy_build::jwks_config_map(policy, &state, &now))?);
    }
    for agent in &agents {
        let policy = policies.get(&(agent.namespace(), agent.spec.auth_policy_ref.name.clone()));
        // The controller's own path: validate, then build from what validation returns.
        let valid = validate(Inputs { agent, policy: policy.map(|p| &p.spec) })
            .map_err(|problem| anyhow::anyhow!("{}: {problem:?}", agent.name_any()))?;
        let children = build(&valid);
        out.push(serde_json::to_value(&children.service_account)?);
        out.push(serde_json::to_value(&children.config_map)?);
        out.push(serde_json::to_value(&children.deployment)?);
        for service in &children.services {
            out.push(serde_json::to_value(service)?);
        }
        out.push(serde_json::to_value(&children.pvc)?);
        out.push(serde_json::to_value(&children.network_policy)?);
    }
    for object in out {
        print!("---\n{}", serde_yaml::to_string(&object)?);
    }
    Ok(())
}
