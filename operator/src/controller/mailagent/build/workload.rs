//! The ServiceAccount and Deployment: Pod Security Standards `restricted`, secrets mounted as
//! directories (never env, never `subPath`) so rotated keys reach running pods.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, HTTPGetAction,
    PersistentVolumeClaimVolumeSource, PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements,
    SeccompProfile, SecretVolumeSource, SecurityContext, ServiceAccount, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use mailagent_crds::MailAgent;
use mailagent_crds::authpolicy::keyring_secret_name;
use mailagent_crds::contract::{env, http, paths};
use mailagent_crds::mailagent::AccessMode;

use super::config::{RenderedConfig, config_map_name};
use super::{Valid, child_meta, storage::pvc_name};
use crate::labels::{CONFIG_HASH_ANNOTATION, selector_labels};

/// The non-root user the workload image runs as (distroless `nonroot`).
pub const RUN_AS_USER: i64 = 65532;

/// The pods' identity. No API token is mounted: the workload never talks to Kubernetes.
pub fn service_account(agent: &MailAgent) -> ServiceAccount {
    ServiceAccount {
        metadata: child_meta(agent, agent.name_any()),
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    }
}

/// The workload Deployment.
pub fn deployment(valid: &Valid<'_>, config: &RenderedConfig) -> Deployment {
    let agent = valid.agent();
    let name = agent.name_any();
    let spec = &agent.spec;
    // Suspended or without an AuthPolicy: keep everything, run nothing (fail closed).
    let replicas = if spec.suspend || valid.policy().is_none() { 0 } else { spec.replicas };
    // A ReadWriteOnce volume cannot be mounted by an old and a new pod on two nodes, and the
    // state has one writer: replace pods instead of surging.
    let strategy = match spec.storage.access_mode {
        AccessMode::ReadWriteOnce => "Recreate",
        AccessMode::ReadWriteMany => "RollingUpdate",
    };
    let mut pod_labels = crate::labels::child_labels(&name);
    pod_labels.remove("app.kubernetes.io/managed-by");
    Deployment {
        metadata: child_meta(agent, name.clone()),
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            revision_history_limit: Some(3),
            selector: LabelSelector { match_labels: Some(selector_labels(&name)), ..LabelSelector::default() },
            strategy: Some(DeploymentStrategy { type_: Some(strategy.into()), ..DeploymentStrategy::default() }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: Some(BTreeMap::from([(
                        CONFIG_HASH_ANNOTATION.to_owned(),
                        config.restart_hash.clone(),
                    )])),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod_spec(agent)),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}

fn pod_spec(agent: &MailAgent) -> PodSpec {
    let name = agent.name_any();
    // Fields stated even where the value is the default (false, empty): what the operator states,
    // it owns, so another manager that turns on a host namespace or adds an init container sees
    // it taken back by the next apply (see apply::repair).
    PodSpec {
        service_account_name: Some(name),
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        host_network: Some(false),
        host_pid: Some(false),
        host_ipc: Some(false),
        share_process_namespace: Some(false),
        init_containers: Some(vec![]),
        termination_grace_period_seconds: Some(30),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(RUN_AS_USER),
            run_as_group: Some(RUN_AS_USER),
            fs_group: Some(RUN_AS_USER),
            seccomp_profile: Some(runtime_default()),
            ..PodSecurityContext::default()
        }),
        containers: vec![container(agent)],
        volumes: Some(volumes(agent)),
        ..PodSpec::default()
    }
}

