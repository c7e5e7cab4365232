//! Hand-over of an object between shards: once the new owner has written an object, the
//! previous owner's field-manager entries are taken off, so every object keeps exactly one
//! operator writer. The new owner does it all; the shard an object left does nothing (it may be
//! gone: a shard count was lowered).
//!
//! Why this matters beyond tidiness: server-side apply deletes a field only when its *last*
//! manager stops applying it. A field the old shard still co-owned would outlive the new shard
//! dropping it from its rendering (an env var, an owner reference, a status block), for ever.
//!
//! Two ways, by what the operator may write:
//! - a child (the operator may `patch` it): one JSON patch, guarded by the resource version,
//!   that replaces `managedFields` with the list minus the other shards' entries;
//! - a MailAgent's or AuthPolicy's status (only its status endpoint is the operator's, and that
//!   endpoint ignores edits of `managedFields`): an empty server-side apply under each other
//!   shard's manager name, which takes that name off every field. The new owner has written the
//!   status first, so each field keeps an owner.
//!
//! The watches strip `managedFields` before caching (they are the bulk of an object); what a
//! hand-over needs from them is kept as one small cache-only annotation, present only while
//! another shard still co-owns the object, so a steady fleet pays nothing for it.

use std::fmt::Debug;

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;

use crate::shard::{Shard, other_managers};

/// Cache-only annotation: the other operator shards' field managers on the object, noted only
/// while there are any. Never sent to the API server (the operator applies what it renders, not
/// what it caches).
pub const OTHER_MANAGERS_ANNOTATION: &str = "mailagent.dev/cached-other-managers";

/// Before `managedFields` are dropped from a watched object: notes which other operator shards
/// co-own it.
pub fn note_other_managers<K: Resource>(object: &mut K, shard: &Shard) {
    let meta = object.meta_mut();
    let others = shard.others(meta.managed_fields.as_deref().unwrap_or_default()).join(",");
    if !others.is_empty() {
        meta.annotations.get_or_insert_default().insert(OTHER_MANAGERS_ANNOTATION.to_owned(), others);
    }
}

/// The other shards' field managers noted on a cached object (see [`note_other_managers`]).
pub fn noted_others<K: Resource>(cached: &K) -> Vec<String> {
    let noted = cached.meta().annotations.as_ref().and_then(|a| a.get(OTHER_MANAGERS_ANNOTATION));
    noted.map(|all| all.split(',').map(str::to_owned).collect()).unwrap_or_default()
}

/// Whether a cached object is co-owned by another shard.
pub fn co_owned<K: Resource>(cached: &K) -> bool {
    cached.meta().annotations.as_ref().is_some_and(|a| a.contains_key(OTHER_MANAGERS_ANNOTATION))
}

/// The other shards' field managers on an object read with its `managedFields`.
pub fn others_live<K: Resource>(live: &K, ours: &str) -> Vec<String> {
    other_managers(live.meta().managed_fields.as_deref().unwrap_or_default(), ours)
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// Takes the other shards' entries off a child `live` (as an apply or a GET returned it, with
/// its `managedFields`). `None` when there were none, or when the object was written meanwhile
/// (the patch is guarded by the resource version seen, so an entry written meanwhile is never
/// lost; the next reconcile sees the other entries again and retries); otherwise the object
/// after the patch.
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
    match api.patch(&live.name_any(), &params, &Patch::<()>::Json(patch)).await {
        Ok(released) => Ok(Some(released)),
        // The resource-version test failed: written meanwhile.
        Err(kube::Error::Api(status)) if status.code == 409 || status.code == 422 => Ok(None),
        Err(e) => Err(e),
    }
}

/// Takes each of `others` off the status of `name` (a MailAgent or an AuthPolicy that this
/// shard has just written): an empty apply under that manager's name. Returns the writes made.
pub async fn release_status<K>(api: &Api<K>, name: &str, others: &[String]) -> kube::Result<u32>
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned,
{
    let empty =
        serde_json::json!({"apiVersion": K::api_version(&()), "kind": K::kind(&()), "metadata": {"name": name}});
    for other in others {
        api.patch_status(name, &PatchParams::apply(other).force(), &Patch::Apply(&empty)).await?;
    }
    Ok(others.len() as u32)
}
