//! Requests per client address over a sliding minute, exposed as the counts of the busiest few
//! addresses by rank, never by address.
//!
//! Why this shape: the runbooks alert on "> 100 requests/minute from single IP". A counter
//! labelled by address would give Prometheus one series per client ever seen (unbounded, and
//! the addresses would leave the audit log for the metrics store). Hashing addresses into a fixed
//! number of buckets bounds the series but adds unrelated clients together, so a bucket crosses
//! 100 when no single client does. Counting exactly here and exporting only the top
//! [`TOP_N`] counts by rank keeps both: [`TOP_N`] series per pod, exact per-address numbers. The
//! address itself is in the audit log (target `audit`), where it already is.
//!
//! Memory is bounded too: at most [`MAX_TRACKED`] addresses are held; past that, addresses not
//! yet tracked are counted in one overflow counter until idle ones age out.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Length of one slot of the sliding window.
pub const SLOT: Duration = Duration::from_secs(10);
/// Slots in the window: six of ten seconds, one minute.
const SLOTS: u64 = 6;
/// Ranks exported (1 = busiest).
pub const TOP_N: usize = 5;
/// Addresses held at once.
pub const MAX_TRACKED: usize = 10_000;

/// One address's requests in each slot of the window ending at `last`.
#[derive(Debug)]
struct Window {
    slots: [u32; SLOTS as usize],
    /// Absolute index of the newest slot written.
    last: u64,
}

impl Window {
    /// Requests in the minute ending with slot `now`.
    fn count(&self, now: u64) -> u32 {
        if now >= self.last + SLOTS {
            return 0;
        }
        // The array holds slots `last - SLOTS + 1 ..= last`; those after `now - SLOTS` count.
        (0..SLOTS)
            .filter_map(|age| self.last.checked_sub(age))
            .filter(|&slot| slot + SLOTS > now)
            .map(|slot| self.slots[(slot % SLOTS) as usize])
            .fold(0u32, u32::saturating_add)
    }

    fn record(&mut self, now: u64) {
        if now >= self.last + SLOTS {
            self.slots = [0; SLOTS as usize];
        } else {
            for slot in self.last + 1..=now {
                self.slots[(slot % SLOTS) as usize] = 0;
            }
        }
        self.last = self.last.max(now);
        let slot = &mut self.slots[(now % SLOTS) as usize];
        *slot = slot.saturating_add(1);
    }
}

#[derive(Debug, Default)]
struct Inner {
    windows: HashMap<IpAddr, Window>,
    untracked: u64,
}

/// The per-address counts of one process.
#[derive(Debug)]
pub struct BusyClients {
    started: Instant,
    inner: Mutex<Inner>,
}

impl Default for BusyClients {
    fn default() -> Self {
        Self { started: Instant::now(), inner: Mutex::default() }
    }
}

impl BusyClients {
    fn slot(&self, at: Instant) -> u64 {
        (at.saturating_duration_since(self.started).as_millis() / SLOT.as_millis()) as u64
    }

    /// Counts one request from `address` at `at`.
    pub fn record(&self, address: IpAddr, at: Instant) {
        let now = self.slot(at);
        let mut inner = self.inner.lock().expect("busy clients lock");
        if !inner.windows.contains_key(&address) && inner.windows.len() >= MAX_TRACKED {
            inner.windows.retain(|_, w| w.count(now) > 0);
            if inner.windows.len() >= MAX_TRACKED {
                inner.untracked += 1;
                return;
            }
        }
        inner.windows.entry(address).or_insert(Window { slots: [0; SLOTS as usize], last: now }).record(now);
    }

    /// The request counts of the [`TOP_N`] busiest addresses over the minute ending at `at`,
    /// busiest first, padded with zeros; the number of addresses seen in that minute; requests
    /// not counted per address since the start because [`MAX_TRACKED`] addresses were held.
    /// Forgets addresses idle for a minute.
    pub fn snapshot(&self, at: Instant) -> Snapshot {
        let now = self.slot(at);
        let mut inner = self.inner.lock().expect("busy clients lock");
        inner.windows.retain(|_, w| w.count(now) > 0);
        let mut counts: Vec<u32> = inner.windows.values().map(|w| w.count(now)).collect();
        counts.sort_unstable_by(|a, b| b.cmp(a));
        let addresses = counts.len();
        counts.resize(TOP_N, 0);
        Snapshot { top: counts, addresses, untracked: inner.untracked }
    }
}

/// What one scrape reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Requests in the last minute of the busiest addresses, rank 1 first; always [`TOP_N`] long.
    pub top: Vec<u32>,
    /// Addresses with at least one request in the last minute.
    pub addresses: usize,
    /// Requests from addresses not tracked because the table was full.
    pub untracked: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn counts_each_address_and_ranks_the_busiest_first() {
        let clients = BusyClients::default();
        let t0 = clients.started;
        for _ in 0..101 {
            clients.record(ip(1), t0);
        }
        for _ in 0..7 {
            clients.record(ip(2), t0 + Duration::from_secs(30));
        }
        clients.record(ip(3), t0 + Duration::from_secs(31));
        let snap = clients.snapshot(t0 + Duration::from_secs(40));
        assert_eq!(snap.top, [101, 7, 1, 0, 0]);
        assert_eq!(snap.addresses, 3);
        assert_eq!(snap.untracked, 0);
    }

    #[test]
    fn the_window_slides_requests_older_than_a_minute_out() {
        let clients = BusyClients::default();
        let t0 = clients.started;
        // 60 in the first slot, 60 in the fourth: 120 inside one minute.
        for _ in 0..60 {
            clients.record(ip(1), t0);
            clients.record(ip(1), t0 + Duration::from_secs(35));
        }
        assert_eq!(clients.snapshot(t0 + Duration::from_secs(59)).top[0], 120);
        // A minute after the first slot began, its 60 have left the window.
        assert_eq!(clients.snapshot(t0 + Duration::from_secs(60)).top[0], 60);
        // A request after a long pause starts from zero, not from stale slots.
        clients.record(ip(1), t0 + Duration::from_secs(600));
        assert_eq!(clients.snapshot(t0 + Duration::from_secs(601)).top[0], 1);
        // Idle for a minute: forgotten.
        let snap = clients.snapshot(t0 + Duration::from_secs(700));
        assert_eq!((snap.top[0], snap.addresses), (0, 0));
    }

    #[test]
    fn stale_slots_between_requests_are_cleared() {
        let clients = BusyClients::default();
        let t0 = clients.started;
        for _ in 0..50 {
            clients.record(ip(1), t0 + Duration::from_secs(5));
        }
        // 70 s later the slot index wraps onto the same array cell: the old 50 must not count.
        clients.record(ip(1), t0 + Duration::from_secs(65));
        assert_eq!(clients.snapshot(t0 + Duration::from_secs(66)).top[0], 1);
    }

    #[test]
    fn the_table_is_bounded_and_overflow_is_counted() {
        let clients = BusyClients::default();
        let t0 = clients.started;
        for i in 0..MAX_TRACKED as u32 {
            clients.record(IpAddr::from(i.to_be_bytes()), t0);
        }
        clients.record(ip(1), t0);
        clients.record(ip(1), t0);
        let snap = clients.snapshot(t0);
        assert_eq!((snap.addresses, snap.untracked), (MAX_TRACKED, 2));
        // Once the tracked ones are idle for a minute, a new address gets a window again.
        clients.record(ip(1), t0 + Duration::from_secs(61));
        let snap = clients.snapshot(t0 + Duration::from_secs(61));
        assert_eq!((snap.top[0], snap.addresses, snap.untracked), (1, 1, 2));
    }
}
