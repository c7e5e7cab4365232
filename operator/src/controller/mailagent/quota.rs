//! Who is in which Gmail quota group, as the reconciles find out, and what each member is
//! allotted (the arithmetic is [`mailagent_crds::quota`]).
//!
//! Membership is learnt, not listed: a reconcile knows its agent's group only after reading the
//! spec (or the OAuth client in the credentials Secret), so each reconcile records its agent here.
//! When a group's shape (rounded head count, scan spread, budget) changes, the other members are
//! sent to reconcile again and render their new share; a shape that does not change (most joins,
//! thanks to the rounding) costs them nothing. One book serves every namespace the operator
//! watches, because a Google project's quota spans namespaces.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use futures::channel::mpsc::UnboundedSender;
use kube::runtime::reflector::ObjectRef;
use mailagent_crds::QuotaStatus;
use mailagent_crds::quota::GroupShape;

use super::Agent;

/// Where to send an agent that must be reconciled again.
pub type Trigger = UnboundedSender<ObjectRef<Agent>>;

/// The quota groups of every Gmail agent the operator has reconciled.
#[derive(Default)]
pub struct QuotaBook {
    inner: Mutex<Book>,
}

impl std::fmt::Debug for QuotaBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let book = self.inner.lock().expect("not poisoned");
        f.debug_struct("QuotaBook").field("members", &book.members.len()).field("groups", &book.groups.len()).finish()
    }
}

/// Members are indexed both ways, so that a join costs the size of its own group at most (and
/// only when the group's shape moves), not the size of the fleet.
#[derive(Default)]
struct Book {
    members: HashMap<ObjectRef<Agent>, Member>,
    groups: HashMap<String, Group>,
}

#[derive(Default)]
struct Group {
    members: HashSet<ObjectRef<Agent>>,
    /// How many members state each budget: the smallest one holds for the whole group.
    budgets: BTreeMap<u32, usize>,
    /// The shape the members were last rendered with.
    rendered: Option<GroupShape>,
}

struct Member {
    group: String,
    /// `None`: the agent named no group and its credentials name no OAuth client (a group of one).
    named: Option<String>,
    budget: u32,
    trigger: Trigger,
}

/// What the agent joins.
pub struct Joining {
    /// The agent.
    pub agent: ObjectRef<Agent>,
    /// Its group, or `None` for a group of its own.
    pub group: Option<String>,
    /// The budget it states for the group (units a minute).
    pub budget: u32,
    /// Where to send it when its group changes shape.
    pub trigger: Trigger,
}

impl QuotaBook {
    /// Records every agent given, before the first reconcile: the agents that name their group
    /// in the spec, so that the first rendering of each already counts the whole group instead
    /// of re-rendering the early ones as the rest join. Sends nobody to reconcile.
    pub fn seed(&self, members: impl IntoIterator<Item = Joining>) {
        let mut book = self.inner.lock().expect("not poisoned");
        for Joining { agent, group, budget, trigger } in members {
            let group_key = group_key(&agent, group.as_deref());
            book.insert(agent, Member { group: group_key, named: group, budget, trigger });
        }
        for group in book.groups.values_mut() {
            group.rendered = Some(group.shape());
        }
    }

    /// Records the agent in its group (leaving any other) and returns its allotment; `None`
    /// when `exists` says the agent is gone (a reconcile that outlived its agent must not bring
    /// it back: `exists` is asked under the book's lock, which the deletion's [`Self::leave`]
    /// also takes after the cache forgot the agent). Members whose allotment the change alters
    /// are sent to reconcile again.
    pub fn join(&self, joining: Joining, exists: impl FnOnce() -> bool) -> Option<QuotaStatus> {
        let Joining { agent, group: named, budget, trigger } = joining;
        let group = group_key(&agent, named.as_deref());
        let mut book = self.inner.lock().expect("not poisoned");
        if !exists() {
            return None;
        }
        let previous =
            book.insert(agent.clone(), Member { group: group.clone(), named: named.clone(), budget, trigger });
        if let Some(old) = previous.map(|m| m.group).filter(|old| *old != group) {
            book.reshape(&old, None);
        }
        let shape = book.reshape(&group, Some(&agent));
        let members = book.groups.get(&group).map_or(0, |g| g.members.len());
        Some(shape.allot(&member_key(&agent)).status(named, members, &shape))
    }

