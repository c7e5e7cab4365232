//! Storage for the node: a default StorageClass without a provisioner and a few statically made
//! hostPath PersistentVolumes, so a MailAgent's state claim (which names no class) binds at once
//! through the controller manager's volume binder, and a retained volume outlives its claim.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use k8s_openapi::api::core::v1::PersistentVolume;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::Client;
use kube::api::{Api, PostParams};

use super::STORAGE_CLASS;

/// How many volumes the node offers (one per MailAgent at a time).
pub const VOLUMES: usize = 6;
/// Each volume's capacity: claims up to this size bind.
const CAPACITY: &str = "10Gi";
/// The workload's user: hostPath volumes get no fsGroup ownership change, so they are made its own.
const OWNER: u32 = 65532;

/// Creates the StorageClass and the volumes, their directories under `dir/pv-N`.
pub async fn install(client: &Client, dir: &Path) -> anyhow::Result<()> {
    let classes: Api<StorageClass> = Api::all(client.clone());
    let class = serde_json::from_value(serde_json::json!({
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": STORAGE_CLASS,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}
        },
        "provisioner": "kubernetes.io/no-provisioner",
        "reclaimPolicy": "Retain",
        "volumeBindingMode": "Immediate"
    }))?;
    classes.create(&PostParams::default(), &class).await?;
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    for index in 0..VOLUMES {
        let path = dir.join(format!("pv-{index}"));
        std::fs::create_dir_all(&path)?;
        std::os::unix::fs::chown(&path, Some(OWNER), Some(OWNER))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o770))?;
        let volume = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": format!("local-pv-{index}"), "labels": {"mailagent.dev/local-volume": "true"}},
            "spec": {
                "capacity": {"storage": CAPACITY},
                "accessModes": ["ReadWriteOnce", "ReadWriteMany"],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": STORAGE_CLASS,
                "hostPath": {"path": path, "type": "Directory"}
            }
        }))?;
        volumes.create(&PostParams::default(), &volume).await?;
    }
    Ok(())
}
