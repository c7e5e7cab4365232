//! Gmail scan cost on a 10,000-message mailbox in the Google emulator (`make bench` runs it
//! through `hack/peers/mail/bench.sh`, which sets `MAILAGENT_EMULATOR_URL`; ignored otherwise).
//!
//! Reports calls and quota units per message for a full scan (goal: at most 1.01 `get` per
//! message, metadata format only), the units of an incremental scan after 100 new messages, and
//! wall time against the quota-bound minimum for the same units. The scan runs paced at Gmail's
//! real per-user quota (15,000 units per sliding minute); an unpaced run of the same scan on a
//! fresh assistant shows what the emulator alone allows.
#![allow(clippy::disallowed_methods, reason = "test clients talk to the emulator this test starts")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use futures::StreamExt;
use google_calendar3::common::GetToken;
use mailagent_mail::api::*;
use mailagent_mail::provider::gmail::{FetchFormat, Gmail, GmailConfig};
use mailagent_mail::provider::gmail_shapes::{Call, USER_UNITS_PER_MINUTE};
use mailagent_mail::{AssistantOptions, provider_assistant};

const USER: &str = "bench@mail.example";

/// The emulator caps each token at 5,000 requests an hour (Gmail has no such cap; its limit is
/// the unit quota the provider paces to), so calls rotate over tokens of the same user.
#[derive(Clone)]
struct Rotating {
    tokens: Arc<Vec<String>>,
    next: Arc<AtomicUsize>,
}

