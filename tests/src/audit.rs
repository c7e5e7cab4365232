//! Reads the API server's audit log, which records every write (create, update, patch, delete,
//! including subresources such as status) at Metadata level: who, what, which object, outcome.
//! Tests use it to count the writes a controller made, independent of the controller's own counters.

use std::path::PathBuf;

use serde::Deserialize;

/// The audit log file of one control plane.
#[derive(Clone, Debug)]
pub struct AuditLog {
    path: PathBuf,
}

/// One completed write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEvent {
    pub verb: String,
    pub username: String,
    pub user_agent: String,
    pub resource: String,
    pub subresource: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub code: Option<u16>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    stage: String,
    verb: String,
    #[serde(default)]
    user: RawUser,
    #[serde(default)]
    impersonated_user: Option<RawUser>,
    #[serde(default)]
    user_agent: String,
    #[serde(default)]
    object_ref: Option<RawRef>,
    #[serde(default)]
    response_status: Option<RawStatus>,
}

#[derive(Deserialize, Default)]
struct RawUser {
    #[serde(default)]
    username: String,
}

#[derive(Deserialize)]
struct RawRef {
    #[serde(default)]
    resource: String,
    subresource: Option<String>,
    namespace: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize)]
struct RawStatus {
    code: Option<u16>,
}

impl AuditLog {
    /// The log at `path`.
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    /// Every completed write so far. The effective user is the impersonated one when a client
    /// impersonates (as the tests' operator client does).
    pub fn writes(&self) -> Vec<AuditEvent> {
        let text = std::fs::read_to_string(&self.path).unwrap_or_default();
        text.lines()
            .filter_map(|line| serde_json::from_str::<Raw>(line).ok())
            .filter(|raw| raw.stage == "ResponseComplete")
            .filter(|raw| matches!(raw.verb.as_str(), "create" | "update" | "patch" | "delete" | "deletecollection"))
            .map(|raw| {
                let object = raw.object_ref.unwrap_or(RawRef { resource: String::new(), subresource: None, namespace: None, name: None });
                AuditEvent {
                    verb: raw.verb,
                    username: raw.impersonated_user.map_or(raw.user.username, |u| u.username),
                    user_agent: raw.user_agent,
                    resource: object.resource,
                    subresource: object.subresource,
                    namespace: object.namespace,
                    name: object.name,
                    code: raw.response_status.and_then(|s| s.code),
                }
            })
            .collect()
    }

    /// Completed writes by `username` in `namespace`.
    pub fn writes_by(&self, username: &str, namespace: &str) -> Vec<AuditEvent> {
        self.writes().into_iter().filter(|e| e.username == username && e.namespace.as_deref() == Some(namespace)).collect()
    }
}
