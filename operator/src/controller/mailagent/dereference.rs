//! Looks up what the MailAgent references: its AuthPolicy (from the cache) and its credentials
//! Secret. Of the credentials the operator reads one thing, and only when the agent names no
//! Gmail quota group: the OAuth client id (not a secret), which names the group by fingerprint.
//! The token and client secret are never kept, logged or written anywhere.
//!
//! The Secret is not watched (see `RECHECK`), so it is looked up again every 30 s (longer on a
//! shard of more than 1,500 agents: `recheck_after`); by its metadata only, with the body read
//! again only when its resourceVersion moved since the group was learnt ([`ClientGroups`]). The
//! policy's keyring Secret is looked up on every reconcile (an agent without credentials is
//! reconciled on its own events and the hourly resync, not every 30 s); it is shared by every
//! agent of the policy, so its presence is remembered briefly ([`RecentKeyrings`]). A deleted
//! keyring is published again by the AuthPolicy controller within 30 s
//! (`authpolicy/published.rs`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};
use mailagent_crds::authpolicy::keyring_secret_name;
use mailagent_crds::contract::files;
use mailagent_crds::quota::{oauth_client_group, oauth_client_id};
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
    /// The Gmail quota group: the one the agent names, else its OAuth client's; `None` for a
    /// Maildir or when neither is known.
    pub quota_group: Option<String>,
}

/// The OAuth client group learnt from each credentials Secret, by namespace and name, with the
/// resourceVersion it was learnt at.
#[derive(Default)]
pub struct ClientGroups(Mutex<HashMap<SecretKey, Learnt>>);

/// A Secret's namespace and name.
type SecretKey = (String, String);
/// The resourceVersion a group was learnt at, and the group (`None`: the Secret names no client).
type Learnt = (String, Option<String>);

impl ClientGroups {
    fn get(&self, ns: &str, name: &str, version: &str) -> Option<Option<String>> {
        let memo = self.0.lock().expect("not poisoned");
        let (seen, group) = memo.get(&(ns.to_owned(), name.to_owned()))?;
        (seen == version).then(|| group.clone())
    }

    fn put(&self, ns: &str, name: &str, version: String, group: Option<String>, bound: usize) {
        let mut memo = self.0.lock().expect("not poisoned");
        // Secrets nobody references any more: dropped wholesale now and then, relearnt on demand.
        if memo.len() > bound {
            memo.clear();
        }
        memo.insert((ns.to_owned(), name.to_owned()), (version, group));
    }
}

/// How long a keyring Secret found present counts as present without asking again.
pub const KEYRING_FRESH: Duration = Duration::from_secs(5);

/// Keyring Secrets recently found present. Every agent of a policy mounts the policy's one keyring
/// Secret, and the operator may only `get` Secrets (it cannot watch them), so without this each
/// reconcile of each agent asked the API server: about 2.5 times per new agent during a rollout,
/// and every 30 s for each agent with Gmail credentials. Only presence is kept, and only for
/// [`KEYRING_FRESH`]: a missing keyring is asked about every time, and a deleted one shows in
/// status at most that much later than it did before.
#[derive(Default)]
pub struct RecentKeyrings(Mutex<HashMap<SecretKey, Instant>>);

impl RecentKeyrings {
    fn fresh(&self, key: &SecretKey, now: Instant) -> bool {
        let found = self.0.lock().expect("not poisoned");
        found.get(key).is_some_and(|at| now.saturating_duration_since(*at) < KEYRING_FRESH)
    }

    fn found(&self, key: SecretKey, now: Instant) {
        let mut found = self.0.lock().expect("not poisoned");
        // Stale entries go whenever one is added: the map holds the policies seen in the last
        // few seconds, not every policy ever seen.
        found.retain(|_, at| now.saturating_duration_since(*at) < KEYRING_FRESH);
        found.insert(key, now);
    }
}

