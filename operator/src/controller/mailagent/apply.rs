//! Server-side apply of the children, skipping any that the cache shows already as desired, and
//! removal of children that are no longer wanted (a surface turned off).

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Resource, ResourceExt};
use mailagent_crds::MailAgent;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::debug;

use super::Context;
use super::build::Children;
use crate::error::{Error, Result};
use crate::handover;
use crate::labels::{AGENT_LABEL, APPLIED_HASH_ANNOTATION};
use crate::reflect::{drift, is_subset, live_json};
use crate::shard::SHARD_LABEL;

/// Brings every child to its desired state and removes unwanted ones. Returns the live
/// Deployment, for a status that does not wait for the cache to see our own write.
pub async fn apply(agent: &MailAgent, children: &Children, ctx: &Context) -> Result<Deployment> {
    let stores = &ctx.stores;
    ensure(ctx, &stores.service_accounts, &children.service_account).await?;
    ensure(ctx, &stores.config_maps, &children.config_map).await?;
    ensure(ctx, &stores.pvcs, &children.pvc).await?;
    for service in &children.services {
        ensure(ctx, &stores.services, service).await?;
    }
    ensure(ctx, &stores.network_policies, &children.network_policy).await?;
    // Last, so pods start only once their config, volume and network rules exist.
    let deployment = ensure(ctx, &stores.deployments, &children.deployment).await?;
    remove_unwanted_services(agent, children, ctx).await?;
    Ok(deployment)
}

/// Applies `desired` unless the cached object already is what we want; returns the live object.
/// With shards, the object also carries this shard's label (its watch selects by it), and a
/// first apply after a hand-over takes the previous shard's field-manager entries off.
///
/// "Already is" needs two checks. The applied-hash annotation says whether our rendering changed
/// since the last apply; only it can see a field we must now *remove* (an owner reference when
/// `onDelete` becomes `Retain`), which a comparison of present fields never would. The subset
/// comparison says whether someone else changed a field we own since; server-side apply then
/// takes it back.
async fn ensure<K>(ctx: &Context, store: &Store<K>, desired: &K) -> Result<K>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + k8s_openapi::Resource
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
{
    let name = desired.name_any();
    let ns = desired.namespace().ok_or(Error::MissingField("metadata.namespace"))?;
    let mut wanted = serde_json::to_value(desired).expect("k8s-openapi objects serialize");
    if let Some(index) = ctx.shard.child_label() {
        wanted["metadata"]["labels"][SHARD_LABEL] = serde_json::Value::String(index);
    }
    let hash = rendering_hash(&wanted);
    wanted["metadata"]["annotations"][APPLIED_HASH_ANNOTATION] = serde_json::Value::String(hash.clone());
    if let Some(cached) = store.get(&ObjectRef::new(&name).within(&ns)) {
        let same_rendering = cached.annotations().get(APPLIED_HASH_ANNOTATION) == Some(&hash);
        // The cache holds children compacted; this is the object as watched.
        let live = live_json(&*cached);
        if same_rendering && is_subset(&wanted, &live) && !handover::co_owned(&*cached) {
            return Ok((*cached).clone());
        }
        if same_rendering && let Some(agent) = desired.labels().get(AGENT_LABEL) {
            // Our rendering did not change, the object did: someone else edited a field we own.
            // Restored below; the Verified condition says so until the doors are probed again.
            ctx.verifier.record_drift(&ns, agent, format!("{} {name}", <K as k8s_openapi::Resource>::KIND));
        }
    }
    debug!(kind = <K as k8s_openapi::Resource>::KIND, %ns, %name, "applying");
    let api = Api::<K>::namespaced(ctx.client.clone(), &ns);
    let manager = ctx.shard.field_manager();
    let live = api
        .patch(&name, &PatchParams::apply(&manager).force(), &Patch::Apply(&wanted))
        .await
        .map_err(Error::kube("applying a child"))?;
    ctx.metrics.wrote(<K as k8s_openapi::Resource>::KIND, "apply");
    let live = match handover::release_others(&api, &live, &manager).await {
        Ok(Some(released)) => {
            ctx.metrics.wrote(<K as k8s_openapi::Resource>::KIND, "handover");
            released
        }
        Ok(None) => live,
        Err(e) => return Err(Error::kube("taking over a child from another shard")(e)),
    };
    repair(&api, &wanted, live, ctx).await
}

/// Takes back what server-side apply cannot: entries that another field manager added to a list
/// we own entry by entry (an extra volume or container), which an apply leaves in place because
/// it removes only what it owned before. The places still wrong after the apply are replaced
/// with what we want, in one JSON patch guarded by the resource version we saw.
async fn repair<K>(api: &Api<K>, wanted: &serde_json::Value, live: K, ctx: &Context) -> Result<K>
where
    K: Resource + k8s_openapi::Resource + Clone + Debug + Serialize + DeserializeOwned,
{
    let places = drift(wanted, &serde_json::to_value(&live).expect("k8s-openapi objects serialize"));
    if places.is_empty() {
        return Ok(live);
    }
    let mut ops =
        vec![serde_json::json!({"op": "test", "path": "/metadata/resourceVersion", "value": live.resource_version()})];
    ops.extend(places.into_iter().map(|(path, value)| serde_json::json!({"op": "add", "path": path, "value": value})));
    let patch: json_patch::Patch =
        serde_json::from_value(serde_json::Value::Array(ops)).expect("well-formed JSON patch");
    debug!(kind = <K as k8s_openapi::Resource>::KIND, name = %live.name_any(), "replacing what apply left");
    let repaired = api
        .patch(
            &live.name_any(),
            &PatchParams { field_manager: Some(ctx.shard.field_manager().into_owned()), ..PatchParams::default() },
            &Patch::<()>::Json(patch),
        )
        .await
        .map_err(Error::kube("replacing fields another manager added"))?;
    ctx.metrics.wrote(<K as k8s_openapi::Resource>::KIND, "repair");
    Ok(repaired)
}

/// A short hash of a rendered object (serde_json writes maps in key order, so it is stable).
fn rendering_hash(object: &serde_json::Value) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(object.to_string().as_bytes())[..8])
}

/// Deletes this agent's Services whose surface is no longer served. Each surface's Service has a
/// name derived from the agent's, so this looks up those few names in the cache rather than
/// scanning every cached Service: a scan on every reconcile made converging N agents cost N².
async fn remove_unwanted_services(agent: &MailAgent, children: &Children, ctx: &Context) -> Result<()> {
    let name = agent.name_any();
    let ns = agent.namespace();
    let uid = agent.uid();
    let wanted: Vec<_> = children.services.iter().map(|s| s.name_any()).collect();
    let unwanted = super::build::ALL_SURFACES
        .into_iter()
        .map(|surface| super::build::service_name(&name, surface))
        .filter(|service| !wanted.contains(service))
        .filter_map(|service| {
            ctx.stores.services.get(&ObjectRef::new(&service).within(ns.as_deref().unwrap_or_default()))
        })
        .filter(|s| {
            s.labels().get(AGENT_LABEL) == Some(&name)
                && s.owner_references().iter().any(|o| Some(&o.uid) == uid.as_ref())
        });
    for service in unwanted {
        let api = Api::<Service>::namespaced(ctx.client.clone(), ns.as_deref().unwrap_or_default());
        match api.delete(&service.name_any(), &DeleteParams::background()).await {
            Ok(_) => ctx.metrics.wrote("Service", "delete"),
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(e) => {
                return Err(Error::kube("removing a Service for a surface turned off")(e));
            }
        }
    }
    Ok(())
}
