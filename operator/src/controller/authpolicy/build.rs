//! Pure builders: the signer document in, the objects that publish it out (keyring Secret, JWKS
//! ConfigMap, client Secrets) plus the rotation executor (ServiceAccount, Role, RoleBinding,
//! CronJob). No client, no clock.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, JobSpec, JobTemplateSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMap, Container, PodSecurityContext, PodSpec, PodTemplateSpec, ResourceRequirements,
    SeccompProfile, Secret, SecurityContext, ServiceAccount,
};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::{Resource, ResourceExt};
use mailagent_crds::authpolicy::{
    JwtAlgorithm, KeyPurpose, client_secret_name, jwks_config_map_name, keyring_secret_name, rotator_name,
    signer_secret_name,
};
use mailagent_crds::contract::{ApiKeyEntry, JwtKeyEntry, KEYRING_SCHEMA, KeyState, Keyring, files};
use mailagent_crds::{AuthPolicy, AuthPolicySpec};

use super::material::{self, SignerState, alg_name};
use super::plan;
use crate::labels::MANAGED_BY;

/// Which policy a generated object belongs to.
pub const POLICY_LABEL: &str = "mailagent.dev/policy";

/// Labels of everything generated for `policy`: the operator's own, never the policy's (so Argo
/// CD or Flux tracking labels are not copied and the objects are neither pruned nor diffed).
pub fn labels(policy: &str, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/managed-by".to_owned(), MANAGED_BY.to_owned()),
        ("app.kubernetes.io/component".to_owned(), component.to_owned()),
        (POLICY_LABEL.to_owned(), policy.to_owned()),
    ])
}

fn meta(policy: &AuthPolicy, name: String, component: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: policy.namespace(),
        labels: Some(labels(&policy.name_any(), component)),
        owner_references: policy.controller_owner_ref(&()).map(|o| vec![o]),
        ..ObjectMeta::default()
    }
}

/// The signer Secret holding `state`; `resource_version` makes the write conditional.
pub fn signer_secret(policy: &AuthPolicy, state: &SignerState, resource_version: Option<String>) -> Secret {
    let mut metadata = meta(policy, signer_secret_name(&policy.name_any()), "signer");
    metadata.resource_version = resource_version;
    let json = serde_json::to_vec(state).expect("the signer document serializes");
    Secret {
        metadata,
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([(files::SIGNER_STATE.to_owned(), ByteString(json))])),
        ..Secret::default()
    }
}

/// The verifier's view: every valid key, API keys as hashes, HS* secrets, public keys only.
pub fn keyring(spec: &AuthPolicySpec, state: &SignerState, now: &Time) -> Keyring {
    let scopes_of = |client: &str| {
        spec.api_keys
            .iter()
            .find(|c| c.name == client)
            .map(|c| c.scopes.iter().filter(|s| spec.scopes.contains(s)).copied().collect())
            .unwrap_or_default()
    };
    let not_after = |k: &material::KeyRecord| k.expires_at.as_ref().map(|t| t.0.to_string());
    let mut keyring = Keyring { schema: KEYRING_SCHEMA, revision: state.revision, ..Keyring::default() };
    for key in state.keys.iter().filter(|k| k.valid_at(now)) {
        match key.chain.purpose {
            KeyPurpose::ApiKey => {
                let (Some(client), Some(secret)) = (&key.chain.client, key.secret_bytes()) else { continue };
                keyring.api_keys.push(ApiKeyEntry {
                    kid: key.kid.clone(),
                    client: client.clone(),
                    sha256: material::api_key_sha256(&secret),
                    scopes: scopes_of(client),
                    state: key.state,
                    not_after: not_after(key),
                });
            }
            KeyPurpose::Jwt => {
                let Some(alg) = key.alg else { continue };
                let hmac = matches!(alg, JwtAlgorithm::HS256 | JwtAlgorithm::HS384 | JwtAlgorithm::HS512);
                keyring.jwt_keys.push(JwtKeyEntry {
                    kid: key.kid.clone(),
                    alg: alg_name(alg).to_owned(),
                    // A verifier needs the HMAC secret itself; for asymmetric keys only the public half.
                    secret: if hmac { key.secret.clone() } else { None },
                    public_key_pem: if hmac { None } else { key.public_key_pem.clone() },
                    state: key.state,
                    not_after: not_after(key),
                });
            }
        }
    }
    keyring
}

