//! The fleet's Gmail quota budget: how the operator divides a quota group's units among its
//! agents and spreads their scheduled scans, as pure arithmetic both sides can test.
//!
//! Google meters Gmail per user (15,000 units a minute) and per Cloud project
//! (1,200,000 units a minute). Every agent whose OAuth client belongs to one project draws on
//! that project's budget, so a fleet's first full scans can overrun it many times over. A
//! *quota group* is the set of agents sharing one budget; each gets an equal share, rendered as
//! [`crate::contract::env::GMAIL_QUOTA_UNITS_PER_MINUTE`], which the workload's pacer holds any
//! sliding minute to.
//!
//! The arithmetic is chosen so that a growing fleet does not rewrite every member for every
//! newcomer: shares follow the head count rounded up to two significant figures (so they change
//! at most once per ~1–10 % of growth, and use at least 90 % of the budget), and scan delays
//! follow the next power of two (so they change at most log2(n) times).

use sha2::{Digest, Sha256};

/// Google's per-user Gmail quota: no share is larger, however few agents share a budget.
pub const USER_UNITS_PER_MINUTE: u32 = 15_000;
/// Google's default per-project Gmail quota: a group's budget unless it names another
/// (`spec.mailbox.quota.groupUnitsPerMinute`, for a project with a raised quota).
pub const PROJECT_UNITS_PER_MINUTE: u32 = 1_200_000;
/// The smallest share: one `messages.send` (100 units) must always fit in a minute. A group so
/// large that an equal share would be smaller is oversubscribed, which status says.
pub const MIN_UNITS_PER_MINUTE: u32 = 100;
/// Scheduled scans of a group start within this many minutes of their slot.
pub const MAX_SPREAD_MINUTES: u32 = 60;

/// The longest [`crate::contract::env::SCAN_SCHEDULE_DELAY_SECONDS`] the workload accepts.
pub const MAX_SCAN_DELAY_SECONDS: u32 = MAX_SPREAD_MINUTES * 60;

/// Reads [`crate::contract::env::GMAIL_QUOTA_UNITS_PER_MINUTE`]: a whole number from
/// [`MIN_UNITS_PER_MINUTE`] to [`USER_UNITS_PER_MINUTE`]; absent means the per-user quota.
pub fn parse_units_per_minute(raw: Option<&str>) -> Result<u32, String> {
    parse_within(raw, MIN_UNITS_PER_MINUTE, USER_UNITS_PER_MINUTE, USER_UNITS_PER_MINUTE)
}

/// Reads [`crate::contract::env::SCAN_SCHEDULE_DELAY_SECONDS`]: 0 to [`MAX_SCAN_DELAY_SECONDS`];
/// absent means 0.
pub fn parse_scan_delay(raw: Option<&str>) -> Result<u32, String> {
    parse_within(raw, 0, MAX_SCAN_DELAY_SECONDS, 0)
}

fn parse_within(raw: Option<&str>, min: u32, max: u32, absent: u32) -> Result<u32, String> {
    let Some(raw) = raw.map(str::trim) else { return Ok(absent) };
    match raw.parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("{raw:?}: expected a whole number from {min} to {max}")),
    }
}

/// What one agent of a group is allotted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allotment {
    /// Quota units per sliding minute.
    pub units_per_minute: u32,
    /// Seconds after each scheduled scan slot that this agent's scan starts.
    pub scan_delay_seconds: u32,
    /// Whether the equal share fell below [`MIN_UNITS_PER_MINUTE`] and was raised to it: the
    /// group's agents together may then exceed its budget.
    pub oversubscribed: bool,
}

impl Allotment {
    /// How status reports this allotment to a member of `group` (`members` strong, shaped `shape`).
    pub fn status(&self, group: Option<String>, members: usize, shape: &GroupShape) -> crate::QuotaStatus {
        crate::QuotaStatus {
            group,
            members: i32::try_from(members).unwrap_or(i32::MAX),
            group_units_per_minute: shape.budget.into(),
            units_per_minute: self.units_per_minute.into(),
            scan_delay_seconds: self.scan_delay_seconds.into(),
            oversubscribed: self.oversubscribed,
        }
    }
}