/// Resolves the agent's references.
pub async fn resolve(agent: &MailAgent, ctx: &Context) -> Result<Refs> {
    let ns = agent.namespace().ok_or(Error::MissingField("metadata.namespace"))?;
    let policy_ref = ObjectRef::new(&agent.spec.auth_policy_ref.name).within(&ns);
    // An AuthPolicy the operator cannot read counts as absent: the agent fails closed.
    let policy = ctx.stores.policies.get(&policy_ref).and_then(|p| p.0.as_ref().ok().cloned().map(Arc::new));
    let mailbox = &agent.spec.mailbox;
    let named_group = mailbox.named_quota_group().map(str::to_owned);
    let gmail = mailbox.is_gmail();
    let secrets = Api::<Secret>::namespaced(ctx.client.clone(), &ns);
    let (credentials_found, client_group) = match &mailbox.credentials_secret_ref {
        None => (true, None),
        // Only the OAuth client id is wanted from the body (see the module comment).
        Some(secret) if gmail && named_group.is_none() => {
            let meta = secrets
                .get_metadata_opt(&secret.name)
                .await
                .map_err(Error::kube("looking up the credentials Secret"))?;
            match meta.and_then(|m| m.resource_version()) {
                None => (false, None),
                Some(version) => match ctx.client_groups.get(&ns, &secret.name, &version) {
                    Some(group) => (true, group),
                    None => {
                        let found = secrets
                            .get_opt(&secret.name)
                            .await
                            .map_err(Error::kube("looking up the credentials Secret"))?;
                        let group = found.as_ref().and_then(|s| {
                            let file = |name: &str| s.data.as_ref().and_then(|d| d.get(name)).map(|b| b.0.as_slice());
                            oauth_client_id(file(files::GMAIL_CLIENT_SECRET), file(files::GMAIL_TOKEN))
                                .map(|id| oauth_client_group(&id))
                        });
                        if let Some(version) = found.as_ref().and_then(|s| s.resource_version()) {
                            let bound = 2 * ctx.agents.len() + 16;
                            ctx.client_groups.put(&ns, &secret.name, version, group.clone(), bound);
                        }
                        (found.is_some(), group)
                    }
                },
            }
        }
        Some(secret) => (
            secrets
                .get_metadata_opt(&secret.name)
                .await
                .map_err(Error::kube("looking up the credentials Secret"))?
                .is_some(),
            None,
        ),
    };
    let quota_group = if gmail { named_group.or(client_group) } else { None };
    let keyring_found = match &policy {
        None => false,
        Some(_) => keyring_present(ctx, &ns, keyring_secret_name(&agent.spec.auth_policy_ref.name)).await?,
    };
    Ok(Refs { policy, credentials_found, keyring_found, quota_group })
}

/// Whether the keyring Secret exists: found in the last few seconds, or found now.
async fn keyring_present(ctx: &Context, ns: &str, name: String) -> Result<bool> {
    let key = (ns.to_owned(), name);
    if ctx.keyrings.fresh(&key, Instant::now()) {
        return Ok(true);
    }
    let found = Api::<Secret>::namespaced(ctx.client.clone(), ns)
        .get_metadata_opt(&key.1)
        .await
        .map_err(Error::kube("looking up the keyring Secret"))?
        .is_some();
    if found {
        ctx.keyrings.found(key, Instant::now());
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keyring_found_counts_as_present_for_a_few_seconds_and_a_missing_one_never() {
        let recent = RecentKeyrings::default();
        let key = |name: &str| ("mail".to_owned(), name.to_owned());
        let start = Instant::now();
        assert!(!recent.fresh(&key("p-keyring"), start), "never found: asked");
        recent.found(key("p-keyring"), start);
        assert!(recent.fresh(&key("p-keyring"), start + KEYRING_FRESH / 2));
        assert!(!recent.fresh(&key("q-keyring"), start + KEYRING_FRESH / 2), "another policy's is its own");
        assert!(!recent.fresh(&key("p-keyring"), start + KEYRING_FRESH), "stale: asked again");
        // Stale entries leave when another is added.
        recent.found(key("q-keyring"), start + KEYRING_FRESH * 2);
        assert_eq!(recent.0.lock().unwrap().len(), 1);
    }
}
