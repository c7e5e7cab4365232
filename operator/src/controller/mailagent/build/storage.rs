//! The state volume. With `onDelete: Retain` (the default) it carries no owner reference, so
//! deleting the MailAgent leaves the unsubscribe history in place for a re-created agent.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, PersistentVolumeClaimSpec, VolumeResourceRequirements};
use kube::ResourceExt;
use mailagent_crds::MailAgent;
use mailagent_crds::mailagent::OnDelete;

use super::child_meta;

/// Name of the agent's state PersistentVolumeClaim.
pub fn pvc_name(agent: &str) -> String {
    mailagent_crds::names::state_volume(agent)
}

/// The state PersistentVolumeClaim.
pub fn pvc(agent: &MailAgent) -> PersistentVolumeClaim {
    let storage = &agent.spec.storage;
    let mut metadata = child_meta(agent, pvc_name(&agent.name_any()));
    if storage.on_delete == OnDelete::Retain {
        metadata.owner_references = None;
    }
    PersistentVolumeClaim {
        metadata,
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec![storage.access_mode.as_str().into()]),
            storage_class_name: storage.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".into(), storage.size.clone())])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::agent;
    use super::*;

    #[test]
    fn retained_state_is_not_owned_and_deleted_state_is() {
        assert!(pvc(&agent("{}")).metadata.owner_references.is_none());
        let owned = pvc(&agent("storage: {onDelete: Delete}"));
        assert_eq!(owned.metadata.owner_references.unwrap()[0].kind, "MailAgent");
    }

    #[test]
    fn size_class_and_mode_come_from_the_spec() {
        let claim = pvc(&agent("storage: {size: 5Gi, storageClassName: fast}")).spec.unwrap();
        assert_eq!(claim.access_modes.unwrap(), ["ReadWriteOnce"]);
        assert_eq!(claim.storage_class_name.as_deref(), Some("fast"));
        assert_eq!(claim.resources.unwrap().requests.unwrap()["storage"].0, "5Gi");
    }
}