/// The shape of a group that decides every member's allotment. Members are rendered again only
/// when it changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupShape {
    /// The head count rounded up to two significant figures.
    pub headcount: u32,
    /// Minutes over which scan starts are spread.
    pub spread_minutes: u32,
    /// The budget in force: the smallest any member states.
    pub budget: u32,
}

impl GroupShape {
    /// The shape of a group of `members` agents with budget `budget`.
    pub fn new(members: usize, budget: u32) -> Self {
        let members = u32::try_from(members.max(1)).unwrap_or(u32::MAX);
        let spread_minutes = if members == 1 { 1 } else { members.next_power_of_two().min(MAX_SPREAD_MINUTES) };
        Self { headcount: two_significant_figures_up(members), spread_minutes, budget }
    }

    /// The allotment of the member identified by `member` (a stable key, e.g. `namespace/name`).
    pub fn allot(&self, member: &str) -> Allotment {
        let equal = self.budget / self.headcount;
        let units_per_minute = equal.clamp(MIN_UNITS_PER_MINUTE, USER_UNITS_PER_MINUTE);
        let slot = stable_hash(member) % u64::from(self.spread_minutes);
        Allotment {
            units_per_minute,
            scan_delay_seconds: u32::try_from(slot).expect("below 60") * 60,
            oversubscribed: equal < MIN_UNITS_PER_MINUTE,
        }
    }
}

/// `n` rounded up to two significant figures: 7 → 7, 87 → 87, 123 → 130, 1001 → 1100.
pub fn two_significant_figures_up(n: u32) -> u32 {
    let mut unit = 1u32;
    while n / unit >= 100 {
        unit *= 10;
    }
    n.div_ceil(unit).saturating_mul(unit)
}

/// The name of the group an agent joins when it names none: its OAuth client, by fingerprint
/// (an OAuth client id is not a secret, but the group name need not repeat it).
pub fn oauth_client_group(client_id: &str) -> String {
    format!("oauth-client-{}", &hex::encode(Sha256::digest(client_id.as_bytes()))[..12])
}

/// The OAuth client id in a `client_secret.json` (`installed` or `web`) or an authorized-user
/// `token.json` (`client_id`); `None` when neither file names one.
pub fn oauth_client_id(client_secret_json: Option<&[u8]>, token_json: Option<&[u8]>) -> Option<String> {
    let parse = |bytes: Option<&[u8]>| bytes.and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok());
    let from_client = parse(client_secret_json)
        .and_then(|v| ["installed", "web"].iter().find_map(|kind| v[kind]["client_id"].as_str().map(str::to_owned)));
    let from_token = || parse(token_json).and_then(|v| v["client_id"].as_str().map(str::to_owned));
    from_client.or_else(from_token).filter(|id| !id.trim().is_empty())
}