    /// Forgets the agent (deleted, or no longer a Gmail mailbox); the rest of its group is
    /// re-rendered if that changes their allotment.
    pub fn leave(&self, agent: &ObjectRef<Agent>) {
        let mut book = self.inner.lock().expect("not poisoned");
        if let Some(member) = book.remove(agent) {
            book.reshape(&member.group, None);
        }
    }

    /// Forgets every agent for which `exists` is false (after a re-list, which hides deletions).
    pub fn retain(&self, exists: impl Fn(&ObjectRef<Agent>) -> bool) {
        let mut book = self.inner.lock().expect("not poisoned");
        let gone: Vec<_> = book.members.keys().filter(|a| !exists(a)).cloned().collect();
        for agent in gone {
            if let Some(member) = book.remove(&agent) {
                book.reshape(&member.group, None);
            }
        }
    }

    /// The named groups and their member counts, for metrics and tests.
    pub fn groups(&self) -> Vec<(String, usize)> {
        let book = self.inner.lock().expect("not poisoned");
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for member in book.members.values().filter(|m| m.named.is_some()) {
            *counts.entry(&member.group).or_default() += 1;
        }
        let mut groups: Vec<_> = counts.into_iter().map(|(g, n)| (g.to_owned(), n)).collect();
        groups.sort();
        groups
    }
}

impl Book {
    /// Records the member (in its group's index too); returns what it replaced.
    fn insert(&mut self, agent: ObjectRef<Agent>, member: Member) -> Option<Member> {
        let previous = self.remove(&agent);
        let group = self.groups.entry(member.group.clone()).or_default();
        group.members.insert(agent.clone());
        *group.budgets.entry(member.budget).or_default() += 1;
        self.members.insert(agent, member);
        previous
    }

    /// Forgets the member (its group's index too, but not the group's rendered shape: see
    /// [`Self::reshape`]).
    fn remove(&mut self, agent: &ObjectRef<Agent>) -> Option<Member> {
        let member = self.members.remove(agent)?;
        if let Some(group) = self.groups.get_mut(&member.group) {
            group.members.remove(agent);
            if let Some(count) = group.budgets.get_mut(&member.budget) {
                *count -= 1;
                if *count == 0 {
                    group.budgets.remove(&member.budget);
                }
            }
        }
        Some(member)
    }

    /// The group's shape now; if it differs from the one its members were rendered with, every
    /// member but `except` is sent to reconcile again. An empty group is forgotten.
    fn reshape(&mut self, group: &str, except: Option<&ObjectRef<Agent>>) -> GroupShape {
        let Some(entry) = self.groups.get_mut(group).filter(|g| !g.members.is_empty()) else {
            self.groups.remove(group);
            return Group::default().shape();
        };
        let shape = entry.shape();
        if entry.rendered != Some(shape) {
            for agent in entry.members.iter().filter(|a| Some(*a) != except) {
                if let Some(member) = self.members.get(agent) {
                    let _ = member.trigger.unbounded_send(agent.clone());
                }
            }
            entry.rendered = Some(shape);
        }
        shape
    }
}

impl Group {
    /// Its shape from its members now.
    fn shape(&self) -> GroupShape {
        match self.budgets.first_key_value() {
            Some((&smallest, _)) => GroupShape::new(self.members.len(), smallest),
            None => GroupShape::new(1, mailagent_crds::quota::PROJECT_UNITS_PER_MINUTE),
        }
    }
}

/// The group an agent is in: the one it names, or a group of its own.
fn group_key(agent: &ObjectRef<Agent>, named: Option<&str>) -> String {
    named.map_or_else(|| format!("agent:{}", member_key(agent)), str::to_owned)
}

/// The stable key an agent's scan delay is hashed from.
fn member_key(agent: &ObjectRef<Agent>) -> String {
    format!("{}/{}", agent.namespace.as_deref().unwrap_or_default(), agent.name)
}

#[cfg(test)]
mod tests {
    use futures::channel::mpsc;

    use super::*;

    fn agent(name: &str) -> ObjectRef<Agent> {
        ObjectRef::new(name).within("mail")
    }

