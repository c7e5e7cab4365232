//! The Gmail and Calendar providers against the Google API emulator (`@inbox-zero/emulate`),
//! started by `hack/peers/mail/run.sh`, which sets `MAILAGENT_EMULATOR_URL` and runs them with
//! `--ignored`; a plain `cargo test` lists them as ignored and needs no emulator.
//!
//! One mailbox per test (`NAME@mail.example`, bearer token `tok-NAME`; see `hack/peers/mail/lib.sh`).
//! The emulator returns only a fixed header set in `format=metadata` (no `List-Unsubscribe`,
//! `List-Id`, ...), so tests that need list headers read with `FetchFormat::Raw`; the metadata
//! path with those headers is covered by the contract tests in `provider/gmail_shapes.rs`.
#![allow(clippy::disallowed_methods, reason = "test clients talk to the emulator this test starts")]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use base64::Engine;
use chrono::DateTime;
use mailagent_mail::api::*;
use mailagent_mail::calendar::GoogleCalendar;
use mailagent_mail::message::MessageMeta;
use mailagent_mail::provider::gmail::{FetchFormat, Gmail, GmailConfig};
use mailagent_mail::provider::suite::{self, Fixture};
use mailagent_mail::provider::token::{TokenError, TokenSource};
use mailagent_mail::provider::{MailProvider, ProviderError};
use mailagent_mail::{AssistantOptions, provider_assistant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod support;

/// The emulator's base URL. These tests are `#[ignore]`d so a plain `cargo test` reports them as
/// ignored rather than passed; `run.sh` runs them with `--ignored` and the URL set.
fn emulator() -> String {
    let url = std::env::var("MAILAGENT_EMULATOR_URL")
        .expect("MAILAGENT_EMULATOR_URL is not set: run hack/peers/mail/run.sh, which starts the Google emulator");
    url.trim_end_matches('/').to_string()
}

fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

fn config(url: &str, user: &str, format: FetchFormat) -> GmailConfig {
    GmailConfig {
        base_url: format!("{url}/"),
        root_url: format!("{url}/"),
        owner: Some(format!("{user}@mail.example")),
        format,
        ..GmailConfig::default()
    }
}

fn gmail(url: &str, user: &str, format: FetchFormat) -> Gmail {
    Gmail::new(config(url, user, format), format!("tok-{user}")).unwrap()
}

/// `messages.import` with raw MIME (base64url), as Gmail documents it.
async fn import(url: &str, user: &str, raw: &[u8], labels: &[&str]) -> String {
    let body = serde_json::json!({
        "raw": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw),
        "labelIds": labels,
    });
    let response = http()
        .post(format!("{url}/gmail/v1/users/me/messages/import"))
        .bearer_auth(format!("tok-{user}"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "import: HTTP {}", response.status());
    let value: serde_json::Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    value["id"].as_str().unwrap().to_string()
}

async fn get_json(client: &reqwest::Client, url: String, token: &str) -> serde_json::Value {
    serde_json::from_slice(&client.get(url).bearer_auth(token).send().await.unwrap().bytes().await.unwrap()).unwrap()
}

/// Sent messages of `user`, read back raw from the emulator.
async fn sent(url: &str, user: &str) -> Vec<(MessageMeta, String)> {
    let client = http();
    let token = format!("tok-{user}");
    let list =
        get_json(&client, format!("{url}/gmail/v1/users/me/messages?labelIds=SENT&maxResults=500"), &token).await;
    let mut out = Vec::new();
    for message in list["messages"].as_array().cloned().unwrap_or_default() {
        let id = message["id"].as_str().unwrap();
        let got = get_json(&client, format!("{url}/gmail/v1/users/me/messages/{id}?format=raw"), &token).await;
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(got["raw"].as_str().unwrap().trim_end_matches('='))
            .unwrap();
        out.push((MessageMeta::from_raw(id.to_string(), vec![], &raw), String::from_utf8_lossy(&raw).into_owned()));
    }
    out
}

/// The shipped sample mailbox (the one the Maildir tests use), as raw messages.
fn samples() -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/maildir");
    let mut files = Vec::new();
    for sub in ["cur", "new"] {
        for entry in std::fs::read_dir(root.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            files.push((path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&path).unwrap()));
        }
    }
    files.sort();
    files
}

