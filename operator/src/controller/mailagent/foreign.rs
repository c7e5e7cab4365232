//! Another shard's agents, as this shard caches them.
//!
//! Every shard watches every MailAgent: a Gmail quota group spans shards, so each shard counts
//! all its members, and an agent relabelled to this shard must be seen arriving. Of another
//! shard's agent this shard reads only its labels (who owns it), its mailbox (its quota group
//! and budget), its policy reference and its reported quota group; the rest (conditions, the
//! verification report, resources, schedules, annotations) is dropped before it is cached, so
//! a shard's memory grows with the agents it owns, not with the fleet. A relabel brings the
//! whole object in the same watch event that makes it this shard's.

use std::mem::take;

use kube::Resource;
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
