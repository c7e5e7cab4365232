//! Another shard's agents, as this shard caches them.
//!
//! Every shard watches every MailAgent: a Gmail quota group spans shards, so each shard counts
//! all its members, and an agent relabelled to this shard must be seen arriving. Of another
//! shard's agent this shard reads only its labels (who owns it), its mailbox (its quota group
//! and budget), its policy reference and its reported quota group; the rest (conditions, the
//! verification report, resources, schedules, annotations) is dropped before it is cached, so
//! a shard's memory grows with the agents it owns, not with the fleet. A relabel brings the
//! whole object in the same watch event that makes it this shard's.

use std::collections::HashSet;
use std::mem::take;
use std::sync::Mutex;

use kube::Resource;
use kube::runtime::reflector::ObjectRef;
use mailagent_crds::MailAgentStatus;

use super::Agent;
use crate::shard::Shard;

/// Slims `agent` unless `shard` owns it.
pub fn slim(agent: &mut Agent, shard: &Shard) {
    if shard.owns(agent.meta()) {
        return;
    }
    let Ok(parsed) = agent.0.as_mut() else { return };
    let meta = &mut parsed.metadata;
    meta.annotations = None;
    meta.owner_references = None;
    meta.finalizers = None;
    let spec = &mut parsed.spec;
    take(&mut spec.image);
    spec.resources = None;
    spec.mailbox.address = None;
    spec.surfaces = Default::default();
    spec.mcp = Default::default();
    spec.rate_limit = Default::default();
    spec.schedules = Default::default();
    spec.storage = Default::default();
    spec.network = Default::default();
    parsed.status = parsed.status.take().map(|s| MailAgentStatus { quota: s.quota, ..Default::default() });
}

/// Which agent events a shard reconciles: its own agents', and one last event of an agent that
/// just left it (a relabel, or its deletion), which forgets what the shard knew of it. Another
/// shard's agent is only counted for quota, so its events (each of its status writes) queue
/// nothing; without this every shard would look at every agent's every write.
pub struct Events {
    shard: Shard,
    /// The agents this shard owned when it last saw them; empty when unsharded (it owns all).
    owned: Mutex<HashSet<ObjectRef<Agent>>>,
}

impl Events {
    pub fn new(shard: Shard) -> Self {
        Self { shard, owned: Mutex::new(HashSet::new()) }
    }

    /// Whether an event of `agent` (`present`: still in the cache, not deleted) queues a reconcile.
    pub fn reconciles(&self, agent: &Agent, present: bool) -> bool {
        if !self.shard.is_sharded() {
            return true;
        }
        let key = ObjectRef::from_obj(agent);
        let mut owned = self.owned.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if present && self.shard.owns(agent.meta()) {
            owned.insert(key);
            return true;
        }
        owned.remove(&key)
    }

    /// After a relist: forgets agents no longer in the cache.
    pub fn retain(&self, mut present: impl FnMut(&ObjectRef<Agent>) -> bool) {
        self.owned.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).retain(|agent| present(agent));
    }
}

#[cfg(test)]
mod tests {
    use kube::core::DeserializeGuard;
    use mailagent_crds::MailAgent;

    use super::*;

    fn agent(name: &str) -> Agent {
        let yaml = format!(
            "apiVersion: mailagent.dev/v1alpha1\nkind: MailAgent\nmetadata: {{name: {name}, namespace: mail, annotations: {{a: b}}}}\n\
             spec: {{image: img, authPolicyRef: {{name: p}}, mailbox: {{provider: gmail, quota: {{group: acme}}}}, schedules: {{scan: '0 * * * *'}}}}\n\
             status: {{conditions: [{{type: Ready, status: 'True', reason: R, message: m, lastTransitionTime: '2026-01-01T00:00:00Z'}}], quota: {{group: acme, members: 2, groupUnitsPerMinute: 100, unitsPerMinute: 50, scanDelaySeconds: 0, oversubscribed: false}}}}"
        );
        DeserializeGuard(Ok(serde_yaml::from_str::<MailAgent>(&yaml).unwrap()))
    }

    /// `name`, pinned to `shard` by the label.
    fn pinned(name: &str, shard: u32) -> Agent {
        let mut agent = agent(name);
        let labels = agent.0.as_mut().unwrap().metadata.labels.get_or_insert_default();
        labels.insert(crate::shard::SHARD_LABEL.into(), shard.to_string());
        agent
    }

    #[test]
    fn a_shard_reconciles_its_own_agents_and_one_last_event_of_one_that_left() {
        let events = Events::new(Shard::new(0, 2).unwrap());
        assert!(!events.reconciles(&pinned("theirs", 1), true), "another shard's agent: counted only");
        assert!(!events.reconciles(&pinned("theirs", 1), true));
        assert!(events.reconciles(&pinned("moved", 0), true), "ours");
        assert!(events.reconciles(&pinned("moved", 0), true), "ours, every event");
        assert!(events.reconciles(&pinned("moved", 1), true), "relabelled away: looked at once more");
        assert!(!events.reconciles(&pinned("moved", 1), true), "then no longer");
        assert!(events.reconciles(&pinned("moved", 0), true), "and back");
        assert!(events.reconciles(&pinned("moved", 0), false), "deleted: a last look");
        assert!(!events.reconciles(&pinned("moved", 0), false), "once");
        assert!(events.reconciles(&pinned("kept", 0), true));
        events.retain(|_| false);
        assert!(!events.reconciles(&pinned("kept", 1), true), "a relist forgot it");
    }

    #[test]
    fn unsharded_every_event_reconciles() {
        let events = Events::new(Shard::default());
        assert!(events.reconciles(&agent("a"), true) && events.reconciles(&agent("a"), false));
        assert!(events.owned.lock().unwrap().is_empty(), "nothing remembered when one process owns all");
    }

    #[test]
    fn another_shards_agent_keeps_what_quota_counting_and_ownership_read() {
        let shard = Shard::new(0, 2).unwrap();
        let find = |owned: bool| (0..).map(|i| format!("a{i}")).find(|n| shard.owns(agent(n).meta()) == owned).unwrap();
        let (foreign, own) = (find(false), find(true));

        let mut slimmed = agent(&foreign);
        slim(&mut slimmed, &shard);
        let a = slimmed.0.as_ref().unwrap();
        assert_eq!(a.spec.mailbox.named_quota_group(), Some("acme"));
        assert_eq!(a.spec.auth_policy_ref.name, "p");
        assert_eq!(a.status.as_ref().unwrap().quota.as_ref().unwrap().group.as_deref(), Some("acme"));
        assert!(a.status.as_ref().unwrap().conditions.is_empty());
        assert!(a.spec.image.is_empty() && a.spec.schedules.scan.is_none() && a.metadata.annotations.is_none());

        let mut kept = agent(&own);
        slim(&mut kept, &shard);
        assert_eq!(kept.0.as_ref().unwrap(), agent(&own).0.as_ref().unwrap(), "its own agent is cached whole");
    }
}