/// Imports the samples; the shop's promotion carries Gmail's promotions category label.
async fn import_samples(url: &str, user: &str) {
    for (name, raw) in samples() {
        let labels: &[&str] =
            if name.contains("M3P1") { &["INBOX", "UNREAD", "CATEGORY_PROMOTIONS"] } else { &["INBOX", "UNREAD"] };
        import(url, user, &raw, labels).await;
    }
}

struct GmailFixture {
    url: String,
    gmail: Gmail,
}

#[async_trait]
impl Fixture for GmailFixture {
    fn provider(&self) -> &dyn MailProvider {
        &self.gmail
    }

    async fn deliver(&self, raw: &[u8]) {
        import(&self.url, "suite", raw, &["INBOX", "UNREAD"]).await;
    }

    async fn sent(&self) -> Vec<MessageMeta> {
        sent(&self.url, "suite").await.into_iter().map(|(meta, _)| meta).collect()
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the Google emulator: hack/peers/mail/run.sh"]
async fn gmail_passes_the_provider_suite() {
    let url = emulator();
    let fixture = GmailFixture { gmail: gmail(&url, "suite", FetchFormat::Metadata), url };
    suite::run(&fixture).await;
    let (units, calls, retries) = fixture.gmail.counters();
    assert!(units > 0 && calls > 0 && retries == 0, "{units} units, {calls} calls, {retries} retries");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the Google emulator: hack/peers/mail/run.sh"]
async fn scan_triage_incremental_and_metadata_costs() {
    let url = emulator();
    import_samples(&url, "scan").await;
    let state = tempfile::tempdir().unwrap();
    let assistant = provider_assistant(
        Box::new(gmail(&url, "scan", FetchFormat::Metadata)),
        state.path(),
        AssistantOptions::default(),
    )
    .unwrap();
    let first = assistant.scan(ScanRequest::default()).await.unwrap();
    assert_eq!((first.total_messages, first.fetched_messages, first.incremental), (7, 7, false));
    // 1 list page + 7 gets, plus the checkpoint (getProfile, absent here, then one history page).
    assert_eq!(first.quota_units, 5 + 7 * 5 + 1 + 2, "{first:?}");
    let promo = first.messages.iter().find(|m| m.from == "deals@shop.example.org").unwrap();
    assert_eq!(promo.class, MessageClass::Promotion, "Gmail's CATEGORY_PROMOTIONS label decides: {promo:?}");
    assert!(promo.reasons.iter().any(|r| r.contains("category: promotions")), "{promo:?}");
    assert!(first.messages.iter().all(|m| !m.reasons.is_empty()));
    let ci = first.messages.iter().find(|m| m.from == "noreply@ci.example").unwrap();
    assert_eq!(ci.class, MessageClass::Notification, "{ci:?}");
    assert_eq!(first.top_senders[0].sender, "news@news.example.com");

    // Two new messages: the next scan reads history and fetches just those.
    for n in 0..2 {
        let raw = format!(
            "From: Bob <bob@friends.example>\r\nTo: scan@mail.example\r\nSubject: note {n}\r\nDate: Mon, 23 Nov 2026 11:0{n}:00 +0000\r\n\r\nhi\r\n"
        );
        import(&url, "scan", raw.as_bytes(), &["INBOX"]).await;
    }
    let second = assistant.scan(ScanRequest::default()).await.unwrap();
    assert_eq!((second.total_messages, second.fetched_messages, second.incremental), (9, 2, true), "{second:?}");
    assert_eq!(second.quota_units, 2 + 2 * 5, "one history page and two gets");
    let third = assistant.scan(ScanRequest::default()).await.unwrap();
    assert_eq!((third.fetched_messages, third.incremental, third.quota_units), (0, true, 2));
    let metrics = assistant.metrics();
    assert_eq!(metrics.quota_units, first.quota_units + second.quota_units + third.quota_units);
    assert_eq!(metrics.messages_fetched, 9);
}

/// A one-request-per-connection proxy in front of the emulator that answers some requests
/// itself (Gmail-shaped errors the emulator never produces) and forwards the rest.
async fn faulty_proxy(
    upstream: String,
    fault: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let upstream: SocketAddr = upstream.trim_start_matches("http://").parse().unwrap();
    let fault = Arc::new(fault);
    let injected = Arc::new(AtomicUsize::new(0));
    let counter = injected.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else { return };
            let fault = fault.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                let Some((request, head_end)) = support::read_request(&mut client).await else { return };
                let head = String::from_utf8_lossy(&request[..head_end]).into_owned();
                let request_line = head.lines().next().unwrap_or_default().to_string();
                if let Some(answer) = fault(&request_line) {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let _ = client.write_all(answer.as_bytes()).await;
                    return;
                }
                let mut upstream = tokio::net::TcpStream::connect(upstream).await.unwrap();
                let head: Vec<&str> =
                    head.lines().filter(|l| !l.to_ascii_lowercase().starts_with("connection:")).collect();
                let mut forwarded = head.join("\r\n").into_bytes();
                forwarded.extend_from_slice(b"\r\nconnection: close\r\n\r\n");
                forwarded.extend_from_slice(&request[head_end + 4..]);
                upstream.write_all(&forwarded).await.unwrap();
                let mut answer = Vec::new();
                upstream.read_to_end(&mut answer).await.unwrap();
                let _ = client.write_all(&answer).await;
            });
        }
    });
    (format!("http://{address}"), injected)
}