    fn drain(rx: &mut mpsc::UnboundedReceiver<ObjectRef<Agent>>) -> Vec<String> {
        let mut names = Vec::new();
        while let Ok(agent) = rx.try_recv() {
            names.push(agent.name);
        }
        names.sort();
        names
    }

    #[test]
    fn a_group_divides_its_budget_and_re_renders_members_only_when_shares_move() {
        let book = QuotaBook::default();
        let (tx, mut rx) = mpsc::unbounded();
        let join = |name: &str, group: &str| {
            book.join(
                Joining { agent: agent(name), group: Some(group.into()), budget: 2_000, trigger: tx.clone() },
                || true,
            )
            .expect("exists")
        };
        let first = join("a", "acme");
        assert_eq!((first.members, first.units_per_minute), (1, 2_000));
        assert!(drain(&mut rx).is_empty(), "the joining agent is being reconciled already");
        let second = join("b", "acme");
        assert_eq!((second.members, second.units_per_minute), (2, 1_000));
        assert_eq!(drain(&mut rx), ["a"], "a's share halved");
        // Joining again with nothing changed (a resync) moves nobody.
        join("b", "acme");
        assert!(drain(&mut rx).is_empty());
        // Another group is independent.
        assert_eq!(join("c", "other").units_per_minute, 2_000);
        assert!(drain(&mut rx).is_empty());
        // Leaving gives the share back.
        book.leave(&agent("b"));
        assert_eq!(drain(&mut rx), ["a"]);
        assert_eq!(join("a", "acme").units_per_minute, 2_000);
        assert_eq!(book.groups(), [("acme".to_owned(), 1), ("other".to_owned(), 1)]);
    }

    #[test]
    fn moving_between_groups_re_renders_both_and_deleted_agents_are_forgotten() {
        let book = QuotaBook::default();
        let (tx, mut rx) = mpsc::unbounded();
        for name in ["a", "b", "c"] {
            book.join(
                Joining { agent: agent(name), group: Some("one".into()), budget: 3_000, trigger: tx.clone() },
                || true,
            )
            .expect("exists");
        }
        drain(&mut rx);
        let moved = book
            .join(Joining { agent: agent("c"), group: Some("two".into()), budget: 3_000, trigger: tx.clone() }, || true)
            .expect("exists");
        assert_eq!((moved.members, moved.units_per_minute), (1, 3_000));
        assert_eq!(drain(&mut rx), ["a", "b"]);
        book.retain(|a| a.name != "a");
        assert_eq!(drain(&mut rx), ["b"]);
        // No group named: a group of one, whatever others do.
        let alone = book
            .join(Joining { agent: agent("d"), group: None, budget: 3_000, trigger: tx.clone() }, || true)
            .expect("exists");
        assert_eq!((alone.group, alone.members, alone.units_per_minute), (None, 1, 3_000));
    }

    #[test]
    fn a_seeded_group_renders_whole_from_the_start_and_the_dead_stay_out() {
        let book = QuotaBook::default();
        let (tx, mut rx) = mpsc::unbounded();
        let member =
            |name: &str| Joining { agent: agent(name), group: Some("g".into()), budget: 1_000, trigger: tx.clone() };
        book.seed((0..10).map(|i| member(&format!("a{i}"))));
        assert_eq!(book.join(member("a3"), || true).map(|q| (q.members, q.units_per_minute)), Some((10, 100)));
        assert!(drain(&mut rx).is_empty(), "nobody re-rendered: the shape was whole from the start");
        // A reconcile that outlived its agent does not bring it back.
        book.leave(&agent("a9"));
        drain(&mut rx);
        assert_eq!(book.join(member("a9"), || false), None);
        assert_eq!(book.groups(), [("g".to_owned(), 9)]);
    }

    #[test]
    fn the_smallest_stated_budget_holds() {
        let book = QuotaBook::default();
        let (tx, _rx) = mpsc::unbounded();
        book.join(Joining { agent: agent("a"), group: Some("g".into()), budget: 10_000, trigger: tx.clone() }, || true)
            .expect("exists");
        let b = book
            .join(Joining { agent: agent("b"), group: Some("g".into()), budget: 4_000, trigger: tx.clone() }, || true)
            .expect("exists");
        assert_eq!((b.group_units_per_minute, b.units_per_minute), (4_000, 2_000));
    }
}
