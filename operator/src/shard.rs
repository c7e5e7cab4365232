//! Which operator process owns which object when several run side by side.
//!
//! Shard `i` of `n` owns a MailAgent or AuthPolicy when the object's `mailagent.dev/shard` label
//! names `i`, or, without a valid label, when a jump consistent hash of its namespace and name
//! lands on `i`. The hash is stable across processes and versions (SHA-256, not Rust's
//! per-process hasher), so every shard agrees without talking to the others; and going from `n`
//! to `n + 1` shards moves only the `1 / (n + 1)` of objects the new shard takes, never shuffles
//! the rest between old shards (a plain `hash % n` would move almost all of them).
//!
//! Each shard writes under its own field manager and holds its own Lease; one shard (`n = 1`)
//! uses the names an unsharded operator always used, so an existing install changes nothing.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
use sha2::{Digest, Sha256};

/// Label that pins an object to a shard (on MailAgents and AuthPolicies, set by users), and
/// that says which shard wrote a child (set by the operator, so each shard watches only its own).
pub const SHARD_LABEL: &str = "mailagent.dev/shard";
/// The field manager, and the Lease, of an unsharded operator; shards add `-shard-<i>`.
pub const BASE_NAME: &str = "mailagent-operator";
/// Most shards one fleet may run (the chart's limit too).
pub const MAX_SHARDS: u32 = 64;

/// This process's place among the shards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    index: u32,
    count: u32,
}

impl Default for Shard {
    /// The whole fleet: one operator.
    fn default() -> Self {
        Self { index: 0, count: 1 }
    }
}

impl Shard {
    /// Shard `index` of `count`, or why not.
    pub fn new(index: u32, count: u32) -> Result<Self, String> {
        if count == 0 || count > MAX_SHARDS {
            return Err(format!("SHARD_COUNT must be 1..={MAX_SHARDS}, got {count}"));
        }
        if index >= count {
            return Err(format!("SHARD_INDEX must be below SHARD_COUNT ({count}), got {index}"));
        }
        Ok(Self { index, count })
    }

    pub fn index(&self) -> u32 {
        self.index
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    /// Whether there is more than one shard.
    pub fn is_sharded(&self) -> bool {
        self.count > 1
    }

    /// The shard that owns the object `namespace/name` with these labels.
    pub fn owner(count: u32, namespace: &str, name: &str, labels: Option<&BTreeMap<String, String>>) -> u32 {
        let pinned = labels.and_then(|l| l.get(SHARD_LABEL)).and_then(|v| v.parse::<u32>().ok());
        match pinned {
            Some(index) if index < count => index,
            _ => jump(key(namespace, name), count),
        }
    }

    /// Whether this shard owns an object.
    pub fn owns(&self, meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> bool {
        let (namespace, name) =
            (meta.namespace.as_deref().unwrap_or_default(), meta.name.as_deref().unwrap_or_default());
        Self::owner(self.count, namespace, name, meta.labels.as_ref()) == self.index
    }

    /// The field manager of every write this shard makes.
    pub fn field_manager(&self) -> Cow<'static, str> {
        self.name()
    }

    /// The Lease this shard's replicas compete for.
    pub fn lease_name(&self) -> Cow<'static, str> {
        self.name()
    }

    fn name(&self) -> Cow<'static, str> {
        if self.is_sharded() {
            Cow::Owned(format!("{BASE_NAME}-shard-{}", self.index))
        } else {
            Cow::Borrowed(BASE_NAME)
        }
    }

    /// The label value this shard puts on its children (`None` unsharded: an existing install's
    /// children keep exactly their labels).
    pub fn child_label(&self) -> Option<String> {
        self.is_sharded().then(|| self.index.to_string())
    }

    /// Extra label selector for the child watches: only this shard's children.
    pub fn child_selector(&self) -> Option<String> {
        self.child_label().map(|index| format!("{SHARD_LABEL}={index}"))
    }

    /// Field managers of other operator shards among `entries` (see [`other_managers`]).
    pub fn others<'a>(&self, entries: &'a [ManagedFieldsEntry]) -> Vec<&'a str> {
        other_managers(entries, &self.field_manager())
    }
}

/// Field managers of operator shards other than `ours` (or of an unsharded operator, after a
/// scale-out) among `entries`: what a hand-over must take away, so each object keeps one writer.
pub fn other_managers<'a>(entries: &'a [ManagedFieldsEntry], ours: &str) -> Vec<&'a str> {
    let mut others: Vec<&str> =
        entries.iter().filter_map(|e| e.manager.as_deref()).filter(|m| is_operator_manager(m) && *m != ours).collect();
    others.sort_unstable();
    others.dedup();
    others
}

