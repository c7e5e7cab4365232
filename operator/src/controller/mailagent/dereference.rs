//! Looks up what the MailAgent references: its AuthPolicy (from the cache) and its credentials
//! Secret (metadata only: the operator never reads mailbox credentials).

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};
use mailagent_crds::authpolicy::keyring_secret_name;
use mailagent_crds::{AuthPolicy, MailAgent};

use super::Context;
use crate::error::{Error, Result};

/// What the agent's references resolved to.
pub struct Refs {
    /// The AuthPolicy, if it exists.
    pub policy: Option<Arc<AuthPolicy>>,
    /// Whether the credentials Secret exists (true when none is referenced).
    pub credentials_found: bool,
    /// Whether the policy's keyring Secret exists (false without a policy).
    pub keyring_found: bool,
}

/// Resolves the agent's references.
pub async fn resolve(agent: &MailAgent, ctx: &Context) -> Result<Refs> {
    let ns = agent.namespace().ok_or(Error::MissingField("metadata.namespace"))?;
    let policy_ref = ObjectRef::new(&agent.spec.auth_policy_ref.name).within(&ns);
    // An AuthPolicy the operator cannot read counts as absent: the agent fails closed.
    let policy = ctx.stores.policies.get(&policy_ref).and_then(|p| p.0.as_ref().ok().cloned().map(Arc::new));
    let credentials_found = match &agent.spec.mailbox.credentials_secret_ref {
        None => true,
        Some(secret) => Api::<Secret>::namespaced(ctx.client.clone(), &ns)
            .get_metadata_opt(&secret.name)
            .await
            .map_err(Error::kube("looking up the credentials Secret"))?
            .is_some(),
    };
    let keyring_found = match &policy {
        None => false,
        Some(_) => Api::<Secret>::namespaced(ctx.client.clone(), &ns)
            .get_metadata_opt(&keyring_secret_name(&agent.spec.auth_policy_ref.name))
            .await
            .map_err(Error::kube("looking up the keyring Secret"))?
            .is_some(),
    };
    Ok(Refs { policy, credentials_found, keyring_found })
}