/// The keyring Secret every MailAgent referencing the policy mounts.
pub fn keyring_secret(policy: &AuthPolicy, state: &SignerState, now: &Time) -> Secret {
    let json = serde_json::to_vec(&keyring(&policy.spec, state, now)).expect("the keyring serializes");
    Secret {
        metadata: meta(policy, keyring_secret_name(&policy.name_any()), "keyring"),
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([(files::KEYRING.to_owned(), ByteString(json))])),
        ..Secret::default()
    }
}

/// The public JWT keys (ES256, EdDSA) as a JWKS; HMAC keys are never published.
pub fn jwks_config_map(policy: &AuthPolicy, state: &SignerState, now: &Time) -> ConfigMap {
    let keys: Vec<_> = state.keys.iter().filter(|k| k.valid_at(now)).filter_map(material::jwk).collect();
    let jwks = serde_json::json!({ "keys": keys }).to_string();
    ConfigMap {
        metadata: meta(policy, jwks_config_map_name(&policy.name_any()), "jwks"),
        data: Some(BTreeMap::from([(files::JWKS.to_owned(), jwks)])),
        ..ConfigMap::default()
    }
}

/// Each API key client's Secret with its Active key; only Active keys are ever handed out.
pub fn client_secrets(policy: &AuthPolicy, state: &SignerState) -> Vec<Secret> {
    policy
        .spec
        .api_keys
        .iter()
        .filter_map(|client| {
            let key = state.active(&material::Chain::client(&client.name))?;
            let secret = key.secret_bytes()?;
            Some(Secret {
                metadata: meta(policy, client_secret_name(&policy.name_any(), &client.name), "client-key"),
                type_: Some("Opaque".into()),
                data: Some(BTreeMap::from([
                    (files::CLIENT_API_KEY.to_owned(), ByteString(secret)),
                    (files::CLIENT_KID.to_owned(), ByteString(key.kid.clone().into_bytes())),
                ])),
                ..Secret::default()
            })
        })
        .collect()
}

/// The rotation executor's identity. Its token is mounted: the Job talks to the API server.
pub fn rotator_service_account(policy: &AuthPolicy) -> ServiceAccount {
    ServiceAccount { metadata: meta(policy, rotator_name(&policy.name_any()), "rotator"), ..ServiceAccount::default() }
}

/// What the executor may touch: this policy's Secrets, JWKS and status, by name, and nothing it
/// could create. The operator pre-creates every Secret, so the Role needs no `create` (which
/// RBAC cannot limit by name); no `escalate`, `bind`, `list`, `watch` or `delete` either.
pub fn rotator_role(policy: &AuthPolicy) -> Role {
    let name = policy.name_any();
    let mut secrets = vec![signer_secret_name(&name), keyring_secret_name(&name)];
    secrets.extend(policy.spec.api_keys.iter().map(|c| client_secret_name(&name, &c.name)));
    let rule = |group: &str, resource: &str, verbs: &[&str], names: Vec<String>| PolicyRule {
        api_groups: Some(vec![group.to_owned()]),
        resources: Some(vec![resource.to_owned()]),
        verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
        resource_names: Some(names),
        ..PolicyRule::default()
    };
    Role {
        metadata: meta(policy, rotator_name(&name), "rotator"),
        rules: Some(vec![
            rule("", "secrets", &["get", "patch"], secrets),
            rule("", "configmaps", &["get", "patch"], vec![jwks_config_map_name(&name)]),
            rule(mailagent_crds::GROUP, "authpolicies", &["get"], vec![name.clone()]),
            rule(mailagent_crds::GROUP, "authpolicies/status", &["get", "patch"], vec![name]),
        ]),
    }
}

/// Binds the Role to the executor's ServiceAccount.
pub fn rotator_role_binding(policy: &AuthPolicy) -> RoleBinding {
    let name = rotator_name(&policy.name_any());
    RoleBinding {
        metadata: meta(policy, name.clone(), "rotator"),
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Role".into(),
            name: name.clone(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name,
            namespace: policy.namespace(),
            ..Subject::default()
        }]),
    }
}

/// Minutes between executor runs: a tenth of the overlap, between 1 and 15 minutes, so a
/// promotion or retirement is late by at most that (late is safe: keys stay valid longer).
pub fn tick_minutes(spec: &AuthPolicySpec) -> u32 {
    let overlap = std::time::Duration::from(plan::rotation(spec).overlap).as_secs() / 60;
    [15, 10, 5, 2, 1].into_iter().find(|m| u64::from(*m) * 10 <= overlap).unwrap_or(1)
}