/// Whether `manager` is a field manager of some operator shard (or of an unsharded operator).
pub fn is_operator_manager(manager: &str) -> bool {
    manager == BASE_NAME
        || manager
            .strip_prefix(BASE_NAME)
            .and_then(|rest| rest.strip_prefix("-shard-"))
            .is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
}

/// A stable 64-bit key for `namespace/name`.
fn key(namespace: &str, name: &str) -> u64 {
    let digest = Sha256::new().chain_update(namespace).chain_update("/").chain_update(name).finalize();
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// Jump consistent hash (Lamping and Veach, 2014): a bucket in `0..buckets` for `key`, such that
/// growing `buckets` by one moves only the keys that land in the new bucket. Written out here
/// because it is eight lines and exactly the published algorithm.
fn jump(mut key: u64, buckets: u32) -> u32 {
    let (mut b, mut j): (i64, i64) = (-1, 0);
    while j < i64::from(buckets) {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    b as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(value: &str) -> BTreeMap<String, String> {
        BTreeMap::from([(SHARD_LABEL.to_owned(), value.to_owned())])
    }

    #[test]
    fn every_object_has_exactly_one_owner_and_the_load_is_even() {
        let count = 4;
        let mut per_shard = [0u32; 4];
        for i in 0..10_000 {
            let owner = Shard::owner(count, "mail", &format!("agent-{i}"), None);
            per_shard[owner as usize] += 1;
            let owning: Vec<u32> = (0..count)
                .filter(|&s| {
                    let meta = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                        name: Some(format!("agent-{i}")),
                        namespace: Some("mail".into()),
                        ..Default::default()
                    };
                    Shard::new(s, count).unwrap().owns(&meta)
                })
                .collect();
            assert_eq!(owning, [owner]);
        }
        for n in per_shard {
            assert!((2_300..=2_700).contains(&n), "uneven: {per_shard:?}");
        }
    }

    #[test]
    fn one_more_shard_moves_only_what_the_new_shard_takes() {
        let (mut moved, total) = (0, 10_000);
        for i in 0..total {
            let name = format!("agent-{i}");
            let (before, after) = (Shard::owner(3, "mail", &name, None), Shard::owner(4, "mail", &name, None));
            if before != after {
                assert_eq!(after, 3, "{name} moved between old shards");
                moved += 1;
            }
        }
        // About a quarter moves (to the new shard); `hash % n` would move three quarters.
        assert!((2_200..=2_800).contains(&moved), "moved {moved}");
    }

    #[test]
    fn the_label_pins_an_object_and_a_bad_label_falls_back_to_the_hash() {
        let hashed = Shard::owner(3, "mail", "inbox", None);
        let pinned = (hashed + 1) % 3;
        assert_eq!(Shard::owner(3, "mail", "inbox", Some(&labels(&pinned.to_string()))), pinned);
        assert_eq!(Shard::owner(3, "mail", "inbox", Some(&labels("7"))), hashed, "no shard 7 of 3");
        assert_eq!(Shard::owner(3, "mail", "inbox", Some(&labels("two"))), hashed);
        assert_eq!(Shard::owner(1, "mail", "inbox", Some(&labels("2"))), 0, "one shard owns everything");
    }

    #[test]
    fn one_shard_keeps_the_unsharded_names() {
        let one = Shard::default();
        assert_eq!(one.field_manager(), "mailagent-operator");
        assert_eq!(one.lease_name(), "mailagent-operator");
        assert_eq!(one.child_selector(), None);
        let two = Shard::new(1, 2).unwrap();
        assert_eq!(two.field_manager(), "mailagent-operator-shard-1");
        assert_eq!(two.child_selector().as_deref(), Some("mailagent.dev/shard=1"));
        assert!(Shard::new(2, 2).is_err());
        assert!(Shard::new(0, 0).is_err());
        assert!(Shard::new(0, MAX_SHARDS + 1).is_err());
    }

    #[test]
    fn others_are_the_other_operator_managers_only() {
        let entry = |m: &str| ManagedFieldsEntry { manager: Some(m.into()), ..Default::default() };
        let entries = [
            entry("mailagent-operator-shard-1"),
            entry("kubectl-edit"),
            entry("mailagent-operator"),
            entry("mailagent-operator-shard-0"),
            entry("mailagent-operator-shardx"),
            entry("mailagent-rotator"),
            entry("mailagent-operator-shard-0"),
        ];
        let shard = Shard::new(1, 2).unwrap();
        assert_eq!(shard.others(&entries), ["mailagent-operator", "mailagent-operator-shard-0"]);
        assert_eq!(Shard::default().others(&entries), ["mailagent-operator-shard-0", "mailagent-operator-shard-1"]);
    }
}