fn container(agent: &MailAgent) -> Container {
    let spec = &agent.spec;
    let env_var = |name: &str, value: String| EnvVar { name: name.into(), value: Some(value), ..EnvVar::default() };
    Container {
        name: "mailagent".into(),
        image: Some(spec.image.clone()),
        image_pull_policy: Some(spec.image_pull_policy.as_str().into()),
        ports: Some(vec![ContainerPort {
            name: Some(http::PORT_NAME.into()),
            container_port: i32::from(http::PORT),
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        // Only locations: every setting comes from the mounted ConfigMap, every secret from a
        // mounted Secret, so nothing sensitive is ever in the pod spec.
        env: Some(vec![
            env_var(env::MAILAGENT_CONFIG_DIR, paths::CONFIG_DIR.into()),
            env_var(env::MAILAGENT_KEYRING_DIR, paths::KEYRING_DIR.into()),
            env_var(env::MAILAGENT_CREDENTIALS_DIR, paths::CREDENTIALS_DIR.into()),
            env_var(env::MAILAGENT_STATE_DIR, paths::STATE_DIR.into()),
            env_var(env::MAILAGENT_LISTEN, format!("0.0.0.0:{}", http::PORT)),
            env_var(env::LOG_FORMAT, "json".into()),
        ]),
        resources: Some(spec.resources.clone().unwrap_or_else(default_resources)),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            privileged: Some(false),
            capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), add: Some(vec![]) }),
            seccomp_profile: Some(runtime_default()),
            ..SecurityContext::default()
        }),
        startup_probe: Some(probe(http::HEALTHZ, 2, 30)),
        liveness_probe: Some(probe(http::HEALTHZ, 10, 3)),
        readiness_probe: Some(probe(http::READYZ, 5, 2)),
        volume_mounts: Some(volume_mounts(agent)),
        ..Container::default()
    }
}

fn volume_mounts(agent: &MailAgent) -> Vec<VolumeMount> {
    let mount = |name: &str, path: &str, read_only: bool| VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: Some(read_only),
        ..VolumeMount::default()
    };
    let mut mounts = vec![
        mount("config", paths::CONFIG_DIR, true),
        mount("keyring", paths::KEYRING_DIR, true),
        mount("state", paths::STATE_DIR, false),
        mount("tmp", paths::TMP_DIR, false),
    ];
    if agent.spec.mailbox.credentials_secret_ref.is_some() {
        mounts.push(mount("credentials", paths::CREDENTIALS_DIR, true));
    }
    mounts
}

fn volumes(agent: &MailAgent) -> Vec<Volume> {
    let name = agent.name_any();
    let secret = |volume: &str, secret: String| Volume {
        name: volume.into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret),
            default_mode: Some(0o440),
            optional: Some(false),
            ..SecretVolumeSource::default()
        }),
        ..Volume::default()
    };
    let mut volumes = vec![
        Volume {
            name: "config".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: config_map_name(&name),
                default_mode: Some(0o444),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        },
        secret("keyring", keyring_secret_name(&agent.spec.auth_policy_ref.name)),
        Volume {
            name: "state".into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: pvc_name(&name),
                read_only: Some(false),
            }),
            ..Volume::default()
        },
        Volume {
            name: "tmp".into(),
            empty_dir: Some(EmptyDirVolumeSource {
                medium: Some("Memory".into()),
                size_limit: Some(Quantity("16Mi".into())),
            }),
            ..Volume::default()
        },
    ];
    if let Some(credentials) = &agent.spec.mailbox.credentials_secret_ref {
        volumes.push(secret("credentials", credentials.name.clone()));
    }
    volumes
}

fn probe(path: &str, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String(http::PORT_NAME.into()),
            scheme: Some("HTTP".into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        timeout_seconds: Some(2),
        ..Probe::default()
    }
}

fn runtime_default() -> SeccompProfile {
    SeccompProfile { type_: "RuntimeDefault".into(), ..SeccompProfile::default() }
}

fn default_resources() -> ResourceRequirements {
    let q = |s: &str| Quantity(s.into());
    ResourceRequirements {
        requests: Some(BTreeMap::from([("cpu".into(), q("50m")), ("memory".into(), q("64Mi"))])),
        limits: Some(BTreeMap::from([("memory".into(), q("256Mi"))])),
        ..ResourceRequirements::default()
    }
}

