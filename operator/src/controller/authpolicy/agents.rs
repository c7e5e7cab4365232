//! Which MailAgents use a policy, for the policy's `mailAgents` status. A watch on MailAgents
//! wakes a policy only when something the policy reports changes (an agent's reference, MCP mode
//! or mutation switch) or an agent goes away, so the status writes of a thousand agents cost no
//! policy reconcile. It keeps one small fingerprint per agent, never the objects.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use futures::{Stream, StreamExt};
use kube::core::DeserializeGuard;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, ResourceExt};
use mailagent_crds::{AuthPolicy, MailAgent};

use tracing::warn;

use crate::error::{Error, Result};

/// The MailAgents in `namespace` that reference the policy `name`.
pub async fn referencing(client: &Client, namespace: &str, name: &str) -> Result<Vec<MailAgent>> {
    // Malformed agents (stored before a schema change) are the MailAgent controller's to report;
    // they are skipped here rather than failing the policy's status.
    let agents = Api::<DeserializeGuard<MailAgent>>::namespaced(client.clone(), namespace)
        .list(&Default::default())
        .await
        .map_err(Error::kube("listing MailAgents"))?;
    Ok(agents
        .items
        .into_iter()
        .filter_map(|guard| guard.0.ok())
        .filter(|agent| agent.spec.auth_policy_ref.name == name)
        .collect())
}

/// What a policy's status says about one agent.
fn fingerprint(agent: &MailAgent) -> (String, u64) {
    let mut h = DefaultHasher::new();
    agent.spec.mcp.auth_mode.hash(&mut h);
    agent.spec.mcp.enable_mutation_tools.hash(&mut h);
    (agent.spec.auth_policy_ref.name.clone(), h.finish())
}

/// The policies to look at again: for each watch event, the policy an agent references now,
/// and the one it referenced before when that changed. Watch errors back off and are logged;
/// the watch resumes by itself.
pub fn policies_to_wake(api: Api<DeserializeGuard<MailAgent>>) -> impl Stream<Item = ObjectRef<AuthPolicy>> + Send {
    let mut seen: HashMap<ObjectRef<MailAgent>, (String, u64)> = HashMap::new();
    watcher::watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .map(move |event| {
            let mut wake = Vec::new();
            match event {
                Ok(Event::Apply(guard) | Event::InitApply(guard)) => {
                    if let Ok(agent) = guard.0 {
                        let now = fingerprint(&agent);
                        let before = seen.insert(ObjectRef::from_obj(&agent), now.clone());
                        if before.as_ref() != Some(&now) {
                            wake.push(policy_ref(&agent, &now.0));
                            if let Some((old, _)) = before.filter(|(old, _)| *old != now.0) {
                                wake.push(policy_ref(&agent, &old));
                            }
                        }
                    }
                }
                Ok(Event::Delete(guard)) => {
                    if let Ok(agent) = guard.0
                        && let Some((old, _)) = seen.remove(&ObjectRef::from_obj(&agent))
                    {
                        wake.push(policy_ref(&agent, &old));
                    }
                }
                Ok(Event::Init | Event::InitDone) => {}
                Err(error) => warn!(%error, "watching MailAgents for policy status; retrying"),
            }
            futures::stream::iter(wake)
        })
        .flatten()
}

fn policy_ref(agent: &MailAgent, policy: &str) -> ObjectRef<AuthPolicy> {
    let r = ObjectRef::new(policy);
    match agent.namespace() {
        Some(ns) => r.within(&ns),
        None => r,
    }
}
