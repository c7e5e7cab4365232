//! What this shard last wrote to each agent's status, and from which object.
//!
//! Two uses. A reconcile can run before the watch delivers our own write: until it does, it
//! computes from what we wrote, not from the stale copy, so it does not write (and announce) the
//! same change twice. Once delivered, the cached object speaks for itself, so a status someone
//! else wrote later is written back. And the watch event that only echoes our write back (same
//! object, the status we wrote) queues no reconcile: it has nothing the last reconcile did not
//! see. That was about one reconcile in eight while a fleet rolls out.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;
use mailagent_crds::{MailAgent, MailAgentStatus};

use super::{Agent, agent_ref};

#[derive(Default)]
pub struct Written(Mutex<HashMap<ObjectRef<Agent>, Entry>>);

struct Entry {
    uid: String,
    /// What the reconcile read besides status (see `fingerprint`).
    object: u64,
    status: MailAgentStatus,
    /// The resourceVersion our write made.
    version: Option<String>,
    /// Once the watch has delivered our write: the version of the newest event since (ours at
    /// first).
    seen: Option<String>,
}

impl Entry {
    fn of(&self, agent: &MailAgent) -> bool {
        Some(&self.uid) == agent.metadata.uid.as_ref()
    }

    /// Whether `agent` is known to be our write or newer, so its own status speaks for itself.
    /// An object of another version may be older than our write (a reconcile that started before
    /// the watch delivered it): what we wrote stands in for it.
    fn superseded_by(&self, agent: &MailAgent) -> bool {
        let version = agent.metadata.resource_version.as_ref();
        self.seen.is_some() && (version == self.version.as_ref() || version == self.seen.as_ref())
    }
}

impl Written {
    /// The status last written to this agent (this incarnation of it: same uid), unless `agent` is
    /// that write or newer: what [`Self::read`] reads before the object's own (tests ask it which).
    #[cfg(test)]
    fn status(&self, agent: &MailAgent) -> Option<MailAgentStatus> {
        let written = self.0.lock().expect("not poisoned");
        let entry = written.get(&agent_ref(agent)).filter(|e| e.of(agent) && !e.superseded_by(agent))?;
        Some(entry.status.clone())
    }

    /// `read` of the status [`Self::status`] gives, else of what the object says, without copying
    /// either (the verifier looks at every agent's status every few seconds).
    pub fn read<R>(&self, agent: &MailAgent, read: impl FnOnce(&MailAgentStatus) -> R) -> R {
        let written = self.0.lock().expect("not poisoned");
        let ours = written.get(&agent_ref(agent)).filter(|e| e.of(agent) && !e.superseded_by(agent));
        match (ours, &agent.status) {
            (Some(entry), _) => read(&entry.status),
            (None, Some(status)) => read(status),
            (None, None) => read(&MailAgentStatus::default()),
        }
    }

    /// Notes a status written by a reconcile of `agent`; the write made `resource_version`, and the
    /// cache now holds `cached` (the watch can deliver our write before its response arrives).
    /// `fleet` is how many agents are cached and `live` lists them: deleted agents are forgotten
    /// now and then, so the memo stays the size of the fleet.
    pub fn remember(
        &self,
        agent: &MailAgent,
        status: MailAgentStatus,
        resource_version: Option<String>,
        cached: Option<String>,
        fleet: usize,
        live: impl FnOnce() -> HashSet<ObjectRef<Agent>>,
    ) {
        let Some(uid) = agent.metadata.uid.clone() else { return };
        let mut written = self.0.lock().expect("not poisoned");
        let seen = cached.filter(|cached| Some(cached) == resource_version.as_ref());
        let entry = Entry { uid, object: fingerprint(agent), status, version: resource_version, seen };
        written.insert(agent_ref(agent), entry);
        if written.len() > 2 * fleet + 16 {
            let live = live();
            written.retain(|key, _| live.contains(key));
        }
    }

    pub fn forget(&self, agent: &ObjectRef<Agent>) {
        self.0.lock().expect("not poisoned").remove(agent);
    }

    /// Takes a watch event of `agent` into account (our write delivered?), and says whether it
    /// only echoes our last status write: the object is the one the writing reconcile read and its
    /// status is what that reconcile wrote.
    pub fn observe(&self, agent: &MailAgent) -> bool {
        let mut written = self.0.lock().expect("not poisoned");
        let Some(entry) = written.get_mut(&agent_ref(agent)).filter(|e| e.of(agent)) else { return false };
        let version = &agent.metadata.resource_version;
        if entry.seen.is_some() || (version.is_some() && *version == entry.version) {
            entry.seen.clone_from(version);
        }
        entry.object == fingerprint(agent) && agent.status.as_ref() == Some(&entry.status)
    }

    /// After a re-list the cache holds every write made before it, at versions the watch never
    /// named: start again from what it says.
    pub fn clear(&self) {
        self.0.lock().expect("not poisoned").clear();
    }
}

