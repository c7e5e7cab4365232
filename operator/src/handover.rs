//! Hand-over of an object between shards: after the new owner's first apply, the previous
//! owner's field-manager entries are taken off, so every object keeps exactly one operator
//! writer.
//!
//! Why this matters beyond tidiness: server-side apply deletes a field only when its *last*
//! manager stops applying it. A field the old shard still co-owned would outlive the new shard
//! dropping it from its rendering (an env var, an owner reference, a status block), for ever.
//!
//! The watches strip `managedFields` before caching (they are the bulk of an object); what a
//! hand-over needs from them is kept as one small cache-only annotation, present only while
//! another shard still co-owns the object, so a steady fleet pays nothing for it.

use std::fmt::Debug;

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;

use crate::shard::{Shard, is_operator_manager, other_managers};

/// Cache-only annotation: every operator field manager on the object, noted only while more than
/// one shard's is (a steady fleet pays nothing). Never sent to the API server (the operator
/// applies what it renders, not what it caches).
pub const MANAGERS_ANNOTATION: &str = "mailagent.dev/cached-operator-managers";

/// Before `managedFields` are dropped from a watched object: notes its operator field managers
/// when another shard is among them.
pub fn note_other_managers<K: Resource>(object: &mut K, shard: &Shard) {
    let meta = object.meta_mut();
    let entries = meta.managed_fields.as_deref().unwrap_or_default();
    if !shard.others(entries).is_empty() {
        let all = operator_managers(entries).join(",");
        meta.annotations.get_or_insert_default().insert(MANAGERS_ANNOTATION.to_owned(), all);
    }
}

/// Every operator field manager among `entries`, sorted, once each.
fn operator_managers(entries: &[ManagedFieldsEntry]) -> Vec<&str> {
    let mut all: Vec<&str> =
        entries.iter().filter_map(|e| e.manager.as_deref()).filter(|m| is_operator_manager(m)).collect();
    all.sort_unstable();
    all.dedup();
    all
}

/// Whether a cached object is co-owned by another shard (see [`note_other_managers`]).
pub fn co_owned<K: Resource>(cached: &K) -> bool {
    noted(cached).is_some()
}

/// A co-owned cached object that `ours` has not written yet: the new owner's first write is due.
pub fn takeover_due<K: Resource>(cached: &K, ours: &str) -> bool {
    noted(cached).is_some_and(|all| !all.split(',').any(|m| m == ours))
}

/// A co-owned cached object that `ours` wrote and another shard has written since: the old
/// owner's release is due (it waits for the new owner's write, so the object is never unowned).
pub fn release_due<K: Resource>(cached: &K, ours: &str) -> bool {
    noted(cached).is_some_and(|all| all.split(',').any(|m| m == ours))
}

/// [`takeover_due`] for an object read with its `managedFields`.
pub fn takeover_due_live<K: Resource>(live: &K, ours: &str) -> bool {
    let entries = live.meta().managed_fields.as_deref().unwrap_or_default();
    !other_managers(entries, ours).is_empty() && !operator_managers(entries).contains(&ours)
}

/// [`release_due`] for an object read with its `managedFields`.
pub fn release_due_live<K: Resource>(live: &K, ours: &str) -> bool {
    let entries = live.meta().managed_fields.as_deref().unwrap_or_default();
    !other_managers(entries, ours).is_empty() && operator_managers(entries).contains(&ours)
}

fn noted<K: Resource>(cached: &K) -> Option<&str> {
    cached.meta().annotations.as_ref()?.get(MANAGERS_ANNOTATION).map(String::as_str)
}

/// The old owner's release of a MailAgent's or AuthPolicy's status: an empty apply under its
/// field manager, which takes its name off every status field (the new owner, having written
/// since, keeps those it sets; what only the old owner set goes, as it should). Through the
/// status endpoint, the only one the operator may write these by; that endpoint ignores edits of
/// `managedFields`, which is why the new owner cannot take the entries off itself.
pub async fn release_status<K>(api: &Api<K>, name: &str, ours: &str) -> kube::Result<K>
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned,
{
    let empty =
        serde_json::json!({"apiVersion": K::api_version(&()), "kind": K::kind(&()), "metadata": {"name": name}});
    api.patch_status(name, &PatchParams::apply(ours).force(), &Patch::Apply(&empty)).await
}

/// Whether a live object (with its `managedFields`) is co-owned by another operator shard.
pub fn co_owned_live<K: Resource>(live: &K, ours: &str) -> bool {
    !other_managers(live.meta().managed_fields.as_deref().unwrap_or_default(), ours).is_empty()
}

/// Takes the other shards' entries off a child `live` (as an apply or a GET returned it, with its
/// `managedFields`). `None` when there were none; otherwise the object after the patch, which
/// is guarded by the resource version seen, so an entry written meanwhile is never lost.
pub async fn release_others<K>(api: &Api<K>, live: &K, ours: &str) -> kube::Result<Option<K>>
where
    K: Resource + Clone + Debug + DeserializeOwned,
{
    let entries = live.meta().managed_fields.as_deref().unwrap_or_default();
    let others = other_managers(entries, ours);
    if others.is_empty() {
        return Ok(None);
    }
    let kept: Vec<_> =
        entries.iter().filter(|e| e.manager.as_deref().is_none_or(|m| !others.contains(&m))).cloned().collect();
    let patch: json_patch::Patch = serde_json::from_value(serde_json::json!([
        {"op": "test", "path": "/metadata/resourceVersion", "value": live.resource_version()},
        {"op": "replace", "path": "/metadata/managedFields", "value": kept},
    ]))
    .expect("well-formed JSON patch");
    let params = PatchParams { field_manager: Some(ours.to_owned()), ..PatchParams::default() };
    api.patch(&live.name_any(), &params, &Patch::<()>::Json(patch)).await.map(Some)
}