#[cfg(test)]
mod tests {
    use super::super::build;
    use super::super::fixtures::{agent, policy, valid};
    use super::*;

    fn pod(yaml: &str) -> PodSpec {
        let agent = agent(yaml);
        let policy = policy("mode: api_key\napiKeys: [{name: ci, scopes: [mail:scan]}]");
        build(&valid(&agent, Some(&policy))).deployment.spec.unwrap().template.spec.unwrap()
    }

    #[test]
    fn every_container_meets_the_restricted_profile() {
        let pod = pod("{}");
        let pod_sc = pod.security_context.as_ref().unwrap();
        assert_eq!(pod_sc.run_as_non_root, Some(true));
        assert_eq!(pod_sc.seccomp_profile.as_ref().unwrap().type_, "RuntimeDefault");
        assert_eq!(pod.automount_service_account_token, Some(false));
        let all = pod.containers.iter().chain(pod.init_containers.iter().flatten());
        for c in all {
            let sc = c.security_context.as_ref().unwrap();
            assert_eq!(sc.allow_privilege_escalation, Some(false), "{}", c.name);
            assert_eq!(sc.read_only_root_filesystem, Some(true), "{}", c.name);
            assert_eq!(sc.run_as_non_root, Some(true), "{}", c.name);
            assert_eq!(sc.capabilities.as_ref().unwrap().drop.as_deref(), Some(&["ALL".to_owned()][..]));
            assert_eq!(sc.capabilities.as_ref().unwrap().add.as_deref(), Some(&[][..]), "stated empty, so owned");
            assert_eq!(sc.seccomp_profile.as_ref().unwrap().type_, "RuntimeDefault");
            assert!(c.resources.as_ref().unwrap().limits.as_ref().unwrap().contains_key("memory"));
            assert!(c.liveness_probe.is_some() && c.readiness_probe.is_some());
        }
        assert!(pod.volumes.iter().flatten().all(|v| v.host_path.is_none()));
        for host_namespace in [pod.host_network, pod.host_pid, pod.host_ipc] {
            assert_eq!(host_namespace, Some(false), "stated false, so owned and restored");
        }
    }

    #[test]
    fn secrets_are_directories_never_env_or_subpath() {
        let pod = pod("mailbox: {provider: gmail, credentialsSecretRef: {name: gmail-token}}");
        let c = &pod.containers[0];
        assert!(c.env.iter().flatten().all(|e| e.value_from.is_none()), "no secretKeyRef env");
        assert!(c.env_from.is_none());
        assert!(c.volume_mounts.iter().flatten().all(|m| m.sub_path.is_none()));
        let secrets: Vec<_> = pod.volumes.iter().flatten().filter_map(|v| v.secret.as_ref()).collect();
        let names: Vec<_> = secrets.iter().filter_map(|s| s.secret_name.as_deref()).collect();
        assert_eq!(names, ["policy-keyring", "gmail-token"]);
    }

    #[test]
    fn suspend_and_a_missing_policy_scale_to_zero() {
        let replicas = |agent: &MailAgent, with_policy: bool| {
            let policy = policy("mode: api_key\napiKeys: [{name: ci, scopes: [mail:scan]}]");
            build(&valid(agent, with_policy.then_some(&policy))).deployment.spec.unwrap().replicas
        };
        assert_eq!(replicas(&agent("{}"), true), Some(1));
        assert_eq!(replicas(&agent("suspend: true"), true), Some(0));
        assert_eq!(replicas(&agent("{}"), false), Some(0));
    }

    #[test]
    fn single_writer_storage_recreates_instead_of_surging() {
        let strategy = |yaml: &str| {
            let agent = agent(yaml);
            build(&valid(&agent, None)).deployment.spec.unwrap().strategy.unwrap().type_.unwrap()
        };
        assert_eq!(strategy("{}"), "Recreate");
        assert_eq!(strategy("replicas: 2\nstorage: {accessMode: ReadWriteMany}"), "RollingUpdate");
    }
}
