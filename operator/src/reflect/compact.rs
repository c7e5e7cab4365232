//! Children cached compactly.
//!
//! A cached child is read for two things only: the reconcile's comparison with what it renders
//! (`apply::ensure`: the applied-hash annotation, then [`super::is_subset`] over the whole
//! object) and a few typed fields (labels and owner references to map a child to its agent and
//! to find unwanted Services; a Deployment's replicas, generation and status for the agent's
//! readiness). As full k8s-openapi objects the children dominated the operator's memory: the
//! typed structs hold every optional field inline, so one cached Deployment took about 25 KiB
//! of heap (four `Volume`s alone are 3.2 KiB each) for 3.5 KiB of JSON, and the eight children
//! of an agent about 45 KiB.
//!
//! So each child is cached as its typed metadata (plus, for a Deployment, `spec.replicas` and
//! the status without conditions), and everything else (spec, data, ...) as one compact JSON
//! string in the [`REST`] annotation. [`super::live_json`] puts the two back together for the
//! comparison: it yields exactly the JSON of the object as watched, so every `is_subset` answer
//! (and with it drift detection and zero-write resyncs) is what it was with full objects.
//!
//! The annotation exists only in the operator's memory: nothing writes a cached object back
//! (apply sends the rendering, never a cached copy).

use std::any::Any;
use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::Resource;
use serde::Serialize;

/// Holds a compacted child's fields other than metadata and status, as JSON.
pub const REST: &str = "mailagent.dev/cached-rest";
/// kubectl's copy of what someone applied by hand: possibly large, never rendered by us.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Compacts `obj` when it is one of the children's kinds; anything else is left as it is.
/// (Dispatch by type because the watches are generic over kinds that need not be `Serialize`.)
pub fn compact(obj: &mut dyn Any) {
    use std::mem::take;
    if let Some(d) = obj.downcast_mut::<Deployment>() {
        split(d, |d| {
            let replicas = d.spec.as_ref().and_then(|s| s.replicas);
            let mut status = take(&mut d.status);
            // The agent's readiness reads replica counts and generations, never the conditions.
            if let Some(status) = &mut status {
                status.conditions = None;
            }
            let spec = Some(DeploymentSpec { replicas, ..DeploymentSpec::default() });
            Deployment { metadata: take(&mut d.metadata), spec, status }
        });
    } else if let Some(s) = obj.downcast_mut::<Service>() {
        split(s, |s| Service { metadata: take(&mut s.metadata), spec: None, status: take(&mut s.status) });
    } else if let Some(c) = obj.downcast_mut::<ConfigMap>() {
        split(c, |c| ConfigMap { metadata: take(&mut c.metadata), ..ConfigMap::default() });
    } else if let Some(a) = obj.downcast_mut::<ServiceAccount>() {
        split(a, |a| ServiceAccount { metadata: take(&mut a.metadata), ..ServiceAccount::default() });
    } else if let Some(p) = obj.downcast_mut::<PersistentVolumeClaim>() {
        split(p, |p| PersistentVolumeClaim {
            metadata: take(&mut p.metadata),
            spec: None,
            status: take(&mut p.status),
        });
    } else if let Some(n) = obj.downcast_mut::<NetworkPolicy>() {
        split(n, |n| NetworkPolicy { metadata: take(&mut n.metadata), spec: None });
    }
}

/// Replaces `obj` by `typed(obj)` (what stays typed: metadata, status) and keeps the rest of
/// its fields as JSON in the [`REST`] annotation.
fn split<K: Resource + Serialize>(obj: &mut K, typed: impl FnOnce(&mut K) -> K) {
    let Ok(serde_json::Value::Object(mut rest)) = serde_json::to_value(&*obj) else { return };
    for key in ["apiVersion", "kind", "metadata", "status"] {
        rest.remove(key);
    }
    let mut cached = typed(obj);
    let annotations = cached.meta_mut().annotations.get_or_insert_with(BTreeMap::new);
    annotations.remove(LAST_APPLIED);
    annotations.insert(REST.to_owned(), serde_json::Value::Object(rest).to_string());
    *obj = cached;
}