impl Rotating {
    fn new(first: usize, count: usize) -> Self {
        Self {
            tokens: Arc::new((first..first + count).map(|i| format!("tok-bench-{i}")).collect()),
            next: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn take(&self) -> String {
        self.tokens[self.next.fetch_add(1, Ordering::Relaxed) % self.tokens.len()].clone()
    }
}

impl GetToken for Rotating {
    fn get_token<'a>(
        &'a self,
        _scopes: &'a [&str],
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<Option<String>, Box<dyn std::error::Error + Send + Sync>>>
                + Send
                + 'a,
        >,
    > {
        let token = self.take();
        Box::pin(async move { Ok(Some(token)) })
    }
}

fn message(n: usize) -> Vec<u8> {
    let (from, extra) = match n % 5 {
        0 => ("Weekly <news@news.example.com>", "List-Id: <weekly.news.example.com>\r\nPrecedence: list\r\n"),
        1 => ("Shop <deals@shop.example.org>", "Precedence: bulk\r\n"),
        2 => ("CI <noreply@ci.example>", ""),
        3 => ("Orders <orders@store.example>", ""),
        _ => ("Ann <ann@friends.example>", ""),
    };
    format!(
        "From: {from}\r\nTo: {USER}\r\nSubject: message {n}\r\nDate: Mon, 23 Nov 2026 10:{:02}:{:02} +0000\r\n{extra}\r\nbody {n}\r\n",
        (n / 60) % 60,
        n % 60
    )
    .into_bytes()
}

async fn import_many(url: &str, range: std::ops::Range<usize>, tokens: &Rotating) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let started = Instant::now();
    let count = range.len();
    futures::stream::iter(range)
        .map(|n| {
            let client = client.clone();
            let token = tokens.take();
            async move {
                let body = serde_json::json!({
                    "raw": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(message(n)),
                    "labelIds": ["INBOX", if n % 5 == 1 { "CATEGORY_PROMOTIONS" } else { "UNREAD" }],
                });
                let response = client
                    .post(format!("{url}/gmail/v1/users/me/messages/import"))
                    .bearer_auth(token)
                    .header("content-type", "application/json")
                    .body(body.to_string())
                    .send()
                    .await
                    .unwrap();
                assert!(response.status().is_success(), "import {n}: HTTP {}", response.status());
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    println!("imported {count} messages in {:.1} s", started.elapsed().as_secs_f64());
}

fn provider(url: &str, units_per_minute: u32) -> Arc<Gmail> {
    let config = GmailConfig {
        base_url: format!("{url}/"),
        root_url: format!("{url}/"),
        owner: Some(USER.into()),
        format: FetchFormat::Metadata,
        units_per_minute: mailagent_mail::live::Live::new(units_per_minute),
        ..GmailConfig::default()
    };
    Arc::new(Gmail::new(config, Rotating::new(8, 8)).unwrap())
}

struct Costs {
    lists: u64,
    gets: u64,
    histories: u64,
    profiles: u64,
    units: u64,
    calls: u64,
    retries: u64,
}

fn costs(gmail: &Gmail) -> Costs {
    let (units, calls, retries) = gmail.counters();
    let meter = gmail.meter();
    Costs {
        lists: meter.calls_of(Call::List),
        gets: meter.calls_of(Call::Get),
        histories: meter.calls_of(Call::History),
        profiles: meter.calls_of(Call::Profile),
        units,
        calls,
        retries,
    }
}

fn minutes(units: u64) -> f64 {
    units as f64 / f64::from(USER_UNITS_PER_MINUTE)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Google emulator: hack/peers/mail/bench.sh"]
async fn ten_thousand_message_mailbox() {
    let url = std::env::var("MAILAGENT_EMULATOR_URL")
        .expect("MAILAGENT_EMULATOR_URL is not set: run hack/peers/mail/bench.sh, which starts the Google emulator");
    let url = url.trim_end_matches('/').to_string();
    let messages: usize = std::env::var("BENCH_MESSAGES").ok().and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let importers = Rotating::new(0, 8);
    import_many(&url, 0..messages, &importers).await;

    // Full scan, paced at the real per-user quota.
    let gmail = provider(&url, USER_UNITS_PER_MINUTE);
    let state = tempfile::tempdir().unwrap();
    let assistant = provider_assistant(Box::new(gmail.clone()), state.path(), AssistantOptions::default()).unwrap();
    let started = Instant::now();
    let full = assistant
        .scan(ScanRequest { max_messages: Some(messages as u32), explain_limit: Some(1), ..ScanRequest::default() })
        .await
        .unwrap();
    let full_wall = started.elapsed();
    let full_costs = costs(&gmail);
    assert_eq!(full.total_messages as usize, messages);

    // 100 new messages, then an incremental scan.
    import_many(&url, messages..messages + 100, &importers).await;
    let started = Instant::now();
    let incremental = assistant
        .scan(ScanRequest {
            max_messages: Some(messages.min(10_000) as u32),
            explain_limit: Some(1),
            ..ScanRequest::default()
        })
        .await
        .unwrap();
    let incremental_wall = started.elapsed();
    let after = costs(&gmail);
    assert!(incremental.incremental, "{:?}", incremental.full_scan_reason);
    assert_eq!(incremental.fetched_messages, 100);

    // The same full scan unpaced: what the emulator and the client allow by themselves.
    let unpaced = provider(&url, u32::MAX / 2);
    let state2 = tempfile::tempdir().unwrap();
    let assistant2 = provider_assistant(Box::new(unpaced.clone()), state2.path(), AssistantOptions::default()).unwrap();
    let started = Instant::now();
    assistant2
        .scan(ScanRequest {
            max_messages: Some(messages.min(10_000) as u32),
            explain_limit: Some(1),
            ..ScanRequest::default()
        })
        .await
        .unwrap();
    let unpaced_wall = started.elapsed();

    let n = messages as f64;
    let full_minimum = minutes(full_costs.units);
    // A sliding minute alone would allow bursts: any schedule needs ceil(U / 15,000) windows, so
    // it cannot finish before 60 s * (ceil(U / 15,000) - 1). The provider also paces per second
    // (250 units/s), so its floor is the steady rate, U / 250 s.
    let windows = full_costs.units.div_ceil(u64::from(USER_UNITS_PER_MINUTE));
    let burst_minimum = windows.saturating_sub(1) as f64;
    let incremental_units = after.units - full_costs.units;
    let incremental_gets = after.gets - full_costs.gets;
    println!();
    println!("== Gmail full scan of {messages} messages (emulator, metadata format, paced at 15,000 units/min)");
    println!(
        "calls: {} ({} list, {} get, {} history, {} getProfile), retries: {}",
        full_costs.calls,
        full_costs.lists,
        full_costs.gets,
        full_costs.histories,
        full_costs.profiles,
        full_costs.retries
    );
    println!("gets per message: {:.4} (goal <= 1.01)", full_costs.gets as f64 / n);
    println!("calls per message: {:.4}", full_costs.calls as f64 / n);
    println!("quota units: {} = {:.3} units per message", full_costs.units, full_costs.units as f64 / n);
    let wall = full_wall.as_secs_f64();
    let floor = if burst_minimum > 0.0 {
        format!("{:.1} s (ratio {:.3})", burst_minimum * 60.0, wall / (burst_minimum * 60.0))
    } else {
        "0 s (fits in one minute)".to_string()
    };
    println!(
        "wall time: {wall:.1} s; quota-bound minimum at 15,000 units/min steady: {:.1} s (ratio {:.3}); \
         sliding-minute floor if bursts were allowed: {floor}",
        full_minimum * 60.0,
        wall / (full_minimum * 60.0),
    );
    println!(
        "same scan unpaced (emulator-bound): {:.1} s = {:.0} gets/s",
        unpaced_wall.as_secs_f64(),
        n / unpaced_wall.as_secs_f64().max(f64::EPSILON)
    );
    println!("== incremental scan after 100 new messages");
    println!(
        "quota units: {incremental_units} ({} history, {incremental_gets} get); {:.1}% of the full scan's units; wall {:.2} s",
        after.histories - full_costs.histories,
        100.0 * incremental_units as f64 / full_costs.units as f64,
        incremental_wall.as_secs_f64()
    );
    assert!(full_costs.gets as f64 / n <= 1.01, "at most 1.01 get per message");
    assert_eq!(full_costs.retries, 0);
    assert!(incremental_units <= 2 * 2 + 100 * 5 + 10, "incremental cost: {incremental_units}");
    assert!(full_wall >= Duration::from_secs_f64((full_minimum * 60.0 - 2.0).max(0.0)), "the pacer held the quota");
}
