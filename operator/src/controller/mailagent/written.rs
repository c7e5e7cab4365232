//! What this shard last wrote to each agent's status, and from which object.
//!
//! Two uses. A reconcile can run before the watch delivers our own write: it computes from what we
//! wrote, not from the stale copy, so it does not write (and announce) the same change twice. And
//! the watch event that only echoes our write back (same object, the status we wrote) queues no
//! reconcile: it has nothing the last reconcile did not see. That was about one reconcile in
//! three while a fleet rolls out.

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
}

impl Written {
    /// The status last written to this agent (this incarnation of it: same uid).
    pub fn status(&self, agent: &MailAgent) -> Option<MailAgentStatus> {
        let written = self.0.lock().expect("not poisoned");
        let entry = written.get(&agent_ref(agent))?;
        (Some(&entry.uid) == agent.metadata.uid.as_ref()).then(|| entry.status.clone())
    }

    /// `read` of the status last written to this agent, else of what the object says, without
    /// copying either (the verifier looks at every agent's status every few seconds).
    pub fn read<R>(&self, agent: &MailAgent, read: impl FnOnce(&MailAgentStatus) -> R) -> R {
        let written = self.0.lock().expect("not poisoned");
        let ours = written.get(&agent_ref(agent)).filter(|e| Some(&e.uid) == agent.metadata.uid.as_ref());
        match (ours, &agent.status) {
            (Some(entry), _) => read(&entry.status),
            (None, Some(status)) => read(status),
            (None, None) => read(&MailAgentStatus::default()),
        }
    }

    /// Notes a status written by a reconcile of `agent`. `fleet` is how many agents are cached and
    /// `live` lists them: deleted agents are forgotten now and then, so the memo stays the size of
    /// the fleet.
    pub fn remember(
        &self,
        agent: &MailAgent,
        status: MailAgentStatus,
        fleet: usize,
        live: impl FnOnce() -> HashSet<ObjectRef<Agent>>,
    ) {
        let Some(uid) = agent.metadata.uid.clone() else { return };
        let mut written = self.0.lock().expect("not poisoned");
        written.insert(agent_ref(agent), Entry { uid, object: fingerprint(agent), status });
        if written.len() > 2 * fleet + 16 {
            let live = live();
            written.retain(|key, _| live.contains(key));
        }
    }

    pub fn forget(&self, agent: &ObjectRef<Agent>) {
        self.0.lock().expect("not poisoned").remove(agent);
    }

    /// Whether a watch event of `agent` only echoes our last status write: the object is the one
    /// the writing reconcile read and its status is what that reconcile wrote.
    pub fn is_echo(&self, agent: &MailAgent) -> bool {
        let written = self.0.lock().expect("not poisoned");
        written.get(&agent_ref(agent)).is_some_and(|entry| {
            Some(&entry.uid) == agent.metadata.uid.as_ref()
                && entry.object == fingerprint(agent)
                && agent.status.as_ref() == Some(&entry.status)
        })
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

    fn remember(written: &Written, agent: &MailAgent, status: MailAgentStatus) {
        written
            .remember(agent, status, 1, || HashSet::from([ObjectRef::from_obj(&DeserializeGuard(Ok(agent.clone())))]));
    }

    use kube::core::DeserializeGuard;

    #[test]
    fn only_the_echo_of_our_own_write_is_skipped() {
        let written = Written::default();
        let read = agent(None);
        assert!(!written.is_echo(&agent(Some(status(1)))), "nothing written yet");
        remember(&written, &read, status(1));
        assert!(written.is_echo(&agent(Some(status(1)))), "the object we read, with the status we wrote");
        assert!(!written.is_echo(&agent(Some(status(0)))), "someone else's status");
        assert!(!written.is_echo(&agent(None)), "no status");

        let mut edited = agent(Some(status(1)));
        edited.metadata.generation = Some(2);
        assert!(!written.is_echo(&edited), "a spec change");
        let mut relabelled = agent(Some(status(1)));
        relabelled.labels_mut().insert("mailagent.dev/shard".into(), "1".into());
        assert!(!written.is_echo(&relabelled), "a label change (shard, quota group)");
        let mut annotated = agent(Some(status(1)));
        annotated.annotations_mut().insert("a".into(), "b".into());
        assert!(!written.is_echo(&annotated), "an annotation change");
        let mut deleting = agent(Some(status(1)));
        deleting.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::from_second(1).unwrap()));
        assert!(!written.is_echo(&deleting), "deletion");
        let mut recreated = agent(Some(status(1)));
        recreated.metadata.uid = Some("u2".into());
        assert!(!written.is_echo(&recreated), "a new object of the same name");
        assert_eq!(written.status(&recreated), None);
        assert_eq!(written.read(&recreated, |s| s.ready_replicas), 1, "the object's own status");
        assert_eq!(written.read(&agent(Some(status(0))), |s| s.ready_replicas), 1, "ours, newer than the object's");
        assert_eq!(written.read(&agent(None), |s| s.ready_replicas), 1);

        let mut rewritten = agent(Some(status(1)));
        rewritten.metadata.resource_version = Some("99".into());
        rewritten.metadata.managed_fields = Some(vec![Default::default()]);
        assert!(written.is_echo(&rewritten), "resourceVersion and managedFields change on every write");

        written.forget(&ObjectRef::from_obj(&DeserializeGuard(Ok(read))));
        assert!(!written.is_echo(&agent(Some(status(1)))), "forgotten");
    }
}