fn gmail_error(status: u16, reason: &str, extra_header: &str) -> String {
    let body = format!(r#"{{"error":{{"code":{status},"message":"injected","errors":[{{"reason":"{reason}"}}]}}}}"#);
    format!(
        "HTTP/1.1 {status} Injected\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{extra_header}connection: close\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the Google emulator: hack/peers/mail/run.sh"]
async fn expired_history_falls_back_to_a_full_listing_and_throttling_is_retried() {
    let url = emulator();
    import_samples(&url, "retry").await;
    let gets = Arc::new(AtomicUsize::new(0));
    let counted = gets.clone();
    let (proxy, injected) = faulty_proxy(url.clone(), move |line| {
        if line.contains("/history?") && !line.contains("startHistoryId=9999") {
            // Gmail's answer for a start id older than the retained history (the checkpoint
            // probe, which starts past every id, is let through).
            return Some(gmail_error(404, "notFound", ""));
        }
        if line.contains("/messages/") && line.contains("format=metadata") && counted.fetch_add(1, Ordering::SeqCst) < 2
        {
            return Some(gmail_error(429, "rateLimitExceeded", "retry-after: 1\r\n"));
        }
        None
    })
    .await;
    let provider = Gmail::new(config(&proxy, "retry", FetchFormat::Metadata), "tok-retry".to_string()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let assistant = provider_assistant(Box::new(provider), state.path(), AssistantOptions::default()).unwrap();
    let started = std::time::Instant::now();
    let first = assistant.scan(ScanRequest::default()).await.unwrap();
    assert_eq!(first.total_messages, 7);
    assert!(started.elapsed() >= std::time::Duration::from_secs(1), "Retry-After: 1 was honoured");
    assert_eq!(assistant.metrics().provider_retries, 2, "two injected 429s, each retried once");
    import(&url, "retry", b"From: x@y.example\r\nSubject: new\r\n\r\nhi\r\n", &["INBOX"]).await;
    let second = assistant.scan(ScanRequest::default()).await.unwrap();
    assert!(!second.incremental, "{second:?}");
    assert!(second.full_scan_reason.as_deref().is_some_and(|r| r.contains("expired")), "{second:?}");
    assert_eq!((second.total_messages, second.fetched_messages), (8, 1), "only the unknown message is fetched");
    assert!(injected.load(Ordering::SeqCst) >= 3);

    // Permanent errors are not retried and say what to do.
    let (denied, _) = faulty_proxy(url.clone(), |_| Some(gmail_error(403, "insufficientPermissions", ""))).await;
    let provider = Gmail::new(config(&denied, "retry", FetchFormat::Metadata), "tok-retry".to_string()).unwrap();
    let error = provider.list_ids(None, 10).await.unwrap_err();
    assert!(matches!(&error, ProviderError::Permanent(m) if m.contains("403")), "{error}");
    assert_eq!(provider.retries(), 0);
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the Google emulator: hack/peers/mail/run.sh"]
async fn unsubscribe_discovery_and_mailto_through_gmail_send() {
    let url = emulator();
    import_samples(&url, "unsub").await;
    let state = tempfile::tempdir().unwrap();
    // Raw reads: the emulator drops list headers from metadata (real Gmail keeps them).
    let assistant =
        provider_assistant(Box::new(gmail(&url, "unsub", FetchFormat::Raw)), state.path(), AssistantOptions::default())
            .unwrap();
    let found = assistant.unsubscribe_candidates(CandidatesRequest::default()).await.unwrap();
    let keys: Vec<&str> = found.candidates.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(keys, ["weekly.news.example.com", "deals@shop.example.org", "promo@hostile.example.net"]);
    assert_eq!(found.candidates[0].methods[0].kind, MethodKind::OneClick);
    assert!(found.candidates[0].dkim.covers_unsubscribe);
    assert!(!serde_json::to_string(&found).unwrap().contains("s3cr3t"), "tokens never leave the domain");

    // The shop's mailto (no DKIM, a bcc field) is refused with its reason and sends nothing.
    let shop = UnsubscribeRequest { candidate: "deals@shop.example.org".into(), method: None, dry_run: false };
    let refused = assistant.unsubscribe(shop).await;
    assert!(matches!(&refused, Err(DomainError::Refused(reason)) if reason.contains("`bcc`")), "{refused:?}");
    assert_eq!(sent_count(&url, "unsub").await, 0, "a refused mailto sends nothing");

    // The list Gmail verified runs its own mailto.
    let request = UnsubscribeRequest {
        candidate: "weekly.news.example.com".into(),
        method: Some(MethodKind::Mailto),
        dry_run: false,
    };
    let response = assistant.unsubscribe(request.clone()).await.unwrap();
    assert_eq!(response.outcome, UnsubscribeOutcome::MailtoSent);
    let sent = sent(&url, "unsub").await;
    assert_eq!(sent.len(), 1, "one message in SENT");
    let (meta, raw) = &sent[0];
    assert_eq!(meta.subject, "unsubscribe");
    assert!(raw.contains("leave-weekly@news.example.com"), "{raw}");
    assert_eq!(response.target, "mailto:leave-weekly@news.example.com", "shown, recorded and sent alike");
    assert!(!raw.contains("elsewhere.example"), "the shop's bcc went nowhere: {raw}");
    assert!(matches!(assistant.unsubscribe(request).await, Err(DomainError::Refused(_))), "never the same link twice");
    assert_eq!(sent_count(&url, "unsub").await, 1);
    assert!(assistant.metrics().quota_units >= 100, "a send costs 100 units");
}

/// Issue 13 through Gmail: only what Gmail's receiving service (`mx.google.com`) verified runs.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the Google emulator: hack/peers/mail/run.sh"]
async fn spoofed_lists_never_send_through_gmail() {
    let url = emulator();
    let messages = support::crafted::crafted(mailagent_mail::dkim::GMAIL_AUTHSERV_ID);
    for message in &messages {
        import(&url, "spoof", message.raw.as_bytes(), &["INBOX"]).await;
    }
    let state = tempfile::tempdir().unwrap();
    let assistant =
        provider_assistant(Box::new(gmail(&url, "spoof", FetchFormat::Raw)), state.path(), AssistantOptions::default())
            .unwrap();
    for message in messages.iter().filter(|m| m.refusal.is_some()) {
        let request = UnsubscribeRequest { candidate: message.key.into(), method: None, dry_run: false };
        let refused = assistant.unsubscribe(request).await;
        let why = message.refusal.unwrap();
        assert!(matches!(&refused, Err(DomainError::Refused(r)) if r.contains(why)), "{}: {refused:?}", message.key);
    }
    assert_eq!(sent_count(&url, "spoof").await, 0, "a spoofed list made Gmail send");
    let genuine = UnsubscribeRequest { candidate: "genuine.list.example".into(), method: None, dry_run: false };
    let response = assistant.unsubscribe(genuine).await.unwrap();
    assert_eq!(response.outcome, UnsubscribeOutcome::MailtoSent);
    let sent = sent(&url, "spoof").await;
    assert_eq!(sent.len(), 1);
    let (meta, raw) = &sent[0];
    assert_eq!(meta.subject, "unsubscribe me");
    assert!(raw.contains("leave@list.example") && !raw.contains("victim"), "{raw}");
    for secret in support::crafted::NEVER_SHOWN {
        assert!(!raw.contains(secret), "{secret} in {raw}");
    }
}

async fn sent_count(url: &str, user: &str) -> usize {
    sent(url, user).await.len()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the Google emulator: hack/peers/mail/run.sh"]
async fn digest_is_sent_through_gmail() {
    let url = emulator();
    import_samples(&url, "digest").await;
    let state = tempfile::tempdir().unwrap();
    let assistant = provider_assistant(
        Box::new(gmail(&url, "digest", FetchFormat::Raw)),
        state.path(),
        AssistantOptions::default(),
    )
    .unwrap();
    let preview = assistant.digest(DigestRequest { dry_run: true }).await.unwrap();
    assert!(!preview.sent && preview.candidates == 3, "{preview:?}");
    assert_eq!(sent_count(&url, "digest").await, 0, "a dry run sends nothing");
    let digest = assistant.digest(DigestRequest { dry_run: false }).await.unwrap();
    assert!(digest.sent);
    assert_eq!(digest.recipient, "digest@mail.example");
    let sent = sent(&url, "digest").await;
    assert_eq!(sent.len(), 1);
    let (meta, raw) = &sent[0];
    assert_eq!(meta.subject, digest.subject);
    assert!(raw.contains("weekly.news.example.com") && raw.contains("digest@mail.example"), "{raw}");
    assert_eq!(assistant.metrics().digests_sent, 1);
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the Google emulator: hack/peers/mail/run.sh"]
async fn free_busy_from_google_calendar() {
    let url = emulator();
    let google = GoogleCalendar::new(
        &format!("{url}/calendar/v3/"),
        vec!["primary".into(), "missing@group.example".into()],
        "tok-calendar".to_string(),
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let options = AssistantOptions { calendar_google: Some(google), ..AssistantOptions::default() };
    let assistant =
        provider_assistant(Box::new(gmail(&url, "calendar", FetchFormat::Metadata)), state.path(), options).unwrap();
    let window = |start: &str, end: &str| {
        (DateTime::parse_from_rfc3339(start).unwrap(), DateTime::parse_from_rfc3339(end).unwrap())
    };
    let (start, end) = window("2026-11-24T00:00:00Z", "2026-11-25T00:00:00Z");
    let availability = assistant
        .availability(AvailabilityRequest { start, end, time_zone: Some("UTC".into()), working_hours: None })
        .await
        .unwrap();
    assert_eq!(availability.sources, ["google:primary"]);
    assert_eq!(availability.unavailable_sources, ["google:missing@group.example"], "an unknown calendar is busy");
    assert!(availability.free.is_empty(), "an unreadable calendar blocks the whole window");

    let only_primary = GoogleCalendar::new(&format!("{url}/calendar/v3"), vec![], "tok-calendar".to_string()).unwrap();
    let options = AssistantOptions {
        calendar_google: Some(only_primary),
        time_zone: "Europe/Berlin".parse().unwrap(),
        ..AssistantOptions::default()
    };
    let assistant =
        provider_assistant(Box::new(gmail(&url, "calendar", FetchFormat::Metadata)), state.path(), options).unwrap();
    let (start, end) = window("2026-11-24T00:00:00+01:00", "2026-11-25T00:00:00+01:00");
    let availability =
        assistant.availability(AvailabilityRequest { start, end, time_zone: None, working_hours: None }).await.unwrap();
    let busy = support::hhmm(&availability.busy);
    assert_eq!(busy, ["09:30-09:45", "14:00-15:30"], "busy blocks in Berlin time");
    let free = assistant
        .meeting_intervals(MeetingIntervalsRequest {
            start,
            end,
            time_zone: None,
            working_hours: None,
            duration_minutes: 30,
            buffer_before_minutes: 0,
            buffer_after_minutes: 0,
            limit: None,
        })
        .await
        .unwrap();
    let got = support::hhmm(&free.intervals);
    assert_eq!(got, ["09:00-09:30", "09:45-14:00", "15:30-17:00"]);

    // Google failing (503): the calendar counts as busy, the request does not fail.
    let (failing, _) = faulty_proxy(url.clone(), |_| Some(gmail_error(503, "backendError", ""))).await;
    let broken = GoogleCalendar::new(&format!("{failing}/calendar/v3/"), vec![], "tok-calendar".to_string()).unwrap();
    let options = AssistantOptions { calendar_google: Some(broken), ..AssistantOptions::default() };
    let assistant =
        provider_assistant(Box::new(gmail(&url, "calendar", FetchFormat::Metadata)), state.path(), options).unwrap();
    let availability =
        assistant.availability(AvailabilityRequest { start, end, time_zone: None, working_hours: None }).await.unwrap();
    assert!(availability.free.is_empty() && availability.unavailable_sources == ["google:primary"], "{availability:?}");
}

/// The emulator's OAuth endpoints: consent once (authorization code), then the provider runs on
/// a `token.json` whose `token_uri` is the emulator's, refreshing by itself.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the Google emulator: hack/peers/mail/run.sh"]
async fn token_json_refreshes_against_its_token_uri() {
    let url = emulator();
    let client = http();
    let consent = client
        .post(format!("{url}/o/oauth2/v2/auth/callback"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("email=oauth%40mail.example&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback&client_id=mailagent-test.apps.example&scope=https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fgmail.readonly&state=s")
        .send()
        .await
        .unwrap();
    let location = consent.headers()["location"].to_str().unwrap().to_string();
    let code = url::Url::parse(&location).unwrap().query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    let exchanged: serde_json::Value = serde_json::from_slice(
        &client
            .post(format!("{url}/oauth2/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=authorization_code&code={code}&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback&client_id=mailagent-test.apps.example&client_secret=test-client-secret"
            ))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    let refresh_token = exchanged["refresh_token"].as_str().expect("a refresh token").to_string();
    // A Python google-auth token.json with an already expired access token.
    let file = serde_json::json!({
        "token": "expired-access-token",
        "refresh_token": refresh_token,
        "token_uri": format!("{url}/oauth2/token"),
        "client_id": "mailagent-test.apps.example",
        "client_secret": "test-client-secret",
        "scopes": ["https://www.googleapis.com/auth/gmail.readonly"],
        "expiry": "2020-01-01T00:00:00.000000Z",
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token.json");
    std::fs::write(&path, file.to_string()).unwrap();
    let source = TokenSource::from_file(&path).unwrap();
    import(&url, "oauth", b"From: a@b.example\r\nSubject: hello\r\n\r\nhi\r\n", &["INBOX"]).await;
    let provider = Gmail::new(config(&url, "oauth", FetchFormat::Metadata), source.clone()).unwrap();
    let ids = provider.list_ids(None, 10).await.unwrap();
    assert_eq!(ids.len(), 1);
    assert_eq!(provider.fetch(&ids).await.unwrap()[0].subject, "hello");
    assert_eq!(source.refreshes(), 1, "one refresh, then the cached token");

    // A revoked refresh token: a permanent error telling the operator to re-consent.
    let revoked = serde_json::json!({
        "refresh_token": "revoked", "token_uri": format!("{url}/oauth2/token"),
        "client_id": "mailagent-test.apps.example", "client_secret": "test-client-secret",
    });
    let source = TokenSource::from_json(&revoked.to_string()).unwrap();
    assert!(matches!(source.access_token().await, Err(TokenError::ReconsentRequired(_))));
    let provider = Gmail::new(config(&url, "oauth", FetchFormat::Metadata), source).unwrap();
    let error = provider.list_ids(None, 10).await.unwrap_err();
    assert!(matches!(&error, ProviderError::ReconsentRequired(m) if m.contains("re-consent")), "{error}");
    assert!(!error.to_string().contains("test-client-secret"));
}

/// Twenty mailboxes of one quota group scan at once against the emulator, each paced to the share
/// the operator allots it (the operator's own arithmetic, `mailagent_crds::quota`). Unpaced, their
/// first scans would spend more than the group's budget within seconds; paced, no sliding minute
/// of the group's summed units goes over it, and every agent finishes, at the same pace.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the Google emulator: hack/peers/mail/run.sh"]
async fn a_quota_group_of_twenty_stays_under_its_budget_and_nobody_starves() {
    use std::time::{Duration, Instant};

    use mailagent_crds::quota::GroupShape;
    use mailagent_mail::live::Live;

    const AGENTS: usize = 20;
    const MESSAGES: usize = 25;
    const BUDGET: u32 = 2_000;
    let url = emulator();
    let shape = GroupShape::new(AGENTS, BUDGET);
    let users: Vec<String> = (0..AGENTS).map(|i| format!("fleet-{i:02}")).collect();
    futures::future::join_all(users.iter().map(|user| {
        let url = url.clone();
        async move {
            for n in 0..MESSAGES {
                let raw = format!(
                    "From: News {n} <news{n}@lists.example>\r\nTo: {user}@mail.example\r\nSubject: issue {n}\r\n\
                     Date: Mon, 23 Nov 2026 09:{n:02}:00 +0000\r\nList-Unsubscribe: <mailto:leave{n}@lists.example>\r\n\r\nhello\r\n"
                );
                import(&url, user, raw.as_bytes(), &["INBOX", "UNREAD"]).await;
            }
        }
    }))
    .await;

    let gmails: Vec<Arc<Gmail>> = users
        .iter()
        .map(|user| {
            let share = shape.allot(&format!("mail/{user}")).units_per_minute;
            let config =
                GmailConfig { units_per_minute: Live::new(share), ..config(&url, user, FetchFormat::Metadata) };
            Arc::new(Gmail::new(config, format!("tok-{user}")).unwrap())
        })
        .collect();
    let share = shape.allot("mail/fleet-00").units_per_minute;
    assert_eq!((share, shape.allot("x").oversubscribed), (100, false), "2,000 units among 20");

    // Sample every agent's spent units four times a second while they scan.
    let started = Instant::now();
    /// When, and each agent's units spent by then.
    type Samples = Vec<(Duration, Vec<u64>)>;
    let samples: Arc<std::sync::Mutex<Samples>> = Arc::default();
    let sampler = {
        let (gmails, samples) = (gmails.clone(), samples.clone());
        tokio::spawn(async move {
            loop {
                let units = gmails.iter().map(|g| g.counters().0).collect();
                samples.lock().unwrap().push((started.elapsed(), units));
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };
    let states: Vec<_> = (0..AGENTS).map(|_| tempfile::tempdir().unwrap()).collect();
    let finished: Vec<(u32, Duration)> = futures::future::join_all(gmails.iter().zip(&states).map(|(gmail, state)| {
        let assistant = provider_assistant(Box::new(gmail.clone()), state.path(), AssistantOptions::default()).unwrap();
        async move {
            let scan = assistant.scan(ScanRequest::default()).await.unwrap();
            (scan.fetched_messages as u32, started.elapsed())
        }
    }))
    .await;
    sampler.abort();
    let final_units: Vec<u64> = gmails.iter().map(|g| g.counters().0).collect();
    let mut samples = std::mem::take(&mut *samples.lock().unwrap());
    samples.push((started.elapsed(), final_units.clone()));

    // Summed units over every sliding minute the samples can see, and per agent. A window starts
    // at the first sample at most a minute back, so sampling can shorten it but never lengthen it.
    let sum = |units: &[u64]| units.iter().sum::<u64>();
    let at_or_before = |t: Duration| samples.iter().rev().find(|(at, _)| *at <= t).map(|(_, u)| u.clone());
    let from = |t: Duration| samples.iter().find(|(at, _)| *at >= t).map(|(_, u)| u.clone()).expect("a sample");
    let mut worst_group = 0;
    let mut worst_agent = 0;
    for (at, units) in &samples {
        let before = from(at.saturating_sub(Duration::from_secs(60)));
        worst_group = worst_group.max(sum(units) - sum(&before));
        worst_agent = worst_agent.max(units.iter().zip(&before).map(|(u, b)| u - b).max().unwrap());
    }
    // Whole minutes from the start, the last one partial.
    let minutes: Vec<u64> = (1..=samples.last().unwrap().0.as_millis().div_ceil(60_000) as u64)
        .map(|m| {
            let end = at_or_before(Duration::from_secs(60 * m)).unwrap_or_else(|| final_units.clone());
            let begin = at_or_before(Duration::from_secs(60 * (m - 1))).unwrap_or_else(|| vec![0; AGENTS]);
            sum(&end) - sum(&begin)
        })
        .collect();
    eprintln!(
        "group units per minute from the start: {minutes:?}; worst sliding minute: group {worst_group}, one agent {worst_agent}"
    );
    assert!(worst_group <= u64::from(BUDGET), "the group spent {worst_group} units in a minute, over its {BUDGET}");
    assert!(worst_agent <= u64::from(share), "an agent spent {worst_agent} units in a minute, over its {share}");

    let total: u64 = final_units.iter().sum();
    assert!(
        total > u64::from(BUDGET),
        "the group's demand ({total} units) must exceed its budget, or nothing was tested"
    );
    assert!(
        finished.iter().all(|(fetched, _)| *fetched as usize == MESSAGES),
        "every agent scanned its mailbox: {finished:?}"
    );
    let (first, last) =
        (finished.iter().map(|(_, at)| *at).min().unwrap(), finished.iter().map(|(_, at)| *at).max().unwrap());
    // Same share, same work: nobody waits on the others (a starved agent would finish minutes late).
    assert!(last.saturating_sub(first) < Duration::from_secs(15), "finish times {first:?} .. {last:?}");
    eprintln!("20 agents, {total} units, all done {:.1}–{:.1} s after start", first.as_secs_f64(), last.as_secs_f64());
}