fn stable_hash(key: &str) -> u64 {
    let digest = Sha256::digest(key.as_bytes());
    u64::from_be_bytes(digest[..8].try_into().expect("eight bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_counts_round_up_to_two_significant_figures() {
        let rounded: Vec<u32> = [1, 7, 20, 99, 100, 101, 123, 999, 1001, 12_345].map(two_significant_figures_up).into();
        assert_eq!(rounded, [1, 7, 20, 99, 100, 110, 130, 1000, 1100, 13_000]);
    }

    #[test]
    fn a_small_group_gets_the_per_user_quota_and_a_large_one_an_equal_share() {
        let alone = GroupShape::new(1, PROJECT_UNITS_PER_MINUTE).allot("mail/a");
        assert_eq!(
            alone,
            Allotment { units_per_minute: USER_UNITS_PER_MINUTE, scan_delay_seconds: 0, oversubscribed: false }
        );
        // 80 agents exactly fill a project at the per-user quota; 1,000 share it.
        assert_eq!(GroupShape::new(80, PROJECT_UNITS_PER_MINUTE).allot("x").units_per_minute, 15_000);
        assert_eq!(GroupShape::new(1_000, PROJECT_UNITS_PER_MINUTE).allot("x").units_per_minute, 1_200);
        // 20 agents on a 1,000-unit budget: 50 each, which a send would not fit: raised, and said.
        let tight = GroupShape::new(20, 1_000).allot("x");
        assert_eq!((tight.units_per_minute, tight.oversubscribed), (100, true));
        assert!(!GroupShape::new(20, 2_000).allot("x").oversubscribed);
    }

    #[test]
    fn shares_never_add_up_past_the_budget() {
        for members in [2usize, 20, 81, 150, 999, 1_001, 5_555, 11_999] {
            let shape = GroupShape::new(members, PROJECT_UNITS_PER_MINUTE);
            let share = shape.allot("x").units_per_minute;
            assert!(u64::from(share) * members as u64 <= u64::from(PROJECT_UNITS_PER_MINUTE), "{members}: {share}");
            // And little is left unused: at least 90 % once the per-user cap no longer binds.
            if share < USER_UNITS_PER_MINUTE {
                assert!(u64::from(share) * members as u64 * 10 >= u64::from(PROJECT_UNITS_PER_MINUTE) * 9, "{members}");
            }
        }
    }

    #[test]
    fn scans_of_a_group_spread_over_minutes_and_stay_put_as_it_grows_a_little() {
        let shape = GroupShape::new(20, PROJECT_UNITS_PER_MINUTE);
        let delays: std::collections::BTreeSet<u32> =
            (0..20).map(|i| shape.allot(&format!("mail/agent-{i}")).scan_delay_seconds).collect();
        assert!(delays.len() >= 10, "20 agents over 32 minutes: {delays:?}");
        assert!(delays.iter().all(|d| d % 60 == 0 && *d < 32 * 60));
        // 21 members: same spread (32), so nobody's delay moved.
        assert_eq!(GroupShape::new(21, PROJECT_UNITS_PER_MINUTE).spread_minutes, shape.spread_minutes);
        assert_eq!(GroupShape::new(5_000, PROJECT_UNITS_PER_MINUTE).spread_minutes, MAX_SPREAD_MINUTES);
    }

    #[test]
    fn the_workload_reads_what_the_operator_renders_and_nothing_else() {
        for members in [1usize, 20, 1_000, 50_000] {
            let allotment = GroupShape::new(members, PROJECT_UNITS_PER_MINUTE).allot("mail/a");
            let units = allotment.units_per_minute.to_string();
            assert_eq!(parse_units_per_minute(Some(&units)), Ok(allotment.units_per_minute));
            let delay = allotment.scan_delay_seconds.to_string();
            assert_eq!(parse_scan_delay(Some(&delay)), Ok(allotment.scan_delay_seconds));
        }
        assert_eq!(parse_units_per_minute(None), Ok(USER_UNITS_PER_MINUTE));
        assert_eq!(parse_scan_delay(None), Ok(0));
        for bad in ["99", "15001", "-1", "1e3", "lots"] {
            let error = parse_units_per_minute(Some(bad)).unwrap_err();
            assert!(error.contains("from 100 to 15000"), "{error}");
        }
        assert!(parse_scan_delay(Some("3601")).is_err());
    }

    #[test]
    fn the_default_group_is_the_oauth_client() {
        let client = br#"{"installed": {"client_id": "123.apps.googleusercontent.com", "client_secret": "s"}}"#;
        let token = br#"{"client_id": "456.apps.googleusercontent.com", "refresh_token": "r"}"#;
        assert_eq!(oauth_client_id(Some(client), Some(token)).as_deref(), Some("123.apps.googleusercontent.com"));
        assert_eq!(oauth_client_id(None, Some(token)).as_deref(), Some("456.apps.googleusercontent.com"));
        assert_eq!(oauth_client_id(Some(b"not json"), None), None);
        let group = oauth_client_group("123.apps.googleusercontent.com");
        assert!(group.starts_with("oauth-client-") && group.len() == 25 && !group.contains("123"));
    }
}
