//! Reading and writing the policy's Secrets. Shared by the controller and the `rotate` command.
//!
//! The signer document is written conditionally: create-only when absent, and otherwise with the
//! resourceVersion it was read at, so of two writers that read the same revision only one wins
//! and a step is never applied (or minted) twice. The published objects are derived from it and
//! written by server-side apply only when their content differs.

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use mailagent_crds::AuthPolicy;
use mailagent_crds::authpolicy::{keyring_secret_name, signer_secret_name};
use mailagent_crds::contract::{Keyring, files};

use super::build;
use super::material::SignerState;
use crate::error::{Error, Result};
use crate::handover;

/// The signer document and the resourceVersion it was read at.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub state: SignerState,
    pub resource_version: Option<String>,
    /// Field managers of other operator shards on the Secret: the policy moved here, and the
    /// document is written once more under this shard's name (see `handover.rs`).
    pub other_writers: Vec<String>,
}

/// Reads the signer document; `None` before the first mint.
pub async fn load(client: &Client, manager: &str, ns: &str, policy: &str) -> Result<Option<Loaded>> {
    let secret = Api::<Secret>::namespaced(client.clone(), ns)
        .get_opt(&signer_secret_name(policy))
        .await
        .map_err(Error::kube("reading the signer Secret"))?;
    let Some(secret) = secret else { return Ok(None) };
    let bytes = secret.data.as_ref().and_then(|d| d.get(files::SIGNER_STATE)).map(|b| b.0.clone()).unwrap_or_default();
    let state = serde_json::from_slice(&bytes)
        .map_err(|e| Error::InvalidSpec(format!("the signer Secret is not a signer document: {e}")))?;
    let other_writers = handover::others_live(&secret, manager);
    Ok(Some(Loaded { state, resource_version: secret.resource_version(), other_writers }))
}

/// Whether a conditional write lost to another writer.
pub fn lost_race(error: &Error) -> bool {
    matches!(error, Error::Kube { source: kube::Error::Api(s), .. } if s.code == 409)
}

/// Writes the signer document: created when `resource_version` is `None`, otherwise applied
/// only if the Secret is still at that version. A 409 means another writer won.
pub async fn save(
    client: &Client,
    manager: &str,
    policy: &AuthPolicy,
    state: &SignerState,
    resource_version: Option<String>,
) -> Result<()> {
    let ns = policy.namespace().ok_or(Error::MissingField("metadata.namespace"))?;
    let api = Api::<Secret>::namespaced(client.clone(), &ns);
    match resource_version {
        None => {
            api.create(
                &PostParams { field_manager: Some(manager.into()), ..Default::default() },
                &build::signer_secret(policy, state, None),
            )
            .await
            .map_err(Error::kube("creating the signer Secret"))?;
        }
        Some(rv) => {
            let secret = build::signer_secret(policy, state, Some(rv));
            let live = api
                .patch(
                    &signer_secret_name(&policy.name_any()),
                    &PatchParams::apply(manager).force(),
                    &Patch::Apply(&secret),
                )
                .await
                .map_err(Error::kube("writing the signer Secret"))?;
            release(&api, &live, manager).await?;
        }
    }
    Ok(())
}

/// The revision of the keyring as published, `0` when absent or unreadable.
pub async fn published_revision(client: &Client, ns: &str, policy: &str) -> Result<u64> {
    let secret = Api::<Secret>::namespaced(client.clone(), ns)
        .get_opt(&keyring_secret_name(policy))
        .await
        .map_err(Error::kube("reading the keyring Secret"))?;
    let bytes = secret.and_then(|s| s.data).and_then(|d| d.get(files::KEYRING).map(|b| b.0.clone()));
    Ok(bytes.and_then(|b| serde_json::from_slice::<Keyring>(&b).ok()).map_or(0, |k| k.revision))
}

/// Publishes what verifiers and clients need, in order: the keyring and the JWKS first, then the
/// client Secrets, so nothing is handed out before verifiers can know it. Returns the writes made.
pub async fn publish(
    client: &Client,
    manager: &str,
    policy: &AuthPolicy,
    state: &SignerState,
    now: &Time,
) -> Result<u32> {
    let ns = policy.namespace().ok_or(Error::MissingField("metadata.namespace"))?;
    let secrets = Api::<Secret>::namespaced(client.clone(), &ns);
    let mut writes = 0;
    writes += ensure_secret(&secrets, manager, &build::keyring_secret(policy, state, now)).await?;
    let jwks = build::jwks_config_map(policy, state, now);
    let maps = Api::<ConfigMap>::namespaced(client.clone(), &ns);
    let live = maps.get_opt(&jwks.name_any()).await.map_err(Error::kube("reading the JWKS ConfigMap"))?;
    if live.is_none_or(|l| {
        l.data != jwks.data || l.labels() != jwks.labels() || !handover::others_live(&l, manager).is_empty()
    }) {
        let live = maps
            .patch(&jwks.name_any(), &PatchParams::apply(manager).force(), &Patch::Apply(&jwks))
            .await
            .map_err(Error::kube("publishing the JWKS"))?;
        writes += 1 + release(&maps, &live, manager).await?;
    }
    for secret in build::client_secrets(policy, state) {
        writes += ensure_secret(&secrets, manager, &secret).await?;
    }
    Ok(writes)
}

async fn ensure_secret(api: &Api<Secret>, manager: &str, desired: &Secret) -> Result<u32> {
    let live = api.get_opt(&desired.name_any()).await.map_err(Error::kube("reading a generated Secret"))?;
    if live.is_some_and(|l| {
        l.data == desired.data && l.labels() == desired.labels() && handover::others_live(&l, manager).is_empty()
    }) {
        return Ok(0);
    }
    let live = api
        .patch(&desired.name_any(), &PatchParams::apply(manager).force(), &Patch::Apply(desired))
        .await
        .map_err(Error::kube("publishing a generated Secret"))?;
    Ok(1 + release(api, &live, manager).await?)
}

/// After a policy moved between shards: takes the previous shard's field-manager entries off
/// what this one just wrote (see `handover.rs`). Returns the writes made (0 or 1).
pub async fn release<K>(api: &Api<K>, live: &K, manager: &str) -> Result<u32>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
{
    let released = handover::release_others(api, live, manager)
        .await
        .map_err(Error::kube("taking over an object from another shard"))?;
    Ok(u32::from(released.is_some()))
}
