//! Labels and annotations the operator puts on what it makes. Children are found by these
//! labels (orphan cleanup, watches), never by name patterns alone.

use std::collections::BTreeMap;

/// `app.kubernetes.io/managed-by` value on every child.
pub const MANAGED_BY: &str = "mailagent-operator";
/// Which MailAgent a child belongs to.
pub const AGENT_LABEL: &str = "mailagent.dev/agent";
/// Which surface a per-surface child serves.
pub const SURFACE_LABEL: &str = "mailagent.dev/surface";
/// Pod-template annotation holding the hash of settings that need a restart: a real change rolls
/// the pods, a no-op (or an operator upgrade that renders the same settings) does not.
pub const CONFIG_HASH_ANNOTATION: &str = "mailagent.dev/config-hash";
/// Hash of the object as the operator last rendered it; a different hash means apply again.
pub const APPLIED_HASH_ANNOTATION: &str = "mailagent.dev/applied-hash";
/// The label selector matching everything this operator manages.
pub const MANAGED_SELECTOR: &str = "app.kubernetes.io/managed-by=mailagent-operator";

/// Labels every child of `agent` carries; the first three also select its pods.
pub fn child_labels(agent: &str) -> BTreeMap<String, String> {
    let mut labels = selector_labels(agent);
    labels.insert("app.kubernetes.io/managed-by".into(), MANAGED_BY.into());
    labels.insert("app.kubernetes.io/component".into(), "mail-assistant".into());
    labels
}

/// The stable subset used in selectors (a Deployment's selector is immutable).
pub fn selector_labels(agent: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), "mailagent".to_owned()),
        ("app.kubernetes.io/instance".to_owned(), agent.to_owned()),
        (AGENT_LABEL.to_owned(), agent.to_owned()),
    ])
}
