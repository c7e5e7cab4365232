//! The two unsubscribe state documents from the seeds, `data/sent_unsubscribe_links.json` and
//! `data/unsubscribed_methods.json`, and how their plain-JSON seed form is read.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::api::{MethodKind, UnsubscribeOutcome};
use crate::state::StateDocument;

/// The hash a link is stored under: SHA-256 of the exact URI, hex. The link's token never
/// reaches disk.
pub fn link_hash(uri: &str) -> String {
    hex::encode(Sha256::digest(uri.as_bytes()))
}

fn looks_like_hash(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// One link that was (or was about to be) used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentLink {
    /// The candidate key it belonged to (empty for seed entries).
    #[serde(default)]
    pub candidate: String,
    /// The method it was used for.
    #[serde(default)]
    pub method: Option<MethodKind>,
    /// The outcome; `pending` while the attempt is in flight, `None` for seed entries.
    #[serde(default)]
    pub outcome: Option<UnsubscribeOutcome>,
    /// When the attempt started.
    #[serde(default)]
    pub at: Option<DateTime<Utc>>,
}

/// `data/sent_unsubscribe_links.json`: every link ever used, by hash.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentLinks {
    /// Schema version.
    pub schema: u32,
    /// Link hash to what happened.
    pub links: BTreeMap<String, SentLink>,
}

impl SentLinks {
    /// The version this build writes.
    pub const SCHEMA_VERSION: u32 = 1;
}

impl StateDocument for SentLinks {
    const SCHEMA: u32 = Self::SCHEMA_VERSION;
    fn schema(&self) -> u32 {
        self.schema
    }
    /// The seeds keep a plain list of links (or an object keyed by link); hash them on load.
    fn from_legacy(value: serde_json::Value) -> Option<Self> {
        let keys: Vec<String> = match value {
            serde_json::Value::Array(items) => {
                items.into_iter().map(|item| item.as_str().map(str::to_string)).collect::<Option<_>>()?
            }
            serde_json::Value::Object(map) => map.into_iter().map(|(key, _)| key).collect(),
            _ => return None,
        };
        let links = keys
            .into_iter()
            .map(|key| {
                let hash = if looks_like_hash(&key) { key.to_ascii_lowercase() } else { link_hash(&key) };
                (hash, SentLink { candidate: String::new(), method: None, outcome: None, at: None })
            })
            .collect();
        Some(Self { schema: Self::SCHEMA, links })
    }
}

/// What was done for one sender or list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MethodRecord {
    /// The method used.
    pub method: Option<MethodKind>,
    /// Its outcome.
    pub outcome: Option<UnsubscribeOutcome>,
    /// When.
    pub at: Option<DateTime<Utc>>,
    /// Where it went, redacted.
    #[serde(default)]
    pub target: String,
    /// Why it was refused or needs a person, in words (never a link's secret parts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The seed file's entry as it was, when imported from the plain format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported: Option<serde_json::Value>,
}

/// `data/unsubscribed_methods.json`: per candidate, the last unsubscribe, and the last refusal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnsubscribedMethods {
    /// Schema version.
    pub schema: u32,
    /// Candidate key (list id or sender address) to record.
    pub senders: BTreeMap<String, MethodRecord>,
    /// Candidate key to the last execution refused before anything was contacted (no automatic
    /// method, a method that needs a person, a link already used), with its reason. Kept apart
    /// from `senders` so a refusal neither closes a candidate nor hides an earlier unsubscribe.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub refusals: BTreeMap<String, MethodRecord>,
}

impl UnsubscribedMethods {
    /// The version this build writes.
    pub const SCHEMA_VERSION: u32 = 1;
}

impl StateDocument for UnsubscribedMethods {
    const SCHEMA: u32 = Self::SCHEMA_VERSION;
    fn schema(&self) -> u32 {
        self.schema
    }
    /// The seeds keep an object keyed by sender whose values are a method name or an object;
    /// the value is kept verbatim and the method read when recognisable.
    fn from_legacy(value: serde_json::Value) -> Option<Self> {
        let serde_json::Value::Object(map) = value else { return None };
        let senders = map
            .into_iter()
            .map(|(sender, entry)| {
                let method_name = entry.as_str().or_else(|| entry.get("method").and_then(|m| m.as_str()));
                let method = method_name.and_then(parse_method_name);
                let record = MethodRecord {
                    method,
                    outcome: None,
                    at: None,
                    target: String::new(),
                    reason: None,
                    imported: Some(entry),
                };
                (sender.to_ascii_lowercase(), record)
            })
            .collect();
        Some(Self { schema: Self::SCHEMA, senders, refusals: BTreeMap::new() })
    }
}

fn parse_method_name(name: &str) -> Option<MethodKind> {
    match name.to_ascii_lowercase().replace(['-', ' '], "_").as_str() {
        "one_click" | "oneclick" | "post" | "http_post" => Some(MethodKind::OneClick),
        "mailto" | "email" => Some(MethodKind::Mailto),
        "manual" | "http" | "https" | "link" | "get" => Some(MethodKind::Manual),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_links_are_hashed_on_load() {
        let seed = serde_json::json!(["https://news.example/u?t=secret", link_hash("https://x.example/")]);
        let links = SentLinks::from_legacy(seed).unwrap();
        assert!(links.links.contains_key(&link_hash("https://news.example/u?t=secret")));
        assert!(links.links.contains_key(&link_hash("https://x.example/")));
        let stored = serde_json::to_string(&links).unwrap();
        assert!(!stored.contains("secret"), "{stored}");
    }

    #[test]
    fn seed_methods_keep_their_entries() {
        let seed = serde_json::json!({"News@Example.com": "mailto", "list.example": {"method": "one-click", "ts": 5}});
        let methods = UnsubscribedMethods::from_legacy(seed).unwrap();
        assert_eq!(methods.senders["news@example.com"].method, Some(MethodKind::Mailto));
        assert_eq!(methods.senders["list.example"].method, Some(MethodKind::OneClick));
        assert_eq!(methods.senders["list.example"].imported.as_ref().unwrap()["ts"], 5);
        assert!(UnsubscribedMethods::from_legacy(serde_json::json!([1, 2])).is_none());
    }
}
