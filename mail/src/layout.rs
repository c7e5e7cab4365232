//! Where the mail domain keeps its files: below the state directory (`MAILAGENT_STATE_DIR`, the
//! runbooks' `data/*.json`) and beside the Maildir. One name each; the workload and its tests
//! refer to these rather than spelling them again. The operator needs none of them: it mounts
//! the state volume and the workload lays it out.

/// The Maildir used when `MAILDIR_PATH` is not set, relative to the state directory.
pub const MAILDIR: &str = "Maildir";
/// The iCalendar file looked for inside the Maildir when `CALENDAR_ICS_PATH` is not set.
pub const CALENDAR_ICS: &str = "calendar.ics";
/// Hashes of unsubscribe links already used, relative to the state directory.
pub const SENT_UNSUBSCRIBE_LINKS: &str = "data/sent_unsubscribe_links.json";
/// What was done for each sender, relative to the state directory.
pub const UNSUBSCRIBED_METHODS: &str = "data/unsubscribed_methods.json";
/// The digest schedule's last claimed slot, relative to the state directory.
pub const DIGEST_SCHEDULE: &str = "data/digest_schedule.json";
