//! What a policy has published (its keyring Secret, its JWKS ConfigMap and one Secret per API key
//! client) is not watched: the operator may only `get` Secrets, since a watch would need `list`
//! on every Secret in the cluster. Deleted by hand, one would otherwise come back only at the
//! policy's next reconcile, up to `RESYNC` (an hour) away, while agents report `KeyringNotFound`
//! and new pods of a client wait for their key file. So every `RECHECK` each published policy's
//! objects are looked up (metadata only, a few policies at a time), and a policy that lost one is
//! reconciled, which publishes it again with the same keys.

use std::time::Duration;

use futures::{Stream, StreamExt, stream};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource, ResourceExt};
use mailagent_crds::AuthPolicy;
use mailagent_crds::authpolicy::KeyPurpose;
use mailagent_crds::conditions;
use mailagent_crds::contract::KeyState;
use mailagent_crds::names;
use tracing::{info, warn};

use crate::shard::Shard;

/// How often a published policy's objects are looked up.
pub const RECHECK: Duration = Duration::from_secs(30);

/// Policies looked up at once. One after another, a pass over about 10,000 policies would take
/// longer than `RECHECK` (a few milliseconds per GET); a handful in flight keeps it well inside,
/// without a burst the API server's priority and fairness would have to queue.
const LOOKUPS_IN_FLIGHT: usize = 8;

/// One object a policy publishes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Published {
    Secret(String),
    ConfigMap(String),
}

/// What `policy` has published, by its status: nothing before its first keys (revision 0), then
/// the keyring and the JWKS, and a client Secret for each client with an Active key (a revoked
/// client without a replacement has none). Nothing for an invalid spec either: its reconcile
/// publishes nothing, so waking it would only repeat itself every `RECHECK`.
pub fn expected(policy: &AuthPolicy) -> Vec<Published> {
    let Some(status) = policy.status.as_ref().filter(|s| s.revision > 0) else { return Vec::new() };
    if conditions::find(&status.conditions, conditions::READY).is_some_and(|c| c.reason == "InvalidSpec") {
        return Vec::new();
    }
    let name = policy.name_any();
    let mut objects =
        vec![Published::Secret(names::keyring_secret(&name)), Published::ConfigMap(names::jwks_config_map(&name))];
    let mut clients: Vec<&str> = status
        .keys
        .iter()
        .filter(|k| k.purpose == KeyPurpose::ApiKey && k.state == KeyState::Active)
        .filter_map(|k| k.client.as_deref())
        .collect();
    clients.sort_unstable();
    clients.dedup();
    objects.extend(clients.into_iter().map(|client| Published::Secret(names::client_secret(&name, client))));
    objects
}

/// Every `RECHECK`, the policies of this shard (in `store`) that lost a published object, each as
/// soon as its lookups find the loss.
pub fn losses(store: Store<AuthPolicy>, client: Client, shard: Shard) -> impl Stream<Item = ObjectRef<AuthPolicy>> {
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + RECHECK, RECHECK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let ticks = stream::unfold(interval, |mut interval| async move {
        interval.tick().await;
        Some(((), interval))
    });
    ticks.flat_map(move |_| {
        let client = client.clone();
        let owned: Vec<_> = store.state().into_iter().filter(|p| shard.owns(p.meta())).collect();
        stream::iter(owned)
            .map(move |policy| {
                let client = client.clone();
                async move {
                    let missing = first_missing(&client, &policy).await?;
                    info!(policy = %policy.name_any(), namespace = ?policy.namespace(), ?missing,
                        "a published object is gone; publishing it again");
                    Some(ObjectRef::from_obj(&*policy))
                }
            })
            .buffer_unordered(LOOKUPS_IN_FLIGHT)
            .filter_map(std::future::ready)
    })
}

/// The first object `policy` published that the API server no longer has. A failed lookup counts
/// as present: it is retried at the next tick, and a reconcile would fail the same way.
async fn first_missing(client: &Client, policy: &AuthPolicy) -> Option<Published> {
    let ns = policy.namespace()?;
    for object in expected(policy) {
        let found = match &object {
            Published::Secret(name) => {
                Api::<Secret>::namespaced(client.clone(), &ns).get_metadata_opt(name).await.map(|m| m.is_some())
            }
            Published::ConfigMap(name) => {
                Api::<ConfigMap>::namespaced(client.clone(), &ns).get_metadata_opt(name).await.map(|m| m.is_some())
            }
        };
        match found {
            Ok(true) => {}
            Ok(false) => return Some(object),
            Err(error) => {
                warn!(%error, ?object, "could not look up a published object");
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use mailagent_crds::authpolicy::{AuthPolicyStatus, KeyStatus};

    use super::*;

    fn key(client: Option<&str>, purpose: KeyPurpose, state: KeyState) -> KeyStatus {
        KeyStatus {
            kid: "k".into(),
            purpose,
            client: client.map(Into::into),
            state,
            fingerprint: "sha256:000000000000".into(),
            created_at: None,
            activates_at: None,
            expires_at: None,
        }
    }

    fn policy(revision: i64, keys: Vec<KeyStatus>) -> AuthPolicy {
        let mut policy: AuthPolicy =
            serde_yaml::from_str("apiVersion: mailagent.dev/v1alpha1\nkind: AuthPolicy\nmetadata: {name: p, namespace: mail}\nspec: {mode: api_key}")
                .unwrap();
        policy.status = Some(AuthPolicyStatus { revision, keys, ..Default::default() });
        policy
    }

    #[test]
    fn a_policy_expects_what_its_status_says_it_published() {
        assert_eq!(expected(&policy(0, vec![])), vec![], "nothing before the first keys");
        let keys = vec![
            key(Some("ci"), KeyPurpose::ApiKey, KeyState::Active),
            key(Some("ci"), KeyPurpose::ApiKey, KeyState::Verifying),
            key(Some("ci"), KeyPurpose::ApiKey, KeyState::Active),
            key(Some("revoked"), KeyPurpose::ApiKey, KeyState::Revoked),
            key(Some("next"), KeyPurpose::ApiKey, KeyState::Staged),
            key(None, KeyPurpose::Jwt, KeyState::Active),
        ];
        let valid = policy(3, keys);
        assert_eq!(
            expected(&valid),
            vec![
                Published::Secret(names::keyring_secret("p")),
                Published::ConfigMap(names::jwks_config_map("p")),
                Published::Secret(names::client_secret("p", "ci")),
            ]
        );
        let mut invalid = valid;
        let condition = conditions::DesiredCondition::not(conditions::READY, "InvalidSpec", "bad schedule");
        let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
        conditions::set_condition(&mut invalid.status.as_mut().unwrap().conditions, &condition, Some(1), now);
        assert_eq!(expected(&invalid), vec![], "an invalid spec publishes nothing");
    }
}