/// The JSON of a cached object as it was watched (less what [`compact`] drops, which we never
/// render): its typed part with the [`REST`] fields put back.
pub fn live_json<K: Serialize>(cached: &K) -> serde_json::Value {
    let mut live = serde_json::to_value(cached).expect("k8s-openapi objects serialize");
    let annotations = live.pointer_mut("/metadata/annotations").and_then(|a| a.as_object_mut());
    let Some(serde_json::Value::String(rest)) = annotations.and_then(|a| a.remove(REST)) else { return live };
    if let (Ok(serde_json::Value::Object(rest)), Some(live)) = (serde_json::from_str(&rest), live.as_object_mut()) {
        // Whole top-level fields: a Deployment's typed placeholder spec is replaced, not merged.
        live.extend(rest);
    }
    live
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::mailagent::build::fixtures::{agent, policy, valid};
    use crate::controller::mailagent::build::{self, Children};
    use crate::labels::{AGENT_LABEL, APPLIED_HASH_ANNOTATION};
    use crate::reflect::is_subset;
    use kube::ResourceExt;
    use serde::de::DeserializeOwned;
    use serde_json::{Value, json};

    /// Every option that adds fields to a child turned on.
    fn everything_on() -> Children {
        let agent = agent(
            "replicas: 2\n\
             resources: {requests: {cpu: 100m, memory: 128Mi}, limits: {memory: 1Gi}}\n\
             mailbox: {provider: gmail, credentialsSecretRef: {name: gmail-token}}\n\
             surfaces: {rest: true, a2a: true, mcp: true}\n\
             schedules: {digest: '0 8 * * *', scan: '*/15 * * * *'}\n\
             storage: {accessMode: ReadWriteMany, storageClassName: shared, size: 5Gi}\n\
             network: {ingressFrom: [{podSelector: {matchLabels: {role: gateway}}}],\n\
             \x20 egress: [{to: [{ipBlock: {cidr: 203.0.113.0/24}}], ports: [{port: 993}]}]}\n",
        );
        let policy = policy("mode: api_key\napiKeys: [{name: ci, scopes: [mail:scan]}]");
        let mut children = build::build(&valid(&agent, Some(&policy)));
        build::admit_operator(&mut children.network_policy, "mailagent-system");
        children
    }

    /// What the API server hands back for `child`: our fields, its metadata and defaults, a
    /// status, and an annotation kubectl left.
    fn as_watched(child: &impl Serialize) -> Value {
        let mut live = serde_json::to_value(child).unwrap();
        let meta = live["metadata"].as_object_mut().unwrap();
        meta.insert("uid".into(), json!("5637098f-35b3-4c35-96f7-45fe1d65c337"));
        meta.insert("resourceVersion".into(), json!("1221"));
        meta.insert("generation".into(), json!(3));
        meta.insert("creationTimestamp".into(), json!("2026-11-28T17:00:59Z"));
        meta.insert(
            "annotations".into(),
            json!({APPLIED_HASH_ANNOTATION: "0123456789abcdef", LAST_APPLIED: "{\"big\": true}"}),
        );
        if live["kind"] == "Deployment" {
            live["spec"]["progressDeadlineSeconds"] = json!(600);
            live["status"] = json!({"observedGeneration": 3, "readyReplicas": 2, "updatedReplicas": 2,
                "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}]});
        }
        live
    }

    fn compacted<K: Resource + Serialize + DeserializeOwned + 'static>(live: &Value) -> K {
        let mut obj: K = serde_json::from_value(live.clone()).unwrap();
        compact(&mut obj);
        obj
    }

    /// The watched JSON less what compaction drops on purpose.
    fn without_dropped(mut live: Value) -> Value {
        live["metadata"]["annotations"].as_object_mut().unwrap().remove(LAST_APPLIED);
        if let Some(status) = live.get_mut("status").and_then(Value::as_object_mut) {
            status.remove("conditions");
        }
        live
    }

    /// Compaction round-trips every field, so `is_subset` (of any rendering) answers as before,
    /// for an object as applied and for one edited by hand.
    fn round_trips<K>(child: &K, edit: &str, hand_edit: Value)
    where
        K: Resource<DynamicType = ()> + Serialize + DeserializeOwned + 'static,
    {
        let wanted = {
            let mut wanted = serde_json::to_value(child).unwrap();
            wanted["metadata"]["annotations"] = json!({APPLIED_HASH_ANNOTATION: "0123456789abcdef"});
            wanted
        };
        let watched = as_watched(child);
        // Typed, then back to JSON: the fields a k8s-openapi object keeps.
        let full = serde_json::to_value(serde_json::from_value::<K>(watched).unwrap()).unwrap();
        let cached = compacted::<K>(&full);
        assert!(cached.meta().annotations.as_ref().unwrap().contains_key(REST));
        let live = live_json(&cached);
        assert_eq!(live, without_dropped(full.clone()));
        assert!(is_subset(&wanted, &live));
        // What compaction drops, the builder never renders.
        assert_eq!(without_dropped(wanted.clone()), wanted);

        // A hand edit of any field we render is seen in the compacted copy as in the full one.
        let mut edited = full.clone();
        *edited.pointer_mut(edit).unwrap_or_else(|| panic!("{edit} in {}", K::kind(&()))) = hand_edit;
        assert!(!is_subset(&wanted, &edited), "{edit} is a field we render");
        assert!(!is_subset(&wanted, &live_json(&compacted::<K>(&edited))), "{edit} edit of {}", K::kind(&()));
    }

    #[test]
    fn compacted_children_compare_exactly_as_full_ones() {
        let children = everything_on();
        round_trips(&children.service_account, "/automountServiceAccountToken", json!(true));
        let setting = format!("/data/{}", children.config_map.data.as_ref().unwrap().keys().next().unwrap());
        round_trips(&children.config_map, &setting, json!("edited"));
        round_trips(&children.deployment, "/spec/template/spec/hostNetwork", json!(true));
        round_trips(&children.deployment, "/spec/template/spec/volumes/0/name", json!("other"));
        for service in &children.services {
            round_trips(service, "/spec/ports/0/port", json!(1));
        }
        round_trips(&children.pvc, "/spec/resources/requests/storage", json!("1Gi"));
        round_trips(&children.network_policy, "/spec/policyTypes", json!(["Ingress"]));
    }

    #[test]
    fn what_is_read_typed_stays_typed() {
        let children = everything_on();
        let deployment = compacted::<Deployment>(&as_watched(&children.deployment));
        assert_eq!(deployment.spec.as_ref().and_then(|s| s.replicas), Some(2));
        assert_eq!(deployment.metadata.generation, Some(3));
        let status = deployment.status.as_ref().unwrap();
        assert_eq!(
            (status.observed_generation, status.ready_replicas, status.updated_replicas),
            (Some(3), Some(2), Some(2))
        );
        for service in &children.services {
            let cached = compacted::<Service>(&as_watched(service));
            assert_eq!(cached.metadata.labels.as_ref().unwrap().get(AGENT_LABEL).map(String::as_str), Some("inbox"));
            assert_eq!(cached.metadata.owner_references, service.metadata.owner_references);
            assert_eq!(cached.metadata.namespace.as_deref(), Some("team"));
            assert_eq!(cached.annotations().get(APPLIED_HASH_ANNOTATION).map(String::as_str), Some("0123456789abcdef"));
        }
    }

    #[test]
    fn other_kinds_and_plain_objects_are_left_alone() {
        let mut secret = k8s_openapi::api::core::v1::Secret::default();
        compact(&mut secret);
        assert_eq!(secret, Default::default());
        let plain =
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"}, "spec": {"type": "ClusterIP"}});
        let service: Service = serde_json::from_value(plain.clone()).unwrap();
        assert_eq!(live_json(&service), plain);
    }
}
