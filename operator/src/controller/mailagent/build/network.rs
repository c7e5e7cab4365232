//! One Service per served surface, and a default-deny NetworkPolicy.
//!
//! A Service per door gives each protocol a stable in-cluster name (`<agent>-mcp`, `<agent>-a2a`,
//! `<agent>-rest`) that can be exposed, routed or removed on its own: turning a surface off
//! removes its Service, so nothing can route to a door that is closed.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use mailagent_crds::MailAgent;
use mailagent_crds::contract::{Surface, http};

use super::child_meta;
use crate::labels::{SURFACE_LABEL, selector_labels};

/// Every surface, in a fixed order.
pub const ALL_SURFACES: [Surface; 3] = [Surface::Rest, Surface::A2a, Surface::Mcp];

/// Name of the Service for one surface.
pub fn service_name(agent: &str, surface: Surface) -> String {
    mailagent_crds::names::service(agent, surface)
}

/// The surfaces the agent serves.
pub fn served(agent: &MailAgent) -> Vec<Surface> {
    let s = &agent.spec.surfaces;
    ALL_SURFACES
        .into_iter()
        .filter(|surface| match surface {
            Surface::Rest => s.rest,
            Surface::A2a => s.a2a,
            Surface::Mcp => s.mcp,
        })
        .collect()
}

/// One ClusterIP Service per served surface.
pub fn services(agent: &MailAgent) -> Vec<Service> {
    let name = agent.name_any();
    served(agent)
        .into_iter()
        .map(|surface| {
            let mut metadata = child_meta(agent, service_name(&name, surface));
            metadata.labels.get_or_insert_default().insert(SURFACE_LABEL.into(), surface.to_string());
            Service {
                metadata,
                spec: Some(ServiceSpec {
                    type_: Some("ClusterIP".into()),
                    selector: Some(selector_labels(&name)),
                    ports: Some(vec![ServicePort {
                        name: Some(http::PORT_NAME.into()),
                        port: i32::from(http::PORT),
                        target_port: Some(IntOrString::String(http::PORT_NAME.into())),
                        protocol: Some("TCP".into()),
                        ..ServicePort::default()
                    }]),
                    ..ServiceSpec::default()
                }),
                status: None,
            }
        })
        .collect()
}

/// Default deny both ways; ingress only from the declared peers to the serving port; egress
/// only DNS plus the declared destinations (by default TCP 443 to public addresses).
pub fn network_policy(agent: &MailAgent) -> NetworkPolicy {
    let name = agent.name_any();
    let network = &agent.spec.network;
    let from = network.ingress_from.clone().unwrap_or_else(|| {
        // Same namespace: an empty pod selector in a peer means "every pod in this namespace".
        vec![NetworkPolicyPeer { pod_selector: Some(LabelSelector::default()), ..NetworkPolicyPeer::default() }]
    });
    let ingress = if from.is_empty() {
        vec![]
    } else {
        vec![NetworkPolicyIngressRule {
            from: Some(from),
            ports: Some(vec![tcp(IntOrString::String(http::PORT_NAME.into()))]),
        }]
    };
    let mut egress = vec![dns_egress()];
    egress.extend(network.egress.clone().unwrap_or_else(default_egress));
    NetworkPolicy {
        metadata: child_meta(agent, name.clone()),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(selector_labels(&name)),
                ..LabelSelector::default()
            }),
            policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
            ingress: Some(ingress),
            egress: Some(egress),
        }),
    }
}

/// The pod label of the operator's own pods (the chart's Deployment).
pub const OPERATOR_POD_LABEL: (&str, &str) = ("app.kubernetes.io/name", "mailagent-operator");

/// Adds an ingress rule admitting the operator's pods in `operator_namespace` to the serving
/// port, so its probes (the `Verified` condition) reach the agent whatever `ingressFrom` says.
/// A separate rule, not a peer added to the declared one: it widens nothing the user declared.
pub fn admit_operator(policy: &mut NetworkPolicy, operator_namespace: &str) {
    let rule = NetworkPolicyIngressRule {
        from: Some(vec![NetworkPolicyPeer {
            namespace_selector: Some(selector("kubernetes.io/metadata.name", operator_namespace)),
            pod_selector: Some(selector(OPERATOR_POD_LABEL.0, OPERATOR_POD_LABEL.1)),
            ..NetworkPolicyPeer::default()
        }]),
        ports: Some(vec![tcp(IntOrString::String(http::PORT_NAME.into()))]),
    };
    if let Some(spec) = policy.spec.as_mut() {
        spec.ingress.get_or_insert_default().push(rule);
    }
}