/// The CronJob that runs `mailagent-operator rotate` for this policy: one step per run.
///
/// `suspend` mirrors `rotation.suspend`, except while a rotation is in flight (a Staged or
/// Verifying key, or a manual nonce not yet handled), which must be allowed to finish.
/// `manager`: the owning shard's field manager, which the Job writes under too (passed only when
/// it is not the unsharded default, so an unsharded CronJob is as it always was).
pub fn rotator_cron_job(policy: &AuthPolicy, state: &SignerState, image: &str, manager: &str) -> CronJob {
    let name = policy.name_any();
    let ns = policy.namespace().unwrap_or_default();
    let suspended = policy.spec.rotation.as_ref().is_some_and(|r| r.suspend);
    let in_flight = state.keys.iter().any(|k| matches!(k.state, KeyState::Staged | KeyState::Verifying))
        || policy
            .annotations()
            .get(mailagent_crds::authpolicy::ROTATE_ANNOTATION)
            .is_some_and(|n| state.handled_rotate_nonce.as_ref() != Some(n));
    let minutes = tick_minutes(&policy.spec);
    let schedule = if minutes == 1 { "* * * * *".to_owned() } else { format!("*/{minutes} * * * *") };
    let container = Container {
        name: "rotate".into(),
        image: Some(image.to_owned()),
        args: Some(rotate_args(ns, name.clone(), manager)),
        env: Some(vec![k8s_openapi::api::core::v1::EnvVar {
            name: "LOG_FORMAT".into(),
            value: Some("json".into()),
            ..Default::default()
        }]),
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_owned(), Quantity("10m".into())),
                ("memory".to_owned(), Quantity("32Mi".into())),
            ])),
            limits: Some(BTreeMap::from([("memory".to_owned(), Quantity("64Mi".into()))])),
            ..Default::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), ..Default::default() }),
            seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".into(), ..Default::default() }),
            ..Default::default()
        }),
        ..Container::default()
    };
    let pod = PodSpec {
        service_account_name: Some(rotator_name(&name)),
        automount_service_account_token: Some(true),
        restart_policy: Some("Never".into()),
        enable_service_links: Some(false),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(65532),
            seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".into(), ..Default::default() }),
            ..Default::default()
        }),
        containers: vec![container],
        ..PodSpec::default()
    };
    CronJob {
        metadata: meta(policy, rotator_name(&name), "rotator"),
        spec: CronJobSpec {
            schedule,
            concurrency_policy: Some("Forbid".into()),
            suspend: Some(suspended && !in_flight),
            starting_deadline_seconds: Some(i64::from(minutes) * 60),
            successful_jobs_history_limit: Some(1),
            failed_jobs_history_limit: Some(3),
            job_template: JobTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(labels(&name, "rotator")), ..Default::default() }),
                spec: Some(JobSpec {
                    backoff_limit: Some(2),
                    active_deadline_seconds: Some(120),
                    ttl_seconds_after_finished: Some(3600),
                    template: PodTemplateSpec {
                        metadata: Some(ObjectMeta { labels: Some(labels(&name, "rotator")), ..Default::default() }),
                        spec: Some(pod),
                    },
                    ..JobSpec::default()
                }),
            },
            ..CronJobSpec::default()
        },
        ..CronJob::default()
    }
}

