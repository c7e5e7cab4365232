//! Reads the API server's audit log, which records every write (create, update, patch, delete,
//! including subresources such as status) at Metadata level: who, what, which object, outcome.
//! Tests use it to count the writes a controller made, independent of the controller's own counters.
//!
//! The API server runs with `--audit-log-mode=blocking`: an event is in the file before the
//! response reaches the client, so a test may read the log right after its writes return.

use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::PathBuf;

use serde::Deserialize;

/// The audit log file of one control plane.
#[derive(Clone, Debug)]
pub struct AuditLog {
    path: PathBuf,
}

/// A position in the audit log: the writes after it are the ones a test step caused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct AuditMark(u64);

/// Which writes to return; an unset field matches everything.
#[derive(Clone, Debug, Default)]
pub struct WriteFilter {
    /// Only writes logged after this mark.
    pub since: AuditMark,
    /// Only writes by this user (the impersonated one when a client impersonates).
    pub username: Option<String>,
    /// Only writes whose `User-Agent` starts with this.
    pub user_agent_prefix: Option<String>,
    /// Only writes to objects in this namespace.
    pub namespace: Option<String>,
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
    object_ref: RawRef,
    #[serde(default)]
    response_status: Option<RawStatus>,
}

#[derive(Deserialize, Default)]
struct RawUser {
    #[serde(default)]
    username: String,
}

#[derive(Deserialize, Default)]
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

/// The verbs that change state; the audit policy logs exactly these.
const WRITE_VERBS: [&str; 5] = ["create", "update", "patch", "delete", "deletecollection"];

impl AuditLog {
    /// The log at `path`.
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    /// The current end of the log.
    pub fn mark(&self) -> AuditMark {
        AuditMark(std::fs::metadata(&self.path).map_or(0, |m| m.len()))
    }

    /// Every completed write so far.
    pub fn writes(&self) -> Vec<AuditEvent> {
        self.writes_matching(&WriteFilter::default())
    }

    /// Completed writes by `username` in `namespace`.
    pub fn writes_by(&self, username: &str, namespace: &str) -> Vec<AuditEvent> {
        self.writes_matching(&WriteFilter {
            username: Some(username.to_owned()),
            namespace: Some(namespace.to_owned()),
            ..WriteFilter::default()
        })
    }

    /// Completed writes that pass `filter`, oldest first.
    pub fn writes_matching(&self, filter: &WriteFilter) -> Vec<AuditEvent> {
        self.read_from(filter.since)
            .lines()
            .filter_map(|line| serde_json::from_str::<Raw>(line).ok())
            .filter(|raw| raw.stage == "ResponseComplete" && WRITE_VERBS.contains(&raw.verb.as_str()))
            .map(AuditEvent::from)
            .filter(|event| filter.matches(event))
            .collect()
    }

    /// The log from `mark` on. A line the server is still writing fails to parse and is skipped;
    /// it is complete on the next read.
    fn read_from(&self, mark: AuditMark) -> String {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(&self.path)
            && file.seek(SeekFrom::Start(mark.0)).is_ok()
        {
            // A missing or unreadable log reads as empty: no writes seen.
            let _ = file.read_to_string(&mut text);
        }
        text
    }
}

impl WriteFilter {
    fn matches(&self, event: &AuditEvent) -> bool {
        self.username.as_ref().is_none_or(|u| *u == event.username)
            && self.user_agent_prefix.as_ref().is_none_or(|p| event.user_agent.starts_with(p.as_str()))
            && self.namespace.as_ref().is_none_or(|n| event.namespace.as_ref() == Some(n))
    }
}

impl From<Raw> for AuditEvent {
    fn from(raw: Raw) -> Self {
        Self {
            verb: raw.verb,
            username: raw.impersonated_user.map_or(raw.user.username, |u| u.username),
            user_agent: raw.user_agent,
            resource: raw.object_ref.resource,
            subresource: raw.object_ref.subresource,
            namespace: raw.object_ref.namespace,
            name: raw.object_ref.name,
            code: raw.response_status.and_then(|s| s.code),
        }
    }
}

/// Audit writes only (reads and watches are noise for write counting), at Metadata level so no
/// request body (and so no Secret value) is ever logged. Leases are left out: the API server
/// renews its own identity Lease every few seconds.
pub(crate) const AUDIT_POLICY: &str = "apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  resources:
  - group: coordination.k8s.io
    resources: [leases]
- level: Metadata
  verbs: [create, update, patch, delete, deletecollection]
- level: None
";

#[cfg(test)]
mod tests {
    use super::*;

    fn line(verb: &str, user: &str, impersonated: Option<&str>, ns: &str, stage: &str) -> String {
        let impersonated = impersonated.map(|u| serde_json::json!({"username": u}));
        serde_json::json!({
            "stage": stage, "verb": verb, "user": {"username": user}, "impersonatedUser": impersonated,
            "userAgent": "kube-rs/5", "objectRef": {"resource": "configmaps", "namespace": ns, "name": "c"},
            "responseStatus": {"code": 201}
        })
        .to_string()
            + "\n"
    }

    #[test]
    fn counts_completed_writes_by_effective_user_since_a_mark() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path().join("audit.log"));
        assert!(log.writes().is_empty(), "a missing log has no writes");
        std::fs::write(&log.path, line("create", "admin", None, "a", "ResponseComplete")).unwrap();
        let mark = log.mark();
        let later = [
            line("patch", "admin", Some("system:serviceaccount:x:op"), "a", "ResponseComplete"),
            line("patch", "admin", Some("system:serviceaccount:x:op"), "a", "ResponseStarted"),
            line("update", "admin", Some("system:serviceaccount:x:op"), "b", "ResponseComplete"),
            line("get", "admin", None, "a", "ResponseComplete"),
            "{\"stage\": \"Respo".to_owned(),
        ];
        std::fs::write(&log.path, line("create", "admin", None, "a", "ResponseComplete") + &later.concat()).unwrap();

        assert_eq!(log.writes().len(), 3);
        let operator = "system:serviceaccount:x:op";
        let since = WriteFilter { since: mark, username: Some(operator.into()), ..WriteFilter::default() };
        let verbs: Vec<_> = log.writes_matching(&since).into_iter().map(|e| e.verb).collect();
        assert_eq!(verbs, ["patch", "update"]);
        assert_eq!(log.writes_by(operator, "a").len(), 1);
        assert_eq!(log.writes_by("admin", "a").len(), 1, "impersonated writes are not the admin's");
    }
}