/// Selects objects carrying one label.
fn selector(key: &str, value: &str) -> LabelSelector {
    LabelSelector { match_labels: Some([(key.to_owned(), value.to_owned())].into()), ..LabelSelector::default() }
}

fn tcp(port: IntOrString) -> NetworkPolicyPort {
    NetworkPolicyPort { port: Some(port), protocol: Some("TCP".into()), end_port: None }
}

/// DNS to the cluster resolver only (kube-system, `k8s-app: kube-dns`), UDP and TCP 53.
fn dns_egress() -> NetworkPolicyEgressRule {
    NetworkPolicyEgressRule {
        to: Some(vec![NetworkPolicyPeer {
            namespace_selector: Some(selector("kubernetes.io/metadata.name", "kube-system")),
            pod_selector: Some(selector("k8s-app", "kube-dns")),
            ..NetworkPolicyPeer::default()
        }]),
        ports: Some(vec![
            NetworkPolicyPort { port: Some(IntOrString::Int(53)), protocol: Some("UDP".into()), end_port: None },
            tcp(IntOrString::Int(53)),
        ]),
    }
}

/// HTTPS to public addresses: Google APIs and one-click unsubscribe endpoints. Private,
/// shared, loopback and link-local ranges (including the cloud metadata address) are excluded,
/// so a hostile link cannot reach in-cluster or node services even if the app-level guard failed.
fn default_egress() -> Vec<NetworkPolicyEgressRule> {
    let block = |cidr: &str, except: &[&str]| NetworkPolicyPeer {
        ip_block: Some(IPBlock { cidr: cidr.into(), except: Some(except.iter().map(|s| (*s).to_owned()).collect()) }),
        ..NetworkPolicyPeer::default()
    };
    vec![NetworkPolicyEgressRule {
        to: Some(vec![
            block(
                "0.0.0.0/0",
                &["10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.168.0.0/16"],
            ),
            block("::/0", &["::1/128", "fc00::/7", "fe80::/10"]),
        ]),
        ports: Some(vec![tcp(IntOrString::Int(443))]),
    }]
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::agent;
    use super::*;

    #[test]
    fn one_service_per_served_surface() {
        let names =
            |yaml: &str| services(&agent(yaml)).into_iter().map(|s| s.metadata.name.unwrap()).collect::<Vec<_>>();
        assert_eq!(names("{}"), ["inbox-rest", "inbox-a2a", "inbox-mcp"]);
        assert_eq!(names("surfaces: {rest: false, a2a: false, mcp: true}"), ["inbox-mcp"]);
    }

    #[test]
    fn network_policy_denies_by_default_and_allows_only_what_is_declared() {
        let policy = network_policy(&agent("{}")).spec.unwrap();
        assert_eq!(policy.policy_types.unwrap(), ["Ingress", "Egress"]);
        let ingress = policy.ingress.unwrap();
        assert_eq!(ingress.len(), 1);
        assert_eq!(ingress[0].ports.as_ref().unwrap()[0].port, Some(IntOrString::String("http".into())));
        let egress = policy.egress.unwrap();
        assert_eq!(egress.len(), 2, "DNS plus HTTPS");
        let https = &egress[1].to.as_ref().unwrap()[0].ip_block.as_ref().unwrap();
        assert!(https.except.as_ref().unwrap().contains(&"169.254.0.0/16".to_owned()), "metadata range excluded");

        let closed = network_policy(&agent("network: {ingressFrom: [], egress: []}")).spec.unwrap();
        assert!(closed.ingress.unwrap().is_empty(), "an empty list admits nobody");
        assert_eq!(closed.egress.unwrap().len(), 1, "only DNS");
    }

    #[test]
    fn the_operator_is_admitted_by_a_rule_of_its_own() {
        let mut policy = network_policy(&agent("network: {ingressFrom: []}"));
        admit_operator(&mut policy, "mailagent-system");
        let ingress = policy.spec.unwrap().ingress.unwrap();
        assert_eq!(ingress.len(), 1, "the declared empty list still admits nobody else");
        let peer = &ingress[0].from.as_ref().unwrap()[0];
        let labels = |s: &Option<LabelSelector>| s.as_ref().unwrap().match_labels.clone().unwrap();
        assert_eq!(labels(&peer.namespace_selector)["kubernetes.io/metadata.name"], "mailagent-system");
        assert_eq!(labels(&peer.pod_selector)["app.kubernetes.io/name"], "mailagent-operator");
        assert_eq!(ingress[0].ports.as_ref().unwrap()[0].port, Some(IntOrString::String("http".into())));
    }
}
