//! Pure builders: a validated `MailAgent` (plus what it references) in, Kubernetes objects out.
//! They take only a [`Valid`] agent, which `validate` alone makes, so an invalid spec cannot
//! reach them. No client, no I/O, no clock: everything here is tested without a cluster.

mod config;
mod network;
mod storage;
mod workload;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};
use mailagent_crds::MailAgent;

pub use super::validate::{Inputs, Valid, validate};
pub use config::{RenderedConfig, render_config};
pub use network::{ALL_SURFACES, admit_operator, served, service_name};
pub use storage::pvc_name;

/// Every object a MailAgent owns, as it should be.
#[derive(Clone, Debug, PartialEq)]
pub struct Children {
    /// Identity of the pods; no API token is mounted.
    pub service_account: ServiceAccount,
    /// Settings, named as the runbooks' environment variables.
    pub config_map: ConfigMap,
    /// The workload.
    pub deployment: Deployment,
    /// One Service per served surface.
    pub services: Vec<Service>,
    /// The state volume.
    pub pvc: PersistentVolumeClaim,
    /// Default-deny network policy with the declared exceptions.
    pub network_policy: NetworkPolicy,
    /// The rendered settings and their restart hash (also reported in status).
    pub config: RenderedConfig,
}

/// Builds every child of the agent.
pub fn build(valid: &Valid<'_>) -> Children {
    let agent = valid.agent();
    let config = render_config(valid);
    Children {
        service_account: workload::service_account(agent),
        config_map: config::config_map(agent, &config),
        deployment: workload::deployment(valid, &config),
        services: network::services(agent),
        pvc: storage::pvc(agent),
        network_policy: network::network_policy(agent),
        config,
    }
}

/// Metadata for a child named `name`, labelled and owned by the agent.
pub(crate) fn child_meta(agent: &MailAgent, name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: agent.namespace(),
        labels: Some(crate::labels::child_labels(&agent.name_any())),
        owner_references: Some(vec![owner_ref(agent)]),
        ..ObjectMeta::default()
    }
}

/// The controller owner reference to the agent (garbage collection, watches).
pub(crate) fn owner_ref(agent: &MailAgent) -> OwnerReference {
    agent.controller_owner_ref(&()).expect("a MailAgent from the API server has a name and uid")
}

#[cfg(test)]
pub(crate) mod fixtures {
    use mailagent_crds::{AuthPolicySpec, MailAgent};

    /// A MailAgent as the API server would hand it over (defaults applied, uid set).
    pub fn agent(spec_yaml: &str) -> MailAgent {
        let mut spec: serde_json::Value = serde_yaml::from_str(spec_yaml).unwrap();
        let base: serde_json::Value = serde_yaml::from_str(
            "image: registry.example/mailagent:0.1.0\nauthPolicyRef: {name: policy}\nmailbox: {provider: maildir}\n",
        )
        .unwrap();
        merge(&mut spec, base);
        let mut agent = MailAgent::new("inbox", serde_json::from_value(spec).unwrap());
        agent.metadata.namespace = Some("team".into());
        agent.metadata.uid = Some("0b1c2d3e-0000-4000-8000-000000000001".into());
        agent.metadata.generation = Some(1);
        agent
    }

    pub fn policy(yaml: &str) -> AuthPolicySpec {
        serde_yaml::from_str(yaml).unwrap()
    }

    /// The agent as `validate` passes it on; panics on a fixture that is not valid.
    pub fn valid<'a>(agent: &'a MailAgent, policy: Option<&'a AuthPolicySpec>) -> super::Valid<'a> {
        super::validate(super::Inputs { agent, policy }).expect("a valid fixture")
    }

    fn merge(into: &mut serde_json::Value, defaults: serde_json::Value) {
        if let (Some(into), serde_json::Value::Object(defaults)) = (into.as_object_mut(), defaults) {
            for (k, v) in defaults {
                into.entry(k).or_insert(v);
            }
        }
    }
}
