//! Opens the mail domain from the settings: the mailbox provider (`MAILBOX_PROVIDER`), its
//! credentials, the calendar source (`CALENDAR_PROVIDER`) and the digest options.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use mailagent_crds::contract::MailboxProvider;
use mailagent_crds::contract::files;
use mailagent_mail::api::Assistant;
use mailagent_mail::calendar::{GOOGLE_CALENDAR_DEFAULT_URL, GoogleCalendar};
use mailagent_mail::layout;
use mailagent_mail::provider::gmail::{FetchFormat, Gmail, GmailConfig};
use mailagent_mail::provider::token::{TokenSource, fingerprint};
use mailagent_mail::provider_assistant;
use mailagent_mail::schedule::CronSchedule;
use mailagent_mail::{AssistantOptions, maildir_assistant_with};

use crate::settings::{CalendarChoice, Settings};

/// The Google credentials from `token.json` in the credentials directory (read once).
fn google_token(dir: &Path) -> anyhow::Result<TokenSource> {
    let path = dir.join(files::GMAIL_TOKEN);
    let source = TokenSource::from_file(&path).with_context(|| {
        format!("MAILAGENT_CREDENTIALS_DIR: {} (authorized-user token.json with refresh_token, token_uri, client_id, client_secret)", path.display())
    })?;
    Ok(source)
}

/// The periodic scan (`SCAN_SCHEDULE`), if configured, in the workload's time zone
/// (`MAILAGENT_TIMEZONE`, which the digest and availability read in too).
pub fn scan_schedule(settings: &Settings) -> anyhow::Result<Option<CronSchedule>> {
    let mail = &settings.mail;
    Ok(mail.scan_schedule.clone().map(|schedule| CronSchedule::new(schedule, mail.time_zone)))
}

/// The assistant the settings describe.
pub fn open(settings: &Settings) -> anyhow::Result<Arc<dyn Assistant>> {
    let mail = &settings.mail;
    let mut options = AssistantOptions {
        digest_recipient: mail.digest_recipient.clone(),
        digest_schedule: mail.digest_schedule.as_ref().map(|schedule| schedule.as_str().to_owned()),
        time_zone: mail.time_zone,
        maildir_authserv_id: mail.maildir_authserv_id.clone(),
        ..AssistantOptions::default()
    };
    let needs_google = mail.provider == MailboxProvider::Gmail || matches!(mail.calendar, CalendarChoice::Google(_));
    let token = if needs_google { Some(google_token(&mail.credentials_dir)?) } else { None };
    let maildir = match mail.provider {
        MailboxProvider::Maildir => Some(maildir_dir(settings)?),
        MailboxProvider::Gmail => None,
    };
    match &mail.calendar {
        CalendarChoice::None => {}
        CalendarChoice::Ics(Some(path)) => options.calendar_ics = Some(path.clone()),
        CalendarChoice::Ics(None) => {
            let beside = maildir.as_ref().map(|dir| dir.join(layout::CALENDAR_ICS));
            options.calendar_ics = beside.filter(|path| path.is_file());
        }
        CalendarChoice::Google(ids) => {
            let base = mail.calendar_base_url.as_deref().unwrap_or(GOOGLE_CALENDAR_DEFAULT_URL);
            let token = token.clone().expect("token loaded for google");
            options.calendar_google =
                Some(GoogleCalendar::new(base, ids.clone(), token).map_err(|e| anyhow::anyhow!(e))?);
        }
    }
    let assistant = match (mail.provider, maildir) {
        (MailboxProvider::Maildir, Some(dir)) => maildir_assistant_with(dir.as_path(), &settings.state_dir, options),
        _ => {
            let token = token.expect("token loaded for gmail");
            let base = mail
                .gmail_base_url
                .clone()
                .unwrap_or_else(|| mailagent_mail::provider::gmail::GMAIL_DEFAULT_URL.into());
            tracing::info!(credentials = %token_fingerprint(&mail.credentials_dir), base_url = %base, "Gmail mailbox");
            let config = GmailConfig {
                base_url: base.clone(),
                root_url: base,
                owner: mail.digest_recipient.clone(),
                format: if mail.gmail_raw { FetchFormat::Raw } else { FetchFormat::Metadata },
                units_per_minute: mail.gmail_units_per_minute.clone(),
                ..GmailConfig::default()
            };
            let gmail = Gmail::new(config, token).map_err(|e| anyhow::anyhow!(e))?;
            provider_assistant(Box::new(gmail), &settings.state_dir, options)
        }
    };
    assistant.map_err(|e| anyhow::anyhow!(e))
}

/// The Maildir from `MAILDIR_PATH`, or an empty one in the state directory ([`layout::MAILDIR`]).
fn maildir_dir(settings: &Settings) -> anyhow::Result<PathBuf> {
    Ok(match &settings.maildir {
        Some(dir) => dir.clone(),
        None => {
            let dir = settings.state_dir.join(layout::MAILDIR);
            for sub in ["cur", "new", "tmp"] {
                std::fs::create_dir_all(dir.join(sub)).with_context(|| format!("create {}", dir.display()))?;
            }
            dir
        }
    })
}

/// Names the credentials in logs without revealing them.
fn token_fingerprint(dir: &Path) -> String {
    std::fs::read_to_string(dir.join(files::GMAIL_TOKEN)).map(|text| fingerprint(&text)).unwrap_or_default()
}