/// The rotation Job's command line.
fn rotate_args(ns: String, policy: String, manager: &str) -> Vec<String> {
    let mut args = vec!["rotate".into(), "--namespace".into(), ns, "--policy".into(), policy];
    if manager != crate::shard::BASE_NAME {
        args.extend(["--field-manager".into(), manager.to_owned()]);
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::authpolicy::plan::{Inputs, Step, execute};

    fn policy(yaml: &str) -> AuthPolicy {
        let mut p = AuthPolicy::new("team-auth", serde_yaml::from_str(yaml).unwrap());
        p.metadata.namespace = Some("team".into());
        p.metadata.uid = Some("0b1c2d3e-0000-4000-8000-000000000002".into());
        p.metadata.labels = Some(BTreeMap::from([("argocd.argoproj.io/instance".into(), "apps".into())]));
        p
    }

    fn minted(p: &AuthPolicy) -> SignerState {
        let now = Time(k8s_openapi::jiff::Timestamp::from_second(1_000_000).unwrap());
        let state = SignerState::default();
        let i = Inputs { spec: &p.spec, state: &state, now: &now, rotate_nonce: None };
        execute(&i, &Step::Mint(plan::chains(&p.spec))).unwrap()
    }

    #[test]
    fn the_keyring_holds_hashes_and_public_keys_and_no_policy_labels() {
        let p = policy(
            "mode: hybrid\napiKeys: [{name: ci, scopes: [mail:scan]}]\njwt: {audiences: [a], algorithms: [ES256]}",
        );
        let state = minted(&p);
        let now = Time(k8s_openapi::jiff::Timestamp::from_second(1_000_001).unwrap());
        let secret = keyring_secret(&p, &state, &now);
        let json = String::from_utf8(secret.data.unwrap()[files::KEYRING].0.clone()).unwrap();
        let api_key = client_secrets(&p, &state)[0].data.as_ref().unwrap()[files::CLIENT_API_KEY].0.clone();
        assert!(!json.contains(std::str::from_utf8(&api_key).unwrap()), "the keyring holds a raw API key");
        assert!(json.contains(&material::api_key_sha256(&api_key)));
        assert!(json.contains("BEGIN PUBLIC KEY") && !json.contains("PRIVATE"), "{json}");
        let jwt = state.keys.iter().find(|k| k.chain.purpose == KeyPurpose::Jwt).unwrap();
        assert!(!json.contains(jwt.secret.as_deref().unwrap()), "the private key reached the keyring");
        let labels = secret.metadata.labels.unwrap();
        assert!(!labels.contains_key("argocd.argoproj.io/instance"), "the policy's labels were copied");
        assert_eq!(labels["app.kubernetes.io/managed-by"], "mailagent-operator");
        assert_eq!(secret.metadata.owner_references.unwrap()[0].kind, "AuthPolicy");
        let jwks = jwks_config_map(&p, &state, &now).data.unwrap()[files::JWKS].clone();
        assert!(jwks.contains("\"kid\":\"jk-") && jwks.contains("P-256"), "{jwks}");
    }

    #[test]
    fn hmac_keys_are_in_the_keyring_but_never_in_the_jwks() {
        let p = policy("mode: jwt\njwt: {audiences: [a]}");
        let state = minted(&p);
        let now = Time(k8s_openapi::jiff::Timestamp::from_second(1_000_001).unwrap());
        let ring = keyring(&p.spec, &state, &now);
        assert!(ring.jwt_keys[0].secret.is_some() && ring.jwt_keys[0].alg == "HS256");
        assert_eq!(jwks_config_map(&p, &state, &now).data.unwrap()[files::JWKS], "{\"keys\":[]}");
    }

    #[test]
    fn the_executor_role_names_every_object_and_cannot_create_or_escalate() {
        let p = policy("mode: api_key\napiKeys: [{name: ci, scopes: [mail:scan]}, {name: bot, scopes: [mail:scan]}]");
        let rules = rotator_role(&p).rules.unwrap();
        for rule in &rules {
            assert!(rule.resource_names.as_ref().is_some_and(|n| !n.is_empty()), "{rule:?}");
            for verb in &rule.verbs {
                assert!(["get", "patch"].contains(&verb.as_str()), "{verb} in {rule:?}");
            }
        }
        let secrets = rules[0].resource_names.clone().unwrap();
        assert_eq!(secrets, ["team-auth-signer", "team-auth-keyring", "team-auth-client-ci", "team-auth-client-bot"]);
        let job = rotator_cron_job(&p, &SignerState::default(), "op:1", crate::shard::BASE_NAME);
        let spec = job.spec;
        assert_eq!(spec.concurrency_policy.as_deref(), Some("Forbid"));
        assert_eq!(spec.schedule, "*/15 * * * *", "a 24h overlap ticks every 15 minutes");
        // The Job writes under the owning shard's field manager; unsharded, its command line is
        // as it always was.
        let args = |job: CronJob| {
            job.spec.job_template.spec.unwrap().template.spec.unwrap().containers[0].args.clone().unwrap()
        };
        let unsharded = args(rotator_cron_job(&p, &SignerState::default(), "op:1", crate::shard::BASE_NAME));
        assert_eq!(unsharded, ["rotate", "--namespace", "team", "--policy", "team-auth"]);
        let sharded = args(rotator_cron_job(&p, &SignerState::default(), "op:1", "mailagent-operator-shard-2"));
        assert_eq!(sharded[5..], ["--field-manager", "mailagent-operator-shard-2"]);
    }

    #[test]
    fn suspend_is_mirrored_unless_a_rotation_is_in_flight() {
        let p = policy("mode: jwt\njwt: {audiences: [a]}\nrotation: {every: 720h, suspend: true}");
        let state = minted(&p);
        assert_eq!(rotator_cron_job(&p, &state, "op", crate::shard::BASE_NAME).spec.suspend, Some(true));
        let mut annotated = p.clone();
        annotated.annotations_mut().insert(mailagent_crds::authpolicy::ROTATE_ANNOTATION.into(), "n1".into());
        assert_eq!(rotator_cron_job(&annotated, &state, "op", crate::shard::BASE_NAME).spec.suspend, Some(false));
    }
}