/// Everything of an agent but its status that a reconcile reads: the spec (through the
/// generation, which the API server bumps on every spec change), labels (shard and quota
/// choices), annotations, and deletion. Not `managedFields` or `resourceVersion`, which every
/// write changes.
fn fingerprint(agent: &MailAgent) -> u64 {
    let meta = &agent.metadata;
    let mut hasher = DefaultHasher::new();
    (meta.generation, agent.labels(), agent.annotations(), meta.deletion_timestamp.is_some(), &meta.finalizers)
        .hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use mailagent_crds::MailAgentStatus;

    use super::*;

    fn agent(status: Option<MailAgentStatus>) -> MailAgent {
        let mut agent: MailAgent = serde_yaml::from_str(
            "apiVersion: mailagent.dev/v1alpha1\nkind: MailAgent\n\
             metadata: {name: a, namespace: mail, uid: u1, generation: 1, labels: {team: x}}\n\
             spec: {image: img, authPolicyRef: {name: p}, mailbox: {provider: maildir}}",
        )
        .unwrap();
        agent.status = status;
        agent
    }

    fn status(ready: i32) -> MailAgentStatus {
        MailAgentStatus { ready_replicas: ready, observed_generation: Some(1), ..Default::default() }
    }

    fn remember(written: &Written, agent: &MailAgent, status: MailAgentStatus, version: &str) {
        let live = || HashSet::from([ObjectRef::from_obj(&DeserializeGuard(Ok(agent.clone())))]);
        written.remember(agent, status, Some(version.into()), None, 1, live);
    }

    fn at(version: &str, status: Option<MailAgentStatus>) -> MailAgent {
        let mut agent = agent(status);
        agent.metadata.resource_version = Some(version.into());
        agent
    }

    use kube::core::DeserializeGuard;

    fn edited_again(agent: &MailAgent) -> MailAgent {
        let mut agent = agent.clone();
        agent.metadata.resource_version = Some("7".into());
        agent
    }

    #[test]
    fn only_the_echo_of_our_own_write_is_skipped() {
        let written = Written::default();
        let read = at("1", None);
        assert!(!written.observe(&at("1", Some(status(1)))), "nothing written yet");
        remember(&written, &read, status(1), "2");
        assert!(written.observe(&at("2", Some(status(1)))), "the object we read, with the status we wrote");
        assert!(!written.observe(&at("3", Some(status(0)))), "someone else's status");
        assert!(!written.observe(&at("3", None)), "no status");

        let mut edited = at("3", Some(status(1)));
        edited.metadata.generation = Some(2);
        assert!(!written.observe(&edited), "a spec change");
        let mut relabelled = at("3", Some(status(1)));
        relabelled.labels_mut().insert("mailagent.dev/shard".into(), "1".into());
        assert!(!written.observe(&relabelled), "a label change (shard, quota group)");
        let mut annotated = at("3", Some(status(1)));
        annotated.annotations_mut().insert("a".into(), "b".into());
        assert!(!written.observe(&annotated), "an annotation change");
        let mut deleting = at("3", Some(status(1)));
        deleting.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::from_second(1).unwrap()));
        assert!(!written.observe(&deleting), "deletion");
        let mut recreated = at("3", Some(status(1)));
        recreated.metadata.uid = Some("u2".into());
        assert!(!written.observe(&recreated), "a new object of the same name");
        let mut rewritten = at("4", Some(status(1)));
        rewritten.metadata.managed_fields = Some(vec![Default::default()]);
        assert!(written.observe(&rewritten), "resourceVersion and managedFields change on every write");

        written.forget(&ObjectRef::from_obj(&DeserializeGuard(Ok(read))));
        assert!(!written.observe(&at("2", Some(status(1)))), "forgotten");
    }

    #[test]
    fn our_write_stands_in_for_an_older_object_only() {
        let written = Written::default();
        remember(&written, &at("1", None), status(1), "2");
        let stale = at("1", Some(status(0)));
        assert_eq!(written.status(&stale), Some(status(1)), "the cache has not seen our write");
        assert_eq!(written.read(&stale, |s| s.ready_replicas), 1);
        let mut other = stale.clone();
        other.metadata.uid = Some("u2".into());
        assert_eq!(written.status(&other), None, "another object of the same name");
        assert_eq!(written.read(&other, |s| s.ready_replicas), 0);

        written.observe(&at("1", Some(status(0))));
        assert_eq!(written.status(&at("1", Some(status(0)))), Some(status(1)), "still waiting for ours");
        written.observe(&at("2", Some(status(1))));
        assert_eq!(written.status(&at("2", Some(status(1)))), None, "delivered: the object is our write");
        assert_eq!(written.status(&stale), Some(status(1)), "a reconcile that started before holds an older one");
        let edited = at("5", Some(status(0)));
        written.observe(&edited);
        assert_eq!(written.status(&edited), None, "an edit after our write counts");
        assert_eq!(written.read(&edited, |s| s.ready_replicas), 0);
        assert_eq!(written.read(&at("5", None), |s| s.ready_replicas), 0, "no status at all: the default");

        remember(&written, &at("5", None), status(1), "6");
        assert_eq!(written.status(&edited), Some(status(1)), "a new write, not yet delivered");
        written.clear();
        assert_eq!(written.status(&edited), None, "a re-list starts again from the cache");

        let live = || HashSet::new();
        written.remember(&at("5", None), status(1), Some("6".into()), Some("6".into()), 1, live);
        assert_eq!(written.status(&at("6", Some(status(1)))), None, "the watch delivered it before the response came");
        written.observe(&edited_again(&edited));
        assert_eq!(written.status(&edited_again(&edited)), None);
    }
}
